"""The audio index's catalogue: settings, works and segments in one SQLite database (WAL).

::

    audio.sqlite            settings (format, parameters, thresholds, next frame, generation),
                            works (id, place on the frame axis, digest, segment, removed),
                            segments (name, entries), peaks (each work's reference peaks)
    lock                    writers take an exclusive flock on it

Every work owns a range of a global frame axis (``base`` .. ``base + frames``; 16 ms
frames, 2^32 of them ≈ 2 years of audio), so one uint32 value per landmark names both the
work and the time. The catalogue records which segment of the
:class:`forensics.audio.segments.SegmentStore` holds each work, and a generation counter
that every change bumps, so that readers in other processes notice a writer's changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from forensics.audio.calibration import (
    DEFAULT_FPR_TARGET,
    DEFAULT_THRESHOLDS,
    decode_threshold,
    encode_threshold,
)
from forensics.audio.errors import AudioIndexError
from forensics.audio.landmarks import LandmarkParams, Peaks
from forensics.audio.peakstore import SCHEMA as _PEAK_SCHEMA
from forensics.audio.peakstore import PeakStore
from forensics.audio.rules import WorkTable
from forensics.sqlite_ro import connect_readonly

__all__ = ["FORMAT_VERSION", "Catalogue"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 6
"""Format of the index this code writes."""
_UPGRADABLE = {
    "3": "scores now count reference frames, not single peaks",
    "4": "few-vote candidates are now verified at their hypothesis's speed",
    "5": "scores now add the query spectrum's evidence at the reference's peaks",
}
"""Older formats whose stored data this code reads, and what changed in their scores."""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS works (
    idx INTEGER PRIMARY KEY,
    work_id TEXT NOT NULL,
    base INTEGER NOT NULL,
    frames INTEGER NOT NULL,
    hashes INTEGER NOT NULL,
    digest BLOB NOT NULL,
    added TEXT NOT NULL,
    removed INTEGER NOT NULL DEFAULT 0,
    segment TEXT
);
CREATE INDEX IF NOT EXISTS works_by_id ON works (work_id);
CREATE TABLE IF NOT EXISTS segments (name TEXT PRIMARY KEY, entries INTEGER NOT NULL);
"""


def _in_clause(column: str, values: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """``column IN (?, ...)`` and its arguments, for a SQL ``WHERE``."""
    return f"{column} IN ({', '.join('?' * len(values))})", tuple(values)


class Catalogue:
    """The catalogue database of an audio index directory.

    Opening creates the tables (a new index stores ``params`` and the default thresholds)
    or checks the stored format and parameters.

    Parameters
    ----------
    directory : Path
        The index directory (it must exist).
    params : LandmarkParams, optional
        The parameters a new index is made with; an existing index must have been made
        with them when given.
    threshold : str, optional
        A threshold to store (:func:`forensics.audio.calibration.encode_threshold`).

    Attributes
    ----------
    params : LandmarkParams
        The index's parameters.
    created : bool
        This opening created the index.
    peaks : PeakStore
        The works' reference peaks (in the same database).
    lock : threading.RLock
        Held by every reader and writer of this process.

    Raises
    ------
    AudioIndexError
        Not a usable catalogue, of another format, or made with other parameters.

    Examples
    --------
    >>> import tempfile
    >>> cat = Catalogue(Path(tempfile.mkdtemp()))
    >>> cat.created, cat.generation(), cat.segment_sizes()
    (True, 0, {})
    >>> cat.close()
    """

    def __init__(
        self,
        directory: Path,
        params: LandmarkParams | None = None,
        threshold: str | None = None,
        *,
        readonly: bool = False,
    ) -> None:
        self.directory = directory
        self.lock = threading.RLock()
        self.created = False
        self.readonly = readonly
        if readonly:
            self._open_readonly(params)
            return
        try:
            self._db = sqlite3.connect(directory / "audio.sqlite", check_same_thread=False, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            with self.writer(), self._db:
                self._db.executescript(_SCHEMA + _PEAK_SCHEMA)
                self._migrate_membership()
                self.params = self._init_settings(params)
                if threshold is not None:
                    self.set("threshold", threshold)
        except sqlite3.DatabaseError as exc:
            raise AudioIndexError(
                f"{directory / 'audio.sqlite'} is not a usable audio index ({exc}); "
                "give an empty directory or restore the index from a backup"
            ) from exc
        self.peaks = PeakStore(self._db)

    def _open_readonly(self, params: LandmarkParams | None) -> None:
        """Open an existing, current-format catalogue for lookups only: no writes, no lock file."""
        try:
            self._db = connect_readonly(self.directory / "audio.sqlite")
            stored, fmt = self.get("params"), self.get("format")
        except sqlite3.DatabaseError as exc:
            raise AudioIndexError(
                f"{self.directory / 'audio.sqlite'} cannot be read as an audio index ({exc})"
            ) from exc
        if stored is None or fmt != str(FORMAT_VERSION):
            raise AudioIndexError(
                f"{self.directory} holds no current audio index (format {fmt}); open it writable once "
                "to create or upgrade it"
            )
        self.peaks = PeakStore(self._db)
        try:
            self.params = LandmarkParams(**json.loads(stored))
        except (TypeError, ValueError) as exc:
            raise AudioIndexError(f"the parameters stored in {self.directory} are unreadable: {exc}") from exc
        if params is not None and params != self.params:
            raise AudioIndexError(f"{self.directory} was built with other fingerprint parameters")

    # -- settings -----------------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        """The setting ``key``, or ``None``."""
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set(self, key: str, value: str) -> None:
        """Set ``key`` (inside the caller's :meth:`transaction`)."""
        self._db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))

    def set_many(self, values: dict[str, str]) -> None:
        """Set several settings in one transaction, holding the writer lock."""
        with self.writer(), self._db:
            for key, value in values.items():
                self.set(key, value)

    def table(self, key: str, default: Mapping[float, float]) -> dict[float, float]:
        """The threshold table stored under ``key``, or ``default``."""
        stored = self.get(key)
        return decode_threshold(stored) if stored else dict(default)

    def generation(self) -> int:
        """The change counter: every registration, removal and merge bumps it."""
        return int(self.get("generation") or 0)

    def bump(self) -> None:
        """Count one change (inside the caller's :meth:`transaction`)."""
        self.set("generation", str(self.generation() + 1))

    def _init_settings(self, params: LandmarkParams | None) -> LandmarkParams:
        stored = self.get("params")
        if stored is None:
            self.created = True
            chosen = params or LandmarkParams()
            self.set("format", str(FORMAT_VERSION))
            self.set("params", json.dumps(chosen.to_dict(), sort_keys=True))
            self.set("threshold", encode_threshold(DEFAULT_THRESHOLDS))
            self.set("fpr_target", repr(DEFAULT_FPR_TARGET))
            self.set("next_base", "0")
            self.set("generation", "0")
            return chosen
        old = self.get("format")
        if old in _UPGRADABLE:
            # formats 3 to 5 scored otherwise; their data is valid, their thresholds are not
            log.warning(
                "%s: audio index of format %s upgraded to %d; its decision thresholds were reset to "
                "the defaults (%s); recalibrate if they were calibrated",
                self.directory,
                old,
                FORMAT_VERSION,
                _UPGRADABLE[old],
            )
            self.set("threshold", encode_threshold(DEFAULT_THRESHOLDS))
            self.set("format", str(FORMAT_VERSION))
        if self.get("format") != str(FORMAT_VERSION):
            raise AudioIndexError(
                f"{self.directory} holds an audio index of format {self.get('format')}, this code reads "
                f"format {FORMAT_VERSION}; re-register the works into a new directory"
            )
        try:
            existing = LandmarkParams(**json.loads(stored))
        except (TypeError, ValueError) as exc:
            raise AudioIndexError(f"the parameters stored in {self.directory} are unreadable: {exc}") from exc
        if params is not None and params != existing:
            raise AudioIndexError(
                f"{self.directory} was built with other fingerprint parameters; open it without "
                "params or use a new directory"
            )
        return existing

    def _migrate_membership(self) -> None:
        """Give an index written before segment membership was recorded its ``segment`` column.

        Works of such an index have no recorded segment (NULL); the next merge rewrites
        every segment, which records it.
        """
        columns = {str(r[1]) for r in self._db.execute("PRAGMA table_info(works)")}
        if "segment" not in columns:
            self._db.execute("ALTER TABLE works ADD COLUMN segment TEXT")
        self._db.execute("CREATE INDEX IF NOT EXISTS works_by_segment ON works (segment)")

    # -- locking ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        """Hold this process's lock and the directory's exclusive writer lock (``lock``)."""
        if self.readonly:
            raise AudioIndexError(f"the audio index in {self.directory} was opened read-only")
        with self.lock, open(self.directory / "lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def transaction(self) -> sqlite3.Connection:
        """The connection as a context manager: one transaction, committed or rolled back."""
        return self._db

    # -- reading ------------------------------------------------------------------------------

    def snapshot(self) -> tuple[int, WorkTable, list[str]]:
        """The generation, the works and the segment names (sorted), read in one transaction."""
        self._db.execute("BEGIN")  # one snapshot of works and segments
        try:
            generation = self.generation()
            rows = self._db.execute(
                "SELECT idx, work_id, base, frames, removed FROM works ORDER BY base"
            ).fetchall()
            names = [str(r[0]) for r in self._db.execute("SELECT name FROM segments ORDER BY name")]
        finally:
            self._db.execute("COMMIT")
        works = WorkTable(
            ids=[str(r[1]) for r in rows],
            bases=np.array([int(r[2]) for r in rows], dtype=np.int64),
            frames=np.array([int(r[3]) for r in rows], dtype=np.int64),
            alive=np.array([not r[4] for r in rows], dtype=bool),
            rowids=np.array([int(r[0]) for r in rows], dtype=np.int64),
        )
        return generation, works, names

    def segment_sizes(self) -> dict[str, int]:
        """Entries of each segment, by name."""
        return {str(n): int(e) for n, e in self._db.execute("SELECT name, entries FROM segments")}

    def merge_backlog(self) -> tuple[int, int]:
        """Entries of removed works not merged away yet, and works whose segment is not recorded."""
        removed, unknown = self._db.execute(
            "SELECT COALESCE(SUM(CASE WHEN removed = 1 THEN hashes END), 0), "
            "COUNT(CASE WHEN segment IS NULL THEN 1 END) FROM works"
        ).fetchone()
        return int(removed), int(unknown)

    def live_entries(self, segments: Sequence[str] | None = None) -> int:
        """Landmarks of the registered works held by ``segments`` (all segments when ``None``)."""
        where, args = ("1", ()) if segments is None else _in_clause("segment", segments)
        return int(
            self._db.execute(
                f"SELECT COALESCE(SUM(hashes), 0) FROM works WHERE removed = 0 AND {where}", args
            ).fetchone()[0]
        )

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only SQL query on the catalogue, for inspection, tools and tests.

        Examples
        --------
        >>> import tempfile
        >>> cat = Catalogue(Path(tempfile.mkdtemp()))
        >>> cat.query("SELECT value FROM settings WHERE key = ?", ["format"])
        [('6',)]
        >>> cat.close()
        """
        return [tuple(r) for r in self._db.execute(sql, tuple(params)).fetchall()]

    # -- writing (the caller holds :meth:`writer`) ----------------------------------------------

    def record_work(
        self,
        work_id: str,
        base: int,
        frames: int,
        digest: bytes,
        segment: str,
        entries: int,
        peaks: Peaks,
        next_base: int,
    ) -> bool:
        """Record a registration held whole by the new ``segment``, in one transaction.

        An earlier registration of ``work_id`` is marked removed; returns whether there was one.
        """
        with self._db:
            replaced = self._db.execute(
                "UPDATE works SET removed = 1 WHERE work_id = ? AND removed = 0", (work_id,)
            ).rowcount
            row = self._db.execute(
                "INSERT INTO works (work_id, base, frames, hashes, digest, added, segment) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (work_id, base, frames, entries, digest, datetime.now(UTC).isoformat(), segment),
            ).lastrowid
            if replaced:
                self.peaks.drop_removed()
            if row is not None:
                self.peaks.put(row, peaks)
            self._db.execute("INSERT INTO segments (name, entries) VALUES (?, ?)", (segment, entries))
            self.set("next_base", str(next_base))
            self.bump()
        return bool(replaced)

    def mark_removed(self, work_id: str) -> bool:
        """Mark ``work_id`` removed (its landmarks go at the next merge of its segment)."""
        with self._db:
            n = self._db.execute(
                "UPDATE works SET removed = 1 WHERE work_id = ? AND removed = 0", (work_id,)
            ).rowcount
            if n:
                self.peaks.drop_removed()
                self.bump()
        return bool(n)

    def replace_segments(self, merged: Sequence[str], name: str, entries: int, *, everything: bool) -> None:
        """Swap the ``merged`` segments' rows for segment ``name``, in one transaction.

        Their registered works move to ``name`` (every work when ``everything``); the rows
        of their removed works, whose landmarks the merge dropped, are deleted.
        """
        where, args = ("1", ()) if everything else _in_clause("segment", merged)
        seg_where, seg_args = _in_clause("name", merged)
        with self._db:
            self._db.execute(f"DELETE FROM segments WHERE {seg_where}", seg_args)
            self._db.execute("INSERT INTO segments (name, entries) VALUES (?, ?)", (name, entries))
            self._db.execute(f"UPDATE works SET segment = ? WHERE removed = 0 AND {where}", (name, *args))
            self.peaks.drop_removed()
            self._db.execute(f"DELETE FROM works WHERE removed = 1 AND {where}", args)
            self.bump()

    def close(self) -> None:
        """Close the database."""
        self._db.close()
