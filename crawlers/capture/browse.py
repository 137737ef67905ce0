"""Capture one page as evidence: a fresh browser profile, every request in a WARC, a
full-page screenshot, a screen recording of the whole visit, the media files, the DOM,
the environment record and a timestamped log.

The visit: open the recorder on a blank page, load the URL, wait for the network to
settle, scroll to the bottom and back (lazy content loads), take the screenshot and the
DOM snapshot, scroll the first video or audio element into view and play it for the
matched span, stop the recorder. Every request the page makes passes the SSRF guard
(:class:`crawlers.guard.AddressGuard`) first; refused requests are aborted and logged.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from crawlers.browser import chromium_executable, launch
from crawlers.capture.environment import clock_record, system_record, tls_chain
from crawlers.capture.log import CaptureLog, utc_iso
from crawlers.capture.media import is_media, is_playlist, playlist_uris
from crawlers.capture.recording import ScreenRecorder
from crawlers.capture.warc import Exchange, split_partial, write_warc
from crawlers.errors import BlockedAddressError, BrowserError, CaptureError
from crawlers.guard import AddressGuard, Resolver, system_resolver

#: Where each product of a capture lives, relative to the capture (and package) directory.
WARC_PATH = "archive/data.warc.gz"
#: The browser's partial (206) responses of media also held in full: kept, but outside
#: ``archive/`` so that replay tools serve the complete file (see ``split_partial``).
PARTIAL_WARC_PATH = "evidence/partial-responses.warc.gz"
SCREENSHOT = "evidence/screenshot.png"
RECORDING = "evidence/recording.mp4"
DOM = "evidence/dom.html"
MHTML = "evidence/page.mhtml"
ENVIRONMENT = "evidence/environment.json"
LOG = "evidence/capture-log.jsonl"
SUMMARY = "evidence/capture.json"
MEDIA_DIR = "media"

_SCROLL_JS = """async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  let steps = 0;
  while (steps < 40 && window.scrollY + window.innerHeight < document.documentElement.scrollHeight) {
    window.scrollBy(0, window.innerHeight); steps++; await sleep(150);
  }
  window.scrollTo(0, 0); await sleep(100);
  return {steps, height: document.documentElement.scrollHeight};
}"""

_MEDIA_JS = """() => Array.from(document.querySelectorAll('video, audio, video source, audio source'))
  .map(e => e.currentSrc || e.src).filter(s => s)"""

_PLAY_JS = """async ([start, timeoutMs]) => {
  const m = document.querySelector('video, audio');
  if (!m) return {found: false};
  m.scrollIntoView({block: 'center'});
  m.muted = true;
  if (m.readyState < 1) {
    await new Promise(r => {
      m.addEventListener('loadedmetadata', r, {once: true}); setTimeout(r, timeoutMs);
    });
  }
  const bad = why => ({found: true, playable: false, src: m.currentSrc, error: why});
  if (!(m.duration > 0)) return bad(m.error && m.error.code);
  if (start > 0) {
    const seeked = new Promise(r => {
      m.addEventListener('seeked', r, {once: true}); setTimeout(r, timeoutMs);
    });
    m.currentTime = Math.min(start, m.duration);
    await seeked;
  }
  try { await m.play(); } catch (e) { return bad(String(e)); }
  return {found: true, playable: true, src: m.currentSrc, duration: m.duration, start: m.currentTime};
}"""


@dataclass
class CaptureOptions:
    """How a capture behaves.

    Parameters
    ----------
    allow : tuple of str
        Addresses or networks the SSRF guard lets the browser reach although they are not
        public (tests: ``("127.0.0.1",)``).
    resolver : callable
        ``(host, port) -> [address]``; the system resolver by default.
    record_screen : bool
        Make the MP4 screen recording.
    play_span : (float, float), optional
        Seconds of the media to play (the matched span); default the first
        ``default_play_s`` seconds.
    default_play_s, max_play_s : float
        Play length without a span, and the cap on any span.
    viewport : (int, int)
        Browser window size.
    timeout_s : float
        Page load budget.
    max_media_files, max_media_bytes : int
        Caps on the media files fetched (HLS segments count one each) and on each file.
    case_media : tuple of str
        URLs of the case's copy, fetched in full into ``media/`` (and the WARC) even when
        they are not video or audio: an image copy is kept as a file of its own.
    ledger_time_ms : callable, optional
        Returns the ledger's current time; recorded with the local clock's offset.
    ignore_https_errors : bool
        Load pages whose certificate does not verify (recorded in the environment; the
        chain each site presented is recorded either way).
    """

    allow: tuple[str, ...] = ()
    resolver: Resolver = system_resolver
    record_screen: bool = True
    play_span: tuple[float, float] | None = None
    default_play_s: float = 10.0
    max_play_s: float = 60.0
    viewport: tuple[int, int] = (1280, 720)
    timeout_s: float = 30.0
    max_media_files: int = 400
    max_media_bytes: int = 512 << 20
    ledger_time_ms: Callable[[], int] | None = None
    ignore_https_errors: bool = False
    case_media: tuple[str, ...] = ()


@dataclass
class Capture:
    """What a capture wrote: ``files`` maps package paths to the files in ``directory``."""

    directory: Path
    url: str
    final_url: str
    title: str
    status: int
    started_ms: int
    finished_ms: int
    files: dict[str, Path] = field(default_factory=dict)
    media: list[dict[str, Any]] = field(default_factory=list)


def _safe_name(url: str, index: int) -> str:
    base = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "media"
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base)[-80:].lstrip(".") or "media"
    return f"{index:03d}-{base}"


class _Guarded:
    """The route handler: resolves every request's host through the guard, records answers."""

    def __init__(self, guard: AddressGuard, log: CaptureLog) -> None:
        self.guard, self.log = guard, log
        self.dns: dict[str, dict[str, Any]] = {}
        self.refused: list[str] = []

    def check(self, url: str) -> str | None:
        """The checked address of ``url``'s host, or ``None`` when refused (logged)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.refused.append(url)
            self.log.add("refused", url=url, reason=f"scheme {parts.scheme!r}")
            return None
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname
        try:
            answers = self.guard.resolver(host, port)
            address = self.guard.resolve(host, port)
        except BlockedAddressError as exc:
            self.refused.append(url)
            self.log.add("refused", url=url, reason=str(exc))
            return None
        if host not in self.dns:
            self.dns[host] = {"answers": answers, "port": port, "time": utc_iso(time.time())}
            self.log.add("dns", host=host, answers=answers)
        return address

    def route(self, route: Any) -> None:
        if self.check(route.request.url) is None:
            route.abort("blockedbyclient")
        else:
            route.continue_()


def _exchange(req: Any, when: float) -> Exchange | None:
    resp = req.response()
    if resp is None:
        return None
    try:
        body = resp.body()
    except Exception:  # redirects and evicted bodies have none
        body = b""
    addr = resp.server_addr() or {}
    return Exchange(
        url=req.url,
        method=req.method,
        request_headers=[(h["name"], h["value"]) for h in req.headers_array()],
        status=resp.status,
        response_headers=[(h["name"], h["value"]) for h in resp.headers_array()],
        body=body,
        time=when,
        request_body=req.post_data_buffer or b"",
        ip=addr.get("ipAddress"),
    )


def capture(url: str, out: Path, options: CaptureOptions | None = None) -> Capture:
    """Capture ``url`` into the directory ``out`` (created; must be empty or absent).

    Returns
    -------
    Capture

    Raises
    ------
    CaptureError
        The URL is refused by the guard, the page does not load, or recording fails.
    BrowserError
        Chromium is missing or crashed.
    """
    opts = options or CaptureOptions()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise CaptureError(f"{out} is not empty")
    for sub in ("archive", "evidence", MEDIA_DIR):
        (out / sub).mkdir(parents=True, exist_ok=True)
    log = CaptureLog()
    guarded = _Guarded(AddressGuard(allow=opts.allow, resolver=opts.resolver), log)
    if guarded.check(url) is None:
        raise CaptureError(f"refused to capture {url}: {log.entries[-1].get('reason')}")
    started = time.time()
    log.add("start", url=url)
    finished: list[tuple[float, Any]] = []
    files: dict[str, Path] = {}
    try:
        with launch(
            extra_args=("--no-proxy-server", "--autoplay-policy=no-user-gesture-required")
        ) as browser:
            log.add("browser", version=browser.version, profile="fresh (new incognito context)")
            context = browser.new_context(
                viewport={"width": opts.viewport[0], "height": opts.viewport[1]},
                service_workers="block",
                accept_downloads=False,
                ignore_https_errors=opts.ignore_https_errors,
            )
            try:
                page = context.new_page()
                page.route("**/*", guarded.route)
                page.on("requestfinished", lambda r: finished.append((time.time(), r)))
                page.on("requestfailed", lambda r: log.add("request-failed", url=r.url, error=r.failure))
                recorder = (
                    ScreenRecorder(page, out / RECORDING, size=opts.viewport) if opts.record_screen else None
                )
                if recorder is not None:
                    recorder.start()
                    log.add("recording-started", fps=recorder.fps)
                title, status, final_url = _visit(page, url, opts, log)
                (out / SCREENSHOT).write_bytes(page.screenshot(full_page=True))
                log.add("screenshot", path=SCREENSHOT)
                (out / DOM).write_text(page.content(), encoding="utf-8")
                cdp = context.new_cdp_session(page)
                (out / MHTML).write_text(
                    cdp.send("Page.captureSnapshot", {"format": "mhtml"})["data"], encoding="utf-8"
                )
                cdp.detach()
                log.add("dom-snapshot", paths=[DOM, MHTML])
                dom_media = [u for u in page.evaluate(_MEDIA_JS) if isinstance(u, str)]
                _play(page, opts, log)
                if recorder is not None:
                    recorder.stop()
                    log.add(
                        "recording-stopped", frames=recorder.frames_written, received=recorder.frames_received
                    )
                    files[RECORDING] = out / RECORDING
                exchanges = [ex for when, req in finished if (ex := _exchange(req, when)) is not None]
                log.add("network", responses=len(exchanges), refused=len(guarded.refused))
                media, fetched = _fetch_media(context, exchanges, dom_media, guarded, opts, out, log)
            finally:
                context.close()
            browser_version = browser.version
    except BrowserError:
        raise
    except CaptureError:
        raise
    except Exception as exc:  # Playwright errors: the page could not be captured
        raise CaptureError(f"capture of {url} failed: {exc}") from exc
    info = {"software": "rongxin evidence capture", "format": "WARC File Format 1.1", "isPartOf": url}
    kept, partial, partial_checks = split_partial(
        exchanges, {ex.url: ex.body for ex in fetched if ex.status == 200}
    )
    write_warc(out / WARC_PATH, [*kept, *fetched], info)
    log.add("warc", path=WARC_PATH, records=len(kept) + len(fetched))
    if partial:
        write_warc(
            out / PARTIAL_WARC_PATH,
            partial,
            info | {"description": "partial responses of media held in full"},
        )
        files[PARTIAL_WARC_PATH] = out / PARTIAL_WARC_PATH
        log.add("partial-responses", path=PARTIAL_WARC_PATH, responses=partial_checks)
    env = system_record(browser_version, str(chromium_executable()))
    env["dns"] = guarded.dns
    env["https_errors_ignored"] = opts.ignore_https_errors
    env["servers"] = sorted({ex.ip for ex in exchanges if ex.ip})
    env["tls"] = [
        tls_chain(h, d["answers"][0], d["port"])
        for h, d in guarded.dns.items()
        if d["port"] and _is_https(h, exchanges)
    ]
    ledger_ms = None
    ledger_error = None
    if opts.ledger_time_ms is not None:
        try:
            ledger_ms = opts.ledger_time_ms()
        except Exception as exc:  # the offset is informative; a capture stands without it
            log.add("ledger-time-failed", error=str(exc))
            ledger_error = str(exc)
    env["clock"] = clock_record(int(time.time() * 1000), ledger_ms)
    if ledger_error is not None:
        env["clock"]["ledger_error"] = ledger_error
    (out / ENVIRONMENT).write_text(
        json.dumps(env, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8"
    )
    finished_t = time.time()
    log.add("done")
    result = Capture(
        out, url, final_url, title, status, int(started * 1000), int(finished_t * 1000), media=media
    )
    summary = {
        "url": url, "final_url": final_url, "title": title, "status": status,
        "started": utc_iso(started), "finished": utc_iso(finished_t),
        "started_ms": result.started_ms, "finished_ms": result.finished_ms, "media": media,
        "refused": guarded.refused,
    }  # fmt: skip
    (out / SUMMARY).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / LOG).write_bytes(log.to_jsonl())
    for rel in (WARC_PATH, SCREENSHOT, DOM, MHTML, ENVIRONMENT, LOG, SUMMARY):
        files[rel] = out / rel
    for m in media:
        files[m["path"]] = out / m["path"]
    result.files = dict(sorted(files.items()))
    return result


def _is_https(host: str, exchanges: list[Exchange]) -> bool:
    return any(urlsplit(ex.url).scheme == "https" and urlsplit(ex.url).hostname == host for ex in exchanges)


def _visit(page: Any, url: str, opts: CaptureOptions, log: CaptureLog) -> tuple[str, int, str]:
    response = page.goto(url, wait_until="load", timeout=opts.timeout_s * 1000)
    if response is None:
        raise CaptureError(f"{url} gave no response")
    log.add("loaded", url=page.url, status=response.status)
    try:
        page.wait_for_load_state("networkidle", timeout=5000)
    except Exception:  # a page that keeps polling still gets captured
        log.add("network-busy", note="the network did not settle within 5 s")
    scrolled = page.evaluate(_SCROLL_JS)
    log.add("scrolled", steps=scrolled.get("steps"), height=scrolled.get("height"))
    return page.title(), response.status, page.url


def _play(page: Any, opts: CaptureOptions, log: CaptureLog) -> None:
    start, end = opts.play_span if opts.play_span else (0.0, opts.default_play_s)
    start = max(0.0, start)
    length = max(0.0, min(end - start, opts.max_play_s))
    state = page.evaluate(_PLAY_JS, [start, 5000])
    if not state.get("found"):
        log.add("no-media-element")
        return
    if not state.get("playable"):
        log.add("media-not-playable", src=state.get("src"), error=state.get("error"))
        return
    length = min(length, max(0.0, float(state["duration"]) - float(state["start"])))
    if abs(float(state["start"]) - min(start, float(state["duration"]))) > 0.5:
        log.add("seek-failed", wanted=start, at=state["start"], note="the server may not serve byte ranges")
    log.add("play", src=state.get("src"), start=state["start"], seconds=round(length, 3))
    page.wait_for_timeout(length * 1000)
    reached = page.evaluate(
        "() => { const m = document.querySelector('video, audio'); m.pause(); return m.currentTime; }"
    )
    log.add("paused", at=reached)


def _fetch_media(
    context: Any,
    exchanges: list[Exchange],
    dom_media: list[str],
    guarded: _Guarded,
    opts: CaptureOptions,
    out: Path,
    log: CaptureLog,
) -> tuple[list[dict[str, Any]], list[Exchange]]:
    """Fetch every media file the page used, and the case's copy, in full (HLS playlists
    with their segments)."""
    queue: dict[str, None] = {}
    for ex in exchanges:
        ctype = next((v for k, v in ex.response_headers if k.lower() == "content-type"), "")
        if is_media(ex.url, ctype):
            queue.setdefault(ex.url)
    for u in [*opts.case_media, *dom_media]:
        if u.startswith(("http://", "https://")):
            queue.setdefault(u)
    media: list[dict[str, Any]] = []
    fetched: list[Exchange] = []
    done: set[str] = set()
    todo = list(queue)
    while todo and len(media) < opts.max_media_files:
        url = todo.pop(0)
        if url in done:
            continue
        done.add(url)
        address = guarded.check(url)
        if address is None:
            continue
        when = time.time()
        try:
            # redirects are not followed here: the target joins the queue and passes the guard
            resp = context.request.get(url, timeout=opts.timeout_s * 1000, max_redirects=0)
            headers = resp.headers_array
            location = next((h["value"] for h in headers if h["name"].lower() == "location"), None)
            if 300 <= resp.status < 400 and location:
                target = urljoin(url, location)
                log.add("media-redirect", url=url, to=target)
                if target not in done:
                    todo.append(target)
                continue
            length = next((h["value"] for h in headers if h["name"].lower() == "content-length"), None)
            if length is not None and length.isdigit() and int(length) > opts.max_media_bytes:
                log.add("media-too-large", url=url, bytes=int(length))
                continue
            body = resp.body()
            status = resp.status
        except Exception as exc:  # one failed file does not stop the capture
            log.add("media-failed", url=url, error=str(exc))
            continue
        if len(body) > opts.max_media_bytes or status >= 400:
            log.add("media-skipped", url=url, status=status, bytes=len(body))
            continue
        rel = f"{MEDIA_DIR}/{_safe_name(url, len(media))}"
        (out / rel).write_bytes(body)
        media.append({"url": url, "path": rel, "bytes": len(body), "status": status})
        log.add("media", url=url, path=rel, bytes=len(body))
        fetched.append(
            Exchange(
                url,
                "GET",
                [],
                status,
                [(h["name"], h["value"]) for h in headers],
                body,
                when,
                ip=address,
                note="media file fetched in full by the capture",
            )
        )
        ctype = next((h["value"] for h in headers if h["name"].lower() == "content-type"), "")
        if is_playlist(url, ctype, body[:64]):
            todo.extend(u for u in playlist_uris(url, body) if u not in done)
    return media, fetched
