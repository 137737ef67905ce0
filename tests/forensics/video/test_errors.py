"""Every bad input to the video index is a clear ForensicsError subclass, and nothing is half-written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from forensics.errors import ForensicsError, MediaError
from forensics.video.errors import (
    NotVideoError,
    StillImageError,
    VideoDecodeError,
    VideoIndexError,
    VideoLimitsError,
    VideoTooLongError,
    VideoTooShortError,
)
from forensics.video.index import VideoIndex
from forensics.video.probe import Limits
from tests.forensics.video.conftest import Media, ffmpeg


def _state(directory: Path) -> tuple[list[str], list[tuple[str, ...]]]:
    """Files of the index and its catalogue rows."""
    files = sorted(p.name for p in directory.iterdir() if p.name.startswith("seg-"))
    with sqlite3.connect(directory / "video.sqlite") as db:
        rows = db.execute("SELECT work_id, segment FROM works ORDER BY work_id").fetchall()
    return files, rows


@pytest.fixture
def index(tmp_path: Path, media: Media) -> VideoIndex:
    idx = VideoIndex(tmp_path / "idx")
    idx.add("alpha", media.programmes["alpha"])
    return idx


def _refused(index: VideoIndex, path: Path, error: type[ForensicsError]) -> str:
    before = _state(index.directory)
    with pytest.raises(error) as info:
        index.add("bad", path)
    assert _state(index.directory) == before  # nothing half-written
    assert "bad" not in index.work_ids()
    return str(info.value)


def test_zero_length_file(tmp_path: Path, index: VideoIndex) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert "empty (0 bytes)" in _refused(index, empty, MediaError)


def test_not_a_video(tmp_path: Path, index: VideoIndex) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is a shopping list, not a programme\n" * 50)
    assert "not a video" in _refused(index, text, NotVideoError)
    noise = tmp_path / "noise.mkv"
    noise.write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    _refused(index, noise, NotVideoError)


def test_audio_only_file_is_not_a_video(tmp_path: Path, index: VideoIndex, media: Media) -> None:
    song = tmp_path / "song.mp4"
    ffmpeg("-t", "5", "-i", media.other_song, "-vn", "-c:a", "aac", song)
    _refused(index, song, NotVideoError)


def test_still_images_disguised_as_video(tmp_path: Path, index: VideoIndex, media: Media) -> None:
    photo = tmp_path / "frame.png"
    ffmpeg("-ss", "2", "-i", media.programmes["beta"], "-frames:v", "1", photo)
    disguised = tmp_path / "holiday.mp4"
    disguised.write_bytes(photo.read_bytes())
    assert "still picture" in _refused(index, disguised, StillImageError)
    one_frame = tmp_path / "one-frame.mp4"
    ffmpeg("-i", photo, "-frames:v", "1", "-c:v", "libx264", one_frame)
    _refused(index, one_frame, StillImageError)


def test_truncated_stream(tmp_path: Path, index: VideoIndex, media: Media) -> None:
    src = tmp_path / "whole.mkv"  # matroska: the header comes first, a cut file still opens
    ffmpeg("-i", media.programmes["beta"], "-c", "copy", src)
    data = src.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2] + bytes(5000))
    _refused(index, cut, VideoDecodeError)
    head_only = tmp_path / "head.mp4"  # MP4 cut before its index: not readable at all
    head_only.write_bytes(media.programmes["beta"].read_bytes()[:3000])
    _refused(index, head_only, MediaError)


def test_absurd_sizes_and_rates(tmp_path: Path, index: VideoIndex) -> None:
    tiny = tmp_path / "tiny.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=8x8:rate=10", "-t", "3", "-c:v", "mpeg4", tiny)
    assert "at least 16" in _refused(index, tiny, VideoLimitsError)
    fast = tmp_path / "fast.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x32:rate=1000", "-t", "0.5", "-c:v", "ffv1", fast)
    assert "frames per second" in _refused(index, fast, VideoLimitsError)
    strict = VideoIndex(tmp_path / "small-limits", limits=Limits(max_pixels=200 * 200))
    clip = tmp_path / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-t", "3", "-c:v", "mpeg4", clip)
    with pytest.raises(VideoLimitsError, match="lower resolution"):
        strict.add("big", clip)


def test_too_long_and_too_little_picture(tmp_path: Path, media: Media) -> None:
    short = VideoIndex(tmp_path / "idx", limits=Limits(max_seconds=5.0))
    with pytest.raises(VideoTooLongError):
        short.add("alpha", media.programmes["alpha"])
    black = tmp_path / "black.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=black:size=160x120:rate=25", "-t", "4", "-c:v", "libx264", black)
    with pytest.raises(VideoTooShortError, match="with detail"):
        short.add("black", black)
    assert short.work_ids() == [] and short.stats()["frames"] == 0


def test_rotated_phone_video_is_decoded_upright(tmp_path: Path, index: VideoIndex, media: Media) -> None:
    """A phone clip stored sideways with a rotation flag is matched as displayed."""
    stored = tmp_path / "stored.mp4"  # the picture as the sensor stored it: turned a quarter left
    ffmpeg(
        "-ss",
        "2",
        "-t",
        "6",
        "-i",
        media.programmes["alpha"],
        "-vf",
        "transpose=2",
        "-c:v",
        "libx264",
        stored,
    )
    flagged = tmp_path / "flagged.mp4"  # with the flag that tells players to turn it back
    ffmpeg("-i", stored, "-c", "copy", "-metadata:s:v:0", "rotate=270", flagged)
    assert not index.identify(stored)
    found = index.identify(flagged)
    assert found and found[0].work_id == "alpha"


def test_damaged_index(tmp_path: Path, index: VideoIndex) -> None:
    directory = index.directory
    index.close()
    (segment,) = [p for p in directory.iterdir() if p.name.startswith("seg-")]
    good = segment.read_bytes()
    segment.write_bytes(good[: len(good) // 2])
    with pytest.raises(VideoIndexError, match=r"missing or damaged|frames its catalogue"):
        VideoIndex(directory, readonly=True)
    segment.unlink()
    with pytest.raises(VideoIndexError, match="missing or damaged"):
        VideoIndex(directory)
    segment.write_bytes(good)
    VideoIndex(directory, readonly=True).close()
    (directory / "video.sqlite").write_bytes(b"SQLite format 3\x00" + bytes(200))
    for name in ("video.sqlite-wal", "video.sqlite-shm"):
        (directory / name).unlink(missing_ok=True)
    with pytest.raises(VideoIndexError):
        VideoIndex(directory)


def test_leftover_segment_of_a_crash_is_swept(tmp_path: Path, index: VideoIndex) -> None:
    directory = index.directory
    index.close()
    np.save(directory / "seg-deadbeefdeadbeef.npy", np.zeros((3, 33), np.uint8))
    (directory / "seg-0011.npy.tmp").write_bytes(b"partial")
    reopened = VideoIndex(directory)
    assert reopened.work_ids() == ["alpha"]
    assert sorted(p.name for p in directory.glob("seg-*")) == _state(directory)[0]
    assert len(_state(directory)[0]) == 1


def test_readonly_index_refuses_writes(tmp_path: Path, index: VideoIndex, media: Media) -> None:
    ro = VideoIndex(index.directory, readonly=True)
    with pytest.raises(VideoIndexError, match="read-only"):
        ro.add("beta", media.programmes["beta"])
    with pytest.raises(VideoIndexError, match="read-only"):
        ro.remove("alpha")
    with pytest.raises(VideoIndexError, match="holds no video index"):
        VideoIndex(tmp_path / "nothing-here", readonly=True)


def test_query_errors_are_media_errors(tmp_path: Path, index: VideoIndex) -> None:
    img = tmp_path / "poster.jpg"
    cv2.imwrite(str(img), np.full((64, 64, 3), 128, np.uint8))
    renamed = tmp_path / "poster.mp4"
    renamed.write_bytes(img.read_bytes())
    with pytest.raises(StillImageError):
        index.identify(renamed)


def test_variable_frame_rate_copy_is_matched(tmp_path: Path, index: VideoIndex, media: Media) -> None:
    """Frames dropped irregularly (variable frame rate): the fixed-rate sampling sees through it."""
    vfr = tmp_path / "vfr.mkv"
    drop = "select='not(eq(mod(n,7),3)+eq(mod(n,5),1))'"
    ffmpeg("-ss", "3", "-t", "8", "-i", media.programmes["alpha"], "-vf", drop, "-vsync", "vfr",
           "-c:v", "libx264", vfr)  # fmt: skip
    found = index.identify(vfr)
    assert found and found[0].work_id == "alpha"
    assert abs(found[0].details["ref_start"] - found[0].details["query_start"] - 3.0) <= 0.5
