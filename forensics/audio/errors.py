"""Errors of the audio fingerprinting subpackage, all under :class:`forensics.errors.ForensicsError`."""

from __future__ import annotations

from forensics.errors import ForensicsError, LibraryError, MediaError, UnsupportedMediaError

__all__ = [
    "AudioDecodeError",
    "AudioIndexError",
    "AudioTooLongError",
    "ClipTooShortError",
    "DecoderMissingError",
    "NoAudioStreamError",
    "NoFingerprintError",
]


class AudioDecodeError(MediaError):
    """ffmpeg could not decode the file: not media, truncated or corrupt."""


class NoAudioStreamError(UnsupportedMediaError):
    """The file is media but has no audio stream (a silent video, an image)."""


class AudioTooLongError(MediaError):
    """The file is longer than the configured maximum duration."""


class ClipTooShortError(MediaError):
    """The audio is shorter than the minimum that can be fingerprinted reliably."""


class NoFingerprintError(MediaError):
    """The audio has too little spectral detail to fingerprint (silence, a pure tone, DC)."""


class DecoderMissingError(ForensicsError):
    """The ``ffmpeg`` program is not installed or not on ``PATH``."""


class AudioIndexError(LibraryError):
    """The audio index directory is unusable (corrupt, written by another version, full)."""
