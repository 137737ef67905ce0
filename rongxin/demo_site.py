"""A web site on 127.0.0.1 serving files from memory with byte ranges (browsers ask media
files in ranges and seek with them): the demo's infringing site, and the capture tests' and
benchmarks' site. Every request path is logged.
"""

from __future__ import annotations

import re
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: A content type that makes the site answer ``302`` to the URL in the body instead.
REDIRECT = "x-redirect"


@dataclass
class CaptureSite:
    """What the site serves and the paths it was asked for."""

    files: dict[str, tuple[str, bytes]]
    port: int = 0
    scheme: str = "http"
    log: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"


def _handler(site: CaptureSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def handle(self) -> None:
            with suppress(ConnectionError):  # the browser drops media connections it no longer needs
                super().handle()

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            site.log.append(path)
            if path not in site.files:
                self._send(404, "text/plain", b"not found")
                return
            ctype, body = site.files[path]
            if ctype == REDIRECT:
                self._send(302, "text/plain", b"", extra={"Location": body.decode()})
                return
            rng = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if rng:
                start = int(rng.group(1))
                end = min(int(rng.group(2)) if rng.group(2) else len(body) - 1, len(body) - 1)
                if start >= len(body):
                    self._send(416, "text/plain", b"", extra={"Content-Range": f"bytes */{len(body)}"})
                    return
                extra = {"Content-Range": f"bytes {start}-{end}/{len(body)}", "Accept-Ranges": "bytes"}
                self._send(206, ctype, body[start : end + 1], extra=extra)
                return
            self._send(200, ctype, body, extra={"Accept-Ranges": "bytes"})

        def _send(self, status: int, ctype: str, body: bytes, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            with suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

    return Handler


@contextmanager
def loopback_server(
    handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None
) -> Iterator[int]:
    """Run ``handler`` on 127.0.0.1 (a free port, yielded) in a thread for the duration of the
    block; over TLS when ``tls`` (a server context) is given."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve(files: dict[str, tuple[str, bytes]], tls: ssl.SSLContext | None = None) -> Iterator[CaptureSite]:
    """Serve ``files`` on 127.0.0.1 (a free port) for the duration of the block (HTTPS with ``tls``)."""
    site = CaptureSite(dict(files), scheme="https" if tls else "http")
    with loopback_server(_handler(site), tls) as port:
        site.port = port
        yield site
