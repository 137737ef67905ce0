"""``rongxin query keygen`` through typer's test runner."""

import json
import stat
from pathlib import Path

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
