"""``rongxin transfer auditor-keygen`` and ``rongxin transfer audit`` through typer's test runner."""

from pathlib import Path

from typer.testing import CliRunner

from chain.replica import chain_genesis_block
from chain.store import LedgerStore
from rongxin.cli_zkp import app
from tests.zkp.test_contract import CHAIN, WORK, Ledger
from zkp.auditor import AuditorKey, open_auditor_key, seal_auditor_key
from zkp.contract import auditor_payload, register_payload, transfer_records

runner = CliRunner()


def test_keygen_and_audit_from_record_and_store(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("secret-pw\n")
    keyfile = tmp_path / "auditor.key"

    def invoke(*args: str, key: Path = keyfile, password: Path = pw) -> tuple[int, str]:
        result = runner.invoke(app, ["audit", "--key", str(key), *args, "--password-file", str(password)])
        return result.exit_code, result.output

    result = runner.invoke(app, ["auditor-keygen", str(keyfile), "--password-file", str(pw)])
    assert result.exit_code == 0, result.output
    key = open_auditor_key(keyfile.read_bytes(), "secret-pw")
    assert result.output.strip() == key.public.encode().hex()
    assert keyfile.stat().st_mode & 0o777 == 0o600
    again = runner.invoke(app, ["auditor-keygen", str(keyfile), "--password-file", str(pw)])
    assert again.exit_code == 1 and "exists" in again.output

    led = Ledger()
    led.auditor = key
    led.run(led.c.supervisor, "zkp.auditor", auditor_payload(key, CHAIN))
    led.run(led.c.media, "zkp.register", register_payload(WORK, led.owner, CHAIN))
    _, payload = led.transfer_payload(led.owner)
    led.run(led.c.media, "zkp.transfer", payload)
    [record] = list(transfer_records(led.state, WORK))
    record_file = tmp_path / "transfer.cbor"
    record_file.write_bytes(record.to_bytes())

    code, out = invoke("--record", str(record_file))
    assert code == 0, out
    assert "1000" in out and "author=700" in out and "center=300" in out

    genesis = tmp_path / "genesis.cbor"
    genesis.write_bytes(led.c.genesis.to_bytes())
    db = tmp_path / "ledger.db"
    LedgerStore(db, chain_genesis_block(led.c.genesis).hash, led.state.entries()).close()
    ledger_args = ["--db", str(db), "--genesis", str(genesis), "--work"]
    code, out = invoke(*ledger_args, WORK.hex())
    assert code == 0, out
    assert "author=700" in out
    code, out = invoke(*ledger_args, "00" * 32)
    assert code == 1 and "no recorded transfer" in out
    code, out = invoke(*ledger_args, "not-hex")
    assert code == 1 and "cannot open the ledger" in out

    # Wrong password, wrong auditor key, tampered record, missing inputs: all exit 1.
    bad_pw = tmp_path / "bad"
    bad_pw.write_text("nope")
    code, out = invoke("--record", str(record_file), password=bad_pw)
    assert code == 1 and "wrong password" in out
    other = tmp_path / "other.key"
    other.write_bytes(seal_auditor_key(AuditorKey.generate(), "secret-pw", scrypt_n=1024))
    code, out = invoke("--record", str(record_file), key=other)
    assert code == 1 and "auditor key" in out
    raw = bytearray(record.to_bytes())
    raw[-40] ^= 1
    record_file.write_bytes(bytes(raw))
    assert invoke("--record", str(record_file))[0] == 1
    code, out = invoke()
    assert code == 1 and "--record" in out


def test_auditor_keygen_writes_atomically_and_force_replaces(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("secret-pw\n")
    keyfile = tmp_path / "auditor.key"
    keyfile.write_text("keep me")
    refused = runner.invoke(app, ["auditor-keygen", str(keyfile), "--password-file", str(pw)])
    assert refused.exit_code == 1 and keyfile.read_text() == "keep me"
    forced = runner.invoke(app, ["auditor-keygen", str(keyfile), "--password-file", str(pw), "--force"])
    assert forced.exit_code == 0, forced.output
    key = open_auditor_key(keyfile.read_bytes(), "secret-pw")
    assert forced.output.strip() == key.public.encode().hex()
    assert keyfile.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auditor.key", "pw"]
