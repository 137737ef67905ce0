"""``rongxin datasets validate|attack`` through typer's test runner."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from datasets.attacks.generate import load_truth
from rongxin.cli_datasets import app


def test_cli_validate_and_attack(tmp_path: Path, smoke_root: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["validate", str(smoke_root)])
    assert r.exit_code == 0 and "every file matches" in r.output
    r = runner.invoke(
        app, ["attack", "image", "--out", str(tmp_path), "--count", "2", "--corpus", str(smoke_root)]
    )
    assert r.exit_code == 0, r.output
    assert len(load_truth(tmp_path)) == 2
    r = runner.invoke(app, ["validate", str(tmp_path / "nothing")])
    assert r.exit_code == 1 and "build the corpus first" in r.output
