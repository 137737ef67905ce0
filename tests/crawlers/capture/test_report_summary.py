"""A captured, signed, anchored package in the infringement report: verified, then summarized."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from crawlers.package import read_package
from rongxin.errors import RongxinError
from rongxin.report_package import capture_summary, extract_copy

from .conftest import Ledger


def test_a_verified_package_is_summarized(package: Path, ledger: Ledger, tmp_path: Path) -> None:
    summary = capture_summary(package, ledger.consortium.genesis, case_id=7)
    with read_package(package) as pkg:
        shot = pkg.screenshot
        files = pkg.files
        log = pkg.capture_log
    assert summary.screenshot_png == shot and shot.startswith(b"\x89PNG")
    assert {f.name for f in summary.files} == set(files)
    for f in summary.files:
        assert (f.sm3, f.sha256, f.size) == (
            files[f.name]["sm3"],
            files[f.name]["sha256"],
            files[f.name]["bytes"],
        )
    assert len(summary.timeline) == len(log) and summary.timeline[0].time == log[0]["time"]
    env = dict(summary.environment)
    assert env["url"].endswith("/static.html") and env["started"].endswith("Z")
    assert summary.signature is not None and summary.signature.verified
    assert summary.signature.signer.startswith("Legal center")
    assert summary.receipt is not None and summary.receipt.verified and summary.receipt.height >= 1
    assert summary.receipt.digest == summary.package_sm3 and len(summary.receipt.validators) >= 1
    # in a report: the package digest, the receipt's height and every file's digests
    from dataclasses import replace

    from forensics.evidence import ImageHashEvidence
    from forensics.report import CaseInfo, ReportInput, WorkInfo, build_html

    case = CaseInfo(
        "7", env["url"], env["url"], env["url"], "2026-12-05T00:00:00Z", "00" * 32, True, 1.0, 0.5
    )
    work = WorkInfo("astronaut", "image", "", "11" * 32, "22" * 32)
    ev = ImageHashEvidence(1, 24, "none", ((0, 0), (1, 0), (1, 1), (0, 1)), (2, 2), 0, 1e-4)
    html = build_html(replace(ReportInput(case, work, ev), capture=summary), "en")
    assert summary.package_sm3 in html and f"<td>{summary.receipt.height}</td>" in html
    assert all(f.sm3 in html and f.sha256 in html for f in summary.files)
    assert "No capture package" not in html and html.count("data:image/") >= 2  # QR + screenshot
    assert "rongxin evidence verify static.wacz --genesis genesis.cbor" in html


def test_a_package_of_another_case_or_tampered_is_refused(
    package: Path, ledger: Ledger, tmp_path: Path
) -> None:
    with pytest.raises(RongxinError, match="is of case 7, not 8"):
        capture_summary(package, ledger.consortium.genesis, case_id=8)
    bad = tmp_path / "bad.wacz"
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "evidence/screenshot.png":
                data = data[:-10] + bytes([data[-10] ^ 1]) + data[-9:]
            dst.writestr(info.filename, data)
    with pytest.raises(RongxinError, match=r"does not verify: evidence/screenshot.png \[sm3\]"):
        capture_summary(bad, ledger.consortium.genesis)
    with pytest.raises(RongxinError, match="does not verify"):
        capture_summary(tmp_path / "missing.wacz", ledger.consortium.genesis)


def test_the_copy_is_taken_out_by_its_digest(package: Path, tmp_path: Path) -> None:
    with read_package(package) as pkg:
        name, entry = next((n, e) for n, e in sorted(pkg.files.items()) if n.endswith(".png"))
        data = pkg.read(name)
    out = extract_copy(package, entry["sm3"], tmp_path)
    assert out is not None and out.read_bytes() == data
    assert extract_copy(package, "00" * 32, tmp_path) is None
