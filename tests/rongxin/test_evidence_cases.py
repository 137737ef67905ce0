"""rongxin.evidence_cases without a browser: which cases are pending, and what happens to
each when its capture, its vault copy or its record fails."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chain.errors import ChainError
from crawlers.errors import CaptureError, ScanStoreError
from crawlers.store import Case, ScanStore
from rongxin.errors import RongxinError
from rongxin.evidence_cases import capture_cases, case_dir, pending_cases


@dataclass
class _Evidence:
    package: Path
    digest: bytes
    receipt: Any


def _scan(directory: Path, pages: int) -> Path:
    """A scan database with one identified image referenced by ``pages`` pages (one case each)."""
    store = ScanStore(directory, create=True)
    try:
        media = "http://site.test/copy.jpg"
        store.add(media, "media", 1)
        for i in range(pages):
            store.add(f"http://site.test/p{i}.html", "page", 0)
            store.add_ref(f"http://site.test/p{i}.html", media)
        item, _ = store.next_item(time.time(), pages=False)
        assert item is not None
        match = {"work_id": "w", "kind": "image", "score": 0.9, "evidence": {}}
        assert store.finish_media(item, media, bytes(32), "image/jpeg", 10, [match]) == pages
    finally:
        store.close()
    return directory


def _collect(fail: set[str]) -> Any:
    def collect(case: Case, target: Path) -> _Evidence:
        if case.page_url in fail:
            raise CaptureError("the page did not load")
        target.mkdir(parents=True)
        (target / "evidence.wacz").write_bytes(b"package of " + case.page_url.encode())
        return _Evidence(target / "evidence.wacz", bytes([case.id]) * 32, receipt=object())

    return collect


def test_each_case_is_captured_and_recorded_and_a_failure_stays_with_its_case(tmp_path: Path) -> None:
    scan, out = _scan(tmp_path / "scan", 3), tmp_path / "out"
    todo, total = pending_cases(scan, out)
    assert total == 3 and [c.id for c in todo] == [1, 2, 3]
    case_dir(out, 1).mkdir(parents=True)
    (case_dir(out, 1) / "half-written").write_bytes(b"x")  # an interrupted capture
    results = list(capture_cases(scan, todo, out, _collect({"http://site.test/p1.html"}), keep=None))
    assert [r.ok for r in results] == [True, False, True]
    assert not (case_dir(out, 1) / "half-written").exists()
    assert results[1].to_json() == {"case": 2, "url": "http://site.test/p1.html", "anchored": False,
                                    "error": "evidence capture of http://site.test/p1.html failed: "
                                             "the page did not load"}  # fmt: skip
    assert results[0].package_digest_sm3 == "01" * 32 and results[0].anchored
    store = ScanStore(scan)
    try:
        recorded = {c.id: c.package for c in store.cases()}
    finally:
        store.close()
    assert recorded[2] is None and recorded[1] is not None
    assert recorded[1]["path"] == results[0].package and recorded[1]["sm3"] == "01" * 32
    assert [c.id for c in pending_cases(scan, out)[0]] == [2]


def test_a_package_not_kept_is_still_recorded_and_chain_errors_are_reported(tmp_path: Path) -> None:
    scan, out = _scan(tmp_path / "scan", 2), tmp_path / "out"

    def keep(package: Path, target: Path) -> dict[str, Any]:
        raise RongxinError("the vault refused: 403")

    todo, _ = pending_cases(scan, out)
    (kept_not,) = list(capture_cases(scan, todo[:1], out, _collect(set()), keep))
    assert kept_not.package is not None and "not kept in the vault: the vault refused" in str(kept_not.error)
    assert pending_cases(scan, out)[0] == todo[1:]  # recorded: not captured again

    def unanchored(case: Case, target: Path) -> _Evidence:
        raise ChainError("node unreachable")

    (no_chain,) = list(capture_cases(scan, todo[1:], out, unanchored, None))
    assert no_chain.package is None and "node unreachable" in str(no_chain.error)


def test_a_case_the_database_does_not_hold_is_not_recorded(tmp_path: Path) -> None:
    scan, out = _scan(tmp_path / "scan", 1), tmp_path / "out"
    (case,) = pending_cases(scan, out)[0]
    ghost = Case(
        99, case.page_url, case.media_url, case.final_url, "w", "image", 0.9, {}, bytes(32), True, "t"
    )
    (result,) = list(capture_cases(scan, [ghost], out, _collect(set()), None))
    assert result.package is not None and "not recorded with the case" in str(result.error)
    store = ScanStore(scan)
    try:
        with pytest.raises(ScanStoreError, match="no case 99"):
            store.record_package(99, "x", bytes(32))
    finally:
        store.close()
    with pytest.raises(ScanStoreError):
        pending_cases(tmp_path / "no-scan", out)
