"""The in-process (PyAV) query decoder: the same samples as the ffmpeg process, and bad input.

Each sample must be the frame the ``fps`` filter of the ffmpeg process picks (compared
pixel by pixel: the two scalers may round a grey level differently), the frames the
decoder is allowed to drop must change nothing, and a file PyAV cannot read must fall
back to the ffmpeg process with its error mapping.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from forensics.image.phash import dct_hash
from forensics.video import avdecode
from forensics.video.avdecode import DecodeStats, PyAVUnusableError, av_frames, query_frames
from forensics.video.decode import iter_frames
from forensics.video.errors import VideoDecodeError, VideoLimitsError
from forensics.video.fingerprint import fingerprint_file
from forensics.video.index import VideoIndex
from forensics.video.probe import Limits, probe
from forensics.video.sampling import SlotPicker, needed, slot_of
from tests.forensics.video.conftest import Media, ffmpeg


def _all(blocks: object) -> NDArray[np.uint8]:
    arrays = list(blocks)  # type: ignore[call-overload]
    return np.concatenate(arrays) if arrays else np.zeros((0, 128, 128), np.uint8)


def _same_samples(path: Path, rotation: int = 0) -> DecodeStats:
    """PyAV's samples (with and without dropping frames) against the ffmpeg process's."""
    cli = _all(iter_frames(path, rate=4.0, strict=False))
    stats = DecodeStats()
    fast = _all(av_frames(path, rate=4.0, rotation=rotation, threads=2, stats=stats))
    every = _all(av_frames(path, rate=4.0, rotation=rotation, skip_unsampled=False))
    assert fast.shape == every.shape == cli.shape, (fast.shape, cli.shape)
    assert np.array_equal(fast, every)  # dropping unsampled frames changes no sample
    diff = np.abs(fast.astype(np.int16) - cli.astype(np.int16))
    # the same pictures, scaled by two libswscale versions (a rotated one turned after scaling,
    # where ffmpeg turns it before: a few isolated pixels differ by more)
    assert diff.mean() < 0.2 and float((diff > 2).mean()) < 1e-3
    if not rotation:
        assert diff.max() <= 2
    bits = [
        int(np.unpackbits(dct_hash(np.ascontiguousarray(a)) ^ dct_hash(np.ascontiguousarray(b))).sum())
        for a, b in zip(fast, cli, strict=True)
    ]
    assert max(bits) <= 8, bits
    return stats


def test_samples_match_the_ffmpeg_process(media: Media) -> None:
    stats = _same_samples(media.programmes["alpha"])
    assert stats.backend == "pyav" and stats.slots > 0
    assert stats.skippable > 0 and stats.decoded < stats.packets  # x264's B-frames were left undecoded


def test_a_window_of_few_bytes_decodes_the_same_samples(
    media: Media, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the byte bound a packet is decoded before the packets after it are read: only a
    frame whose successor was read earlier (a B-frame before its P-frame) may be skipped."""
    path = media.programmes["beta"]
    usual_stats, stats = DecodeStats(), DecodeStats()
    usual = _all(av_frames(path, rate=4.0, stats=usual_stats))
    monkeypatch.setattr(avdecode, "LOOKAHEAD_BYTES", 1)
    tight = _all(av_frames(path, rate=4.0, stats=stats))
    assert np.array_equal(usual, tight)
    assert stats.skippable < usual_stats.skippable


def test_variable_frame_rate_and_rotation(tmp_path: Path, media: Media) -> None:
    vfr = tmp_path / "vfr.mkv"
    drop = "select='not(eq(mod(n,7),3)+eq(mod(n,5),1))'"
    ffmpeg("-ss", "3", "-t", "6", "-i", media.programmes["beta"], "-vf", drop, "-vsync", "vfr",
           "-c:v", "libx264", vfr)  # fmt: skip
    _same_samples(vfr)
    stored = tmp_path / "stored.mp4"
    ffmpeg("-t", "4", "-i", media.programmes["alpha"], "-vf", "transpose=2", "-c:v", "libx264", stored)
    flagged = tmp_path / "flagged.mp4"
    ffmpeg("-i", stored, "-c", "copy", "-metadata:s:v:0", "rotate=270", flagged)
    info = probe(flagged)
    assert info.rotation % 360 != 0
    _same_samples(flagged, rotation=info.rotation)


def test_query_fingerprints_agree(media: Media) -> None:
    path = media.programmes["gamma"]
    a = fingerprint_file(path, query=True, decoder="pyav")
    b = fingerprint_file(path, query=True, decoder="ffmpeg")
    assert a.codes.shape == b.codes.shape
    assert np.array_equal(a.valid, b.valid)
    bits = np.unpackbits(a.codes ^ b.codes, axis=1).sum(axis=1)
    # nearly all equal; a frame whose bars are at the detection threshold may be cropped a row apart
    assert float(np.median(bits)) == 0 and float(bits.mean()) < 2 and int(bits.max()) <= 16, bits
    with pytest.raises(ValueError, match="decoder"):
        fingerprint_file(path, query=True, decoder="gstreamer")


def test_truncated_and_corrupt_streams_decode_what_is_there(tmp_path: Path, media: Media) -> None:
    src = tmp_path / "whole.mkv"
    ffmpeg("-i", media.programmes["beta"], "-c", "copy", src)
    data = src.read_bytes()
    whole = len(_all(av_frames(src, rate=4.0)))
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2] + bytes(5000))
    stats = DecodeStats()
    part = _all(query_frames(cut, rate=4.0, stats=stats))
    assert stats.backend == "pyav" and 0 < len(part) < whole
    noisy = bytearray(data)
    rng = np.random.default_rng(7)
    for at in rng.integers(len(data) // 4, len(data), 40):  # garbage over the stream's packets
        noisy[at : at + 200] = rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(bytes(noisy))
    got = _all(query_frames(damaged, rate=4.0, stats=(stats := DecodeStats())))
    assert len(got) > 0 and got.dtype == np.uint8 and got.shape[1:] == (128, 128)


@pytest.mark.parametrize(
    "content",
    [b"", b"this is a text file, not a video\n" * 40, bytes(range(256)) * 64],
    ids=["zero-length", "text", "random-bytes"],
)
def test_not_a_video_falls_back_to_the_ffmpeg_process_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    with pytest.raises(PyAVUnusableError):
        av_frames(path, rate=4.0)
    stats = DecodeStats()
    with pytest.raises(VideoDecodeError):
        _all(query_frames(path, rate=4.0, stats=stats))
    assert stats.backend == "ffmpeg" and stats.fallback_reason


def test_mp4_cut_before_its_index_falls_back(tmp_path: Path, media: Media) -> None:
    head = tmp_path / "head.mp4"
    head.write_bytes(media.programmes["beta"].read_bytes()[:3000])
    stats = DecodeStats()
    with pytest.raises(VideoDecodeError):
        _all(query_frames(head, rate=4.0, stats=stats))
    assert stats.backend == "ffmpeg"


def test_stream_growing_past_the_limits_is_refused(tmp_path: Path) -> None:
    """The header declares a small picture; a later part of the stream is far larger."""
    small, big, joined = tmp_path / "small.ts", tmp_path / "big.ts", tmp_path / "joined.ts"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-t", "2", "-c:v", "libx264", small)
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=640x480:rate=25", "-t", "1", "-c:v", "libx264", big)
    joined.write_bytes(small.read_bytes() + big.read_bytes())
    info = probe(joined)
    assert (info.width, info.height) == (160, 120)  # what a check before decoding sees
    with pytest.raises(VideoLimitsError, match="while decoding"):
        _all(query_frames(joined, rate=4.0, max_pixels=320 * 240))
    index = VideoIndex(tmp_path / "idx", limits=Limits(max_pixels=320 * 240))
    with pytest.raises(VideoLimitsError):
        index.identify(joined)


def test_rotation_not_a_quarter_turn_is_left_to_the_ffmpeg_process(media: Media) -> None:
    with pytest.raises(PyAVUnusableError):
        av_frames(media.programmes["alpha"], rate=4.0, rotation=45)


def test_a_file_name_is_never_a_protocol(
    tmp_path: Path, media: Media, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name libavformat would read as a protocol ("concat:", "subfile,...:") is opened as a file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "concat:x").mkdir()
    tricky = tmp_path / "concat:x" / "clip.mp4"
    tricky.write_bytes(media.programmes["gamma"].read_bytes())
    stats = DecodeStats()
    got = _all(query_frames(Path("concat:x/clip.mp4"), rate=4.0, stats=stats))
    assert stats.backend == "pyav" and len(got) > 0


def test_slot_rule() -> None:
    r = Fraction(4)
    assert [slot_of(Fraction(t, 100), r) for t in (0, 12, 13, 37, 38)] == [0, 0, 1, 1, 2]
    assert slot_of(Fraction(-13, 100), r) == -1  # halves away from zero, as the filter rounds
    assert needed(Fraction(36, 100), Fraction(40, 100), r)  # last frame before 0.375 s
    assert not needed(Fraction(32, 100), Fraction(36, 100), r)
    assert needed(Fraction(2), None, r)  # the last frame: kept
    assert not needed(Fraction(-1), Fraction(-9, 10), r)  # before the start
    picker: SlotPicker[str] = SlotPicker(r)
    assert picker.push(Fraction(1), "late start") == []
    assert picker.push(Fraction(13, 10), "next") == [
        (k, "late start") for k in range(5)
    ]  # slots before filled
    assert picker.finish(Fraction(14, 10)) == [(5, "next")]
    assert picker.finish(Fraction(3)) == []
