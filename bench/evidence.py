"""Evidence capture and packages: capture time, package size, verification time.

A loopback site (the capture tests' site) serves a page with a 30-s H.264 video (made by
ffmpeg at start) and a long static page. Each capture runs in a fresh browser profile and
records the screen; the video page plays the default span (the first 10 s, what a case
without a matched span gets). Each package is signed by a legal center of an in-process
four-node consortium, its digest anchored, the receipt added; verification is offline
against the genesis, once without and once with parsing every WARC record.

Targets: capture of the 30-s-video page ≤ 20 s; verification ≤ 1 s per package without
the WARC replay.

Run::

    .venv/bin/python bench/evidence.py            # 3 captures of each page
    .venv/bin/python bench/evidence.py --quick    # 1 capture of each page
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain.localnet import LocalConsortium
from chain.types import Role
from crawlers.capture import CaptureOptions, capture
from crawlers.package import add_receipt, build_package, verify_package
from tests.crawlers.capture.site import make_media, pages, serve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one capture per page")
    ap.add_argument("--repeat", type=int, default=3, help="captures per page")
    ap.add_argument("--video-seconds", type=float, default=30.0, help="length of the page's video")
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        files = {**pages(), **make_media(d / "media", seconds=args.video_seconds)}
        net = LocalConsortium.create(d / "net", nodes=4)
        net.net.now = int(time.time() * 1000)
        center = net.add_member("Legal center", [Role.LEGAL_CENTER])
        opts = CaptureOptions(allow=("127.0.0.1",))
        try:
            with serve(files) as site:
                for page, label in (("video.html", f"page with a {args.video_seconds:.0f}-s video"),
                                    ("static.html", "long static page")):  # fmt: skip
                    caps, sizes, builds, anchors, quick, full = [], [], [], [], [], []
                    for i in range(repeat):
                        t = time.perf_counter()
                        cap = capture(f"{site.base}/{page}", d / f"{page}-{i}", opts)
                        caps.append(time.perf_counter() - t)
                        out = d / f"{page}-{i}.wacz"
                        t = time.perf_counter()
                        digest = build_package(cap, out, key=center.key, certificate=center.cert)
                        builds.append(time.perf_counter() - t)
                        net.net.now = max(net.net.now, int(time.time() * 1000))
                        t = time.perf_counter()
                        add_receipt(out, net.anchor(center, digest, "evidence-package"))
                        anchors.append(time.perf_counter() - t)
                        sizes.append(out.stat().st_size)
                        t = time.perf_counter()
                        v = verify_package(str(out), net.genesis, check_warc=False)
                        quick.append(time.perf_counter() - t)
                        assert v.ok, v.failures
                        t = time.perf_counter()
                        assert verify_package(str(out), net.genesis).ok
                        full.append(time.perf_counter() - t)
                    med = statistics.median
                    target = " (target ≤ 20 s)" if page == "video.html" else ""
                    rows += [
                        (label, "capture (browser, recording, media, WARC)", f"{med(caps):.1f} s{target}"),
                        (label, "package: index, hash, sign", f"{med(builds):.2f} s"),
                        (
                            label,
                            "anchor on chain, add receipt (in-process, 4 nodes)",
                            f"{med(anchors):.2f} s",
                        ),
                        (label, "package size", f"{med(sizes) / 1e6:.1f} MB"),
                        (label, "verify offline, no WARC parse", f"{med(quick):.2f} s (target ≤ 1 s)"),
                        (label, "verify offline, every WARC record", f"{med(full):.2f} s"),
                    ]
        finally:
            net.close()
    print(
        f"# evidence capture and packages — {platform.platform()}, {os.cpu_count()} CPUs, median of {repeat}"
    )
    print()
    print("| page | step | figure |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
