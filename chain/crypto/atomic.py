"""Crash-safe file output: a file appears whole, with its final mode, or not at all.

:func:`atomic_output` writes into a temporary file in the destination's directory, fsyncs
it, moves it into place and fsyncs the directory, so after a crash either the old file or
the complete new one is there (never a truncated key file). An existing file is replaced
only when the caller asks (``overwrite=True``); otherwise the refusal is race-free: the
new file is hard-linked into place, which fails if the name exists.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from typing import BinaryIO


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (a file created or renamed in it survives a power loss)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # a platform without directory handles: nothing more can be done
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _place(tmp: str, path: str, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "refusing to overwrite an existing file", path) from None
    except OSError:  # no hard links on this file system: check, then rename
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "refusing to overwrite an existing file", path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], mode: int = 0o600, *, overwrite: bool = False
) -> Iterator[BinaryIO]:
    """A binary file object whose content replaces ``path`` only if the block succeeds.

    Parameters
    ----------
    path : str or os.PathLike
        Destination.
    mode : int
        Permission bits of the new file (default 0600: owner only).
    overwrite : bool
        Replace an existing ``path``; without it :class:`FileExistsError` is raised and
        the existing file is left untouched.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is false.
    OSError
        The directory is not writable, the disk is full, ...

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "out.bin"
    >>> with atomic_output(p) as fh:
    ...     _ = fh.write(b"whole")
    >>> p.read_bytes(), oct(p.stat().st_mode & 0o777)
    (b'whole', '0o600')
    """
    target = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(target)
    if not overwrite and os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "refusing to overwrite an existing file", os.fspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".rx-", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _place(tmp, target, overwrite)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_directory(directory)


def atomic_write(
    path: str | os.PathLike[str], data: bytes, mode: int = 0o600, *, overwrite: bool = False
) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename, fsync the directory).

    Raises :class:`FileExistsError` if ``path`` exists and ``overwrite`` is false.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "key"
    >>> atomic_write(p, b"sealed")
    >>> atomic_write(p, b"again")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileExistsError: [Errno 17] refusing to overwrite an existing file: '...key'
    >>> atomic_write(p, b"again", overwrite=True); p.read_bytes()
    b'again'
    """
    with atomic_output(path, mode, overwrite=overwrite) as fh:
        fh.write(data)


__all__ = ["atomic_output", "atomic_write"]
