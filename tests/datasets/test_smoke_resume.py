"""The smoke corpus's guarantees: clear failure, resumption after interruption, tamper detection."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from datasets.corpus import build
from datasets.errors import SmokeCorpusError
from datasets.manifest import Manifest
from datasets.smoke import check, ensure


def test_missing_tools_fail_with_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg, no apt-get
    monkeypatch.setenv("RONGXIN_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(SmokeCorpusError, match=r"ffmpeg.*apt-get install .*ffmpeg"):
        ensure()


@pytest.fixture
def copy(tmp_path: Path, smoke_root: Path) -> Path:
    dest = tmp_path / "smoke"
    shutil.copytree(smoke_root, dest)
    return dest


def test_interrupted_build_resumes_to_the_same_manifest(copy: Path) -> None:
    before = (copy / "manifest.jsonl").read_bytes()
    man = Manifest.open(copy)
    photo = man.select(collection="images", role="original")[0]
    (copy / photo.path).unlink()  # a file lost mid-way
    (copy / ".state" / "codec2.jsonl").unlink()  # a source that never finished
    clip = man.select(kind="video", assembled=True)[0]
    (copy / clip.path).unlink()  # an assembled clip never written
    (copy / "images" / "stray.png").write_bytes(b"partial")  # debris of an interrupted copy
    build("all", copy, smoke=True)
    assert (copy / "manifest.jsonl").read_bytes() == before
    assert not (copy / "images" / "stray.png").exists()
    Manifest.open(copy).validate()


def test_tampered_corpus_is_rejected(copy: Path) -> None:
    man = Manifest.open(copy)
    track = man.select(collection="music", role="original")[0]
    data = bytearray((copy / track.path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / track.path).write_bytes(bytes(data))
    with pytest.raises(SmokeCorpusError, match="SM3 digest"):
        check(man)
    lines = (copy / "manifest.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["digest"] = "0" * 64
    (copy / "manifest.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    with pytest.raises(SmokeCorpusError):
        check(Manifest.open(copy))
