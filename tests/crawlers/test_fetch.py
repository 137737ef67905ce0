"""The fetcher against the hostile site on 127.0.0.1: caps, guard on redirects, robots, 429."""

from __future__ import annotations

import time

import pytest

from crawlers.errors import (
    BlockedAddressError,
    FetchTimeoutError,
    RedirectError,
    RobotsDisallowedError,
    TooLargeError,
)
from crawlers.fetch import Fetcher, FetchLimits, RetryLaterError
from crawlers.guard import AddressGuard
from crawlers.politeness import HostPacer

from .site import Site

LIMITS = FetchLimits(max_bytes=1 << 20, total_seconds=1.5, max_redirects=4)


def fetcher(**kw: object) -> Fetcher:
    opts: dict[str, object] = {
        "guard": AddressGuard(["127.0.0.1"]),
        "pacer": HostPacer(delay=0.0),
        "limits": LIMITS,
        "contact": "mailto:scans@rongxin.test",
    }
    opts.update(kw)
    return Fetcher(**opts)  # type: ignore[arg-type]


def test_caps_and_redirects(site: Site) -> None:
    with fetcher() as f:
        page = f.fetch(site.base + "/gallery.html")
        assert page.status == 200 and page.mime == "text/html"  # served as image/png
        assert f.fetch(site.base + "/img/b.png").mime == "image/png"  # served as text/html
        t0 = time.monotonic()
        with pytest.raises(FetchTimeoutError):
            f.fetch(site.base + "/tarpit")
        assert time.monotonic() - t0 < 3.0
        with pytest.raises(TooLargeError):
            f.fetch(site.base + "/endless")
        with pytest.raises(TooLargeError, match=r"bomb|beyond"):
            f.fetch(site.base + "/bomb")
        with pytest.raises(RedirectError, match="loop"):
            f.fetch(site.base + "/loop/1")
        with pytest.raises(BlockedAddressError, match=r"127\.0\.0\.2"):
            f.fetch(site.base + "/escape")
        with pytest.raises(BlockedAddressError, match="metadata"):
            f.fetch(site.base + "/metadata")
        with pytest.raises(RobotsDisallowedError):
            f.fetch(site.base + "/private/secret.html")
        assert f.fetch(site.base + "/missing").status == 404
        assert f.fetch(site.base + "/broken").status == 500
    paths = site.paths()
    assert not any(p.startswith("/private/") for p in paths)
    assert paths.count("/robots.txt") == 1  # cached per origin
    assert "/steal" not in paths and not any("meta-data" in p for p in paths)


def test_user_agent_and_guard_without_allow_list(site: Site) -> None:
    with fetcher(guard=AddressGuard([])) as f, pytest.raises(BlockedAddressError, match="loopback"):
        f.fetch(site.base + "/")
    assert site.paths() == []  # refused before connecting
    seen: list[str] = []
    with fetcher(obey_robots=False) as f:
        original = f._client.send

        def spy(request, **kw):  # type: ignore[no-untyped-def]
            seen.append(request.headers["user-agent"])
            assert request.headers["host"] == f"127.0.0.1:{site.port}"
            return original(request, **kw)

        f._client.send = spy  # type: ignore[method-assign]
        assert f.fetch(site.base + "/private/secret.html").status == 200
    assert seen == ["RongxinScan/0.1 (+mailto:scans@rongxin.test)"]


def test_too_many_redirects_and_small_cap(site: Site) -> None:
    with fetcher(limits=FetchLimits(max_redirects=0, total_seconds=2.0)) as f:
        with pytest.raises(RedirectError, match="more than 0"):
            f.fetch(site.base + "/loop/1")
        with pytest.raises(TooLargeError, match="declares"):
            f.fetch(site.base + "/img/a.jpg", max_bytes=1000)


def test_429_backs_off_by_retry_after(site: Site) -> None:
    with fetcher() as f:
        with pytest.raises(RetryLaterError) as info:
            f.fetch(site.base + "/busy.html")
        assert info.value.retry_after == pytest.approx(1.0)
        t0 = time.monotonic()
        assert f.fetch(site.base + "/busy.html").status == 200  # waits for the slot
        assert time.monotonic() - t0 >= 0.9


def test_ipv6_loopback_site_refused_unless_listed() -> None:
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class V6(HTTPServer):
        address_family = socket.AF_INET6

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><img src='/x.png'></html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    try:
        server = V6(("::1", 0), H)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    port = server.server_address[1]
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        with fetcher(guard=AddressGuard(["::1"]), obey_robots=False) as f:
            r = f.fetch(f"http://[::1]:{port}/")
            assert r.status == 200 and r.mime == "text/html"
        with (
            fetcher(guard=AddressGuard(["127.0.0.1"]), obey_robots=False) as f,
            pytest.raises(BlockedAddressError),
        ):
            f.fetch(f"http://[::1]:{port}/")
    finally:
        server.shutdown()
        server.server_close()
