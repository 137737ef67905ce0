"""Errors of the video subpackage, all under :class:`forensics.errors.ForensicsError`."""

from __future__ import annotations

from forensics.errors import LibraryError, MediaError

__all__ = [
    "NotVideoError",
    "StillImageError",
    "VideoDecodeError",
    "VideoIndexError",
    "VideoLimitsError",
    "VideoTooLongError",
    "VideoTooShortError",
]


class NotVideoError(MediaError):
    """The file holds no video stream ffmpeg can read (text, audio only, random bytes)."""


class StillImageError(MediaError):
    """The file is a single picture (a still image in a video container or under a video name)."""


class VideoDecodeError(MediaError):
    """ffmpeg failed while decoding the picture: a truncated or corrupt stream."""


class VideoLimitsError(MediaError):
    """The stream declares an absurd size or frame rate (too large, too small, zero)."""


class VideoTooLongError(MediaError):
    """The video is longer than the index accepts."""


class VideoTooShortError(MediaError):
    """Too little usable picture to fingerprint (too short, or uniform frames only)."""


class VideoIndexError(LibraryError):
    """The video index directory is unusable (damaged, written by another version, read-only)."""
