"""Per-host politeness: a minimum delay between requests, a concurrency cap, and backoff.

One :class:`HostPacer` is shared by every fetch of a scan. Before a request to an origin
the fetcher waits for its slot (:meth:`HostPacer.slot`); a ``429``/``503`` answer pushes
the origin's next slot out by its ``Retry-After`` (seconds or an HTTP date) or, without
one, by an exponential backoff. Pure timing logic with an injectable clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or ``None``.

    Examples
    --------
    >>> parse_retry_after("7", 0.0), parse_retry_after("soon", 0.0)
    (7.0, None)
    >>> parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", 40.0)
    60.0
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


@dataclass
class _Host:
    delay: float | None = None
    next_at: float = 0.0
    failures: int = 0
    active: int = 0


@dataclass
class HostPacer:
    """Delay, concurrency and backoff per origin.

    Parameters
    ----------
    delay : float
        Seconds between the starts of two requests to one origin (1.0: one request/s).
    concurrency : int
        Requests in flight per origin.
    max_backoff : float
        Longest wait a ``Retry-After`` or backoff may impose (seconds); longer asks are cut
        to it.
    clock, sleep : callables
        Injectable for tests.
    """

    delay: float = 1.0
    concurrency: int = 1
    max_backoff: float = 300.0
    clock: Callable[[], float] = field(default=time.monotonic)
    sleep: Callable[[float], None] = field(default=time.sleep)

    def __post_init__(self) -> None:
        if self.delay < 0 or self.concurrency < 1 or self.max_backoff < 0:
            raise ValueError("delay and max_backoff must be >= 0 and concurrency >= 1")
        self._hosts: dict[str, _Host] = {}
        self._cond = threading.Condition()

    def wait_time(self, origin: str) -> float:
        """Seconds until ``origin``'s next slot (0 when a request may start now)."""
        with self._cond:
            host = self._hosts.get(origin)
            return 0.0 if host is None else max(0.0, host.next_at - self.clock())

    @contextmanager
    def slot(self, origin: str) -> Iterator[None]:
        """Block until a request to ``origin`` may start; hold a concurrency slot meanwhile."""
        with self._cond:
            host = self._hosts.setdefault(origin, _Host())
            while True:
                wait = host.next_at - self.clock()
                if host.active < self.concurrency and wait <= 0:
                    break
                if wait > 0:
                    self._cond.release()
                    try:
                        self.sleep(min(wait, 1.0))
                    finally:
                        self._cond.acquire()
                else:
                    self._cond.wait(0.5)
            host.active += 1
            host.next_at = self.clock() + (self.delay if host.delay is None else host.delay)
        try:
            yield
        finally:
            with self._cond:
                host.active -= 1
                self._cond.notify_all()

    def hold(self, origin: str, until: float) -> None:
        """No request to ``origin`` starts before ``until`` (this pacer's clock): the slot
        handed over by another process that fetched from ``origin`` last."""
        with self._cond:
            host = self._hosts.setdefault(origin, _Host())
            host.next_at = max(host.next_at, until)

    def ask_delay(self, origin: str, seconds: float) -> float:
        """Honour a site's own ``Crawl-delay``: ``origin``'s delay becomes the larger of the
        default and ``seconds`` (at most ``max_backoff``); returns the delay in force."""
        with self._cond:
            host = self._hosts.setdefault(origin, _Host())
            host.delay = min(max(self.delay, float(seconds)), self.max_backoff)
            return host.delay

    def backoff(self, origin: str, retry_after: float | None) -> float:
        """Push ``origin``'s next slot out after a 429/503; returns the wait imposed (seconds)."""
        with self._cond:
            host = self._hosts.setdefault(origin, _Host())
            host.failures += 1
            wait = (
                retry_after if retry_after is not None else max(self.delay, 1.0) * 2 ** min(host.failures, 8)
            )
            wait = min(wait, self.max_backoff)
            host.next_at = max(host.next_at, self.clock() + wait)
            return wait

    def success(self, origin: str) -> None:
        """Reset ``origin``'s backoff after a good answer."""
        with self._cond:
            host = self._hosts.get(origin)
            if host is not None:
                host.failures = 0
