"""Checkpoints of a SQLite write-ahead log, off the committing thread.

In WAL mode a commit appends pages to the ``-wal`` file; a *checkpoint* copies them back
into the database file and fsyncs it. SQLite's default runs that checkpoint inside the
commit that pushes the log past 1,000 pages, so that commit takes as long as writing the
pages back at random places of a large database. On a node that holds 100,000
transactions a block's random index and state rows fill the log in three or four blocks,
and every fourth commit on the event loop took 70–120 ms instead of 10–20 ms (measured
with the ledger benchmark's 500 TPS phase, 2026-12-06).

:class:`WalCheckpointer` runs those checkpoints in a thread of its own, on its own short
connection (``PASSIVE``: never waiting for readers or the writer), woken after each
commit and at most every ``min_interval_s``. The committing connection keeps its fsync per
commit: what a commit makes durable does not change, only who copies the log back.

The log restarts from its beginning at a commit that finds every page in it copied. The
committing connection raises its automatic checkpoint from 1,000 pages to a limit the
thread normally keeps the log far below (``PRAGMA wal_autocheckpoint``): when commits
follow each other faster than the thread checkpoints (a burst of large blocks), the log
still stops growing there, as with SQLite's default.

Examples
--------
>>> import sqlite3, tempfile, os
>>> d = tempfile.mkdtemp()
>>> path = os.path.join(d, "x.db")
>>> db = sqlite3.connect(path, isolation_level=None)
>>> db.execute("PRAGMA journal_mode=WAL").fetchone()
('wal',)
>>> _ = db.execute("PRAGMA wal_autocheckpoint=0")
>>> _ = db.execute("CREATE TABLE t (x)")
>>> cp = WalCheckpointer(path)
>>> cp.checkpoint()[1] > 0  # pages in the log, all copied (no reader holds them)
True
>>> cp.close(); db.close()
"""

from __future__ import annotations

import sqlite3
import threading

__all__ = ["WalCheckpointer"]


class WalCheckpointer:
    """A thread that checkpoints the write-ahead log of the SQLite database at ``path``.

    Parameters
    ----------
    path : str
        Database file, in WAL mode.
    min_interval_s : float
        At least this long between two checkpoints (each costs an fsync of both files).

    Notes
    -----
    The thread starts on the first :meth:`poke`, so a store that never commits (a reader,
    a test) never has one. It holds a connection only while it checkpoints: the database
    may change its journal mode between runs.
    """

    def __init__(self, path: str, min_interval_s: float = 0.25) -> None:
        self.path = path
        self.min_interval_s = min_interval_s
        self.runs = 0
        """Checkpoints run so far (by the thread or :meth:`checkpoint`)."""
        self.log_pages = 0
        """Pages in the log at the last checkpoint (all, copied or not)."""
        self.error: str | None = None
        """The last checkpoint's error, if it failed (the next one tries again)."""
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_lock = threading.Lock()

    def poke(self) -> None:
        """A transaction committed: checkpoint soon (starts the thread the first time)."""
        if self._stopping.is_set():
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="wal-checkpoint", daemon=True)
            self._thread.start()
        self._wake.set()

    def checkpoint(self) -> tuple[int, int, int]:
        """Run one ``PASSIVE`` checkpoint now, on a connection of its own.

        Returns
        -------
        tuple of int
            SQLite's ``(busy, pages in the log, pages copied)``; ``busy`` is 1 when another
            checkpoint was running.
        """
        with self._run_lock:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            finally:
                conn.close()
            busy, log, copied = (int(x) for x in row)
            self.runs += 1
            if not busy:
                self.log_pages = max(0, log)
            return busy, log, copied

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait()
            if self._stopping.is_set():
                return
            self._wake.clear()
            try:
                self.checkpoint()
                self.error = None
            except sqlite3.Error as exc:  # a busy or closing database: the next poke retries
                self.error = str(exc)
            self._stopping.wait(self.min_interval_s)

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running) and wait for it."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
