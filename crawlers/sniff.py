"""Content sniffing: the media type of a body from its first bytes, never from headers.

A hostile or careless site labels a JPEG ``text/html`` or an HTML page ``image/png``. The
scanner decides from magic numbers what a body is, and sends only images and audio to
the fingerprinters.
"""

from __future__ import annotations

import re
from typing import Literal

Family = Literal["html", "image", "audio", "video", "stream", "other"]

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"BM", 0, "image/bmp"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"fLaC", 0, "audio/flac"),
    (b"OggS", 0, "audio/ogg"),
    (b"ID3", 0, "audio/mpeg"),
    (b"\x1aE\xdf\xa3", 0, "video/webm"),
)
#: A DASH manifest's start: XML declaration, comments or a DOCTYPE, then the ``MPD`` root.
_MPD = re.compile(
    rb"(<\?xml[^>]*\?>\s*)?(<!--.*?-->\s*|<!doctype[^\[>]*(\[.*?\])?\s*>\s*)*<(\w+:)?mpd[\s>/]",
    re.DOTALL | re.IGNORECASE,
)
_HTML_STARTS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<body",
    b"<meta",
    b"<title",
    b"<div",
    b"<p",
    b"<!--",
    b"<a ",
    b"<img",
    b"<script",
)
#: File suffix for each sniffed media type (what the fingerprinters' decoders expect).
SUFFIX = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "image/tiff": ".tif",
    "image/webp": ".webp",
    "audio/flac": ".flac",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/wav": ".wav",
    "video/webm": ".webm",
    "video/mp4": ".mp4",
    "video/mp2t": ".ts",
    "audio/mp4": ".m4a",
}


def sniff(head: bytes) -> str:
    """The media type of a body from its first bytes (512 suffice).

    Examples
    --------
    >>> png, wav = b"\\x89PNG\\r\\n\\x1a\\n....", b"RIFF\\0\\0\\0\\0WAVEfmt "
    >>> sniff(png), sniff(b"  <!DOCTYPE html><html>"), sniff(wav)
    ('image/png', 'text/html', 'audio/wav')
    >>> sniff(b"\\x00\\x01garbage")
    'application/octet-stream'
    """
    for magic, offset, mime in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "audio/mp4" if brand in (b"M4A ", b"M4B ") else "video/mp4"
    if len(head) >= 377 and head[0] == head[188] == head[376] == 0x47:
        return "video/mp2t"  # MPEG transport stream: a sync byte every 188 bytes
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return "audio/mpeg"  # MPEG audio frame sync, layer set
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n\f").lower()
    if text.startswith(b"#extm3u"):
        return "application/vnd.apple.mpegurl"
    if _MPD.match(text):
        return "application/dash+xml"
    if text.startswith(_HTML_STARTS):
        return "text/html"
    return "application/octet-stream"


def family(mime: str) -> Family:
    """``"html"``, ``"image"``, ``"audio"``, ``"video"``, ``"stream"`` (an HLS or DASH manifest)
    or ``"other"`` for a sniffed type."""
    if mime == "text/html":
        return "html"
    if mime in ("application/vnd.apple.mpegurl", "application/dash+xml"):
        return "stream"
    top = mime.split("/", 1)[0]
    if top in ("image", "audio", "video"):
        return top  # type: ignore[return-value]
    return "other"
