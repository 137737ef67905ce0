"""Decision thresholds of the audio index: the default tables, their stored form, calibration.

A threshold is the score (significance, in decades) a match needs. It depends on the length
of the query window, so it is a table of window length in seconds to score, interpolated
between lengths and constant beyond (:func:`threshold_at`). Each decision rule of
:mod:`forensics.audio.rules` has its own table. :func:`calibrate` sets the tables from audio
that holds none of the registered works, for a stated false-positive rate per query window.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from forensics.audio.errors import AudioIndexError
from forensics.audio.fingerprint import file_layers, file_peaks
from forensics.audio.landmarks import Peaks

if TYPE_CHECKING:
    from forensics.audio.index import AudioIndex

__all__ = [
    "DEFAULT_FPR_TARGET",
    "DEFAULT_THRESHOLD",
    "DEFAULT_THRESHOLDS",
    "calibrate",
    "decode_threshold",
    "encode_threshold",
    "threshold_at",
    "window_scores",
]

DEFAULT_THRESHOLDS: dict[float, float] = {3.0: 9.356, 5.0: 11.951, 10.0: 13.354}
"""Score a match needs (the peak check's significance plus the spectral evidence's, in
decades; see :func:`forensics.audio.match.verify`), per query window length in seconds
(interpolated between, constant beyond): at each length one more than the highest score
that the unrelated calibration windows of that length (5,940 / 5,947 / 4,581 at 3 / 5 /
10 s, from about 6.8 h of music and speech) reached against the benchmark's catalogue
(``bench/audio_robustness.py``, docs/benchmarks.md; measured for index format 6,
2026-12-04). Recalibrate with :meth:`forensics.audio.index.AudioIndex.calibrate` for a much
larger catalogue."""
DEFAULT_THRESHOLD = DEFAULT_THRESHOLDS[10.0]
"""The threshold of a full 10-s query window."""
DEFAULT_FPR_TARGET = 1e-3
"""False-positive rate per query window the default threshold was calibrated for."""


def encode_threshold(threshold: float | Mapping[float, float]) -> str:
    """The stored form of a threshold: a JSON list of [seconds, threshold] pairs.

    One number stands for every window length (stored as one pair at 10 s).

    Raises
    ------
    AudioIndexError
        A value is not finite, or a length not positive.

    Examples
    --------
    >>> encode_threshold({5.0: 11.0, 3.0: 9.0}), encode_threshold(12.5)
    ('[[3.0, 9.0], [5.0, 11.0]]', '[[10.0, 12.5]]')
    """
    if isinstance(threshold, Mapping):
        pairs = sorted((float(k), float(v)) for k, v in threshold.items())
    else:
        pairs = [(10.0, float(threshold))]
    if not pairs or any(not (math.isfinite(k) and math.isfinite(v)) or k <= 0 for k, v in pairs):
        raise AudioIndexError(
            "a threshold must be a finite number or a mapping of positive seconds to numbers, "
            f"not {threshold!r}"
        )
    return json.dumps([[k, v] for k, v in pairs])


def threshold_at(table: Mapping[float, float], seconds: float) -> float:
    """The threshold of a window of ``seconds``: interpolated in ``table``, constant beyond.

    Examples
    --------
    >>> threshold_at({3.0: 9.0, 5.0: 11.0}, 4.0), threshold_at({3.0: 9.0, 5.0: 11.0}, 60.0)
    (10.0, 11.0)
    """
    pairs = sorted(table.items())
    return float(np.interp(seconds, [k for k, _ in pairs], [v for _, v in pairs]))


def decode_threshold(stored: str) -> dict[float, float]:
    """The table of a stored threshold (:func:`encode_threshold`; a bare number is the 10-s one).

    Raises
    ------
    AudioIndexError
        The stored text is unreadable or the table empty.

    Examples
    --------
    >>> decode_threshold("[[3.0, 9.0], [5.0, 11.0]]"), decode_threshold("12.5")
    ({3.0: 9.0, 5.0: 11.0}, {10.0: 12.5})
    """
    try:
        value = json.loads(stored)
        if isinstance(value, int | float):
            return {10.0: float(value)}
        table = {float(k): float(v) for k, v in value}
    except (TypeError, ValueError) as exc:
        raise AudioIndexError(f"the stored threshold {stored!r} is unreadable: {exc}") from exc
    if not table:
        raise AudioIndexError("the stored threshold table is empty; calibrate the index again")
    return table


def window_scores(
    index: AudioIndex, peaks: Peaks, low: Peaks | None, seconds: float
) -> list[dict[str, float]]:
    """:meth:`AudioIndex.best_scores` of each half-overlapping window of ``seconds`` in ``peaks``.

    ``low`` are the same audio's bass-layer peaks (windowed alike) or ``None``.

    Examples
    --------
    >>> import tempfile
    >>> from forensics.audio.index import AudioIndex, make_fingerprint
    >>> index = AudioIndex(tempfile.mkdtemp(), bass=False)
    >>> _ = index.add_fingerprint("w", make_fingerprint([1, 2], [0, 1], 1.0))
    >>> window_scores(index, Peaks(np.zeros(0), np.zeros(0), np.zeros(0), 1000), None, 8.0)[:2]
    [{'main': 0.0}, {'main': 0.0}]
    >>> index.close()
    """
    fs = index.params.frame_seconds
    size = round(seconds / fs)
    bass_layer = index.bass
    out: list[dict[str, float]] = []
    for start in range(0, max(peaks.frames - size, 0) + 1, max(1, size // 2)):
        window = peaks.window(start, start + size)
        bass = None
        if low is not None and bass_layer is not None:
            bfs = bass_layer.params.frame_seconds
            b0 = round(start * fs / bfs)
            bass = low.window(b0, b0 + round(seconds / bfs))
        out.append(index.best_scores(window, bass))
    return out


def calibrate(
    index: AudioIndex,
    paths: Iterable[Path | str],
    *,
    fpr_target: float = DEFAULT_FPR_TARGET,
    lengths: Sequence[float] | None = None,
    window_seconds: float | None = None,
) -> dict[str, Any]:
    """Set the thresholds of ``index`` from audio that holds none of its registered works.

    Every file is cut into half-overlapping windows of each length in ``lengths``;
    each window is matched with no threshold and its best score kept. A length's new
    threshold is one more than its highest score (a tenfold smaller chance
    probability), so none of the windows would have matched: with ``n`` windows that
    bounds the false-positive rate per query of that length at about ``1 / n``.
    Queries of other lengths use the thresholds interpolated between. Chance scores
    grow with the amount of registered audio, so calibrate again after the catalogue
    has grown several-fold. The bass layer and the rule that sums both layers (see
    :mod:`forensics.audio.rules`), when the index has a bass layer, are calibrated on the
    same windows in the same way.

    Parameters
    ----------
    index : AudioIndex
        The index whose thresholds are set (stored in its catalogue).
    paths : iterable of Path
        Unrelated audio (music and speech like the expected queries, none of it
        registered), decoded leniently.
    fpr_target : float
        The false-positive rate per query to reach; at least ``1 / fpr_target``
        windows of every length are needed.
    lengths : sequence of float, optional
        Window lengths in seconds; 3 s, 5 s and the index's ``window_seconds`` by default.
    window_seconds : float, optional
        Calibrate this one length only (the same as ``lengths=[window_seconds]``).

    Returns
    -------
    dict
        ``windows`` and ``max_score`` (over all lengths), ``threshold`` (of the
        longest length), ``thresholds`` and ``per_length`` (windows, highest score
        and threshold of each), ``fpr_target``, and ``bass_thresholds`` and
        ``joint_thresholds`` (``None`` without a bass layer).

    Raises
    ------
    AudioIndexError
        Too few windows for ``fpr_target``, or the index is empty.

    Examples
    --------
    >>> import tempfile
    >>> from forensics.audio.index import AudioIndex
    >>> with AudioIndex(tempfile.mkdtemp()) as index:
    ...     calibrate(index, [])
    Traceback (most recent call last):
    ...
    forensics.audio.errors.AudioIndexError: the audio index is empty; register the works before calibrating
    """
    if not index.work_ids():
        raise AudioIndexError("the audio index is empty; register the works before calibrating")
    if window_seconds is not None:
        lengths = [window_seconds]
    chosen = sorted({float(x) for x in (lengths or (3.0, 5.0, index.window_seconds))})
    if not chosen or chosen[0] <= 0:
        raise AudioIndexError(f"calibration lengths must be positive seconds, not {chosen}")
    bass_layer = index.bass
    scores: dict[float, list[dict[str, float]]] = {x: [] for x in chosen}
    for path in paths:
        low: Peaks | None = None
        if bass_layer is None:
            peaks, _ = file_peaks(
                Path(path), index.params, max_seconds=index.max_seconds, strict=False, query=True
            )
        else:
            peaks, low, _ = file_layers(
                Path(path),
                index.params,
                bass_layer.params,
                max_seconds=index.max_seconds,
                strict=False,
                query=True,
            )
        for seconds in chosen:
            scores[seconds] += window_scores(index, peaks, low, seconds)
    needed = math.ceil(1.0 / fpr_target)
    for seconds, found in scores.items():
        if len(found) < needed:
            raise AudioIndexError(
                f"calibration needs at least {needed} windows of {seconds:g} s for a false-positive "
                f"rate of {fpr_target:g}, the files gave {len(found)}; give more unrelated audio"
            )

    def table_of(rule: str) -> dict[float, float]:
        return {x: round(max(w.get(rule, 0.0) for w in found) + 1.0, 3) for x, found in scores.items()}

    table = table_of("main")
    bass = table_of("bass") if bass_layer is not None else None
    joint = table_of("both") if bass_layer is not None else None
    main_values = {"threshold": encode_threshold(table), "fpr_target": repr(float(fpr_target))}
    if joint is not None:
        main_values["joint_threshold"] = encode_threshold(joint)
    index.catalogue.set_many(main_values)
    if bass_layer is not None and bass is not None:
        bass_layer.catalogue.set_many(
            {"threshold": encode_threshold(bass), "fpr_target": repr(float(fpr_target))}
        )
    every = [w["main"] for found in scores.values() for w in found]
    return {
        "bass_thresholds": bass,
        "joint_thresholds": joint,
        "windows": len(every),
        "max_score": max(every),
        "threshold": table[chosen[-1]],
        "thresholds": table,
        "per_length": {
            seconds: {
                "windows": len(found),
                "max_score": max(w["main"] for w in found),
                "threshold": table[seconds],
            }
            for seconds, found in scores.items()
        },
        "fpr_target": fpr_target,
    }
