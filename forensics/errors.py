"""The forensics package's exception hierarchy: one root, specific subclasses."""

from __future__ import annotations


class ForensicsError(Exception):
    """Root of every error raised by :mod:`forensics`."""


class MediaError(ForensicsError):
    """A media file cannot be used: not media, truncated, corrupt, too large or too short."""


class UnsupportedMediaError(MediaError):
    """The file is a kind of media this library does not handle."""


class LibraryError(ForensicsError):
    """The work library cannot do what was asked (unknown work, duplicate id, bad directory)."""
