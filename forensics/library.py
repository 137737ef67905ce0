"""The work library: register works of every media kind, identify copies, persist to disk.

A library is a directory::

    library.db     SQLite (WAL) catalogue: one row per work (id, kind, digests, metadata, time)
    image/         the image index's files
    audio/         the audio index's files (when the audio index is installed)

Each media kind has one index implementing :class:`forensics.types.MediaIndex`. Which
class serves a kind is looked up in a small registry (:data:`INDEX_CLASSES`, extended with
:func:`register_index`); an index is imported and opened the first time its kind is
needed, so a library holding only images works even where the audio index's
dependencies are missing — asking it for audio then raises a clear
:class:`~forensics.errors.UnsupportedMediaError`.

Video files go to the video index (:mod:`forensics.video`), which registers a programme's
soundtrack with the audio index under the same work id (the library attaches its audio
index to any index with an ``attach_audio`` method) and reports whether the picture, the
sound or both found a work. While a library holds no video works, a video query is
identified by its soundtrack alone — the file's first audio stream is matched against the
audio works, and each match says so (:attr:`Match.query_stream
<forensics.types.Match.query_stream>` is ``"audio"``).

Registration reserves the work id in the catalogue, fingerprints the file into its
kind's index, then completes the catalogue row; a failed fingerprint releases the id.
Matches are only reported for completed works.

Examples
--------
>>> import tempfile, pathlib, numpy as np, cv2
>>> rng = np.random.default_rng(7)
>>> img = cv2.GaussianBlur((rng.random((240, 320, 3)) * 255).astype(np.uint8), (0, 0), 2)
>>> with Library(pathlib.Path(tempfile.mkdtemp())) as lib:
...     reg = lib.register(img, "poster-1", {"owner": "county media center"})
...     [(m.work_id, m.kind) for m in lib.identify(img[:, ::-1])]
[('poster-1', 'image')]
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os
import shlex
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from chain.crypto.errors import CryptoError
from chain.crypto.sm3 import sm3, sm3_file
from forensics.errors import (
    DuplicateContentError,
    ForensicsError,
    LibraryError,
    MediaError,
    ReadOnlyLibraryError,
    UnsupportedMediaError,
)
from forensics.sqlite_ro import open_versioned
from forensics.types import Match, MediaIndex, MediaKind, Registration, detect_kind

#: Which class serves each media kind: ``"module:Class"`` (imported on first use) or a factory
#: taking the index directory. Extend with :func:`register_index`.
INDEX_CLASSES: dict[str, str | Callable[[Path], MediaIndex]] = {
    "image": "forensics.image.index:ImageIndex",
    "audio": "forensics.audio.index:AudioIndex",
    "video": "forensics.video.index:VideoIndex",
}

#: Longest accepted work id.
MAX_WORK_ID = 200
CATALOGUE = "library.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS works (
    work_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    content_digest BLOB NOT NULL,
    fingerprint_digest BLOB,
    metadata TEXT NOT NULL,
    registered_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS library_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_FORMAT = "rongxin-library-v1"


def register_index(kind: str, factory: str | Callable[[Path], MediaIndex]) -> None:
    """Serve ``kind`` with ``factory`` (``"module:Class"`` or a callable taking a directory).

    Examples
    --------
    >>> register_index("video", "forensics.video.index:VideoIndex")
    >>> INDEX_CLASSES.pop("video")
    'forensics.video.index:VideoIndex'
    """
    if kind not in ("image", "audio", "video"):
        raise ValueError(f"unknown media kind {kind!r}; use 'image', 'audio' or 'video'")
    INDEX_CLASSES[kind] = factory


def _accepts_readonly(factory: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return "readonly" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _check_work_id(work_id: str) -> None:
    if not isinstance(work_id, str) or not work_id.strip():
        raise LibraryError("a work id must be a non-empty string")
    if len(work_id) > MAX_WORK_ID or any(ord(c) < 32 for c in work_id):
        raise LibraryError(
            f"work id {work_id[:40]!r} is too long or holds control characters; "
            f"use at most {MAX_WORK_ID} printable characters"
        )


def array_digest(image: NDArray[np.generic]) -> bytes:
    """SM3 over an array's dtype, shape and bytes: the content digest of an in-memory image.

    Examples
    --------
    >>> import numpy as np
    >>> array_digest(np.zeros((2, 2), np.uint8)) != array_digest(np.zeros((2, 3), np.uint8))
    True
    """
    arr = np.ascontiguousarray(image)
    header = f"{arr.dtype.str}:{','.join(str(s) for s in arr.shape)}:".encode()
    return sm3(header + arr.tobytes())


class Library:
    """A persistent library of registered works.

    Parameters
    ----------
    directory : path
        The library directory; created (with its catalogue) when missing.
    create : bool
        When ``False``, refuse a directory that holds no library.
    readonly : bool
        Open for lookups only (implies ``create=False``): the catalogue and the indexes
        are opened read-only (:func:`forensics.sqlite_ro.connect_readonly`), nothing is
        created or written in the directory, so a library on a read-only medium can be
        searched. :meth:`register` and :meth:`remove` then raise
        :class:`~forensics.errors.ReadOnlyLibraryError`.
    index_options : dict, optional
        Keyword arguments per kind for the index constructors, e.g.
        ``{"image": {"hash_threshold": 50}}``.

    Raises
    ------
    LibraryError
        The directory cannot be created or holds something else; or (``create=False``,
        ``readonly=True``) it holds no library.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        create: bool = True,
        readonly: bool = False,
        index_options: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.readonly = readonly
        catalogue = self.directory / CATALOGUE
        if (readonly or not create) and not catalogue.is_file():
            raise LibraryError(f"{self.directory} holds no work library; create one with `rongxin works add`")
        if self.directory.exists() and not self.directory.is_dir():
            raise LibraryError(f"{self.directory} is a file; give a directory for the library")
        try:
            self._db, fmt = open_versioned(
                catalogue, schema=_SCHEMA, meta_table="library_meta", fmt=_FORMAT, readonly=readonly
            )
        except sqlite3.DatabaseError as exc:
            raise LibraryError(f"{catalogue} is not a usable library catalogue: {exc}") from exc
        except OSError as exc:
            raise LibraryError(f"cannot create the library in {self.directory}: {exc}") from exc
        if fmt != _FORMAT:
            self._db.close()
            raise LibraryError(f"{catalogue} was written by another format ({fmt}); use a new directory")
        self._index_options = dict(index_options or {})
        self._indexes: dict[str, MediaIndex] = {}
        self._lock = threading.RLock()
        self._closed = False

    @classmethod
    def open(cls, directory: str | os.PathLike[str], *, readonly: bool = False, **options: Any) -> Library:
        """An existing library (never creates one); ``readonly=True`` for lookups only.

        Parameters
        ----------
        directory : path
            A directory holding a library.
        readonly : bool
            See the class's parameters.
        **options
            Further keyword arguments of the constructor (``index_options``).

        Raises
        ------
        LibraryError
            ``directory`` holds no library.

        Examples
        --------
        >>> import tempfile, pathlib, numpy as np
        >>> d = pathlib.Path(tempfile.mkdtemp()) / "lib"
        >>> Library(d).close()
        >>> with Library.open(d, readonly=True) as lib:
        ...     len(lib), lib.readonly
        (0, True)
        >>> Library.open(d.parent / "typo")
        Traceback (most recent call last):
        ...
        forensics.errors.LibraryError: ... holds no work library; create one with `rongxin works add`
        """
        return cls(directory, create=False, readonly=readonly, **options)

    # -- indexes -----------------------------------------------------------------------------

    def index(self, kind: str) -> MediaIndex:
        """The index serving ``kind``, opened on first use.

        Raises
        ------
        UnsupportedMediaError
            No index is registered for ``kind`` or it cannot be imported here.
        """
        with self._lock:
            self._check_open()
            opened = self._indexes.get(kind)
            if opened is not None:
                return opened
            factory = INDEX_CLASSES.get(kind)
            if factory is None:
                raise UnsupportedMediaError(
                    f"this installation has no {kind} index; {kind} works cannot be registered or "
                    "identified yet"
                )
            if isinstance(factory, str):
                module_name, _, class_name = factory.partition(":")
                try:
                    cls = getattr(importlib.import_module(module_name), class_name)
                except (ImportError, AttributeError) as exc:
                    raise UnsupportedMediaError(
                        f"the {kind} index ({factory}) is not installed: {exc}; install its "
                        "dependencies or register only other kinds of media"
                    ) from exc
                factory = cast(Callable[[Path], MediaIndex], cls)
            options = dict(self._index_options.get(kind, {}))
            where = self.directory / kind
            if self.readonly:
                if not where.is_dir():
                    raise LibraryError(
                        f"{self.directory} holds no {kind} index; nothing to look up in it read-only"
                    )
                if _accepts_readonly(factory):
                    options["readonly"] = True
            opened = factory(where, **options) if options else factory(where)
            attach_audio = getattr(opened, "attach_audio", None)
            if kind != "audio" and attach_audio is not None:
                attach_audio(self._soundtrack_index)
            self._indexes[kind] = opened
            return opened

    def _soundtrack_index(self) -> MediaIndex | None:
        """The audio index, for an index that registers and searches soundtracks; ``None`` when a
        read-only library has none."""
        if self.readonly and not (self.directory / "audio").is_dir():
            return None
        return self.index("audio")

    # -- works -------------------------------------------------------------------------------

    def register(
        self,
        source: str | os.PathLike[str] | NDArray[np.generic],
        work_id: str,
        metadata: dict[str, Any] | None = None,
    ) -> Registration:
        """Fingerprint ``source`` and add it to the library as ``work_id``.

        Parameters
        ----------
        source : path or numpy array
            A media file (kind detected from its content) or an image array (RGB).
        work_id : str
            Unique in the library.
        metadata : dict, optional
            JSON-serializable data kept with the work.

        Returns
        -------
        Registration
            With the SM3 digests of the content and of the fingerprint.

        Raises
        ------
        LibraryError
            The id is taken or invalid, or the metadata is not JSON.
        UnsupportedMediaError
            ``source`` is a video file and no video index is registered: the message gives
            the ffmpeg command that extracts the soundtrack, to register as audio.
        DuplicateContentError
            The same content (file bytes, or array) is already registered, under any id.
        ReadOnlyLibraryError
            The library was opened read-only.
        MediaError, UnsupportedMediaError
            The media cannot be fingerprinted.
        """
        _check_work_id(work_id)
        meta = dict(metadata or {})
        try:
            meta_json = json.dumps(meta, sort_keys=True, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise LibraryError(f"metadata of {work_id!r} is not JSON-serializable: {exc}") from exc
        self._check_writable("register works")
        kind, _, path = self._inspect(source, digest=False)
        if kind == "video" and path is not None and "video" not in INDEX_CLASSES:
            raise UnsupportedMediaError(
                f"{path}: video works cannot be registered yet; register the programme's soundtrack as "
                f"audio: ffmpeg -i {shlex.quote(str(path))} -vn soundtrack.flac, then add soundtrack.flac"
            )
        kind, content_digest, path = self._inspect(source)
        index = self.index(kind)
        registered_at = _now_rfc3339()
        with self._lock:
            existing = self.find_content(content_digest)
            if existing is not None:
                raise DuplicateContentError(
                    f"this content is already registered as {existing.work_id!r} on "
                    f"{existing.registered_at}; not registered again",
                    existing.work_id,
                    existing.registered_at,
                )
            try:
                with self._db:
                    self._db.execute(
                        "INSERT INTO works (work_id, kind, content_digest, fingerprint_digest, metadata, "
                        "registered_at) VALUES (?, ?, ?, NULL, ?, ?)",
                        (work_id, kind, content_digest, meta_json, registered_at),
                    )
            except sqlite3.IntegrityError:
                raise LibraryError(
                    f"work id {work_id!r} is already registered; remove it first or choose another id"
                ) from None
            try:
                if path is None:
                    add_array = getattr(index, "add_array", None)
                    if add_array is None:
                        raise UnsupportedMediaError(f"the {kind} index cannot register in-memory arrays")
                    fingerprint_digest = add_array(work_id, source)
                else:
                    fingerprint_digest = index.add(work_id, path)
                with self._db:
                    self._db.execute(
                        "UPDATE works SET fingerprint_digest = ? WHERE work_id = ?",
                        (fingerprint_digest, work_id),
                    )
            except BaseException:
                with self._db:
                    self._db.execute("DELETE FROM works WHERE work_id = ?", (work_id,))
                raise
        return Registration(work_id, kind, content_digest, fingerprint_digest, meta, registered_at)

    def identify(self, source: str | os.PathLike[str] | NDArray[np.generic], top_k: int = 5) -> list[Match]:
        """Registered works found in ``source``, best first; empty when none passes the threshold.

        A video file, while no video index is registered, is identified by its soundtrack:
        its first audio stream is decoded (streamed through ffmpeg, in bounded memory, as
        any audio query) and matched against the audio works. Those matches are audio
        matches (``kind == "audio"``, :class:`~forensics.evidence.AudioEvidence` with spans
        in seconds of the video) with :attr:`~forensics.types.Match.query_stream` set to
        ``"audio"``.

        Parameters
        ----------
        source : path or numpy array
            A media file or an image array.
        top_k : int
            Most matches returned.

        Returns
        -------
        list of Match

        Raises
        ------
        UnsupportedMediaError
            A video file and the library holds no audio works, or the video has no audio
            stream (:class:`~forensics.audio.errors.NoAudioStreamError`).
        MediaError
            The file cannot be decoded or fingerprinted.
        """
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        kind, _digest, path = self._inspect(source, digest=False)
        if (
            kind == "video"
            and path is not None
            and ("video" not in INDEX_CLASSES or not self._holds("video"))
        ):
            return self._identify_soundtrack(path, top_k)
        if self.readonly and kind in INDEX_CLASSES and not (self.directory / kind).is_dir():
            return []  # no work of this kind was ever registered, and nothing may be created
        index = self.index(kind)
        if path is None:
            identify_array = getattr(index, "identify_array", None)
            if identify_array is None:
                raise UnsupportedMediaError(f"the {kind} index cannot identify in-memory arrays")
            matches: list[Match] = identify_array(source, top_k)
        else:
            matches = index.identify(path, top_k)
        return self._completed(matches, top_k)

    def _holds(self, kind: str) -> bool:
        """Whether a work of ``kind`` is registered (completed)."""
        with self._lock:
            self._check_open()
            row = self._db.execute(
                "SELECT 1 FROM works WHERE kind = ? AND fingerprint_digest IS NOT NULL LIMIT 1", (kind,)
            ).fetchone()
        return row is not None

    def _identify_soundtrack(self, path: Path, top_k: int) -> list[Match]:
        """The audio works heard in the first audio stream of the video file ``path``."""
        if not self._holds("audio"):
            raise UnsupportedMediaError(
                f"{path}: this library holds no video works, so it identifies video files by their "
                "soundtrack only, and it holds no music to compare the soundtrack with; register music "
                "first (rongxin works add song.flac), or programmes (rongxin works add programme.mp4)"
            )
        index = self.index("audio")
        from forensics.audio.errors import NoAudioStreamError  # importable: the audio index is

        try:
            matches = index.identify(path, top_k)
        except NoAudioStreamError as exc:
            raise NoAudioStreamError(
                f"{path}: this library holds no video works, so it identifies video files by their "
                "soundtrack only, and this file has no audio stream"
            ) from exc
        return [dataclasses.replace(m, query_stream="audio") for m in self._completed(matches, top_k)]

    def _completed(self, matches: list[Match], top_k: int) -> list[Match]:
        """``matches`` of completed works (registration finished), at most ``top_k``."""
        if not matches:
            return []
        complete = self._complete_works([m.work_id for m in matches])
        return [m for m in matches if m.work_id in complete][:top_k]

    def remove(self, work_id: str) -> None:
        """Remove ``work_id`` from its index and the catalogue.

        Raises
        ------
        LibraryError
            The work is not registered.
        ReadOnlyLibraryError
            The library was opened read-only.
        """
        self._check_writable("remove works")
        with self._lock:
            self._check_open()
            row = self._db.execute("SELECT kind FROM works WHERE work_id = ?", (work_id,)).fetchone()
            if row is None:
                raise LibraryError(f"no work {work_id!r} in {self.directory}; nothing removed")
            self.index(row[0]).remove(work_id)
            with self._db:
                self._db.execute("DELETE FROM works WHERE work_id = ?", (work_id,))

    def get(self, work_id: str) -> Registration | None:
        """The registration of ``work_id``, or ``None``."""
        with self._lock:
            self._check_open()
            row = self._db.execute(
                "SELECT work_id, kind, content_digest, fingerprint_digest, metadata, registered_at "
                "FROM works WHERE work_id = ? AND fingerprint_digest IS NOT NULL",
                (work_id,),
            ).fetchone()
        return None if row is None else self._registration(row)

    def work(self, work_id: str) -> Registration:
        """The registration of ``work_id``: kind, digests, metadata and registration time.

        Raises
        ------
        LibraryError
            No work ``work_id`` is registered.

        Examples
        --------
        >>> import tempfile, pathlib, numpy as np
        >>> img = (np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)
        >>> with Library(pathlib.Path(tempfile.mkdtemp())) as lib:
        ...     _ = lib.register(img, "w1", {"owner": "A"})
        ...     w = lib.work("w1")
        >>> w.kind, w.metadata, len(w.content_digest), w.registered_at.endswith("Z")
        ('image', {'owner': 'A'}, 32, True)
        """
        found = self.get(work_id)
        if found is None:
            raise LibraryError(f"no work {work_id!r} in {self.directory}")
        return found

    def find_content(self, content_digest: bytes) -> Registration | None:
        """The work registered with this content digest (SM3 of the file's bytes), or ``None``.

        Examples
        --------
        >>> import tempfile, pathlib, numpy as np
        >>> img = (np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)
        >>> with Library(pathlib.Path(tempfile.mkdtemp())) as lib:
        ...     reg = lib.register(img, "w1")
        ...     lib.find_content(reg.content_digest).work_id, lib.find_content(bytes(32))
        ('w1', None)
        """
        with self._lock:
            self._check_open()
            row = self._db.execute(
                "SELECT work_id, kind, content_digest, fingerprint_digest, metadata, registered_at "
                "FROM works WHERE content_digest = ? AND fingerprint_digest IS NOT NULL "
                "ORDER BY registered_at, work_id LIMIT 1",
                (content_digest,),
            ).fetchone()
        return None if row is None else self._registration(row)

    def works(self) -> Iterator[Registration]:
        """Every registered work, by id.

        Examples
        --------
        >>> import tempfile, pathlib, numpy as np
        >>> rng = np.random.default_rng(2)
        >>> with Library(pathlib.Path(tempfile.mkdtemp())) as lib:
        ...     for name in ("b", "a"):
        ...         _ = lib.register((rng.random((64, 64, 3)) * 255).astype(np.uint8), name)
        ...     [(w.work_id, w.kind) for w in lib.works()]
        [('a', 'image'), ('b', 'image')]
        """
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                "SELECT work_id, kind, content_digest, fingerprint_digest, metadata, registered_at "
                "FROM works WHERE fingerprint_digest IS NOT NULL ORDER BY work_id"
            ).fetchall()
        return (self._registration(r) for r in rows)

    def __len__(self) -> int:
        with self._lock:
            self._check_open()
            row = self._db.execute(
                "SELECT COUNT(*) FROM works WHERE fingerprint_digest IS NOT NULL"
            ).fetchone()
        return int(row[0])

    def __contains__(self, work_id: object) -> bool:
        return isinstance(work_id, str) and self.get(work_id) is not None

    def stats(self) -> dict[str, Any]:
        """Works per kind, each open-able index's statistics, and the library's size on disk."""
        with self._lock:
            self._check_open()
            per_kind = dict(
                self._db.execute(
                    "SELECT kind, COUNT(*) FROM works WHERE fingerprint_digest IS NOT NULL GROUP BY kind"
                ).fetchall()
            )
            indexes: dict[str, Any] = {}
            for kind in per_kind:
                try:
                    indexes[kind] = self.index(kind).stats()
                except ForensicsError as exc:
                    indexes[kind] = {"error": str(exc)}
        size = sum(p.stat().st_size for p in self.directory.rglob("*") if p.is_file())
        return {
            "directory": str(self.directory),
            "works": sum(per_kind.values()),
            "works_by_kind": per_kind,
            "indexes": indexes,
            "bytes_on_disk": size,
        }

    def close(self) -> None:
        """Close every open index and the catalogue (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                for index in self._indexes.values():
                    index.close()
            finally:
                self._indexes.clear()
                self._db.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- helpers -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise LibraryError("the library is closed; open it again")

    def _check_writable(self, what: str) -> None:
        self._check_open()
        if self.readonly:
            raise ReadOnlyLibraryError(
                f"the library {self.directory} was opened read-only; cannot {what} (open it writable)"
            )

    def _inspect(
        self, source: str | os.PathLike[str] | NDArray[np.generic], digest: bool = True
    ) -> tuple[MediaKind, bytes, Path | None]:
        if isinstance(source, np.ndarray):
            return "image", array_digest(source) if digest else b"", None
        path = Path(os.fspath(source))
        if path.is_dir():
            raise MediaError(f"{path} is a directory; give a media file")
        kind = detect_kind(path)
        if not digest:
            return kind, b"", path
        try:
            return kind, sm3_file(path), path
        except CryptoError as exc:
            raise MediaError(str(exc)) from exc

    def _complete_works(self, work_ids: list[str]) -> set[str]:
        with self._lock:
            placeholders = ",".join("?" * len(work_ids))
            rows = self._db.execute(
                "SELECT work_id FROM works WHERE fingerprint_digest IS NOT NULL "
                f"AND work_id IN ({placeholders})",
                work_ids,
            ).fetchall()
        return {r[0] for r in rows}

    @staticmethod
    def _registration(row: tuple[Any, ...]) -> Registration:
        return Registration(
            work_id=row[0],
            kind=row[1],
            content_digest=bytes(row[2]),
            fingerprint_digest=bytes(row[3]),
            metadata=json.loads(row[4]),
            registered_at=row[5],
        )
