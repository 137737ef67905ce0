"""A case's status workflow, kept by the platform beside the scan databases.

A case found by a scan starts ``new``; legal staff confirm it, send a notice, and
resolve it, or dismiss it. :data:`TRANSITIONS` is the whole workflow; :class:`CaseStates`
stores each case's status and the history of its transitions (``data_dir/cases.sqlite``).

Examples
--------
>>> can_move("new", "confirmed"), can_move("new", "resolved"), can_move("dismissed", "new")
(True, False, False)
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from rongxin.platform.config import PlatformError

STATUSES: Final[tuple[str, ...]] = ("new", "confirmed", "notice_sent", "resolved", "dismissed")
"""Every status a case can have, in workflow order."""

TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "new": frozenset({"confirmed", "dismissed"}),
    "confirmed": frozenset({"notice_sent", "dismissed"}),
    "notice_sent": frozenset({"resolved", "dismissed"}),
    "resolved": frozenset(),
    "dismissed": frozenset(),
}
"""Status -> the statuses it may move to."""

LABELS: Final[dict[str, str]] = {
    "new": "New",
    "confirmed": "Confirmed",
    "notice_sent": "Notice sent",
    "resolved": "Resolved",
    "dismissed": "Dismissed",
}
"""Status -> its English label (translated by :mod:`rongxin.platform.i18n`)."""

NOTE_CHARS: Final[int] = 2000


class WorkflowError(PlatformError):
    """A transition the workflow does not allow, or an unknown status."""


def can_move(current: str, target: str) -> bool:
    """Whether a case in ``current`` may move to ``target``."""
    return target in TRANSITIONS.get(current, frozenset())


@dataclass(frozen=True)
class Transition:
    """One recorded status change."""

    status: str
    previous: str
    user: str
    note: str
    at: float


class CaseStates:
    """Status and history of every case, keyed by (scan id, case id).

    Parameters
    ----------
    path : path
        The SQLite database (created when missing).
    """

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS history (scan TEXT NOT NULL, case_id INTEGER NOT NULL, "
            "status TEXT NOT NULL, previous TEXT NOT NULL, user TEXT NOT NULL, note TEXT NOT NULL, "
            "at REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS history_case ON history (scan, case_id)")

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def status(self, scan: str, case_id: int) -> str:
        """The case's current status (``new`` when never moved)."""
        with self._lock:
            row = self._db.execute(
                "SELECT status FROM history WHERE scan = ? AND case_id = ? ORDER BY rowid DESC LIMIT 1",
                (scan, case_id),
            ).fetchone()
        return str(row[0]) if row else "new"

    def statuses(self, scan: str) -> dict[int, str]:
        """Every moved case of ``scan`` -> its current status."""
        with self._lock:
            rows = self._db.execute(
                "SELECT case_id, status FROM history WHERE scan = ? ORDER BY rowid", (scan,)
            ).fetchall()
        return {int(c): str(s) for c, s in rows}

    def history(self, scan: str, case_id: int) -> list[Transition]:
        """The case's transitions, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT status, previous, user, note, at FROM history WHERE scan = ? AND case_id = ? "
                "ORDER BY rowid",
                (scan, case_id),
            ).fetchall()
        return [Transition(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def move(self, scan: str, case_id: int, target: str, user: str, note: str = "") -> str:
        """Move the case to ``target``; returns the previous status.

        Raises
        ------
        WorkflowError
            ``target`` is unknown or not reachable from the current status.
        """
        if target not in STATUSES:
            raise WorkflowError(f"unknown status {target[:40]!r}")
        with self._lock:
            row = self._db.execute(
                "SELECT status FROM history WHERE scan = ? AND case_id = ? ORDER BY rowid DESC LIMIT 1",
                (scan, case_id),
            ).fetchone()
            current = str(row[0]) if row else "new"
            if not can_move(current, target):
                raise WorkflowError(f"a {current} case cannot become {target}")
            self._db.execute(
                "INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?)",
                (scan, case_id, target, current, user, note[:NOTE_CHARS], time.time()),
            )
        return current
