"""The query path: multi-threaded decoding gives the same fingerprint, and the soundtrack
searched beside the picture still decides, fails and is waited for as before."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from forensics.audio.errors import AudioDecodeError
from forensics.types import Match
from forensics.video.errors import NotVideoError
from forensics.video.fingerprint import fingerprint_file
from forensics.video.index import VideoIndex
from tests.forensics.video.conftest import Media, excerpt

FIELDS = ("codes", "valid", "mirror", "boxes", "inset", "inset_mirror", "inset_valid", "inset_boxes")


def test_query_fingerprint_is_the_same_on_one_or_several_decoder_threads(
    tmp_path: Path, media: Media
) -> None:
    clip = excerpt(media.programmes["alpha"], tmp_path / "clip.mp4", 1.0, 8.0, "scale=320:-2")
    one = fingerprint_file(clip, query=True, threads=1)
    many = fingerprint_file(clip, query=True, threads=3)
    default = fingerprint_file(clip, query=True)
    for name in FIELDS:
        a = getattr(one, name)
        assert np.array_equal(a, getattr(many, name), equal_nan=True), name
        assert np.array_equal(a, getattr(default, name), equal_nan=True), name
    work = fingerprint_file(media.programmes["beta"])
    assert work.digest == fingerprint_file(media.programmes["beta"], threads=2).digest


class _Audio:
    """An audio index stand-in: records its thread, waits, then returns or raises ``outcome``."""

    def __init__(self, outcome: list[Match] | Exception, delay: float = 0.0) -> None:
        self.outcome, self.delay = outcome, delay
        self.threads: list[str] = []
        self.finished = threading.Event()

    def identify(self, path: Path, top_k: int = 5) -> list[Match]:
        self.threads.append(threading.current_thread().name)
        time.sleep(self.delay)
        self.finished.set()
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.fixture(scope="module")
def picture_index(tmp_path_factory: pytest.TempPathFactory, media: Media) -> VideoIndex:
    idx = VideoIndex(tmp_path_factory.mktemp("query-path") / "idx")
    idx.add("alpha", media.programmes["alpha"])
    return idx


def test_the_soundtrack_is_searched_on_its_own_thread_and_waited_for(
    tmp_path: Path, media: Media, picture_index: VideoIndex
) -> None:
    clip = excerpt(media.programmes["alpha"], tmp_path / "clip.mp4", 2.0, 8.0, "scale=320:-2")
    audio = _Audio([], delay=0.3)
    picture_index.attach_audio(lambda: audio)  # type: ignore[arg-type,return-value]
    (m,) = picture_index.identify(clip)
    assert m.work_id == "alpha" and m.evidence.found_by == "picture"  # type: ignore[union-attr]
    assert audio.finished.is_set() and audio.threads[0].startswith("video-soundtrack")
    assert threading.current_thread().name not in audio.threads


def test_an_undecodable_soundtrack_leaves_the_picture_to_decide(
    tmp_path: Path, media: Media, picture_index: VideoIndex
) -> None:
    clip = excerpt(media.programmes["alpha"], tmp_path / "clip.mp4", 2.0, 8.0, "scale=320:-2")
    picture_index.attach_audio(lambda: _Audio(AudioDecodeError("damaged soundtrack")))  # type: ignore[arg-type,return-value]
    (m,) = picture_index.identify(clip)
    assert m.work_id == "alpha"


def test_a_failing_audio_index_is_not_hidden(tmp_path: Path, media: Media, picture_index: VideoIndex) -> None:
    clip = excerpt(media.programmes["alpha"], tmp_path / "clip.mp4", 2.0, 8.0, "scale=320:-2")
    picture_index.attach_audio(lambda: _Audio(RuntimeError("audio segment unreadable")))  # type: ignore[arg-type,return-value]
    with pytest.raises(RuntimeError, match="audio segment unreadable"):
        picture_index.identify(clip)


def test_bad_input_raises_before_the_soundtrack_is_searched(
    tmp_path: Path, picture_index: VideoIndex
) -> None:
    audio = _Audio([])
    picture_index.attach_audio(lambda: audio)  # type: ignore[arg-type,return-value]
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(NotVideoError):
        picture_index.identify(junk)
    assert audio.threads == []
