"""Offset voting: anchors vote once, the dense-cell filter loses nothing, hypotheses are found."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from forensics.audio.landmarks import LandmarkParams, Peaks, hash_peaks, landmarks
from forensics.audio.match import Variant, _dense, default_variants, vote


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
