"""A scan: crawl from seeds within scope, fetch media, identify them against a work library.

The loop is sequential and persistent: each step takes one due item from the
:class:`~crawlers.store.ScanStore` (media before pages), processes it and records the
result in one transaction. Pages are fetched and parsed for links (followed within the
scope rules, depth and page budget, trap URLs skipped) and media references. Media are
fetched under their own size cap, sniffed, hashed (SM3 of the bytes), and, unless the
digest was seen before, identified with :meth:`forensics.library.Library.identify`; each
match becomes a case for every page that references the media.

Images, audio and video are identified. A media item the page marks as video (``<video>``,
``og:video``, JSON-LD ``VideoObject``) is fetched under the larger video caps
(``video_bytes``, ``video_seconds``); a video longer than ``clip_seconds`` is identified by
its first ``clip_seconds`` (:func:`crawlers.media.clip`). Audio and video cases record the
matched span (query and work seconds) in their evidence.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawlers.errors import CrawlError, ScanStoreError
from crawlers.fetch import DEFAULT_AGENT
from crawlers.guard import Resolver, system_resolver
from crawlers.scandb import holds_scan
from crawlers.seeds import SeedCaps, expand
from crawlers.steps import Fetched, Outcome, StepRunner, build_fetcher, identify_payload
from crawlers.store import Item, ScanStore
from crawlers.urls import ScopeRule, normalize, origin_of, trap_reason

CONFIG_KEY = "config"


@dataclass(frozen=True)
class ScanConfig:
    """What a scan does; stored in the scan database so that ``resume`` repeats it.

    Parameters
    ----------
    seeds : list of str
        Start pages.
    sitemaps : list of str
        Sitemaps, sitemap indexes, RSS or Atom feeds whose pages (and enclosed media) are
        seeds too (:mod:`crawlers.seeds`); each is expanded once, at the start.
    library : str
        The work library directory (opened read-only).
    scope : {"page", "prefix", "host", "domain"}
        Which links are followed (:class:`~crawlers.urls.ScopeRule`, per seed). Media are
        fetched from any host that passes the guard and robots.txt.
    depth : int
        Link hops from a seed that are followed.
    max_pages : int
        Pages fetched at most.
    delay : float
        Seconds between requests to one origin.
    concurrency : int
        Requests in flight per origin.
    agent, contact : str
        User agent token and the operator's contact (URL or mail).
    obey_robots : bool
        ``False`` overrides robots.txt; recorded in every case.
    allow : list of str
        Addresses or networks the SSRF guard lets through (e.g. an intranet scan).
    page_bytes, media_bytes : int
        Size caps of a page and of a media file (decompressed).
    video_bytes, video_seconds : int, float
        Size and time caps of a media item marked as video (a file, or a stream's segments
        together).
    clip_seconds : float
        Longest stretch of a video identified (its beginning).
    stream_segments, stream_seconds : int, float
        Most segments, and most media seconds, fetched of an HLS/DASH stream (per track,
        from its start); the stream's bytes and time together stay within ``video_bytes``
        and ``video_seconds``.
    request_seconds : float
        Time cap of one fetch, redirects and slow bodies included.
    render : {"auto", "never", "always"}
        The browser tier: ``auto`` renders pages whose static HTML looks like a script
        app (:func:`crawlers.render.needs_render`), ``always`` every page, ``never`` none.
    render_seconds, render_requests, render_bytes : float, int, int
        Budgets of one rendered page (:class:`crawlers.render.RenderLimits`).
    max_redirects : int
    max_attempts : int
        Tries of an item that meets 429/503 before it is given up.
    host_pages, host_bytes : int
        Most pages fetched from, and most body bytes taken from, one origin; items of an
        origin past either budget are skipped.
    """

    seeds: list[str]
    library: str
    sitemaps: list[str] = field(default_factory=list)
    scope: str = "host"
    depth: int = 3
    max_pages: int = 1000
    delay: float = 1.0
    concurrency: int = 1
    agent: str = DEFAULT_AGENT
    contact: str = ""
    obey_robots: bool = True
    allow: list[str] = field(default_factory=list)
    page_bytes: int = 5 * 1024 * 1024
    media_bytes: int = 50 * 1024 * 1024
    video_bytes: int = 200 * 1024 * 1024
    video_seconds: float = 120.0
    clip_seconds: float = 600.0
    stream_segments: int = 40
    stream_seconds: float = 60.0
    request_seconds: float = 30.0
    render: str = "auto"
    render_seconds: float = 20.0
    render_requests: int = 50
    render_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    max_attempts: int = 3
    host_pages: int = 10_000
    host_bytes: int = 2 * 1024 * 1024 * 1024

    def __post_init__(self) -> None:
        if not self.seeds and not self.sitemaps:
            raise CrawlError("give at least one seed URL or sitemap")
        if self.depth < 0 or min(self.max_pages, self.max_attempts, self.host_pages, self.host_bytes) < 1:
            raise CrawlError("depth must be >= 0; max_pages, max_attempts, host_pages, host_bytes >= 1")
        if self.render not in ("auto", "never", "always"):
            raise CrawlError(f"unknown render mode {self.render!r}; use auto, never or always")
        for seed in [*self.seeds, *self.sitemaps]:
            ScopeRule(normalize(seed), self.scope)  # type: ignore[arg-type]


Progress = Callable[[dict[str, int]], None]


class Scanner:
    """Runs or resumes the scan stored in ``out``.

    Parameters
    ----------
    out : path
        The scan directory (its database is ``scan.sqlite``, or on PostgreSQL the pointer
        ``scan-db.json``).
    config : ScanConfig, optional
        For a new scan; ``None`` resumes the scan stored in ``out``.
    db : str, optional
        A ``postgresql://`` URI: the scan database goes to (or, resuming, is read from)
        that PostgreSQL database instead of SQLite (:class:`~crawlers.store.ScanStore`).
    resolver : callable, optional
        Host resolver for the SSRF guard (the system's by default).
    identify : callable, optional
        ``(path) -> list of Match``; the library's ``identify`` by default.

    Raises
    ------
    ScanStoreError
        ``config`` given for a directory that already holds a scan, or none given for one
        that holds none.
    """

    def __init__(
        self,
        out: str | Path,
        config: ScanConfig | None = None,
        *,
        resolver: Resolver = system_resolver,
        identify: Callable[[Path], list[Any]] | None = None,
        db: str | None = None,
    ) -> None:
        self.out = Path(out)
        if config is not None:
            if holds_scan(self.out):
                raise ScanStoreError(f"{self.out} already holds a scan; resume it or choose another --out")
            self.store = ScanStore(self.out, create=True, db=db)
            self.store.set_meta(CONFIG_KEY, dataclasses.asdict(config))
            self.store.set_meta("robots_obeyed", config.obey_robots)
            for seed in config.seeds:
                self.store.add(normalize(seed), "page", 0)
        else:
            self.store = ScanStore(self.out, db=db)
            stored = self.store.get_meta(CONFIG_KEY)
            if stored is None:
                raise ScanStoreError(f"{self.out} holds no scan configuration")
            config = ScanConfig(**stored)
        self.config = config
        self.fetcher = build_fetcher(config, resolver)
        self.steps = StepRunner(config, self.fetcher)
        self._identify = identify
        self._library: Any = None
        self.errors = 0

    def close(self) -> None:
        """Close the browser, the fetcher, the library and the database."""
        self.steps.close()
        self.fetcher.close()
        if self._library is not None:
            self._library.close()
        self.store.close()

    def __enter__(self) -> Scanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _identify_file(self, path: Path) -> list[Any]:
        if self._identify is not None:
            return self._identify(path)
        if self._library is None:
            from forensics.library import Library

            self._library = Library.open(self.config.library, readonly=True)
        return list(self._library.identify(path))

    # -- the loop -------------------------------------------------------------------------

    def run(self, progress: Progress | None = None) -> dict[str, Any]:
        """Process items until none is pending (or only pages beyond the page budget).

        Returns
        -------
        dict
            The summary: counts per kind and state, media fingerprinted, cases, errors, seconds.
        """
        started = time.monotonic()
        shown = 0.0
        self._expand_sitemaps()
        while True:
            pages_fetched = self.store.pages_fetched()
            item, due = self.store.next_item(time.time(), pages=pages_fetched < self.config.max_pages)
            if item is None:
                if due is None:
                    break
                time.sleep(min(max(due - time.time(), 0.01), 5.0))
                continue
            self._step(item)
            if progress is not None and time.monotonic() - shown > 0.5:
                shown = time.monotonic()
                progress(self.store.counts())
        if progress is not None:
            progress(self.store.counts())
        summary: dict[str, Any] = dict(self.store.counts())
        summary["errors_this_run"] = self.errors
        summary["seconds"] = round(time.monotonic() - started, 3)
        return summary

    def _expand_sitemaps(self) -> None:
        """Expand the sitemaps and feeds not expanded yet (a resumed scan skips the done ones)."""
        done = self.store.get_meta("expanded") or {}
        caps = SeedCaps(urls=max(10 * self.config.max_pages, 1000))
        for url in self.config.sitemaps:
            source = normalize(url)
            if source in done:
                continue
            pages: list[str] = []
            media: list[tuple[str, str]] = []
            try:
                exp = expand(self.fetcher, source, caps)
            except CrawlError as exc:
                self.errors += 1
                note = f"failed: {type(exc).__name__}: {exc}"
            else:
                pages = [u for u in exp.pages if not trap_reason(u)]
                media = [(u, h) for u, h in exp.media if not trap_reason(u)]
                note = f"{exp.kind}: {len(pages)} pages, {len(media)} media, {len(exp.refused)} refused"
            self.store.record_expansion(source, pages, media, note)

    def _step(self, item: Item) -> None:
        if self.over_budget(item):
            return
        out = self.steps.process(item)
        self.record(item, out)
        if out.state == "media" and out.fetched is not None:
            self.record_media(item, out.fetched, self._identified(out.fetched))

    def over_budget(self, item: Item, usage: tuple[int, int] | None = None) -> bool:
        """Skip ``item`` (recorded) when its origin spent its page or byte budget.

        ``usage``: the origin's ``(pages, bytes)`` when the caller read it already.
        """
        origin = origin_of(item.url)
        pages, taken = self.store.host_usage(origin) if usage is None else usage
        if taken >= self.config.host_bytes or (item.kind == "page" and pages >= self.config.host_pages):
            self.store.finish(item, "skipped", f"budget of {origin} spent ({pages} pages, {taken} bytes)")
            return True
        return False

    def record(self, item: Item, out: Outcome) -> None:
        """Record an outcome in the scan database; a ``media`` outcome only charges its fetches
        (its result is recorded by :meth:`record_media` once identified)."""
        for origin, pages, nbytes in out.charges:
            self.store.charge(origin, pages, nbytes)
        self.errors += out.errors
        if out.state == "retry":
            if item.attempts + 1 >= self.config.max_attempts:
                self.store.finish(item, "failed", out.note)
                self.errors += 1
            else:
                self.store.postpone(item, time.time() + out.retry_after, out.note)
        elif out.state in ("failed", "skipped"):
            self.store.finish(item, out.state, out.note)
        elif out.state == "page":
            self.store.finish_page(item, out.links, out.media, note=out.note)
        elif out.state == "media" and out.self_ref:
            self.store.add_ref(item.url, item.url)

    def known(self, fetched: Fetched) -> bool:
        """Whether ``fetched``'s content was identified before (then it is recorded now, from
        the stored result)."""
        return self.store.media_result(fetched.digest) is not None

    def _identified(self, fetched: Fetched) -> tuple[list[dict[str, Any]], str] | None:
        """Matches of a fetched item, or ``None`` when its digest was identified before."""
        if self.known(fetched):
            return None
        matches, error = identify_payload(fetched, self._identify_file, self.config.clip_seconds)
        if error and fetched.payload is not None:
            self.errors += 1
        return matches, error

    def record_media(
        self, item: Item, fetched: Fetched, result: tuple[list[dict[str, Any]], str] | None
    ) -> None:
        """Record an identified media item and its cases (``result`` ``None``: stored before)."""
        if result is None:
            self.store.finish_media(item, fetched.final_url, fetched.digest, fetched.mime, fetched.size, None)
            return
        matches, error = result
        self.store.finish_media(
            item, fetched.final_url, fetched.digest, fetched.mime, fetched.size, matches, fetched.note + error
        )
