"""The browser tier: a script-built page rendered with every browser request guarded."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crawlers.extract import PageRefs, extract
from crawlers.fetch import Fetcher, FetchLimits, Response
from crawlers.guard import AddressGuard
from crawlers.politeness import HostPacer
from crawlers.render import Renderer, RenderLimits, needs_render
from crawlers.scan import Scanner

from .site import Site
from .test_scan import config

APP = """<!doctype html><html><head><script src="/js/app.js"></script></head>
<body><div id="root"></div><noscript>This gallery needs JavaScript.</noscript></body></html>"""
APP_JS = """
fetch("/js/data.json").then(r => r.json()).then(d => {
  const img = document.createElement("img"); img.src = d.picture;
  document.getElementById("root").appendChild(img);
  const a = document.createElement("a"); a.href = d.next; a.textContent = "more";
  document.body.appendChild(a);
});
fetch("http://169.254.169.254/latest/meta-data/").catch(() => {});
fetch("http://127.0.0.2:PORT/steal").catch(() => {});
try { new WebSocket("ws://127.0.0.2:PORT/ws"); } catch (e) {}
"""


@pytest.fixture
def js_site(site: Site) -> Iterator[tuple[Site, socket.socket]]:
    """The hostile site with a page its script builds, and a listener on 127.0.0.2 that the
    script tries to reach (nothing may ever connect to it)."""
    listener = socket.socket()
    listener.bind(("127.0.0.2", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = str(listener.getsockname()[1])
    site.files["/js/app.html"] = ("text/html", APP.encode())
    site.files["/js/app.js"] = ("text/javascript", APP_JS.replace("PORT", port).encode())
    data = {"picture": "/img/c.jpg", "next": "/gallery.html"}
    site.files["/js/data.json"] = ("application/json", json.dumps(data).encode())
    try:
        yield site, listener
    finally:
        listener.close()


def test_script_page_is_rendered_with_every_request_guarded(js_site: tuple[Site, socket.socket]) -> None:
    site, listener = js_site
    static = extract(site.base + "/js/app.html", APP)
    assert needs_render(static) and not static.media
    assert not needs_render(extract(site.base + "/", "<p>" + "text " * 100 + "</p><script>x()</script>"))
    assert not needs_render(PageRefs(scripts=0, text_chars=0))
    fetcher = Fetcher(AddressGuard(["127.0.0.1"]), HostPacer(delay=0.0), FetchLimits(total_seconds=3.0))
    asked: list[str] = []
    fetch = fetcher.fetch

    def recording_fetch(url: str, **kw: Any) -> Response:
        asked.append(url)
        return fetch(url, **kw)

    fetcher.fetch = recording_fetch  # type: ignore[method-assign]
    with fetcher, Renderer(fetcher, RenderLimits(seconds=10.0, settle_ms=800)) as renderer:
        out = renderer.render(site.base + "/js/app.html")
    assert not any("169.254" in u or "127.0.0.2" in u for u in asked)  # aborted before any fetch
    refs = extract(out.url, out.html)
    assert [m.url for m in refs.media] == [site.base + "/img/c.jpg"]  # built by the script
    assert site.base + "/gallery.html" in refs.links
    assert site.base + "/js/data.json" in out.fulfilled  # served by the guarded fetcher
    reasons = {url: why for url, why in out.aborted}
    assert "metadata" in reasons["http://169.254.169.254/latest/meta-data/"]
    assert any(u.startswith("http://127.0.0.2:") and "loopback" in w for u, w in reasons.items())
    with pytest.raises(BlockingIOError):
        listener.accept()  # neither the fetch nor the WebSocket reached 127.0.0.2
    paths = site.paths()
    assert "/js/data.json" in paths and "/img/c.jpg" not in paths  # media left to the scan


@pytest.mark.slow
def test_render_modes_in_a_scan(
    js_site: tuple[Site, socket.socket], scan_library: Path, tmp_path: Path
) -> None:
    site, listener = js_site
    seed = [site.base + "/js/app.html"]
    found = {}
    for mode in ("never", "auto", "always"):
        cfg = config(site, scan_library, seeds=seed, scope="page", render=mode)
        with Scanner(tmp_path / mode, cfg) as scanner:
            scanner.run()
            found[mode] = sorted(
                (c.media_url.removeprefix(site.base), c.work_id) for c in scanner.store.cases()
            )
    assert found["never"] == []
    assert found["auto"] == found["always"] == [("/img/c.jpg", "chelsea")]
    with pytest.raises(BlockingIOError):
        listener.accept()
