"""Typed evidence of a match: what each media kind's matcher found, as frozen value types.

Every :class:`forensics.types.Match` an index returns carries one of these as
:attr:`~forensics.types.Match.evidence`; its :meth:`to_json` is the match's ``details``
(the JSON the CLI prints with ``--json`` and the library stores), key for key and in the
same order as before the types existed:

* :class:`ImageHashEvidence`: the global perceptual hash matched (Hamming distance, the
  flip or rotation, the query's content box);
* :class:`ImageFeatureEvidence`: local features verified geometrically (inliers, the
  rotation and scale, whether the query is a mirror image, where the reference lies in
  the query);
* :class:`AudioEvidence`: an alignment of the query with the work (spans in both files,
  speed and pitch, the decision rule that found it, votes and verified peaks).

Regions are sequences of ``(x, y)`` points, sizes ``(width, height)`` pairs; both are
stored as tuples and written as JSON lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

__all__ = [
    "AudioEvidence",
    "AudioRule",
    "Evidence",
    "ImageFeatureEvidence",
    "ImageHashEvidence",
    "Point",
    "VideoEvidence",
    "VideoSource",
    "points",
]

Point = tuple[float, float]
"""An ``(x, y)`` pixel position in the query's original coordinates."""

AudioRule = Literal["main", "bass", "both"]
"""The decision rule that found an audio match (see :mod:`forensics.audio.rules`)."""

VideoSource = Literal["picture", "sound", "both"]
"""Which evidence found a video match: the frames, the soundtrack (audio index), or both."""


def points(region: Sequence[Sequence[float]]) -> tuple[Point, ...]:
    """``region`` as a tuple of ``(x, y)`` tuples (the values themselves are kept).

    Examples
    --------
    >>> points([[0, 0], [4.5, 0]])
    ((0, 0), (4.5, 0))
    """
    return tuple((p[0], p[1]) for p in region)


def _lists(region: tuple[Point, ...]) -> list[list[float]]:
    return [[x, y] for x, y in region]


@dataclass(frozen=True)
class ImageHashEvidence:
    """An image found by its global perceptual hash (the fast path).

    Attributes
    ----------
    hamming : int
        Bits in which the query's hash (in ``transform``) and the work's differ.
    hash_threshold : int
        The most differing bits a match may have.
    transform : str
        The flip or rotation of the query that matched (``"identity"``, ``"rot90"``, ...).
    region : tuple of (x, y)
        The query's content box (borders trimmed), clockwise from top-left.
    query_size : (int, int)
        The query's width and height in pixels.
    item : int
        The registered frame (item) that matched.
    fpr_target : float
        False-positive rate per query the thresholds are calibrated for.
    query_frame : int, optional
        The query frame that matched, for queries of several frames (an animation).

    Examples
    --------
    >>> e = ImageHashEvidence(3, 24, "rot90", points([[0, 0], [9, 0], [9, 5], [0, 5]]), (10, 6), 7, 1e-4)
    >>> e.to_json()["transform"], e.to_json()["region"][2], "query_frame" in e.to_json()
    ('rot90', [9, 5], False)
    """

    kind: ClassVar[Literal["image"]] = "image"
    path: ClassVar[Literal["hash"]] = "hash"

    hamming: int
    hash_threshold: int
    transform: str
    region: tuple[Point, ...]
    query_size: tuple[int, int]
    item: int
    fpr_target: float
    query_frame: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The match's ``details``: a JSON-serializable dict."""
        out: dict[str, Any] = {
            "fpr_target": self.fpr_target,
            "path": self.path,
            "hamming": self.hamming,
            "hash_threshold": self.hash_threshold,
            "transform": self.transform,
            "region": _lists(self.region),
            "query_size": list(self.query_size),
            "item": self.item,
        }
        if self.query_frame is not None:
            out["query_frame"] = self.query_frame
        return out


@dataclass(frozen=True)
class ImageFeatureEvidence:
    """An image found by local features verified with a geometric transform (the slow path).

    Attributes
    ----------
    inliers : int
        Feature pairs consistent with the fitted transform.
    inlier_threshold : int
        The fewest inliers a match may have.
    rotation_deg : float
        Rotation of the work in the query (degrees, one decimal).
    scale : float
        Scale of the work in the query.
    region : tuple of (x, y)
        The work's corners in the query's pixels, clockwise from top-left.
    query_size : (int, int)
        The query's width and height in pixels.
    item : int
        The registered frame (item) that matched.
    fpr_target : float
        False-positive rate per query the thresholds are calibrated for.
    query_frame : int, optional
        The query frame that matched, for queries of several frames.
    mirrored : bool
        The query is a horizontal mirror image of the work: the features matched after the
        query was mirrored back. ``rotation_deg`` and ``scale`` then describe the mirrored
        work in the query (mirrored first, then rotated), and ``region`` lists the work's
        corners (its top-left, top-right, bottom-right, bottom-left) in the query's own
        pixels, which run counter-clockwise there. Written to JSON only when true.

    Examples
    --------
    >>> e = ImageFeatureEvidence(40, 12, 30.0, 0.5, points([[1.5, 2.0]] * 4), (640, 480), 2, 1e-4)
    >>> e.to_json()["path"], e.to_json()["inliers"], e.to_json()["query_size"], "mirrored" in e.to_json()
    ('features', 40, [640, 480], False)
    >>> import dataclasses
    >>> dataclasses.replace(e, mirrored=True).to_json()["mirrored"]
    True
    """

    kind: ClassVar[Literal["image"]] = "image"
    path: ClassVar[Literal["features"]] = "features"

    inliers: int
    inlier_threshold: int
    rotation_deg: float
    scale: float
    region: tuple[Point, ...]
    query_size: tuple[int, int]
    item: int
    fpr_target: float
    query_frame: int | None = None
    mirrored: bool = False

    def to_json(self) -> dict[str, Any]:
        """The match's ``details``: a JSON-serializable dict (``mirrored`` only when true)."""
        out: dict[str, Any] = {
            "fpr_target": self.fpr_target,
            "path": self.path,
            "inliers": self.inliers,
            "inlier_threshold": self.inlier_threshold,
            "rotation_deg": self.rotation_deg,
            "scale": self.scale,
            "region": _lists(self.region),
            "query_size": list(self.query_size),
            "item": self.item,
        }
        if self.mirrored:
            out["mirrored"] = True
        if self.query_frame is not None:
            out["query_frame"] = self.query_frame
        return out


@dataclass(frozen=True)
class AudioEvidence:
    """An alignment of an audio query with a registered work.

    Times are seconds. The query span ``query_start`` .. ``query_end`` plays the work's
    ``ref_start`` .. ``ref_end`` at ``speed`` (work seconds per query second) and
    ``pitch`` (frequency ratio).

    Attributes
    ----------
    query_start, query_end : float
        The aligned span in the query.
    ref_start, ref_end : float
        The aligned span in the work.
    speed : float
        Work seconds per query second.
    pitch : float
        Pitch ratio of the search variant that found the alignment.
    offset_accuracy : float
        How precisely the offset is known (seconds).
    votes : int
        Landmark hashes that voted for the alignment (in the bass layer, for ``both``).
    verified_frames, reference_frames : int
        Reference frames verified peak by peak, and those with peaks in the span.
    chance_frames : float
        Frames a query like this one would verify by chance.
    peak_significance, spectral_evidence : float
        The peak check's significance and the query spectrum's, in decades.
    verified_peaks, reference_peaks : int
        The same count for single peaks (reported, not scored).
    fpr_target : float
        False-positive rate per query window the threshold is calibrated for.
    layer : {"main", "bass", "both"}
        The decision rule that found the match (see :mod:`forensics.audio.rules`).
    bass_significance, main_significance : float, optional
        For ``both``: the bass layer's and the main layer's significances, summed in the score.

    Examples
    --------
    >>> e = AudioEvidence(0.0, 4.9, 12.0, 16.9, 1.0, 1.0, 0.016, 9, 30, 40, 2.5, 14.0, 3.0,
    ...                   20, 60, 0.001, "main")
    >>> e.ref_start - e.query_start, list(e.to_json())[:4], "bass_significance" in e.to_json()
    (12.0, ['query_start', 'query_end', 'ref_start', 'ref_end'], False)
    """

    kind: ClassVar[Literal["audio"]] = "audio"

    query_start: float
    query_end: float
    ref_start: float
    ref_end: float
    speed: float
    pitch: float
    offset_accuracy: float
    votes: int
    verified_frames: int
    reference_frames: int
    chance_frames: float
    peak_significance: float
    spectral_evidence: float
    verified_peaks: int
    reference_peaks: int
    fpr_target: float
    layer: AudioRule
    bass_significance: float | None = field(default=None)
    main_significance: float | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        """The match's ``details``: a JSON-serializable dict (the two significances for ``both`` only)."""
        out: dict[str, Any] = {
            "query_start": self.query_start,
            "query_end": self.query_end,
            "ref_start": self.ref_start,
            "ref_end": self.ref_end,
            "speed": self.speed,
            "pitch": self.pitch,
            "offset_accuracy": self.offset_accuracy,
            "votes": self.votes,
            "verified_frames": self.verified_frames,
            "reference_frames": self.reference_frames,
            "chance_frames": self.chance_frames,
            "peak_significance": self.peak_significance,
            "spectral_evidence": self.spectral_evidence,
            "verified_peaks": self.verified_peaks,
            "reference_peaks": self.reference_peaks,
            "fpr_target": self.fpr_target,
            "layer": self.layer,
        }
        if self.bass_significance is not None:
            out["bass_significance"] = self.bass_significance
        if self.main_significance is not None:
            out["main_significance"] = self.main_significance
        return out


@dataclass(frozen=True)
class VideoEvidence:
    """An alignment of a video query with a registered video work.

    Times are seconds. The query's ``query_start`` .. ``query_end`` shows (or sounds
    like) the work's ``ref_start`` .. ``ref_end`` at ``speed`` (work seconds per query
    second).

    Attributes
    ----------
    query_start, query_end : float
        The aligned span in the query.
    ref_start, ref_end : float
        The aligned span in the work.
    speed : float
        Work seconds per query second.
    found_by : {"picture", "sound", "both"}
        Which evidence found the match: the frames (this index), the soundtrack (the
        audio index, the work's soundtrack registered with it), or both at one alignment.
    flip : bool
        The picture is a mirror image of the work's.
    crop_box : (x0, y0, x1, y1)
        The query's picture without its bars, as fractions of its frame (``(0, 0, 1, 1)``
        when nothing was trimmed, or for sound only).
    matched_frames, compared_frames : int
        Sampled query frames in the span that matched the aligned work frame, and that
        were compared.
    frame_bits : int
        Most differing bits (of 256) for a frame to match.
    per_second : tuple of float
        Picture similarity along the span, one value per query second (1 − bits / 128,
        clipped to 0..1; unrelated frames score about 0).
    frame_pairs : tuple of (query_seconds, work_seconds, bits)
        Sample frame pairs a report can show side by side.
    fpr_target : float
        False-positive rate per (query, work) the picture threshold is calibrated for.
    sound : AudioEvidence, optional
        The soundtrack's alignment, when the sound found the work.

    Examples
    --------
    >>> e = VideoEvidence(0.0, 10.0, 30.0, 40.0, 1.0, "picture", False, (0.0, 0.0, 1.0, 1.0),
    ...                   38, 40, 72, (0.9,) * 10, ((0.0, 30.0, 12),), 1e-4)
    >>> e.to_json()["found_by"], e.to_json()["frame_pairs"][0], "sound" in e.to_json()
    ('picture', [0.0, 30.0, 12], False)
    """

    kind: ClassVar[Literal["video"]] = "video"

    query_start: float
    query_end: float
    ref_start: float
    ref_end: float
    speed: float
    found_by: VideoSource
    flip: bool
    crop_box: tuple[float, float, float, float]
    matched_frames: int
    compared_frames: int
    frame_bits: int
    per_second: tuple[float, ...]
    frame_pairs: tuple[tuple[float, float, int], ...]
    fpr_target: float
    sound: AudioEvidence | None = None
    view: str = "full"
    pip_box: tuple[float, float, float, float] | None = None

    def to_json(self) -> dict[str, Any]:
        """The match's ``details``: a JSON-serializable dict (``sound`` only when the sound found it)."""
        out: dict[str, Any] = {
            "query_start": self.query_start,
            "query_end": self.query_end,
            "ref_start": self.ref_start,
            "ref_end": self.ref_end,
            "speed": self.speed,
            "found_by": self.found_by,
            "flip": self.flip,
            "crop_box": list(self.crop_box),
            "matched_frames": self.matched_frames,
            "compared_frames": self.compared_frames,
            "frame_bits": self.frame_bits,
            "per_second": list(self.per_second),
            "frame_pairs": [list(p) for p in self.frame_pairs],
            "fpr_target": self.fpr_target,
            "view": self.view,
        }
        if self.pip_box is not None:
            out["pip_box"] = list(self.pip_box)
        if self.sound is not None:
            out["sound"] = self.sound.to_json()
        return out


Evidence = ImageHashEvidence | ImageFeatureEvidence | AudioEvidence | VideoEvidence
"""The evidence of a match, of any kind."""
