"""Offset voting: turn hash hits into aligned matches with a speed estimate.

For every (time scale, pitch scale) hypothesis in :func:`default_variants`, the query's
landmarks are hashed under that hypothesis and looked up. Each hit says "reference frame
``r`` of work ``w`` lines up with query frame ``q``"; under the right hypothesis the true
work collects many hits with the same offset ``r − time_scale·q``, while chance hits
scatter. Votes are counted per (work, offset) with a ±1-frame tolerance; the best cell
of each work, over all hypotheses, is its score. The matched hits then give, by a
least-squares line, the speed factor and the aligned spans in both files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from forensics.audio.landmarks import LandmarkParams, Peaks, hash_peaks

__all__ = ["Candidate", "Variant", "default_variants", "vote"]

IntArray = npt.NDArray[np.int64]
Lookup = Callable[[npt.NDArray[np.uint32]], tuple[IntArray, npt.NDArray[np.uint32]]]
"""``lookup(hashes) -> (query_positions, values)``: every index entry whose key equals
``hashes[query_positions[i]]``, with its stored value (global frame)."""

_OFFSET_BIAS = 1 << 31


@dataclass(frozen=True)
class Variant:
    """A speed hypothesis: the query's time axis is ``time_scale`` × the reference's rate.

    ``time_scale > 1`` means the query plays faster than the reference (its 1 s holds
    ``time_scale`` s of the reference); ``pitch_scale > 1`` means its pitch is higher.
    A speed change moves both, a tempo change only time, a pitch shift only pitch.
    """

    time_scale: float
    pitch_scale: float


def default_variants(max_change: float = 0.06, step: float = 0.015) -> list[Variant]:
    """Hypotheses covering speed, tempo and pitch changes up to ``±max_change``.

    Parameters
    ----------
    max_change : float
        Largest relative change searched (0.06 covers ±5 % speed/tempo and ±1 semitone).
    step : float
        Grid step; the hash cells tolerate about half of it.

    Returns
    -------
    list of Variant
        The identity first, then speed (time and pitch together), tempo (time only) and
        pitch (pitch only) changes.

    Examples
    --------
    >>> v = default_variants(0.03, 0.015)
    >>> len(v), v[0]
    (13, Variant(time_scale=1.0, pitch_scale=1.0))
    """
    n = round(max_change / step)
    scales = [1.0 + k * step for k in range(-n, n + 1) if k != 0]
    out = [Variant(1.0, 1.0)]
    out += [Variant(s, s) for s in scales]
    out += [Variant(s, 1.0) for s in scales]
    out += [Variant(1.0, s) for s in scales]
    return out


@dataclass(frozen=True)
class Candidate:
    """The best alignment found for one work.

    Attributes
    ----------
    work : int
        Index of the work in the ``bases`` given to :func:`vote`.
    votes : int
        Distinct hash values agreeing on the offset (±1 frame) under the best hypothesis:
        the score.
    variant : Variant
        The hypothesis that won.
    speed : float
        Fitted ratio of reference time to query time over the matched hits.
    query_start, query_end : float
        Matched region of the query, in frames.
    ref_start, ref_end : float
        The same region mapped into the reference, in frames of the reference.
    residual : float
        Root-mean-square deviation of the hits from the fitted line, frames.
    """

    work: int
    votes: int
    variant: Variant
    speed: float
    query_start: float
    query_end: float
    ref_start: float
    ref_end: float
    residual: float


def vote(
    peaks: Peaks,
    lookup: Lookup,
    bases: npt.NDArray[np.int64],
    *,
    params: LandmarkParams | None = None,
    variants: Sequence[Variant] | None = None,
    alive: npt.NDArray[np.bool_] | None = None,
    top_k: int = 5,
    fan_out: int | None = None,
    min_votes: int = 2,
) -> list[Candidate]:
    """Vote the query's landmarks against an index; the best candidate per work.

    Parameters
    ----------
    peaks : Peaks
        The query's peaks.
    lookup : callable
        See :data:`Lookup`.
    bases : numpy.ndarray of int64
        Sorted first global frame of each work; a value ``v`` belongs to the last work
        whose base is ``<= v``.
    params : LandmarkParams, optional
        Fingerprint parameters.
    variants : sequence of Variant, optional
        Hypotheses; :func:`default_variants` when omitted.
    alive : numpy.ndarray of bool, optional
        ``alive[w]`` false hides work ``w`` (removed, not yet compacted away).
    top_k : int
        How many works to return at most.
    fan_out : int, optional
        Pairs per anchor of the query; ``params.query_fan_out`` when omitted.
    min_votes : int
        Works scoring less are not considered (the decision threshold, when known).

    Returns
    -------
    list of Candidate
        Best first, at most ``top_k``; works with fewer than ``min_votes`` (at least 2)
        votes are omitted.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> t = np.sort(rng.uniform(0, 600, 300)); lf = rng.uniform(0, 40, 300)
    >>> ref = Peaks(t, lf, np.ones(300), 600)
    >>> keys, times = hash_peaks(ref)
    >>> vals = np.rint(times).astype(np.uint32) + 1000
    >>> def lookup(h):
    ...     qi, ri = np.nonzero(h[:, None] == keys[None, :])
    ...     return qi.astype(np.int64), vals[ri]
    >>> sel = (t >= 200) & (t < 400)
    >>> query = Peaks(t[sel] - 200, lf[sel], np.ones(sel.sum()), 200)
    >>> best = vote(query, lookup, np.array([1000]), variants=[Variant(1.0, 1.0)])[0]
    >>> best.work, round(best.ref_start - best.query_start)
    (0, 200)
    """
    p = params or LandmarkParams()
    fan_out = p.query_fan_out if fan_out is None else fan_out
    variants = list(variants) if variants is not None else default_variants()
    best: dict[int, tuple[int, Variant, IntArray, IntArray, npt.NDArray[np.float64]]] = {}
    for variant in variants:
        hashes, qtimes = hash_peaks(
            peaks, p, time_scale=variant.time_scale, pitch_scale=variant.pitch_scale, fan_out=fan_out
        )
        if hashes.size == 0:
            continue
        qpos, values = lookup(hashes)
        if qpos.size == 0:
            continue
        vals = values.astype(np.int64)
        work = np.maximum(np.searchsorted(bases, vals, side="right") - 1, 0)
        if alive is not None:
            keep = alive[work]
            qpos, vals, work = qpos[keep], vals[keep], work[keep]
            if qpos.size == 0:
                continue
        qt = qtimes[qpos]
        local = vals - bases[work]
        offset = local - np.rint(qt * variant.time_scale).astype(np.int64)
        keys = (work << 32) | (offset + _OFFSET_BIAS)
        # a hash value votes once per (work, offset): a held chord repeats the same few
        # hashes at a steady rhythm and would otherwise pile up chance votes
        order = np.lexsort((hashes[qpos], keys))
        ks, hs = keys[order], hashes[qpos][order]
        first = np.ones(len(ks), dtype=bool)
        first[1:] = (ks[1:] != ks[:-1]) | (hs[1:] != hs[:-1])
        uk, counts = np.unique(ks[first], return_counts=True)
        smooth = counts.copy()
        for d in (-1, 1):
            nb = np.searchsorted(uk, uk + d)
            nb_ok = nb < len(uk)
            hit = np.zeros(len(uk), dtype=bool)
            hit[nb_ok] = uk[nb[nb_ok]] == uk[nb_ok] + d
            smooth[hit] += counts[nb[hit]]
        # best offset per work
        wk = uk >> 32
        order = np.lexsort((-smooth, wk))
        head = np.ones(len(order), dtype=bool)
        head[1:] = wk[order][1:] != wk[order][:-1]
        tops = order[head]
        tops = tops[smooth[tops] >= max(2, min_votes)]
        tops = tops[np.argsort(-smooth[tops], kind="stable")[:top_k]]
        for idx in tops:
            w, v = int(wk[idx]), int(smooth[idx])
            if w in best and best[w][0] >= v:
                continue
            centre = int(uk[idx])
            sel = np.abs(keys - centre) <= 1
            best[w] = (v, variant, qpos[sel], local[sel], qt[sel])
    ranked = sorted(best.items(), key=lambda kv: -kv[1][0])[:top_k]
    return [_candidate(w, *entry) for w, entry in ranked]


def _candidate(
    work: int,
    votes: int,
    variant: Variant,
    qpos: IntArray,
    local: IntArray,
    qt: npt.NDArray[np.float64],
) -> Candidate:
    del qpos
    ref = local.astype(np.float64)
    q0, q1 = float(qt.min()), float(qt.max())
    if q1 - q0 > 1e-6 and len(qt) >= 3:
        slope, intercept = np.polyfit(qt, ref, 1)
        # a fit over a short span is noisy: keep it within 2 % of the hypothesis
        slope = float(np.clip(slope, variant.time_scale * 0.98, variant.time_scale * 1.02))
        intercept = float(np.median(ref - slope * qt))
    else:
        slope = variant.time_scale
        intercept = float(np.median(ref - slope * qt))
    resid = float(np.sqrt(np.mean((ref - (intercept + slope * qt)) ** 2)))
    return Candidate(
        work=work,
        votes=votes,
        variant=variant,
        speed=slope,
        query_start=q0,
        query_end=q1,
        ref_start=intercept + slope * q0,
        ref_end=intercept + slope * q1,
        residual=resid,
    )
