"""The scan database: frontier, seen set, fingerprinted media and cases.

It is one SQLite file in the scan directory by default, or the same tables in a schema of
a PostgreSQL database (``db="postgresql://..."``; :mod:`crawlers.scandb` holds the two
backends). Every change of a scan's state is one transaction (SQLite: WAL journal,
``synchronous=NORMAL``; PostgreSQL: a commit), and a committed transaction survives the
scanning process being killed (on SQLite a power cut may lose the last ones, which a
resumed scan does again), so a scan killed at any instant (``kill -9`` included) resumes
from the database alone:

* ``frontier`` is the seen set and the queue at once: a URL enters it once
  (``UNIQUE``), as a page or a media item, and is ``pending`` until it is processed.
* ``refs`` records which pages reference which media URLs.
* ``media`` holds the identification result per content digest (SM3 of the bytes),
  so that one picture under many URLs is fingerprinted once.
* ``cases`` holds the hits; ``UNIQUE (page_url, media_url, work_id)`` makes recording a
  case idempotent, so a media item processed again after a crash adds no duplicate.
* ``case_packages`` names the evidence package captured for a case (its path and SM3
  package digest), so that a case leads to its evidence.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawlers.errors import ScanStoreError
from crawlers.scandb import DB_NAME, TYPES, open_backend

__all__ = ["DB_NAME", "FORMAT", "Case", "Item", "ScanStore", "now_rfc3339"]

FORMAT = "rongxin-scan-1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS frontier (
    id {pk},
    url TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('page', 'media')),
    depth INTEGER NOT NULL,
    hint TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed', 'skipped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before {real} NOT NULL DEFAULT 0,
    digest {blob},
    final_url TEXT,
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS frontier_pending ON frontier (state, kind, id);
CREATE TABLE IF NOT EXISTS refs (
    page_url TEXT NOT NULL,
    media_url TEXT NOT NULL,
    PRIMARY KEY (media_url, page_url)
);
CREATE TABLE IF NOT EXISTS media (
    digest {blob} PRIMARY KEY,
    mime TEXT NOT NULL,
    size INTEGER NOT NULL,
    matches TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    fingerprinted_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS hosts (
    origin TEXT PRIMARY KEY,
    pages INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS cases (
    id {pk},
    page_url TEXT NOT NULL,
    media_url TEXT NOT NULL,
    final_url TEXT NOT NULL,
    work_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    score {real} NOT NULL,
    evidence TEXT NOT NULL,
    content_digest {blob} NOT NULL,
    robots_obeyed INTEGER NOT NULL,
    found_at TEXT NOT NULL,
    UNIQUE (page_url, media_url, work_id)
);
CREATE TABLE IF NOT EXISTS case_packages (
    case_id {ref} PRIMARY KEY REFERENCES cases (id),
    package TEXT NOT NULL,
    digest TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
"""


def now_rfc3339() -> str:
    """The current UTC time, e.g. ``2026-12-05T04:30:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class Item:
    """A frontier entry to process."""

    id: int
    url: str
    kind: str
    depth: int
    hint: str
    attempts: int


@dataclass(frozen=True)
class Case:
    """A registered work found on the web.

    Attributes
    ----------
    id : int
    page_url : str
        The page that shows the media.
    media_url : str
        The media's URL as referenced by the page.
    final_url : str
        Where the media was fetched from, after redirects.
    work_id, kind : str
        The matched work and its media kind.
    score : float
    evidence : dict
        The match's evidence summary (threshold, details, regions or spans).
    content_digest : bytes
        SM3 of the fetched bytes.
    robots_obeyed : bool
        ``False`` when the scan ran with robots.txt overridden.
    found_at : str
        RFC 3339 UTC.
    package : dict, optional
        The case's evidence package: ``{"path", "sm3", "recorded_at"}``.
    """

    id: int
    page_url: str
    media_url: str
    final_url: str
    work_id: str
    kind: str
    score: float
    evidence: dict[str, Any]
    content_digest: bytes
    robots_obeyed: bool
    found_at: str
    package: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (digest in hex); ``evidence_package`` only once one is recorded."""
        doc: dict[str, Any] = {
            "id": self.id,
            "page_url": self.page_url,
            "media_url": self.media_url,
            "final_url": self.final_url,
            "work_id": self.work_id,
            "kind": self.kind,
            "score": self.score,
            "evidence": self.evidence,
            "content_sm3": self.content_digest.hex(),
            "robots_obeyed": self.robots_obeyed,
            "found_at": self.found_at,
        }
        if self.package is not None:
            doc["evidence_package"] = self.package
        return doc


class ScanStore:
    """The scan database of the scan directory ``directory`` (created when ``create`` is true).

    Parameters
    ----------
    directory : path
        The scan directory: it holds ``scan.sqlite``, or for a scan on PostgreSQL the
        pointer ``scan-db.json`` (connection string without password, schema name).
    create : bool
        Start a new scan database when the directory holds none.
    db : str, optional
        A ``postgresql://user@host:port/database`` URI: a new scan's tables go to a new
        schema in that database; an existing PostgreSQL scan connects with it (e.g. to
        give the password, which is never stored). ``None``: SQLite, or the stored
        connection string.

    Raises
    ------
    ScanStoreError
        No scan database there (``create=False``), the file is not one, another format,
        or the PostgreSQL server cannot be reached or refuses the credentials.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     store = ScanStore(d, create=True)
    ...     store.add("http://example.com/", "page", 0), store.add("http://example.com/", "page", 0)
    ...     store.close()
    (True, False)
    """

    def __init__(self, directory: str | Path, *, create: bool = False, db: str | None = None) -> None:
        self.directory = Path(directory)
        self._charges: list[tuple[str, int, int]] = []
        self._depth = 0  # open transactions of :meth:`batch` (the outer one commits)
        self._db = open_backend(self.directory, create=create, db=db, fmt=FORMAT)
        try:
            self._db.create_schema(_SCHEMA.format(**TYPES[self._db.dialect]))
            with self._db.transaction():
                self._db.execute("INSERT INTO meta VALUES ('format', ?) ON CONFLICT DO NOTHING", (FORMAT,))
            fmt = self._db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        except ScanStoreError:
            self._db.close()
            raise
        if fmt is None or fmt[0] != FORMAT:
            self._db.close()
            raise ScanStoreError(
                f"{self._db.where} was written by another format ({fmt}); use a new directory"
            )

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._db.dialect

    def close(self) -> None:
        """Close the database (pending charges written first)."""
        if self._charges:
            with self._db.transaction():
                self._flush_charges()
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """One transaction, or a part of the enclosing :meth:`batch`."""
        if self._depth:
            yield
            return
        with self._db.transaction():
            yield

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Record several steps in one transaction: they commit together when the block ends.

        Each step inside still keeps its own rules (its result, its frontier state and its
        charges written together), so a crash loses either the whole block — whose items are
        still pending and are simply processed again — or nothing. One commit per block
        instead of one per step is what lets a client record the outcomes of many workers.
        Blocks may nest; only the outermost commits. An exception rolls the block back.
        """
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        with self._db.transaction():
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0

    # -- meta -----------------------------------------------------------------------------

    def get_meta(self, key: str) -> Any:
        """A JSON value stored with :meth:`set_meta`, or ``None``."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value."""
        with self._tx():
            self._db.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value, sort_keys=True)),
            )

    # -- frontier -------------------------------------------------------------------------

    def add(self, url: str, kind: str, depth: int, hint: str = "") -> bool:
        """Queue ``url`` unless it was ever seen; ``True`` when it is new."""
        with self._tx():
            return self._add(url, kind, depth, hint)

    def _add(
        self, url: str, kind: str, depth: int, hint: str = "", state: str = "pending", note: str = ""
    ) -> bool:
        cur = self._db.execute(
            "INSERT INTO frontier (url, kind, depth, hint, state, note) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (url, kind, depth, hint, state, note),
        )
        return cur.rowcount == 1

    def add_ref(self, page_url: str, media_url: str) -> None:
        """Record that ``page_url`` shows ``media_url``."""
        with self._tx():
            self._db.execute("INSERT INTO refs VALUES (?, ?) ON CONFLICT DO NOTHING", (page_url, media_url))

    def seen(self, url: str) -> bool:
        """Whether ``url`` was ever queued."""
        return self._db.execute("SELECT 1 FROM frontier WHERE url = ?", (url,)).fetchone() is not None

    def next_item(self, now: float, pages: bool = True) -> tuple[Item | None, float | None]:
        """The next pending item due at ``now`` (media before pages), or the time the next one is due.

        Returns
        -------
        (Item or None, float or None)
            An item; or ``None`` and the earliest ``not_before`` among pending items
            (``None`` when nothing is pending).
        """
        first = self.due(now, pages, limit=1)
        if first:
            return first[0], None
        kinds = ("media", "page") if pages else ("media",)
        marks = ",".join("?" * len(kinds))
        due = self._db.execute(
            f"SELECT MIN(not_before) FROM frontier WHERE state = 'pending' AND kind IN ({marks})", kinds
        ).fetchone()[0]
        return None, due

    def due(self, now: float, pages: bool = True, limit: int = 1000) -> list[Item]:
        """Up to ``limit`` pending items due at ``now``, media before pages, oldest first."""
        rows: list[Any] = []
        # one kind at a time: the index (state, kind, id) gives each in id order, where an
        # ORDER BY over both kinds would sort every pending row
        for kind in ("media", "page") if pages else ("media",):
            if len(rows) >= limit:
                break
            rows += self._db.execute(
                "SELECT id, url, kind, depth, hint, attempts FROM frontier WHERE state = 'pending' "
                "AND kind = ? AND not_before <= ? ORDER BY id LIMIT ?",
                (kind, now, limit - len(rows)),
            ).fetchall()
        return [Item(*r) for r in rows]

    def pending_after(self, after_id: int) -> list[tuple[Item, float]]:
        """Every pending item whose id is above ``after_id``, with the time it is due, by id.

        Frontier ids only grow, so a caller that remembers the highest id it has seen reads
        only what was queued since.
        """
        rows = self._db.execute(
            "SELECT id, url, kind, depth, hint, attempts, not_before FROM frontier "
            "WHERE state = 'pending' AND id > ? ORDER BY id",
            (after_id,),
        ).fetchall()
        return [(Item(*r[:6]), float(r[6])) for r in rows]

    def pages_fetched(self) -> int:
        """Pages fetched so far (done or failed): what the page budget counts."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM frontier WHERE state IN ('done', 'failed') AND kind = 'page'"
        ).fetchone()
        return int(row[0])

    def postpone(self, item: Item, until: float, note: str) -> None:
        """Count an attempt and retry ``item`` not before ``until``."""
        with self._tx():
            self._flush_charges()
            self._db.execute(
                "UPDATE frontier SET attempts = attempts + 1, not_before = ?, note = ? WHERE id = ?",
                (until, note, item.id),
            )

    def finish(self, item: Item, state: str, note: str = "") -> None:
        """Mark ``item`` done, failed or skipped."""
        with self._tx():
            self._flush_charges()
            self._db.execute(
                "UPDATE frontier SET state = ?, note = ? WHERE id = ?", (state, note[:500], item.id)
            )

    def finish_page(
        self, item: Item, links: Iterable[tuple[str, str]], media: Iterable[tuple[str, str]], note: str = ""
    ) -> int:
        """Record a processed page in one transaction: its links and media queued, its refs
        stored, cases added for media already identified; returns the new cases.

        ``links`` are ``(url, state)`` pairs (``"pending"`` or ``"skipped"`` for links out of
        scope or traps, kept so that the seen set remembers them); ``media`` are
        ``(url, hint)`` pairs.
        """
        with self._tx():
            self._flush_charges()
            for url, state in links:
                self._add(url, "page", item.depth + 1, state=state)
            media_urls = []
            for url, hint in media:
                self._add(url, "media", item.depth + 1, hint)
                self._db.execute("INSERT INTO refs VALUES (?, ?) ON CONFLICT DO NOTHING", (item.url, url))
                media_urls.append(url)
            added = 0
            for url in media_urls:
                added += self._cases_for(url, only_page=item.url)
            self._db.execute(
                "UPDATE frontier SET state = 'done', note = ? WHERE id = ?", (note[:500], item.id)
            )
        return added

    def record_expansion(
        self, source: str, pages: Iterable[str], media: Iterable[tuple[str, str]], note: str
    ) -> None:
        """Record a sitemap or feed in one transaction: its pages queued as seeds (depth 0), its
        media queued and referenced by ``source``, and ``source`` marked expanded."""
        with self._tx():
            for url in pages:
                self._add(url, "page", 0)
            for url, hint in media:
                self._add(url, "media", 1, hint)
                self._db.execute("INSERT INTO refs VALUES (?, ?) ON CONFLICT DO NOTHING", (source, url))
            row = self._db.execute("SELECT value FROM meta WHERE key = 'expanded'").fetchone()
            done = {} if row is None else json.loads(row[0])
            done[source] = note[:500]
            self._db.execute(
                "INSERT INTO meta VALUES ('expanded', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (json.dumps(done, sort_keys=True),),
            )

    # -- per-host budgets -----------------------------------------------------------------

    def host_usage(self, origin: str) -> tuple[int, int]:
        """Pages fetched from and body bytes taken from ``origin`` so far."""
        row = self._db.execute("SELECT pages, bytes FROM hosts WHERE origin = ?", (origin,)).fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def charge(self, origin: str, pages: int, nbytes: int) -> None:
        """Add a fetch to ``origin``'s usage.

        The charge is written with the item's result, in the same transaction (one commit
        per item). A fetch repeated after a crash is counted once, when its result is
        recorded.
        """
        self._charges.append((origin, pages, nbytes))

    def _flush_charges(self) -> None:
        """Write the pending charges; inside a transaction."""
        for origin, pages, nbytes in self._charges:
            self._db.execute(
                "INSERT INTO hosts (origin, pages, bytes) VALUES (?, ?, ?) ON CONFLICT (origin) "
                "DO UPDATE SET pages = hosts.pages + excluded.pages, bytes = hosts.bytes + excluded.bytes",
                (origin, pages, nbytes),
            )
        self._charges.clear()

    # -- media ----------------------------------------------------------------------------

    def media_result(self, digest: bytes) -> list[dict[str, Any]] | None:
        """The matches stored for a content digest, or ``None`` when never identified."""
        row = self._db.execute("SELECT matches FROM media WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else json.loads(row[0])

    def finish_media(
        self,
        item: Item,
        final_url: str,
        digest: bytes,
        mime: str,
        size: int,
        matches: list[dict[str, Any]] | None,
        error: str = "",
    ) -> int:
        """Record a fetched media item and its cases (for every page referencing it) atomically.

        ``matches`` is ``None`` when the digest was identified before (its stored result is
        used). Returns the number of new cases.
        """
        with self._tx():
            self._flush_charges()
            if matches is not None:
                self._db.execute(
                    "INSERT INTO media VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (digest, mime, size, json.dumps(matches, sort_keys=True), error, now_rfc3339()),
                )
            self._db.execute(
                "UPDATE frontier SET state = 'done', digest = ?, final_url = ?, note = ? WHERE id = ?",
                (digest, final_url, error[:500], item.id),
            )
            return self._cases_for(item.url)

    def _cases_for(self, media_url: str, only_page: str | None = None) -> int:
        """Insert the cases of an identified media URL (for one page or all); inside a transaction."""
        row = self._db.execute(
            "SELECT f.digest, f.final_url, m.matches FROM frontier f JOIN media m ON m.digest = f.digest "
            "WHERE f.url = ? AND f.state = 'done'",
            (media_url,),
        ).fetchone()
        if row is None:
            return 0
        digest, final_url, matches_json = row
        robots = self._db.execute("SELECT value FROM meta WHERE key = 'robots_obeyed'").fetchone()
        obeyed = True if robots is None else bool(json.loads(robots[0]))
        if only_page is not None:
            pages = [only_page]
        else:
            pages = [
                r[0] for r in self._db.execute("SELECT page_url FROM refs WHERE media_url = ?", (media_url,))
            ]
        added = 0
        for match in json.loads(matches_json):
            for page in pages:
                cur = self._db.execute(
                    "INSERT INTO cases (page_url, media_url, final_url, work_id, kind, score, "
                    "evidence, content_digest, robots_obeyed, found_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (
                        page,
                        media_url,
                        final_url,
                        match["work_id"],
                        match["kind"],
                        float(match["score"]),
                        json.dumps(match.get("evidence", {}), sort_keys=True),
                        digest,
                        int(obeyed),
                        now_rfc3339(),
                    ),
                )
                added += cur.rowcount
        return added

    # -- reading --------------------------------------------------------------------------

    def cases(self) -> list[Case]:
        """Every case, in the order found."""
        rows = self._db.execute(
            "SELECT c.id, page_url, media_url, final_url, work_id, kind, score, evidence, content_digest, "
            "robots_obeyed, found_at, p.package, p.digest, p.recorded_at "
            "FROM cases c LEFT JOIN case_packages p ON p.case_id = c.id ORDER BY c.id"
        ).fetchall()
        return [
            Case(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), bytes(r[8]), bool(r[9]), r[10],
                 None if r[11] is None else {"path": r[11], "sm3": r[12], "recorded_at": r[13]})
            for r in rows
        ]  # fmt: skip

    def record_package(self, case_id: int, package: str, digest: bytes) -> None:
        """Name the evidence package of a case (a later capture replaces it).

        Raises
        ------
        ScanStoreError
            There is no such case.
        """
        with self._tx():
            if self._db.execute("SELECT 1 FROM cases WHERE id = ?", (case_id,)).fetchone() is None:
                raise ScanStoreError(f"no case {case_id} in {self.directory}")
            self._db.execute(
                "INSERT INTO case_packages VALUES (?, ?, ?, ?) ON CONFLICT (case_id) DO UPDATE SET "
                "package = excluded.package, digest = excluded.digest, recorded_at = excluded.recorded_at",
                (case_id, package, digest.hex(), now_rfc3339()),
            )

    def case(self, case_id: int) -> Case | None:
        """One case by id."""
        return next((c for c in self.cases() if c.id == case_id), None)

    def counts(self) -> dict[str, int]:
        """Frontier counts by kind and state (``"page.done"``, ``"media.pending"``, ...), media and cases."""
        out: dict[str, int] = {}
        for kind, state, n in self._db.execute(
            "SELECT kind, state, COUNT(*) FROM frontier GROUP BY kind, state"
        ):
            out[f"{kind}.{state}"] = n
        out["media.fingerprinted"] = self._db.execute("SELECT COUNT(*) FROM media").fetchone()[0]
        out["cases"] = self._db.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
        return out

    def items(self) -> list[tuple[str, str, str, str]]:
        """Every frontier entry as ``(url, kind, state, note)``."""
        return list(self._db.execute("SELECT url, kind, state, note FROM frontier ORDER BY id"))
