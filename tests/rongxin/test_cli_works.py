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


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
    }


def _library(tmp_path: Path, photos: dict[str, np.ndarray]) -> tuple[Path, Path]:
    media = _media(tmp_path, photos)
    lib = tmp_path / "lib"
    r = runner.invoke(
        app, ["works", "add", str(media), "--library", str(lib), "--metadata", '{"owner": "A"}']
    )
    assert r.exit_code == 0, r.output
    return media, lib


def test_lookups_leave_the_library_untouched(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    media, lib = _library(tmp_path, photos)
    q = write_image(tmp_path / "q.jpg", jpeg(crop(photos["chelsea"], 0.5), 25))
    before = _snapshot(lib)
    for args in (
        ["identify", str(q)],
        ["identify", str(q), "--json"],
        ["identify", str(media), str(q), "--json"],
        ["works", "stats"],
        ["works", "stats", "--json"],
        ["works", "list"],
        ["works", "show", "chelsea"],
        ["works", "export", "--all", "--out", str(tmp_path / "all.jsonl")],
    ):
        r = runner.invoke(app, [*args, "--library", str(lib)])
        assert r.exit_code == 0, (args, r.output)
    assert _snapshot(lib) == before


def test_a_mistyped_library_is_refused_not_created(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    media = _media(tmp_path, photos)
    typo = tmp_path / "typo"
    for args in (
        ["identify", str(media / "astronaut.jpg")],
        ["identify", str(media)],
        ["works", "stats"],
        ["works", "remove", "astronaut"],
        ["works", "list"],
        ["works", "show", "astronaut"],
        ["works", "export", "--all", "--out", str(tmp_path / "x.jsonl")],
    ):
        r = runner.invoke(app, [*args, "--library", str(typo)], env={"COLUMNS": "400"})
        assert r.exit_code == 1, args
        assert r.output.count("\n") == 1 and "holds no work library" in r.output, (args, r.output)
        assert not typo.exists(), args
    r = runner.invoke(app, ["works", "add", str(media / "astronaut.jpg"), "--library", str(typo)])
    assert r.exit_code == 0 and f"creating a new library at {typo}" in _text(r.output)
    r = runner.invoke(app, ["works", "add", str(media / "sub"), "--library", str(typo)])
    assert r.exit_code == 0 and "creating a new library" not in r.output


def test_same_content_is_skipped_and_near_copies_warned(
    tmp_path: Path, photos: dict[str, np.ndarray]
) -> None:
    media, lib = _library(tmp_path, photos)
    r = runner.invoke(app, ["works", "add", str(media), "--library", str(lib)], env={"COLUMNS": "400"})
    assert r.exit_code == 0, r.output
    text = _text(r.output)
    assert "0 added, 0 failed, 2 skipped (already registered)" in text
    assert re.search(r"skipped \S*astronaut\.jpg: already registered as astronaut on 20\d\d-", text), text
    renamed = tmp_path / "renamed.jpg"
    renamed.write_bytes((media / "astronaut.jpg").read_bytes())
    r = runner.invoke(app, ["works", "add", str(renamed), "--library", str(lib), "--id", "other"])
    assert r.exit_code == 0 and "already registered as astronaut" in _text(r.output)
    r = runner.invoke(app, ["works", "add", str(renamed), "--library", str(lib), "--fail-existing"])
    assert r.exit_code == 1 and "0 added, 1 failed" in _text(r.output)
    near = write_image(tmp_path / "near.jpg", jpeg(crop(photos["chelsea"], 0.6), 30))
    r = runner.invoke(app, ["works", "add", str(near), "--library", str(lib)])
    assert r.exit_code == 0, r.output
    assert re.search(r"near looks like a copy of chelsea \(score [\d.]+", _text(r.output)), r.output
    runner.invoke(app, ["works", "remove", "near", "--library", str(lib)])
    r = runner.invoke(app, ["works", "add", str(near), "--library", str(lib), "--allow-copies"])
    assert r.exit_code == 0 and "added near" in r.output and "copy" not in r.output


def test_remove_summarises_and_fails_only_for_missing_ids(
    tmp_path: Path, photos: dict[str, np.ndarray]
) -> None:
    _media_dir, lib = _library(tmp_path, photos)
    r = runner.invoke(app, ["works", "remove", "astronaut", "chelsea", "missing", "--library", str(lib)])
    assert r.exit_code == 1 and "removed 2, not found 1" in _text(r.output)
    runner.invoke(app, ["works", "add", str(_media_dir), "--library", str(lib)])
    r = runner.invoke(app, ["works", "remove", "astronaut", "--library", str(lib)])
    assert r.exit_code == 0 and "removed 1, not found 0" in _text(r.output)
    r = runner.invoke(app, ["works", "remove", "--help"], env={"COLUMNS": "200"})
    assert "status 1 when any id was not found" in _text(r.output)


def test_list_show_export(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    from chain.crypto.sm3 import sm3_file

    media, lib = _library(tmp_path, photos)
    digest = sm3_file(media / "astronaut.jpg").hex()
    r = runner.invoke(app, ["works", "list", "--library", str(lib)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    row = next(line for line in r.output.splitlines() if "astronaut" in line)
    assert "image" in row and digest[:16] in row and re.search(r"20\d\d-\d\d-\d\dT", row)
    assert "chelsea" in r.output and "{" not in r.output
    r = runner.invoke(app, ["works", "list", "--library", str(lib), "--json"])
    assert [json.loads(line)["work_id"] for line in r.stdout.splitlines()] == ["astronaut", "chelsea"]
    r = runner.invoke(app, ["works", "show", "astronaut", "--library", str(lib)], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and digest in r.output and "fingerprint SM3" in r.output
    assert "owner" in r.output and "none recorded" in r.output and "registered" in r.output
    r = runner.invoke(app, ["works", "show", "astronaut", "--library", str(lib), "--json"])
    shown = json.loads(r.stdout)
    assert shown["content_sm3"] == digest and shown["metadata"]["owner"] == "A"
    assert len(shown["fingerprint_sm3"]) == 64 and shown["anchor_receipt"] is None
    r = runner.invoke(app, ["works", "show", "nope", "--library", str(lib)])
    assert r.exit_code == 1 and "no work 'nope'" in _text(r.output)
    out = tmp_path / "all.jsonl"
    r = runner.invoke(app, ["works", "export", "--all", "--out", str(out), "--library", str(lib)])
    assert r.exit_code == 0 and "exported 2 works" in r.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0] == shown and lines[1]["work_id"] == "chelsea"
    r = runner.invoke(app, ["works", "export", "chelsea", "--out", str(out), "--library", str(lib)])
    assert r.exit_code == 1 and "exists" in r.output
    r = runner.invoke(
        app, ["works", "export", "chelsea", "--out", str(out), "--force", "--library", str(lib)]
    )
    assert r.exit_code == 0 and len(out.read_text().splitlines()) == 1
    r = runner.invoke(app, ["works", "export", "--out", str(out), "--library", str(lib)])
    assert r.exit_code == 1 and "--all" in r.output


def test_stats_prints_a_table(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    _media_dir, lib = _library(tmp_path, photos)
    r = runner.invoke(app, ["works", "stats", "--library", str(lib)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "2 works" in r.output and "{" not in r.output and "'" not in r.output
    assert re.search(r"hash_index\s*│\s*flat", r.output), r.output


def test_identify_many_files(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    from chain.crypto.sm3 import sm3_file

    _media_dir, lib = _library(tmp_path, photos)
    queries = tmp_path / "queries"
    queries.mkdir()
    q = write_image(queries / "q.jpg", jpeg(crop(photos["chelsea"], 0.5), 25))
    write_image(queries / "none.png", photos["horse"])
    bad = queries / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + bytes(30))
    r = runner.invoke(app, ["identify", str(queries), "--library", str(lib), "--json"])
    assert r.exit_code == 1
    lines = {Path(o["query"]).name: o for o in map(json.loads, r.stdout.splitlines())}
    assert set(lines) == {"q.jpg", "none.png", "broken.jpg"}
    assert "error" in lines["broken.jpg"] and "broken.jpg" in r.stderr
    assert lines["none.png"]["matches"] == []
    found = lines["q.jpg"]
    assert found["query_sm3"] == sm3_file(q).hex()
    (m,) = found["matches"]
    assert m["work_id"] == "chelsea" and m["metadata"]["owner"] == "A" and m["registered_at"].endswith("Z")
    assert m["query_sm3"] == found["query_sm3"] and "details" in m
    r = runner.invoke(app, ["identify", str(q), str(queries / "none.png"), "--library", str(lib)])
    assert r.exit_code == 0 and "chelsea" in r.output and "no registered work found" in _text(r.output)
    r = runner.invoke(app, ["identify", str(q), "--library", str(lib), "--json"])
    (single,) = json.loads(r.stdout)
    assert single["query_sm3"] == sm3_file(q).hex() and single["metadata"]["source"] == "chelsea.png"


def _video(out: Path, sound: Path | None) -> Path:
    """An MP4 of ffmpeg's test pattern with ``sound`` as its soundtrack (AAC), or silent."""
    from tests.forensics.audio.conftest import ffmpeg

    pattern = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10"]
    if sound is None:
        ffmpeg(*pattern, "-t", "4", "-c:v", "mpeg4", str(out))
    else:
        mux = ["-map", "0:v", "-map", "1:a", "-c:v", "mpeg4", "-c:a", "aac", "-shortest"]
        ffmpeg(*pattern, "-i", str(sound), *mux, str(out))
    return out


def test_identify_a_video_by_its_soundtrack(tmp_path: Path) -> None:
    from tests.forensics.audio.conftest import SR, synth_music, write_wav

    song = synth_music(5, 30.0)
    lib = tmp_path / "lib"
    clip = _video(tmp_path / "clip.mp4", write_wav(tmp_path / "excerpt.wav", song[SR * 12 : SR * 22]))
    r = runner.invoke(app, ["identify", str(clip), "--library", str(lib)])
    assert r.exit_code == 1 and "no work library" in _text(r.output)
    r = runner.invoke(
        app, ["works", "add", str(write_wav(tmp_path / "song.wav", song)), "--library", str(lib)]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["identify", str(clip), "--library", str(lib)], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    text = _text(r.output)
    assert "register_index" not in text and "no video index" not in text
    found = re.search(
        r"song\W+audio\W.* in the soundtrack, main layer: query ([\d.]+)-[\d.]+ s = work ([\d.]+)", text
    )
    assert found is not None, text
    assert abs(float(found[2]) - float(found[1]) - 12.0) <= 0.2
    r = runner.invoke(app, ["identify", str(clip), "--library", str(lib), "--json"])
    assert r.exit_code == 0, r.output
    (m,) = json.loads(r.stdout)
    assert m["work_id"] == "song" and m["kind"] == "audio" and m["query_stream"] == "audio"
    assert abs(m["details"]["ref_start"] - m["details"]["query_start"] - 12.0) <= 0.2


def test_video_errors_say_what_to_do(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    from tests.forensics.audio.conftest import synth_music, write_wav

    lib = tmp_path / "lib"
    song = write_wav(tmp_path / "song.wav", synth_music(5, 20.0))
    clip = _video(tmp_path / "clip.mp4", song)
    runner.invoke(
        app, ["works", "add", str(_media(tmp_path, photos) / "astronaut.jpg"), "--library", str(lib)]
    )
    r = runner.invoke(app, ["identify", str(clip), "--library", str(lib)])
    text = _text(r.output)
    assert r.exit_code == 1 and "by their soundtrack only" in text and "register music first" in text
    runner.invoke(app, ["works", "add", str(song), "--library", str(lib)])
    r = runner.invoke(app, ["identify", str(_video(tmp_path / "silent.mp4", None)), "--library", str(lib)])
    text = _text(r.output)
    assert r.exit_code == 1 and "this file has no audio stream" in text, text
    assert "register_index" not in text
