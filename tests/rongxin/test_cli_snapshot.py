"""``rongxin chain snapshot export`` and ``rongxin chain snapshot import`` through typer's test runner."""

from pathlib import Path

from typer.testing import CliRunner

from chain.localnet import LocalConsortium
from chain.replica import Replica
from chain.types import Role
from rongxin.cli import app

runner = CliRunner()


def test_export_then_import_a_new_node(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path / "net", nodes=4)
    c.anchor(c.add_member("m", [Role.MEDIA_CENTER]), b"d" * 32, "work")
    genesis = tmp_path / "genesis.cbor"
    genesis.write_bytes(c.genesis.to_bytes())
    db = str(c.directory / "node-1.db")
    snap = tmp_path / "snap"
    args = ["chain", "snapshot", "export", "--db", db, "--genesis", str(genesis), "--out", str(snap)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "state entries" in result.stdout and (snap / "manifest.cbor").is_file()
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "not an empty directory" in again.stderr
    new = tmp_path / "new.db"
    imported = runner.invoke(
        app, ["chain", "snapshot", "import", str(snap), "--db", str(new), "--genesis", str(genesis)]
    )
    assert imported.exit_code == 0, imported.output
    assert "verified against the block's state root" in imported.stdout
    assert Replica(c.genesis, new).store.head_height() == c.replicas[1].store.head_height()
    refused = runner.invoke(
        app, ["chain", "snapshot", "import", str(snap), "--db", str(new), "--genesis", str(genesis)]
    )
    assert refused.exit_code == 1 and "new database" in refused.stderr
    (snap / "chunk-000000.cbor").write_bytes(b"\x00")
    broken = runner.invoke(
        app,
        ["chain", "snapshot", "import", str(snap), "--db", str(tmp_path / "b.db"), "--genesis", str(genesis)],
    )
    assert broken.exit_code == 1 and "snapshot refused: chunk" in broken.stderr
    assert not (tmp_path / "b.db").exists()
    c.close()
