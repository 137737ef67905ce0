"""One frontier item processed without the scan database: fetch, extract, prepare for identification.

A :class:`StepRunner` turns an :class:`~crawlers.store.Item` into an :class:`Outcome`
(links and media of a page; the bytes to identify of a media item; or a final state), and
:func:`identify_payload` turns those bytes into matches. Neither touches the scan
database, so the same code runs inside the single-process :class:`~crawlers.scan.Scanner`
and on the workers of a distributed scan (:mod:`crawlers.cluster`), where the client
process alone records outcomes.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chain.crypto.sm3 import sm3
from crawlers.errors import (
    BlockedAddressError,
    BrowserError,
    FetchError,
    MediaPrepError,
    PlaylistError,
    RobotsDisallowedError,
)
from crawlers.extract import MediaRef, PageRefs, decode_html, extract
from crawlers.fetch import Fetcher, FetchLimits, Response, RetryLaterError
from crawlers.guard import AddressGuard, Resolver
from crawlers.media import clip, join
from crawlers.playlists import StreamCaps
from crawlers.politeness import HostPacer
from crawlers.render import Renderer, RenderLimits, needs_render
from crawlers.sniff import SUFFIX, family
from crawlers.store import Item
from crawlers.streams import fetch_stream
from crawlers.urls import ScopeRule, normalize, origin_of, trap_reason

if TYPE_CHECKING:
    from crawlers.scan import ScanConfig

Identify = Callable[[Path], list[Any]]


@dataclass
class Fetched:
    """A fetched media item, ready to be identified.

    Attributes
    ----------
    final_url : str
        Where the bytes came from, after redirects.
    digest : bytes
        SM3 of the fetched bytes (a stream's segments together): the deduplication key.
    mime : str
        The sniffed type of the fetched bytes.
    size : int
    payload : bytes or None
        The file to identify (a stream's segments joined), or ``None`` when it could not be
        prepared (``error`` says why) or when it stayed on the worker that fetched it
        (``held``).
    payload_mime : str
    note : str
        Prefix of the item's note (segments fetched of a stream).
    error : str
        Why there is no payload.
    held : bool
        The payload is kept by the Dask worker that fetched it, under ``digest``, until
        that worker identifies it or is told to drop it (:mod:`crawlers.cluster`).
    """

    final_url: str
    digest: bytes
    mime: str
    size: int
    payload: bytes | None
    payload_mime: str
    note: str = ""
    error: str = ""
    held: bool = False


@dataclass
class Outcome:
    """What processing an item gave; recorded by the process that owns the scan database.

    ``state`` is ``"page"`` (``links`` and ``media`` to queue), ``"media"`` (``fetched``
    to identify and record), ``"retry"`` (try again after ``retry_after`` seconds), or a
    final ``"failed"`` / ``"skipped"``. ``charges`` are ``(origin, pages, bytes)`` fetches
    to add to the per-host budgets; ``errors`` counts errors met on the way.
    """

    state: str
    note: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)
    media: list[tuple[str, str]] = field(default_factory=list)
    fetched: Fetched | None = None
    self_ref: bool = False
    retry_after: float = 0.0
    charges: list[tuple[str, int, int]] = field(default_factory=list)
    errors: int = 0


def build_fetcher(config: ScanConfig, resolver: Resolver) -> Fetcher:
    """The guarded, capped, polite fetcher a scan's configuration asks for."""
    return Fetcher(
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


def scope_rules(config: ScanConfig) -> list[ScopeRule]:
    """The scope rules of a scan's seeds and sitemaps."""
    return [ScopeRule(normalize(s), config.scope) for s in [*config.seeds, *config.sitemaps]]  # type: ignore[arg-type]


class StepRunner:
    """Processes items of one scan with one fetcher (and a browser started on first need)."""

    def __init__(self, config: ScanConfig, fetcher: Fetcher) -> None:
        self.config = config
        self.fetcher = fetcher
        self.rules = scope_rules(config)
        self._renderer: Renderer | None = None

    def close(self) -> None:
        """Close the browser if one was started (the fetcher belongs to the caller)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def process(self, item: Item) -> Outcome:
        """Fetch and examine ``item``; fetch errors become failed or retry outcomes."""
        charges: list[tuple[str, int, int]] = []
        try:
            out = self._page(item, charges) if item.kind == "page" else self._media(item, charges)
        except RetryLaterError as exc:
            out = Outcome("retry", str(exc), retry_after=exc.retry_after)
        except RobotsDisallowedError as exc:
            out = Outcome("skipped", str(exc))
        except (BlockedAddressError, FetchError, PlaylistError, MediaPrepError) as exc:
            out = Outcome("failed", f"{type(exc).__name__}: {exc}", errors=1)
        out.charges = charges + out.charges
        return out

    def _page(self, item: Item, charges: list[tuple[str, int, int]]) -> Outcome:
        resp = self.fetcher.fetch(item.url, max_bytes=self.config.page_bytes)
        charges.append((origin_of(item.url), 1, len(resp.body)))
        if resp.status != 200:
            return Outcome("failed", f"HTTP {resp.status}", errors=1)
        if family(resp.mime) != "html":
            # a link to a media file (whatever its Content-Type said): the link shows the media
            out = self._identifiable(item, resp, charges)
            out.self_ref = True
            return out
        charset = None
        ctype = resp.headers.get("content-type", "")
        if "charset=" in ctype:
            charset = ctype.split("charset=", 1)[1].split(";", 1)[0].strip(" \"'")
        refs = extract(resp.url, decode_html(resp.body, charset))
        note, errors = "", 0
        if self.config.render == "always" or (self.config.render == "auto" and needs_render(refs)):
            refs, note, errors = self._rendered(item.url, resp, refs)
        links: list[tuple[str, str]] = []
        if item.depth < self.config.depth:
            for url in refs.links:
                if not any(rule.allows(url) for rule in self.rules):
                    continue  # out of scope: not even remembered
                links.append((url, "skipped" if trap_reason(url) else "pending"))
        media: list[tuple[str, str]] = [(m.url, m.hint) for m in refs.media if not trap_reason(m.url)]
        note = f"{len(refs.links)} links, {len(refs.media)} media" + note
        return Outcome("page", note, links=links, media=media, errors=errors)

    def _rendered(self, url: str, resp: Response, refs: PageRefs) -> tuple[PageRefs, str, int]:
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
            return refs, f"; not rendered: {exc}", 1
        more = extract(resp.url, rendered.html)
        links = list(dict.fromkeys([*refs.links, *more.links]))
        media = {m.url: m for m in [*refs.media, *more.media]}
        for u, hint in rendered.media:
            media.setdefault(u, MediaRef(u, hint, "browser"))  # type: ignore[arg-type]
        merged = PageRefs(links=links, media=list(media.values()))
        note = f"; rendered: {len(rendered.fulfilled)} fetched, {len(rendered.aborted)} aborted"
        return merged, note, 0

    def _media(self, item: Item, charges: list[tuple[str, int, int]]) -> Outcome:
        if item.hint in ("video", "stream"):
            resp = self.fetcher.fetch(
                item.url, max_bytes=self.config.video_bytes, seconds=self.config.video_seconds
            )
        else:
            resp = self.fetcher.fetch(item.url, max_bytes=self.config.media_bytes)
        charges.append((origin_of(item.url), 0, len(resp.body)))
        if resp.status != 200:
            return Outcome("failed", f"HTTP {resp.status}", errors=1)
        return self._identifiable(item, resp, charges)

    def _identifiable(self, item: Item, resp: Response, charges: list[tuple[str, int, int]]) -> Outcome:
        kind = family(resp.mime)
        if kind == "stream":
            return self._stream(resp, charges)
        if kind not in ("image", "audio", "video"):
            return Outcome("skipped", f"{resp.mime} is not an image, audio or video file")
        fetched = Fetched(resp.url, sm3(resp.body), resp.mime, len(resp.body), resp.body, resp.mime)
        return Outcome("media", fetched=fetched)

    def _stream(self, resp: Response, charges: list[tuple[str, int, int]]) -> Outcome:
        """An HLS/DASH manifest: fetch its first segments within the caps and join them."""
        caps = StreamCaps(segments=self.config.stream_segments, seconds=self.config.stream_seconds)
        tracks = fetch_stream(
            self.fetcher,
            resp.url,
            resp.body,
            caps=caps,
            max_bytes=self.config.video_bytes,
            seconds=self.config.video_seconds,
            on_fetch=lambda url, n: charges.append((origin_of(url), 0, n)),
        )
        body = b"".join(t.body for t in tracks)
        note = f"{sum(t.segments for t in tracks)} segments; "
        fetched = Fetched(resp.url, sm3(body), resp.mime, len(body), None, "", note)
        with tempfile.TemporaryDirectory(prefix="rongxin-stream-") as tmp:
            try:
                path, mime = join([(t.track.kind, t.body) for t in tracks], Path(tmp))
            except MediaPrepError as exc:
                fetched.error = f"{type(exc).__name__}: {exc}"
                return Outcome("media", fetched=fetched, errors=1)
            fetched.payload, fetched.payload_mime = path.read_bytes(), mime
        return Outcome("media", fetched=fetched)


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


def identify_payload(
    fetched: Fetched, identify: Identify, clip_seconds: float, workdir: Path | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Matches of a fetched item's payload (a video cut to ``clip_seconds``), or the error that stopped it.

    Parameters
    ----------
    workdir : Path, optional
        A private directory (a worker's) where an image or audio payload is written for the
        fingerprinter under a random name, and removed afterwards; by default each payload
        gets a temporary directory of its own (a video always does: its clip goes beside it).

    Returns
    -------
    (list of dict, str)
        The matches as stored (:func:`_match_json`) and an error message (empty when none).
    """
    if fetched.payload is None:
        return [], fetched.error
    name = f"media{SUFFIX.get(fetched.payload_mime, '.bin')}"
    if workdir is not None and family(fetched.payload_mime) != "video":
        path = workdir / f"{secrets.token_hex(8)}-{name}"
        try:
            path.write_bytes(fetched.payload)
            return _identify_file(path, fetched.payload_mime, identify, clip_seconds)
        finally:
            path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="rongxin-scan-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(fetched.payload)
        return _identify_file(path, fetched.payload_mime, identify, clip_seconds)


def _identify_file(
    path: Path, mime: str, identify: Identify, clip_seconds: float
) -> tuple[list[dict[str, Any]], str]:
    from forensics.errors import ForensicsError

    try:
        if family(mime) == "video":
            path = clip(path, mime, clip_seconds, path.with_name(f"clip{path.suffix}"))
        return [_match_json(m) for m in identify(path)], ""
    except (ForensicsError, MediaPrepError) as exc:
        return [], f"{type(exc).__name__}: {exc}"
