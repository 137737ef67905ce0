"""Peaks and landmark hashes: streaming equivalence, invariances, degenerate signals."""

from __future__ import annotations

import numpy as np
import pytest

from forensics.audio.landmarks import (
    HASH_BITS,
    LandmarkParams,
    PeakExtractor,
    Peaks,
    analysis_bins,
    anchor_peaks,
    extract_peaks,
    hash_fields,
    hash_peaks,
    landmarks,
    mix32,
    unmix32,
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


@pytest.mark.parametrize("block", [1000, 40000])
def test_streamed_evidence_equals_whole(music: np.ndarray, block: int) -> None:
    whole = extract_peaks(music, query=True)
    ex = PeakExtractor(chunk_seconds=3.0, query=True)
    for i in range(0, len(music), block):
        ex.feed(music[i : i + block])
    streamed = ex.finish()
    assert whole.evidence is not None and streamed.evidence is not None
    np.testing.assert_array_equal(streamed.evidence, whole.evidence)


def test_only_queries_carry_an_evidence_map(music: np.ndarray) -> None:
    p = LandmarkParams()
    lo, hi = analysis_bins(p)
    q = extract_peaks(music, p, query=True)
    assert extract_peaks(music, p).evidence is None
    assert q.evidence is not None and q.evidence.dtype == np.int8
    assert q.evidence.shape == (q.frames, hi - lo)
    # the map is high where the query has its peaks (a peak stands >= 6 dB out of its bins)
    col = np.rint(p.fmin * np.exp2(q.lf / 12) * p.n_fft / p.sample_rate).astype(int) - lo
    at_peaks = q.evidence[np.rint(q.t).astype(int).clip(0, q.frames - 1), col]
    assert np.median(at_peaks) * 0.5 >= 6.0
    assert np.median(q.evidence) < np.median(at_peaks) / 2
    assert extract_peaks(np.zeros(8000), p, query=True).evidence.shape == (63, hi - lo)


def test_window_slices_peaks_and_evidence(music: np.ndarray) -> None:
    q = extract_peaks(music, query=True)
    assert q.evidence is not None
    w = q.window(100, 400)
    inside = (q.t >= 100) & (q.t < 400)
    np.testing.assert_allclose(w.t, q.t[inside] - 100)
    np.testing.assert_allclose(w.lf, q.lf[inside])
    assert w.frames == 300 and w.evidence is not None
    np.testing.assert_array_equal(w.evidence, q.evidence[100:400])
    tail = q.window(q.frames - 10, q.frames + 500)  # clamped to the frames analysed
    assert tail.frames == 10 and tail.evidence is not None and len(tail.evidence) == 10
    assert q.window(-50, 0).frames == 0 and len(q.window(-50, 0)) == 0
    assert extract_peaks(music).window(0, 10).evidence is None


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


def _peaks(t: list[float], lf: list[float]) -> Peaks:
    return Peaks(t=np.array(t), lf=np.array(lf), strength=np.ones(len(t)), frames=int(max(t)) + 10)


def test_hash_fields_and_scaling() -> None:
    peaks = _peaks([0.0, 5.2, 12.3], [12.2, 15.1, 10.1])
    (h,), _ = hash_peaks(peaks)
    f = {k: int(v[0]) for k, v in hash_fields(np.array([h], dtype=np.uint32)).items()}
    assert int(unmix32(np.array([h], dtype=np.uint32))[0]) < (1 << HASH_BITS)
    assert (f["anchor"], f["interval2"] - 31, f["interval3"] - 31) == (24, 6, -4)
    assert f["ratio"] == int(5.2 / 12.3 * 16)
    (hp,), _ = hash_peaks(peaks, pitch_scale=2 ** (1 / 12))  # one semitone = two anchor cells
    fp = {k: int(v[0]) for k, v in hash_fields(np.array([hp], dtype=np.uint32)).items()}
    assert fp["anchor"] == f["anchor"] - 2 and {k: fp[k] for k in fp if k != "anchor"} == {
        k: f[k] for k in f if k != "anchor"
    }
    (ht,), _ = hash_peaks(peaks, time_scale=1.2)  # tempo moves only the span
    ft = {k: int(v[0]) for k, v in hash_fields(np.array([ht], dtype=np.uint32)).items()}
    assert ft["span"] > f["span"] and {k: ft[k] for k in ft if k != "span"} == {
        k: f[k] for k in f if k != "span"
    }


def test_speed_change_is_undone_by_the_matching_hypothesis() -> None:
    rng = np.random.default_rng(2)
    t = np.sort(rng.uniform(0, 600, 400))
    lf = rng.uniform(2, 40, 400)
    ref, _ = hash_peaks(_peaks(list(t), list(lf)))
    factor = 1.04  # played 4 % fast: times shrink, pitch rises
    fast = _peaks(list(t / factor), list(lf + 12 * np.log2(factor)))
    plain, _ = hash_peaks(fast)
    undone, _ = hash_peaks(fast, time_scale=factor, pitch_scale=factor)
    share_plain = np.isin(plain, ref).mean()
    share_undone = np.isin(undone, ref).mean()
    assert share_undone > 0.6 and share_plain < 0.2


def test_chord_order_does_not_matter() -> None:
    a = _peaks([0.0, 8.0, 8.3], [10.0, 14.0, 20.0])
    b = _peaks([0.0, 8.0, 8.3], [10.0, 20.0, 14.0])  # the two chord notes come in the other order
    assert hash_peaks(a)[0].tolist() == hash_peaks(b)[0].tolist()


def test_mix_is_a_bijection() -> None:
    x = np.arange(0, 1 << 20, dtype=np.uint32) * np.uint32(4093)
    m = mix32(x)
    assert len(np.unique(m)) == len(x)
    np.testing.assert_array_equal(unmix32(m), x)
    top = np.bincount(m >> np.uint32(28), minlength=16)  # even buckets for the index
    assert top.min() > 0.9 * len(x) / 16


def test_target_zone_limits() -> None:
    far = _peaks([0.0, 5.0, 200.0], [10.0, 12.0, 12.0])
    assert len(hash_peaks(far)[0]) == 0  # third peak beyond dt_max
    wide = _peaks([0.0, 5.0, 10.0], [0.0, 4.0, 30.0])
    assert len(hash_peaks(wide)[0]) == 0  # beyond df_max
    assert len(hash_peaks(Peaks(np.zeros(0), np.zeros(0), np.zeros(0), 0))[0]) == 0
    with pytest.raises(ValueError, match="at least 2"):
        landmarks(wide, fan_out=1)


def test_fan_out_caps_triplets_per_anchor() -> None:
    t = np.arange(30, dtype=float) * 4
    peaks = Peaks(t=t, lf=np.full(30, 20.0), strength=np.ones(30), frames=130)
    _, anchors = hash_peaks(peaks, fan_out=3)
    assert np.bincount(anchors.astype(int)).max() == 3  # 3 targets: 3 pairs of them
    _, anchors = hash_peaks(peaks, fan_out=5)
    assert np.bincount(anchors.astype(int)).max() == 10


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
    assert best[0].work == 1 and best[0].votes > 30  # distinct query anchors aligned
    assert abs(best[0].ref_start - best[0].query_start - 5 / LandmarkParams().frame_seconds) <= 2
    assert vote(query, lookup, bases, alive=np.array([True, False])) == []


def test_density_cap_is_shared_by_frequency_bands() -> None:
    # loud low-band noise (a crowd, a voice-over) over a weak melody two octaves up:
    # picking by level alone fills the cap with the noise; per band, the melody keeps
    # its share
    sr = 8000
    rng = np.random.default_rng(5)
    spec = np.fft.rfft(rng.standard_normal(sr * 6))
    freqs = np.fft.rfftfreq(sr * 6, 1 / sr)
    low = np.fft.irfft(np.where((freqs > 250) & (freqs < 900), spec, 0), n=sr * 6)
    low /= np.std(low)
    tt = np.arange(sr // 8) / sr
    notes = rng.choice([1568.0, 1760.0, 1976.0, 2093.0, 2349.0, 2637.0], size=48)
    high = np.concatenate([0.1 * np.sin(2 * np.pi * f * tt) for f in notes])
    x = (low + high).astype(np.float32)
    top = 12 * np.log2(1500 / 250)
    one = extract_peaks(x, LandmarkParams(bands=1))
    three = extract_peaks(x, LandmarkParams(bands=3))
    assert np.mean(one.lf > top) < 0.1
    assert np.mean(three.lf > top) > 0.2
    assert len(three) <= 6 * 12 + 12  # the cap still holds (rounded up per band)


def test_anchor_peaks_recover_the_anchors_of_stored_hashes() -> None:
    rng = np.random.default_rng(8)
    p = Peaks(np.sort(rng.uniform(0, 600, 200)), rng.uniform(0, 45, 200), np.ones(200), 600)
    h, t = hash_peaks(p)
    back = anchor_peaks(h, np.rint(t), 600)
    anchors = {(round(float(a)), int(b // 0.5)) for a, b in zip(p.t, p.lf, strict=True)}
    got = {(round(float(a)), int(b // 0.5)) for a, b in zip(back.t, back.lf, strict=True)}
    assert got and got <= anchors and back.frames == 600
