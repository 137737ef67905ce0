"""``rongxin vault put|get|grant|revoke|scrub|status`` against real node processes.

The default test runs a one-node network: a legal center stores a file, a court is
refused, then granted (the receipt verifies offline) and reads it, a stranger stays
refused, a damaged object is repaired only when a replica exists (here: reported lost).
The slow test runs four nodes: an upload through node-1 is copied to node-0 (the
supervisory organization's node); node-0 is killed with SIGKILL, loses its copy,
restarts, and its scrub rebuilds the copy from node-1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from chain.node.config import load_config
from rongxin.cli import app
from rongxin.ops import procs
from tests.crawlers.capture import conftest as capture_fixtures
from tests.crawlers.capture.site import CaptureSite
from tests.forensics.report.conftest import Found, image_found  # noqa: F401 (fixture)
from tests.rongxin.test_cli_chain import FAST, _flat, _free_base_port
from tests.rongxin.test_cli_report import _record_case

capture_site = capture_fixtures.capture_site
site_files = capture_fixtures.site_files

runner = CliRunner()
PASSWORD = "network password 1"
MEMBER_PASSWORD = "member password 1"


def _run(*args: str, password: str = PASSWORD) -> Result:
    return runner.invoke(app, list(args), env={"RONGXIN_KEY_PASSWORD": password})


@contextlib.contextmanager
def _network(base: Path, nodes: int, prepare: Callable[[Path], None] | None = None) -> Iterator[Path]:
    pw = base / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    out = base / "net"
    result = _run(
        "chain", "init", "--out", str(out), *FAST, "--nodes", str(nodes), "--password-file", str(pw),
        "--base-port", str(_free_base_port(nodes)), "--block-interval-ms", "100",
        "--round-timeout-ms", "1000",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    if prepare is not None:
        prepare(out)  # e.g. change a node's configuration before it starts
    old = os.environ.get("RONGXIN_KEY_PASSWORD")
    os.environ["RONGXIN_KEY_PASSWORD"] = PASSWORD  # the node processes read it
    try:
        up = _run("chain", "up", str(out))
        assert up.exit_code == 0, up.output
        deadline = time.monotonic() + 30
        while not all(s.online and (s.peers or 0) >= nodes - 1 for s in procs.probe(procs.discover(out))):
            assert time.monotonic() < deadline, "nodes did not start"
            time.sleep(0.2)
        yield out
    finally:
        _run("chain", "down", str(out))
        if old is None:
            os.environ.pop("RONGXIN_KEY_PASSWORD", None)
        else:
            os.environ["RONGXIN_KEY_PASSWORD"] = old


def _member(net: Path, tmp: Path, name: str, role: str) -> tuple[str, str]:
    """A new member's client profile and certificate id."""
    mpw = tmp / "mpw"
    mpw.write_text(MEMBER_PASSWORD + "\n")
    out = tmp / name
    added = _run(
        "member", "add", "--subject", name, "--roles", role, "--out", str(out),
        "--root-key", str(net / "supervisor" / "root.key"), "--member-password-file", str(mpw),
        "--client", str(net / "supervisor" / "client.toml"),
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    cert = json.loads((out / "member.cert.json").read_text())
    from chain.node.identity import certificate_from_json

    return str(out / "rongxin-client.toml"), certificate_from_json(json.dumps(cert)).cert_id.hex()


def _as(profile: str, *args: str) -> Result:
    return _run(*args, "--client", profile, password=MEMBER_PASSWORD)


@pytest.fixture(scope="module")
def one_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with _network(tmp_path_factory.mktemp("vault-cli"), 1) as net:
        yield net


def test_put_grant_get_refuse(one_node: Path, tmp_path: Path) -> None:
    legal, _ = _member(one_node, tmp_path, "Legal center", "legal_center")
    court, court_id = _member(one_node, tmp_path, "Internet court", "auditor")
    stranger, _ = _member(one_node, tmp_path, "Other center", "media_center")
    src = tmp_path / "evidence.wacz"
    src.write_bytes(os.urandom(200_000))
    put = _as(legal, "vault", "put", str(src), "--json")
    assert put.exit_code == 0, put.output
    row = json.loads(put.output)[0]
    digest = row["object"]
    got = _as(legal, "vault", "get", digest, "--out", str(tmp_path / "back"))
    assert got.exit_code == 0, got.output
    assert (tmp_path / "back").read_bytes() == src.read_bytes()
    refused = _as(court, "vault", "get", digest, "--out", str(tmp_path / "court"))
    assert refused.exit_code == 1 and "no grant" in _flat(refused.output)
    assert not (tmp_path / "court").exists()
    granted = _as(legal, "vault", "grant", digest, court_id, "--out-dir", str(tmp_path / "r"), "--json")
    assert granted.exit_code == 0, granted.output
    receipt = json.loads(granted.output)["receipt"]
    genesis = str(one_node / "genesis.cbor")
    verified = _run("verify", receipt, "--genesis", genesis)
    assert verified.exit_code == 0, verified.output
    got = _as(court, "vault", "get", digest, "--out", str(tmp_path / "court"))
    assert got.exit_code == 0, got.output
    assert (tmp_path / "court").read_bytes() == src.read_bytes()
    still = _as(stranger, "vault", "get", digest, "--out", str(tmp_path / "stranger"))
    assert still.exit_code == 1 and not (tmp_path / "stranger").exists()
    # the node scrubs: everything intact; then an object damaged at rest with no replica is reported lost
    scrub = _as(legal, "vault", "scrub", "--json")
    assert scrub.exit_code == 0, scrub.output
    assert json.loads(scrub.output)["intact"] >= 1
    cfg = load_config(one_node / "node-0" / "node.toml")
    obj = cfg.vault.directory(cfg.node.data_dir) / "objects" / digest[:2] / digest[2:4] / digest
    raw = bytearray(obj.read_bytes())
    raw[500] ^= 1
    obj.write_bytes(bytes(raw))
    broken = _as(legal, "vault", "get", digest, "--out", str(tmp_path / "broken"))
    assert broken.exit_code == 1 and not (tmp_path / "broken").exists()
    scrub = _as(legal, "vault", "scrub", "--json")
    assert scrub.exit_code == 1 and json.loads(scrub.output)["lost"] == [digest]
    status = _as(legal, "vault", "status")
    assert status.exit_code == 0 and json.loads(status.output)["hold_all"] is True


def test_bad_input(one_node: Path, tmp_path: Path) -> None:
    client = str(one_node / "supervisor" / "client.toml")
    missing = _run("vault", "put", str(tmp_path / "nope"), "--client", client)
    assert missing.exit_code == 1 and "not a readable file" in _flat(missing.output)
    bad = _run("vault", "get", "xyz", "--out", str(tmp_path / "o"), "--client", client)
    assert bad.exit_code == 1 and "64 hex digits" in _flat(bad.output)
    unknown = _run("vault", "grant", "ab" * 32, "cd" * 32, "--client", client)
    assert unknown.exit_code == 1 and "no grant" in _flat(unknown.output)


@pytest.mark.slow
def test_replica_rebuilt_after_its_node_is_killed(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.mktemp("vault-replica")
    with _network(base, 4) as net:
        legal, _ = _member(net, base, "Legal center", "legal_center")
        node1 = load_config(net / "node-1" / "node.toml")
        url1 = f"http://{node1.api.listen.url_authority}"
        src = base / "case.mp4"
        src.write_bytes(os.urandom(3 << 20))
        put = _run(
            "vault", "put", str(src), "--json", "--client", legal, "--node", url1, password=MEMBER_PASSWORD
        )
        assert put.exit_code == 0, put.output
        digest = json.loads(put.output)[0]["object"]
        regulator = load_config(net / "node-0" / "node.toml")
        copy = (
            regulator.vault.directory(regulator.node.data_dir) / "objects" / digest[:2] / digest[2:4] / digest
        )
        deadline = time.monotonic() + 30
        while not copy.exists():
            assert time.monotonic() < deadline, "node-1 did not copy the object to node-0"
            time.sleep(0.2)
        # node-0 dies with SIGKILL and loses its copy
        entry = {e.name: e for e in procs.discover(net)}["node-0"]
        pid = procs.running_pid(entry.config)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while procs.running_pid(entry.config) is not None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        copy.unlink()
        up = _run("chain", "up", str(net), "--node", "node-0")
        assert up.exit_code == 0, up.output
        url0 = f"http://{regulator.api.listen.url_authority}"
        deadline = time.monotonic() + 30
        while True:
            scrub = _run(
                "vault", "scrub", "--json", "--client", legal, "--node", url0, password=MEMBER_PASSWORD
            )
            if scrub.exit_code == 0:
                break
            assert time.monotonic() < deadline, scrub.output
            time.sleep(0.5)
        report = json.loads(scrub.output)
        assert digest in report["missing"] and digest in report["repaired"]
        got = _run("vault", "get", digest, "--out", str(base / "back"), "--client", legal, "--node", url0,
                   password=MEMBER_PASSWORD)  # fmt: skip
        assert got.exit_code == 0, got.output
        assert (base / "back").read_bytes() == src.read_bytes()


def test_works_add_keep_source_seals_the_file_into_the_vault(one_node: Path, tmp_path: Path) -> None:
    """``works add --keep-source``: the source goes to the vault first, the work's metadata
    names the object, and the member gets the exact bytes back; a file already registered
    is not stored again."""
    import numpy as np
    from PIL import Image

    legal, _ = _member(one_node, tmp_path, "Legal center", "legal_center")
    rng = np.random.default_rng(5)
    src = tmp_path / "poster.png"
    Image.fromarray((rng.random((160, 200, 3)) * 255).astype(np.uint8)).save(src)
    lib = tmp_path / "lib"
    added = _as(legal, "works", "add", str(src), "--library", str(lib), "--keep-source")
    assert added.exit_code == 0, added.output
    shown = _run("works", "show", "poster", "--library", str(lib), "--json")
    assert shown.exit_code == 0, shown.output
    meta = json.loads(shown.output)["metadata"]
    assert len(meta["vault_object"]) == 64 and meta["vault_height"] >= 1
    got = _as(legal, "vault", "get", meta["vault_object"], "--out", str(tmp_path / "back.png"))
    assert got.exit_code == 0, got.output
    assert (tmp_path / "back.png").read_bytes() == src.read_bytes()
    again = _as(legal, "works", "add", str(src), "--library", str(lib), "--keep-source")
    assert again.exit_code == 0 and "skipped" in _flat(again.output)
    # without a usable profile nothing is registered
    bad = _run("works", "add", str(src), "--library", str(tmp_path / "lib2"), "--keep-source",
               "--client", str(tmp_path / "missing.toml"))  # fmt: skip
    assert bad.exit_code == 1 and not (tmp_path / "lib2").exists()


def test_evidence_capture_and_report_keep_their_files_in_the_vault(
    one_node: Path,
    tmp_path: Path,
    capture_site: CaptureSite,
    image_found: Found,  # noqa: F811
) -> None:
    """``evidence capture --keep`` and ``report --keep``: the finished package and the written
    report go to the member's vault through its node; the printed object gives them back."""
    legal, _ = _member(one_node, tmp_path, "Legal center", "legal_center")
    anchored = _as(legal, "anchor", os.urandom(32).hex(), "--out-dir", str(tmp_path / "a"))
    assert anchored.exit_code == 0, anchored.output  # a block exists: the capture reads the ledger's time
    out = tmp_path / "ev"
    done = _as(legal, "evidence", "capture", f"{capture_site.base}/static.html", "--out", str(out),
               "--allow", "127.0.0.1", "--no-recording", "--keep", "--json")  # fmt: skip
    assert done.exit_code == 0, done.output
    summary = json.loads(done.output)
    assert summary["anchored"] and len(summary["vault_object"]) == 64 and summary["vault_height"] >= 1
    assert json.loads((out / "vault.json").read_text())["vault_object"] == summary["vault_object"]
    got = _as(legal, "vault", "get", summary["vault_object"], "--out", str(tmp_path / "back.wacz"))
    assert got.exit_code == 0, got.output
    assert (tmp_path / "back.wacz").read_bytes() == Path(summary["package"]).read_bytes()
    refused = _as(legal, "evidence", "capture", f"{capture_site.base}/static.html", "--out",
                  str(tmp_path / "ev2"), "--no-anchor", "--keep")  # fmt: skip
    assert refused.exit_code == 1 and "--no-anchor" in _flat(refused.output)
    # the report of a case, kept likewise
    scan = tmp_path / "scan"
    _record_case(scan, image_found)
    lib = image_found.work_file.parent / "lib"
    written = _as(legal, "report", "1", "--scan", str(scan), "--library", str(lib), "--format", "html",
                  "--lang", "en", "--out", str(tmp_path / "r" / "case-1"), "--keep")  # fmt: skip
    assert written.exit_code == 0, written.output
    doc = json.loads(written.stdout)
    kept = doc["vault"]["html"]
    got = _as(legal, "vault", "get", kept["vault_object"], "--out", str(tmp_path / "back.html"))
    assert got.exit_code == 0, got.output
    assert (tmp_path / "back.html").read_bytes() == Path(doc["html"]).read_bytes()
    # a bad profile: nothing is written
    bad = _run("report", "1", "--scan", str(scan), "--library", str(lib), "--format", "html", "--out",
               str(tmp_path / "r2" / "case-1"), "--keep", "--client", str(tmp_path / "x.toml"))  # fmt: skip
    assert bad.exit_code == 1 and not (tmp_path / "r2").exists()


@pytest.mark.slow
def test_node_process_with_s3_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node process whose ``[vault]`` is ``backend = "s3"`` (a loopback S3 server) stores
    a member's upload in the bucket and serves it back through its API."""
    import dataclasses

    from chain.node.config import S3Settings, dump_config
    from tests.chain.vault.s3server import ACCESS_KEY_ID, REGION, SECRET, s3_server

    monkeypatch.setenv("RONGXIN_TEST_S3_SECRET", SECRET)  # the node process inherits it
    with s3_server() as server:
        bucket = server.store("node-vault", prefix="node-0/")

        def to_s3(net: Path) -> None:
            path = net / "node-0" / "node.toml"
            cfg = load_config(path)
            s3 = S3Settings(server.endpoint, "node-vault", REGION, ACCESS_KEY_ID,
                            secret_env="RONGXIN_TEST_S3_SECRET", prefix="node-0/")  # fmt: skip
            vault = dataclasses.replace(cfg.vault, backend="s3", s3=s3)
            path.write_text(dump_config(dataclasses.replace(cfg, vault=vault)))

        with _network(tmp_path, 1, prepare=to_s3) as net:
            legal, _ = _member(net, tmp_path, "Legal center", "legal_center")
            src = tmp_path / "case.wacz"
            src.write_bytes(os.urandom(300_000))
            put = _as(legal, "vault", "put", str(src), "--json")
            assert put.exit_code == 0, put.output
            digest = json.loads(put.output)[0]["object"]
            assert [d.hex() for d in bucket.digests()] == [digest]
            cfg = load_config(net / "node-0" / "node.toml")
            assert not (cfg.vault.directory(cfg.node.data_dir) / "objects").exists()
            got = _as(legal, "vault", "get", digest, "--out", str(tmp_path / "back"))
            assert got.exit_code == 0, got.output
            assert (tmp_path / "back").read_bytes() == src.read_bytes()
