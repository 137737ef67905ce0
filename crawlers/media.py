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

#: ffmpeg container names for the sniffed video types cut or joined here.
FORMATS = {"video/mp4": "mp4", "video/webm": "matroska", "video/mp2t": "mpegts"}


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
