"""Offset voting: turn hash hits into aligned matches with a speed estimate.

For every (time scale, pitch scale) hypothesis in :func:`default_variants`, the query's
landmarks are hashed under that hypothesis and looked up. Each hit says "reference frame
``r`` of work ``w`` lines up with query frame ``q``"; under the right hypothesis the true
work collects many hits with the same offset ``r − time_scale·q``, while chance hits
scatter. A cell (hypothesis, work, offset ± 1 frame) scores the number of distinct query
anchors with a hit in it — not the number of hits, because one chance match of a local
constellation of peaks (a held chord) gives many triplets of the same anchor at once. The
best cell of each work, over all hypotheses, is its score. The matched hits then give,
by a least-squares line, the speed factor and the aligned spans in both files — when
there are enough of them (:data:`FIT_VOTES`) to determine a line; a few hits would bend
it towards chance coincidences, and the verification that follows would then test an
alignment chosen to fit them, so with fewer hits the hypothesis's own speed is used.
Either way the speed stays within half a grid step of the hypothesis (the true speed of
a query lies that close to some hypothesis of the grid).

Against a large index almost every hit is a chance hit alone in its cell. When the
decision threshold is known, :func:`vote` first drops, in linear time, the hits that
cannot belong to a cell reaching it, so that only a few are sorted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from forensics.audio.landmarks import LandmarkParams, Landmarks, Peaks, analysis_bins, landmarks

__all__ = [
    "FIT_VOTES",
    "Candidate",
    "Variant",
    "Verification",
    "default_variants",
    "frame_hits",
    "spectral_evidence",
    "speed_slack",
    "verify",
    "vote",
]

IntArray = npt.NDArray[np.int64]
Lookup = Callable[[npt.NDArray[np.uint32]], tuple[IntArray, npt.NDArray[np.uint32]]]
"""``lookup(hashes) -> (query_positions, values)``: every index entry whose key equals
``hashes[query_positions[i]]``, with its stored value (global frame)."""

_OFFSET_SHIFT = 33
_OFFSET_BIAS = 1 << 32
FIT_VOTES = 8
"""Votes a candidate needs before its speed is fitted to its hits rather than taken from
its hypothesis (measured on the audio benchmark, index format 6, 2026-12-04; docs/history/audio.md)."""


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


def speed_slack(variants: Sequence[Variant]) -> float:
    """How far a fitted speed may stray from its hypothesis: half the grid's time step.

    The true speed of a query lies within half a step of some hypothesis, so a fit that
    strays further belongs to a neighbouring hypothesis (or to chance hits). With a
    single time scale in the grid, 0.75 % (half the default step).

    Examples
    --------
    >>> speed_slack(default_variants(0.06, 0.015))
    0.0075
    >>> speed_slack([Variant(1.0, 1.0)])
    0.0075
    """
    scales = np.unique([v.time_scale for v in variants])
    if len(scales) < 2:
        return 0.0075
    return round(float(np.min(np.diff(scales))) / 2.0, 6)


@dataclass(frozen=True)
class Candidate:
    """The best alignment found for one work.

    Attributes
    ----------
    work : int
        Index of the work in the ``bases`` given to :func:`vote`.
    votes : int
        Distinct query anchors whose hits agree on the offset (±1 frame) under the best
        hypothesis: the score.
    variant : Variant
        The hypothesis that won.
    speed : float
        Ratio of reference time to query time: fitted to the matched hits when there are
        at least :data:`FIT_VOTES` votes (within :func:`speed_slack` of the hypothesis),
        the hypothesis's ``time_scale`` otherwise.
    query_start, query_end : float
        Matched region of the query, in frames.
    ref_start, ref_end : float
        The same region mapped into the reference, in frames of the reference.
    residual : float
        Root-mean-square deviation of the hits from the fitted line, frames.
    anchors : int
        Distinct query anchor peaks among the aligned hits.
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
    anchors: int = 0


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
        Works scoring less are not considered (the decision threshold, when known);
        above 2 it also enables the linear-time filter of lone chance hits.

    Returns
    -------
    list of Candidate
        Best first, at most ``top_k``; works with fewer than ``min_votes`` (at least 2)
        votes are omitted.

    Examples
    --------
    >>> import numpy as np
    >>> from forensics.audio.landmarks import hash_peaks
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
    slack = speed_slack(variants)
    hits = _hits(landmarks(peaks, p, fan_out=fan_out), variants, lookup)
    if hits is None:
        return []
    var, qt, vals = hits
    scales = np.array([v.time_scale for v in variants])
    shift = np.rint(qt * scales[var]).astype(np.int64)
    if min_votes > 2:
        # works own disjoint ranges of the global frame axis, so (hypothesis, global
        # offset) already tells the cells apart (and a collision would only over-count,
        # which the filter tolerates): filter before resolving the works
        sel = _dense((var << _OFFSET_SHIFT) | (vals - shift + _OFFSET_BIAS), min_votes)
        var, qt, vals, shift = var[sel], qt[sel], vals[sel], shift[sel]
    work = np.maximum(np.searchsorted(bases, vals, side="right") - 1, 0)
    keep = np.ones(len(work), dtype=bool) if alive is None else alive[work]
    var, qt, vals, shift, work = var[keep], qt[keep], vals[keep], shift[keep], work[keep]
    if var.size == 0:
        return []
    local = vals - bases[work]
    # one cell per (hypothesis, work, offset); keys are ordered by hypothesis, work, offset
    keys = ((var * len(bases) + work) << _OFFSET_SHIFT) | (local - shift + _OFFSET_BIAS)
    # each hit votes for its cell and the two next to it (anchor times are rounded), and
    # a query anchor votes once per cell: one chance match of a local constellation of
    # peaks (a held chord) gives many triplets of the same anchor at once
    keys3 = np.concatenate([keys - 1, keys, keys + 1])
    anchor = np.tile(np.unique(qt, return_inverse=True)[1], 3)
    order = np.lexsort((anchor, keys3))
    k_s, a_s = keys3[order], anchor[order]
    first = np.ones(len(k_s), dtype=bool)
    first[1:] = (k_s[1:] != k_s[:-1]) | (a_s[1:] != a_s[:-1])
    uk, smooth = np.unique(k_s[first], return_counts=True)
    # best cell per work over all hypotheses
    wk = (uk >> _OFFSET_SHIFT) % len(bases)
    order = np.lexsort((-smooth, wk))
    head = np.ones(len(order), dtype=bool)
    head[1:] = wk[order][1:] != wk[order][:-1]
    tops = order[head]
    tops = tops[smooth[tops] >= max(2, min_votes)]
    tops = tops[np.argsort(-smooth[tops], kind="stable")[:top_k]]
    out = []
    for idx in tops:
        sel = np.abs(keys - uk[idx]) <= 1
        v = int(uk[idx] >> _OFFSET_SHIFT) // len(bases)
        out.append(_candidate(int(wk[idx]), int(smooth[idx]), variants[v], local[sel], qt[sel], slack))
    return out


def _dense(keys: IntArray, min_votes: int) -> npt.NDArray[np.bool_]:
    """Hits that may belong to a cell with ``min_votes`` votes: a linear-time filter.

    Against a large index most hits are chance hits alone in their cell; sorting them all
    would dominate a query. The hits are counted in buckets of four offsets (hashed into
    a table, so collisions only ever over-count); a cell's ±1 window lies inside two
    neighbouring buckets, so a hit whose bucket and neighbours hold fewer than
    ``min_votes`` hits in all cannot be part of a cell reaching ``min_votes``.
    """
    coarse = (keys >> 2).astype(np.uint64)
    bits = min(24, max(10, len(keys).bit_length() + 1))
    shift = np.uint64(64 - bits)

    def slot(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        return (x * np.uint64(0x9E3779B97F4A7C15)) >> shift

    counts = np.bincount(slot(coarse).astype(np.intp), minlength=1 << bits)
    total = counts[slot(coarse).astype(np.intp)]
    total += counts[slot(coarse - np.uint64(1)).astype(np.intp)]
    total += counts[slot(coarse + np.uint64(1)).astype(np.intp)]
    keep: npt.NDArray[np.bool_] = total >= min_votes
    return keep


def _hits(
    lm: Landmarks, variants: Sequence[Variant], lookup: Lookup
) -> tuple[IntArray, npt.NDArray[np.float64], IntArray] | None:
    """Every index entry matching the query under any hypothesis.

    Returns (hypothesis, query anchor time, stored value) per hit, or ``None``.
    Each distinct hash is looked up once, however many hypotheses produce it.
    """
    hs, vs, ts = [], [], []
    for k, variant in enumerate(variants):
        h, which = lm.hashes(variant.time_scale, variant.pitch_scale)
        hs.append(h)
        vs.append(np.full(len(h), k, dtype=np.int64))
        ts.append(lm.anchor_t[which])
    if not hs or not sum(len(h) for h in hs):
        return None
    h_all, v_all, t_all = np.concatenate(hs), np.concatenate(vs), np.concatenate(ts)
    # one stable sort gives the distinct hashes and, for each, its occurrences in order
    occ = np.argsort(h_all, kind="stable")
    ordered = h_all[occ]
    head = np.ones(len(ordered), dtype=bool)
    head[1:] = ordered[1:] != ordered[:-1]
    uniq = ordered[head]
    first_occ = np.flatnonzero(head)
    n_occ = np.diff(np.append(first_occ, len(ordered)))
    upos, values = lookup(uniq)
    if upos.size == 0:
        return None
    # expand each hit of a distinct hash to every (hypothesis, anchor) that produced it
    reps = n_occ[upos]
    at = occ[_ragged(first_occ[upos], reps)]
    return v_all[at], t_all[at], np.repeat(values.astype(np.int64), reps)


def _ragged(starts: IntArray, counts: IntArray) -> IntArray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])``, vectorized."""
    total = int(counts.sum())
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    out: IntArray = np.repeat(starts, counts) + (np.arange(total) - offsets)
    return out


def _candidate(
    work: int, votes: int, variant: Variant, local: IntArray, qt: npt.NDArray[np.float64], slack: float
) -> Candidate:
    ref = local.astype(np.float64)
    q0, q1 = float(qt.min()), float(qt.max())
    if q1 - q0 > 1e-6 and votes >= FIT_VOTES:
        slope, intercept = np.polyfit(qt, ref, 1)
        # a fit over a short span is noisy: keep it within half a grid step of the hypothesis
        ts = variant.time_scale
        slope = float(np.clip(slope, ts * (1.0 - slack), ts * (1.0 + slack)))
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
        anchors=len(np.unique(qt)),
    )


@dataclass(frozen=True)
class Verification:
    """How well a candidate alignment explains the query, peak by peak, counted by reference frame.

    The evidence is counted in reference *frames* (the peaks of one spectral frame, a
    chord or an onset, count once): chance coincidences between two pieces come in
    clusters (one coincident chord matches several of its peaks at once), so a count of
    single peaks is over-dispersed against any independent-peaks model and unrelated music
    in a related key reaches high scores; a count of frames is not.

    When the query carries its evidence map (:attr:`Peaks.evidence`), the reference frames
    are also read off the query's spectrum (:func:`spectral_evidence`), and the score is
    the sum of both significances.

    Attributes
    ----------
    matched : int
        Reference frames in the aligned span with at least one peak matched by a query
        peak within the tolerance.
    expected : int
        Reference frames with peaks in the aligned span.
    chance : float
        Mean number of those frames a query with these peaks would match by chance.
    significance : float
        The score a decision threshold is calibrated on: ``peak_significance`` plus
        ``spectral``.
    peaks_matched, peaks : int
        The same count for single reference peaks, and the peaks in the span (reported,
        not scored).
    peak_significance : float
        ``-log10`` of the probability of ``matched`` or more chance matches (Poisson with
        mean ``chance``).
    spectral : float
        The significance of the spectral evidence (0 for a query without an evidence map).
    """

    matched: int
    expected: int
    chance: float
    significance: float
    peaks_matched: int = 0
    peaks: int = 0
    peak_significance: float = 0.0
    spectral: float = 0.0


_MAX_SIGNIFICANCE = 300.0


def verify(
    query: Peaks,
    cand: Candidate,
    ref: Peaks,
    *,
    time_tol: float = 2.0,
    freq_tol: float = 0.5,
    params: LandmarkParams | None = None,
) -> Verification:
    """Check a candidate alignment peak by peak against the reference's own peaks.

    A triplet hash needs three peaks to survive; under reverb or a voice-over many
    fewer do, so a true alignment can collect only a few votes. Mapped through the
    candidate's alignment (speed, offset, pitch), each reference peak in the aligned span
    is *matched* when a query peak lies within ``time_tol`` frames and ``freq_tol``
    semitones of it — a single surviving peak counts. A reference peak at frequency ``f``
    is matched by chance with the probability that one of the query's peaks near ``f``
    (anywhere in the query) falls in its time tolerance, so held notes or a steady hum
    that put many query peaks on one frequency earn little. Peaks are then counted by the
    reference frame they belong to: a frame is matched when any of its peaks is, and is
    matched by chance with the probability that any of them is. The significance is
    ``-log10 P(X >= matched frames)`` for a Poisson ``X`` with the summed chance
    probabilities of the frames as its mean.

    A query that carries its evidence map (:attr:`Peaks.evidence`, made by
    ``extract_peaks(..., query=True)``) is also checked on its spectrum at the same
    reference peaks (:func:`spectral_evidence`), and the returned significance is the sum
    of both checks; thresholds are calibrated on that sum.

    Parameters
    ----------
    query : Peaks
        The query's peaks (time in query frames).
    cand : Candidate
        An alignment from :func:`vote`.
    ref : Peaks
        The reference work's peaks (time in frames from the start of the work).
    time_tol, freq_tol : float
        Match tolerance in reference frames and semitones.
    params : LandmarkParams, optional
        Fingerprint parameters (to read the query's evidence map, when it has one).

    Returns
    -------
    Verification

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> t = np.sort(rng.uniform(0, 3000, 1500)); lf = rng.uniform(0, 45, 1500)
    >>> ref = Peaks(t, lf, np.ones(1500), 3000)
    >>> sel = (t >= 1000) & (t < 1300)
    >>> q = Peaks(t[sel] - 1000, lf[sel], np.ones(sel.sum()), 300)
    >>> c = Candidate(0, 10, Variant(1.0, 1.0), 1.0, 0.0, 299.0, 1000.0, 1299.0, 0.0)
    >>> v = verify(q, c, ref)
    >>> v.matched == v.expected, v.significance > 50
    (True, True)
    >>> far = Candidate(0, 10, Variant(1.0, 1.0), 1.0, 0.0, 299.0, 2000.0, 2299.0, 0.0)
    >>> verify(q, far, ref).significance < 3
    True
    """
    if len(ref) == 0 or (len(query) == 0 and query.evidence is None):
        return Verification(0, 0, 0.0, 0.0)
    aligned = _aligned_frames(query, cand, ref, time_tol, freq_tol)
    if aligned is None:
        return Verification(0, 0, 0.0, 0.0)
    lo, speed, shift, rt, rf, hit, frame, starts, frame_hit, frame_chance = aligned
    matched = int(frame_hit.sum())
    mean = float(frame_chance.sum())
    by_peaks = _poisson_significance(matched, mean)
    spectral = 0.0
    if query.evidence is not None:
        spectral = spectral_evidence(query.evidence, (rt - lo) / speed, rf + shift, frame, params)
    return Verification(
        matched,
        int(starts.size),
        mean,
        by_peaks + spectral,
        peaks_matched=int(hit.sum()),
        peaks=int(rt.size),
        peak_significance=by_peaks,
        spectral=spectral,
    )


def frame_hits(
    query: Peaks, cand: Candidate, ref: Peaks, *, time_tol: float = 2.0, freq_tol: float = 0.5
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """The peak check of :func:`verify`, frame by frame: where the query agrees with the work.

    Returns, for each reference frame with peaks in the aligned span: its time in query
    frames, whether it is matched, and the probability it is matched by chance. Summed,
    they are the ``matched`` and ``chance`` of :func:`verify`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> t = np.sort(rng.uniform(0, 3000, 1500)); lf = rng.uniform(0, 45, 1500)
    >>> ref = Peaks(t, lf, np.ones(1500), 3000)
    >>> sel = (t >= 1000) & (t < 1300)
    >>> q = Peaks(t[sel] - 1000, lf[sel], np.ones(sel.sum()), 300)
    >>> c = Candidate(0, 10, Variant(1.0, 1.0), 1.0, 0.0, 299.0, 1000.0, 1299.0, 0.0)
    >>> at, hit, chance = frame_hits(q, c, ref)
    >>> bool(hit.all()), int(hit.sum()) == verify(q, c, ref).matched, bool(0 <= at.min() < at.max() < 300)
    (True, True, True)
    """
    empty = np.zeros(0, dtype=np.float64)
    if len(ref) == 0 or len(query) == 0:
        return empty, np.zeros(0, dtype=bool), empty
    aligned = _aligned_frames(query, cand, ref, time_tol, freq_tol)
    if aligned is None:
        return empty, np.zeros(0, dtype=bool), empty
    lo, speed, _, rt, _, _, _, starts, frame_hit, frame_chance = aligned
    at: npt.NDArray[np.float64] = (rt[starts] - lo) / speed
    return at, frame_hit, frame_chance


def _aligned_frames(
    query: Peaks, cand: Candidate, ref: Peaks, time_tol: float, freq_tol: float
) -> tuple[Any, ...] | None:
    """The reference peaks in the aligned span and which of them the query matches (see :func:`verify`)."""
    speed = cand.speed
    shift = 12.0 * math.log2(cand.variant.pitch_scale)
    lo = cand.ref_start - speed * cand.query_start
    hi = lo + speed * query.frames
    in_span = (ref.t >= lo) & (ref.t < hi)
    rt, rf = ref.t[in_span], ref.lf[in_span]
    if rt.size == 0:
        return None
    qt = lo + speed * query.t
    qf = query.lf - shift
    # nearest query peak in time among those within the frequency tolerance: sort the
    # query by frequency, and for each reference peak scan its frequency neighbours
    order = np.argsort(qf, kind="stable")
    qf_s, qt_s = qf[order], qt[order]
    a = np.searchsorted(qf_s, rf - freq_tol, side="left")
    b = np.searchsorted(qf_s, rf + freq_tol, side="right")
    near = b - a  # query peaks near each reference peak's frequency, anywhere in time
    owner = np.repeat(np.arange(rt.size), near)
    pos = _ragged(a.astype(np.int64), near.astype(np.int64))
    close = np.abs(qt_s[pos] - rt[owner]) <= time_tol
    hit = np.zeros(rt.size, dtype=bool)
    hit[owner[close]] = True
    # chance: each of the ``near`` query peaks falls in the 2·tol window with prob 2·tol/span
    frac = min(1.0, 2.0 * time_tol / max(hi - lo, 1.0))
    log_miss = near * math.log1p(-frac) if frac < 1.0 else np.where(near > 0, -np.inf, 0.0)
    # one count per reference frame (the reference's own frame index: ``ref.t`` is sorted)
    frame = np.rint(rt).astype(np.int64)
    starts = _frame_starts(frame)
    frame_hit = np.logical_or.reduceat(hit, starts)
    frame_chance = -np.expm1(np.add.reduceat(log_miss, starts))
    return lo, speed, shift, rt, rf, hit, frame, starts, frame_hit, frame_chance


def spectral_evidence(
    evidence: npt.NDArray[np.int8],
    query_t: npt.NDArray[np.float64],
    query_lf: npt.NDArray[np.float64],
    ref_frame: npt.NDArray[np.int64],
    params: LandmarkParams | None = None,
) -> float:
    """Significance of the query's spectrum at the reference's peaks (a graded peak check).

    Each reference peak, mapped into the query (frame ``query_t``, ``query_lf`` semitones
    above ``fmin``), reads the query's evidence map there: how far the query's spectrum
    stands out of its neighbouring bins at that time and frequency. Its p-value is the
    fraction of the query's frames whose value in the same column is as high — an
    empirical null drawn from the query itself, so a held note or a steady hum in that
    column earns nothing, and a loud but unrelated query no more than a quiet one. The
    peaks of one reference frame count once (their smallest p-value, Šidák-corrected),
    and the frames' p-values are combined by Stouffer's sum of z-scores.

    A component of the work that is masked by a louder sound loses its peak (the query's
    peak picker keeps the loudest) but often still raises the spectrum where the work has
    it; this is what the binary peak check of :func:`verify` misses under a voice-over,
    another track, reverb or loud noise.

    Parameters
    ----------
    evidence : numpy.ndarray of int8
        The query's :attr:`Peaks.evidence` (frames × bins of :func:`analysis_bins`).
    query_t, query_lf : numpy.ndarray
        Reference peaks mapped into the query: frame and semitones above ``fmin``.
    ref_frame : numpy.ndarray of int64
        The reference frame of each peak (sorted; equal values form one frame).
    params : LandmarkParams, optional
        Fingerprint parameters.

    Returns
    -------
    float
        ``-log10`` of the one-sided normal tail of the combined z-score (0 when there is
        nothing to read).

    Examples
    --------
    >>> import numpy as np
    >>> ev = np.zeros((100, 443), dtype=np.int8)
    >>> ev[[10, 30, 50, 70], 100] = 40  # the query stands out where the reference has peaks
    >>> lf = np.full(4, 12 * np.log2(119 * 7.8125 / 250))  # bin 119 = column 100
    >>> t = np.array([10.0, 30.0, 50.0, 70.0])
    >>> round(spectral_evidence(ev, t, lf, np.arange(4)), 2)
    3.84
    >>> spectral_evidence(ev, t + 5, lf, np.arange(4))  # elsewhere: no evidence
    0.0
    """
    p = params or LandmarkParams()
    n = int(evidence.shape[0])
    lo_bin, _ = analysis_bins(p)
    q = np.rint(query_t).astype(np.int64)
    col = np.rint(p.fmin * np.exp2(query_lf / 12.0) * p.n_fft / p.sample_rate).astype(np.int64) - lo_bin
    ok = (q >= 0) & (q < n) & (col >= 0) & (col < evidence.shape[1])
    if n < 2 or not ok.any():
        return 0.0
    q, col, frame = q[ok], col[ok], ref_frame[ok]
    value = evidence[q, col]
    # empirical p-value of each peak: the share of the query's frames as high in its column
    pv = (evidence[:, col] >= value[None, :]).sum(axis=0) / n
    starts = _frame_starts(frame)
    k = np.diff(np.r_[starts, len(pv)])
    smallest = np.minimum.reduceat(pv, starts)
    per_frame = -np.expm1(k * np.log1p(-np.minimum(smallest, 1.0 - 1e-12)))  # Šidák over the frame's peaks
    per_frame = np.clip(per_frame, 1.0 / n, 1.0)
    # mid-p: the p-values are discrete in steps of 1/n
    z = special.ndtri(np.clip(1.0 - (per_frame - 0.5 / n), 1e-12, 1.0 - 1e-12))
    combined = float(z.sum() / math.sqrt(len(z)))
    if combined <= 0.0:
        return 0.0
    tail = float(special.log_ndtr(-combined))
    return min(_MAX_SIGNIFICANCE, -tail / math.log(10.0))


def _frame_starts(frame: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """Where each run of equal values in the sorted ``frame`` begins (one reference frame each)."""
    out: npt.NDArray[np.intp] = np.flatnonzero(np.r_[True, frame[1:] != frame[:-1]])
    return out


def _poisson_significance(k: int, mean: float) -> float:
    """``-log10 P(X >= k)`` for ``X ~ Poisson(mean)``."""
    if k <= 0:
        return 0.0
    if mean <= 0.0:
        return _MAX_SIGNIFICANCE
    tail = float(special.gammainc(k, mean))  # regularized lower incomplete gamma = P(X >= k)
    if tail <= 0.0:
        return _MAX_SIGNIFICANCE
    return min(_MAX_SIGNIFICANCE, -math.log10(tail))
