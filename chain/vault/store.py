"""Where a node keeps vault objects: the :class:`ObjectStore` interface and its local backend.

Every backend stores whole, checked objects under their digest and nothing else: an
object enters through a :class:`ObjectWriter` that checks it byte by byte against its
digest (:class:`~chain.vault.objects.ObjectChecker`) and makes it visible only once it is
complete and verified. :class:`LocalStore` is the default backend, a directory::

    <root>/objects/ab/cd/abcd…(64 hex)     objects, sharded by their first two bytes
    <root>/tmp/                            uploads in progress (removed at open)
    <root>/damaged/                        objects a scrub found altered, kept for inspection

A write goes to ``tmp/``, is fsynced, renamed into place and the directory fsynced: after
a crash an object is whole or absent, never half-written. The S3-compatible backend
(:class:`chain.vault.s3.S3Store`) implements the same interface over a bucket.

Examples
--------
>>> import io, tempfile
>>> from chain.vault.objects import seal_stream
>>> store = LocalStore(tempfile.mkdtemp())
>>> blob = io.BytesIO(); header, _ = seal_stream(b"\\x01" * 32, io.BytesIO(b"data"), blob)
>>> _ = blob.seek(0); store.put_stream(header.digest, blob) == header
True
>>> store.has(header.digest), [d == header.digest for d in store.digests()]
(True, [True])
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from chain.crypto.atomic import fsync_directory
from chain.errors import VaultError
from chain.vault.objects import ObjectChecker, ObjectHeader, check_stream

_HEX = frozenset("0123456789abcdef")


class ObjectWriter(Protocol):
    """One upload into a store: ``feed`` the bytes, then ``commit`` (or ``abort``)."""

    def feed(self, data: bytes) -> None: ...

    def commit(self) -> ObjectHeader: ...

    def abort(self) -> None: ...


class ObjectStore(Protocol):
    """What the vault needs of a storage backend."""

    def has(self, digest: bytes) -> bool: ...

    def size(self, digest: bytes) -> int | None: ...

    def open(self, digest: bytes) -> BinaryIO: ...

    def writer(self, digest: bytes, max_bytes: int | None = None) -> ObjectWriter: ...

    def put_stream(self, digest: bytes, src: BinaryIO, max_bytes: int | None = None) -> ObjectHeader: ...

    def verify(self, digest: bytes) -> ObjectHeader: ...

    def quarantine(self, digest: bytes) -> None: ...

    def delete(self, digest: bytes) -> None: ...

    def digests(self) -> Iterator[bytes]: ...


def write_stream(writer: ObjectWriter, src: BinaryIO) -> ObjectHeader:
    """Feed ``src`` to ``writer`` and commit it (aborted on any failure); the object's header."""
    try:
        while piece := src.read(1 << 20):
            writer.feed(piece)
    except BaseException:
        writer.abort()
        raise
    return writer.commit()


class _LocalWriter:
    """An upload into a :class:`LocalStore` (a temporary file until :meth:`commit`)."""

    def __init__(self, store: LocalStore, digest: bytes, max_bytes: int | None) -> None:
        self.store = store
        self.digest = digest
        self.checker = ObjectChecker(digest, max_bytes)
        fd, name = tempfile.mkstemp(prefix="put-", suffix=".tmp", dir=store.tmp)
        self.tmp = Path(name)
        self.fh: BinaryIO | None = os.fdopen(fd, "wb")

    def feed(self, data: bytes) -> None:
        if self.fh is None:
            raise VaultError("this upload is already finished")
        try:
            self.checker.feed(data)
        except VaultError:
            self.abort()
            raise
        self.fh.write(data)

    def commit(self) -> ObjectHeader:
        if self.fh is None:
            raise VaultError("this upload is already finished")
        try:
            header = self.checker.finish()
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            self.fh = None
            final = self.store.path(self.digest)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self.tmp, 0o600)
            os.replace(self.tmp, final)
            fsync_directory(final.parent)
        except BaseException:
            self.abort()
            raise
        return header

    def abort(self) -> None:
        if self.fh is not None:
            with contextlib.suppress(OSError):
                self.fh.close()
            self.fh = None
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


class LocalStore:
    """Objects in a local directory (see the module docstring for the layout).

    Parameters
    ----------
    root : path
        The vault directory; created if absent. Leftover uploads of a crashed process in
        ``tmp/`` are removed.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.damaged = self.root / "damaged"
        for d in (self.objects, self.tmp, self.damaged):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        for stale in self.tmp.iterdir():
            with contextlib.suppress(OSError):
                stale.unlink()

    def path(self, digest: bytes) -> Path:
        """Where the object ``digest`` lives (whether or not it is there)."""
        if len(digest) != 32:
            raise VaultError("an object digest is 32 bytes")
        h = digest.hex()
        return self.objects / h[:2] / h[2:4] / h

    def has(self, digest: bytes) -> bool:
        """Whether the object is stored (not whether it is intact: see :meth:`verify`)."""
        return self.path(digest).is_file()

    def size(self, digest: bytes) -> int | None:
        """The stored object's size in bytes, or ``None``."""
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, digest: bytes) -> BinaryIO:
        """The stored object for reading; :class:`VaultError` (404) if absent."""
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise VaultError(f"no object {digest.hex()[:16]}… in this vault", 404) from None

    def writer(self, digest: bytes, max_bytes: int | None = None) -> ObjectWriter:
        """Start an upload of the object ``digest`` (checked as it arrives)."""
        self.path(digest)
        return _LocalWriter(self, digest, max_bytes)

    def put_stream(self, digest: bytes, src: BinaryIO, max_bytes: int | None = None) -> ObjectHeader:
        """Store the object read from ``src``; its header once it is checked and in place."""
        return write_stream(self.writer(digest, max_bytes), src)

    def verify(self, digest: bytes) -> ObjectHeader:
        """Re-hash the stored object; its header, or :class:`VaultError` if it is damaged
        (404 if it is missing)."""
        with self.open(digest) as fh:
            return check_stream(digest, fh)

    def delete(self, digest: bytes) -> None:
        """Remove the object; nothing if absent."""
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()

    def quarantine(self, digest: bytes) -> None:
        """Move a damaged object out of the way (to ``damaged/``); nothing if absent."""
        src = self.path(digest)
        with contextlib.suppress(FileNotFoundError):
            shutil.move(src, self.damaged / f"{digest.hex()}.{os.getpid()}.{os.urandom(4).hex()}")

    def digests(self) -> Iterator[bytes]:
        """The digests of the stored objects (in directory order)."""
        for shard in sorted(self.objects.iterdir()):
            if not shard.is_dir():
                continue
            for sub in sorted(shard.iterdir()):
                if not sub.is_dir():
                    continue
                for f in sorted(sub.iterdir()):
                    name = f.name
                    if len(name) == 64 and set(name) <= _HEX:
                        yield bytes.fromhex(name)


__all__ = ["LocalStore", "ObjectStore", "ObjectWriter", "write_stream"]
