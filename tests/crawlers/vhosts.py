"""Several small sites on 127.0.0.1 (one port each, so one origin each) that count requests in flight.

Each site has a home page linking to three picture pages and to a robots-disallowed
page; every picture page shows one of the given pictures (the same bytes appear on
several sites). The server records, per site, when each request came (``starts``) and how
many requests were in flight at once (``peak``), and across all sites (``peak_all``),
holding each answer ``pause`` seconds so that overlaps show.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROBOTS = b"User-agent: *\nDisallow: /private/\n"


@dataclass
class VHosts:
    """The sites' ports and what they saw."""

    ports: list[int] = field(default_factory=list)
    inflight: dict[int, int] = field(default_factory=dict)
    peak: dict[int, int] = field(default_factory=dict)
    now_all: int = 0
    peak_all: int = 0
    paths: list[tuple[int, str]] = field(default_factory=list)
    starts: dict[int, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def bases(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.ports]


def picture_of(k: int, i: int, names: list[str]) -> str:
    """The picture page ``i`` of site ``k`` shows."""
    return names[(k + i) % len(names)]


def _page(k: int, i: int, names: list[str]) -> bytes:
    name = picture_of(k, i, names)
    return f'<html><body><h1>{k}/{i}</h1><img src="/img/{name}"></body></html>'.encode()


@contextmanager
def serve_vhosts(n: int, pictures: dict[str, tuple[str, bytes]], pause: float = 0.02) -> Iterator[VHosts]:
    """``n`` sites serving ``pictures`` (name -> (content type, bytes)) for the ``with`` block."""
    hosts = VHosts()
    names = sorted(pictures)

    def handler_for(k: int) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                port: int = self.connection.getsockname()[1]
                with hosts.lock:
                    hosts.paths.append((port, self.path))
                    hosts.starts.setdefault(port, []).append(time.monotonic())
                    hosts.inflight[port] = hosts.inflight.get(port, 0) + 1
                    hosts.peak[port] = max(hosts.peak.get(port, 0), hosts.inflight[port])
                    hosts.now_all += 1
                    hosts.peak_all = max(hosts.peak_all, hosts.now_all)
                try:
                    time.sleep(pause)
                    self._answer()
                finally:
                    with hosts.lock:
                        hosts.inflight[port] -= 1
                        hosts.now_all -= 1

            def _answer(self) -> None:
                status, ctype, body = 200, "text/html", b""
                if self.path == "/robots.txt":
                    ctype, body = "text/plain", ROBOTS
                elif self.path == "/":
                    links = "".join(f'<a href="/p/{i}.html">{i}</a>' for i in range(3))
                    body = f'<html><body>{links}<a href="/private/x.html">x</a></body></html>'.encode()
                elif self.path.startswith("/p/") and self.path[3:-5].isdigit():
                    body = _page(k, int(self.path[3:-5]), names)
                elif self.path == "/private/x.html":
                    body = f'<html><body><img src="/img/{names[0]}"></body></html>'.encode()
                elif self.path.startswith("/img/") and self.path[5:] in pictures:
                    ctype, body = pictures[self.path[5:]]
                else:
                    status, body = 404, b"not here"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    with ExitStack() as stack:
        for k in range(n):
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(k))
            server.daemon_threads = True
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            thread.start()
            stack.callback(server.server_close)
            stack.callback(server.shutdown)
            hosts.ports.append(server.server_address[1])
        yield hosts
