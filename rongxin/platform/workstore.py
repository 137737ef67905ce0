"""The works area's data: the forensics library, the uploaded files and the anchor receipts.

An upload is streamed to ``data_dir/uploads`` under a random name while its size is
counted (past ``max_bytes`` it is deleted and refused), then given to
:meth:`forensics.Library.register`, which reads the content and raises a
:class:`~forensics.ForensicsError` for anything it cannot fingerprint (truncated, forged,
not media): the page shows that message. A registered file is kept under its content SM3
(``uploads/<sm3>.<suffix>``); the file name the user gave is metadata, never a path.

The fingerprint digest is anchored on the chain by the member's client; the receipt is
kept as ``receipts/<work_id>.receipt.cbor``.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from pathlib import Path
from typing import IO, Any

from chain.crypto.sm3 import sm3_file
from forensics.errors import ForensicsError
from forensics.types import Registration
from rongxin.platform.config import PlatformError
from rongxin.platform.workindex import WorkIndex, WorkRow

CHUNK = 1024 * 1024
_SUFFIX = re.compile(r"^\.[a-z0-9]{1,8}$")
_WORK_ID = re.compile(r"[^A-Za-z0-9._-]+")


class UploadError(PlatformError):
    """An upload was refused before the library saw it (too large, empty, no file)."""


def work_id_from(filename: str, digest_hex: str) -> str:
    """A work id from a file name and its content digest.

    Examples
    --------
    >>> work_id_from("../../My Song (final).flac", "ab12cd34" * 8)
    'My-Song-final-ab12cd34'
    """
    stem = Path(filename.replace("\\", "/")).stem
    cleaned = _WORK_ID.sub("-", stem).strip("-._")[:48] or "work"
    return f"{cleaned}-{digest_hex[:8]}"


def safe_suffix(filename: str) -> str:
    """The file name's suffix if it is short and plain (``.jpg``), else ``.bin``."""
    suffix = Path(filename.replace("\\", "/")).suffix.lower()
    return suffix if _SUFFIX.fullmatch(suffix) else ".bin"


class WorkStore:
    """Works of one deployment: library, uploads and receipts.

    Parameters
    ----------
    library_dir : path
        The forensics library (created when missing).
    data_dir : path
        Where ``uploads/`` and ``receipts/`` live.
    max_bytes : int
        Largest upload accepted.
    """

    def __init__(self, library_dir: Path, data_dir: Path, max_bytes: int) -> None:
        self.library_dir = library_dir
        self.uploads = data_dir / "uploads"
        self.receipts = data_dir / "receipts"
        self.max_bytes = max_bytes
        self._lib: Any = None
        self._index: WorkIndex | None = None
        self._lock = threading.Lock()

    @property
    def library(self) -> Any:
        """The :class:`forensics.Library` (opened on first use)."""
        with self._lock:
            if self._lib is None:
                from forensics import Library

                self._lib = Library(self.library_dir)
            return self._lib

    @property
    def index(self) -> WorkIndex:
        """The search index of the works pages (opened on first use)."""
        with self._lock:
            if self._index is None:
                self._index = WorkIndex(self.uploads.parent / "works-index.sqlite")
            return self._index

    def close(self) -> None:
        """Close the library and the index."""
        with self._lock:
            if self._lib is not None:
                self._lib.close()
                self._lib = None
            if self._index is not None:
                self._index.close()
                self._index = None

    def count(self) -> int:
        """How many works are registered."""
        return len(self.library)

    def search(
        self, q: str = "", kind: str = "", offset: int = 0, limit: int = 50
    ) -> tuple[list[WorkRow], bool]:
        """Works whose id, title, owner or file name contains ``q`` (case-insensitive), of
        ``kind`` if given, newest first; one page from ``offset`` and whether more follow."""
        index = self.index
        if index.count() != self.count():
            index.rebuild(self.library.works())
        return index.search(q, kind, offset, limit)

    def get(self, work_id: str) -> Registration | None:
        """The registration of ``work_id``, or ``None``."""
        try:
            found: Registration | None = self.library.get(work_id)
        except ForensicsError:
            return None
        return found

    def save_upload(self, stream: IO[bytes], filename: str) -> Path:
        """Copy an uploaded file to ``uploads/`` under a random name, counting its size.

        Raises
        ------
        UploadError
            Empty, or larger than :attr:`max_bytes` (nothing is left on disk).
        """
        self.uploads.mkdir(parents=True, exist_ok=True)
        path = self.uploads / f"incoming-{secrets.token_hex(12)}{safe_suffix(filename)}"
        size = 0
        try:
            with open(path, "xb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise UploadError(f"the file is larger than {self.max_bytes // (1024 * 1024)} MiB")
                    out.write(chunk)
            if size == 0:
                raise UploadError("the file is empty")
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def register(self, path: Path, work_id: str, metadata: dict[str, Any]) -> Registration:
        """Register the saved upload; keep it under its content digest, or delete it on failure.

        Raises
        ------
        ForensicsError
            The library's own refusal (not media, truncated, duplicate content, id taken).
        """
        try:
            reg: Registration = self.library.register(path, work_id, metadata)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        kept = self.uploads / f"{reg.content_digest.hex()}{path.suffix}"
        os.replace(path, kept)
        self.index.add(reg)
        return reg

    def add(
        self, stream: IO[bytes], filename: str, metadata: dict[str, Any], work_id: str = ""
    ) -> Registration:
        """Save an upload and register it (id from the file name and content when not given).

        Raises
        ------
        UploadError, ForensicsError
            As :meth:`save_upload` and :meth:`register`.
        """
        path = self.save_upload(stream, filename)
        try:
            work_id = work_id or work_id_from(filename, sm3_file(path).hex())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return self.register(path, work_id, {**metadata, "filename": filename})

    def save_receipt(self, work_id: str, receipt: bytes) -> None:
        """Keep the receipt of the transaction that anchored ``work_id``'s fingerprint."""
        self.receipts.mkdir(parents=True, exist_ok=True)
        (self.receipts / f"{work_id}.receipt.cbor").write_bytes(receipt)

    def receipt(self, work_id: str) -> bytes | None:
        """The kept anchor receipt of ``work_id``, or ``None``."""
        path = self.receipts / f"{work_id}.receipt.cbor"
        return path.read_bytes() if path.is_file() else None
