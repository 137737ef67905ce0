"""A loopback web site for evidence captures: a static page, a page built by JavaScript,
a video player and an HLS stream, with media made by ``ffmpeg`` at test time.

Byte ranges are served (browsers ask media files in ranges); every request is logged.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HTML = "text/html; charset=utf-8"

STATIC = """<!doctype html><html><head><title>静态页 Static copy</title></head><body>
<h1>盗版作品 A copied work</h1><p>This page holds a copy.</p><img src="/img/still.png" width="320">
<div style="height:2400px">long page</div><p id="bottom">end</p></body></html>"""

SCRIPTED = """<!doctype html><html><head><title>Scripted</title></head><body><div id="root"></div>
<script>
fetch('/api/items.json').then(r => r.json()).then(items => {
  const root = document.getElementById('root');
  for (const it of items) {
    const p = document.createElement('p'); p.className = 'item'; p.textContent = it; root.appendChild(p);
  }
  const img = document.createElement('img'); img.src = '/img/still.png'; root.appendChild(img);
  document.title = 'Built by script';
});
</script></body></html>"""

VIDEO = """<!doctype html><html><head><title>Player</title></head><body><h1>Player</h1>
<video id="v" src="/media/clip.mp4" controls width="320"></video></body></html>"""

HLS = """<!doctype html><html><head><title>Stream</title></head><body><h1>Live</h1>
<video id="v" src="/hls/index.m3u8" controls width="320"></video></body></html>"""


def make_media(directory: Path, seconds: float = 4.0) -> dict[str, tuple[str, bytes]]:
    """A small H.264/AAC MP4, a PNG still and an HLS rendition of the clip (made by ffmpeg)."""
    directory.mkdir(parents=True, exist_ok=True)
    clip = directory / "clip.mp4"
    lavfi = ["-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}",
             "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]  # fmt: skip
    run = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    video = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p"]
    subprocess.run([*run, *lavfi, *video, "-c:a", "aac", "-movflags", "+faststart", str(clip)], check=True)
    still = directory / "still.png"
    subprocess.run([*run, "-i", str(clip), "-frames:v", "1", str(still)], check=True)
    hls = directory / "hls"
    hls.mkdir(exist_ok=True)
    subprocess.run([*run, "-i", str(clip), "-c", "copy", "-f", "hls", "-hls_time", "1",
                    "-hls_list_size", "0", "-hls_segment_filename", str(hls / "seg%03d.ts"),
                    str(hls / "index.m3u8")], check=True)  # fmt: skip
    files = {
        "/media/clip.mp4": ("video/mp4", clip.read_bytes()),
        "/img/still.png": ("image/png", still.read_bytes()),
        "/hls/index.m3u8": ("application/vnd.apple.mpegurl", (hls / "index.m3u8").read_bytes()),
    }
    for seg in sorted(hls.glob("seg*.ts")):
        files[f"/hls/{seg.name}"] = ("video/mp2t", seg.read_bytes())
    return files


def pages() -> dict[str, tuple[str, bytes]]:
    """The HTML and data of the site."""
    return {
        "/static.html": (HTML, STATIC.encode()),
        "/scripted.html": (HTML, SCRIPTED.encode()),
        "/api/items.json": ("application/json", b'["first item", "second item", "\\u7b2c\\u4e09"]'),
        "/video.html": (HTML, VIDEO.encode()),
        "/hls.html": (HTML, HLS.encode()),
    }


@dataclass
class CaptureSite:
    """What the site serves and the paths it was asked for."""

    files: dict[str, tuple[str, bytes]]
    port: int = 0
    log: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


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
def loopback_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """Run ``handler`` on 127.0.0.1 (a free port, yielded) in a thread for the duration of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve(files: dict[str, tuple[str, bytes]]) -> Iterator[CaptureSite]:
    """Serve ``files`` on 127.0.0.1 (a free port) for the duration of the block."""
    site = CaptureSite(dict(files))
    with loopback_server(_handler(site)) as port:
        site.port = port
        yield site
