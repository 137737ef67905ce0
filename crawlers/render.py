"""The browser tier: pages that build themselves with JavaScript, rendered in headless chromium.

The browser gets no network of its own. Every request a rendered page makes is
intercepted (Playwright's ``context.route``) and either

* **fulfilled by the scan's guarded fetcher** — documents, scripts, style sheets and
  XHR/fetch calls: so robots.txt, the per-site pace, the size and time caps and the SSRF
  guard (DNS resolved and checked by :class:`~crawlers.guard.AddressGuard`, the connection
  made to the checked address) apply exactly as to a plain fetch; or
* **aborted** — a scheme other than http(s) (``data:`` and ``blob:`` stay inside the
  page), a literal address the guard refuses (checked before anything else, without a
  lookup), a host whose resolution the guard refuses, anything past the page's request,
  byte or time budget, and images, media and fonts (not needed to build the DOM; their
  URLs are recorded as media references and fetched by the scan like any other).

Behind the interception chromium is started with a dead loopback proxy
(``127.0.0.1:9``, loopback included) and a host resolver that resolves nothing, so a
request that escaped interception (a WebSocket, a prefetch) could not leave the machine
either; WebSockets are closed and service workers blocked. Each page gets a fresh browser
context (no cookies, storage or cache shared between pages).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crawlers.errors import BlockedAddressError, BrowserError, CrawlError
from crawlers.extract import PageRefs
from crawlers.fetch import Fetcher, Response
from crawlers.urls import URLError, host_of, normalize

if TYPE_CHECKING:
    from playwright.sync_api import Browser

#: Chromium flags that take the browser's own network away (see the module notes).
NO_NETWORK_ARGS = (
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
#: Resource types fetched for the browser; the others are aborted.
FETCHED_TYPES = frozenset({"document", "script", "stylesheet", "xhr", "fetch", "other"})
_MEDIA_TYPES = {"image": "image", "media": "video"}
_STREAM = re.compile(r"\.(m3u8|mpd)(\?|$)", re.IGNORECASE)


@dataclass(frozen=True)
class RenderLimits:
    """Budgets of one rendered page.

    Attributes
    ----------
    seconds : float
        Load and settle time of the page, its requests included.
    requests : int
        Requests fulfilled (beyond it, requests are aborted).
    bytes : int
        Body bytes fulfilled in total.
    settle_ms : int
        Wait after the ``load`` event for scripts that add content late.
    """

    seconds: float = 20.0
    requests: int = 50
    bytes: int = 20 * 1024 * 1024
    settle_ms: int = 500


@dataclass
class Rendered:
    """A rendered page: its DOM, and what its requests did.

    Attributes
    ----------
    url : str
        The page URL.
    html : str
        ``document.documentElement.outerHTML`` after load and settling.
    fulfilled : list of str
        URLs fetched for the browser.
    aborted : list of (str, str)
        URLs refused, with the reason.
    media : list of (str, str)
        Image, media and stream URLs the page asked for, with a hint (``"image"``,
        ``"video"``, ``"stream"``).
    """

    url: str
    html: str = ""
    fulfilled: list[str] = field(default_factory=list)
    aborted: list[tuple[str, str]] = field(default_factory=list)
    media: list[tuple[str, str]] = field(default_factory=list)


def needs_render(refs: PageRefs) -> bool:
    """``--render auto``: whether a page's static HTML looks like an app that builds itself.

    True when the page runs scripts and its static HTML shows no media, and either little
    text (under 200 visible characters) or a ``<noscript>`` message.

    Examples
    --------
    >>> needs_render(PageRefs(scripts=2, text_chars=20)), needs_render(PageRefs(scripts=0, text_chars=0))
    (True, False)
    """
    if refs.scripts == 0:
        return False
    return not refs.media and (refs.noscript or refs.text_chars < 200)


class Renderer:
    """Renders pages in one headless chromium (started on first use), a fresh context each.

    Parameters
    ----------
    fetcher : Fetcher
        The scan's guarded fetcher; it serves every request the browser makes.
    limits : RenderLimits
    user_agent : str
        The scan's user agent, also presented by the browser.
    """

    def __init__(self, fetcher: Fetcher, limits: RenderLimits | None = None, user_agent: str = "") -> None:
        self.fetcher = fetcher
        self.limits = limits or RenderLimits()
        self.user_agent = user_agent or fetcher.user_agent
        self._stack = contextlib.ExitStack()
        self._browser: Browser | None = None

    def close(self) -> None:
        """Close the browser (if it was started)."""
        self._browser = None
        self._stack.close()

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> Browser:
        if self._browser is None:
            from crawlers.browser import launch

            self._browser = self._stack.enter_context(launch(extra_args=NO_NETWORK_ARGS))
        return self._browser

    def _refusal(self, url: str) -> tuple[str | None, str]:
        """Why the browser's request for ``url`` is refused (or ``None``), and its normalised form."""
        if url.startswith(("data:", "blob:")):
            return "inside the page", url
        try:
            norm = normalize(url)
        except URLError as exc:
            return f"not fetched: {exc}", url
        host = host_of(norm)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return None, norm  # a name: the fetcher's guard resolves and checks it
        why = self.fetcher.guard.refusal(host)
        return (None if why is None else f"a {why} address"), norm

    def render(self, url: str, first: Response | None = None) -> Rendered:
        """Load ``url`` in a fresh context and return its DOM and request log.

        Parameters
        ----------
        url : str
            A normalised page URL.
        first : Response, optional
            The page as already fetched; the browser's request for it is answered from it.

        Raises
        ------
        BrowserError
            Chromium is missing or crashed.
        """
        from playwright.sync_api import Error as PlaywrightError

        out = Rendered(url)
        deadline = time.monotonic() + self.limits.seconds
        budget = {"requests": self.limits.requests, "bytes": self.limits.bytes}

        def handle(route: Any) -> None:
            req = route.request
            why, norm = self._refusal(req.url)
            rtype = req.resource_type
            if why == "inside the page":
                route.continue_()
                return
            if why is None and rtype in _MEDIA_TYPES:
                out.media.append((norm, "stream" if _STREAM.search(norm) else _MEDIA_TYPES[rtype]))
                why = "media are fetched by the scan"
            elif why is None and rtype not in FETCHED_TYPES:
                why = f"{rtype} not needed"
            elif why is None and (budget["requests"] <= 0 or budget["bytes"] <= 0):
                why = "page budget spent"
            elif why is None and time.monotonic() >= deadline:
                why = "page time spent"
            if why is not None:
                out.aborted.append((req.url, why))
                route.abort("blockedbyclient")
                return
            if _STREAM.search(norm):
                out.media.append((norm, "stream"))
            try:
                if first is not None and norm == url and rtype == "document":
                    resp = first
                else:
                    resp = self.fetcher.fetch(
                        norm,
                        max_bytes=budget["bytes"],
                        seconds=max(deadline - time.monotonic(), 0.01),
                    )
            except (BlockedAddressError, CrawlError) as exc:
                out.aborted.append((req.url, f"{type(exc).__name__}: {exc}"))
                route.abort("blockedbyclient")
                return
            budget["requests"] -= 1
            budget["bytes"] -= len(resp.body)
            out.fulfilled.append(norm)
            headers = {
                k: v
                for k, v in resp.headers.items()
                if k in ("content-type", "access-control-allow-origin", "location")
            }
            route.fulfill(status=resp.status, headers=headers, body=resp.body)

        browser = self._start()
        try:
            context = browser.new_context(
                user_agent=self.user_agent,
                service_workers="block",
                accept_downloads=False,
                java_script_enabled=True,
            )
        except PlaywrightError as exc:
            raise BrowserError(f"chromium failed to open a context: {exc.message}") from exc
        try:
            context.route("**/*", handle)
            context.route_web_socket("**/*", lambda ws: ws.close())
            page = context.new_page()
            timeout_ms = max(self.limits.seconds * 1000, 1.0)
            page.set_default_timeout(timeout_ms)
            try:
                page.goto(url, wait_until="load", timeout=timeout_ms)
                remaining = int((deadline - time.monotonic()) * 1000)
                if remaining > 0:
                    page.wait_for_timeout(min(self.limits.settle_ms, remaining))
            except PlaywrightError as exc:  # time-outs and navigation errors: keep what was built
                out.aborted.append((url, f"page load: {exc.message.splitlines()[0][:200]}"))
            try:
                out.html = page.content()
            except PlaywrightError as exc:
                raise BrowserError(f"the rendered page of {url} could not be read: {exc.message}") from exc
        finally:
            with contextlib.suppress(PlaywrightError):
                context.close()
        return out
