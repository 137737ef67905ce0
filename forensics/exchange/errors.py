"""Errors of hash-list exchange; every one is a :class:`forensics.errors.ForensicsError`."""

from __future__ import annotations

from forensics.errors import ForensicsError


class HashListError(ForensicsError):
    """A hash list cannot be written, read or imported."""


class MalformedHashListError(HashListError):
    """The file is not a hash list, or a line of it breaks the format."""


class TruncatedHashListError(MalformedHashListError):
    """The file ends before its last entry or before its trailer (an interrupted copy)."""


class HashListTooLargeError(HashListError):
    """The file, a line or an entry exceeds the reader's limits."""


class UnsupportedHashListVersionError(HashListError):
    """The list was written in a format version this reader does not know."""


class HashListDigestError(HashListError):
    """The SM3 digest in the trailer does not match the bytes: the list was altered."""


class HashListSignatureError(HashListError):
    """The list is unsigned where a signature is required, its signature does not verify,
    or it was signed by another key than the one expected."""


class HashListMismatchError(HashListError):
    """The list's fingerprints cannot be used by this library (other parameters), or it
    names another member than the one expected."""
