"""Fetched media made ready for identification: long videos cut, stream segments joined.

Everything here works on local files the scanner wrote itself; ffmpeg is never given a
URL, a playlist or a concat script (a demuxer that follows references could reach the
network around the SSRF guard), only files whose first bytes were sniffed as a media
container, with ``-protocol_whitelist file`` and the container format named explicitly.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from crawlers.errors import MediaPrepError
from crawlers.sniff import SUFFIX, family, sniff

#: ffmpeg container names for the sniffed video types cut or joined here.
FORMATS = {
    "video/mp4": "mp4",
    "audio/mp4": "mp4",
    "video/webm": "matroska",
    "video/mp2t": "mpegts",
}


def _ffmpeg(*args: str, seconds: float = 120.0) -> None:
    from forensics.errors import ForensicsError
    from forensics.video.probe import ffmpeg_exe

    try:
        exe = ffmpeg_exe()
    except ForensicsError as exc:
        raise MediaPrepError(str(exc)) from None
    cmd = [exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-protocol_whitelist", "file", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=seconds, check=False)
    except subprocess.TimeoutExpired:
        raise MediaPrepError(f"ffmpeg did not finish within {seconds:.0f} s") from None
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip()[-300:]
        raise MediaPrepError(f"ffmpeg failed (exit {proc.returncode}): {tail or 'no message'}")


def duration(path: Path) -> float:
    """Seconds of the video ``path`` as its container says (0 when unknown or unreadable)."""
    from forensics.errors import ForensicsError
    from forensics.video.probe import probe

    try:
        return float(probe(path).duration)
    except ForensicsError:
        return 0.0


def clip(path: Path, mime: str, seconds: float, dest: Path) -> Path:
    """``path`` if it lasts at most ``seconds``, else its first ``seconds`` remuxed to ``dest``.

    The cut copies the streams (no re-encoding), so it costs about one read of the file;
    it bounds the identification time of a long (or long-claiming) video.

    Raises
    ------
    MediaPrepError
        ffmpeg failed on the file.
    """
    if mime not in FORMATS or duration(path) <= seconds:
        return path
    fmt = FORMATS[mime]
    _ffmpeg("-f", fmt, "-i", "file:" + str(path), "-t", f"{seconds:.3f}", "-map", "0", "-c", "copy",
            "-f", fmt, "file:" + str(dest))  # fmt: skip
    return dest


def _has_video(path: Path) -> bool:
    from forensics.errors import ForensicsError
    from forensics.video.probe import probe

    try:
        probe(path)
    except ForensicsError:
        return False
    return True


def join(tracks: list[tuple[str, bytes]], directory: Path) -> tuple[Path, str]:
    """One identifiable file from a stream's fetched tracks (``(kind, bytes)``, video first).

    A single track is written as it is (MPEG-TS or fragmented MP4 segments joined are a
    valid stream); a video and an audio track (DASH) are muxed into one MP4 without
    re-encoding, so that picture and sound are identified together; a track with sound
    only is converted to FLAC for the audio index.

    Returns
    -------
    (Path, str)
        The file and its sniffed media type.

    Raises
    ------
    MediaPrepError
        A track is not a media container, or ffmpeg failed.
    """
    paths: list[tuple[Path, str]] = []
    for i, (kind, body) in enumerate(tracks):
        mime = sniff(body[:512])
        if family(mime) not in ("video", "audio"):
            raise MediaPrepError(f"the {kind} segments are not a media stream ({mime})")
        path = directory / f"track{i}{SUFFIX.get(mime, '.bin')}"
        path.write_bytes(body)
        paths.append((path, mime))
    if len(paths) == 1:
        path, mime = paths[0]
        if family(mime) == "video" and not _has_video(path):
            dest = directory / "sound.flac"
            _ffmpeg("-f", FORMATS.get(mime, "mp4"), "-i", "file:" + str(path), "-map", "0:a:0",
                    "-c:a", "flac", "-f", "flac", "file:" + str(dest))  # fmt: skip
            return dest, "audio/flac"
        return path, mime
    dest = directory / "joined.mp4"
    args: list[str] = []
    for path, mime in paths[:2]:
        args += ["-f", FORMATS.get(mime, "mp4"), "-i", "file:" + str(path)]
    _ffmpeg(*args, "-map", "0:v:0?", "-map", "1:a:0?", "-c", "copy", "-f", "mp4", "file:" + str(dest))
    return dest, "video/mp4"
