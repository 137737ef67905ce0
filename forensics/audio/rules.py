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

A work found by several rules is reported once, by the rule whose score clears its
threshold by most (:func:`decide`); works are ranked by that margin.

The rules read a :class:`Layer`, a consistent view of one layer of an index, so they hold
no state of their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from forensics.audio.calibration import threshold_at
from forensics.audio.landmarks import LandmarkParams, Peaks, analysis_bins
from forensics.audio.match import Candidate, Variant, Verification, verify, vote
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
    "identify_bass",
    "identify_layer",
    "keep",
    "make_match",
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
    best: dict[int, tuple[Candidate, Verification, float]] = {}
    for w0, window in windows(layer, peaks):
        needed = threshold_at(layer.thresholds, window.frames * fs) if override is None else override
        for cand in candidates(layer, window, max(top_k, VERIFY_TOP), CANDIDATE_VOTES):
            ref = layer.peaks_of(cand.work)
            checked = verify(window, cand, ref, params=layer.params) if ref is not None else NOTHING
            if checked.significance < needed:
                continue
            kept = best.get(cand.work)
            if kept is None or kept[1].significance < checked.significance:
                best[cand.work] = (shift(cand, w0), checked, needed)
    ranked = sorted(best.values(), key=lambda cv: -cv[1].significance)[:top_k]
    return [make_match(layer, c, v, needed, layer.fpr_target, fs) for c, v, needed in ranked]


def identify_bass(
    main: Layer,
    low: Layer,
    peaks: Peaks,
    bass: Peaks,
    threshold: float | None,
    joint_thresholds: Mapping[float, float],
) -> tuple[list[Match], list[Match]]:
    """The matches of the ``bass`` and ``both`` rules, best per work.

    ``peaks`` and ``bass`` are the query's main-layer and bass-layer peaks;
    ``joint_thresholds`` what the two significances need in sum.
    """
    if low.empty or main.empty:
        return [], []
    ratio = low.params.frame_seconds / main.params.frame_seconds
    fs = low.params.frame_seconds
    override = None if threshold is None else float(threshold)
    main_of: dict[str, int] | None = None
    kept: dict[str, dict[str, tuple[float, Match]]] = {"bass": {}, "both": {}}
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
                keep(kept["bass"], work_id, checked.significance, m)
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
                keep(
                    kept["both"], work_id, score, Match.of(m.work_id, round(score, 3), m.threshold, evidence)
                )
    return (
        [m for _, m in kept["bass"].values()],
        [m for _, m in kept["both"].values()],
    )


def decide(found: list[Match], low: list[Match], both: list[Match], top_k: int) -> list[Match]:
    """Each work once, by the rule whose score clears its threshold by most; ranked by that margin."""
    best: dict[str, tuple[float, Match]] = {}
    for m in [*found, *low, *both]:
        keep(best, m.work_id, m.score - m.threshold, m)
    ranked = sorted(best.values(), key=lambda mm: -mm[0])
    return [m for _, m in ranked[:top_k]]
