"""A hostile web site on 127.0.0.1 for the crawler tests (stdlib server in a thread).

It serves attacked copies of registered works among traps: a robots-disallowed copy, a
tarpit dripping one byte every half second, an endless response, a gzip bomb, redirect
loops, redirects to 127.0.0.2 and to the cloud metadata address, a calendar without end,
malformed HTML in a wrong encoding, media with lying Content-Types, 404/500, a 429
with ``Retry-After``, and one picture under several URLs. Every request is logged.
Files under :data:`RANGED` answer ``Range`` requests (206, or 416 past the end); every
other file ignores ``Range`` and is sent whole (as many servers do).
"""

from __future__ import annotations

import gzip
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

BOMB = gzip.compress(b"\0" * (64 << 20), compresslevel=9)

ROBOTS = b"User-agent: *\nDisallow: /private/\n"

#: Path prefix of the files served with byte-range support.
RANGED = "/video/ranged/"


@dataclass
class Site:
    """What the site serves (path -> (content type, body)) and what it was asked."""

    files: dict[str, tuple[str, bytes]]
    log: list[tuple[float, str]] = field(default_factory=list)
    port: int = 0
    busy_hits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self) -> list[str]:
        with self.lock:
            return [p for _, p in self.log]


def pages(port: int) -> dict[str, tuple[str, bytes]]:
    """The HTML pages (media are added by the fixture)."""
    html = "text/html; charset=utf-8"
    index = """<html><body><h1>Copies</h1>
<a href="/gallery.html">g</a> <a href="/music.html">m</a> <a href="/private/secret.html">p</a>
<a href="/tarpit">t</a> <a href="/endless">e</a> <a href="/bomb">b</a> <a href="/loop/1">l</a>
<a href="/escape">x</a> <a href="/metadata">md</a> <a href="/calendar/">c</a> <a href="/malformed.html">mf</a>
<a href="/busy.html">busy</a> <a href="/photo-page">pp</a> <a href="/missing">404</a>
<a href="/broken">500</a> <a href="/mirror.html">mirror</a> <a href="/a/b/a/b/a/b/">trap</a>
<a href="http://127.0.0.2:{port}/steal">s</a>
<a href="http://169.254.169.254/latest/meta-data/">meta</a> <a href="http://[::1]:{port}/v6">v6</a>
</body></html>""".replace("{port}", str(port))
    gallery = """<!doctype html><html><head><meta property="og:image" content="/img/a.jpg"></head><body>
<img src="/img/a.jpg"><picture><source srcset="/img/b.png 1x"><img src="/img/decoy.jpg"></picture>
<div style="background-image:url(/img/decoy.jpg)"></div></body></html>"""
    music = """<html><body><audio controls><source src="/media/song.wav" type="audio/ogg"></audio>
<script type="application/ld+json">{"@type": "AudioObject", "contentUrl": "/media/song.wav"}</script>
</body></html>"""
    secret = '<html><body><img src="/private/d.jpg"></body></html>'
    busy = '<html><body><img src="/img/c.jpg"></body></html>'
    mirror = (
        '<html><body><img src="/mirror/a.jpg"><img src="/mirror2/a.jpg?size=l"><img src="/img/a.jpg">'
        "</body></html>"
    )
    malformed = (
        '<html><head><meta charset="utf-8"><title>\xe7\xff\xfe</title><body><div><p><img src="/img/b.png" '
        "<table><tr><td><a href='/gallery.html'<img src=/img/decoy.jpg></scr"
    ).encode("latin-1")
    return {
        "/": (html, index.encode()),
        "/gallery.html": ("image/png", gallery.encode()),  # lying content type
        "/music.html": (html, music.encode()),
        "/private/secret.html": (html, secret.encode()),
        "/busy.html": (html, busy.encode()),
        "/mirror.html": (html, mirror.encode()),
        "/malformed.html": ("text/html; charset=gbk", malformed),
        "/robots.txt": ("text/plain", ROBOTS),
    }


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40-ms delayed ACKs

        def _send(self, status: int, ctype: str, body: bytes, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _redirect(self, location: str) -> None:
            self._send(302, "text/html", b"", {"Location": location})

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            with site.lock:
                site.log.append((time.monotonic(), self.path))
            with suppress(BrokenPipeError, ConnectionResetError, TimeoutError):
                self._route(path)

        def _route(self, path: str) -> None:
            if path in ("/mirror/a.jpg", "/mirror2/a.jpg"):
                path = "/img/a.jpg"
            if path in site.files:
                ctype, body = site.files[path]
                rng = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
                if rng is not None and path.startswith(RANGED):
                    start, end = int(rng.group(1)), min(int(rng.group(2)), len(body) - 1)
                    if start >= len(body) or end < start:
                        self._send(416, "text/plain", b"", {"Content-Range": f"bytes */{len(body)}"})
                    else:
                        part = {"Content-Range": f"bytes {start}-{end}/{len(body)}"}
                        self._send(206, ctype, body[start : end + 1], part)
                    return
                self._send(200, ctype, body)
                return
            trap = TRAPS.get(path) or (TRAPS["/loop/"] if path.startswith("/loop/") else None)
            if trap is None and path.startswith("/calendar"):
                trap = TRAPS["/calendar/"]
            if trap is not None:
                trap(self, path, site)
            else:
                self._send(404, "text/html", b"<p>not here</p>")

    return Handler


def _tarpit(h: Any, path: str, site: Site) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", "100000")
    h.end_headers()
    for _ in range(240):
        h.wfile.write(b"<")
        h.wfile.flush()
        time.sleep(0.5)


def _endless(h: Any, path: str, site: Site) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    chunk = b"<p>" + b"x" * 65536 + b"</p>"
    for _ in range(100_000):
        h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))


_CALENDAR = b'<a href="/calendar/?date=2026-12-06">next day</a><a href="/calendar/?month=2027-01">m</a>'

#: Hostile answers by path: (handler, path, site) -> None.
TRAPS: dict[str, Callable[[Any, str, Site], None]] = {
    "/tarpit": _tarpit,
    "/endless": _endless,
    "/bomb": lambda h, p, s: h._send(200, "text/html", BOMB, {"Content-Encoding": "gzip"}),
    "/loop/": lambda h, p, s: h._redirect("/loop/2" if p == "/loop/1" else "/loop/1"),
    "/escape": lambda h, p, s: h._redirect(f"http://127.0.0.2:{s.port}/steal"),
    "/metadata": lambda h, p, s: h._redirect("http://169.254.169.254/latest/meta-data/"),
    "/calendar/": lambda h, p, s: h._send(200, "text/html", _CALENDAR),
    "/broken": lambda h, p, s: h._send(500, "text/html", b"<p>oops</p>"),
    "/photo-page": lambda h, p, s: h._send(200, "text/html", s.files["/img/c.jpg"][1]),  # an image
}


@contextmanager
def serve(files: dict[str, tuple[str, bytes]], busy_first: bool = True) -> Iterator[Site]:
    """Start the site on 127.0.0.1 (a free port); ``files`` adds media to the pages."""
    site = Site({})
    handler = _handler(site)
    original_route = handler._route  # type: ignore[attr-defined]

    def route(self: BaseHTTPRequestHandler, path: str) -> None:
        if path == "/busy.html" and busy_first:
            with site.lock:
                site.busy_hits += 1
                first = site.busy_hits == 1
            if first:
                self._send(429, "text/html", b"slow down", {"Retry-After": "1"})  # type: ignore[attr-defined]
                return
        original_route(self, path)

    handler._route = route  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    site.port = server.server_address[1]
    site.files.update(pages(site.port))
    site.files.update(files)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
