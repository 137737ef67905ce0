"""The fetcher: one guarded, capped, polite HTTP GET, redirects followed by hand.

Every hop of a fetch: robots.txt checked (unless disabled), the host resolved and
checked by the :class:`~crawlers.guard.AddressGuard`, the origin's politeness slot
awaited, then one request sent to the checked address (the ``Host`` header and TLS
server name keep the original name, so a second DNS answer cannot redirect the
connection). The body is streamed and decoded here, not by httpx, so that size caps
apply to the decompressed bytes (a gzip bomb is refused after ``max_bytes`` of output,
whatever its compressed size) and the total-time cap applies to the whole transfer
(a server dripping one byte a second is cut off at the deadline).
"""

from __future__ import annotations

import ssl
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import httpx

from crawlers.errors import (
    FetchError,
    FetchTimeoutError,
    RedirectError,
    RobotsDisallowedError,
    TooLargeError,
)
from crawlers.guard import AddressGuard
from crawlers.politeness import HostPacer, parse_retry_after
from crawlers.robots import ROBOTS_MAX_BYTES, RobotsAnswer, RobotsCache
from crawlers.sniff import sniff
from crawlers.urls import URLError, host_of, normalize, origin_of

DEFAULT_AGENT = "RongxinScan/0.1"


class RetryLaterError(FetchError):
    """The site answered 429 or 503; retry after :attr:`retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class FetchLimits:
    """Caps of one fetch.

    Parameters
    ----------
    max_bytes : int
        Most body bytes kept, after decompression; a larger body aborts the transfer.
    total_seconds : float
        Whole-fetch budget, redirects and slow bodies included.
    connect_seconds : float
        Budget of each TCP/TLS connect.
    max_redirects : int
        Most redirect hops followed.
    max_ratio : int
        Largest decompression ratio accepted once the output passes 1 MiB.
    """

    max_bytes: int = 10 * 1024 * 1024
    total_seconds: float = 30.0
    connect_seconds: float = 10.0
    max_redirects: int = 5
    max_ratio: int = 200


@dataclass(frozen=True)
class Response:
    """A fetched body.

    Attributes
    ----------
    url : str
        The final URL (after redirects), normalised.
    status : int
    headers : dict of str to str
        Lower-case names.
    body : bytes
        Decompressed, at most ``max_bytes``.
    mime : str
        Sniffed from the body (:func:`crawlers.sniff.sniff`), not from ``Content-Type``.
    redirects : tuple of str
        The URLs before ``url``, in order.
    """

    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    mime: str
    redirects: tuple[str, ...] = ()


class _Decoder:
    """Content-Encoding decoding with an output cap (decompression bombs refused)."""

    def __init__(self, encoding: str, max_bytes: int, max_ratio: int) -> None:
        enc = encoding.strip().lower()
        self.max_bytes, self.max_ratio = max_bytes, max_ratio
        self.raw = self.out = 0
        self.tail = b""  # the part of the last output within the cap, when it went past it
        self._deflate_retry = False
        if enc in ("", "identity"):
            self._z: Any = None
        elif enc in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            self._z = zlib.decompressobj()
            self._deflate_retry = True
        else:
            raise FetchError(f"unsupported Content-Encoding {encoding!r}")

    def feed(self, chunk: bytes) -> bytes:
        self.raw += len(chunk)
        if self._z is None:
            data = chunk
        else:
            try:
                data = self._z.decompress(chunk, self.max_bytes - self.out + 1)
            except zlib.error as exc:
                if self._deflate_retry and self.out == 0:  # raw deflate without zlib header
                    self._z, self._deflate_retry = zlib.decompressobj(-zlib.MAX_WBITS), False
                    return self.feed(chunk)
                raise FetchError(f"corrupt compressed body: {exc}") from None
            if self._z.unconsumed_tail:
                raise TooLargeError(f"decompressed body beyond {self.max_bytes} bytes; refused as a bomb")
        self.out += len(data)
        if self.out > self.max_bytes:
            self.tail = data[: len(data) - (self.out - self.max_bytes)]
            raise TooLargeError(f"body beyond {self.max_bytes} bytes; transfer aborted")
        if self._z is not None and self.out > 1 << 20 and self.out > self.max_ratio * max(self.raw, 1):
            raise TooLargeError(f"compression ratio above {self.max_ratio}; refused as a decompression bomb")
        return data


@dataclass
class Fetcher:
    """Guarded, capped, polite HTTP fetches.

    Parameters
    ----------
    guard : AddressGuard
        Decides which addresses may be reached; checked on every hop.
    pacer : HostPacer
        Per-origin delay, concurrency and backoff.
    limits : FetchLimits
        Default caps (``max_bytes`` can be lowered per call).
    agent : str
        Product token of the ``User-Agent`` header and of robots.txt matching.
    contact : str
        A URL or mail address appended to the user agent, so that site owners can reach the
        operator.
    obey_robots : bool
        Refuse URLs robots.txt disallows (default). Turning it off is recorded by the scan.
    ca_file : str, optional
        PEM file of the certificate authorities trusted for HTTPS instead of the system's.
    """

    guard: AddressGuard
    pacer: HostPacer = field(default_factory=HostPacer)
    limits: FetchLimits = field(default_factory=FetchLimits)
    agent: str = DEFAULT_AGENT
    contact: str = ""
    obey_robots: bool = True
    ca_file: str | None = None

    def __post_init__(self) -> None:
        self.user_agent = f"{self.agent} (+{self.contact})" if self.contact else self.agent
        verify: ssl.SSLContext | bool = True
        if self.ca_file is not None:
            verify = ssl.create_default_context(cafile=self.ca_file)
        self._client = httpx.Client(follow_redirects=False, trust_env=False, http2=False, verify=verify)
        self.robots = RobotsCache(self.agent.split("/", 1)[0], self._load_robots)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load_robots(self, url: str) -> RobotsAnswer:
        try:
            r = self.fetch(url, max_bytes=ROBOTS_MAX_BYTES, robots=False, truncate=True)
        except RetryLaterError:
            return RobotsAnswer(429, b"")
        return RobotsAnswer(r.status, r.body)

    def fetch(
        self,
        url: str,
        *,
        max_bytes: int | None = None,
        robots: bool = True,
        truncate: bool = False,
        seconds: float | None = None,
        byte_range: str | None = None,
    ) -> Response:
        """GET ``url`` within the caps, following redirects by hand.

        Parameters
        ----------
        url : str
            A normalised http(s) URL.
        max_bytes : int, optional
            Lower body cap for this fetch.
        robots : bool
            Check robots.txt on each hop (when the fetcher obeys robots).
        truncate : bool
            Keep the first ``max_bytes`` of a larger body instead of failing.
        seconds : float, optional
            Whole-fetch time budget for this fetch instead of ``limits.total_seconds``
            (e.g. a longer one for a video file).
        byte_range : str, optional
            A ``Range`` header value (``bytes=200-1199``), sent with ``Accept-Encoding:
            identity``; the answer (206, or 200 from a server that ignores ranges) is
            returned as it came, for the caller to check (:func:`crawlers.segments.range_body`).

        Returns
        -------
        Response
            Any final status (404 and 500 included: the caller decides); 429 and 503 raise.

        Raises
        ------
        BlockedAddressError
            A hop's host resolves to a refused address.
        RobotsDisallowedError
            robots.txt forbids a hop.
        RetryLaterError
            429 or 503 (the origin's backoff is already set).
        RedirectError, TooLargeError, FetchTimeoutError, FetchError
            A cap was hit or the transfer failed.
        """
        cap = min(max_bytes or self.limits.max_bytes, self.limits.max_bytes)
        budget = self.limits.total_seconds if seconds is None else seconds
        deadline = time.monotonic() + budget
        chain: list[str] = []
        current = url
        while True:
            if robots and self.obey_robots:
                if not self.robots.allowed(current):
                    raise RobotsDisallowedError(f"robots.txt disallows {current}")
                crawl_delay = self.robots.crawl_delay(current)
                if crawl_delay is not None:
                    self.pacer.ask_delay(origin_of(current), crawl_delay)
            status, headers, body = self._one(current, deadline, cap, truncate, byte_range)
            if status in (301, 302, 303, 307, 308) and "location" in headers:
                if len(chain) >= self.limits.max_redirects:
                    raise RedirectError(f"more than {self.limits.max_redirects} redirects from {url}")
                try:
                    target = normalize(headers["location"], current)
                except URLError as exc:
                    raise RedirectError(f"redirect from {current} to a bad URL: {exc}") from None
                chain.append(current)
                if target in chain:
                    raise RedirectError(f"redirect loop: {' -> '.join([*chain, target])}")
                current = target
                continue
            origin = origin_of(current)
            if status in (429, 503):
                wait = self.pacer.backoff(origin, parse_retry_after(headers.get("retry-after"), time.time()))
                raise RetryLaterError(f"{current} answered {status}; retry in {wait:.0f} s", wait)
            self.pacer.success(origin)
            return Response(current, status, headers, body, sniff(body[:512]), tuple(chain))

    def _one(
        self, url: str, deadline: float, cap: int, truncate: bool, byte_range: str | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request to the guard-checked address of ``url``'s host."""
        try:
            target = httpx.URL(url)
            host = host_of(url)
            address = self.guard.resolve(host, target.port or (443 if target.scheme == "https" else 80))
            wire = target.copy_with(host=address)
        except httpx.InvalidURL as exc:
            raise FetchError(f"{url}: {exc}") from None
        headers = {
            "Host": target.netloc.decode("ascii"),
            "User-Agent": self.user_agent,
            "Accept-Encoding": "gzip, deflate",
            "Accept": "*/*",
        }
        if byte_range is not None:
            headers["Range"] = byte_range
            headers["Accept-Encoding"] = "identity"  # a range of the file, not of a compressed form
        with self.pacer.slot(origin_of(url)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchTimeoutError(f"{url}: time budget spent before the request")
            timeout = httpx.Timeout(min(remaining, 10.0), connect=min(remaining, self.limits.connect_seconds))
            request = self._client.build_request(
                "GET", wire, headers=headers, timeout=timeout, extensions={"sni_hostname": host}
            )
            try:
                resp = self._client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                raise FetchTimeoutError(f"{url}: {type(exc).__name__}") from None
            except httpx.HTTPError as exc:
                raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None
            try:
                return (
                    resp.status_code,
                    {k.lower(): v for k, v in resp.headers.items()},
                    self._body(resp, url, deadline, cap, truncate),
                )
            finally:
                resp.close()

    def _body(self, resp: httpx.Response, url: str, deadline: float, cap: int, truncate: bool) -> bytes:
        if 300 <= resp.status_code < 400 or resp.status_code in (429, 503):
            return b""
        declared = resp.headers.get("content-length", "")
        if (
            declared.isdigit()
            and int(declared) > cap
            and not truncate
            and "content-encoding" not in resp.headers
        ):
            raise TooLargeError(f"{url}: declares {declared} bytes, more than the cap of {cap}")
        decoder = _Decoder(resp.headers.get("content-encoding", ""), cap, self.limits.max_ratio)
        parts: list[bytes] = []
        try:
            for chunk in resp.iter_raw():  # as received: a sized iterator would buffer a drip
                if time.monotonic() > deadline:
                    raise FetchTimeoutError(f"{url}: transfer exceeded its time budget")
                try:
                    parts.append(decoder.feed(chunk))
                except TooLargeError:
                    if truncate and decoder.out >= cap:
                        parts.append(decoder.tail)  # the first ``cap`` bytes, whole
                        break
                    raise
        except httpx.TimeoutException as exc:
            raise FetchTimeoutError(f"{url}: {type(exc).__name__} while reading the body") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"{url}: {type(exc).__name__} while reading the body: {exc}") from None
        return b"".join(parts)[:cap]
