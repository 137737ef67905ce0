"""Offset voting: anchors vote once, the dense-cell filter loses nothing, hypotheses are found."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from forensics.audio.landmarks import (
    LandmarkParams,
    Peaks,
    analysis_bins,
    extract_peaks,
    hash_peaks,
    landmarks,
)
from forensics.audio.match import (
    FIT_VOTES,
    Candidate,
    Variant,
    _candidate,
    _dense,
    default_variants,
    spectral_evidence,
    speed_slack,
    verify,
    vote,
)
from tests.forensics.audio.conftest import synth_music


def _random_peaks(seed: int, seconds: float = 60.0, per_second: float = 12.0) -> Peaks:
    rng = np.random.default_rng(seed)
    n = int(seconds * per_second)
    frames = seconds / LandmarkParams().frame_seconds
    t = np.sort(rng.uniform(0, frames, n))
    return Peaks(t, rng.uniform(1, 44, n), np.ones(n), int(frames))


def _index(refs: list[Peaks]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keys, vals, bases, base = [], [], [], 0
    for p in refs:
        h, t = hash_peaks(p)
        keys.append(h)
        vals.append(np.rint(t).astype(np.int64) + base)
        bases.append(base)
        base += p.frames + 1024
    k, v = np.concatenate(keys), np.concatenate(vals)
    order = np.argsort(k, kind="stable")
    return k[order], v[order].astype(np.uint32), np.array(bases, dtype=np.int64)


Lookup = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _lookup(keys: np.ndarray, vals: np.ndarray) -> Lookup:
    def lookup(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.searchsorted(keys, h, "left"), np.searchsorted(keys, h, "right")
        c = hi - lo
        pos = np.repeat(lo - np.cumsum(c) + c, c) + np.arange(c.sum())
        return np.repeat(np.arange(len(h)), c).astype(np.int64), vals[pos]

    return lookup


def _excerpt(p: Peaks, start: float, length: float, speed: float = 1.0) -> Peaks:
    sel = (p.t >= start) & (p.t < start + length)
    return Peaks(
        (p.t[sel] - start) / speed, p.lf[sel] + 12 * np.log2(speed), p.strength[sel], int(length / speed)
    )


def test_excerpt_of_the_right_work_wins_with_its_offset() -> None:
    refs = [_random_peaks(s) for s in range(4)]
    keys, vals, bases = _index(refs)
    best = vote(_excerpt(refs[2], 1000.0, 600.0), _lookup(keys, vals), bases)[0]
    assert best.work == 2 and best.variant == Variant(1.0, 1.0)
    assert abs(best.ref_start - best.query_start - 1000.0) <= 1.0
    assert best.votes == best.anchors  # the score counts distinct query anchors


@pytest.mark.parametrize("speed", [0.955, 1.045])
def test_speed_change_is_found_by_its_hypothesis(speed: float) -> None:
    refs = [_random_peaks(s) for s in range(3)]
    keys, vals, bases = _index(refs)
    best = vote(_excerpt(refs[1], 500.0, 900.0, speed), _lookup(keys, vals), bases)[0]
    assert best.work == 1
    assert abs(best.speed - speed) < 0.01
    assert abs(best.variant.time_scale - speed) <= 0.016


def test_an_anchor_votes_once_however_many_of_its_triplets_match() -> None:
    peaks = _random_peaks(7, seconds=5.0)
    lm = landmarks(peaks, fan_out=LandmarkParams().query_fan_out)
    h, which = lm.hashes()
    times = lm.anchor_t[which]
    two = np.unique(times)[:2]  # the first two anchors match with all of their triplets
    table = {int(x): int(np.rint(t)) + 100 for x, t in zip(h, times, strict=True) if t in two}
    assert len(table) >= 2 * len(two)  # more matching triplets than anchors

    def lookup(needles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.array([i for i, x in enumerate(needles) if int(x) in table], dtype=np.int64)
        return pos, np.array([table[int(needles[i])] for i in pos], dtype=np.uint32)

    best = vote(peaks, lookup, np.array([0], dtype=np.int64), variants=[Variant(1.0, 1.0)])[0]
    assert best.votes == 2 and best.anchors == 2


def test_dense_filter_keeps_every_dense_cell() -> None:
    rng = np.random.default_rng(3)
    chance = rng.integers(0, 1 << 40, 200_000)  # scattered chance hits
    planted = np.repeat(np.array([123_456_789, 987_654_321]), 12) + rng.integers(-1, 2, 24)
    keys = np.concatenate([chance, planted]).astype(np.int64)
    keep = _dense(keys, 10)
    assert keep[len(chance) :].all()
    assert keep[: len(chance)].mean() < 0.01
    assert _dense(keys, 100).sum() == 0


def test_filtering_does_not_change_the_decision() -> None:
    refs = [_random_peaks(s) for s in range(5)]
    keys, vals, bases = _index(refs)
    q = _excerpt(refs[4], 200.0, 300.0)
    loose = vote(q, _lookup(keys, vals), bases, min_votes=2)
    strict = vote(q, _lookup(keys, vals), bases, min_votes=10)
    assert [c for c in loose if c.votes >= 10] == strict
    assert strict and strict[0].work == 4


def test_default_variants_grid() -> None:
    v = default_variants()
    assert len(v) == len(set(v)) == 25
    scales = sorted({x.time_scale for x in v})
    assert min(scales) == pytest.approx(0.94) and max(scales) == pytest.approx(1.06)


def test_speed_slack_is_half_the_grid_step() -> None:
    assert speed_slack(default_variants()) == pytest.approx(0.0075)
    assert speed_slack(default_variants(0.06, 0.02)) == pytest.approx(0.01)
    assert speed_slack([Variant(1.0, 1.0), Variant(1.0, 1.03)]) == pytest.approx(0.0075)  # pitch only


@pytest.mark.parametrize(
    ("slope", "votes", "expected"),
    [
        (1.004, FIT_VOTES, 1.004),  # enough hits: fitted
        (1.03, FIT_VOTES, 1.0075),  # a fit beyond half a grid step is held at it
        (0.97, FIT_VOTES + 5, 0.9925),
        (1.004, FIT_VOTES - 1, 1.0),  # too few hits to fit a line: the hypothesis's speed
        (1.03, 3, 1.0),
    ],
)
def test_candidate_speed_is_fitted_only_from_enough_votes(slope: float, votes: int, expected: float) -> None:
    qt = np.linspace(0.0, 3000.0, votes)
    local = np.rint(500.0 + slope * qt).astype(np.int64)
    c = _candidate(0, votes, Variant(1.0, 1.0), local, qt, 0.0075)
    assert c.speed == pytest.approx(expected, abs=2e-4)
    # the offset is the median of the hits under that speed
    assert abs(np.median(local - (c.ref_start + c.speed * (qt - c.query_start)))) <= 1e-6


# -- peak-level verification ------------------------------------------------------------------


def _ref_and_query(seed: int = 3) -> tuple[Peaks, Peaks]:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 3000, 1200))
    lf = rng.uniform(0, 45, 1200)
    ref = Peaks(t, lf, np.ones(1200), 3000)
    sel = (t >= 1000) & (t < 1300)
    return ref, Peaks(t[sel] - 1000, lf[sel], np.ones(int(sel.sum())), 300)


def _cand(offset: float, speed: float = 1.0, pitch: float = 1.0) -> Candidate:
    return Candidate(0, 5, Variant(speed, pitch), speed, 0.0, 299.0, offset, offset + 299.0 * speed, 0.0)


def test_verify_separates_the_true_alignment_from_others() -> None:
    ref, q = _ref_and_query()
    true = verify(q, _cand(1000.0), ref)
    assert true.matched == true.expected > 100 and true.significance > 50
    for offset in (0.0, 400.0, 2000.0, 1010.0):  # 10 frames off is already wrong
        wrong = verify(q, _cand(offset), ref)
        assert wrong.significance < 4, (offset, wrong)


def test_verify_counts_single_surviving_peaks() -> None:
    ref, q = _ref_and_query()
    rng = np.random.default_rng(1)
    keep = rng.random(len(q)) < 0.3  # 70 % of the peaks lost (reverb, a voice-over) ...
    noise_t, noise_f = rng.uniform(0, 300, 400), rng.uniform(0, 45, 400)  # ... and many added
    lossy = Peaks(
        np.concatenate([q.t[keep], noise_t]),
        np.concatenate([q.lf[keep], noise_f]),
        np.ones(int(keep.sum()) + 400),
        300,
    )
    v = verify(lossy, _cand(1000.0), ref)
    assert v.matched >= 0.3 * v.expected - 5 and v.significance > 8
    assert verify(lossy, _cand(2000.0), ref).significance < 4


def test_verify_maps_speed_and_pitch() -> None:
    ref, q = _ref_and_query()
    fast = Peaks(q.t / 1.04, q.lf + 12 * np.log2(1.03), q.strength, int(300 / 1.04))
    v = verify(fast, _cand(1000.0, speed=1.04, pitch=1.03), ref)
    assert v.matched >= 0.95 * v.expected
    assert verify(fast, _cand(1000.0), ref).significance < v.significance / 4


def test_verify_discounts_held_notes() -> None:
    # a query whose peaks all sit on the reference's most common frequency matches many
    # reference peaks by chance: the significance must stay low
    rng = np.random.default_rng(2)
    t = np.sort(rng.uniform(0, 3000, 600))
    ref = Peaks(t, np.full(600, 20.0), np.ones(600), 3000)
    hum = Peaks(np.arange(0, 300, 2.0), np.full(150, 20.0), np.ones(150), 300)
    v = verify(hum, _cand(500.0), ref)
    assert v.matched > 30 and v.chance > 0.8 * v.matched and v.significance < 3


def test_verify_on_empty_inputs() -> None:
    ref, q = _ref_and_query()
    empty = Peaks(np.zeros(0), np.zeros(0), np.zeros(0), 300)
    assert verify(empty, _cand(1000.0), ref).significance == 0.0
    assert verify(q, _cand(1000.0), empty).significance == 0.0
    assert verify(q, _cand(-5000.0), ref).expected == 0


def test_verify_counts_a_matched_chord_once() -> None:
    # unrelated music coincides in clusters: one chord matches all its peaks at once. The
    # same number of matched peaks is much weaker evidence packed in a few chords than
    # spread over as many frames.
    rng = np.random.default_rng(4)
    frames = np.arange(0.0, 3000.0, 6.0)
    base = rng.uniform(0, 30, len(frames))
    chord = np.array([0.0, 4.0, 7.0, 12.0])
    ref = Peaks(np.repeat(frames, 4), (base[:, None] + chord).ravel(), np.ones(4 * len(frames)), 3000)
    span = np.flatnonzero((ref.t >= 1000) & (ref.t < 1300))
    noise_t, noise_f = rng.uniform(0, 300, 40), rng.uniform(0, 45, 40)

    def query(picked: np.ndarray) -> Peaks:
        t = np.concatenate([ref.t[picked] - 1000 + rng.uniform(-0.5, 0.5, len(picked)), noise_t])
        order = np.argsort(t)
        lf = np.concatenate([ref.lf[picked], noise_f])
        return Peaks(t[order], lf[order], np.ones(len(t)), 300)

    chords = span[: 5 * 4]  # all four peaks of five chords
    spread = span[::4][:20] + rng.integers(0, 4, 20)  # one peak of each of twenty chords
    packed = verify(query(chords), _cand(1000.0), ref)
    apart = verify(query(spread), _cand(1000.0), ref)
    assert packed.peaks_matched >= 20 and apart.peaks_matched >= 20
    assert packed.matched <= 8 and apart.matched >= 20
    assert packed.expected == apart.expected == 50 and packed.peaks == 200
    assert apart.significance > packed.significance + 5
    assert packed.significance < 4


# -- spectral evidence ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def masked() -> tuple[Peaks, Peaks]:
    """A registered song's peaks, and a 5-s excerpt of it (from 10 s) under another, 3x louder, song."""
    song, other = synth_music(11, 30.0), synth_music(12, 30.0)
    excerpt = song[8000 * 10 : 8000 * 15]
    return extract_peaks(song), extract_peaks(excerpt + 3.0 * other[: len(excerpt)], query=True)


def _at(offset: float, q: Peaks) -> Candidate:
    return Candidate(0, 5, Variant(1.0, 1.0), 1.0, 0.0, q.frames - 1.0, offset, offset + q.frames - 1.0, 0.0)


def test_spectral_evidence_counts_components_that_lost_their_peaks(masked: tuple[Peaks, Peaks]) -> None:
    ref, q = masked
    # the query's peak picker lost every peak (all went to the louder sound): the spectrum remains
    bare = Peaks(np.zeros(0), np.zeros(0), np.zeros(0), q.frames, evidence=q.evidence)
    true = verify(bare, _at(625.0, q), ref)
    assert true.peak_significance == 0.0 and true.spectral > 3.0
    assert true.significance == true.spectral
    for offset in (0.0, 300.0, 631.0, 700.0, 1200.0):  # six frames off is already wrong
        assert verify(bare, _at(offset, q), ref).spectral < 1.5, offset
    # with its peaks, both checks add up
    full = verify(q, _at(625.0, q), ref)
    assert full.peak_significance > 5.0 and full.spectral > 3.0
    assert full.significance == pytest.approx(full.peak_significance + full.spectral)


def test_verify_without_an_evidence_map_scores_the_peaks_only(masked: tuple[Peaks, Peaks]) -> None:
    ref, q = masked
    plain = Peaks(q.t, q.lf, q.strength, q.frames)
    v = verify(plain, _at(625.0, q), ref)
    assert v.spectral == 0.0 and v.significance == v.peak_significance > 5.0
    assert v.peak_significance == pytest.approx(verify(q, _at(625.0, q), ref).peak_significance)


def test_spectral_evidence_discounts_a_steady_column() -> None:
    # a hum that stands out in one column all the time is no evidence of any alignment
    lo, _ = analysis_bins(LandmarkParams())
    ev = np.zeros((300, 443), dtype=np.int8)
    ev[:, 119 - lo] = 60
    lf = np.full(20, 12 * np.log2(119 * 8000 / 1024 / 250))
    t = np.arange(20) * 15.0
    assert spectral_evidence(ev, t, lf, np.arange(20)) == 0.0
    ev[::15, 119 - lo] = 80  # louder exactly at the reference's peaks: evidence again
    assert spectral_evidence(ev, t, lf, np.arange(20)) > 10.0


def test_spectral_evidence_on_degenerate_input() -> None:
    ev = np.full((300, 443), 20, dtype=np.int8)
    none = np.zeros(0)
    assert spectral_evidence(ev, none, none, np.zeros(0, dtype=np.int64)) == 0.0
    t, lf, frame = np.array([-5.0, 400.0]), np.array([10.0, 10.0]), np.array([0, 1])
    assert spectral_evidence(ev, t, lf, frame) == 0.0  # outside the query in time
    assert spectral_evidence(ev, np.array([5.0]), np.array([70.0]), np.array([0])) == 0.0  # above the band
    assert spectral_evidence(ev[:1], np.array([0.0]), np.array([10.0]), np.array([0])) == 0.0  # one frame
