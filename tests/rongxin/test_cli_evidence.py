"""``rongxin evidence capture`` and ``rongxin evidence verify``."""

from __future__ import annotations

import json
import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chain.crypto.keyfile import save_private_key
from chain.node.identity import certificate_to_json
from crawlers.package import read_package
from crawlers.store import ScanStore
from rongxin.cli import app
from rongxin.client_profile import write_profile
from tests.crawlers.capture import conftest as capture_fixtures
from tests.crawlers.capture.conftest import Ledger
from tests.crawlers.capture.site import CaptureSite
from tests.rongxin import test_cli_member
from tests.rongxin.test_cli_member import PASSWORD as NET_PASSWORD

# fixtures shared with the capture tests and the member commands' network
capture_site = capture_fixtures.capture_site
ledger = capture_fixtures.ledger
package = capture_fixtures.package
site_files = capture_fixtures.site_files
static_capture = capture_fixtures.static_capture
net = test_cli_member.net

runner = CliRunner()
PASSWORD = "center password 1"


@pytest.fixture
def genesis_file(ledger: Ledger, tmp_path: Path) -> Path:
    path = tmp_path / "genesis.cbor"
    path.write_bytes(ledger.consortium.genesis.to_bytes())
    return path


def test_verify_accepts_a_good_package_and_names_a_changed_file(
    package: Path, genesis_file: Path, tmp_path: Path
) -> None:
    ok = runner.invoke(app, ["evidence", "verify", str(package), "--genesis", str(genesis_file)])
    assert ok.exit_code == 0, ok.output
    assert "VALID" in ok.output and "receipt" in ok.output
    doc = json.loads(
        runner.invoke(
            app, ["evidence", "verify", str(package), "--genesis", str(genesis_file), "--json"]
        ).output
    )
    assert doc["ok"] is True and len(doc["package_digest_sm3"]) == 64
    bad = tmp_path / "bad.wacz"
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, data + b" " if info.filename == "evidence/dom.html" else data)
    refused = runner.invoke(app, ["evidence", "verify", str(bad), "--genesis", str(genesis_file), "--json"])
    assert refused.exit_code == 1
    failures = [c for c in json.loads(refused.output)["checks"] if c["status"] == "failed"]
    assert failures == [
        {"file": "evidence/dom.html", "check": "size", "status": "failed", "detail": failures[0]["detail"]}
    ]
    human = runner.invoke(app, ["evidence", "verify", str(bad), "--genesis", str(genesis_file)])
    assert human.exit_code == 1 and "REFUSED" in human.output and "evidence/dom.html [size]" in human.output


def test_verify_refuses_unreadable_inputs(package: Path, genesis_file: Path, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["evidence", "verify", str(package), "--genesis", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "cannot read" in missing.output
    junk = tmp_path / "junk.cbor"
    junk.write_bytes(b"\xa0junk")
    bad_genesis = runner.invoke(app, ["evidence", "verify", str(package), "--genesis", str(junk), "--json"])
    assert bad_genesis.exit_code == 1 and json.loads(bad_genesis.output)["reason"] == "input"
    not_zip = tmp_path / "x.wacz"
    not_zip.write_bytes(b"PK\x03\x04 not really")
    res = runner.invoke(app, ["evidence", "verify", str(not_zip), "--genesis", str(genesis_file), "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["checks"][0]["check"] == "package"


@pytest.fixture
def profile(ledger: Ledger, genesis_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The legal center's client profile (its node address leads nowhere: offline use only)."""
    key_file, cert_file = tmp_path / "center.key", tmp_path / "center.cert.json"
    save_private_key(ledger.center.key, key_file, PASSWORD, scrypt_n=2**10)
    cert_file.write_text(certificate_to_json(ledger.center.cert))
    path = tmp_path / "client.toml"
    write_profile(path, "http://127.0.0.1:9", genesis_file, key_file, cert_file)
    monkeypatch.setenv("RONGXIN_KEY_PASSWORD", PASSWORD)
    return path


def test_capture_signs_with_the_profile_key(
    capture_site: CaptureSite, genesis_file: Path, profile: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ev"
    args = [
        "evidence",
        "capture",
        f"{capture_site.base}/scripted.html",
        "--out",
        str(out),
        "--client",
        str(profile),
    ]
    refused = runner.invoke(app, [*args, "--no-anchor", "--json"])
    assert refused.exit_code == 1 and "loopback" in refused.output  # the guard needs an explicit allow
    shutil.rmtree(out, ignore_errors=True)
    done = runner.invoke(app, [*args, "--no-anchor", "--no-recording", "--allow", "127.0.0.1", "--json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.output)
    assert summary["title"] == "Built by script" and summary["anchored"] is False
    checked = runner.invoke(
        app, ["evidence", "verify", summary["package"], "--genesis", str(genesis_file), "--json"]
    )
    doc = json.loads(checked.output)
    assert checked.exit_code == 1 and not doc["ok"]  # signed, but no chain receipt yet
    status = {(c["file"], c["check"]): c["status"] for c in doc["checks"]}
    assert status[("evidence/signature.json", "signature")] == "ok"
    assert status[("evidence/manifest.json", "certificate")] == "ok"
    assert status[("evidence/receipt.cbor", "receipt")] == "failed"
    again = runner.invoke(app, [*args, "--no-anchor", "--allow", "127.0.0.1"])
    assert again.exit_code == 1 and "not empty" in " ".join(again.output.split())


@pytest.mark.slow
def test_capture_anchors_through_a_real_node_and_verifies(
    net: Path, capture_site: CaptureSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RONGXIN_KEY_PASSWORD", NET_PASSWORD)
    client = str(net / "supervisor" / "client.toml")
    first = runner.invoke(
        app, ["anchor", os.urandom(32).hex(), "--client", client, "--out-dir", str(tmp_path)]
    )
    assert first.exit_code == 0, first.output  # the chain has a block: the capture reads the ledger's time
    out = tmp_path / "ev"
    done = runner.invoke(
        app,
        ["evidence", "capture", f"{capture_site.base}/video.html", "--out", str(out), "--allow", "127.0.0.1",
         "--client", client, "--play-seconds", "1", "--json"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    summary = json.loads(done.output)
    assert summary["anchored"] and summary["media"] == 1
    env = json.loads((out / "capture" / "evidence" / "environment.json").read_text())
    assert abs(env["clock"]["offset_ms"]) < 120_000  # the ledger's head time, a block interval or so behind
    checked = runner.invoke(
        app, ["evidence", "verify", summary["package"], "--genesis", str(net / "genesis.cbor"), "--json"]
    )
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.output)["facts"]["anchored"]["height"] >= 1


def test_capture_cases_captures_each_new_case_once(
    capture_site: CaptureSite, profile: Path, tmp_path: Path
) -> None:
    scan = tmp_path / "scan"
    store = ScanStore(scan, create=True)
    try:
        page, media = f"{capture_site.base}/video.html", f"{capture_site.base}/media/clip.mp4"
        store.add(page, "page", 0)
        store.add(media, "media", 1)
        store.add_ref(page, media)
        item, _ = store.next_item(time.time(), pages=False)
        assert item is not None and item.url == media
        match = {"work_id": "clip", "kind": "video", "score": 0.9,
                 "evidence": {"details": {"query_start": 1.0, "query_end": 2.0}}}  # fmt: skip
        assert store.finish_media(item, media, bytes(32), "video/mp4", 10, [match]) == 1
    finally:
        store.close()
    out = tmp_path / "packages"
    args = ["evidence", "capture-cases", "--scan", str(scan), "--out", str(out), "--client", str(profile),
            "--allow", "127.0.0.1", "--no-anchor", "--no-recording", "--json"]  # fmt: skip
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    (row,) = [json.loads(line) for line in first.output.splitlines()]
    assert row["case"] == 1 and Path(row["package"]).exists()
    with read_package(row["package"]) as pkg:
        assert pkg.manifest["case"]["work_id"] == "clip"
        play = next(e for e in pkg.capture_log if e["event"] == "play")
        assert abs(play["start"] - 1.0) < 0.2 and play["seconds"] == 1.0  # the case's matched span
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "no new case" in again.output
