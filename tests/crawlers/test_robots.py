"""robots.txt statuses (RFC 9309), caching, Crawl-delay, and the pacer's per-site delay."""

from __future__ import annotations

import pytest

from crawlers.errors import BlockedAddressError, FetchError
from crawlers.politeness import HostPacer
from crawlers.robots import UNREACHABLE_TTL, RobotsAnswer, RobotsCache

RULES = (
    b"User-agent: *\nDisallow: /private/\nCrawl-delay: 4\n\nUser-agent: RongxinScan\nDisallow: /no-scans/\n"
)


class Loader:
    def __init__(self, answers: list[RobotsAnswer | Exception]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, url: str) -> RobotsAnswer:
        self.asked.append(url)
        answer = self.answers[min(len(self.asked), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_parsed_rules_and_agent_groups() -> None:
    load = Loader([RobotsAnswer(200, RULES)])
    robots = RobotsCache("RongxinScan", load)
    assert robots.allowed("http://h.test/private/x.jpg")  # our own group replaces the * group
    assert not robots.allowed("http://h.test/no-scans/a.html")
    assert robots.allowed("http://h.test/")
    other = RobotsCache("OtherBot", Loader([RobotsAnswer(200, RULES)]))
    assert not other.allowed("http://h.test/private/x.jpg")
    assert other.crawl_delay("http://h.test/") == 4.0
    assert load.asked == ["http://h.test/robots.txt"]  # once per origin
    robots.allowed("http://h.test:8080/")
    assert load.asked[-1] == "http://h.test:8080/robots.txt"


@pytest.mark.parametrize(
    ("answer", "allowed"),
    [
        (RobotsAnswer(404, b""), True),
        (RobotsAnswer(403, b""), True),
        (RobotsAnswer(429, b""), False),
        (RobotsAnswer(500, b""), False),
        (RobotsAnswer(0, b""), False),
        (FetchError("timed out"), False),
        (RobotsAnswer(200, b"\xff\xfe garbage \x00 Disallow"), True),
        (RobotsAnswer(200, b"User-agent: *\nDisallow: /\n" + b"#" * (600 * 1024)), False),
    ],
)
def test_statuses(answer: RobotsAnswer | Exception, allowed: bool) -> None:
    assert RobotsCache("RongxinScan", Loader([answer])).allowed("http://h.test/page") is allowed


def test_unreachable_is_asked_again_later() -> None:
    now = [0.0]
    load = Loader([RobotsAnswer(503, b""), RobotsAnswer(200, b"User-agent: *\nAllow: /\n")])
    robots = RobotsCache("RongxinScan", load, clock=lambda: now[0])
    assert not robots.allowed("http://h.test/a")
    now[0] = UNREACHABLE_TTL / 2
    assert not robots.allowed("http://h.test/a") and len(load.asked) == 1
    now[0] = UNREACHABLE_TTL + 1
    assert robots.allowed("http://h.test/a") and len(load.asked) == 2


def test_blocked_robots_address_propagates() -> None:
    robots = RobotsCache("RongxinScan", Loader([BlockedAddressError("private")]))
    with pytest.raises(BlockedAddressError):
        robots.allowed("http://intranet.test/")


def test_crawl_delay_slows_one_site_only() -> None:
    t = [0.0]

    def sleep(s: float) -> None:
        t[0] += s

    pacer = HostPacer(delay=1.0, max_backoff=10.0, clock=lambda: t[0], sleep=sleep)
    assert pacer.ask_delay("http://slow", 4.0) == 4.0
    assert pacer.ask_delay("http://greedy", 0.1) == 1.0  # never below our own delay
    assert pacer.ask_delay("http://absurd", 1e9) == 10.0
    for _ in range(2):
        with pacer.slot("http://slow"):
            pass
    assert t[0] == pytest.approx(4.0)
    with pacer.slot("http://other"):
        pass
    assert t[0] == pytest.approx(4.0)
