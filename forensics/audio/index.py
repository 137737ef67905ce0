"""The persistent audio index: registration, identification and upkeep of an index directory.

Layout of the index directory::

    audio.sqlite                  catalogue (WAL): works, segments, settings, reference peaks
    seg-<n>.{keys,vals,dir}.npy   segments: sorted landmark hashes, global frames, bucket directory
    bass/                         the bass layer, an index of the same layout
    lock                          writers take an exclusive flock on it

:class:`AudioIndex` is a facade over parts of one concept each: a file's landmarks
(:mod:`~forensics.audio.fingerprint`); the catalogue of works on a global frame axis
(:mod:`~forensics.audio.catalogue`; 8 bytes per landmark, ≈ 3 MB per hour of audio); the
sorted, memory-mapped segments with O(1) lookups and a streaming k-way merge
(:mod:`~forensics.audio.segments`), kept consistent with the catalogue under a size-tiered
merge policy (:mod:`~forensics.audio.storage`); the decision rules ``main``, ``bass`` and
``both`` (:mod:`~forensics.audio.rules`); and the thresholds, calibrated on unrelated audio
for a stated false-positive rate per query window (:mod:`~forensics.audio.calibration`,
``docs/benchmarks.md``). Readers map the segments read-only and notice a writer's changes
through the catalogue's generation counter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from forensics.audio import calibration, rules
from forensics.audio.bass import BASS_PARAMS, DEFAULT_BASS_THRESHOLDS, DEFAULT_JOINT_THRESHOLDS
from forensics.audio.calibration import (
    DEFAULT_FPR_TARGET,
    DEFAULT_THRESHOLD,
    DEFAULT_THRESHOLDS,
    encode_threshold,
    threshold_at,
)
from forensics.audio.catalogue import FORMAT_VERSION
from forensics.audio.errors import AudioIndexError
from forensics.audio.fingerprint import (
    Fingerprint,
    check_fingerprint,
    fingerprint_file,
    fingerprint_layers,
    make_fingerprint,
    query_peaks,
)
from forensics.audio.landmarks import LandmarkParams, Peaks, anchor_peaks
from forensics.audio.match import Variant, default_variants
from forensics.audio.rules import Layer, WorkTable
from forensics.audio.segments import bucket_directory, plan_merge, size_tier
from forensics.audio.storage import LayerStorage
from forensics.evidence import AudioRule
from forensics.types import Match, MediaKind

__all__ = [
    "DEFAULT_FPR_TARGET",
    "DEFAULT_THRESHOLD",
    "DEFAULT_THRESHOLDS",
    "FORMAT_VERSION",
    "AudioIndex",
    "Fingerprint",
    "bucket_directory",
    "fingerprint_file",
    "make_fingerprint",
    "plan_merge",
    "size_tier",
]

_BASS_DIR = "bass"
_MERGE_CHUNK = 1 << 20


class AudioIndex:
    """Audio works in a persistent landmark index; implements :class:`forensics.types.MediaIndex`.

    Parameters
    ----------
    directory : Path
        Where the index lives; created if missing.
    threshold : float or mapping of float to float, optional
        Significance a match needs: one value for every query length, or a value per
        query window length in seconds (see :data:`DEFAULT_THRESHOLDS`); the value
        stored in the index (initially :data:`DEFAULT_THRESHOLDS`) when omitted. Giving
        one stores it.
    max_seconds : float
        Longest file accepted for registration (streamed in bounded memory).
    min_seconds : float
        Shortest file or query accepted.
    max_query_seconds : float
        Longest query accepted; longer queries are scanned in windows of
        ``window_seconds`` and each window is decided on its own.
    window_seconds : float
        Length of a query window (and the hop is half of it).
    max_segments : int
        Most segments kept (every lookup searches every segment): when more exist, the
        smallest are merged (see :func:`plan_merge`).
    fan_in : int
        Segments of one size tier (sizes within a factor ``fan_in``) merged at once, so a
        landmark is rewritten about ``log_fan_in`` (index size / work size) times.
    merge_chunk : int
        Entries a merge holds in memory at once (about 70 bytes each); see :meth:`compact`.
    readonly : bool
        Open an existing index for lookups only: the catalogues are opened read-only, no
        file or directory is created and no lock is taken; adding, removing or storing a
        threshold raises :class:`AudioIndexError`.

    Examples
    --------
    >>> import numpy as np, tempfile, wave, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(5)
    >>> song = np.repeat(rng.uniform(-1, 1, 8000 * 30 // 400), 400) * rng.standard_normal(8000 * 30)
    >>> def save(name, x):
    ...     with wave.open(str(d / name), "wb") as w:
    ...         w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
    ...         w.writeframes((x * 8000).astype("<i2").tobytes())
    ...     return d / name
    >>> index = AudioIndex(d / "idx")
    >>> len(index.add("song-1", save("song.wav", song)))
    32
    >>> m = index.identify(save("clip.wav", song[8000 * 12 : 8000 * 18]), top_k=1)[0]
    >>> m.work_id, round(m.details["ref_start"] - m.details["query_start"], 1)
    ('song-1', 12.0)
    >>> index.close()
    """

    kind: ClassVar[MediaKind] = "audio"

    def __init__(
        self,
        directory: Path | str,
        *,
        threshold: float | Mapping[float, float] | None = None,
        max_seconds: float = 12 * 3600.0,
        min_seconds: float = 2.0,
        max_query_seconds: float = 3600.0,
        window_seconds: float = 10.0,
        max_segments: int = 8,
        fan_in: int = 4,
        merge_chunk: int = _MERGE_CHUNK,
        params: LandmarkParams | None = None,
        variants: list[Variant] | None = None,
        bass: bool = True,
        bass_threshold: float | Mapping[float, float] | None = None,
        joint_threshold: float | Mapping[float, float] | None = None,
        readonly: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.readonly = readonly
        if readonly and (threshold is not None or bass_threshold is not None or joint_threshold is not None):
            raise AudioIndexError("thresholds cannot be stored in an audio index opened read-only")
        try:
            if not readonly:
                self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AudioIndexError(f"cannot create the audio index directory {self.directory}: {exc}") from exc
        if not self.directory.is_dir():
            raise AudioIndexError(
                f"{self.directory} is not a directory; give a directory for the audio index"
            )
        self.max_seconds = max_seconds
        self.min_seconds = min_seconds
        self.max_query_seconds = max_query_seconds
        self.window_seconds = window_seconds
        if max_segments < 1 or fan_in < 2:
            raise ValueError(f"max_segments must be >= 1 and fan_in >= 2, not {max_segments} and {fan_in}")
        self.max_segments = max_segments
        self.fan_in = fan_in
        if merge_chunk < 1:
            raise ValueError("merge_chunk must be at least 1 entry")
        self.merge_chunk = merge_chunk
        self.variants = variants if variants is not None else default_variants()
        self._closed = False
        stored = None if threshold is None else encode_threshold(threshold)
        self.storage = LayerStorage(
            self.directory,
            params,
            stored,
            max_segments=max_segments,
            fan_in=fan_in,
            merge_chunk=merge_chunk,
            readonly=readonly,
        )
        """The catalogue and the segment store (:class:`forensics.audio.storage.LayerStorage`)."""
        self.catalogue = self.storage.catalogue
        self.store = self.storage.store
        self.params = self.catalogue.params
        self._lock = self.storage.lock
        self._rule: AudioRule = "main" if bass else "bass"
        self._bass: AudioIndex | None = None
        if bass:
            self._open_bass(bass_threshold)
        if joint_threshold is not None:
            try:
                self.catalogue.set_many({"joint_threshold": encode_threshold(joint_threshold)})
            except BaseException:
                self.close()
                raise

    def _open_bass(self, threshold: float | Mapping[float, float] | None) -> None:
        """Open the bass layer under ``bass/``; a new index with the default parameters makes one.

        An index made before the bass layer existed keeps working without it: its works'
        audio is gone, so their bass fingerprints cannot be added afterwards.
        """
        where = self.directory / _BASS_DIR
        exists = (where / "audio.sqlite").exists()
        if not exists and self.readonly:
            return
        if not exists and not (self.catalogue.created and self.params == LandmarkParams()):
            return
        if not exists and threshold is None:
            threshold = DEFAULT_BASS_THRESHOLDS
        try:
            self._bass = AudioIndex(
                where,
                params=None if exists else BASS_PARAMS,
                threshold=threshold,
                max_seconds=self.max_seconds,
                min_seconds=self.min_seconds,
                max_query_seconds=self.max_query_seconds,
                window_seconds=self.window_seconds,
                bass=False,
                readonly=self.readonly,
            )
        except BaseException:
            self.catalogue.close()
            raise
        if self._bass.params.sample_rate * 4 != self.params.sample_rate:
            self._bass.close()
            self.catalogue.close()
            raise AudioIndexError(
                f"the bass layer in {where} analyses {self._bass.params.sample_rate} Hz, which is not a "
                f"quarter of the main layer's {self.params.sample_rate} Hz"
            )

    @property
    def bass(self) -> AudioIndex | None:
        """The bass layer (:mod:`forensics.audio.bass`), or ``None`` for an index made without one."""
        return self._bass

    # -- thresholds -----------------------------------------------------------------------

    @property
    def threshold(self) -> float:
        """Significance a full query window (``window_seconds``) needs."""
        return self.threshold_for(self.window_seconds)

    @property
    def thresholds(self) -> dict[float, float]:
        """Significance a match needs, per calibrated query window length (seconds)."""
        return self.catalogue.table("threshold", DEFAULT_THRESHOLDS)

    def threshold_for(self, seconds: float) -> float:
        """Significance a query window of ``seconds`` needs (interpolated between lengths)."""
        return threshold_at(self.thresholds, seconds)

    @property
    def joint_thresholds(self) -> dict[float, float]:
        """What the two layers' significances at one alignment need in sum, per window length.

        See :mod:`forensics.audio.rules`; :data:`forensics.audio.bass.DEFAULT_JOINT_THRESHOLDS`
        until :meth:`calibrate` sets them.
        """
        return self.catalogue.table("joint_threshold", DEFAULT_JOINT_THRESHOLDS)

    @property
    def fpr_target(self) -> float:
        """False-positive rate per query window the threshold is calibrated for."""
        return float(self.catalogue.get("fpr_target") or DEFAULT_FPR_TARGET)

    # -- state ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the catalogue and remap the segments if another writer changed them."""
        self._check_open()
        with self._lock:
            self.storage.sync()

    def works(self) -> WorkTable:
        """The catalogue's works (removed ones included until merged away), as of now."""
        with self._lock:
            self.refresh()
            return self.storage.works

    def reference_peaks(self, work_id: str) -> Peaks | None:
        """The stored peaks that candidates of registered work ``work_id`` are verified against."""
        with self._lock:
            works = self.works()
            row = works.row_of(work_id)
            return None if row is None else self.storage.reference(int(works.rowids[row]))

    def _check_open(self) -> None:
        if self._closed:
            raise AudioIndexError("the audio index is closed; open a new AudioIndex")

    def _layer(self) -> Layer:
        """The rules' view of this layer (the caller holds the lock and has synced)."""
        return Layer(
            rule=self._rule,
            params=self.params,
            variants=self.variants,
            window_seconds=self.window_seconds,
            works=self.storage.works,
            lookup=self.store.lookup,
            reference=self.storage.reference,
            thresholds=self.thresholds,  # read once, not per window
            fpr_target=self.fpr_target,
            empty=not self.store.segments(),
        )

    # -- MediaIndex -----------------------------------------------------------------------

    def add(self, work_id: str, path: Path) -> bytes:
        """Fingerprint ``path`` and index it under ``work_id``; return the fingerprint digest.

        An audio file or a video's first audio track is accepted. Registering an id that
        is already present replaces the earlier fingerprint.

        Raises
        ------
        MediaError
            The file is not decodable audio, too long, too short or has no spectral detail.
        AudioIndexError
            The index is closed or its frame axis is full.
        """
        self._check_open()
        if not isinstance(work_id, str) or not work_id:
            raise AudioIndexError("work_id must be a non-empty string")
        if self._bass is None:
            fp = fingerprint_file(
                path, self.params, max_seconds=self.max_seconds, min_seconds=self.min_seconds, strict=True
            )
            return self.add_fingerprint(work_id, fp)
        main, low = fingerprint_layers(
            Path(path),
            self.params,
            self._bass.params,
            max_seconds=self.max_seconds,
            min_seconds=self.min_seconds,
        )
        digest = self._add_fingerprint(work_id, main)
        try:
            if low is None:  # nothing below 300 Hz: the work is matched by the main layer only
                self._bass.remove(work_id)
            else:
                self._bass.add_fingerprint(work_id, low)
        except BaseException:
            # never leave an earlier version's bass fingerprint under the new registration
            self._bass.remove(work_id)
            raise
        return digest

    def add_fingerprint(self, work_id: str, fp: Fingerprint) -> bytes:
        """Index a fingerprint computed elsewhere (:func:`fingerprint_file`, :func:`make_fingerprint`).

        It must have been computed with this index's parameters; registering an id that
        is already present replaces the earlier fingerprint. It is the main layer's
        fingerprint only: the bass layer forgets the id, so an earlier version of the work
        cannot be matched there (:meth:`add` fills both layers).

        Returns
        -------
        bytes
            The fingerprint's digest.

        Raises
        ------
        AudioIndexError
            The id is empty, the fingerprint is malformed (arrays of other types or
            lengths, hashes not sorted, frames past its duration), the index is closed or
            its frame axis is full.

        Examples
        --------
        >>> import tempfile
        >>> index = AudioIndex(tempfile.mkdtemp())
        >>> fp = make_fingerprint([5, 9, 9], [0, 3, 1], 1.0)
        >>> index.add_fingerprint("w", fp) == fp.digest, index.stats()["landmarks"]
        (True, 3)
        >>> index.close()
        """
        digest = self._add_fingerprint(work_id, fp)
        if self._bass is not None:
            self._bass.remove(work_id)
        return digest

    def _add_fingerprint(self, work_id: str, fp: Fingerprint) -> bytes:
        self._check_open()
        if not isinstance(work_id, str) or not work_id:
            raise AudioIndexError("work_id must be a non-empty string")
        frames = check_fingerprint(fp, self.params)
        # verification needs the work's peaks; without them, the anchor peaks the hashes imply
        peaks = fp.peaks if fp.peaks is not None else anchor_peaks(fp.hashes, fp.frames, frames, self.params)
        self.storage.register(work_id, fp.hashes, fp.frames, frames, fp.digest, peaks)
        return fp.digest

    def remove(self, work_id: str) -> bool:
        """Forget ``work_id``; ``False`` when it was not registered."""
        self._check_open()
        removed = self.storage.remove(work_id)
        if self._bass is not None:
            self._bass.remove(work_id)
        return removed

    def identify(self, path: Path, top_k: int = 5) -> list[Match]:
        """Registered works heard in ``path``, best first, at most ``top_k``.

        The query is decoded leniently (a damaged upload is matched on what decodes). A
        query longer than ``window_seconds`` is scanned in half-overlapping windows; every
        occurrence of a work is reported (a work used twice gives two matches), ranked by
        score, each with the span where the query agrees with the work at its alignment
        (:func:`forensics.audio.rules.occurrences`); ``top_k`` counts occurrences.

        Raises
        ------
        MediaError
            The file is not decodable audio, is shorter than ``min_seconds``, or has no
            spectral detail (silence, a pure tone).
        """
        self._check_open()
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        peaks, low = query_peaks(
            Path(path),
            self.params,
            None if self._bass is None else self._bass.params,
            max_seconds=self.max_query_seconds,
            min_seconds=self.min_seconds,
        )
        return self.identify_peaks(peaks, top_k, bass=low)

    def identify_peaks(
        self, peaks: Peaks, top_k: int = 5, *, threshold: float | None = None, bass: Peaks | None = None
    ) -> list[Match]:
        """:meth:`identify` for peaks already extracted (see :func:`extract_peaks`).

        The decision rules of :mod:`forensics.audio.rules` decide: candidates are verified
        against the works' stored peaks, peak by peak and, when the peaks carry their
        evidence map (``extract_peaks(..., query=True)``), on the query's spectrum; peaks
        without a map score lower than the thresholds were calibrated for (never higher).
        ``threshold`` overrides the calibrated ones for this call (calibration uses 0).
        ``bass`` are the same query's bass-layer peaks (``extract_peaks(bass_samples(x),
        index.bass.params, query=True)``): with them and a bass layer, the ``main``,
        ``bass`` and ``both`` rules decide together (``evidence.layer`` says which found
        a match), each against its own thresholds.

        Raises
        ------
        ValueError
            The evidence map does not fit the peaks or the index's parameters.
        """
        found = self._identify_layer(peaks, top_k, threshold)
        if bass is None or self._bass is None:
            return found
        low, both = self._identify_bass(peaks, bass, threshold)
        return rules.decide(found, low, both, top_k)

    def best_scores(self, peaks: Peaks, bass: Peaks | None = None) -> dict[str, float]:
        """The best score of each decision rule on a query, with no threshold (0 when none).

        What :meth:`calibrate` sets the thresholds from: ``{"main": ...}``, and with
        ``bass`` peaks and a bass layer also ``"bass"`` and ``"both"`` (see
        :meth:`identify_peaks`).
        """
        top = self._identify_layer(peaks, 1, 0.0) if len(peaks) >= 4 else []
        out = {"main": float(top[0].score) if top else 0.0}
        if bass is not None and self._bass is not None:
            low, both = self._identify_bass(peaks, bass, 0.0) if len(bass) >= 4 else ([], [])
            out["bass"] = max((m.score for m in low), default=0.0)
            out["both"] = max((m.score for m in both), default=0.0)
        return out

    def _identify_layer(self, peaks: Peaks, top_k: int, threshold: float | None) -> list[Match]:
        self._check_open()
        rules.check_evidence_map(peaks, self.params)
        with self._lock:
            self.storage.sync()
            return rules.identify_layer(self._layer(), peaks, top_k, threshold)

    def _identify_bass(
        self, peaks: Peaks, bass: Peaks, threshold: float | None
    ) -> tuple[list[Match], list[Match]]:
        low = self._bass
        assert low is not None
        self._check_open()
        with self._lock, low._lock:
            self.storage.sync()
            low.storage.sync()
            return rules.identify_bass(
                self._layer(), low._layer(), peaks, bass, threshold, self.joint_thresholds
            )

    def stats(self) -> dict[str, Any]:
        """Counts and sizes: works, hours, landmarks, bytes on disk and per hour, threshold."""
        self._check_open()
        with self._lock:
            self.storage.sync()
            counts = self.storage.counts(self.params.frame_seconds)
            layer = self._bass.stats() if self._bass is not None else None
            size = int(counts["bytes"]) + (int(layer["bytes"]) if layer is not None else 0)
            hours = float(counts["hours"])
            return {
                "kind": self.kind,
                "works": counts["works"],
                "hours": round(hours, 4),
                "landmarks": counts["landmarks"],
                "segments": counts["segments"],
                "bytes": size,
                "bytes_per_hour": round(size / hours) if hours > 0 else None,
                "threshold": self.threshold,
                "thresholds": {f"{k:g} s": v for k, v in sorted(self.thresholds.items())},
                "fpr_target": self.fpr_target,
                "bass": None
                if layer is None
                else {k: layer[k] for k in ("works", "landmarks", "bytes", "thresholds")},
            }

    def close(self) -> None:
        """Release the catalogue and the memory maps; further calls raise."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.storage.close()
        if self._bass is not None:
            self._bass.close()

    def __enter__(self) -> AudioIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- maintenance ----------------------------------------------------------------------

    def compact(self, *, chunk: int | None = None) -> dict[str, int]:
        """Merge all segments into one, dropping the landmarks of removed works.

        Registrations merge only the smallest segments on their own (:func:`plan_merge`);
        this full merge, for an explicit clean-up, runs by itself when removed works hold a
        quarter of the entries. It streams, holding about ``chunk`` entries at once (about 70
        bytes each) whatever the size of the index; an error or a crash midway leaves the old
        segments in use (:meth:`forensics.audio.storage.LayerStorage.merge`).

        Parameters
        ----------
        chunk : int, optional
            Entries held at once; ``merge_chunk`` of the index when omitted.

        Returns
        -------
        dict
            ``segments`` merged, ``entries_in``, ``entries_out``, ``chunks`` written and
            the ``largest_chunk``.

        Raises
        ------
        AudioIndexError
            A segment file is damaged or disagrees with the catalogue (the old segments
            stay in use).

        Examples
        --------
        >>> import tempfile
        >>> index = AudioIndex(tempfile.mkdtemp())
        >>> for i in range(3):
        ...     _ = index.add_fingerprint(f"w{i}", make_fingerprint([i, 7, 9], [0, 1, 2], 1.0))
        >>> _ = index.remove("w1")
        >>> index.compact(chunk=2)["entries_out"], index.stats()["segments"]
        (6, 1)
        >>> index.close()
        """
        self._check_open()
        if chunk is not None and chunk < 1:
            raise ValueError("chunk must be at least 1 entry")
        with self.catalogue.writer():
            out = self.storage.merge(chunk or self.merge_chunk)
        if self._bass is not None:
            self._bass.compact(chunk=chunk)
        return out

    def calibrate(
        self,
        paths: Iterable[Path | str],
        *,
        fpr_target: float = DEFAULT_FPR_TARGET,
        lengths: Sequence[float] | None = None,
        window_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Set the thresholds from audio that holds none of the registered works.

        :func:`forensics.audio.calibration.calibrate` on this index: windows of each length
        in ``lengths`` (3 s, 5 s and ``window_seconds`` by default) of the unrelated audio in
        ``paths``; per length, a threshold one more than their highest score.

        Raises
        ------
        AudioIndexError
            Too few windows for ``fpr_target``, or the index is empty.
        """
        self._check_open()
        return calibration.calibrate(
            self, paths, fpr_target=fpr_target, lengths=lengths, window_seconds=window_seconds
        )

    def work_ids(self) -> list[str]:
        """Ids of the registered (not removed) works."""
        return self.works().live()
