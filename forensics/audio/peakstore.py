"""Reference peaks of registered works, kept for peak-level verification of candidates.

The hash index finds candidate alignments; :func:`forensics.audio.match.verify` then
checks each one against the work's own spectral peaks. Those are kept here, one row per
work in the index's SQLite catalogue, written in the same transaction as the work's
catalogue row (so a crash never leaves one without the other) and deleted with it.

A peak costs 6 bytes: its time as a uint32 in sixteenths of a frame and its frequency
as a uint16 in 1/256 semitone above ``fmin`` — about 0.26 MB per hour of audio at 12
peaks a second.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict

import numpy as np

from forensics.audio.errors import AudioIndexError
from forensics.audio.landmarks import Peaks

__all__ = ["SCHEMA", "PeakStore", "decode_peaks", "encode_peaks"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS peaks (
    idx INTEGER PRIMARY KEY,
    t BLOB NOT NULL,
    lf BLOB NOT NULL,
    frames INTEGER NOT NULL
);
"""

_T_SCALE = 16.0
_F_SCALE = 256.0
_MAX_T = float((1 << 32) - 1)
_MAX_F = float((1 << 16) - 1)


def encode_peaks(peaks: Peaks) -> tuple[bytes, bytes]:
    """The stored form of ``peaks``: (times, frequencies) as little-endian bytes.

    Examples
    --------
    >>> import numpy as np
    >>> p = Peaks(np.array([1.5, 40.25]), np.array([0.0, 12.5]), np.ones(2), 50)
    >>> q = decode_peaks(*encode_peaks(p), frames=50)
    >>> q.t.tolist(), q.lf.tolist(), q.frames
    ([1.5, 40.25], [0.0, 12.5], 50)
    """
    t = np.clip(np.rint(np.asarray(peaks.t) * _T_SCALE), 0, _MAX_T).astype("<u4")
    lf = np.clip(np.rint(np.asarray(peaks.lf) * _F_SCALE), 0, _MAX_F).astype("<u2")
    return t.tobytes(), lf.tobytes()


def decode_peaks(t: bytes, lf: bytes, frames: int) -> Peaks:
    """The inverse of :func:`encode_peaks` (strength is not stored: ones).

    Raises
    ------
    AudioIndexError
        The two arrays disagree in length (a damaged row).
    """
    if len(t) % 4 or len(lf) % 2 or len(t) // 4 != len(lf) // 2:
        raise AudioIndexError(
            "a stored peak row is damaged (time and frequency arrays differ); re-register the work"
        )
    ts = np.frombuffer(t, dtype="<u4").astype(np.float64) / _T_SCALE
    fs = np.frombuffer(lf, dtype="<u2").astype(np.float64) / _F_SCALE
    return Peaks(ts, fs, np.ones(len(ts)), int(frames))


class PeakStore:
    """Per-work reference peaks in a SQLite table, with a small cache of decoded rows.

    Parameters
    ----------
    db : sqlite3.Connection
        The index's catalogue connection (the caller holds its lock and transactions).
    cache_size : int
        Decoded works kept in memory.

    Examples
    --------
    >>> import sqlite3, numpy as np
    >>> db = sqlite3.connect(":memory:")
    >>> store = PeakStore(db); db.executescript(SCHEMA) and None
    >>> store.put(7, Peaks(np.array([3.0]), np.array([2.0]), np.ones(1), 9))
    >>> store.get(7).t.tolist(), store.get(8)
    ([3.0], None)
    """

    def __init__(self, db: sqlite3.Connection, cache_size: int = 256) -> None:
        self._db = db
        self._cache: OrderedDict[int, Peaks] = OrderedDict()
        self._cache_size = cache_size

    def put(self, idx: int, peaks: Peaks) -> None:
        """Store the peaks of work ``idx`` (inside the caller's transaction)."""
        t, lf = encode_peaks(peaks)
        self._db.execute(
            "INSERT OR REPLACE INTO peaks (idx, t, lf, frames) VALUES (?, ?, ?, ?)",
            (int(idx), t, lf, int(peaks.frames)),
        )
        self._cache.pop(int(idx), None)

    def get(self, idx: int) -> Peaks | None:
        """The peaks of work ``idx``, or ``None`` when none are stored."""
        key = int(idx)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        row = self._db.execute("SELECT t, lf, frames FROM peaks WHERE idx = ?", (key,)).fetchone()
        if row is None:
            return None
        peaks = decode_peaks(bytes(row[0]), bytes(row[1]), int(row[2]))
        self._cache[key] = peaks
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return peaks

    def drop_removed(self) -> int:
        """Delete the rows of works marked removed (inside the caller's transaction)."""
        n = self._db.execute(
            "DELETE FROM peaks WHERE idx IN (SELECT idx FROM works WHERE removed = 1)"
        ).rowcount
        self._cache.clear()
        return int(n)

    def forget_cache(self) -> None:
        """Drop decoded rows (after another process changed the catalogue)."""
        self._cache.clear()
