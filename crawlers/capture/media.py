"""Which responses of a capture are media, and the segments an HLS playlist names."""

from __future__ import annotations

from urllib.parse import urljoin

#: Content types of HLS playlists.
HLS_TYPES = frozenset(
    {"application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl", "audio/x-mpegurl"}
)

#: URL suffixes of media files when the server's content type says nothing useful.
MEDIA_SUFFIXES = (".mp4", ".m4v", ".webm", ".ogv", ".mov", ".mkv", ".mp3", ".m4a", ".wav", ".ogg", ".flac",
                  ".aac", ".ts", ".m4s", ".m3u8")  # fmt: skip


def is_media(url: str, content_type: str) -> bool:
    """Whether a response is a media file (by its type, or by its URL's suffix)."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype.startswith(("video/", "audio/")) or ctype in HLS_TYPES:
        return True
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    return path.endswith(MEDIA_SUFFIXES)


def is_playlist(url: str, content_type: str, body: bytes) -> bool:
    """Whether a response is an HLS playlist."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    return ctype in HLS_TYPES or body.lstrip(b"\xef\xbb\xbf").startswith(b"#EXTM3U")


def playlist_uris(base_url: str, body: bytes, *, limit: int = 10_000) -> list[str]:
    """Absolute URLs of the variant playlists, segments, init sections and keys an HLS
    playlist names, in order, without repeats, at most ``limit``.

    Examples
    --------
    >>> playlist_uris("http://h/v/i.m3u8", b'#EXTM3U\\n#EXT-X-MAP:URI="init.mp4"\\n#EXTINF:2,\\ns0.ts\\n')
    ['http://h/v/init.mp4', 'http://h/v/s0.ts']
    """
    text = body.decode("utf-8", "replace")
    found: dict[str, None] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            marker = 'URI="'
            at = line.find(marker)
            if at >= 0 and line.startswith(("#EXT-X-MAP", "#EXT-X-KEY", "#EXT-X-MEDIA", "#EXT-X-I-FRAME")):
                end = line.find('"', at + len(marker))
                if end > at:
                    found.setdefault(urljoin(base_url, line[at + len(marker) : end]))
            continue
        found.setdefault(urljoin(base_url, line))
        if len(found) >= limit:
            break
    return list(found)[:limit]
