"""What a video file holds, read with ``ffprobe``, and the refusal of files that are not usable video.

:func:`probe` reads the first video stream's size, frame rate, frame count and duration
and whether the file has an audio stream; :func:`check` turns what is wrong with a file
into one clear :class:`~forensics.errors.MediaError` subclass before anything is decoded:
an empty file, something that is not video at all, a still picture under a video name
or in a video container, and absurd sizes or frame rates.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from forensics.errors import ForensicsError, MediaError
from forensics.video.errors import NotVideoError, StillImageError, VideoLimitsError

__all__ = ["Limits", "VideoInfo", "check", "ffmpeg_exe", "probe"]

#: Demuxers that read one picture (image files under any name).
_IMAGE_FORMATS = ("_pipe", "image2", "png", "apng", "webp", "gif", "bmp", "tiff")
_IMAGE_CODECS = frozenset({"png", "mjpeg", "bmp", "tiff", "webp", "gif", "jpeg2000", "jpegls", "pam", "ppm"})


@dataclass(frozen=True)
class Limits:
    """What the index accepts of a stream.

    Attributes
    ----------
    max_pixels : int
        Largest frame (width × height); 8K UHD by default.
    min_side : int
        Smallest width or height.
    max_fps : float
        Highest average frame rate.
    max_seconds : float
        Longest duration.
    """

    max_pixels: int = 7680 * 4320
    min_side: int = 16
    max_fps: float = 300.0
    max_seconds: float = 12 * 3600.0


@dataclass(frozen=True)
class VideoInfo:
    """The first video stream of a file.

    Attributes
    ----------
    width, height : int
        Coded frame size (before any rotation in the metadata).
    fps : float
        Average frame rate (0 when the container does not say).
    frames : int or None
        Frames in the stream, when the container says.
    duration : float
        Seconds (the stream's, else the container's; 0 when unknown).
    codec : str
        The stream's codec name.
    container : str
        ffprobe's format name.
    has_audio : bool
        Whether the file has an audio stream.
    rotation : int
        Display rotation in degrees from the metadata (ffmpeg applies it when decoding).
    """

    width: int
    height: int
    fps: float
    frames: int | None
    duration: float
    codec: str
    container: str
    has_audio: bool
    rotation: int = 0


def ffmpeg_exe(name: str = "ffmpeg") -> str:
    """The absolute path of ``ffmpeg`` (or ``ffprobe``); :class:`ForensicsError` when missing."""
    exe = shutil.which(name)
    if exe is None:
        raise ForensicsError(
            f"{name} is not installed or not on PATH; install it (Debian: apt-get install ffmpeg)"
        )
    return exe


def _rate(text: str | None) -> float:
    try:
        value = Fraction(text or "0")
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(value)


def _number(text: object) -> float:
    try:
        return float(str(text))
    except ValueError:
        return 0.0


def probe(path: Path) -> VideoInfo:
    """Read the first video stream of ``path`` with ffprobe.

    Raises
    ------
    MediaError
        The file is missing or empty.
    NotVideoError
        ffprobe cannot read it, or it has no video stream.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MediaError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not path.is_file():
        raise MediaError(f"{path} is not a regular file; give a video file")
    if size == 0:
        raise MediaError(f"{path} is empty (0 bytes); give a video file")
    cmd = [
        ffmpeg_exe("ffprobe"),
        "-v",
        "error",
        "-show_entries",
        "stream=codec_type,codec_name,width,height,avg_frame_rate,r_frame_rate,nb_frames,duration:"
        "stream_side_data=rotation:format=format_name,duration",
        "-of",
        "json",
        "file:" + str(path.resolve()),
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    except subprocess.TimeoutExpired as exc:
        raise NotVideoError(f"{path}: ffprobe did not finish reading the file within 60 s") from exc
    try:
        data = json.loads(out.stdout or b"{}")
    except json.JSONDecodeError:
        data = {}
    streams = data.get("streams") or []
    video = [s for s in streams if s.get("codec_type") == "video"]
    if out.returncode != 0 or not video:
        tail = out.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no video stream"]
        raise NotVideoError(f"{path} is not a video ffmpeg can read ({tail[0]}); give a video file")
    v = video[0]
    fmt = data.get("format") or {}
    duration = _number(v.get("duration")) or _number(fmt.get("duration"))
    frames = v.get("nb_frames")
    rotation = 0
    for side in v.get("side_data_list") or []:
        if "rotation" in side:
            rotation = int(_number(side["rotation"]))
    return VideoInfo(
        width=int(v.get("width") or 0),
        height=int(v.get("height") or 0),
        fps=_rate(v.get("avg_frame_rate")) or _rate(v.get("r_frame_rate")),
        frames=int(frames) if frames is not None and str(frames).isdigit() else None,
        duration=duration,
        codec=str(v.get("codec_name") or "?"),
        container=str(fmt.get("format_name") or "?"),
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
        rotation=rotation,
    )


def check(path: Path, info: VideoInfo, limits: Limits) -> None:
    """Refuse a stream that is a still picture or outside ``limits``.

    Raises
    ------
    StillImageError
        An image file (whatever its name) or a stream of one frame.
    VideoLimitsError
        A size or frame rate outside ``limits``.
    VideoTooLongError
        Longer than ``limits.max_seconds``.

    Examples
    --------
    >>> from pathlib import Path
    >>> info = VideoInfo(64, 48, 1000.0, 10, 0.01, "h264", "mov,mp4", False)
    >>> check(Path("x.mp4"), info, Limits())
    Traceback (most recent call last):
    ...
    forensics.video.errors.VideoLimitsError: x.mp4 declares 1000 frames per second; ...
    """
    from forensics.video.errors import VideoTooLongError

    still_container = any(tag in info.container for tag in _IMAGE_FORMATS)
    single = info.frames is not None and info.frames <= 1
    if still_container or single or (info.codec in _IMAGE_CODECS and info.duration <= 0.0):
        raise StillImageError(
            f"{path} is a still picture ({info.codec} in {info.container}), not a video; "
            "register it as an image"
        )
    if info.width < limits.min_side or info.height < limits.min_side:
        raise VideoLimitsError(
            f"{path} is {info.width}×{info.height} pixels; a video needs at least {limits.min_side} "
            "pixels per side"
        )
    if info.width * info.height > limits.max_pixels:
        raise VideoLimitsError(
            f"{path} declares {info.width}×{info.height} pixels, more than the {limits.max_pixels:,} "
            "accepted; re-encode it at a lower resolution"
        )
    if not 0.0 < info.fps <= limits.max_fps:
        raise VideoLimitsError(
            f"{path} declares {info.fps:g} frames per second; accepted are rates above 0 and at most "
            f"{limits.max_fps:g}"
        )
    if info.duration > limits.max_seconds:
        raise VideoTooLongError(
            f"{path} lasts {info.duration:.0f} s, more than the {limits.max_seconds:.0f} s accepted; "
            "cut it into parts"
        )
