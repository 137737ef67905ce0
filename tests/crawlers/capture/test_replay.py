"""An independent tool replays the package's WARC: pywb 2.10.0 serves the captured page, its
image and its video from ``archive/data.warc.gz`` alone (the site is gone by then), chromium
renders the replay, and the replayed bytes have the digests of the signed manifest. A WARC
changed so that it still replays is refused by our verifier."""

from __future__ import annotations

import gzip
import hashlib
import time
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from chain.crypto.sm3 import sm3
from crawlers.browser import launch
from crawlers.capture import capture
from crawlers.package import add_receipt, build_package, read_package, verify_package

from .conftest import LOOPBACK, Ledger
from .site import serve
from .wayback import add_collection, pywb_bin, wayback

WARC = "archive/data.warc.gz"

#: Play the replayed video muted until a second has passed in it (or 15 s of waiting).
_PLAY_JS = """async () => {
  const v = document.getElementById('v');
  v.muted = true;
  const until = Date.now() + 15000;
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  while (v.readyState < 1 && Date.now() < until) await sleep(100);
  try { await v.play(); } catch (e) { return {duration: v.duration, reached: -1, error: String(e)}; }
  while (v.currentTime < 1.0 && Date.now() < until) await sleep(100);
  v.pause();
  return {duration: v.duration, reached: v.currentTime};
}"""


def _members(data: bytes) -> list[bytes]:
    """The gzip members of a record-at-a-time gzipped WARC, each decompressed."""
    out: list[bytes] = []
    while data:
        d = zlib.decompressobj(wbits=31)
        out.append(d.decompress(data) + d.flush())
        data = d.unused_data
    return out


def _tamper(warc: bytes, body: bytes) -> bytes:
    """The WARC with one byte changed inside every record holding ``body``: still a valid,
    replayable WARC (each record recompressed on its own), but no longer the signed one."""
    out = []
    hits = 0
    for rec in _members(warc):
        at = rec.find(body)
        if at >= 0:
            changed = bytearray(rec)
            changed[at + len(body) // 2] ^= 0xFF
            rec, hits = bytes(changed), hits + 1
        out.append(gzip.compress(rec, mtime=0))
    assert hits >= 1
    return b"".join(out)


def _with_entry(src: Path, dst: Path, name: str, data: bytes) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, data if info.filename == name else zin.read(info))
    return dst


def _digests(data: bytes) -> dict[str, Any]:
    return {"bytes": len(data), "sm3": sm3(data).hex(), "sha256": hashlib.sha256(data).hexdigest()}


@pytest.mark.slow
def test_pywb_replays_the_package_and_a_changed_warc_is_refused(
    site_files: dict[str, tuple[str, bytes]], ledger: Ledger, tmp_path: Path
) -> None:
    pywb_bin()  # fails at once, naming `make setup`, when pywb is not installed
    # capture the gallery from a site of its own, packaged, signed and anchored; then the site stops
    with serve(site_files) as site:
        page, image, video = (
            f"{site.base}{p}" for p in ("/gallery.html", "/img/still.png", "/media/clip.mp4")
        )
        opts = replace(LOOPBACK, case_media=(image,), record_screen=False)
        cap = capture(page, tmp_path / "cap", opts)
    package = tmp_path / "evidence.wacz"
    case = {"id": 3, "page_url": page, "media_url": image, "work_id": "still"}
    digest = build_package(cap, package, key=ledger.center.key, certificate=ledger.center.cert, case=case,
                           match={"kind": "image", "score": 0.97})  # fmt: skip
    ledger.consortium.net.now = max(ledger.consortium.net.now, int(time.time() * 1000))
    add_receipt(package, ledger.consortium.anchor(ledger.center, digest, "evidence-package"))
    assert verify_package(str(package), ledger.consortium.genesis).ok
    with read_package(package) as pkg:
        manifest = pkg.manifest
        warc = pkg.read(WARC)
    recorded = {m["url"]: manifest["files"][m["path"]] for m in cap.media}
    assert {image, video} <= set(recorded)
    assert recorded[image] == _digests(site_files["/img/still.png"][1])

    # pywb indexes the package's WARC, and a changed copy of it, as two collections
    root = tmp_path / "pywb"
    root.mkdir()
    (tmp_path / "data.warc.gz").write_bytes(warc)
    tampered = _tamper(warc, site_files["/img/still.png"][1])
    (tmp_path / "tampered.warc.gz").write_bytes(tampered)
    add_collection(root, "evidence", tmp_path / "data.warc.gz")
    add_collection(root, "tampered", tmp_path / "tampered.warc.gz")
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(cap.started_ms / 1000))

    with wayback(root) as wb:
        # chromium renders the replay; nothing may leave the replay server
        elsewhere: list[str] = []
        with launch() as browser:
            context = browser.new_context()
            try:
                tab = context.new_page()

                def only_pywb(route: Any) -> None:
                    if route.request.url.startswith(wb.base + "/"):
                        route.continue_()
                    else:
                        elsewhere.append(route.request.url)
                        route.abort("blockedbyclient")

                tab.route("**/*", only_pywb)
                response = tab.goto(wb.url("evidence", stamp, "", page), wait_until="load", timeout=30_000)
                assert response is not None and response.status == 200
                assert "Reposted without a licence." in tab.inner_text("#text")
                assert "转载作品" in tab.inner_text("h1") and tab.title() == "图库 Gallery"
                assert tab.evaluate("() => document.getElementById('still').naturalWidth") == 320
                played = tab.evaluate(_PLAY_JS)
                assert 3.5 < played["duration"] < 4.5, played  # the 4 s clip, from the WARC
                assert played["reached"] >= 1.0, played  # and it plays: pywb answers the ranges
            finally:
                context.close()
        assert elsewhere == []

        # the replayed original bytes have the manifest's digests
        with httpx.Client(trust_env=False, timeout=30.0) as client:
            for url in (image, video):
                got = client.get(wb.url("evidence", stamp, "id_", url))
                assert got.status_code == 200, (url, got.status_code)
                assert _digests(got.content) == recorded[url], url
            # the changed WARC replays too: replay alone does not prove integrity
            changed = client.get(wb.url("tampered", stamp, "id_", image))
            assert changed.status_code == 200 and len(changed.content) == recorded[image]["bytes"]
            assert _digests(changed.content)["sm3"] != recorded[image]["sm3"]

    # our verifier refuses the package that carries the changed WARC, naming it
    bad = _with_entry(package, tmp_path / "tampered.wacz", WARC, tampered)
    v = verify_package(str(bad), ledger.consortium.genesis)
    assert not v.ok
    assert {c.file for c in v.failures} == {WARC}, [(c.file, c.check, c.detail) for c in v.failures]
