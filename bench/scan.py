"""Scan throughput on a loopback site: pages/s (crawl + extract) and media/s (fetch + fingerprint).

A generated site of N pages is served on 127.0.0.1 by a separate process (a threaded
stdlib HTTP server, so that the server does not share the scanner's interpreter). Page
``i`` links to pages ``5i+1 .. 5i+5`` and to the home page (a tree the crawler walks
breadth-first), and, in the media run, shows two pictures: attacked copies (JPEG) of the
smoke corpus's photos, ``--distinct`` different files, each under many URLs.

Runs, politeness off (``delay=0``, robots.txt fetched and obeyed, one request in flight,
as the scanner runs):

* **pages** — crawl and extract only (pages without media), from the site's one host, then
  again from ``--vhosts`` virtual hosts (``hN.scan.test``, default 100, each seeded at its
  first page: the scanner's per-host queues and politeness state for many hosts);
* **media** — pages with pictures: every picture URL fetched, each distinct content
  fingerprinted once and identified against a library holding the originals;
* **identify** (``--library-works N``) — the library padded with synthetic works to ``N``
  image works (each a registered photo's fingerprint with 35 % of its hash bits and a
  quarter of every descriptor's bits flipped: as far from the photos as unrelated
  pictures), then every distinct picture fingerprinted and identified in this one process:
  images/s per core, decode included. The machine's load average is printed with it;
* **scrapy** — the same two crawls by Scrapy (``CONCURRENT_REQUESTS_PER_DOMAIN`` 1, as the
  scanner, and Scrapy's default 8), when an interpreter with Scrapy is given
  (``--scrapy-python``; Scrapy's Twisted stack is not a dependency of Rongxin). Scrapy
  fetches the pictures but fingerprints nothing, and keeps its frontier in memory; the
  scanner commits every step to SQLite (``synchronous=FULL``) so that it can resume.

* **dask** — scaling from one to two Dask workers (the ``LocalCluster`` that
  ``rongxin scan --dask local:N`` starts, ``crawlers.cluster.local_cluster``, started before
  the clock): ``--dask-hosts`` virtual hosts (``hN.scan.test``, resolved to
  127.0.0.1 by the scan's resolver) of ``--dask-pages`` pages each, every picture URL
  serving distinct bytes so that every picture is fingerprinted and identified; the CPU
  seconds of the workers, of this process (client and local scheduler) and of the site are
  printed with the bound two cores put on the speed-up (``--profile DIR``: a cProfile of
  the client per run).

Run::

    .venv/bin/python bench/scan.py --quick --only dask                      # Dask scaling only
    .venv/bin/python bench/scan.py --quick                                  # 300 pages
    .venv/bin/python bench/scan.py --quick --library-works 10000            # images/s per core
    .venv/bin/python bench/scan.py --pages 2000 --scrapy-python /tmp/scrapy-venv/bin/python
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def page_html(i: int, n: int, media: bool, distinct: int) -> bytes:
    """Page ``i`` of ``n``: links to its children and home, two pictures in the media run."""
    links = "".join(f'<a href="/p/{c}.html">page {c}</a> ' for c in range(5 * i + 1, min(5 * i + 6, n)))
    imgs = ""
    if media:
        imgs = "".join(f'<img src="/img/{i}-{k}.jpg?v={(2 * i + k) % distinct}">' for k in range(2))
    text = "Lorem ipsum dolor sit amet. " * 20
    return (
        f"<!doctype html><html><head><title>Page {i}</title></head><body><h1>Page {i}</h1>"
        f"<p>{text}</p>{imgs}<nav>{links}<a href='/p/0.html'>home</a></nav></body></html>"
    ).encode()


def serve(n: int, media: bool, distinct: int, pictures: Path, port_file: Path, unique: bool = False) -> None:
    """The site (runs in its own process; ``--serve``); with ``unique`` every picture URL of
    every virtual host (``Host`` header) gets distinct bytes (a tag after the JPEG's end),
    so that each must be fingerprinted."""
    pics = [p.read_bytes() for p in sorted(pictures.glob("*.jpg"))]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK stalls

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if path == "/_bench/cpu":  # the site's own CPU seconds, for the bench's table
                body, ctype = f"{time.process_time():.6f}".encode(), "text/plain"
            elif path == "/robots.txt":
                body, ctype = b"User-agent: *\nAllow: /\n", "text/plain"
            elif path.startswith("/p/") and path.endswith(".html") and path[3:-5].isdigit():
                body, ctype = page_html(int(path[3:-5]), n, media, distinct), "text/html"
            elif path.startswith("/img/") and query.startswith("v="):
                body, ctype = pics[int(query[2:]) % len(pics)], "image/jpeg"
                if unique:
                    body += f"\n{self.headers.get('Host', '')}{path}".encode()
            else:
                body, ctype = b"not here", "text/plain"
                self.send_response(404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_file.write_text(str(server.server_address[1]))
    server.serve_forever(poll_interval=0.05)


class Site:
    """The site process: started with ``with``, stopped at exit."""

    def __init__(
        self, n: int, media: bool, distinct: int, pictures: Path, work: Path, unique: bool = False
    ) -> None:
        self.args = (n, media, distinct, pictures)
        self.unique = unique
        self.port_file = work / f"port-{n}-{int(media)}-{int(unique)}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        n, media, distinct, pictures = self.args
        mode = "2" if self.unique else str(int(media))
        self.port_file.unlink(missing_ok=True)  # a site started before with the same arguments wrote it
        cmd = [sys.executable, __file__, "--serve", str(n), mode, str(distinct), str(pictures)]
        self.proc = subprocess.Popen([*cmd, str(self.port_file)])
        deadline = time.monotonic() + 20
        while not (self.port_file.exists() and self.port_file.read_text()):
            if time.monotonic() > deadline:
                raise RuntimeError("the site did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port_file.read_text()}"

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def smoke_photos() -> list[Path]:
    """The smoke corpus's original photos."""
    from datasets.manifest import Manifest
    from datasets.smoke import ensure

    root = ensure()
    return [root / e.path for e in Manifest.open(root).select(collection="images", role="original")]


def pictures_and_library(work: Path, distinct: int) -> tuple[Path, Path]:
    """``distinct`` attacked JPEG copies of the smoke corpus's photos; a library of the originals."""
    from datasets.attacks import image as image_attacks
    from forensics.library import Library

    photos = smoke_photos()
    lib_dir, pics = work / "lib", work / "pics"
    pics.mkdir()
    with Library(lib_dir) as lib:
        for p in photos:
            lib.register(p, p.stem)
    for k in range(distinct):
        attacked, _ = image_attacks.apply(photos[k % len(photos)], "jpeg", seed=k)
        buf = io.BytesIO()
        attacked.convert("RGB").save(buf, format="JPEG", quality=80)
        (pics / f"{k:04d}.jpg").write_bytes(buf.getvalue())
    return pics, lib_dir


def pad_library(library: Path, works: int, seed: int = 7) -> int:
    """Add synthetic image works to ``library`` until it holds ``works`` image works; how many it holds."""
    import numpy as np

    from forensics.image import features as feat
    from forensics.image.decode import load_image
    from forensics.image.index import ImageFingerprint, ImageIndex
    from forensics.library import Library

    real = [ImageFingerprint.of(load_image(p)) for p in smoke_photos()]
    with Library.open(library) as lib:
        index = lib.index("image")
        assert isinstance(index, ImageIndex)
        gen = np.random.default_rng(seed)
        have = len(real)
        while have < works:
            chunk = []
            for j in range(min(5000, works - have)):
                src = real[int(gen.integers(len(real)))]
                h = src.hash ^ np.packbits(gen.random(256) < 0.35)
                d = src.features.descriptors
                flips = np.packbits(gen.random(d.shape[0] * 256) < 0.25).reshape(-1, 32)
                f = feat.LocalFeatures(
                    src.features.points,
                    d ^ flips,
                    src.features.width,
                    src.features.height,
                    src.features.scale,
                )
                chunk.append((f"synthetic-{have + j}", [ImageFingerprint(h, f)]))
            index.add_many(chunk)
            have += len(chunk)
    return have


def run_identify(pictures: Path, library: Path) -> tuple[int, float, float, int]:
    """Fingerprint and identify every picture in one process: (pictures, wall seconds, CPU
    seconds of the process, matched). Pictures per CPU second is the rate per core, whatever
    else the machine runs."""
    from forensics.library import Library

    files = sorted(pictures.glob("*.jpg"))
    with Library.open(library, readonly=True) as lib:
        lib.identify(files[0])  # load the index before the clock starts
        t0, c0 = time.perf_counter(), time.process_time()
        matched = sum(bool(lib.identify(f)) for f in files * 3)
        return 3 * len(files), time.perf_counter() - t0, time.process_time() - c0, matched


def scan_config(base: str, hosts: int, pages: int, library: Path) -> Any:
    """The bench's scan of ``pages`` pages, politeness off: from the site's one host
    (``hosts`` 0) or from that many virtual hosts (``hN.scan.test``), each seeded at its
    first page."""
    from crawlers.scan import ScanConfig

    port = base.rsplit(":", 1)[1]
    return ScanConfig(
        seeds=[f"http://h{k}.scan.test:{port}/p/0.html" for k in range(hosts)] or [base + "/p/0.html"],
        library=str(library),
        depth=20,
        max_pages=pages,
        delay=0.0,
        allow=["127.0.0.1"],
        render="never",
        request_seconds=10.0,
    )


def run_scanner(base: str, n: int, library: Path, out: Path, hosts: int = 0) -> dict[str, Any]:
    """One process scans the site for ``n`` pages: from its one host, or (``hosts``) from that
    many virtual hosts (``hN.scan.test``, all on the site), each seeded at its first page."""
    from crawlers.scan import Scanner

    cfg = scan_config(base, hosts, n, library)
    t0 = time.perf_counter()
    with Scanner(out, cfg, resolver=vhost_resolver) as scanner:
        summary = scanner.run()
    summary["wall"] = time.perf_counter() - t0
    return summary


def vhost_resolver(host: str, port: int) -> list[str]:
    """The bench's virtual hosts (``hN.scan.test``) all live on 127.0.0.1."""
    from crawlers.guard import system_resolver

    return ["127.0.0.1"] if host.endswith(".scan.test") else system_resolver(host, port)


def site_cpu(base: str) -> float:
    """CPU seconds the site's process has used so far."""
    import urllib.request

    with urllib.request.urlopen(base + "/_bench/cpu", timeout=10) as r:  # loopback only
        return float(r.read().decode())


def _warm() -> None:
    """Import the scan's modules on a worker (a standing cluster has them loaded)."""
    import importlib

    for name in ("crawlers.cluster", "crawlers.steps", "forensics.library", "forensics.image.index"):
        importlib.import_module(name)


def run_dask(
    base: str, hosts: int, per_host: int, library: Path, out: Path, workers: int, profile: Path | None = None
) -> dict[str, Any]:
    """A scan of ``hosts`` virtual hosts of the site on a local Dask cluster of ``workers`` processes.

    The cluster is started, and the scan's modules imported on its workers, before the
    clock starts (as a standing cluster that has run a scan before would be); the scan's
    own setup (plugin, library opened on each worker) is timed. ``profile``: write a
    cProfile of this process's main thread (the client loop) there.
    """
    import cProfile

    from distributed import Client

    from crawlers.cluster import local_cluster
    from crawlers.dask_scan import DaskScanner

    cfg = scan_config(base, hosts, hosts * per_host, library)
    with (
        local_cluster(workers) as cluster,  # the cluster `rongxin scan --dask local:N` starts
        Client(cluster) as probe,  # type: ignore[no-untyped-call]
    ):
        probe.run(_warm)
        prof = cProfile.Profile() if profile is not None else None
        cpu0, own0, site0 = probe.run(time.process_time), time.process_time(), site_cpu(base)
        t0 = time.perf_counter()
        if prof is not None:
            prof.enable()
        with DaskScanner(out, cfg, dask=cluster.scheduler_address, resolver=vhost_resolver) as scanner:
            summary = scanner.run()
        if prof is not None:
            prof.disable()
            prof.dump_stats(str(profile))
        summary["wall"] = time.perf_counter() - t0
        cpu1 = probe.run(time.process_time)
        summary["worker_cpu"] = sum(cpu1[w] - cpu0[w] for w in cpu1 if w in cpu0)
        summary["worker_split"] = sorted((cpu1[w] - cpu0[w] for w in cpu1 if w in cpu0), reverse=True)
        summary["client_cpu"] = time.process_time() - own0
        summary["site_cpu"] = site_cpu(base) - site0
    return summary


def dask_scaling(args: argparse.Namespace, pics: Path, library: Path, work: Path, quick: bool) -> None:
    """Scaling from one to two Dask workers, on pictures that each need fingerprinting.

    The runs alternate (1, 2, 1, 2, ...; ``--dask-repeat`` rounds) and the best time of each
    is kept: on a shared machine, load from other jobs only ever slows a run down. Besides
    wall time, the CPU seconds of the workers (W), of this process (C: the client and the
    local scheduler) and of the site's server (S) are measured, and the bound two cores
    put on the speed-up: ``2 W1 / (W2 + C2 + S2)`` — one worker cannot finish faster than
    its own CPU time W1, and two workers sharing two cores with the client and the site
    cannot finish faster than half of all the CPU time the run needs.
    """
    hosts, per_host = (10, 12) if quick else (args.dask_hosts, args.dask_pages)
    load = os.getloadavg()
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    profile = Path(args.profile) if args.profile else None
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    with Site(per_host, True, args.distinct, pics, work, unique=True) as base:
        for r in range(args.dask_repeat):
            for n in (1, 2):
                prof = profile / f"client-{n}-{r}.prof" if profile is not None else None
                s = run_dask(base, hosts, per_host, library, work / f"dask-{n}-{r}", n, prof)
                s["load"] = os.getloadavg()[0]
                runs[n].append(s)
    best = {n: min(rs, key=lambda s: s["wall"]) for n, rs in runs.items()}

    def bound(one: dict[str, Any], two: dict[str, Any]) -> float:
        return float(2 * one["worker_cpu"] / (two["worker_cpu"] + two["client_cpu"] + two["site_cpu"]))

    rows = []
    for n, s in best.items():
        rows.append(
            [
                str(n),
                str(s.get("page.done", 0)),
                str(s.get("media.done", 0)),
                str(s.get("media.fingerprinted", 0)),
                str(s.get("cases", 0)),
                f"{s['wall']:.1f}",
                " ".join(f"{r['wall']:.1f}" for r in runs[n]),
                f"{s.get('media.done', 0) / s['wall']:.1f}",
                f"{s['worker_cpu']:.1f}",
                f"{s['client_cpu']:.1f}",
                f"{s['site_cpu']:.1f}",
                f"{best[1]['wall'] / s['wall']:.2f}x",
                f"{bound(best[1], s):.2f}x" if n == 2 else "-",
            ]
        )
    print(f"Dask scaling: {hosts} virtual hosts x {per_host} pages, every picture URL distinct bytes; "
          f"cpu count {os.cpu_count()}, load average before {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, "
          f"after {os.getloadavg()[0]:.1f}\n")  # fmt: skip
    head = [
        "workers",
        "pages",
        "media",
        "fingerprinted",
        "cases",
        "best s",
        "all runs s",
        "media/s",
        "workers cpu s",
        "client cpu s",
        "site cpu s",
        "speed-up",
        "bound 2W1/(W2+C2+S2)",
    ]
    table(head, rows)
    print("rounds (1 worker, then 2): wall s, W (= per worker) / C / S CPU s, load after, speed-up, bound")

    def cpu(s: dict[str, Any]) -> str:
        w, c, site = s["worker_cpu"], s["client_cpu"], s["site_cpu"]
        split = "+".join(f"{x:.1f}" for x in s["worker_split"])
        return f"{s['wall']:.1f} ({w:.1f} = {split}/{c:.1f}/{site:.1f}, {s['load']:.1f})"

    for r, (one, two) in enumerate(zip(runs[1], runs[2], strict=True)):
        print(
            f"  {r}: {cpu(one)} -> {cpu(two)}: {one['wall'] / two['wall']:.2f}x, bound {bound(one, two):.2f}x"
        )
    print()


SPIDER = """
import json, sys, time
import scrapy
from scrapy.crawler import CrawlerProcess

BASE, N, MEDIA, CONC = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
got = {"pages": 0, "media": 0}

class Bench(scrapy.Spider):
    name = "bench"
    start_urls = [BASE + "/p/0.html"]

    def parse(self, response):
        got["pages"] += 1
        for href in response.css("a::attr(href)").getall():
            yield response.follow(href, self.parse)
        if MEDIA:
            for src in response.css("img::attr(src)").getall():
                yield response.follow(src, self.picture)

    def picture(self, response):
        got["media"] += 1

process = CrawlerProcess(settings={
    "ROBOTSTXT_OBEY": True, "DOWNLOAD_DELAY": 0, "CONCURRENT_REQUESTS": 16,
    "CONCURRENT_REQUESTS_PER_DOMAIN": CONC, "LOG_LEVEL": "ERROR", "TELNETCONSOLE_ENABLED": False,
    "CLOSESPIDER_PAGECOUNT": 0, "DEPTH_LIMIT": 20, "AUTOTHROTTLE_ENABLED": False,
    "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
})
process.crawl(Bench)
t0 = time.perf_counter()
process.start()
got["wall"] = time.perf_counter() - t0
print(json.dumps(got))
"""


def run_scrapy(python: str, base: str, n: int, media: bool, conc: int, work: Path) -> dict[str, Any]:
    script = work / "spider.py"
    script.write_text(textwrap.dedent(SPIDER))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [python, str(script), base, str(n), str(int(media)), str(conc)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=work,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"scrapy failed: {proc.stderr[-500:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        pages_arg, media_arg, distinct_arg, pictures, port_file = sys.argv[2:7]
        serve(
            int(pages_arg),
            media_arg != "0",
            int(distinct_arg),
            Path(pictures),
            Path(port_file),
            media_arg == "2",
        )
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="300 pages, 30 distinct pictures")
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--distinct", type=int, default=100, help="distinct pictures in the media run")
    ap.add_argument("--scrapy-python", default="", help="an interpreter with Scrapy installed")
    ap.add_argument("--library-works", type=int, default=0, help="pad the library to this many image works")
    ap.add_argument("--vhosts", type=int, default=100, help="virtual hosts of the second pages run")
    ap.add_argument("--dask-hosts", type=int, default=20, help="virtual hosts in the Dask scaling run")
    ap.add_argument("--dask-pages", type=int, default=25, help="pages per virtual host in the Dask run")
    ap.add_argument("--dask-repeat", type=int, default=2, help="alternating rounds of the Dask runs")
    ap.add_argument("--only", choices=["all", "crawl", "dask"], default="all", help="which runs")
    ap.add_argument("--profile", default="", help="write cProfile files of the Dask client to this directory")
    args = ap.parse_args()
    n, distinct = (300, 30) if args.quick else (args.pages, args.distinct)
    work = Path(tempfile.mkdtemp(prefix="bench-scan-"))
    try:
        pics, library = pictures_and_library(work, distinct)
        works = pad_library(library, args.library_works) if args.library_works else 0
        if works:
            count, secs, cpu, matched = run_identify(pics, library)
            load = os.getloadavg()
            print(
                f"identify: {count} pictures against {works} image works: {count / cpu:.1f} images "
                f"per CPU second ({cpu:.1f} s of CPU), {count / secs:.1f} images/s of wall time "
                f"({matched} matched); load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
                f"on {os.cpu_count()} cores\n"
            )
        if args.only in ("all", "crawl"):
            rows: list[list[str]] = []
            for media, hosts in ((False, 0), (False, args.vhosts), (True, 0)):
                with Site(n, media, distinct, pics, work) as base:
                    s = run_scanner(base, n, library, work / f"scan-{int(media)}-{hosts}", hosts)
                    pages = s.get("page.done", 0) + s.get("page.failed", 0)
                    fetched = s.get("media.done", 0)
                    rows.append(
                        [
                            "rongxin scan",
                            "media" if media else f"pages, {hosts} hosts" if hosts else "pages",
                            str(pages),
                            f"{pages / s['wall']:.0f}",
                            str(fetched),
                            f"{fetched / s['wall']:.1f}" if media else "-",
                            str(s.get("media.fingerprinted", 0)) if media else "-",
                            str(s.get("cases", 0)) if media else "-",
                            f"{s['wall']:.1f}",
                        ]
                    )
                    if args.scrapy_python and not hosts:
                        for conc in (1, 8):
                            r = run_scrapy(args.scrapy_python, base, n, media, conc, work)
                            rows.append(
                                [
                                    f"scrapy ({conc}/domain)",
                                    "media" if media else "pages",
                                    str(r["pages"]),
                                    f"{r['pages'] / r['wall']:.0f}",
                                    str(r["media"]),
                                    f"{r['media'] / r['wall']:.1f}" if media else "-",
                                    "-",
                                    "-",
                                    f"{r['wall']:.1f}",
                                ]
                            )
            print(f"loopback site: {n} pages, {distinct} distinct pictures; cpu count {os.cpu_count()}\n")
            table(
                ["crawler", "run", "pages", "pages/s", "media", "media/s", "fingerprinted", "cases", "s"],
                rows,
            )
        if args.only in ("all", "dask"):
            dask_scaling(args, pics, library, work, args.quick)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
