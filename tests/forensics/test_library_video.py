"""Video files in the work library: identified by their soundtrack against the audio works.

The music is real (the smoke corpus's game soundtracks); the videos are built with ffmpeg
from its ``testsrc`` pattern muxed with a 10-s excerpt of a song.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datasets.errors import SmokeCorpusError
from datasets.manifest import Manifest
from datasets.smoke import ensure
from forensics.audio.errors import NoAudioStreamError
from forensics.errors import UnsupportedMediaError
from forensics.evidence import AudioEvidence
from forensics.library import Library
from tests.forensics.audio.conftest import ffmpeg

EXCERPT_START = 30.0


@pytest.fixture(scope="module")
def music() -> tuple[Path, Path]:
    """A song to register and another, unrelated one (real music, 60 s or more each)."""
    try:
        root = ensure()
    except SmokeCorpusError as exc:
        pytest.fail(
            f"the smoke corpus of real media is required and could not be built: {exc}", pytrace=False
        )
    man = Manifest.open(root)
    originals = [e for e in man.select(collection="music", role="original") if (e.duration or 0) >= 60]
    song, other = originals[0], originals[1]  # other is never registered
    return root / song.path, root / other.path


def make_video(out: Path, audio: Path | None, start: float = 0.0) -> Path:
    """An MP4 of ffmpeg's test pattern, with 10 s of ``audio`` from ``start`` (AAC), or silent."""
    video = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10"]
    if audio is None:
        ffmpeg(*video, "-t", "5", "-c:v", "mpeg4", str(out))
    else:
        sound = ["-ss", f"{start}", "-t", "10", "-i", str(audio)]
        ffmpeg(
            *video,
            *sound,
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "mpeg4",
            "-c:a",
            "aac",
            "-shortest",
            str(out),
        )
    return out


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, music: tuple[Path, Path]) -> Path:
    """A library holding the song as an audio work."""
    directory = tmp_path_factory.mktemp("video-lib") / "lib"
    with Library(directory) as lib:
        assert lib.register(music[0], "song").kind == "audio"
    return directory


def test_video_is_identified_by_its_soundtrack(
    tmp_path: Path, music: tuple[Path, Path], library: Path
) -> None:
    clip = make_video(tmp_path / "clip.mp4", music[0], EXCERPT_START)
    for readonly in (False, True):
        with Library.open(library, readonly=readonly) as lib:
            (m,) = lib.identify(clip)
        assert m.work_id == "song" and m.kind == "audio" and m.score >= m.threshold
        assert m.query_stream == "audio"
        assert isinstance(m.evidence, AudioEvidence)
        offset = m.evidence.ref_start - m.evidence.query_start
        assert abs(offset - EXCERPT_START) <= 0.2, offset
        out = m.to_json()
        assert list(out) == ["work_id", "score", "kind", "threshold", "details", "query_stream"]
        assert out["query_stream"] == "audio" and out["details"] == m.evidence.to_json()
        json.dumps(out)


def test_video_without_audio_stream_is_a_clear_error(tmp_path: Path, library: Path) -> None:
    silent = make_video(tmp_path / "silent.mp4", None)
    with Library.open(library, readonly=True) as lib, pytest.raises(NoAudioStreamError) as info:
        lib.identify(silent)
    message = str(info.value)
    assert "identifies video files by their soundtrack only" in message
    assert "this file has no audio stream" in message and "register_index" not in message


def test_video_with_unrelated_soundtrack_matches_nothing(
    tmp_path: Path, music: tuple[Path, Path], library: Path
) -> None:
    other = make_video(tmp_path / "other.mp4", music[1], 2.0)
    with Library.open(library, readonly=True) as lib:
        assert lib.identify(other) == []


def test_video_needs_music_in_the_library(tmp_path: Path, music: tuple[Path, Path]) -> None:
    clip = make_video(tmp_path / "clip.mp4", music[0], EXCERPT_START)
    with Library(tmp_path / "lib") as lib, pytest.raises(UnsupportedMediaError) as info:
        lib.identify(clip)
    message = str(info.value)
    assert "by their soundtrack only" in message and "register music first" in message
    assert "register_index" not in message
    assert not (tmp_path / "lib" / "audio").exists()


def test_video_works_register_picture_and_soundtrack(
    tmp_path: Path, music: tuple[Path, Path], library: Path
) -> None:
    """A programme is a video work; its soundtrack goes to the audio index under the same id."""
    clip = make_video(tmp_path / "my clip.mp4", music[0], EXCERPT_START)
    with Library(tmp_path / "lib") as lib:
        reg = lib.register(clip, "clip")
        assert reg.kind == "video" and "clip" in lib and len(lib) == 1
        assert lib.index("audio").work_ids() == ["clip"]  # type: ignore[attr-defined]
        stats = lib.stats()["indexes"]["video"]
        assert stats["works"] == 1 and stats["with_sound"] == 1
        lib.remove("clip")
        assert lib.index("audio").work_ids() == []  # type: ignore[attr-defined]
