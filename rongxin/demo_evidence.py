"""The demo's evidence stage: a page holding an attacked copy, captured as court evidence.

:func:`evidence_stage` serves a small web site on 127.0.0.1 whose page embeds an attacked
copy of a programme (cropped, rescaled, brightened and re-encoded by ffmpeg), captures it
in a fresh browser with the screen recorded, packs the signed WACZ, anchors its digest on
an in-process consortium, verifies the package offline against the genesis, and shows that
a package with one changed byte is refused naming the file.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chain.localnet import LocalConsortium
from chain.types import Role
from crawlers.capture import CaptureOptions
from crawlers.package import verify_package
from rongxin.demo_site import serve
from rongxin.evidence import ANCHOR_KIND, collect_evidence

Step = Callable[[str, bool, str, float], None]

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>热播剧 第1集 — 免费在线观看</title></head>
<body><h1>热播剧 第1集</h1><p>Uploaded by a user. 用户上传。</p>
<video src="/ep1.mp4" controls width="480"></video></body></html>"""


def _make_copy(site: Path) -> None:
    """The programme (a test pattern with a tone) and its attacked copy, made by ffmpeg."""
    run = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    original = site.parent / "programme.mp4"
    subprocess.run(
        [*run, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=6",
         "-f", "lavfi", "-i", "sine=frequency=330:duration=6",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(original)],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [*run, "-i", str(original), "-vf", "crop=iw*0.9:ih*0.9,scale=480:-2,eq=brightness=0.05",
         "-c:v", "libx264", "-preset", "ultrafast", "-crf", "30", "-pix_fmt", "yuv420p", "-c:a", "aac",
         "-movflags", "+faststart", str(site / "ep1.mp4")],
        check=True,
    )  # fmt: skip
    (site / "index.html").write_text(PAGE, encoding="utf-8")


def _tampered(src: Path, dst: Path, name: str) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == name:
                data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
            zout.writestr(info.filename, data)


def evidence_stage(out_dir: Path, step: Step) -> None:
    """Run the evidence stage (see the module docstring), reporting through ``step``."""
    t0 = time.perf_counter()
    work = out_dir / "evidence"
    shutil.rmtree(work, ignore_errors=True)
    site = work / "site"
    site.mkdir(parents=True)
    _make_copy(site)
    net = LocalConsortium.create(work / "ledger", nodes=4, chain_id="rongxin-demo-evidence")
    try:
        net.net.now = int(time.time() * 1000)  # the in-process chain keeps the wall clock
        center = net.add_member("Demo legal center (法律服务中心)", [Role.LEGAL_CENTER])
        (work / "genesis.cbor").write_bytes(net.genesis.to_bytes())
        case = {"id": 1, "work_id": "programme", "kind": "video",
                "evidence": {"details": {"query_start": 1.0, "query_end": 4.0}}}  # fmt: skip

        def anchor(digest: bytes) -> Any:
            net.net.now = max(net.net.now, int(time.time() * 1000))
            return net.anchor(center, digest, ANCHOR_KIND)

        files = {
            "/index.html": ("text/html; charset=utf-8", (site / "index.html").read_bytes()),
            "/ep1.mp4": ("video/mp4", (site / "ep1.mp4").read_bytes()),
        }
        with serve(files) as web:
            ev = collect_evidence(
                f"{web.base}/index.html",
                work / "case-1",
                key=center.key,
                certificate=center.cert,
                anchor=anchor,
                options=CaptureOptions(allow=("127.0.0.1",)),
                case=case,
            )
        played = ev.capture.media and (ev.capture.directory / "evidence" / "recording.mp4").exists()
        step(
            "capture a copy as evidence",
            bool(played and ev.receipt is not None),
            f"{len(ev.capture.files)} files (WARC, screenshot, recording of the 3-s matched span, "
            f"{len(ev.capture.media)} media file, DOM, environment, log) in {ev.package.name} "
            f"({ev.package.stat().st_size / 1e6:.1f} MB), signed SM2, "
            f"digest {ev.digest.hex()[:16]}… anchored",
            t0,
        )
        t0 = time.perf_counter()
        good = verify_package(str(ev.package), net.genesis)
        bad_path = work / "case-1" / "tampered.wacz"
        _tampered(ev.package, bad_path, "evidence/screenshot.png")
        bad = verify_package(str(bad_path), net.genesis)
        named = [f"{c.file} [{c.check}]" for c in bad.failures]
        step(
            "verify evidence offline",
            good.ok and not bad.ok and named == ["evidence/screenshot.png [sm3]"],
            f"{sum(c.status == 'ok' for c in good.checks)} checks passed against the genesis "
            f"(hashes, SM2 signature, certificate, receipt at height "
            f"{good.facts.get('anchored', {}).get('height')}, WARC); "
            f"a package with one changed byte refused: {', '.join(named)}",
            t0,
        )
    finally:
        net.close()
