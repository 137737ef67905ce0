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
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.crypto.sm3 import sm3
from crawlers.errors import (
    BlockedAddressError,
    BrowserError,
    CrawlError,
    FetchError,
    MediaPrepError,
    PlaylistError,
    RobotsDisallowedError,
    ScanStoreError,
)
from crawlers.extract import MediaRef, PageRefs, decode_html, extract
from crawlers.fetch import DEFAULT_AGENT, Fetcher, FetchLimits, Response, RetryLaterError
from crawlers.guard import AddressGuard, Resolver, system_resolver
from crawlers.media import clip, join
from crawlers.playlists import StreamCaps
from crawlers.politeness import HostPacer
from crawlers.render import Renderer, RenderLimits, needs_render
from crawlers.scandb import holds_scan
from crawlers.seeds import SeedCaps, expand
from crawlers.sniff import SUFFIX, family
from crawlers.store import Item, ScanStore
from crawlers.streams import fetch_stream
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


def _match_json(match: Any, offset: float = 0.0) -> dict[str, Any]:
    """A match as stored: score, threshold, evidence, and for audio and video the matched span.

    ``offset`` is where the identified file starts in its stream (seconds), added to the
    query span so that it names stream time.
    """
    evidence: dict[str, Any] = {"threshold": match.threshold}
    ev = match.evidence
    if ev is not None and hasattr(ev, "to_json"):
        evidence["evidence"] = ev.to_json()
    if ev is not None and hasattr(ev, "query_start") and hasattr(ev, "ref_start"):
        evidence["span"] = {
            "media_seconds": [round(ev.query_start + offset, 3), round(ev.query_end + offset, 3)],
            "work_seconds": [round(ev.ref_start, 3), round(ev.ref_end, 3)],
        }
    if match.query_stream is not None:
        evidence["query_stream"] = match.query_stream
    return {"work_id": match.work_id, "kind": match.kind, "score": float(match.score), "evidence": evidence}


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
        self.rules = [
            ScopeRule(normalize(s), config.scope)  # type: ignore[arg-type]
            for s in [*config.seeds, *config.sitemaps]
        ]
        self.fetcher = Fetcher(
            guard=AddressGuard(config.allow, resolver),
            pacer=HostPacer(delay=config.delay, concurrency=config.concurrency),
            limits=FetchLimits(
                max_bytes=max(config.page_bytes, config.media_bytes, config.video_bytes),
                total_seconds=config.request_seconds,
                max_redirects=config.max_redirects,
            ),
            agent=config.agent,
            contact=config.contact,
            obey_robots=config.obey_robots,
        )
        self._identify = identify
        self._library: Any = None
        self._renderer: Renderer | None = None
        self.errors = 0

    def close(self) -> None:
        """Close the browser, the fetcher, the library and the database."""
        if self._renderer is not None:
            self._renderer.close()
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
        origin = origin_of(item.url)
        pages, taken = self.store.host_usage(origin)
        if taken >= self.config.host_bytes or (item.kind == "page" and pages >= self.config.host_pages):
            self.store.finish(item, "skipped", f"budget of {origin} spent ({pages} pages, {taken} bytes)")
            return
        try:
            if item.kind == "page":
                self._page(item)
            else:
                self._media(item)
        except RetryLaterError as exc:
            if item.attempts + 1 >= self.config.max_attempts:
                self.store.finish(item, "failed", str(exc))
                self.errors += 1
            else:
                self.store.postpone(item, time.time() + exc.retry_after, str(exc))
        except RobotsDisallowedError as exc:
            self.store.finish(item, "skipped", str(exc))
        except (BlockedAddressError, FetchError, PlaylistError, MediaPrepError) as exc:
            self.store.finish(item, "failed", f"{type(exc).__name__}: {exc}")
            self.errors += 1

    def _page(self, item: Item) -> None:
        resp = self.fetcher.fetch(item.url, max_bytes=self.config.page_bytes)
        self.store.charge(origin_of(item.url), 1, len(resp.body))
        if resp.status != 200:
            self.store.finish(item, "failed", f"HTTP {resp.status}")
            self.errors += 1
            return
        if family(resp.mime) != "html":
            # a link to a media file (whatever its Content-Type said): the link shows the media
            self.store.add_ref(item.url, item.url)
            self._identified(item, resp)
            return
        charset = None
        ctype = resp.headers.get("content-type", "")
        if "charset=" in ctype:
            charset = ctype.split("charset=", 1)[1].split(";", 1)[0].strip(" \"'")
        refs = extract(resp.url, decode_html(resp.body, charset))
        note = ""
        if self.config.render == "always" or (self.config.render == "auto" and needs_render(refs)):
            refs, note = self._rendered(item.url, resp, refs)
        links: list[tuple[str, str]] = []
        if item.depth < self.config.depth:
            for url in refs.links:
                if not any(rule.allows(url) for rule in self.rules):
                    continue  # out of scope: not even remembered
                links.append((url, "skipped" if trap_reason(url) else "pending"))
        media = [(m.url, m.hint) for m in refs.media if not trap_reason(m.url)]
        note = f"{len(refs.links)} links, {len(refs.media)} media" + note
        self.store.finish_page(item, links, media, note=note)

    def _rendered(self, url: str, resp: Response, refs: PageRefs) -> tuple[PageRefs, str]:
        """``refs`` with what the rendered page adds (DOM links and media, media requests)."""
        if self._renderer is None:
            limits = RenderLimits(
                seconds=self.config.render_seconds,
                requests=self.config.render_requests,
                bytes=self.config.render_bytes,
            )
            self._renderer = Renderer(self.fetcher, limits)
        try:
            rendered = self._renderer.render(url, resp)
        except BrowserError as exc:
            self.errors += 1
            return refs, f"; not rendered: {exc}"
        more = extract(resp.url, rendered.html)
        links = list(dict.fromkeys([*refs.links, *more.links]))
        media = {m.url: m for m in [*refs.media, *more.media]}
        for u, hint in rendered.media:
            media.setdefault(u, MediaRef(u, hint, "browser"))  # type: ignore[arg-type]
        merged = PageRefs(links=links, media=list(media.values()))
        return merged, f"; rendered: {len(rendered.fulfilled)} fetched, {len(rendered.aborted)} aborted"

    def _media(self, item: Item) -> None:
        if item.hint in ("video", "stream"):
            resp = self.fetcher.fetch(
                item.url, max_bytes=self.config.video_bytes, seconds=self.config.video_seconds
            )
        else:
            resp = self.fetcher.fetch(item.url, max_bytes=self.config.media_bytes)
        self.store.charge(origin_of(item.url), 0, len(resp.body))
        if resp.status != 200:
            self.store.finish(item, "failed", f"HTTP {resp.status}")
            self.errors += 1
            return
        self._identified(item, resp)

    def _identified(self, item: Item, resp: Response) -> None:
        """Fingerprint and identify a fetched media body (once per content digest); record its cases."""
        kind = family(resp.mime)
        if kind == "stream":
            self._stream(item, resp)
            return
        if kind not in ("image", "audio", "video"):
            self.store.finish(item, "skipped", f"{resp.mime} is not an image, audio or video file")
            return
        digest = sm3(resp.body)
        if self.store.media_result(digest) is not None:
            self.store.finish_media(item, resp.url, digest, resp.mime, len(resp.body), None)
            return
        with tempfile.TemporaryDirectory(prefix="rongxin-scan-") as tmp:
            path = Path(tmp) / f"media{SUFFIX.get(resp.mime, '.bin')}"
            path.write_bytes(resp.body)
            matches, error = self._identify_path(path, resp.mime)
        self.store.finish_media(item, resp.url, digest, resp.mime, len(resp.body), matches, error)

    def _stream(self, item: Item, resp: Response) -> None:
        """An HLS/DASH manifest: fetch its first segments within the caps, join, identify."""
        caps = StreamCaps(segments=self.config.stream_segments, seconds=self.config.stream_seconds)
        tracks = fetch_stream(
            self.fetcher,
            resp.url,
            resp.body,
            caps=caps,
            max_bytes=self.config.video_bytes,
            seconds=self.config.video_seconds,
            on_fetch=lambda url, n: self.store.charge(origin_of(url), 0, n),
        )
        body = b"".join(t.body for t in tracks)
        digest = sm3(body)
        if self.store.media_result(digest) is not None:
            self.store.finish_media(item, resp.url, digest, resp.mime, len(body), None)
            return
        with tempfile.TemporaryDirectory(prefix="rongxin-stream-") as tmp:
            try:
                path, mime = join([(t.track.kind, t.body) for t in tracks], Path(tmp))
            except MediaPrepError as exc:
                self.errors += 1
                matches: list[dict[str, Any]] = []
                error = f"{type(exc).__name__}: {exc}"
            else:
                matches, error = self._identify_path(path, mime)
        note = f"{sum(t.segments for t in tracks)} segments; " + error
        self.store.finish_media(item, resp.url, digest, resp.mime, len(body), matches, note)

    def _identify_path(self, path: Path, mime: str, offset: float = 0.0) -> tuple[list[dict[str, Any]], str]:
        """Matches of a media file (a video cut to ``clip_seconds``), or the error that stopped it."""
        from forensics.errors import ForensicsError

        try:
            if family(mime) == "video":
                path = clip(path, mime, self.config.clip_seconds, path.with_name(f"clip{path.suffix}"))
            return [_match_json(m, offset) for m in self._identify_file(path)], ""
        except (ForensicsError, MediaPrepError) as exc:
            self.errors += 1
            return [], f"{type(exc).__name__}: {exc}"
