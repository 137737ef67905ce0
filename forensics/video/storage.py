"""The video index on disk: a SQLite catalogue and one code segment per work.

Layout::

    video.sqlite         catalogue (WAL): works (id, segment file, frames, rate, digest,
                         whether the soundtrack was registered), settings (format,
                         threshold, calibration), a generation counter
    seg-<token>.npy      one work's frames: (n, 33 × views) uint8 — per view (the frame's
                         content, then its centre) 32 hash bytes and a flag byte (bit 0:
                         the view has detail)
    lock                 writers hold an exclusive flock on it

A registration writes its segment to a temporary name, flushes it to disk, renames it,
then commits the catalogue row in one transaction; a crash at any point leaves either the
old state or the new one (a segment no row names is deleted by the next writer). Readers
open the catalogue read-only and reload when the generation counter moved. A segment that
is missing, truncated or does not match its row raises :class:`VideoIndexError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from forensics.image.phash import HASH_BYTES
from forensics.sqlite_ro import connect_readonly
from forensics.video.errors import VideoIndexError
from forensics.video.fingerprint import VideoFingerprint

__all__ = ["FORMAT", "Catalogue", "WorkRow"]

FORMAT = "rongxin-video-index-v1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS works (
    row INTEGER PRIMARY KEY AUTOINCREMENT,
    work_id TEXT NOT NULL UNIQUE,
    segment TEXT NOT NULL,
    frames INTEGER NOT NULL,
    rate REAL NOT NULL,
    digest BLOB NOT NULL,
    sound INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class WorkRow:
    """One registered work: catalogue row, id, segment file, frames, rate, digest, soundtrack flag."""

    row: int
    work_id: str
    segment: str
    frames: int
    rate: float
    digest: bytes
    sound: bool


class Catalogue:
    """The catalogue and segments of a video index directory.

    Parameters
    ----------
    directory : Path
        The index directory (created unless ``readonly``).
    readonly : bool
        Open the catalogue read-only and never write.

    Raises
    ------
    VideoIndexError
        The directory or catalogue is unusable or of another format.
    """

    def __init__(self, directory: Path, *, readonly: bool = False) -> None:
        self.directory = directory
        self.readonly = readonly
        db = directory / "video.sqlite"
        try:
            if readonly:
                if not db.is_file():
                    raise VideoIndexError(f"{directory} holds no video index")
                self._db = connect_readonly(db)
            else:
                directory.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(db, timeout=30.0, check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                with self._db:
                    self._db.executescript(_SCHEMA)
                    self._db.execute("INSERT OR IGNORE INTO settings VALUES ('format', ?)", (FORMAT,))
                    self._db.execute("INSERT OR IGNORE INTO settings VALUES ('generation', '0')")
            fmt = self.get("format")
        except sqlite3.DatabaseError as exc:
            raise VideoIndexError(f"{db} is not a usable video index catalogue: {exc}") from exc
        except OSError as exc:
            raise VideoIndexError(f"cannot open the video index in {directory}: {exc}") from exc
        if fmt != FORMAT:
            self._db.close()
            raise VideoIndexError(f"{db} was written by another format ({fmt}); use a new library directory")
        if not readonly:
            self._sweep()

    # -- settings ---------------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        """A setting, or ``None``."""
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_many(self, values: dict[str, str]) -> None:
        """Store settings in one transaction (and move the generation on)."""
        self._check_writable()
        with self._lock(), self._db:
            for k, v in values.items():
                self._db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (k, v))
            self._bump()

    def generation(self) -> int:
        """A counter every committed change moves on."""
        try:
            return int(self.get("generation") or 0)
        except sqlite3.DatabaseError as exc:
            raise VideoIndexError(f"the video index catalogue in {self.directory} is damaged: {exc}") from exc

    # -- works ------------------------------------------------------------------------------

    def rows(self) -> list[WorkRow]:
        """Every registered work, by row."""
        try:
            got = self._db.execute(
                "SELECT row, work_id, segment, frames, rate, digest, sound FROM works ORDER BY row"
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise VideoIndexError(f"the video index catalogue in {self.directory} is damaged: {exc}") from exc
        return [WorkRow(r[0], r[1], r[2], int(r[3]), float(r[4]), bytes(r[5]), bool(r[6])) for r in got]

    def load(self, row: WorkRow) -> list[tuple[NDArray[np.uint8], NDArray[np.bool_]]]:
        """The codes and validity of each view of one work, checked against its row."""
        path = self.directory / row.segment
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise VideoIndexError(
                f"segment {path} of work {row.work_id!r} is missing or damaged ({exc}); remove the work "
                "and register it again"
            ) from exc
        width = HASH_BYTES + 1
        if (
            data.dtype != np.uint8
            or data.ndim != 2
            or data.shape[0] != row.frames
            or data.shape[1] not in (width, 2 * width)
        ):
            raise VideoIndexError(
                f"segment {path} of work {row.work_id!r} holds {data.dtype} {data.shape}, not the "
                f"{row.frames} frames its catalogue row says; remove the work and register it again"
            )
        # the codes are views of the segment's rows, not copies: opening a large index
        # copied them all (most of its time); a search copies the rows it compares anyway
        return [
            (data[:, v : v + HASH_BYTES], (data[:, v + HASH_BYTES] & 1).astype(bool))
            for v in range(0, data.shape[1], width)
        ]

    def add(self, work_id: str, fp: VideoFingerprint, digest: bytes, sound: bool) -> None:
        """Write ``fp``'s segment, then commit its row (replacing an earlier one of ``work_id``)."""
        self._check_writable()
        name = f"seg-{secrets.token_hex(8)}.npy"
        parts = [fp.codes, fp.valid.astype(np.uint8)[:, None]]
        if fp.centre is not None and fp.centre_valid is not None:
            parts += [fp.centre, fp.centre_valid.astype(np.uint8)[:, None]]
        data = np.concatenate(parts, axis=1)
        tmp = self.directory / (name + ".tmp")
        with self._lock():
            try:
                with open(tmp, "wb") as fh:
                    np.save(fh, data, allow_pickle=False)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.directory / name)
                old = self._db.execute("SELECT segment FROM works WHERE work_id = ?", (work_id,)).fetchone()
                with self._db:
                    self._db.execute("DELETE FROM works WHERE work_id = ?", (work_id,))
                    self._db.execute(
                        "INSERT INTO works (work_id, segment, frames, rate, digest, sound) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (work_id, name, len(fp.codes), fp.rate, digest, int(sound)),
                    )
                    self._bump()
            except BaseException:
                for leftover in (tmp, self.directory / name):
                    with contextlib.suppress(OSError):
                        if not self._named(leftover.name):
                            leftover.unlink()
                raise
            if old is not None:
                with contextlib.suppress(OSError):
                    (self.directory / old[0]).unlink()

    def set_sound(self, work_id: str, sound: bool) -> None:
        """Record whether ``work_id``'s soundtrack is in the audio index."""
        self._check_writable()
        with self._lock(), self._db:
            self._db.execute("UPDATE works SET sound = ? WHERE work_id = ?", (int(sound), work_id))
            self._bump()

    def remove(self, work_id: str) -> bool:
        """Delete ``work_id``'s row, then its segment; ``False`` when it was not registered."""
        self._check_writable()
        with self._lock():
            row = self._db.execute("SELECT segment FROM works WHERE work_id = ?", (work_id,)).fetchone()
            if row is None:
                return False
            with self._db:
                self._db.execute("DELETE FROM works WHERE work_id = ?", (work_id,))
                self._bump()
            with contextlib.suppress(OSError):
                (self.directory / row[0]).unlink()
        return True

    def bytes_on_disk(self) -> int:
        """Size of the catalogue and segments (not the saved search, a cache)."""
        return sum(
            p.stat().st_size
            for p in self.directory.iterdir()
            if p.is_file() and not p.name.startswith("search-")
        )

    def close(self) -> None:
        """Close the catalogue."""
        self._db.close()

    # -- helpers ----------------------------------------------------------------------------

    def _named(self, segment: str) -> bool:
        return self._db.execute("SELECT 1 FROM works WHERE segment = ?", (segment,)).fetchone() is not None

    def _bump(self) -> None:
        self._db.execute(
            "UPDATE settings SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'generation'"
        )

    def _sweep(self) -> None:
        """Delete segments (and temporary files) that no catalogue row names: a crash's leftovers."""
        with self._lock():
            named = {r.segment for r in self.rows()}
            for p in self.directory.glob("seg-*"):
                if p.name not in named:
                    with contextlib.suppress(OSError):
                        p.unlink()

    def _check_writable(self) -> None:
        if self.readonly:
            raise VideoIndexError("the video index was opened read-only; open it writable to change it")

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.directory / "lock", "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
