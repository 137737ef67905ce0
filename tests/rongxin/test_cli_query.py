"""``rongxin query keygen`` through typer's test runner."""

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from privacy import paillier
from rongxin.cli_query import app

runner = CliRunner()


def test_keygen_twice_refuses_without_force(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("regulator-pw\n")
    key = tmp_path / "regulator.pkey"
    args = ["keygen", str(key), "--bits", "2048", "--password-file", str(pw)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert json.loads(key.read_text())["kind"] == "rongxin-paillier-private-key"
    sk = paillier.load_private_key(key, "regulator-pw")
    assert paillier.fingerprint(sk.public_key).hex()[:16] in first.output
    kept = key.read_bytes()

    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert "exists; pass --force" in " ".join(again.stderr.split())
    assert key.read_bytes() == kept

    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert paillier.load_private_key(key, "regulator-pw").public_key != sk.public_key


def test_keygen_reports_an_unreadable_password_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["keygen", str(tmp_path / "k"), "--password-file", str(tmp_path / "none")])
    assert result.exit_code == 1 and "cannot read password file" in " ".join(result.stderr.split())
    assert not (tmp_path / "k").exists()


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_run_says_the_audit_record_is_not_anchored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # short names: no line wrapping in the output
    assert runner.invoke(app, ["demo-data", "q", "--rows", "300"]).exit_code == 0
    agencies = str(Path("q") / "agencies.toml")
    query = "SELECT COUNT(*) FROM cases GROUP BY county"
    res = runner.invoke(app, ["run", query, "--agencies", agencies, "--unpacked"])
    assert res.exit_code == 0, res.output
    out = _flat(res.output)
    assert "anchored at height" not in out
    assert "audit.jsonl; not anchored: no ledger node is configured" in out
    [line] = (tmp_path / "q" / "audit.jsonl").read_text().splitlines()
    assert json.loads(line)["anchor"] is None


def test_run_refuses_an_unknown_format_and_prints_json_errors(tmp_path: Path) -> None:
    assert runner.invoke(app, ["demo-data", str(tmp_path / "q"), "--rows", "300"]).exit_code == 0
    agencies = str(tmp_path / "q" / "agencies.toml")
    res = runner.invoke(app, ["run", "SELECT COUNT(*) FROM cases", "--agencies", agencies, "--format", "csv"])
    assert res.exit_code == 2 and "csv" in res.output
    res = runner.invoke(app, ["run", "SELECT NOPE(x) FROM cases", "--agencies", agencies, "--format", "json"])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["error"] and "reason" in doc
    res = runner.invoke(
        app, ["run", "@" + str(tmp_path / "none.sql"), "--agencies", agencies, "--format", "json"]
    )
    assert res.exit_code == 1 and json.loads(res.stdout)["reason"] == "input"


def test_demo_data_into_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    res = runner.invoke(app, ["demo-data", str(tmp_path / "afile" / "q"), "--rows", "50"])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)
    assert "cannot write" in _flat(res.stderr) and "Not a directory" in _flat(res.stderr)


def test_keygen_refuses_a_short_password(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("short\n")
    res = runner.invoke(app, ["keygen", str(tmp_path / "k"), "--bits", "2048", "--password-file", str(pw)])
    assert res.exit_code == 1 and "at least 8 characters" in _flat(res.stderr)
    assert not (tmp_path / "k").exists()


def _ledger_profile(q: Path, root_hex: str, node: str = "http://127.0.0.1:1") -> Path:
    """A member client profile for the regulator on a chain whose genesis names ``root_hex``."""
    from chain.types import Genesis
    from rongxin.client_profile import write_profile

    genesis = q / "genesis.cbor"
    genesis.write_bytes(Genesis("Test consortium", "rongxin-local", bytes.fromhex(root_hex), ()).to_bytes())
    profile = q / "regulator.client.toml"
    keys = q / "keys"
    write_profile(
        profile, node, genesis, keys / "regulator.key", keys / "regulator.cert.json", keys / "password"
    )
    return profile


def test_run_fails_closed_when_the_ledger_cannot_be_reached(tmp_path: Path) -> None:
    import tomllib

    from chain.crypto import PrivateKey

    assert runner.invoke(app, ["demo-data", str(tmp_path / "q"), "--rows", "300"]).exit_code == 0
    q = tmp_path / "q"
    config = q / "agencies.toml"
    text = config.read_text()
    root_hex = tomllib.loads(text)["consortium"]["root_public_key"]
    query = ["run", "SELECT COUNT(*) FROM cases", "--agencies", str(config), "--format", "json"]

    config.write_text(text + '\n[consortium.ledger]\nclient = "missing.toml"\n')
    res = runner.invoke(app, query)
    assert res.exit_code == 1 and "missing.toml" in json.loads(res.stdout)["error"]

    _ledger_profile(q, PrivateKey.generate().public_key.to_bytes().hex())  # another chain's genesis
    config.write_text(text + '\n[consortium.ledger]\nclient = "regulator.client.toml"\n')
    res = runner.invoke(app, query)
    assert res.exit_code == 1 and "another supervisory root" in json.loads(res.stdout)["error"]

    _ledger_profile(q, root_hex)  # this chain, but its node is not there: nothing is answered
    res = runner.invoke(app, query)
    assert res.exit_code == 1, res.output
    err = json.loads(res.stdout)["error"]
    assert "cannot take part: cannot check" in err and "never answered" in err and "refusing" in err
    assert not (q / "audit.jsonl").exists()  # refused before anything was sent
