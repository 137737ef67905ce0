"""``rongxin works add programme.mp4`` and ``rongxin identify clip.mp4`` with the video index."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from rongxin.cli_works import identify, works_app
from tests.forensics.video.conftest import Media, excerpt

app = typer.Typer()
app.add_typer(works_app, name="works")
app.command("identify")(identify)
runner = CliRunner()


def test_add_programmes_and_identify_an_excerpt(tmp_path: Path, media: Media) -> None:
    lib = tmp_path / "lib"
    paths = [str(p) for p in media.programmes.values()]
    r = runner.invoke(app, ["works", "add", *paths, "--library", str(lib)])
    assert r.exit_code == 0, r.output
    assert "3 added" in " ".join(r.output.split())
    clip = excerpt(media.programmes["beta"], tmp_path / "clip.mp4", 3.0, 6.0, "hflip", "scale=240:-2")
    r = runner.invoke(app, ["identify", str(clip), "--library", str(lib)], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    found = re.search(r"beta\W+video\W.*picture and sound: query ([\d.]+)-[\d.]+ s = work ([\d.]+)", text)
    assert found is not None, text
    assert abs(float(found[2]) - float(found[1]) - 3.0) <= 0.5 and "mirrored" in text
    r = runner.invoke(app, ["identify", str(clip), "--library", str(lib), "--json"])
    (m,) = json.loads(r.stdout)
    assert m["work_id"] == "beta" and m["kind"] == "video" and m["details"]["found_by"] == "both"
    assert m["details"]["flip"] is True and len(m["details"]["frame_pairs"]) >= 1
    r = runner.invoke(app, ["identify", str(media.unrelated[0]), "--library", str(lib)])
    assert r.exit_code == 0 and "no registered work found" in r.output
