"""AudioIndex: identification with alignment, persistence, removal, compaction, bad input."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from forensics.audio.errors import (
    AudioDecodeError,
    AudioIndexError,
    ClipTooShortError,
    NoAudioStreamError,
    NoFingerprintError,
)
from forensics.audio.index import (
    DEFAULT_THRESHOLDS,
    FORMAT_VERSION,
    AudioIndex,
    bucket_directory,
    fingerprint_file,
)
from forensics.audio.landmarks import LandmarkParams, extract_peaks
from forensics.audio.segments import search
from forensics.errors import LibraryError, MediaError
from forensics.types import MediaIndex
from tests.forensics.audio.conftest import SR, ffmpeg, synth_music, write_wav

Clip = Callable[..., Path]
Songs = dict[str, NDArray[np.float32]]


def resample(x: NDArray[np.float32], factor: float) -> NDArray[np.float32]:
    """Play ``x`` ``factor`` times faster (tempo and pitch together), by interpolation."""
    n = int(len(x) / factor)
    return np.interp(np.arange(n) * factor, np.arange(len(x)), x).astype(np.float32)


def test_is_a_media_index(shared_index: AudioIndex) -> None:
    index: MediaIndex = shared_index
    assert index.kind == "audio"
    assert sorted(shared_index.work_ids()) == ["song-0", "song-1", "song-2"]


@pytest.mark.parametrize("start", [0.0, 13.3, 31.0])
def test_excerpt_found_with_offset(shared_index: AudioIndex, songs: Songs, clip: Clip, start: float) -> None:
    x = songs["song-1"][int(start * SR) : int((start + 5) * SR)]
    (m,) = shared_index.identify(clip(x), top_k=1)
    d = m.details
    assert m.work_id == "song-1" and m.kind == "audio"
    assert m.score >= m.threshold == pytest.approx(shared_index.threshold_for(5.0), abs=0.01)
    assert abs((d["ref_start"] - d["query_start"]) - start) <= 0.1
    assert 0 <= d["query_start"] < d["query_end"] <= 5.0
    assert abs(d["speed"] - 1.0) < 0.01
    assert d["fpr_target"] == pytest.approx(1e-3)
    assert set(d) >= {"query_start", "query_end", "ref_start", "ref_end", "speed", "offset_accuracy", "votes"}
    # the score is the peak check plus the spectral evidence, and both see the excerpt
    assert d["peak_significance"] > 0 and d["spectral_evidence"] > 0
    assert m.score == pytest.approx(d["peak_significance"] + d["spectral_evidence"], abs=0.002)


def test_excerpt_under_louder_unregistered_music(shared_index: AudioIndex, songs: Songs, clip: Clip) -> None:
    x = songs["song-0"][SR * 12 : SR * 17]
    over = synth_music(77, 5.0)[: len(x)]
    (m,) = shared_index.identify(clip(0.3 * x + 0.6 * over), top_k=1)
    assert m.work_id == "song-0"
    assert abs(m.details["ref_start"] - m.details["query_start"] - 12.0) <= 0.1
    assert m.details["spectral_evidence"] > 1.0


@pytest.mark.parametrize("factor", [0.96, 1.04])
def test_speed_change_is_found_and_estimated(
    shared_index: AudioIndex, songs: Songs, clip: Clip, factor: float
) -> None:
    x = resample(songs["song-2"][SR * 10 : SR * 17], factor)[: SR * 5]
    (m,) = shared_index.identify(clip(x), top_k=1)
    assert m.work_id == "song-2"
    assert abs(m.details["speed"] - factor) < 0.02
    ref_at_query_start = 10 + factor * m.details["query_start"]
    assert abs(m.details["ref_start"] - ref_at_query_start) <= 0.1


def test_noise_stereo_and_44k(shared_index: AudioIndex, songs: Songs, clip: Clip) -> None:
    rng = np.random.default_rng(0)
    x = songs["song-0"][SR * 20 : SR * 26]
    noisy = x + rng.standard_normal(len(x)).astype(np.float32) * float(np.sqrt(np.mean(x**2))) / np.sqrt(10)
    up = np.interp(np.arange(len(noisy) * 44100 // SR) * SR / 44100, np.arange(len(noisy)), noisy)
    (m,) = shared_index.identify(clip(up, sr=44100, channels=2), top_k=1)
    assert m.work_id == "song-0"


def test_unrelated_audio_is_not_matched(shared_index: AudioIndex, clip: Clip) -> None:
    for seed in (900, 901, 902):
        assert shared_index.identify(clip(synth_music(seed, 8.0)), top_k=3) == []
    rng = np.random.default_rng(4)
    assert shared_index.identify(clip(rng.standard_normal(SR * 6) * 0.1), top_k=3) == []


def test_query_refusals(shared_index: AudioIndex, songs: Songs, clip: Clip, tmp_path: Path) -> None:
    with pytest.raises(ClipTooShortError, match=r"at least 2\.0 s"):
        shared_index.identify(clip(songs["song-0"][:SR]), top_k=1)
    with pytest.raises(NoFingerprintError, match="silent, a pure tone"):
        shared_index.identify(clip(np.zeros(SR * 5)), top_k=1)
    t = np.arange(SR * 5) / SR
    with pytest.raises(NoFingerprintError):
        shared_index.identify(clip(0.5 * np.sin(2 * np.pi * 440 * t)), top_k=1)
    text = tmp_path / "x.mp3"
    text.write_text("not audio at all\n" * 100)
    with pytest.raises(AudioDecodeError):
        shared_index.identify(text, top_k=1)
    with pytest.raises(ValueError, match="top_k"):
        shared_index.identify(clip(songs["song-0"][: SR * 5]), top_k=0)


def test_evidence_map_that_does_not_fit_is_refused(shared_index: AudioIndex, songs: Songs) -> None:
    peaks = extract_peaks(songs["song-1"][SR * 3 : SR * 8], shared_index.params, query=True)
    assert peaks.evidence is not None
    assert shared_index.identify_peaks(peaks, top_k=1)[0].work_id == "song-1"
    for bad in (peaks.evidence[:, :-3], peaks.evidence[:-1], peaks.evidence[0]):
        with pytest.raises(ValueError, match="evidence map has shape"):
            shared_index.identify_peaks(replace(peaks, evidence=bad), top_k=1)
    # without a map the peak check alone decides: lower scores, the same work
    plain = shared_index.identify_peaks(replace(peaks, evidence=None), top_k=1, threshold=0)
    assert plain[0].work_id == "song-1" and plain[0].details["spectral_evidence"] == 0.0


def test_long_query_scanned_in_windows(shared_index: AudioIndex, songs: Songs, clip: Clip) -> None:
    rng = np.random.default_rng(9)
    pad = (rng.standard_normal(SR * 20) * 0.02).astype(np.float32)
    x = np.concatenate([pad, songs["song-2"][SR * 5 : SR * 13], pad])
    (m,) = shared_index.identify(clip(x), top_k=1)
    assert m.work_id == "song-2"
    assert 18.0 <= m.details["query_start"] <= 29.0
    assert abs(m.details["ref_start"] - m.details["query_start"] - (5 - 20)) <= 0.1


def test_persistence_remove_and_readd(
    tmp_path: Path, song_files: dict[str, Path], songs: Songs, clip: Clip
) -> None:
    d = tmp_path / "idx"
    with AudioIndex(d) as index:
        digest = index.add("a", song_files["song-0"])
        index.add("b", song_files["song-1"])
    assert len(digest) == 32
    query = clip(songs["song-0"][SR * 3 : SR * 8])
    reader = AudioIndex(d)
    assert [m.work_id for m in reader.identify(query, top_k=2)] == ["a"]
    writer = AudioIndex(d)
    assert writer.remove("a") is True
    assert writer.remove("a") is False
    assert reader.identify(query, top_k=2) == []  # the reader sees the writer's change
    assert writer.add("a", song_files["song-0"]) == digest  # same content, same fingerprint digest
    assert writer.add("b", song_files["song-0"]) == digest  # re-registering an id replaces it
    assert sorted(m.work_id for m in reader.identify(query, top_k=3)) == ["a", "b"]
    assert sorted(writer.work_ids()) == ["a", "b"]
    s = writer.stats()
    assert s["works"] == 2 and s["hours"] == pytest.approx(80 / 3600, rel=0.01)
    writer.close()
    reader.close()
    with pytest.raises(AudioIndexError, match="closed"):
        reader.identify(query, top_k=1)


def test_compaction_merges_and_drops_removed(tmp_path: Path, songs: Songs, clip: Clip) -> None:
    d = tmp_path / "idx"
    index = AudioIndex(d, max_segments=2)
    for i in range(5):
        index.add(f"w{i}", write_wav(tmp_path / f"w{i}.wav", synth_music(50 + i, 12.0)))
    assert index.stats()["segments"] <= 2
    before = index.stats()["landmarks"]
    index.remove("w1")
    index.compact()
    st = index.stats()
    assert st["segments"] == 1 and st["works"] == 4 and st["landmarks"] < before
    assert len(list(d.glob("seg-*.npy"))) == 3  # keys, values, bucket directory
    (m,) = index.identify(clip(synth_music(53, 12.0)[SR * 2 : SR * 8]), top_k=1)
    assert m.work_id == "w3"
    assert index.identify(clip(synth_music(51, 12.0)[SR * 2 : SR * 8]), top_k=1) == []
    index.close()


def test_registration_refusals(tmp_path: Path, songs: Songs) -> None:
    index = AudioIndex(tmp_path / "idx", max_seconds=30.0)
    with pytest.raises(NoFingerprintError):
        index.add("silence", write_wav(tmp_path / "s.wav", np.zeros(SR * 10)))
    with pytest.raises(ClipTooShortError):
        index.add("short", write_wav(tmp_path / "c.wav", songs["song-0"][:SR]))
    with pytest.raises(MediaError, match="longer than the maximum"):
        index.add("long", write_wav(tmp_path / "l.wav", songs["song-0"]))
    silent_video = tmp_path / "v.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x48:d=2", str(silent_video))
    with pytest.raises(NoAudioStreamError):
        index.add("video", silent_video)
    with pytest.raises(AudioIndexError, match="non-empty"):
        index.add("", write_wav(tmp_path / "ok.wav", songs["song-0"][: SR * 5]))
    assert index.stats()["works"] == 0 and index.stats()["segments"] == 0
    index.close()


def test_video_audio_track_registers_and_matches(tmp_path: Path, songs: Songs, clip: Clip) -> None:
    wav = write_wav(tmp_path / "a.wav", songs["song-1"][: SR * 20], sr=SR)
    video = tmp_path / "clip.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=64x48:d=20",
        "-i",
        str(wav),
        "-shortest",
        "-c:a",
        "aac",
        str(video),
    )
    with AudioIndex(tmp_path / "idx") as index:
        index.add("programme", video)
        (m,) = index.identify(clip(songs["song-1"][SR * 6 : SR * 11]), top_k=1)
        assert m.work_id == "programme"
        (m2,) = index.identify(video, top_k=1)  # a video can be the query as well
        assert m2.work_id == "programme"


def test_damaged_index_directory(tmp_path: Path, song_files: dict[str, Path]) -> None:
    d = tmp_path / "idx"
    with AudioIndex(d) as index:
        index.add("a", song_files["song-0"])
    with pytest.raises(AudioIndexError, match="other fingerprint parameters"):
        AudioIndex(d, params=LandmarkParams(fan_out=3))
    for seg in d.glob("seg-*.vals.npy"):
        seg.unlink()
    with pytest.raises(AudioIndexError, match="missing or damaged"):
        AudioIndex(d)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "audio.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(AudioIndexError, match="not a usable audio index"):
        AudioIndex(bad)
    assert issubclass(AudioIndexError, LibraryError)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(AudioIndexError):
        AudioIndex(f)


@pytest.mark.parametrize(
    ("stored", "message"),
    [("99", "format 99"), ("2", "format 2, this code reads format 6")],  # 2: no stored peaks
)
def test_format_version_is_checked(tmp_path: Path, stored: str, message: str) -> None:
    d = tmp_path / "idx"
    AudioIndex(d).close()
    with sqlite3.connect(d / "audio.sqlite") as db:
        db.execute("UPDATE settings SET value = ? WHERE key = 'format'", (stored,))
    with pytest.raises(AudioIndexError, match=message):
        AudioIndex(d)


@pytest.mark.parametrize("old", ["3", "4", "5"])
def test_older_formats_are_upgraded_with_default_thresholds(
    tmp_path: Path, song_files: dict[str, Path], songs: Songs, clip: Clip, old: str
) -> None:
    # formats 3 to 5 scored otherwise: their works and peaks stay, their thresholds are reset
    d = tmp_path / "idx"
    with AudioIndex(d, threshold=55.0) as index:
        index.add("a", song_files["song-0"])
    with sqlite3.connect(d / "audio.sqlite") as db:
        db.execute("UPDATE settings SET value = ? WHERE key = 'format'", (old,))
    with AudioIndex(d) as index:
        assert index.thresholds == DEFAULT_THRESHOLDS
        assert index.work_ids() == ["a"]
        assert index.identify(clip(songs["song-0"][SR * 3 : SR * 8]), top_k=1)[0].work_id == "a"
    with sqlite3.connect(d / "audio.sqlite") as db:
        assert db.execute("SELECT value FROM settings WHERE key = 'format'").fetchone()[0] == str(
            FORMAT_VERSION
        )


def test_threshold_is_stored_and_used(
    tmp_path: Path, song_files: dict[str, Path], songs: Songs, clip: Clip
) -> None:
    d = tmp_path / "idx"
    with AudioIndex(d, threshold=100000) as index:
        index.add("a", song_files["song-0"])
        assert index.identify(clip(songs["song-0"][SR * 3 : SR * 8]), top_k=1) == []
    with AudioIndex(d) as index:
        assert index.threshold == 100000
        assert index.stats()["threshold"] == 100000


def test_fingerprint_digest_depends_on_content(tmp_path: Path, songs: Songs) -> None:
    a = fingerprint_file(write_wav(tmp_path / "a.wav", songs["song-0"]))
    b = fingerprint_file(write_wav(tmp_path / "b.wav", songs["song-0"]))
    c = fingerprint_file(write_wav(tmp_path / "c.wav", songs["song-1"]))
    assert a.digest == b.digest != c.digest
    assert np.all(np.diff(a.hashes.astype(np.int64)) >= 0)
    assert a.duration == pytest.approx(40.0)


@pytest.mark.parametrize("n", [0, 5, 1000, 200_000])
def test_bucket_search_equals_binarysearch(n: int) -> None:
    rng = np.random.default_rng(n)
    keys = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    if n:
        keys[: n // 10] = keys[0]  # a hot key filling a bucket
    keys = np.sort(np.concatenate([keys, np.array([0, 0xFFFFFFFF], dtype=np.uint32)]))
    directory = bucket_directory(keys)
    bits = (len(directory) - 1).bit_length() - 1
    assert 2**bits + 1 == len(directory) and int(directory[-1]) == len(keys)
    assert len(keys) / 2**bits <= 16 or bits == 4
    needles = np.concatenate(
        [keys[:: max(1, len(keys) // 500)], rng.integers(0, 1 << 32, 500).astype(np.uint32)]
    )
    needles = np.concatenate([needles, np.array([0, 1, 0xFFFFFFFE, 0xFFFFFFFF], dtype=np.uint32)])
    b = (needles >> np.uint32(32 - bits)).astype(np.int64)
    lo_b, hi_b = directory[b].astype(np.int64), directory[b + 1].astype(np.int64)
    lo = search(keys, lo_b, hi_b, needles, right=False)
    hi = search(keys, lo, hi_b, needles, right=True)
    np.testing.assert_array_equal(lo, np.searchsorted(keys, needles, "left"))
    np.testing.assert_array_equal(hi, np.searchsorted(keys, needles, "right"))


def test_damaged_bucket_directory_is_refused(tmp_path: Path, song_files: dict[str, Path]) -> None:
    d = tmp_path / "idx"
    with AudioIndex(d) as index:
        index.add("a", song_files["song-0"])
    (dir_file,) = d.glob("seg-*.dir.npy")
    np.save(dir_file, np.zeros(6, dtype=np.uint32))  # not 2^B + 1 entries, wrong total
    with pytest.raises(AudioIndexError, match="wrong layout"):
        AudioIndex(d)
    dir_file.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(AudioIndexError, match="missing or damaged"):
        AudioIndex(d)


def test_calibration_sets_a_threshold_above_unrelated_audio(
    tmp_path: Path, song_files: dict[str, Path], songs: Songs, clip: Clip
) -> None:
    d = tmp_path / "idx"
    unrelated = [write_wav(tmp_path / f"u{i}.wav", synth_music(700 + i, 30.0)) for i in range(2)]
    with AudioIndex(d, threshold=1) as index:
        with pytest.raises(AudioIndexError, match="empty"):
            index.calibrate(unrelated, fpr_target=0.1)
        index.add("a", song_files["song-0"])
        with pytest.raises(AudioIndexError, match="at least 1000 windows"):
            index.calibrate(unrelated)
        result = index.calibrate(unrelated, fpr_target=0.1, window_seconds=5.0)
        assert result["windows"] >= 10 and result["threshold"] == result["max_score"] + 1
        assert index.threshold == result["threshold"] and index.fpr_target == pytest.approx(0.1)
        for path in unrelated:
            assert index.identify(path, top_k=1) == []
        (m,) = index.identify(clip(songs["song-0"][SR * 4 : SR * 9]), top_k=1)
        assert m.work_id == "a" and m.details["fpr_target"] == pytest.approx(0.1)
    with AudioIndex(d) as index:
        assert index.threshold == result["threshold"]  # persisted


def test_thresholds_per_query_length(tmp_path: Path, song_files: dict[str, Path]) -> None:
    d = tmp_path / "idx"
    with AudioIndex(d, threshold={3.0: 5.0, 10.0: 9.0}) as index:
        assert index.threshold_for(3.0) == 5.0 and index.threshold_for(1.0) == 5.0
        assert index.threshold_for(6.5) == pytest.approx(7.0)
        assert index.threshold_for(60.0) == 9.0 == index.threshold
    with AudioIndex(d) as index:  # persisted
        assert index.thresholds == {3.0: 5.0, 10.0: 9.0}
        assert index.stats()["thresholds"] == {"3 s": 5.0, "10 s": 9.0}
    for bad in (float("nan"), {}, {0.0: 5.0}, {3.0: float("inf")}, {-1.0: 2.0}):
        with pytest.raises(AudioIndexError, match="threshold"):
            AudioIndex(tmp_path / "other", threshold=bad)
    with sqlite3.connect(d / "audio.sqlite") as db:
        db.execute("UPDATE settings SET value = '12.5' WHERE key = 'threshold'")  # a plain number
    with AudioIndex(d) as index:
        assert index.threshold_for(3.0) == 12.5 == index.threshold
    with sqlite3.connect(d / "audio.sqlite") as db:
        db.execute("UPDATE settings SET value = 'garbage' WHERE key = 'threshold'")
    with AudioIndex(d) as index, pytest.raises(AudioIndexError, match="unreadable"):
        _ = index.thresholds


def test_calibration_per_length(tmp_path: Path, song_files: dict[str, Path]) -> None:
    unrelated = [write_wav(tmp_path / f"u{i}.wav", synth_music(800 + i, 40.0)) for i in range(2)]
    with AudioIndex(tmp_path / "idx") as index:
        index.add("a", song_files["song-0"])
        with pytest.raises(AudioIndexError, match="positive"):
            index.calibrate(unrelated, fpr_target=0.1, lengths=[0.0])
        with pytest.raises(AudioIndexError, match="windows of 3 s"):
            index.calibrate(unrelated, fpr_target=0.01, lengths=[3.0])
        result = index.calibrate(unrelated, fpr_target=0.1, lengths=[3.0, 6.0])
        per = result["per_length"]
        assert set(per) == {3.0, 6.0} and per[3.0]["windows"] > per[6.0]["windows"] >= 10
        for seconds, row in per.items():
            assert row["threshold"] == pytest.approx(row["max_score"] + 1.0, abs=1e-3)
            assert index.threshold_for(seconds) == row["threshold"]
        assert result["threshold"] == per[6.0]["threshold"]
