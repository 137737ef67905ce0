"""External programs: lookup with a clear error, and small wrappers around ffmpeg and sox.

Every run is made reproducible where the tool allows it: ffmpeg with ``-bitexact`` and one
thread for encoders, sox with ``-R`` (repeatable) and ``-D`` (no dither).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets.errors import DatasetsError, DecodeError, ToolMissingError

#: Which Debian package provides each tool we call.
TOOL_PACKAGES: dict[str, str] = {
    "ffmpeg": "ffmpeg",
    "ffprobe": "ffmpeg",
    "sox": "sox libsox-fmt-all",
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
}


def require(tool: str) -> str:
    """The absolute path of ``tool``, or :class:`ToolMissingError` naming the package to install.

    Examples
    --------
    >>> require("sh").endswith("sh")
    True
    >>> require("no-such-tool-xyz")
    Traceback (most recent call last):
    ...
    datasets.errors.ToolMissingError: required program 'no-such-tool-xyz' is not on PATH; ...
    """
    path = shutil.which(tool)
    if path is None:
        pkg = TOOL_PACKAGES.get(tool)
        hint = f"install it: apt-get install -y --no-install-recommends {pkg}" if pkg else "install it"
        raise ToolMissingError(f"required program {tool!r} is not on PATH; {hint}")
    return path


def run(
    args: Sequence[str | Path], *, what: str, timeout: float = 3600.0, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run a program, raising :class:`DatasetsError` with its stderr tail if it fails.

    Parameters
    ----------
    args : sequence of str or Path
        Program and arguments; the program is looked up with :func:`require`.
    what : str
        A short description for the error message ("encode slideshow", ...).
    timeout : float
        Seconds before the run is abandoned.
    cwd : Path, optional
        Working directory.

    Examples
    --------
    >>> run(["true"], what="nothing").returncode
    0
    """
    argv = [require(str(args[0])), *map(str, args[1:])]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        raise DatasetsError(f"{what}: {args[0]} did not finish in {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise DatasetsError(f"{what}: {args[0]} exited with {proc.returncode}: " + " | ".join(tail))
    return proc


FFMPEG_BASE = ("ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error")
#: Encoder flags that make ffmpeg's output reproducible byte for byte.
FFMPEG_BITEXACT = ("-threads", "1", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact")


def ffmpeg(args: Sequence[str | Path], *, what: str, timeout: float = 3600.0) -> None:
    """Run ffmpeg quietly (overwrite, no stdin, errors only)."""
    run([*FFMPEG_BASE, *args], what=what, timeout=timeout)


def sox(args: Sequence[str | Path], *, what: str) -> None:
    """Run sox in repeatable mode without dither."""
    run(["sox", "-R", "-D", "-V1", *args], what=what)


@dataclass(frozen=True)
class MediaInfo:
    """What ffprobe says about a media file.

    Attributes
    ----------
    duration : float
        Seconds (0 for still images).
    width, height : int
        Pixel size of the first video stream, 0 if none.
    fps : float
        Average frame rate of the first video stream, 0 if none.
    sample_rate, channels : int
        Of the first audio stream, 0 if none.
    has_video, has_audio : bool
        Which streams exist.
    """

    duration: float
    width: int
    height: int
    fps: float
    sample_rate: int
    channels: int
    has_video: bool
    has_audio: bool


def _rate(text: str) -> float:
    num, _, den = text.partition("/")
    try:
        n, d = float(num), float(den or 1)
    except ValueError:
        return 0.0
    return n / d if d else 0.0


def probe(path: Path) -> MediaInfo:
    """Probe a media file with ffprobe.

    Raises
    ------
    DecodeError
        If ffprobe cannot read the file.
    """
    try:
        proc = run(
            ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path],
            what=f"probe {path.name}",
            timeout=120,
        )
    except ToolMissingError:
        raise
    except DatasetsError as exc:
        raise DecodeError(f"{path}: not a readable media file ({exc})") from exc
    data: dict[str, Any] = json.loads(proc.stdout or b"{}")
    streams = data.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    duration = float(data.get("format", {}).get("duration") or 0.0)
    return MediaInfo(
        duration=duration,
        width=int(video.get("width", 0)) if video else 0,
        height=int(video.get("height", 0)) if video else 0,
        fps=_rate(video.get("avg_frame_rate", "0/1")) if video else 0.0,
        sample_rate=int(audio.get("sample_rate", 0)) if audio else 0,
        channels=int(audio.get("channels", 0)) if audio else 0,
        has_video=video is not None,
        has_audio=audio is not None,
    )


def ffmpeg_output(
    path: Path, out_args: Sequence[str], *, what: str, pre: Sequence[str] = (), strict: bool = True
) -> bytes:
    """Decode ``path`` with ffmpeg and return what it writes to stdout.

    Raises
    ------
    DecodeError
        If ffmpeg fails, or (``strict``) reports any decoding error.
    """
    argv = [require("ffmpeg"), "-hide_banner", "-nostdin", "-v", "error", *pre, "-i", str(path), *out_args]
    proc = subprocess.run(argv, capture_output=True, timeout=1800, check=False)
    err = proc.stderr.decode(errors="replace").strip()
    if proc.returncode != 0 or (strict and err):
        raise DecodeError(f"{path}: {what}: {err.splitlines()[-1] if err else proc.returncode}")
    return proc.stdout


def decode_check(path: Path) -> None:
    """Decode every stream of ``path`` to nowhere; :class:`DecodeError` on any decoder error."""
    ffmpeg_output(path, ["-f", "null", "-"], what="does not decode cleanly", pre=["-xerror"])


def media_fields(info: MediaInfo) -> dict[str, Any]:
    """The manifest fields (duration, size, frame rate, sound) of a probed video."""
    return {
        "duration": round(info.duration, 3),
        "width": info.width,
        "height": info.height,
        "fps": round(info.fps, 3),
        "sample_rate": info.sample_rate or None,
        "channels": info.channels or None,
    }
