"""Members' commands against a real network of node processes: ``rongxin anchor``,
``rongxin receipt``, ``rongxin member add|revoke``, and a node killed with SIGKILL that
catches up after a restart."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from chain.crypto.sm3 import sm3_file
from chain.node.config import load_config
from chain.node.heap import GC_THRESHOLDS
from rongxin.cli import app
from rongxin.ops import procs
from tests.rongxin.test_cli_chain import FAST, _flat, _free_base_port

runner = CliRunner()
PASSWORD = "network password 1"
MEMBER_PASSWORD = "member password 1"


def _run(*args: str, password: str = PASSWORD) -> Result:
    return runner.invoke(app, list(args), env={"RONGXIN_KEY_PASSWORD": password})


def _heights(net: Path) -> dict[str, int | None]:
    return {s.name: s.height for s in procs.probe(procs.discover(net))}


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("members")
    pw = base / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    out = base / "net"
    port = _free_base_port(4)
    result = _run(
        "chain", "init", "--out", str(out), *FAST, "--nodes", "4", "--password-file", str(pw),
        "--base-port", str(port), "--block-interval-ms", "200", "--round-timeout-ms", "1000",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    old = os.environ.get("RONGXIN_KEY_PASSWORD")
    os.environ["RONGXIN_KEY_PASSWORD"] = PASSWORD  # the node processes read it
    try:
        up = _run("chain", "up", str(out))
        assert up.exit_code == 0, up.output
        deadline = time.monotonic() + 30
        while not all(s.online and (s.peers or 0) >= 3 for s in procs.probe(procs.discover(out))):
            assert time.monotonic() < deadline, "nodes did not connect"
            time.sleep(0.2)
        yield out
    finally:
        _run("chain", "down", str(out))
        if old is None:
            os.environ.pop("RONGXIN_KEY_PASSWORD", None)
        else:
            os.environ["RONGXIN_KEY_PASSWORD"] = old


def test_anchor_files_and_digests_and_verify_offline(net: Path, tmp_path: Path) -> None:
    work = tmp_path / "programme.txt"
    work.write_bytes(os.urandom(1000))
    digest = os.urandom(32).hex()
    client = str(net / "supervisor" / "client.toml")
    result = _run("anchor", str(work), digest, "--client", client, "--out-dir", str(tmp_path / "r"), "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["digest"] for r in rows] == [sm3_file(work).hex(), digest]
    for r in rows:
        assert r["height"] >= 1
        ok = _run("verify", r["receipt"], "--genesis", str(net / "genesis.cbor"), "--json")
        assert ok.exit_code == 0, ok.output
        assert json.loads(ok.output)["tx_id"] == r["tx_id"]
    # the receipt again, by transaction id and by digest
    by_tx = _run("receipt", rows[0]["tx_id"], "--client", client, "--json")
    assert by_tx.exit_code == 0, by_tx.output
    assert json.loads(by_tx.output)["found"] == "transaction"
    by_digest = _run("receipt", digest, "--client", client, "--out", str(tmp_path / "again.cbor"), "--json")
    assert by_digest.exit_code == 0, by_digest.output
    doc = json.loads(by_digest.output)
    assert doc["found"] == "anchored digest" and doc["tx_id"] == rows[1]["tx_id"]
    # the same transaction proven again (the node may have committed blocks since: a newer
    # receipt also carries the history proof up to its head)
    from chain.receipt import Receipt
    from chain.types import Genesis

    genesis = Genesis.from_bytes((net / "genesis.cbor").read_bytes())
    again = Receipt.from_bytes((tmp_path / "again.cbor").read_bytes())
    first = Receipt.from_bytes(Path(rows[1]["receipt"]).read_bytes())
    assert again.tx == first.tx and again.headers[0] == first.headers[0]
    assert again.verify(genesis).tx_id == first.verify(genesis).tx_id
    assert again.verify(genesis).tx_id.hex() == rows[1]["tx_id"]


def test_batch_anchor_writes_proofs_that_verify(net: Path, tmp_path: Path) -> None:
    digests = [os.urandom(32).hex() for _ in range(5)]
    client = str(net / "supervisor" / "client.toml")
    result = _run("anchor", *digests, "--batch", "--client", client, "--out-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len({r["tx_id"] for r in rows}) == 1
    for r in rows:
        ok = _run("verify", r["receipt"], "--genesis", str(net / "genesis.cbor"), "--proof", r["proof"])
        assert ok.exit_code == 0, ok.output
    # a proof moved to another digest fails
    doc = json.loads(Path(rows[0]["proof"]).read_text())
    doc["digest"] = digests[1]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    refused = _run("verify", rows[0]["receipt"], "--genesis", str(net / "genesis.cbor"), "--proof", str(bad))
    assert refused.exit_code != 0


def test_member_add_anchor_revoke(net: Path, tmp_path: Path) -> None:
    client = str(net / "supervisor" / "client.toml")
    mpw = tmp_path / "mpw"
    mpw.write_text(MEMBER_PASSWORD + "\n")
    member = tmp_path / "legal"
    added = _run(
        "member", "add", "--subject", "County legal center", "--roles", "legal_center",
        "--out", str(member), "--root-key", str(net / "supervisor" / "root.key"),
        "--member-password-file", str(mpw), "--client", client,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "registered at height" in _flat(added.output)
    profile = str(member / "rongxin-client.toml")
    anchored = _run("anchor", os.urandom(32).hex(), "--client", profile, "--out-dir", str(tmp_path / "r"),
                    password=MEMBER_PASSWORD)  # fmt: skip
    assert anchored.exit_code == 0, anchored.output
    revoked = _run("member", "revoke", str(member / "member.cert.json"), "--client", client)
    assert revoked.exit_code == 0, revoked.output
    refused = _run("anchor", os.urandom(32).hex(), "--client", profile, "--out-dir", str(tmp_path / "r"),
                   password=MEMBER_PASSWORD)  # fmt: skip
    assert refused.exit_code == 1
    assert "revoked" in _flat(refused.output)


def test_bad_input_gets_clear_errors(net: Path, tmp_path: Path) -> None:
    client = str(net / "supervisor" / "client.toml")
    missing = _run("anchor", str(tmp_path / "nope.mp4"), "--client", client)
    assert missing.exit_code == 1 and "neither a readable file nor a 64-hex" in _flat(missing.output)
    no_profile = _run("anchor", "ab" * 32, "--client", str(tmp_path / "none.toml"))
    assert no_profile.exit_code == 1 and "no client profile" in _flat(no_profile.output)
    wrong_pw = _run("anchor", "ab" * 32, "--client", client, password="wrong password 1")
    assert wrong_pw.exit_code == 1 and "Traceback" not in wrong_pw.output
    unknown = _run("receipt", os.urandom(32).hex(), "--client", client)
    assert unknown.exit_code == 1
    assert "neither a committed transaction nor an anchored digest" in _flat(unknown.output)
    not_hex = _run("receipt", "xyz", "--client", client)
    assert not_hex.exit_code == 1
    bad_role = _run("member", "add", "--subject", "x", "--roles", "consensus_node", "--out",
                    str(tmp_path / "m"), "--root-key", "r", "--client", client)  # fmt: skip
    assert bad_role.exit_code == 1 and "a member has one or more of the roles" in _flat(bad_role.output)


def test_sigkilled_node_catches_up_after_restart(net: Path) -> None:
    entries = {e.name: e for e in procs.discover(net)}
    victim = entries["node-3"]
    pid = procs.running_pid(victim.config)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    client = str(net / "supervisor" / "client.toml")
    for _ in range(3):
        r = _run("anchor", os.urandom(32).hex(), "--client", client, "--out-dir", str(net / "r"))
        assert r.exit_code == 0, r.output
    deadline = time.monotonic() + 10
    while procs.running_pid(victim.config) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    up = _run("chain", "up", str(net), "--node", "node-3")
    assert up.exit_code == 0, up.output
    deadline = time.monotonic() + 30
    while True:
        h = _heights(net)
        if h["node-3"] is not None and h["node-3"] >= min(v for k, v in h.items() if k != "node-3" and v):
            break
        assert time.monotonic() < deadline, f"node-3 did not catch up: {h}"
        time.sleep(0.2)


def test_node_add_promote_remove(net: Path) -> None:
    pwfile = net.parent / "pw"
    added = _run("node", "add", "node-9", "--net", str(net), "--password-file", str(pwfile), "--state-sync")
    assert added.exit_code == 0, added.output
    assert "registered at height" in _flat(added.output)
    assert load_config(net / "node-9" / "node.toml").state_sync.enable
    again = _run("node", "add", "node-9", "--net", str(net), "--password-file", str(pwfile))
    assert again.exit_code == 1 and "already exists" in _flat(again.output)
    up = _run("chain", "up", str(net), "--node", "node-9")
    assert up.exit_code == 0, up.output
    entry = {e.name: e for e in procs.discover(net)}["node-9"]
    deadline = time.monotonic() + 30
    while not procs.probe([entry])[0].online:
        assert time.monotonic() < deadline, "node-9 did not start"
        time.sleep(0.2)
    before = procs.probe([entry])[0]
    assert before.voting is False  # registered, but an observer until promoted
    # no node has a snapshot yet (one every 1,000 blocks): it says so and syncs the blocks
    log = (net / "node-9" / "data" / "node.log").read_text()
    assert "no peer offered a snapshot" in log and "block-syncing from the genesis instead" in log
    promoted = _run("node", "promote", "node-9", "--net", str(net), "--password-file", str(pwfile))
    assert promoted.exit_code == 0, promoted.output
    assert procs.probe([entry])[0].voting is True
    client = str(net / "supervisor" / "client.toml")
    r = _run("anchor", os.urandom(32).hex(), "--client", client, "--out-dir", str(net / "r"))
    assert r.exit_code == 0, r.output
    removed = _run("node", "remove", "node-9", "--net", str(net), "--password-file", str(pwfile))
    assert removed.exit_code == 0, removed.output
    assert procs.running_pid(entry.config) is None
    r = _run("anchor", os.urandom(32).hex(), "--client", client, "--out-dir", str(net / "r"))
    assert r.exit_code == 0, r.output  # the remaining four keep committing
    missing = _run("node", "promote", "node-77", "--net", str(net), "--password-file", str(pwfile))
    assert missing.exit_code == 1 and "no node node-77" in _flat(missing.output)
    # every node's operations audit log says who changed the membership, and when
    audit = [
        json.loads(line) for line in (net / "node-0" / "data" / "ops-audit.jsonl").read_text().splitlines()
    ]
    events = [e["event"] for e in audit]
    assert "node.start" in events
    start = next(e for e in audit if e["event"] == "node.start")
    assert start["code"].startswith(("native: ", "python: "))  # the code the node runs, said once
    # the node froze what its start made and collects young objects less often
    assert start["gc"]["frozen"] > 10_000 and start["gc"]["thresholds"] == list(GC_THRESHOLDS)
    changes = {e["event"]: e for e in audit if e["event"].startswith("chain.")}
    add, ready = changes["chain.member.add"], changes["chain.node.ready"]
    promote, revoke = changes["chain.member.promote"], changes["chain.member.revoke"]
    assert add["subject"] == "node-9" and add["by"] and add["height"] > 0
    assert ready["by"] == "node-9"
    assert promote["subject"] == revoke["subject"] == "node-9" and promote["by"] == add["by"]
    assert revoke["reason"] == "removed by the operator" and revoke["height"] > promote["height"]


def test_query_run_anchors_its_audit_record_through_the_regulators_node(net: Path, tmp_path: Path) -> None:
    client = str(net / "supervisor" / "client.toml")
    mpw = tmp_path / "mpw"
    mpw.write_text(MEMBER_PASSWORD + "\n")
    added = _run(
        "member", "add", "--subject", "Provincial regulator", "--roles", "regulator",
        "--out", str(tmp_path / "reg"), "--root-key", str(net / "supervisor" / "root.key"),
        "--member-password-file", str(mpw), "--client", client,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert _run("query", "demo-data", str(tmp_path / "q"), "--rows", "200").exit_code == 0
    agencies = str(tmp_path / "q" / "agencies.toml")
    res = _run(
        "query", "run", "SELECT COUNT(*) FROM cases GROUP BY county", "--agencies", agencies,
        "--unpacked", "--client", str(tmp_path / "reg" / "rongxin-client.toml"),
        password=MEMBER_PASSWORD,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = _flat(res.output)
    assert "anchored at height" in out
    receipts = list((tmp_path / "q" / "audit-receipts").glob("*.receipt.cbor"))
    assert len(receipts) == 1
    ok = _run("verify", str(receipts[0]), "--genesis", str(net / "genesis.cbor"), "--json")
    assert ok.exit_code == 0, ok.output
    record = json.loads((tmp_path / "q" / "audit.jsonl").read_text().splitlines()[-1])
    assert receipts[0].name == f"{record['record_digest']}.receipt.cbor"
    assert record["anchor"] is not None


def test_works_add_anchor_through_the_node(net: Path, tmp_path: Path, photos: dict[str, Any]) -> None:
    from tests.forensics.conftest import write_image

    media = tmp_path / "media"
    media.mkdir()
    write_image(media / "astronaut.jpg", photos["astronaut"])
    write_image(media / "chelsea.png", photos["chelsea"])
    client = str(net / "supervisor" / "client.toml")
    lib = tmp_path / "lib"
    res = _run("works", "add", str(media), "--library", str(lib), "--anchor", "--client", client)
    assert res.exit_code == 0, res.output
    assert "anchored the fingerprint digests of 2 work(s)" in _flat(res.output)
    receipt = next((lib / "anchors").glob("*.receipt.cbor"))
    for work in ("astronaut", "chelsea"):
        proof = lib / "anchors" / f"{work}.proof.json"
        ok = _run("verify", str(receipt), "--genesis", str(net / "genesis.cbor"), "--proof", str(proof))
        assert ok.exit_code == 0, ok.output
    shown = _run("works", "show", "astronaut", "--library", str(lib), "--json")
    assert (
        json.loads(shown.output)["fingerprint_sm3"]
        == json.loads((lib / "anchors" / "astronaut.proof.json").read_text())["digest"]
    )
    # a bad profile is refused before anything is registered
    bad = _run(
        "works",
        "add",
        str(media),
        "--library",
        str(tmp_path / "lib2"),
        "--anchor",
        "--client",
        str(tmp_path / "none.toml"),
    )
    assert bad.exit_code == 1 and "no client profile" in _flat(bad.output)
    assert not (tmp_path / "lib2").exists()


def test_transfer_audit_reads_the_transfers_through_the_members_node(net: Path, tmp_path: Path) -> None:
    from chain.crypto.sealed import MIN_SCRYPT_N
    from rongxin.client_profile import load_profile, open_client
    from rongxin.contracts import LedgerStateReader
    from zkp.auditor import AuditorKey, seal_auditor_key
    from zkp.contract import auditor_payload, load_record, register_payload
    from zkp.transfer import OwnerKey, prove_key_possession, prove_transfer

    mpw = tmp_path / "mpw"
    mpw.write_text(MEMBER_PASSWORD + "\n")
    added = _run(
        "member", "add", "--subject", "County media center", "--roles", "media_center",
        "--out", str(tmp_path / "media"), "--root-key", str(net / "supervisor" / "root.key"),
        "--member-password-file", str(mpw), "--client", str(net / "supervisor" / "client.toml"),
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    profile = tmp_path / "media" / "rongxin-client.toml"
    sup, genesis = open_client(load_profile(net / "supervisor" / "client.toml"), PASSWORD)
    media, _ = open_client(load_profile(profile), MEMBER_PASSWORD)
    chain_id = genesis.chain_id
    auditor = AuditorKey.generate()
    sup.send("zkp.auditor", auditor_payload(auditor, chain_id))
    work, seller, buyer = os.urandom(32), OwnerKey.generate(), OwnerKey.generate()
    media.send("zkp.register", register_payload(work, seller, chain_id))
    record = load_record(LedgerStateReader(media), work)  # a proven read through the node
    assert record is not None and record.owner == seller.public
    pop = prove_key_possession(buyer, chain_id, work)
    shares = [(b"author", 700), (b"center", 300)]
    transfer = prove_transfer(chain_id, record, seller, buyer.public, pop, auditor.public, 1000, shares)
    media.send("zkp.transfer", transfer.to_payload())
    sup.close()
    media.close()
    key = tmp_path / "auditor.key"
    key.write_bytes(seal_auditor_key(auditor, "auditor pw", scrypt_n=MIN_SCRYPT_N))
    kpw = tmp_path / "kpw"
    kpw.write_text("auditor pw\n")
    res = _run(
        "transfer", "audit", "--key", str(key), "--password-file", str(kpw), "--work", work.hex(),
        "--client", str(profile), "--client-password-file", str(mpw),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = _flat(res.output)
    assert "1000" in out and "author=700" in out
    none = _run(
        "transfer", "audit", "--key", str(key), "--password-file", str(kpw), "--work", os.urandom(32).hex(),
        "--client", str(profile), "--client-password-file", str(mpw),
    )  # fmt: skip
    assert none.exit_code == 1 and "no recorded transfer found" in _flat(none.output)
