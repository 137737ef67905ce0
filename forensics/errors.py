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


class DuplicateContentError(LibraryError):
    """The same content (byte-identical file, or identical array) is already registered.

    Attributes
    ----------
    work_id : str
        The work already holding this content.
    registered_at : str or None
        When that work was registered (UTC, RFC 3339).
    """

    def __init__(self, message: str, work_id: str, registered_at: str | None) -> None:
        super().__init__(message)
        self.work_id = work_id
        self.registered_at = registered_at


class ReadOnlyLibraryError(LibraryError):
    """A write (register, remove) was asked of a library opened read-only."""
