"""``rongxin works add|remove|stats`` and ``rongxin identify`` through typer's test runner."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import typer
from typer.testing import CliRunner

from rongxin.cli_works import audio_evidence, identify, works_app
from tests.forensics.conftest import crop, jpeg, write_image  # photos: a fixture

app = typer.Typer()
app.add_typer(works_app, name="works")
app.command("identify")(identify)
runner = CliRunner()


def _text(output: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(output.split())


def _media(tmp_path: Path, photos: dict[str, np.ndarray]) -> Path:
    d = tmp_path / "media"
    (d / "sub").mkdir(parents=True)
    write_image(d / "astronaut.jpg", photos["astronaut"])
    write_image(d / "sub" / "chelsea.png", photos["chelsea"])
    (d / "README.txt").write_text("not media")
    return d


def test_add_directory_identify_json_remove(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    media = _media(tmp_path, photos)
    lib = tmp_path / "lib"
    r = runner.invoke(
        app, ["works", "add", str(media), "--library", str(lib), "--metadata", '{"owner": "A"}']
    )
    assert r.exit_code == 0, r.output
    assert "2 added, 0 failed" in r.output
    q = write_image(tmp_path / "q.jpg", jpeg(crop(photos["chelsea"], 0.5), 25))
    r = runner.invoke(app, ["identify", str(q), "--library", str(lib), "--json"])
    assert r.exit_code == 0, r.output
    matches = json.loads(r.stdout)
    assert [m["work_id"] for m in matches] == ["chelsea"]
    assert matches[0]["score"] >= matches[0]["threshold"] and "details" in matches[0]
    r = runner.invoke(app, ["identify", str(q), "--library", str(lib)])
    assert "chelsea" in r.output and "false-positive rate" in _text(r.output)
    r = runner.invoke(app, ["works", "stats", "--library", str(lib), "--json"])
    assert json.loads(r.stdout)["works"] == 2
    r = runner.invoke(app, ["works", "remove", "chelsea", "--library", str(lib)])
    assert r.exit_code == 0 and "removed chelsea" in r.output
    r = runner.invoke(app, ["identify", str(q), "--library", str(lib), "--json"])
    assert json.loads(r.stdout) == []
    r = runner.invoke(app, ["works", "remove", "chelsea", "--library", str(lib)])
    assert r.exit_code == 1 and "no work" in _text(r.output)


def test_add_single_file_with_id_and_failures(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    media = _media(tmp_path, photos)
    lib = tmp_path / "lib"
    r = runner.invoke(
        app, ["works", "add", str(media / "astronaut.jpg"), "--library", str(lib), "--id", "A-1"]
    )
    assert r.exit_code == 0 and "added A-1" in r.output
    r = runner.invoke(app, ["works", "add", str(media), "--library", str(lib), "--id", "X"])
    assert r.exit_code == 1 and "single work" in _text(r.output)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + bytes(30))
    # astronaut.jpg is registered already (as A-1): its bytes are skipped, not added again
    r = runner.invoke(
        app, ["works", "add", str(bad), str(media / "sub" / "chelsea.png"), "--library", str(lib)]
    )
    assert r.exit_code == 1 and "1 added, 1 failed" in _text(r.output)
    r = runner.invoke(app, ["works", "add", str(media), "--library", str(lib), "--metadata", "[1]"])
    assert r.exit_code == 1 and "JSON object" in _text(r.output)


def test_identify_errors(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    media = _media(tmp_path, photos)
    r = runner.invoke(app, ["identify", str(media / "astronaut.jpg"), "--library", str(tmp_path / "none")])
    assert r.exit_code == 1 and "no work library" in _text(r.output)
    lib = tmp_path / "lib"
    runner.invoke(app, ["works", "add", str(media / "astronaut.jpg"), "--library", str(lib)])
    r = runner.invoke(app, ["identify", str(media / "README.txt"), "--library", str(lib)])
    assert r.exit_code == 1 and "not a recognized" in _text(r.output)
    r = runner.invoke(app, ["identify", str(media / "sub" / "chelsea.png"), "--library", str(lib), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout) == []


def test_audio_identify_shows_the_alignment(tmp_path: Path) -> None:
    from tests.forensics.audio.conftest import SR, synth_music, write_wav

    song = synth_music(5, 30.0)
    lib = tmp_path / "lib"
    r = runner.invoke(
        app, ["works", "add", str(write_wav(tmp_path / "song.wav", song)), "--library", str(lib)]
    )
    assert r.exit_code == 0, r.output
    q = write_wav(tmp_path / "q.wav", song[SR * 12 : SR * 18])
    r = runner.invoke(app, ["identify", str(q), "--library", str(lib)], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    text = _text(r.output)
    found = re.search(
        r"song .* main layer: query ([\d.]+)-[\d.]+ s = work ([\d.]+)-[\d.]+ s, speed 1\.000", text
    )
    assert found is not None, text
    assert abs(float(found[2]) - float(found[1]) - 12.0) <= 0.1


def test_audio_evidence_names_the_rule_that_found_the_match() -> None:
    d = {
        "query_start": 0.5,
        "query_end": 5.0,
        "ref_start": 30.25,
        "ref_end": 34.75,
        "speed": 1.03,
        "verified_peaks": 12,
        "reference_peaks": 48,
    }
    assert audio_evidence(d).startswith("main layer: query 0.50-5.00 s = work 30.25-34.75 s, speed 1.030")
    assert audio_evidence({**d, "layer": "bass"}).startswith("bass layer:")
    assert audio_evidence({**d, "layer": "both"}).startswith("both layers:")
    assert audio_evidence(d).endswith("12/48 peaks")
