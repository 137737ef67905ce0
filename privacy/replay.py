"""Replay protection for signed queries: a time window and the query ids already seen.

An agency accepts a query only when its signed timestamp is within ``window_ms`` of the
agency's clock and its query id (the requester's random nonce) was not seen before. Ids
are remembered for twice the window — older queries fail the time check anyway — in
memory, or in a small SQLite file when the agency has a state directory, so that a
restart does not reopen the window.

Examples
--------
>>> guard = ReplayGuard()
>>> guard.check("q1", 1_000, now_ms=1_500)
>>> guard.check("q1", 1_000, now_ms=1_600)
Traceback (most recent call last):
...
privacy.errors.IdentityError: query id 'q1' was already used (a replayed query): sign each query afresh
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from privacy.errors import IdentityError

WINDOW_MS = 120_000
"""How far a query's timestamp may be from the agency's clock, either way."""
MAX_ENTRIES = 1_000_000
"""Query ids remembered at once; beyond it new queries are refused, never an id forgotten early."""


def clock_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


class ReplayGuard:
    """Seen query ids within the window (optionally persisted to ``path``)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        window_ms: int = WINDOW_MS,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.window_ms = window_ms
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._memory: dict[str, int] = {}
        self.path = None if path is None else Path(path)
        if self.path is not None:
            with self._connect() as con:
                con.execute("CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, expiry INTEGER NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)

    def check(self, query_id: str, timestamp_ms: int, now_ms: int | None = None) -> None:
        """Accept ``query_id`` once; :class:`IdentityError` for a stale, future or replayed query."""
        now = clock_ms() if now_ms is None else now_ms
        if abs(now - timestamp_ms) > self.window_ms:
            raise IdentityError(
                f"the query was signed {abs(now - timestamp_ms) / 1000:.0f} s from this agency's clock; "
                f"at most {self.window_ms // 1000} s are allowed: check the clocks and sign the query afresh"
            )
        expiry = now + 2 * self.window_ms
        with self._lock:
            if self.path is None:
                self._check_memory(query_id, now, expiry)
            else:
                self._check_file(query_id, now, expiry)

    def _replayed(self, query_id: str) -> IdentityError:
        return IdentityError(
            f"query id {query_id!r} was already used (a replayed query): sign each query afresh"
        )

    def _full(self) -> IdentityError:
        return IdentityError("this agency is tracking too many recent queries; retry in a few minutes")

    def _check_memory(self, query_id: str, now: int, expiry: int) -> None:
        for key in [k for k, e in self._memory.items() if e <= now]:
            del self._memory[key]
        if query_id in self._memory:
            raise self._replayed(query_id)
        if len(self._memory) >= self.max_entries:
            raise self._full()
        self._memory[query_id] = expiry

    def _check_file(self, query_id: str, now: int, expiry: int) -> None:
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("DELETE FROM seen WHERE expiry <= ?", (now,))
            if con.execute("SELECT 1 FROM seen WHERE id = ?", (query_id,)).fetchone():
                con.execute("ROLLBACK")
                raise self._replayed(query_id)
            (count,) = con.execute("SELECT COUNT(*) FROM seen").fetchone()
            if count >= self.max_entries:
                con.execute("ROLLBACK")
                raise self._full()
            con.execute("INSERT INTO seen (id, expiry) VALUES (?, ?)", (query_id, expiry))
            con.execute("COMMIT")
        finally:
            con.close()
