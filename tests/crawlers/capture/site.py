"""A loopback web site for evidence captures: a static page, a page built by JavaScript,
a video player, an HLS stream and a gallery (an image and a video), with media made by
``ffmpeg`` at test time.

The server is :mod:`rongxin.demo_site` (byte ranges, every request logged).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from rongxin.demo_site import CaptureSite, loopback_server, serve

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

GALLERY = """<!doctype html><html><head><title>图库 Gallery</title></head><body>
<h1>转载作品 A reposted work</h1><p id="text">Reposted without a licence.</p>
<img id="still" src="/img/still.png" width="320">
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
        "/gallery.html": (HTML, GALLERY.encode()),
    }


__all__ = ["CaptureSite", "loopback_server", "make_media", "pages", "serve"]
