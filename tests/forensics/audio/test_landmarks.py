"""Peaks and landmark hashes: streaming equivalence, invariances, degenerate signals."""

from __future__ import annotations

import numpy as np
import pytest

from forensics.audio.landmarks import (
    HASH_BITS,
    LandmarkParams,
    PeakExtractor,
    Peaks,
    extract_peaks,
    hash_peaks,
)
from forensics.audio.match import Variant, default_variants, vote
from tests.forensics.audio.conftest import synth_music


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    return synth_music(3, 20.0)


@pytest.mark.parametrize("block", [1000, 8191, 40000])
def test_streaming_equals_whole(music: np.ndarray, block: int) -> None:
    whole = extract_peaks(music)
    ex = PeakExtractor(chunk_seconds=3.0)  # many chunk boundaries
    for i in range(0, len(music), block):
        ex.feed(music[i : i + block])
    streamed = ex.finish()
    assert streamed.frames == whole.frames
    np.testing.assert_allclose(streamed.t, whole.t)
    np.testing.assert_allclose(streamed.lf, whole.lf)


def test_density_and_order(music: np.ndarray) -> None:
    p = LandmarkParams()
    peaks = extract_peaks(music, p)
    assert np.all(np.diff(peaks.t) >= 0)
    block = round(1 / p.frame_seconds)  # frames per density block
    per_block = np.bincount((np.rint(peaks.t) // block).astype(int))
    assert per_block.max() <= p.peaks_per_second
    assert len(peaks) > 8 * 20
    query = extract_peaks(music, p, query=True)
    assert len(query) > len(peaks)


def test_gain_does_not_change_peaks(music: np.ndarray) -> None:
    a, b = extract_peaks(music), extract_peaks(music * 0.25)
    np.testing.assert_allclose(a.t, b.t, atol=1e-4)
    np.testing.assert_allclose(a.lf, b.lf, atol=1e-4)


def test_silence_and_tone_have_little_detail() -> None:
    assert len(extract_peaks(np.zeros(8000 * 5))) == 0
    assert len(extract_peaks(np.full(8000 * 5, 1e-5))) == 0  # below the silence floor
    t = np.arange(8000 * 5) / 8000
    tone = extract_peaks(0.5 * np.sin(2 * np.pi * 440 * t))
    hashes, _ = hash_peaks(tone)
    assert len(np.unique(hashes)) <= 12


def test_hash_fields_and_scaling() -> None:
    peaks = Peaks(t=np.array([0.0, 10.0]), lf=np.array([12.0, 19.0]), strength=np.ones(2), frames=20)
    (h,), _ = hash_peaks(peaks)
    assert h < (1 << HASH_BITS)
    (hp,), _ = hash_peaks(peaks, pitch_scale=2 ** (1 / 12))  # one semitone = two cells of f1
    assert (h >> 12) - (hp >> 12) == 2
    assert (h & 0xFFF) == (hp & 0xFFF)  # interval and time fields unchanged
    (ht,), _ = hash_peaks(peaks, time_scale=1.2)
    assert (ht >> 6) == (h >> 6) and (ht & 63) > (h & 63)


def test_target_zone_limits() -> None:
    far = Peaks(t=np.array([0.0, 200.0]), lf=np.array([10.0, 12.0]), strength=np.ones(2), frames=300)
    assert len(hash_peaks(far)[0]) == 0  # beyond dt_max
    wide = Peaks(t=np.array([0.0, 10.0]), lf=np.array([0.0, 30.0]), strength=np.ones(2), frames=20)
    assert len(hash_peaks(wide)[0]) == 0  # beyond df_max
    assert len(hash_peaks(Peaks(np.zeros(0), np.zeros(0), np.zeros(0), 0))[0]) == 0


def test_fan_out_caps_pairs_per_anchor() -> None:
    t = np.arange(30, dtype=float) * 4
    peaks = Peaks(t=t, lf=np.full(30, 20.0), strength=np.ones(30), frames=130)
    _, anchors = hash_peaks(peaks, fan_out=3)
    assert np.bincount(anchors.astype(int)).max() == 3


def test_variants_cover_speed_tempo_pitch() -> None:
    v = default_variants()
    assert v[0] == Variant(1.0, 1.0)
    assert len(v) == len(set(v)) == 25
    assert any(x.time_scale > 1.05 and x.pitch_scale == 1.0 for x in v)
    assert any(x.pitch_scale < 0.95 and x.time_scale == 1.0 for x in v)
    assert any(x.time_scale == x.pitch_scale != 1.0 for x in v)


def test_vote_respects_alive_mask(music: np.ndarray) -> None:
    ref = extract_peaks(music)
    keys, times = hash_peaks(ref)
    vals = np.rint(times).astype(np.uint32) + 5000
    order = np.argsort(keys)
    keys, vals = keys[order], vals[order]

    def lookup(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.searchsorted(keys, h, "left"), np.searchsorted(keys, h, "right")
        c = hi - lo
        pos = np.repeat(lo - np.cumsum(c) + c, c) + np.arange(c.sum())
        return np.repeat(np.arange(len(h)), c).astype(np.int64), vals[pos]

    query = extract_peaks(music[8000 * 5 : 8000 * 10], query=True)
    bases = np.array([0, 5000], dtype=np.int64)
    best = vote(query, lookup, bases)
    assert best[0].work == 1 and best[0].votes > 50
    assert abs(best[0].ref_start - best[0].query_start - 5 / LandmarkParams().frame_seconds) <= 2
    assert vote(query, lookup, bases, alive=np.array([True, False])) == []
