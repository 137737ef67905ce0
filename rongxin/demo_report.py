"""The demo's report stage: scan a local page holding attacked copies, report the case.

:func:`report_stage` serves the demo's attacked copies on a loopback web page, scans it
(:class:`crawlers.scan.Scanner`, the same code as ``rongxin scan``) against the demo's
work library, and writes the infringement report of one case as HTML and PDF
(``report/case-N.html``, ``.pdf``) after capturing the case's page as an evidence package
(``rongxin evidence capture``'s code, anchored on a one-node ledger of a legal center),
with the work's file found in the smoke corpus by its SM3, the copy taken out of the
package by the scan's digest, and the fingerprint-batch receipt checked against the demo's
genesis.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Step = Callable[[str, bool, str, float], None]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def _serve(root: Path) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 (a free port) until the block ends; yield the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _work_file(content_sm3: bytes) -> Path | None:
    """The smoke corpus's image whose SM3 is ``content_sm3`` (the demo registered it)."""
    from chain.crypto.sm3 import sm3_file
    from datasets.manifest import load as load_manifest
    from datasets.smoke import ensure as ensure_smoke

    corpus = ensure_smoke()
    for entry in load_manifest(corpus / "manifest.jsonl"):
        if (
            entry.kind == "image"
            and entry.role == "original"
            and sm3_file(corpus / entry.path) == content_sm3
        ):
            return corpus / entry.path
    return None


def _capture(case: Any, report_dir: Path) -> tuple[Path, Any]:
    """Capture the case's page as an evidence package, anchored on a one-node ledger of a
    legal center (its genesis in ``report_dir/evidence-genesis.cbor``)."""
    from chain.localnet import LocalConsortium
    from chain.types import Role
    from crawlers.capture import CaptureOptions
    from rongxin.evidence import collect_evidence

    net = LocalConsortium.create(report_dir / "ledger", nodes=1, chain_id="rongxin-demo-report")
    try:
        net.net.now = int(time.time() * 1000)  # blocks carry the wall clock, as real nodes do
        center = net.add_member("Demo legal center (法律服务中心)", [Role.LEGAL_CENTER])
        (report_dir / "evidence-genesis.cbor").write_bytes(net.genesis.to_bytes())

        def anchor(digest: bytes) -> Any:
            net.net.now = max(net.net.now, int(time.time() * 1000))
            return net.anchor(center, digest, "evidence-package")

        ev = collect_evidence(
            case.page_url,
            report_dir / f"case-{case.id}-evidence",
            key=center.key,
            certificate=center.cert,
            anchor=anchor,
            options=CaptureOptions(allow=("127.0.0.1",), default_play_s=0.0),
            case=case.to_json(),
        )
        return ev.package, net.genesis
    finally:
        net.close()


def report_stage(out_dir: Path, step: Step) -> None:
    """Scan a local page showing the demo's attacked copies and report one case (HTML + PDF).

    Parameters
    ----------
    out_dir : Path
        The demo's output directory (``library/``, ``copies/``, ``genesis.cbor`` and
        ``receipt-fingerprints.cbor`` from the earlier stages).
    step : callable
        The demo's step recorder ``(name, ok, detail, t0)``.
    """
    import html
    import shutil

    from crawlers.scan import ScanConfig, Scanner
    from forensics.library import Library
    from rongxin.cli_report import receipt_summary, report_input, write_report
    from rongxin.errors import RongxinError
    from rongxin.report_package import capture_summary, extract_copy

    t0 = time.perf_counter()
    site = out_dir / "site"
    scan_dir = out_dir / "scan"
    for d in (site, scan_dir):
        if d.exists():
            shutil.rmtree(d)
    (site / "img").mkdir(parents=True)
    copies = sorted((out_dir / "copies").glob("copy-*.png"))
    for c in copies:
        shutil.copyfile(c, site / "img" / c.name)
    tags = "".join(f'<img src="img/{html.escape(c.name)}" alt="">' for c in copies)
    title = "转载图集 <script>alert('demo')</script>"  # a hostile title, shown escaped
    (site / "index.html").write_text(
        f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{tags}</body></html>",
        encoding="utf-8",
    )
    report_dir = out_dir / "report"
    shutil.rmtree(report_dir, ignore_errors=True)
    report_dir.mkdir()
    with _serve(site) as base:
        config = ScanConfig(
            seeds=[base + "/"], library=str(out_dir / "library"), depth=1, max_pages=5, delay=0.0,
            allow=["127.0.0.1"], contact="mailto:demo@rongxin.test", request_seconds=10.0,
        )  # fmt: skip
        with Scanner(scan_dir, config) as scanner:
            scanner.run()
            cases = scanner.store.cases()
        features = [c for c in cases if c.evidence.get("evidence", {}).get("path") == "features"]
        case = (features or cases)[0] if cases else None
        if case is None:
            step("infringement report", False, f"the scan of {len(copies)} copies found no case", t0)
            return
        package, evidence_genesis = _capture(case, report_dir)
    capture = capture_summary(package, evidence_genesis, case_id=case.id)
    with Library.open(out_dir / "library", readonly=True) as lib:
        reg = lib.work(case.work_id)
    work_file = _work_file(reg.content_digest)
    copy_file = extract_copy(package, case.content_digest.hex(), report_dir) or (
        site / "img" / case.media_url.rsplit("/", 1)[-1]
    )
    receipt = receipt_summary(
        out_dir / "receipt-fingerprints.cbor", out_dir / "genesis.cbor", "作品指纹批次登记"
    )
    inp = report_input(
        case,
        out_dir / "library",
        work_file=work_file,
        copy_file=copy_file,
        capture=capture,
        work_receipt=receipt,
        issuer="演示县融媒体中心 (Demo county media center)",
    )
    files = write_report(inp, report_dir / f"case-{case.id}", ("html", "pdf"), force=True)
    if files.html is None or files.pdf is None:  # pragma: no cover - both formats were asked for
        raise RongxinError("the report was not written")
    text = files.html.read_text(encoding="utf-8")
    ok = (
        work_file is not None
        and case.content_digest.hex() in text
        and f"<td>{receipt.height}</td>" in text
        and capture.package_sm3 in text
        and capture.receipt is not None
        and "<script>alert" not in text
        and files.pdf.read_bytes().startswith(b"%PDF-")
    )
    path = case.evidence.get("evidence", {}).get("path", case.kind)
    step(
        "infringement report",
        ok,
        f"a local page showing {len(copies)} attacked copies scanned: {len(cases)} cases; report of case "
        f"{case.id} ({case.work_id}, {path} match) written to report/{files.html.name} and "
        f"{files.pdf.name} ({files.pdf.stat().st_size // 1024} KiB, A4, "
        f"Chinese): work and copy side by side, the page captured into {package.name} (verified, "
        f"its screenshot, log, environment, {len(capture.files)} files' SM3 and SHA-256, signature and "
        f"receipt), the fingerprint receipt (height {receipt.height}) checked against genesis.cbor",
        t0,
    )
