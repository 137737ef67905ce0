"""The bass layer: decimation, registration in both layers, and matching what the main band loses."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from forensics.audio.bass import BASS_PARAMS, Decimator, bass_samples
from forensics.audio.calibration import threshold_at
from forensics.audio.decode import decode
from forensics.audio.errors import AudioIndexError
from forensics.audio.index import AudioIndex, fingerprint_file
from forensics.audio.landmarks import LandmarkParams, Peaks, extract_peaks
from tests.forensics.audio.conftest import SR, synth_music, synth_notes, write_wav

Clip = Callable[..., Path]


def synth_bass(seed: int, seconds: float) -> NDArray[np.float32]:
    """A seeded bass line: single notes of 0.15-0.5 s between 41 and 170 Hz, two harmonics."""
    return synth_notes(
        seed,
        seconds,
        lengths=(0.15, 0.5),
        decay=(2.0, 6.0),
        attack=300.0,
        voices=1,
        lowest=41.2,
        semitones=26,
        harmonics=((1, 1.0), (2, 0.4)),
    )


def tone(freq: float, seconds: float = 1.0) -> NDArray[np.float32]:
    return np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR).astype(np.float32)


def test_decimator_streams_like_whole_and_keeps_only_the_low_band() -> None:
    x = np.random.default_rng(5).standard_normal(SR * 3).astype(np.float32)
    d = Decimator()
    parts = np.concatenate([d.feed(x[i : i + 777]) for i in range(0, len(x), 777)])
    whole = bass_samples(x)
    assert len(whole) == len(x) // 4 and np.allclose(parts, whole, atol=1e-6)
    low, high = bass_samples(tone(100.0)), bass_samples(tone(1500.0))
    assert np.std(low[200:]) == pytest.approx(np.std(tone(100.0)), rel=0.05)  # passed at unit gain
    assert np.std(high[200:]) < 0.01 * np.std(tone(1500.0))  # not folded back into the band
    assert len(Decimator().feed([])) == 0


def test_new_index_has_a_bass_layer_and_older_or_custom_ones_do_not(tmp_path: Path) -> None:
    with AudioIndex(tmp_path / "new") as index:
        assert index.bass is not None and index.bass.params == BASS_PARAMS
        assert index.bass.bass is None  # one level only
        assert index.stats()["bass"]["works"] == 0
    with AudioIndex(tmp_path / "new") as index:  # reopened: the layer is found again
        assert index.bass is not None
    with AudioIndex(tmp_path / "old", bass=False) as index:  # as made before the layer existed
        assert index.bass is None
    with AudioIndex(tmp_path / "old") as index:  # its works' audio is gone: no layer added later
        assert index.bass is None and index.stats()["bass"] is None
    with AudioIndex(tmp_path / "custom", params=LandmarkParams(fmin=300.0)) as index:
        assert index.bass is None


def test_registration_fills_both_layers_and_removal_empties_both(tmp_path: Path) -> None:
    work = synth_bass(11, 30.0) + 0.3 * synth_music(12, 30.0)
    treble = synth_music(13, 30.0)  # nothing below 220 Hz: too little for the bass layer
    with AudioIndex(tmp_path / "idx") as index:
        assert index.bass is not None
        index.add("w", write_wav(tmp_path / "w.wav", work))
        index.add("t", write_wav(tmp_path / "t.wav", treble))
        assert index.work_ids() == ["t", "w"] or sorted(index.work_ids()) == ["t", "w"]
        assert index.bass.work_ids() == ["w"]
        st = index.stats()
        assert st["bass"]["works"] == 1 and st["bytes"] > st["bass"]["bytes"] > 0
        # re-registering "w" with treble only drops its stale bass fingerprint
        index.add("w", write_wav(tmp_path / "w2.wav", synth_music(14, 30.0)))
        assert index.bass.work_ids() == []
        index.add("w", write_wav(tmp_path / "w3.wav", work))
        assert index.bass.work_ids() == ["w"]
        # a fingerprint computed elsewhere is the main layer's only: the bass layer forgets "w"
        index.add_fingerprint("w", fingerprint_file(tmp_path / "w3.wav", index.params))
        assert index.bass.work_ids() == [] and "w" in index.work_ids()
        index.add("w", write_wav(tmp_path / "w3.wav", work))
        assert index.remove("w") and index.bass.work_ids() == []
        assert not index.remove("w")


def test_bass_layer_finds_a_work_the_main_band_loses(tmp_path: Path, clip: Clip) -> None:
    work = synth_bass(21, 40.0) + 0.1 * synth_music(22, 40.0)
    with AudioIndex(tmp_path / "idx") as index:
        assert index.bass is not None
        index.add("bassy", write_wav(tmp_path / "w.wav", work))
        index.add("other", write_wav(tmp_path / "o.wav", synth_bass(23, 40.0) + 0.1 * synth_music(24, 40.0)))
        x = work[SR * 20 : SR * 25]
        over = synth_music(99, 5.0)[: len(x)]  # an unregistered melody, loud above 220 Hz
        q = x + 2.0 * over
        (m,) = index.identify(clip(q), top_k=1)
        assert m.work_id == "bassy" and m.details["layer"] in ("bass", "both")
        # the threshold of the rule that found it, for a query of about 5 s
        table = index.bass.thresholds if m.details["layer"] == "bass" else index.joint_thresholds
        assert m.score >= m.threshold and threshold_at(table, 5.0) <= m.threshold < threshold_at(table, 5.5)
        assert abs(m.details["ref_start"] - m.details["query_start"] - 20.0) <= 0.1
        # the main layer alone does not find it
        assert index.identify_peaks(extract_peaks(q, index.params, query=True), top_k=1) == []
        # a clean excerpt is matched too
        (m,) = index.identify(clip(work[SR * 5 : SR * 10] * 4.0), top_k=1)
        assert m.work_id == "bassy"
        assert m.details["layer"] in ("main", "bass", "both")
        # unrelated audio is matched by neither layer
        assert index.identify(clip(synth_bass(31, 6.0) + 0.8 * synth_music(32, 6.0)), top_k=1) == []
        # a bass fingerprint whose work the main layer does not hold is never reported
        index.bass.add_fingerprint("ghost", fingerprint_file(tmp_path / "w.wav", BASS_PARAMS))
        assert index.remove("bassy") and sorted(index.bass.work_ids()) == ["ghost", "other"]
        assert index.identify(clip(q), top_k=3) == []
        assert [
            m.work_id
            for m in index.bass.identify_peaks(extract_peaks(bass_samples(q), BASS_PARAMS, query=True))
        ] == ["ghost"]


def test_calibration_sets_the_bass_layer_thresholds(tmp_path: Path) -> None:
    unrelated = [
        write_wav(tmp_path / f"u{i}.wav", synth_bass(700 + i, 30.0) + synth_music(800 + i, 30.0))
        for i in range(2)
    ]
    with AudioIndex(tmp_path / "idx") as index:
        assert index.bass is not None
        index.add("a", write_wav(tmp_path / "a.wav", synth_bass(41, 30.0) + 0.3 * synth_music(42, 30.0)))
        result = index.calibrate(unrelated, fpr_target=0.1, window_seconds=5.0)
        bass = result["bass_thresholds"]
        assert set(bass) == {5.0} and bass[5.0] >= 1.0
        assert index.bass.threshold_for(5.0) == bass[5.0]
    with AudioIndex(tmp_path / "idx") as index:
        assert index.bass is not None and index.bass.threshold_for(5.0) == bass[5.0]  # persisted
        joint = result["joint_thresholds"]
        assert set(joint) == {5.0} and index.joint_thresholds == joint
        # one more than the best sum any calibration window reached
        peaks, low = _both(unrelated[0], index)
        size, bsize = round(5.0 / index.params.frame_seconds), round(5.0 / index.bass.params.frame_seconds)
        best = index.best_scores(peaks.window(0, size), low.window(0, bsize))
        assert set(best) == {"main", "bass", "both"} and best["both"] + 1.0 <= joint[5.0] + 1e-9


def _both(path: Path, index: AudioIndex) -> tuple[Peaks, Peaks]:
    x = decode(path)
    assert index.bass is not None
    low = extract_peaks(bass_samples(x), index.bass.params, query=True)
    return extract_peaks(x, index.params, query=True), low


def test_both_layers_together_find_what_neither_finds_alone(tmp_path: Path) -> None:
    work = synth_bass(51, 40.0) + 0.3 * synth_music(52, 40.0)
    x = work[SR * 12 : SR * 17]
    noisy = x + 0.9 * np.random.default_rng(5).standard_normal(len(x)).astype(np.float32) * np.std(x)
    path = write_wav(tmp_path / "q.wav", noisy)
    with AudioIndex(tmp_path / "idx") as index:
        index.add("w", write_wav(tmp_path / "w.wav", work))
        peaks, low = _both(path, index)
        scores = index.best_scores(peaks, low)
        main, bass, both = scores["main"], scores["bass"], scores["both"]
        assert both > max(main, bass) > 0  # the sum of two layers' evidence at one alignment
    # thresholds that each layer alone misses but the sum clears
    mid = (max(main, bass) + both) / 2
    with AudioIndex(tmp_path / "idx", threshold=mid, bass_threshold=mid, joint_threshold=mid) as index:
        (m,) = index.identify(path, top_k=1)
        assert m.work_id == "w" and m.details["layer"] == "both" and m.threshold == mid
        d = m.details
        assert m.score == pytest.approx(d["bass_significance"] + d["main_significance"], abs=2e-3)
        assert abs(d["ref_start"] - d["query_start"] - 12.0) <= 0.1
        assert index.identify_peaks(peaks, top_k=1) == []  # the main layer alone: nothing
    with AudioIndex(tmp_path / "idx", joint_threshold=both + 0.01) as index:
        assert index.joint_thresholds[10.0] == both + 0.01
        found = index.identify(path, top_k=1)
        assert all(f.details["layer"] != "both" for f in found)


def test_a_joint_threshold_must_be_a_number(tmp_path: Path) -> None:
    with pytest.raises(AudioIndexError, match="finite"):
        AudioIndex(tmp_path / "idx", joint_threshold=float("nan"))


def test_a_damaged_or_foreign_bass_layer_is_refused(tmp_path: Path) -> None:
    from forensics.audio.errors import AudioIndexError

    with AudioIndex(tmp_path / "a") as index:
        assert index.bass is not None
    (tmp_path / "a" / "bass" / "audio.sqlite").write_bytes(b"not a database" * 100)
    for f in (tmp_path / "a" / "bass").glob("audio.sqlite-*"):
        f.unlink()
    with pytest.raises(AudioIndexError, match="not a usable audio index"):
        AudioIndex(tmp_path / "a")
    # a bass/ directory holding an index of the main layer's parameters
    with AudioIndex(tmp_path / "b") as index:
        pass
    shutil.rmtree(tmp_path / "b" / "bass")
    AudioIndex(tmp_path / "b" / "bass", bass=False).close()
    with pytest.raises(AudioIndexError, match="not a quarter"):
        AudioIndex(tmp_path / "b")


def test_the_decimator_filters_exactly_as_scipy_does() -> None:
    """Our FIR (numpy only, no scipy.signal import at start-up) is scipy's firwin + lfilter."""
    from scipy import signal

    from forensics.audio.bass import lowpass_taps

    assert np.allclose(lowpass_taps(63, 0.2), signal.firwin(63, 0.2), atol=1e-15)
    x = np.random.default_rng(3).standard_normal(40_000)
    expect = signal.lfilter(signal.firwin(63, 0.2), 1.0, x)[::4].astype(np.float32)
    d = Decimator()
    got = np.concatenate([d.feed(x[:12_345]), d.feed(x[12_345:12_346]), d.feed(x[12_346:])])
    assert got.shape == expect.shape and np.allclose(got, expect, atol=1e-6)
    for bad in ((64, 0.2), (63, 0.0), (63, 1.0)):
        with pytest.raises(ValueError, match="odd length"):
            lowpass_taps(*bad)
