"""The decision rules of the audio index: which candidate alignments become matches.

Each query window's landmark hashes vote for alignments (:func:`forensics.audio.match.vote`);
the best candidates are verified against the work's stored peaks, peak by peak and on the
query's spectrum (:func:`forensics.audio.match.verify`), and a candidate's score is the
significance of that verification. With a bass layer (:mod:`forensics.audio.bass`), three
rules decide, each against its own calibrated thresholds
(:mod:`forensics.audio.calibration`):

* ``main``: the main layer's own candidates (three votes or more, the best ten per
  window), verified in the main layer (:func:`identify_layer`);
* ``bass``: the bass layer's own candidates (three votes or more), verified in the bass
  layer;
* ``both``: every bass-layer candidate with at least two votes, verified in both layers at
  its alignment; the score is the sum of the two significances. A work whose evidence is
  split between the bass line and the upper band (bass-heavy music under noise or another
  track) is found by neither layer alone but by both together (:func:`identify_bass`).

Every occurrence of a work in a long query is a match of its own, its span extended to
the whole region where the query agrees with the work at its alignment
(:func:`occurrences`, :func:`extend`). An occurrence found by several rules is reported
once, by the rule whose score clears its threshold by most (:func:`decide`); matches are
ranked by that margin.

The rules read a :class:`Layer`, a consistent view of one layer of an index, so they hold
no state of their own.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from forensics.audio.calibration import threshold_at
from forensics.audio.landmarks import LandmarkParams, Peaks, analysis_bins
from forensics.audio.match import Candidate, Variant, Verification, frame_hits, verify, vote
from forensics.audio.match import _poisson_significance as poisson_significance
from forensics.evidence import AudioEvidence, AudioRule
from forensics.types import Match

__all__ = [
    "CANDIDATE_VOTES",
    "JOINT_VOTES",
    "VERIFY_TOP",
    "Layer",
    "WorkTable",
    "candidates",
    "check_evidence_map",
    "decide",
    "distinct",
    "extend",
    "identify_bass",
    "identify_layer",
    "keep",
    "make_match",
    "occurrences",
    "same_match",
    "same_occurrence",
    "scaled",
    "shift",
    "windows",
]

CANDIDATE_VOTES = 3
"""Aligned hash votes a candidate needs before it is verified peak by peak."""
VERIFY_TOP = 10
"""Candidates verified per query window (the best by votes)."""
JOINT_VOTES = 2
"""Aligned bass-layer votes a candidate needs to be checked in both layers at once."""
GAP_SECONDS = 1.5
"""Longest stretch without agreement an occurrence's span bridges (a break, a masked passage)."""
BIN_SECONDS = 1.0
"""Resolution at which an occurrence's span is extended (:func:`extend`)."""
BIN_SIGNIFICANCE = 1.3
"""Significance (decades) of the verified frames a stretch of ``BIN_SECONDS`` needs to agree."""
BIN_SHARE = 0.4
"""Share of the work's frames in a stretch of ``BIN_SECONDS`` the query must verify to agree."""
ALIGN_SECONDS = 0.25
"""Alignments of one work closer than this (at the same place of the query) are one occurrence."""

NOTHING = Verification(0, 0, 0.0, 0.0)
"""The verification of a candidate whose work has no stored peaks."""

Lookup = Callable[[npt.NDArray[np.uint32]], tuple[npt.NDArray[np.int64], npt.NDArray[np.uint32]]]


@dataclass(frozen=True)
class WorkTable:
    """The works of one layer's catalogue, ordered by their place on the frame axis.

    One row per registration, removed ones included (until a merge drops them).

    Attributes
    ----------
    ids : list of str
        Work id of each row.
    bases : numpy.ndarray of int64
        First global frame of each row.
    frames : numpy.ndarray of int64
        Frames of each row.
    alive : numpy.ndarray of bool
        Whether each row is registered (not removed).
    rowids : numpy.ndarray of int64
        Catalogue key of each row (where its peaks are stored).

    Examples
    --------
    >>> import numpy as np
    >>> t = WorkTable(["a", "b"], np.array([0, 2000]), np.array([900, 500]), np.array([False, True]),
    ...               np.array([1, 2]))
    >>> t.live(), t.row_of("b"), t.row_of("a")
    (['b'], 1, None)
    """

    ids: list[str]
    bases: npt.NDArray[np.int64]
    frames: npt.NDArray[np.int64]
    alive: npt.NDArray[np.bool_]
    rowids: npt.NDArray[np.int64]

    def live(self) -> list[str]:
        """Ids of the registered (not removed) works, in frame-axis order."""
        return [w for w, a in zip(self.ids, self.alive, strict=True) if a]

    def row_of(self, work_id: str) -> int | None:
        """The row of registered work ``work_id``, or ``None``."""
        for k, w in enumerate(self.ids):
            if w == work_id and self.alive[k]:
                return k
        return None


@dataclass(frozen=True)
class Layer:
    """One layer of an index as the rules see it: a consistent view taken under its lock.

    Attributes
    ----------
    rule : {"main", "bass"}
        The rule this layer's own matches are reported under.
    params : LandmarkParams
        The layer's analysis parameters.
    variants : list of Variant
        Speed and pitch variants searched.
    window_seconds : float
        Length of a query window (the hop is half of it).
    works : WorkTable
        The layer's works.
    lookup : callable
        Stored entries of query hashes (:meth:`forensics.audio.segments.SegmentStore.lookup`).
    reference : callable
        The stored peaks of the work in a catalogue row (by ``rowids``), or ``None``.
    thresholds : mapping of float to float
        The layer's thresholds per window length.
    fpr_target : float
        The false-positive rate they are calibrated for.
    empty : bool
        The layer stores no segments.
    """

    rule: AudioRule
    params: LandmarkParams
    variants: list[Variant]
    window_seconds: float
    works: WorkTable
    lookup: Lookup
    reference: Callable[[int], Peaks | None]
    thresholds: Mapping[float, float]
    fpr_target: float
    empty: bool

    def peaks_of(self, row: int) -> Peaks | None:
        """The stored peaks of the work in ``row``."""
        return self.reference(int(self.works.rowids[row]))


def shift(c: Candidate, w0: float) -> Candidate:
    """``c`` found in a window starting at query frame ``w0``, in the whole query's frames.

    Every other field, ``anchors`` included, is kept.

    Examples
    --------
    >>> from forensics.audio.match import Variant
    >>> c = Candidate(0, 5, Variant(1.0, 1.0), 1.0, 10.0, 20.0, 30.0, 40.0, 0.5, anchors=4)
    >>> s = shift(c, 100.0)
    >>> s.query_start, s.query_end, s.ref_start, s.anchors
    (110.0, 120.0, 30.0, 4)
    """
    if w0 == 0.0:
        return c
    return dataclasses.replace(c, query_start=c.query_start + w0, query_end=c.query_end + w0)


def scaled(c: Candidate, ratio: float, work: int) -> Candidate:
    """A bass-layer candidate in the main layer's frames (``ratio`` main frames per bass frame).

    ``work`` is the work's row in the main layer; ``anchors`` and the rest are kept.

    Examples
    --------
    >>> from forensics.audio.match import Variant
    >>> c = Candidate(3, 5, Variant(1.0, 1.0), 1.0, 1.0, 2.0, 3.0, 4.0, 0.5, anchors=4)
    >>> s = scaled(c, 4.0, 7)
    >>> s.work, s.query_start, s.ref_end, s.residual, s.anchors
    (7, 4.0, 16.0, 2.0, 4)
    """
    return dataclasses.replace(
        c,
        work=work,
        query_start=c.query_start * ratio,
        query_end=c.query_end * ratio,
        ref_start=c.ref_start * ratio,
        ref_end=c.ref_end * ratio,
        residual=c.residual * ratio,
    )


def keep(best: dict[str, tuple[float, Match]], work_id: str, score: float, m: Match) -> None:
    """Keep ``m`` in ``best`` unless ``work_id`` already has a higher ``score``.

    Examples
    --------
    >>> best = {}
    >>> keep(best, "w", 2.0, "first"); keep(best, "w", 1.0, "second"); best
    {'w': (2.0, 'first')}
    """
    if work_id not in best or best[work_id][0] < score:
        best[work_id] = (score, m)


def windows(layer: Layer, peaks: Peaks) -> Iterator[tuple[float, Peaks]]:
    """The query windows of ``peaks``: (first frame, peaks) of each, half overlapping.

    A query up to 1.5 windows long is one window; windows with fewer than four peaks
    are skipped.
    """
    fs = layer.params.frame_seconds
    length = layer.window_seconds / fs
    total = peaks.frames
    if total <= length * 1.5:
        yield 0.0, peaks
        return
    size = round(length)
    hop = size // 2
    for s in range(0, max(total - size, 0) + hop, hop):
        window = peaks.window(s, s + size)
        if len(window) < 4:
            continue
        yield float(s), window


def candidates(layer: Layer, window: Peaks, top_k: int, min_votes: int) -> list[Candidate]:
    """The best ``top_k`` alignments of a query window by votes (:func:`vote`), the layer's works."""
    return vote(
        window,
        layer.lookup,
        layer.works.bases,
        params=layer.params,
        variants=layer.variants,
        alive=layer.works.alive,
        top_k=top_k,
        min_votes=min_votes,
    )


def make_match(layer: Layer, c: Candidate, v: Verification, threshold: float, fpr: float, fs: float) -> Match:
    """The match of candidate ``c`` (frames of ``fs`` seconds) verified as ``v``.

    The evidence is an :class:`forensics.evidence.AudioEvidence` under the layer's rule.
    """
    evidence = AudioEvidence(
        query_start=round(c.query_start * fs, 3),
        query_end=round(c.query_end * fs, 3),
        ref_start=round(c.ref_start * fs, 3),
        ref_end=round(c.ref_end * fs, 3),
        speed=round(c.speed, 4),
        pitch=round(c.variant.pitch_scale, 4),
        offset_accuracy=round(max(fs, c.residual * fs), 3),
        votes=c.votes,
        verified_frames=v.matched,
        reference_frames=v.expected,
        chance_frames=round(v.chance, 2),
        peak_significance=round(v.peak_significance, 3),
        spectral_evidence=round(v.spectral, 3),
        verified_peaks=v.peaks_matched,
        reference_peaks=v.peaks,
        fpr_target=fpr,
        layer=layer.rule,
    )
    return Match.of(layer.works.ids[c.work], round(v.significance, 3), float(threshold), evidence)


def check_evidence_map(peaks: Peaks, params: LandmarkParams) -> None:
    """Refuse a query whose evidence map does not fit its peaks and ``params``.

    Raises
    ------
    ValueError
        The map's shape is not (frames, analysed bins).
    """
    if peaks.evidence is not None:
        lo, hi = analysis_bins(params)
        if peaks.evidence.ndim != 2 or peaks.evidence.shape != (peaks.frames, hi - lo):
            raise ValueError(
                f"the query's evidence map has shape {peaks.evidence.shape}, these parameters make "
                f"({peaks.frames}, {hi - lo}) for {peaks.frames} frames; extract the query with "
                "extract_peaks(samples, index.params, query=True)"
            )


def identify_layer(layer: Layer, peaks: Peaks, top_k: int, threshold: float | None) -> list[Match]:
    """The ``main`` rule on one layer: its works in ``peaks``, best first, at most ``top_k``.

    ``threshold`` overrides the layer's thresholds (0: every verified candidate).
    """
    if layer.empty:
        return []
    override = None if threshold is None else float(threshold)
    fs = layer.params.frame_seconds
    passing: list[tuple[Candidate, Verification, float]] = []
    for w0, window in windows(layer, peaks):
        needed = threshold_at(layer.thresholds, window.frames * fs) if override is None else override
        for cand in candidates(layer, window, max(top_k, VERIFY_TOP), CANDIDATE_VOTES):
            ref = layer.peaks_of(cand.work)
            checked = verify(window, cand, ref, params=layer.params) if ref is not None else NOTHING
            if checked.significance < needed:
                continue
            passing.append((shift(cand, w0), checked, needed))
    found = occurrences(layer, peaks, passing, top_k)
    return [make_match(layer, c, v, needed, layer.fpr_target, fs) for c, v, needed in found]


def _offset(c: Candidate, at: float) -> float:
    """Where query frame ``at`` lies in the work under ``c``'s alignment (work frames)."""
    return c.ref_start + c.speed * (at - c.query_start)


def same_occurrence(a: Candidate, b: Candidate, tol: float, gap: float) -> bool:
    """Whether ``b`` is the occurrence ``a`` reports: the same work, the same alignment within
    ``tol`` frames (at ``b``'s middle) and query spans that overlap or are less than ``gap`` apart.

    Examples
    --------
    >>> from forensics.audio.match import Variant
    >>> a = Candidate(0, 9, Variant(1.0, 1.0), 1.0, 0.0, 600.0, 100.0, 700.0, 1.0)
    >>> b = Candidate(0, 9, Variant(1.0, 1.0), 1.0, 300.0, 900.0, 402.0, 1002.0, 1.0)
    >>> same_occurrence(a, b, 16, 90), same_occurrence(a, dataclasses.replace(b, work=1), 16, 90)
    (True, False)
    >>> far = Candidate(0, 9, Variant(1.0, 1.0), 1.0, 1300.0, 1900.0, 1400.0, 2000.0, 1.0)
    >>> same_occurrence(a, far, 16, 90)  # the same alignment, but the work is heard twice
    False
    """
    if a.work != b.work:
        return False
    if b.query_start > a.query_end + gap or a.query_start > b.query_end + gap:
        return False
    mid = 0.5 * (b.query_start + b.query_end)
    return abs(_offset(a, mid) - _offset(b, mid)) <= tol


def occurrences(
    layer: Layer, peaks: Peaks, passing: list[tuple[Candidate, Verification, float]], top_k: int
) -> list[tuple[Candidate, Verification, float]]:
    """Every occurrence of a work in the query: the verified windows ``passing`` grouped.

    Windows are taken best first (ties by work and place in the query, so the order is
    deterministic); one that repeats an occurrence already found (:func:`same_occurrence`)
    is dropped, any other is a new occurrence, its span extended to the whole region where
    the query agrees with the work at its alignment (:func:`extend`). An occurrence keeps
    the score of its best window, the decision the thresholds are calibrated for. At most
    ``top_k`` are found (and only theirs are extended).
    """
    fs = layer.params.frame_seconds
    tol, gap = ALIGN_SECONDS / fs, GAP_SECONDS / fs
    ordered = sorted(
        passing, key=lambda cv: (-cv[1].significance, layer.works.ids[cv[0].work], cv[0].query_start)
    )
    out: list[tuple[Candidate, Verification, float]] = []
    for cand, checked, needed in ordered:
        if len(out) >= top_k:
            break
        if any(same_occurrence(c, cand, tol, gap) for c, _, _ in out):
            continue
        ref = layer.peaks_of(cand.work)
        if ref is not None:
            cand = extend(layer, peaks, cand, ref)
        out.append((cand, checked, needed))
    return out


def _agreeing(
    layer: Layer, peaks: Peaks, cand: Candidate, ref: Peaks, start: int, stop: int
) -> list[tuple[float, float] | None]:
    """The bins of ``BIN_SECONDS`` in query frames ``[start, stop)`` that agree with the work under ``cand``.

    The peak check of :func:`verify` on that stretch of the query (:func:`frame_hits`): a
    bin agrees when its matched reference frames are significant on their own and at
    least :data:`BIN_SHARE` of the work's frames there. Each agreeing bin is given as the
    query frames of its first and last matched frame; the others as ``None``.
    """
    size = max(1, round(BIN_SECONDS / layer.params.frame_seconds))
    n = max(0, -(-(stop - start) // size))
    out: list[tuple[float, float] | None] = [None] * n
    window = peaks.window(start, stop)
    if n == 0 or len(window) == 0:
        return out
    at, hit, chance = frame_hits(window, shift(cand, -float(start)), ref)
    inside = (at >= 0) & (at < stop - start)
    at, hit, chance = at[inside], hit[inside], chance[inside]
    which = (at // size).astype(np.int64)
    matched = np.bincount(which, weights=hit, minlength=n)
    mean = np.bincount(which, weights=chance, minlength=n)
    frames = np.bincount(which, minlength=n)
    for k in np.flatnonzero((matched >= 2) & (matched >= BIN_SHARE * frames)):
        if poisson_significance(int(matched[k]), float(mean[k])) >= BIN_SIGNIFICANCE:
            times = at[(which == k) & hit]
            out[k] = (start + float(times.min()), start + float(times.max()))
    return out


def extend(layer: Layer, peaks: Peaks, cand: Candidate, ref: Peaks) -> Candidate:
    """``cand``'s span extended to the whole region where the query agrees with the work.

    From the span the votes found, the query is read outwards, a window at a time, under
    ``cand``'s alignment (offset, speed and pitch): each bin of :data:`BIN_SECONDS` agrees
    when the peak check of :func:`verify` finds the work there (:func:`_agreeing`); the span
    grows to the last matched frame before a stretch of more than :data:`GAP_SECONDS`
    without agreement (or the end of the query or of the work). The extension stands only
    when the whole span, checked window by window as :func:`verify` does, is significant
    at the layer's threshold; otherwise the span is the one found. The work is read only
    where the query is, a window at a time, so the cost is linear in the query's peaks.
    """
    fs = layer.params.frame_seconds
    gap = GAP_SECONDS / fs
    chunk = max(1, round(layer.window_seconds / fs))
    total = peaks.frames
    start, stop = cand.query_start, cand.query_end
    last, pos, going = stop, math.ceil(stop), True
    while going and pos < total:
        end = min(total, pos + chunk)
        for found in _agreeing(layer, peaks, cand, ref, pos, end):
            if found is not None:
                if found[0] - last > gap:
                    going = False
                    break
                last = max(last, found[1])
        else:
            going = end - last <= gap
        pos = end
    first, pos, going = start, math.floor(start), True
    while going and pos > 0:
        begin = max(0, pos - chunk)
        for found in reversed(_agreeing(layer, peaks, cand, ref, begin, pos)):
            if found is not None:
                if first - found[1] > gap:
                    going = False
                    break
                first = min(first, found[0])
        else:
            going = first - begin <= gap
        pos = begin
    if first >= start and last <= stop:
        return cand
    grown = dataclasses.replace(
        cand,
        query_start=first,
        query_end=last,
        ref_start=_offset(cand, first),
        ref_end=_offset(cand, last),
    )
    if not _confirmed(layer, peaks, grown, ref):
        return cand
    return grown


def _confirmed(layer: Layer, peaks: Peaks, cand: Candidate, ref: Peaks) -> bool:
    """Whether ``cand``'s whole span, verified window by window (:func:`verify`), clears the threshold."""
    fs = layer.params.frame_seconds
    chunk = max(1, round(layer.window_seconds / fs))
    start, stop = math.floor(cand.query_start), math.ceil(cand.query_end)
    matched, mean = 0, 0.0
    for s in range(start, stop, chunk):
        window = peaks.window(s, min(stop, s + chunk))
        v = verify(window, shift(cand, -float(s)), ref, params=layer.params)
        matched += v.matched
        mean += v.chance
    needed = threshold_at(layer.thresholds, (stop - start) * fs)
    return poisson_significance(matched, mean) >= needed


def identify_bass(
    main: Layer,
    low: Layer,
    peaks: Peaks,
    bass: Peaks,
    threshold: float | None,
    joint_thresholds: Mapping[float, float],
) -> tuple[list[Match], list[Match]]:
    """The matches of the ``bass`` and ``both`` rules, best first, each occurrence once (:func:`distinct`).

    ``peaks`` and ``bass`` are the query's main-layer and bass-layer peaks;
    ``joint_thresholds`` what the two significances need in sum.
    """
    if low.empty or main.empty:
        return [], []
    ratio = low.params.frame_seconds / main.params.frame_seconds
    fs = low.params.frame_seconds
    override = None if threshold is None else float(threshold)
    main_of: dict[str, int] | None = None
    kept: dict[str, list[Match]] = {"bass": [], "both": []}
    for w0, window in windows(low, bass):
        seconds = window.frames * fs
        need_bass = threshold_at(low.thresholds, seconds) if override is None else override
        need_both = threshold_at(joint_thresholds, seconds) if override is None else override
        upper = peaks.window(round(w0 * ratio), round((w0 + window.frames) * ratio))
        for cand in candidates(low, window, VERIFY_TOP, JOINT_VOTES):
            if main_of is None:  # read only when the bass layer has a candidate
                main_of = {w: k for k, w in enumerate(main.works.ids) if main.works.alive[k]}
            work_id = low.works.ids[cand.work]
            k = main_of.get(work_id)
            if k is None:  # a bass fingerprint whose work the main layer does not hold
                continue
            ref = low.peaks_of(cand.work)
            checked = verify(window, cand, ref, params=low.params) if ref is not None else NOTHING
            if cand.votes >= CANDIDATE_VOTES and checked.significance >= need_bass:
                m = make_match(low, shift(cand, w0), checked, need_bass, low.fpr_target, fs)
                kept["bass"].append(m)
            main_ref = main.peaks_of(k)
            up = scaled(cand, ratio, k)
            upper_check = verify(upper, up, main_ref, params=main.params) if main_ref is not None else NOTHING
            score = checked.significance + upper_check.significance
            if score >= need_both:
                m = make_match(
                    main, shift(up, w0 * ratio), upper_check, need_both, main.fpr_target, fs / ratio
                )
                assert isinstance(m.evidence, AudioEvidence)
                evidence = dataclasses.replace(
                    m.evidence,
                    layer="both",
                    bass_significance=round(checked.significance, 3),
                    main_significance=round(upper_check.significance, 3),
                    votes=cand.votes,
                )
                kept["both"].append(Match.of(m.work_id, round(score, 3), m.threshold, evidence))

    def best_first(ms: list[Match]) -> list[Match]:
        return distinct(sorted(ms, key=lambda m: (-m.score, m.work_id, _span(m)[0])))

    return best_first(kept["bass"]), best_first(kept["both"])


def decide(found: list[Match], low: list[Match], both: list[Match], top_k: int) -> list[Match]:
    """Each occurrence once, by the rule whose score clears its threshold by most; ranked by that margin.

    Matches of one work are one occurrence when :func:`same_match` says so; ties are
    broken by work id and place in the query.
    """
    ranked = sorted([*found, *low, *both], key=lambda m: (-(m.score - m.threshold), m.work_id, _span(m)[0]))
    return distinct(ranked)[:top_k]


def _span(m: Match) -> tuple[float, float, float, float]:
    e = m.evidence
    assert isinstance(e, AudioEvidence)
    return e.query_start, e.query_end, e.ref_start, e.speed


def same_match(a: Match, b: Match) -> bool:
    """Whether two matches report one occurrence: one work, one alignment (within
    :data:`ALIGN_SECONDS`) and query spans less than :data:`GAP_SECONDS` apart.

    Examples
    --------
    >>> e = AudioEvidence(0.0, 10.0, 5.0, 15.0, 1.0, 1.0, 0.02, 9, 30, 40, 2.5, 14.0, 3.0,
    ...                   20, 60, 0.001, "main")
    >>> a = Match.of("w", 20.0, 13.0, e)
    >>> later = Match.of("w", 20.0, 13.0, dataclasses.replace(e, query_start=20.0, query_end=30.0,
    ...                  ref_start=25.0, ref_end=35.0))
    >>> same_match(a, a), same_match(a, later)
    (True, False)
    """
    if a.work_id != b.work_id:
        return False
    qa0, qa1, ra0, sa = _span(a)
    qb0, qb1, rb0, sb = _span(b)
    if qb0 > qa1 + GAP_SECONDS or qa0 > qb1 + GAP_SECONDS:
        return False
    mid = 0.5 * (qb0 + qb1)
    return abs((ra0 + sa * (mid - qa0)) - (rb0 + sb * (mid - qb0))) <= ALIGN_SECONDS


def distinct(ranked: list[Match]) -> list[Match]:
    """``ranked`` with each occurrence once (:func:`same_match`), over the span of all its reports.

    A match that repeats an earlier one's occurrence is dropped, but the span it found is
    kept: the earlier match's span grows to cover it (from the first report's start to the
    last one's end, each end where that report put it), so that an occurrence one rule
    found in a window and another rule extended over the whole query is reported once,
    over its whole length, with the score and evidence of the better rule. Occurrences
    that a grown span now joins merge the same way, in rank order.
    """
    out: list[Match] = []
    for m in ranked:
        hit = next((i for i, k in enumerate(out) if same_match(k, m)), None)
        if hit is None:
            out.append(m)
            continue
        out[hit] = _spanning(out[hit], m)
        grown = True
        while grown:  # a longer span may now meet a later occurrence of the same alignment
            grown = False
            for j in range(hit + 1, len(out)):
                if same_match(out[hit], out[j]):
                    out[hit] = _spanning(out[hit], out.pop(j))
                    grown = True
                    break
    return out


def _spanning(kept: Match, other: Match) -> Match:
    """``kept`` with its span widened to cover ``other``'s (the same occurrence)."""
    a, b = kept.evidence, other.evidence
    assert isinstance(a, AudioEvidence) and isinstance(b, AudioEvidence)
    first = a if a.query_start <= b.query_start else b
    last = a if a.query_end >= b.query_end else b
    if first is a and last is a:
        return kept
    ev = dataclasses.replace(
        a,
        query_start=first.query_start,
        query_end=last.query_end,
        ref_start=first.ref_start,
        ref_end=max(first.ref_start, last.ref_end),
    )
    return dataclasses.replace(kept, details=ev.to_json(), evidence=ev)
