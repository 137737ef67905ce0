"""robots.txt rules per origin, parsed by Protego and cached for the scan.

Statuses follow RFC 9309: a 2xx file is parsed; 4xx means no rules (everything allowed);
a 5xx, a 429 or a network failure means the site is unreachable and everything is
disallowed (the safe reading) until the file is asked for again, :data:`UNREACHABLE_TTL`
seconds later. A file is read up to 512 KiB (the RFC's minimum a
crawler must parse); the rest is ignored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from protego import Protego

from crawlers.errors import BlockedAddressError, CrawlError
from crawlers.urls import origin_of

#: Bytes of a robots.txt that are parsed.
ROBOTS_MAX_BYTES = 512 * 1024


@dataclass(frozen=True)
class RobotsAnswer:
    """What fetching ``/robots.txt`` gave: a status (0 for a network failure) and the body."""

    status: int
    body: bytes


#: Seconds an unreachable robots.txt (5xx, network failure) keeps a site disallowed before
#: the file is asked for again.
UNREACHABLE_TTL = 120.0


class _Rules:
    def __init__(self, parser: Protego | None, allow_all: bool, expires: float = float("inf")) -> None:
        self.parser = parser
        self.allow_all = allow_all
        self.expires = expires

    def allowed(self, url: str, agent: str) -> bool:
        if self.parser is None:
            return self.allow_all
        return bool(self.parser.can_fetch(url, agent))

    def crawl_delay(self, agent: str) -> float | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(agent)
        return None if delay is None else float(delay)


class RobotsCache:
    """Allows or refuses URLs by their origin's robots.txt, fetched once per origin.

    Parameters
    ----------
    agent : str
        The product token matched against ``User-agent`` lines (e.g. ``"RongxinScan"``).
    load : callable
        ``(robots_url) -> RobotsAnswer``; the fetcher's guarded request.
    """

    def __init__(
        self, agent: str, load: Callable[[str], RobotsAnswer], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.agent = agent
        self._load = load
        self._clock = clock
        self._rules: dict[str, _Rules] = {}
        self._lock = threading.Lock()

    def _rules_for(self, origin: str) -> _Rules:
        with self._lock:
            cached = self._rules.get(origin)
        if cached is not None and cached.expires > self._clock():
            return cached
        try:
            answer = self._load(origin + "/robots.txt")
        except BlockedAddressError:
            raise
        except CrawlError:
            answer = RobotsAnswer(0, b"")
        if 200 <= answer.status < 300:
            text = answer.body[:ROBOTS_MAX_BYTES].decode("utf-8", errors="replace")
            rules = _Rules(Protego.parse(text), allow_all=True)
        else:
            unavailable = 400 <= answer.status < 500 and answer.status != 429
            expires = float("inf") if unavailable else self._clock() + UNREACHABLE_TTL
            rules = _Rules(None, allow_all=unavailable, expires=expires)
        with self._lock:
            self._rules[origin] = rules
        return rules

    def allowed(self, url: str) -> bool:
        """Whether our agent may fetch the normalised ``url``."""
        return self._rules_for(origin_of(url)).allowed(url, self.agent)

    def crawl_delay(self, url: str) -> float | None:
        """The ``Crawl-delay`` the origin of ``url`` asks of our agent, if any (seconds)."""
        return self._rules_for(origin_of(url)).crawl_delay(self.agent)
