"""Temporal alignment of a query with the works: Hough voting over (offset, speed), then verification.

Pure functions over arrays; the index supplies the candidate frame pairs (the nearest
registered hashes of each query frame and of its mirror image) and the works' codes.

1. **Voting.** Each candidate pair (query frame at ``tq``, work frame at ``tr``) votes, for
   every speed hypothesis ``s`` (work seconds per query second), for the offset
   ``tr − s·tq``, in bins of :attr:`AlignParams.bin_seconds`; a hypothesis counts the
   distinct query frames in its bin and the two next to it (a still scene, whose one query
   frame matches many work frames, votes once).
2. **Verification.** The strongest hypotheses are refitted (least squares over the pairs
   that voted for them) and checked frame by frame: each query frame is compared with the
   work frame the alignment predicts (and its two neighbours). Matched frames closer than
   :attr:`AlignParams.max_gap_seconds` form a span; its score is the number of matched
   seconds.
3. **Selection.** Alignments of one work that overlap in the query are kept once (the
   best); different works, or one work used twice, each give an alignment.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> work = rng.integers(0, 256, (200, 32), dtype=np.uint8)
>>> q = work[80:120]                      # query: work seconds 20-30 at 4 frames per second
>>> qi = np.repeat(np.arange(40), 1); rj = qi + 80
>>> pairs = Pairs(qi, np.zeros(40, np.int8), np.zeros(40, np.int64), rj, np.zeros(40, np.int16))
>>> query = QueryCodes(q, q[:, ::-1], np.ones(40, bool), 4.0)
>>> (a,) = align(query, pairs, lambda w: (work, np.ones(200, bool)), AlignParams())
>>> a.ref_start - a.query_start, a.speed, a.score
(20.0, 1.0, 10.0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = ["AlignParams", "Alignment", "Pairs", "QueryCodes", "align", "popcount_rows"]


def popcount_rows(xor: NDArray[np.uint8]) -> NDArray[np.int64]:
    """Set bits per row of a ``(..., bytes)`` array.

    Rows whose width is a multiple of 8 bytes are counted 64 bits at a time
    (``np.bitwise_count``, the CPU's popcount): 7× faster than a table per byte.

    Examples
    --------
    >>> import numpy as np
    >>> popcount_rows(np.array([[255, 1], [0, 0]], np.uint8)).tolist()
    [9, 0]
    >>> popcount_rows(np.full((1, 32), 255, np.uint8)).tolist()
    [256]
    """
    if xor.shape[-1] % 8 == 0:
        words = np.ascontiguousarray(xor).view(np.uint64)
        return np.asarray(np.bitwise_count(words).sum(axis=-1, dtype=np.int64), dtype=np.int64)
    return np.asarray(np.bitwise_count(xor).sum(axis=-1, dtype=np.int64), dtype=np.int64)


@dataclass(frozen=True)
class AlignParams:
    """Parameters of the alignment.

    Attributes
    ----------
    speeds : tuple of float
        Speed hypotheses voted on (work seconds per query second).
    bin_seconds : float
        Width of an offset bin.
    frame_bits : int
        Most differing bits for a query frame to match the work frame it is aligned with.
    min_votes : int
        Fewest distinct query frames a hypothesis needs to be verified.
    hypotheses : int
        Most hypotheses verified per query.
    max_gap_seconds : float
        Longest run of unmatched query time inside one span.
    min_matched : int
        Fewest matched frames in a span.
    """

    speeds: tuple[float, ...] = (0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25)
    bin_seconds: float = 0.5
    frame_bits: int = 72
    min_votes: int = 3
    hypotheses: int = 24
    max_gap_seconds: float = 3.0
    min_matched: int = 4


@dataclass(frozen=True)
class QueryCodes:
    """A query's per-frame hashes: as decoded, mirrored, valid flags, frames per second."""

    codes: NDArray[np.uint8]
    mirror: NDArray[np.uint8]
    valid: NDArray[np.bool_]
    rate: float


@dataclass(frozen=True)
class Pairs:
    """Candidate frame pairs: query frame, variant (0 as decoded, 1 mirrored), work row, work frame, bits."""

    query_frame: NDArray[np.int64]
    variant: NDArray[np.int8]
    work: NDArray[np.int64]
    work_frame: NDArray[np.int64]
    bits: NDArray[np.int16]


@dataclass(frozen=True)
class Alignment:
    """A query span aligned with a span of one work.

    Times in seconds; the query's ``query_start .. query_end`` shows the work's
    ``ref_start .. ref_end`` at ``speed`` (work seconds per query second), mirrored when
    ``flip``.
    """

    work: int
    flip: bool
    speed: float
    offset: float
    query_start: float
    query_end: float
    ref_start: float
    ref_end: float
    matched: int
    compared: int
    score: float
    mean_bits: float = 0.0
    per_second: tuple[float, ...] = field(default=())
    pairs: tuple[tuple[float, float, int], ...] = field(default=())


WorkCodes = Callable[[int], tuple[NDArray[np.uint8], NDArray[np.bool_]]]


def _hypotheses(query: QueryCodes, pairs: Pairs, params: AlignParams) -> list[tuple[int, int, int, float]]:
    """The strongest ``(work, variant, speed index, offset)`` hypotheses, best first."""
    if len(pairs.query_frame) == 0:
        return []
    qt = pairs.query_frame / query.rate
    rt = pairs.work_frame / query.rate
    speeds = np.asarray(params.speeds)
    offs = rt[None, :] - speeds[:, None] * qt[None, :]  # (speeds, pairs)
    bins = np.floor(offs / params.bin_seconds).astype(np.int64)
    lo = int(bins.min()) - 1
    nb = int(bins.max()) - lo + 2
    si = np.repeat(np.arange(len(speeds)), len(qt))
    base = (
        (np.tile(pairs.work, len(speeds)) * 2 + np.tile(pairs.variant, len(speeds))) * len(speeds) + si
    ) * nb
    keys = base + (bins.ravel() - lo)
    # distinct query frames per key
    frame = np.tile(pairs.query_frame, len(speeds))
    uniq = np.unique(np.stack([keys, frame], axis=1), axis=0)
    k, counts = np.unique(uniq[:, 0], return_counts=True)
    votes = dict(zip(k.tolist(), counts.tolist(), strict=True))
    # smooth over neighbouring bins (same work, variant and speed)
    scored = []
    for key, c in votes.items():
        total = c + votes.get(key - 1, 0) + votes.get(key + 1, 0)
        if total >= params.min_votes:
            scored.append((total, c, key))
    scored.sort(reverse=True)
    out: list[tuple[int, int, int, float]] = []
    taken: set[int] = set()
    flat_offs = offs.ravel()
    for _total, _c, key in scored:
        if key in taken or key - 1 in taken or key + 1 in taken:
            continue
        taken.add(key)
        sel = (keys >= key - 1) & (keys <= key + 1)
        rest = key // nb
        rest, s_idx = divmod(rest, len(speeds))
        work, variant = divmod(rest, 2)
        out.append((int(work), int(variant), int(s_idx), float(np.median(flat_offs[sel]))))
        if len(out) >= params.hypotheses:
            break
    return out


#: How far outside the searched speeds a least-squares refit may land and still be used.
REFIT_SLACK = 0.05


def _refit(
    query: QueryCodes, pairs: Pairs, work: int, variant: int, speed: float, offset: float, params: AlignParams
) -> tuple[float, float]:
    """Least-squares speed and offset over the pairs within 1 s of the hypothesis.

    A fitted speed outside the searched ones (±5 %) is no finding: the votes can only have
    gathered at a speed they searched, so a fit far from every one is a line through
    chance pairs (an unrelated clip's pan fitted at 0.45), and the hypothesis stands as voted.
    """
    sel = (pairs.work == work) & (pairs.variant == variant)
    qt = pairs.query_frame[sel] / query.rate
    rt = pairs.work_frame[sel] / query.rate
    near = np.abs(rt - (offset + speed * qt)) <= 1.0
    qt, rt = qt[near], rt[near]
    if len(qt) < 6 or float(qt.max() - qt.min()) < 3.0:
        return speed, offset
    s, o = np.polyfit(qt, rt, 1)
    if not min(params.speeds) * (1 - REFIT_SLACK) <= s <= max(params.speeds) * (1 + REFIT_SLACK):
        return speed, offset
    return float(s), float(o)


def _distances(
    query: QueryCodes,
    variant: int,
    ref: NDArray[np.uint8],
    ref_valid: NDArray[np.bool_],
    speed: float,
    offset: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Bits from each query frame to its aligned work frame: best of it and its two neighbours,
    and to that frame exactly; NaN where the alignment falls outside the work."""
    codes = query.mirror if variant else query.codes
    n = len(codes)
    qt = np.arange(n) / query.rate
    j = np.rint((offset + speed * qt) * query.rate).astype(np.int64)
    best = np.full(n, 256.0)
    exact = best
    for delta in (0, -1, 1):
        jj = np.clip(j + delta, 0, len(ref) - 1)
        d = popcount_rows(np.bitwise_xor(codes, ref[jj])).astype(np.float64)
        d[~ref_valid[jj]] = 256.0
        if delta == 0:
            exact = d.copy()
        best = np.minimum(best, d)
    outside = (j < -1) | (j > len(ref))
    for arr in (best, exact):
        arr[~query.valid] = 256.0
        arr[outside] = np.nan
    return best, exact


#: The grid :func:`_polish` searches around a fit, nearest the fit first (a flat cost keeps
#: the fit): ±5 % speed in 1 % steps, ±0.25 s offset in 1/16 s steps.
_GRID = sorted(
    ((float(ds), float(do)) for ds in np.linspace(-0.05, 0.05, 11) for do in np.linspace(-0.25, 0.25, 9)),
    key=lambda g: abs(g[0]) / 0.05 + abs(g[1]) / 0.25,
)
_GRID_SPEED = np.array([g[0] for g in _GRID])
_GRID_OFFSET = np.array([g[1] for g in _GRID])
#: Query frames × grid points compared in one batch of :func:`_polish` (bounds its memory
#: to about 8 MB of 32-byte codes however long the query).
_POLISH_BATCH = 1 << 18


def _polish(
    query: QueryCodes,
    variant: int,
    ref: NDArray[np.uint8],
    ref_valid: NDArray[np.bool_],
    speed: float,
    offset: float,
) -> tuple[float, float]:
    """The speed and offset near a fit that bring the query's frames closest to the work's.

    A grid of ±5 % speed (1 % steps) and ±0.25 s offset (1/16 s steps), scored by the mean
    bits from each query frame to exactly the work frame the alignment predicts (capped at
    128, so frames of other content weigh alike). The grid points are scored together,
    in batches of whole points.
    """
    codes = query.mirror if variant else query.codes
    n = len(codes)
    qt = np.arange(n) / query.rate
    costs = np.full(len(_GRID), np.inf)
    step = max(1, _POLISH_BATCH // max(n, 1))
    for lo in range(0, len(_GRID), step):
        s = speed + _GRID_SPEED[lo : lo + step, None]
        o = offset + _GRID_OFFSET[lo : lo + step, None]
        # the exact-frame distances of _distances, without the neighbours this cost ignores
        j = np.rint((o + s * qt) * query.rate).astype(np.int64)  # (points, frames)
        inside = (j >= -1) & (j <= len(ref))
        jj = np.clip(j, 0, len(ref) - 1)
        exact = np.minimum(popcount_rows(np.bitwise_xor(codes, ref[jj])), 128)
        exact[~ref_valid[jj] | ~query.valid] = 128  # 256, capped
        count = np.count_nonzero(inside, axis=1)
        total = np.where(inside, exact, 0).sum(axis=1, dtype=np.int64)
        ok = count >= 4
        costs[lo : lo + step][ok] = total[ok] / count[ok]
    best = (np.inf, speed, offset)
    for (ds, do), cost in zip(_GRID, costs.tolist(), strict=True):
        if cost < best[0] - 1e-9:
            best = (cost, speed + ds, offset + do)
    return round(best[1], 4), round(best[2], 4)


def _spans(matched: NDArray[np.bool_], gap: int) -> list[tuple[int, int]]:
    """Runs ``[first, last]`` of matched frames whose gaps are at most ``gap`` frames."""
    idx = np.flatnonzero(matched)
    if len(idx) == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > gap + 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(idx) - 1]])
    return [(int(idx[s]), int(idx[e])) for s, e in zip(starts, ends, strict=True)]


def _alignment(
    query: QueryCodes,
    work: int,
    variant: int,
    speed: float,
    offset: float,
    d: NDArray[np.float64],
    exact: NDArray[np.float64],
    span: tuple[int, int],
    params: AlignParams,
) -> Alignment:
    first, last = span
    rate = query.rate
    seg = d[first : last + 1]
    compared = int(np.count_nonzero(~np.isnan(seg)))
    matched = int(np.count_nonzero(seg <= params.frame_bits))
    q0, q1 = first / rate, (last + 1) / rate
    sim = np.clip(1.0 - np.nan_to_num(seg, nan=256.0) / 128.0, 0.0, 1.0)
    per_second = tuple(
        round(float(sim[i : i + round(rate)].mean()), 3) for i in range(0, len(sim), max(1, round(rate)))
    )
    hits = np.flatnonzero(seg <= params.frame_bits)
    picks = hits[np.linspace(0, len(hits) - 1, min(5, len(hits))).astype(int)] if len(hits) else hits
    sample = tuple(
        (round((first + i) / rate, 3), round(offset + speed * (first + i) / rate, 3), int(seg[i]))
        for i in picks
    )
    return Alignment(
        work=work,
        flip=bool(variant),
        speed=round(speed, 4),
        offset=round(offset, 3),
        query_start=round(q0, 3),
        query_end=round(q1, 3),
        ref_start=round(offset + speed * q0, 3),
        ref_end=round(offset + speed * q1, 3),
        matched=matched,
        compared=compared,
        score=round(matched / rate, 3),
        mean_bits=round(float(np.nanmean(exact[first : last + 1])), 2) if compared else 256.0,
        per_second=per_second,
        pairs=sample,
    )


def align(query: QueryCodes, pairs: Pairs, work_codes: WorkCodes, params: AlignParams) -> list[Alignment]:
    """Every alignment of the query with a work that the candidate pairs support, best first.

    Parameters
    ----------
    query : QueryCodes
        The query's hashes (as decoded and mirrored) and validity.
    pairs : Pairs
        Candidate frame pairs (from the index's nearest-neighbour search).
    work_codes : callable
        Work row → its codes ``(m, 32)`` and validity ``(m,)`` (same frame rate as the query).
    params : AlignParams
        Voting and verification parameters.

    Returns
    -------
    list of Alignment
        Unthresholded; one per (work, separate query span), by descending score.
    """
    found: list[Alignment] = []
    gap = round(params.max_gap_seconds * query.rate)
    for work, variant, s_idx, offset in _hypotheses(query, pairs, params):
        ref, ref_valid = work_codes(work)
        if len(ref) == 0:
            continue
        speed = params.speeds[s_idx]
        best: list[Alignment] = []
        fits = {(speed, offset), _refit(query, pairs, work, variant, speed, offset, params)}
        fits |= {_polish(query, variant, ref, ref_valid, s, o) for s, o in fits}
        for s, o in fits:
            d, exact = _distances(query, variant, ref, ref_valid, s, o)
            spans = _spans(np.nan_to_num(d, nan=256.0) <= params.frame_bits, gap)
            cands = [_alignment(query, work, variant, s, o, d, exact, sp, params) for sp in spans]
            cands = [c for c in cands if c.matched >= params.min_matched]
            if _quality(cands) > _quality(best):
                best = cands
        found.extend(best)
    found.sort(key=lambda a: (-a.score, a.mean_bits, a.work, a.query_start))
    kept: list[Alignment] = []
    for a in found:
        if not any(k.work == a.work and _overlap(k, a) > 0.5 for k in kept):
            kept.append(a)
    return kept


def _quality(cands: list[Alignment]) -> tuple[float, float]:
    """Matched seconds, then closeness (fewer differing bits), of one hypothesis's spans."""
    if not cands:
        return (0.0, -256.0)
    frames = sum(c.matched for c in cands)
    return (sum(c.score for c in cands), -sum(c.mean_bits * c.matched for c in cands) / frames)


def _overlap(a: Alignment, b: Alignment) -> float:
    """Shared query time as a fraction of the shorter span."""
    inter = min(a.query_end, b.query_end) - max(a.query_start, b.query_start)
    shorter = min(a.query_end - a.query_start, b.query_end - b.query_start)
    return max(0.0, inter) / shorter if shorter > 0 else 0.0
