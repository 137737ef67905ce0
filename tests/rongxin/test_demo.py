import json
from pathlib import Path

import pytest

from chain import crypto
from chain.crypto import keyfile
from rongxin.demo import make_placeholder_certificate, verify_placeholder_certificate
from rongxin.errors import RongxinError


def test_demo_runs_end_to_end(demo: tuple[Path, object]) -> None:
    tmp_path, report = demo
    assert report.ok  # type: ignore[attr-defined]
    assert [s.name for s in report.steps] == [  # type: ignore[attr-defined]
        "consortium identity",
        "sign / verify",
        "encrypt / decrypt file",
        "consortium ledger",
        "anchor + offline receipt",
        "register works, find copies",
        "infringement report",
        "register music, find excerpts",
        "register programmes, find clips",
        "confidential transfer (ZK)",
        "encrypted cross-agency query",
        "crash, restart, revocation",
        "pinned checkpoint",
        "node processes",
        "anchor through a node's API",
        "kill -9 under load, catch-up",
        "off-chain vault",
        "capture a copy as evidence",
        "verify evidence offline",
    ]
    assert (tmp_path / "ledger" / "node-4.db").exists() and (tmp_path / "genesis.cbor").exists()
    assert (tmp_path / "receipt-work-batch.cbor").exists() and (tmp_path / "checkpoint.cbor").exists()
    assert len(list((tmp_path / "clips").glob("clip-*.wav"))) == 4
    assert len(list((tmp_path / "report").glob("case-*.pdf"))) == 1
    assert len(list((tmp_path / "report").glob("case-*.html"))) == 1
    music = next(s for s in report.steps if s.name == "register music, find excerpts")  # type: ignore[attr-defined]
    network = next(s for s in report.steps if s.name == "kill -9 under load, catch-up")  # type: ignore[attr-defined]
    assert "every acknowledged transaction" in network.detail
    assert (tmp_path / "net" / "node-4" / "data" / "node.log").exists()
    assert (tmp_path / "net-receipt-work-batch.cbor").exists()
    assert (tmp_path / "vault-grant.receipt.cbor").exists()
    # the report stage's evidence package and PDF went through the vault and came back intact
    kept = sorted((tmp_path / "report").glob("case-*-evidence/*.wacz")) + sorted(
        (tmp_path / "report").glob("case-*.pdf")
    )
    assert len(kept) == 2
    for f in kept:
        assert crypto.sm3_file(tmp_path / "vault-court" / f.name) == crypto.sm3_file(f)
    assert (tmp_path / "evidence" / "case-1" / "evidence.wacz").exists()
    assert "4/4 attacked" in music.detail and "4 placed within" in music.detail
    video = next(s for s in report.steps if s.name == "register programmes, find clips")  # type: ignore[attr-defined]
    assert "4/4 attacked" in video.detail and "found by picture, sound, picture, both" in video.detail
    key = keyfile.load_private_key(tmp_path / "supervisor.key", "rongxin-demo")
    cert = json.loads((tmp_path / "supervisor.cert.json").read_text())
    assert verify_placeholder_certificate(cert) == key.public_key
    assert crypto.sm3_file(tmp_path / "sample-evidence.txt") == crypto.sm3_file(
        tmp_path / "sample-evidence.decrypted.txt"
    )


def test_placeholder_certificate_tampering() -> None:
    key = crypto.PrivateKey.generate()
    cert = make_placeholder_certificate(key, "S", "supervisory")
    forged = {**cert, "role": "consensus"}
    with pytest.raises(crypto.InvalidSignature):
        verify_placeholder_certificate(forged)
    with pytest.raises(RongxinError):
        verify_placeholder_certificate({k: v for k, v in cert.items() if k != "public_key"})


def test_cli_verifies_the_demo_receipt_and_refuses_tampering(demo: tuple[Path, object]) -> None:
    from typer.testing import CliRunner

    from rongxin.cli import app

    tmp_path, report = demo
    assert report.ok  # type: ignore[attr-defined]
    runner = CliRunner()
    receipt, genesis, proof = (
        tmp_path / n for n in ("receipt-work-batch.cbor", "genesis.cbor", "work-3.proof.json")
    )
    res = runner.invoke(
        app, ["verify", str(receipt), "--genesis", str(genesis), "--proof", str(proof), "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["digest_proven"] is True
    doc = json.loads(proof.read_text())
    doc["index"] = 4  # the proof of work-3 does not prove position 4
    bad_proof = tmp_path / "bad.json"
    bad_proof.write_text(json.dumps(doc))
    res = runner.invoke(app, ["verify", str(receipt), "--genesis", str(genesis), "--proof", str(bad_proof)])
    assert res.exit_code != 0 and "anchor" in res.output
    raw = bytearray(receipt.read_bytes())
    raw[-5] ^= 0x10
    bad = tmp_path / "bad.cbor"
    bad.write_bytes(bytes(raw))
    res = runner.invoke(app, ["verify", str(bad), "--genesis", str(genesis)])
    assert res.exit_code != 0 and "INVALID" in res.output
    # against the pinned checkpoint: the receipt made at anchoring time must be rebuilt
    cp = tmp_path / "checkpoint.cbor"
    args = ["--genesis", str(genesis), "--proof", str(proof), "--checkpoint", str(cp)]
    res = runner.invoke(app, ["verify", str(receipt), *args])
    assert res.exit_code != 0 and "history" in _flat(res.output) and "rebuild" in _flat(res.output)
    res = runner.invoke(app, ["verify", str(tmp_path / "receipt-work-batch.current.cbor"), *args, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["checkpoint"] is not None
    # the ledger commands: a checkpoint and a rebuilt receipt from one node's store
    db = tmp_path / "ledger" / "node-2.db"
    res = runner.invoke(
        app, ["ledger", "checkpoint", "--db", str(db), "--genesis", str(genesis), "--out", str(cp)]
    )
    assert res.exit_code != 0 and "exists" in _flat(res.output)  # never silently replaced
    cp2 = tmp_path / "cp2.cbor"
    res = runner.invoke(
        app, ["ledger", "checkpoint", "--db", str(db), "--genesis", str(genesis), "--out", str(cp2)]
    )
    assert res.exit_code == 0 and "block hash" in _flat(res.output), res.output
    tx_id = json.loads(
        runner.invoke(app, ["verify", str(receipt), "--genesis", str(genesis), "--json"]).output
    )["tx_id"]
    rebuilt = tmp_path / "rebuilt.cbor"
    res = runner.invoke(
        app, ["ledger", "receipt", tx_id, "--db", str(db), "--genesis", str(genesis), "--out", str(rebuilt)]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["verify", str(rebuilt), "--genesis", str(genesis), "--checkpoint", str(cp2)])
    assert res.exit_code == 0 and "pinned checkpoint" in _flat(res.output), res.output
    missing = runner.invoke(
        app,
        [
            "ledger",
            "receipt",
            "ab" * 32,
            "--db",
            str(db),
            "--genesis",
            str(genesis),
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert missing.exit_code != 0 and "not committed" in _flat(missing.output)
    nodb = runner.invoke(
        app,
        [
            "ledger",
            "checkpoint",
            "--db",
            str(tmp_path / "nope.db"),
            "--genesis",
            str(genesis),
            "--out",
            str(tmp_path / "y"),
        ],
    )
    assert nodb.exit_code != 0 and "no ledger store" in _flat(nodb.output)
    assert not (tmp_path / "nope.db").exists()


def _flat(text: str) -> str:
    """CLI output with the console's line wrapping undone."""
    return " ".join(text.split())
