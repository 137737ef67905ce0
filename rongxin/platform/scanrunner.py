"""Scans started from the platform: each runs :class:`crawlers.scan.Scanner` in a
background thread against the platform's library, in ``data_dir/scans/ID/``; its database
is ``scan.sqlite`` there, or a schema of the platform's PostgreSQL scan database
(``scan_db`` of ``platform.toml`` or ``RONGXIN_SCAN_DB``; the directory then holds the
pointer ``scan-db.json``).

Progress (the scanner's frontier counts) is kept in memory for the live page and the
WebSocket; a scan directory outlives the process and is listed from disk.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawlers.errors import CrawlError
from crawlers.scan import ScanConfig, Scanner
from crawlers.scandb import POINTER_NAME, holds_scan
from crawlers.store import Case, ScanStore
from rongxin.platform.config import PlatformError

SCAN_ID = re.compile(r"^[0-9]{8}-[0-9a-f]{8}$")
MAX_SEEDS = 50
MAX_PAGES = 100_000


LABELS = {"running": "Running", "done": "Finished", "failed": "Failed", "stored": "Stored"}
"""Scan state -> its English label."""


class ScanRequestError(PlatformError):
    """A scan request the platform refuses (bad seeds, scope or limits; unknown scan)."""


@dataclass
class ScanState:
    """What the platform knows of one scan while it runs."""

    scan_id: str
    state: str = "running"  # running, done, failed
    counts: dict[str, int] = field(default_factory=dict)
    error: str = ""
    started: float = field(default_factory=time.time)


class ScanRunner:
    """Starts scans in background threads and answers their progress and cases.

    Parameters
    ----------
    root : path
        Directory of the scan directories.
    library : path
        The work library scans identify against.
    allowed_internal : tuple of str
        The internal addresses or networks a scan request may ask the SSRF guard to let
        through (``scan_allow`` of ``platform.toml``); any other is refused, so that a
        user of the web application cannot point the crawler at the host's network.
    db : str, optional
        A ``postgresql://`` URI: new scans keep their databases there (one schema each);
        scans already on PostgreSQL are opened with it (it may carry the password, which
        is never stored). ``None``: SQLite files.
    """

    def __init__(
        self,
        root: Path,
        library: Path,
        allowed_internal: tuple[str, ...] = (),
        *,
        db: str | None = None,
        **scanner_kw: Any,
    ) -> None:
        self.root = root
        self.library = library
        self.allowed_internal = frozenset(allowed_internal)
        self.db = db
        self._scanner_kw = scanner_kw
        self._states: dict[str, ScanState] = {}
        self._lock = threading.Lock()

    def start(
        self, seeds: list[str], scope: str, allow: list[str], max_pages: int, depth: int, delay: float
    ) -> str:
        """Create a scan directory and run the scan in a daemon thread; returns its id.

        Raises
        ------
        ScanRequestError
            No seed, a seed that is not http(s), too many seeds, an internal address not in
            ``allowed_internal``, or limits out of range.
        """
        seeds = [s.strip() for s in seeds if s.strip()]
        if not seeds:
            raise ScanRequestError("give at least one seed URL")
        if len(seeds) > MAX_SEEDS:
            raise ScanRequestError(f"at most {MAX_SEEDS} seeds")
        for s in seeds:
            if not s.lower().startswith(("http://", "https://")) or len(s) > 2000:
                raise ScanRequestError("a seed must be an http:// or https:// URL")
        if scope not in ("page", "prefix", "host", "domain"):
            raise ScanRequestError("scope must be page, prefix, host or domain")
        allow = [a.strip() for a in allow if a.strip()]
        if any(a not in self.allowed_internal for a in allow):
            raise ScanRequestError("an internal address not in the platform's scan_allow was asked for")
        if not 1 <= max_pages <= MAX_PAGES or not 0 <= depth <= 20 or not 0.0 <= delay <= 60.0:
            raise ScanRequestError("limits out of range")
        config = ScanConfig(
            seeds=seeds,
            library=str(self.library),
            scope=scope,
            depth=depth,
            max_pages=max_pages,
            delay=delay,
            allow=allow,
            render="never",
        )
        scan_id = time.strftime("%Y%m%d", time.gmtime()) + "-" + secrets.token_hex(4)
        out = self.root / scan_id
        self.root.mkdir(parents=True, exist_ok=True)
        try:  # create the scan directory here (refusals reach the user), run it in the thread
            Scanner(out, config, db=self.db, **self._scanner_kw).close()
        except (CrawlError, ValueError) as exc:
            raise ScanRequestError(str(exc)) from None
        state = ScanState(scan_id)
        with self._lock:
            self._states[scan_id] = state
        threading.Thread(target=self._run, args=(out, state), daemon=True, name=f"scan-{scan_id}").start()
        return scan_id

    def _run(self, out: Path, state: ScanState) -> None:
        def progress(counts: dict[str, int]) -> None:
            state.counts = dict(counts)

        try:
            with Scanner(out, db=self._db_of(out), **self._scanner_kw) as scanner:  # resumes the stored scan
                summary = scanner.run(progress)
            state.counts = {k: v for k, v in summary.items() if isinstance(v, int)}
            state.state = "done"
        except Exception as exc:  # a scan thread must record, not vanish
            state.error = str(exc)[:500]
            state.state = "failed"

    def scans(self) -> list[str]:
        """Every scan directory's id, newest first."""
        if not self.root.is_dir():
            return []
        ids = [p.name for p in self.root.iterdir() if SCAN_ID.match(p.name) and holds_scan(p)]
        return sorted(ids, reverse=True)

    def _dir(self, scan_id: str) -> Path:
        if not SCAN_ID.match(scan_id) or not holds_scan(self.root / scan_id):
            raise ScanRequestError(f"no scan {scan_id[:40]!r}")
        return self.root / scan_id

    def _db_of(self, directory: Path) -> str | None:
        """The URI to open a scan on PostgreSQL with (``None`` for a SQLite scan)."""
        return self.db if (directory / POINTER_NAME).is_file() else None

    def _store(self, scan_id: str) -> ScanStore:
        directory = self._dir(scan_id)
        return ScanStore(directory, db=self._db_of(directory))

    def state(self, scan_id: str) -> ScanState:
        """The scan's progress (from the database when it did not run in this process)."""
        with self._lock:
            live = self._states.get(scan_id)
        if live is not None:
            return live
        store = self._store(scan_id)
        try:
            return ScanState(scan_id, state="stored", counts=store.counts())
        finally:
            store.close()

    def config(self, scan_id: str) -> dict[str, Any]:
        """The scan's stored configuration."""
        store = self._store(scan_id)
        try:
            stored = store.get_meta("config")
        finally:
            store.close()
        return stored if isinstance(stored, dict) else {}

    def cases(self, scan_id: str) -> list[Case]:
        """The scan's cases, in the order found."""
        store = self._store(scan_id)
        try:
            return store.cases()
        finally:
            store.close()

    def files(self, scan_id: str) -> dict[str, Path]:
        """Evidence packages and reports present in the scan directory (name -> path)."""
        out: dict[str, Path] = {}
        for p in sorted(self._dir(scan_id).iterdir()):
            if p.is_file() and p.suffix in (".zip", ".pdf", ".html") and re.match(r"^[\w.-]{1,120}$", p.name):
                out[p.name] = p
        return out
