"""The persistent audio index: landmark hashes in sorted, memory-mapped segments.

Layout of the index directory::

    audio.sqlite            catalogue (WAL): works, segments, settings
    seg-<n>.keys.npy        sorted uint32 landmark hashes of one segment
    seg-<n>.vals.npy        uint32 global frame of each hash's anchor (same order)
    seg-<n>.dir.npy         bucket directory: where the keys whose top B bits are b start
    lock                    writers take an exclusive flock on it

Every work owns a range of a global frame axis (``base`` .. ``base + frames``; 16 ms
frames, 2^32 of them ≈ 2 years of audio), so one uint32 per entry names both the work
and the time: 8 bytes per landmark, ≈ 3 MB per hour of audio, plus the directory
(4 bytes per 8 landmarks).

A lookup is O(1) in the size of the index: the hashes are mixed so that their top bits
are even (:func:`forensics.audio.landmarks.mix32`); the directory, with 2^B + 1 entries
for about 8 keys per bucket, gives the bucket of each query hash, and a vectorized binary
search inside the buckets (a few steps) finds the matching keys. Only the pages of the
memory-mapped files that a query touches are read. ``add`` writes one new
segment (fsync, rename) and commits its catalogue rows in one transaction, so a crash
never leaves a returned registration unsaved and never exposes a half-written one;
when more than :attr:`AudioIndex.max_segments` segments exist they are merged into one,
dropping removed works. Readers map the segments read-only and notice a writer's
changes through a generation counter.

Decisions are calibrated: a work is reported only when its aligned votes reach
``threshold``, measured on unrelated audio for a false-positive rate of at most
``fpr_target`` per query window (see ``docs/benchmarks.md``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from chain.crypto.sm3 import SM3
from forensics.audio.decode import iter_blocks
from forensics.audio.errors import AudioIndexError, ClipTooShortError, NoFingerprintError
from forensics.audio.landmarks import HASH_BITS, LandmarkParams, PeakExtractor, Peaks, hash_peaks
from forensics.audio.match import Candidate, Variant, default_variants, vote
from forensics.types import Match, MediaKind

__all__ = ["DEFAULT_FPR_TARGET", "DEFAULT_THRESHOLD", "AudioIndex", "fingerprint_file"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
DEFAULT_THRESHOLD = 10
"""Aligned query anchors a match needs: one more than the highest score (9) that 4,500
unrelated calibration windows of 3, 5 and 10 s reached against the benchmark's 3.15-h
catalogue (``bench/audio_robustness.py``, docs/benchmarks.md). Recalibrate with
:meth:`AudioIndex.calibrate` for a much larger catalogue."""
DEFAULT_FPR_TARGET = 1e-3
"""False-positive rate per query window the default threshold was calibrated for."""

_GAP_FRAMES = 1024
_STOP_FACTOR = 8.0
_MAX_FRAME = (1 << 32) - 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS works (
    idx INTEGER PRIMARY KEY,
    work_id TEXT NOT NULL,
    base INTEGER NOT NULL,
    frames INTEGER NOT NULL,
    hashes INTEGER NOT NULL,
    digest BLOB NOT NULL,
    added TEXT NOT NULL,
    removed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS works_by_id ON works (work_id);
CREATE TABLE IF NOT EXISTS segments (name TEXT PRIMARY KEY, entries INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Fingerprint:
    """Landmarks of one file.

    Attributes
    ----------
    hashes : numpy.ndarray of uint32
        Landmark hashes.
    frames : numpy.ndarray of uint32
        Anchor frame of each hash, relative to the start of the file.
    duration : float
        Seconds of audio decoded.
    digest : bytes
        SM3 of the fingerprint's canonical bytes (parameters, then hashes and frames).
    """

    hashes: npt.NDArray[np.uint32]
    frames: npt.NDArray[np.uint32]
    duration: float
    digest: bytes


def _peaks_of(
    path: Path, params: LandmarkParams, *, max_seconds: float | None, strict: bool, query: bool = False
) -> tuple[Peaks, float]:
    extractor = PeakExtractor(params, query=query)
    samples = 0
    for block in iter_blocks(
        path, sample_rate=params.sample_rate, max_seconds=max_seconds, strict=strict, block_seconds=30.0
    ):
        extractor.feed(block)
        samples += len(block)
    return extractor.finish(), samples / params.sample_rate


def _check_content(
    path: Path, peaks: Peaks, hashes: npt.NDArray[np.uint32], duration: float, min_s: float
) -> None:
    if duration < min_s:
        raise ClipTooShortError(
            f"{path} holds {duration:.2f} s of audio; at least {min_s:.1f} s are needed to fingerprint it"
        )
    distinct = len(np.unique(hashes))
    if len(peaks) < 2 * duration or distinct < max(20.0, 2.0 * duration):
        raise NoFingerprintError(
            f"{path} has too little spectral detail to fingerprint ({len(peaks)} peaks, {distinct} distinct "
            f"landmarks in {duration:.1f} s): it is silent, a pure tone or near-constant; give real "
            "music or speech"
        )


def fingerprint_file(
    path: Path | str,
    params: LandmarkParams | None = None,
    *,
    max_seconds: float | None = 12 * 3600.0,
    min_seconds: float = 2.0,
    strict: bool = True,
) -> Fingerprint:
    """Decode ``path`` (streaming) and compute its landmarks.

    Parameters
    ----------
    path : Path or str
        Audio file or video file with sound.
    params : LandmarkParams, optional
        Fingerprint parameters.
    max_seconds : float, optional
        Longest accepted audio.
    min_seconds : float
        Shortest accepted audio.
    strict : bool
        Refuse files ffmpeg reports decode errors for.

    Returns
    -------
    Fingerprint

    Raises
    ------
    MediaError
        Not decodable, too long, too short, or without spectral detail (its subclasses
        in :mod:`forensics.audio.errors` say which).

    Examples
    --------
    >>> import numpy as np, tempfile, wave, pathlib
    >>> rng = np.random.default_rng(3)
    >>> x = (rng.standard_normal(8000 * 3) * 3000).astype("<i2")
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "n.wav"
    >>> with wave.open(str(p), "wb") as w:
    ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000); w.writeframes(x.tobytes())
    >>> fp = fingerprint_file(p)
    >>> fp.duration, len(fp.digest), bool(len(fp.hashes) > 100)
    (3.0, 32, True)
    """
    path = Path(path)
    p = params or LandmarkParams()
    peaks, duration = _peaks_of(path, p, max_seconds=max_seconds, strict=strict)
    hashes, times = hash_peaks(peaks, p)
    _check_content(path, peaks, hashes, duration, min_seconds)
    frames = np.rint(times).astype(np.uint32)
    order = np.lexsort((frames, hashes))
    hashes, frames = hashes[order], frames[order]
    h = SM3(b"rongxin/audio-landmarks/v1\n")
    h.update(json.dumps(p.to_dict(), sort_keys=True).encode())
    h.update(hashes.astype("<u4").tobytes()).update(frames.astype("<u4").tobytes())
    return Fingerprint(hashes=hashes, frames=frames, duration=duration, digest=h.digest())


@dataclass
class _Segment:
    name: str
    keys: npt.NDArray[np.uint32]
    vals: npt.NDArray[np.uint32]
    buckets: npt.NDArray[np.unsignedinteger[Any]]

    @property
    def shift(self) -> int:
        return 32 - (len(self.buckets) - 1).bit_length() + 1


_KEYS_PER_BUCKET = 8


def bucket_directory(keys: npt.NDArray[np.uint32]) -> npt.NDArray[np.unsignedinteger[Any]]:
    """Start of each bucket of sorted ``keys`` (bucket = top B bits), plus the end.

    B is chosen for about eight keys per bucket (at least 2^4 buckets, at most 2^28).

    Examples
    --------
    >>> import numpy as np
    >>> keys = np.array([1, 2, 0x80000000, 0xFFFFFFFF], dtype=np.uint32)
    >>> bucket_directory(keys)[[0, 8, 15, 16]].tolist()
    [0, 2, 3, 4]
    """
    n = len(keys)
    bits = min(28, max(4, math.ceil(math.log2(max(n, 1) / _KEYS_PER_BUCKET))))
    counts = np.bincount(keys >> np.uint32(32 - bits), minlength=1 << bits)
    out: npt.NDArray[np.unsignedinteger[Any]] = np.zeros(
        (1 << bits) + 1, dtype=np.uint32 if n < (1 << 32) else np.uint64
    )
    np.cumsum(counts, out=out[1:])
    return out


def _search(
    keys: npt.NDArray[np.uint32],
    lo: npt.NDArray[np.int64],
    hi: npt.NDArray[np.int64],
    x: npt.NDArray[np.uint32],
    right: bool,
) -> npt.NDArray[np.int64]:
    """Vectorized binary search of each ``x[i]`` in ``keys[lo[i]:hi[i]]`` (sorted)."""
    lo, hi = lo.copy(), hi.copy()
    active = np.flatnonzero(lo < hi)
    while active.size:
        mid = (lo[active] + hi[active]) // 2
        k = keys[mid]
        go_right = k <= x[active] if right else k < x[active]
        lo[active[go_right]] = mid[go_right] + 1
        hi[active[~go_right]] = mid[~go_right]
        active = active[lo[active] < hi[active]]
    return lo


class AudioIndex:
    """Audio works in a persistent landmark index; implements :class:`forensics.types.MediaIndex`.

    Parameters
    ----------
    directory : Path
        Where the index lives; created if missing.
    threshold : int, optional
        Votes a match needs; the value stored in the index (initially
        :data:`DEFAULT_THRESHOLD`) when omitted. Giving one stores it.
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
        Merge segments when more than this many exist.

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
        threshold: int | None = None,
        max_seconds: float = 12 * 3600.0,
        min_seconds: float = 2.0,
        max_query_seconds: float = 3600.0,
        window_seconds: float = 10.0,
        max_segments: int = 8,
        params: LandmarkParams | None = None,
        variants: list[Variant] | None = None,
    ) -> None:
        self.directory = Path(directory)
        try:
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
        self.max_segments = max_segments
        self.variants = variants if variants is not None else default_variants()
        self._lock = threading.RLock()
        self._closed = False
        try:
            self._db = sqlite3.connect(self.directory / "audio.sqlite", check_same_thread=False, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            with self._writer(), self._db:
                self._db.executescript(_SCHEMA)
                self.params = self._init_settings(params)
                if threshold is not None:
                    self._set("threshold", str(int(threshold)))
        except sqlite3.DatabaseError as exc:
            raise AudioIndexError(
                f"{self.directory / 'audio.sqlite'} is not a usable audio index ({exc}); "
                "give an empty directory or restore the index from a backup"
            ) from exc
        self._generation = -1
        self._segments: list[_Segment] = []
        self._bases = np.zeros(0, dtype=np.int64)
        self._alive = np.zeros(0, dtype=bool)
        self._ids: list[str] = []
        self._frames = np.zeros(0, dtype=np.int64)
        self._refresh()

    # -- settings and state ---------------------------------------------------------------

    def _get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))

    def _init_settings(self, params: LandmarkParams | None) -> LandmarkParams:
        stored = self._get("params")
        if stored is None:
            chosen = params or LandmarkParams()
            self._set("format", str(FORMAT_VERSION))
            self._set("params", json.dumps(chosen.to_dict(), sort_keys=True))
            self._set("threshold", str(DEFAULT_THRESHOLD))
            self._set("fpr_target", repr(DEFAULT_FPR_TARGET))
            self._set("next_base", "0")
            self._set("generation", "0")
            return chosen
        if self._get("format") != str(FORMAT_VERSION):
            raise AudioIndexError(
                f"{self.directory} holds an audio index of format {self._get('format')}, this code reads "
                f"format {FORMAT_VERSION}; re-register the works into a new directory"
            )
        try:
            existing = LandmarkParams(**json.loads(stored))
        except (TypeError, ValueError) as exc:
            raise AudioIndexError(f"the parameters stored in {self.directory} are unreadable: {exc}") from exc
        if params is not None and params != existing:
            raise AudioIndexError(
                f"{self.directory} was built with other fingerprint parameters; open it without "
                "params or use a new directory"
            )
        return existing

    @property
    def threshold(self) -> int:
        """Votes a match needs."""
        return int(self._get("threshold") or DEFAULT_THRESHOLD)

    @property
    def fpr_target(self) -> float:
        """False-positive rate per query window the threshold is calibrated for."""
        return float(self._get("fpr_target") or DEFAULT_FPR_TARGET)

    def _refresh(self) -> None:
        generation = int(self._get("generation") or 0)
        if generation == self._generation:
            return
        self._db.execute("BEGIN")  # one snapshot of works and segments
        try:
            generation = int(self._get("generation") or 0)
            rows = self._db.execute(
                "SELECT idx, work_id, base, frames, removed FROM works ORDER BY base"
            ).fetchall()
            names = [str(r[0]) for r in self._db.execute("SELECT name FROM segments ORDER BY name")]
        finally:
            self._db.execute("COMMIT")
        self._ids = [str(r[1]) for r in rows]
        self._bases = np.array([int(r[2]) for r in rows], dtype=np.int64)
        self._frames = np.array([int(r[3]) for r in rows], dtype=np.int64)
        self._alive = np.array([not r[4] for r in rows], dtype=bool)
        loaded = {s.name: s for s in self._segments}
        segments = []
        for name in names:
            seg = loaded.get(name) or self._load_segment(name)
            segments.append(seg)
        self._segments = segments
        self._generation = generation

    def _load_segment(self, name: str) -> _Segment:
        try:
            keys = np.load(self.directory / f"{name}.keys.npy", mmap_mode="r")
            vals = np.load(self.directory / f"{name}.vals.npy", mmap_mode="r")
            buckets = np.load(self.directory / f"{name}.dir.npy", mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise AudioIndexError(
                f"segment {name} of {self.directory} is missing or damaged ({exc}); restore the index "
                "directory from a backup or re-register its works"
            ) from exc
        n_buckets = len(buckets) - 1 if buckets.ndim == 1 else 0
        if (
            keys.dtype != np.uint32
            or vals.dtype != np.uint32
            or keys.shape != vals.shape
            or keys.ndim != 1
            or buckets.dtype not in (np.uint32, np.uint64)
            or n_buckets < 1
            or n_buckets & (n_buckets - 1)
            or int(buckets[-1]) != len(keys)
        ):
            raise AudioIndexError(f"segment {name} of {self.directory} has a wrong layout; rebuild the index")
        return _Segment(name, keys, vals, buckets)

    @contextlib.contextmanager
    def _writer(self) -> Iterator[None]:
        with self._lock, open(self.directory / "lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _check_open(self) -> None:
        if self._closed:
            raise AudioIndexError("the audio index is closed; open a new AudioIndex")

    def _bump(self) -> None:
        self._set("generation", str(int(self._get("generation") or 0) + 1))

    def _write_segment(self, name: str, keys: npt.NDArray[np.uint32], vals: npt.NDArray[np.uint32]) -> None:
        directory = bucket_directory(keys)
        for part, arr in (("keys", keys), ("vals", vals), ("dir", directory)):
            final = self.directory / f"{name}.{part}.npy"
            tmp = self.directory / f".{name}.{part}.npy.tmp"
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(arr))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @staticmethod
    def _new_segment_name() -> str:
        return f"seg-{uuid.uuid4().hex}"

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
        fp = fingerprint_file(
            path, self.params, max_seconds=self.max_seconds, min_seconds=self.min_seconds, strict=True
        )
        frames = round(fp.duration / self.params.frame_seconds) + 1
        with self._writer():
            base = int(self._get("next_base") or 0)
            if base + frames + _GAP_FRAMES > _MAX_FRAME:
                raise AudioIndexError(
                    f"the audio index {self.directory} is full (2^32 frames); start a new index directory"
                )
            name = self._new_segment_name()
            vals = (fp.frames.astype(np.int64) + base).astype(np.uint32)
            self._write_segment(name, fp.hashes, vals)
            try:
                with self._db:
                    replaced = self._db.execute(
                        "UPDATE works SET removed = 1 WHERE work_id = ? AND removed = 0", (work_id,)
                    ).rowcount
                    self._db.execute(
                        "INSERT INTO works (work_id, base, frames, hashes, digest, added) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (work_id, base, frames, len(fp.hashes), fp.digest, datetime.now(UTC).isoformat()),
                    )
                    self._db.execute("INSERT INTO segments (name, entries) VALUES (?, ?)", (name, len(vals)))
                    self._set("next_base", str(base + frames + _GAP_FRAMES))
                    self._bump()
            except BaseException:
                self._remove_files(name)
                raise
            if replaced:
                log.info("audio work %s re-registered; the earlier fingerprint is dropped", work_id)
            self._maybe_compact()
        return fp.digest

    def remove(self, work_id: str) -> bool:
        """Forget ``work_id``; ``False`` when it was not registered."""
        self._check_open()
        with self._writer():
            with self._db:
                n = self._db.execute(
                    "UPDATE works SET removed = 1 WHERE work_id = ? AND removed = 0", (work_id,)
                ).rowcount
                if n:
                    self._bump()
            if n:
                self._maybe_compact()
        return bool(n)

    def identify(self, path: Path, top_k: int = 5) -> list[Match]:
        """Registered works heard in ``path``, best first, at most ``top_k``.

        The query is decoded leniently (a damaged upload is matched on what decodes). A
        query longer than ``window_seconds`` is scanned in half-overlapping windows; each
        work is reported once, with its best window.

        Raises
        ------
        MediaError
            The file is not decodable audio, is shorter than ``min_seconds``, or has no
            spectral detail (silence, a pure tone).
        """
        self._check_open()
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        p = self.params
        peaks, duration = _peaks_of(
            Path(path), p, max_seconds=self.max_query_seconds, strict=False, query=True
        )
        hashes, _ = hash_peaks(peaks, p)
        _check_content(Path(path), peaks, hashes, duration, self.min_seconds)
        return self.identify_peaks(peaks, top_k)

    def identify_peaks(self, peaks: Peaks, top_k: int = 5, *, threshold: int | None = None) -> list[Match]:
        """:meth:`identify` for peaks already extracted (see :func:`extract_peaks`).

        ``threshold`` overrides the calibrated one for this call (calibration uses 0 to
        see the best score on unrelated audio).
        """
        self._check_open()
        with self._lock:
            self._refresh()
            if not self._segments:
                return []
            threshold = self.threshold if threshold is None else threshold
            fpr = self.fpr_target
            fs = self.params.frame_seconds
            best: dict[int, Candidate] = {}
            for w0, window in self._windows(peaks):
                for cand in vote(
                    window,
                    self._lookup,
                    self._bases,
                    params=self.params,
                    variants=self.variants,
                    alive=self._alive,
                    top_k=top_k,
                    min_votes=threshold,
                ):
                    if cand.votes < threshold:
                        continue
                    shifted = _shift(cand, w0)
                    if cand.work not in best or best[cand.work].votes < cand.votes:
                        best[cand.work] = shifted
            ranked = sorted(best.values(), key=lambda c: -c.votes)[:top_k]
            return [self._match(c, threshold, fpr, fs) for c in ranked]

    def _windows(self, peaks: Peaks) -> Iterator[tuple[float, Peaks]]:
        fs = self.params.frame_seconds
        length = self.window_seconds / fs
        total = peaks.frames
        if total <= length * 1.5:
            yield 0.0, peaks
            return
        hop = length / 2
        starts = np.arange(0.0, max(total - length, 0.0) + hop, hop)
        for s in starts:
            sel = (peaks.t >= s) & (peaks.t < s + length)
            if sel.sum() < 4:
                continue
            yield (
                float(s),
                Peaks(peaks.t[sel] - s, peaks.lf[sel], peaks.strength[sel], int(min(length, total - s))),
            )

    def _match(self, c: Candidate, threshold: int, fpr: float, fs: float) -> Match:
        details = {
            "query_start": round(c.query_start * fs, 3),
            "query_end": round(c.query_end * fs, 3),
            "ref_start": round(c.ref_start * fs, 3),
            "ref_end": round(c.ref_end * fs, 3),
            "speed": round(c.speed, 4),
            "pitch": round(c.variant.pitch_scale, 4),
            "offset_accuracy": round(max(fs, c.residual * fs), 3),
            "votes": c.votes,
            "fpr_target": fpr,
        }
        return Match(
            work_id=self._ids[c.work],
            score=float(c.votes),
            kind="audio",
            threshold=float(threshold),
            details=details,
        )

    def _lookup(self, hashes: npt.NDArray[np.uint32]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint32]]:
        qparts: list[npt.NDArray[np.int64]] = []
        vparts: list[npt.NDArray[np.uint32]] = []
        for seg in self._segments:
            bucket = (hashes >> np.uint32(seg.shift)).astype(np.int64)
            b_lo = np.asarray(seg.buckets[bucket], dtype=np.int64)
            b_hi = np.asarray(seg.buckets[bucket + 1], dtype=np.int64)
            lo = _search(seg.keys, b_lo, b_hi, hashes, right=False)
            hi = _search(seg.keys, lo, b_hi, hashes, right=True)
            counts = hi - lo
            # stop-word rule: a hash far more common than average carries little evidence
            # and dominates the cost; skip it (measured: no loss of accuracy, see docs)
            cap = max(32, int(_STOP_FACTOR * len(seg.keys) / (1 << HASH_BITS)))
            counts[counts > cap] = 0
            total = int(counts.sum())
            if total == 0:
                continue
            qpos = np.repeat(np.arange(len(hashes), dtype=np.int64), counts)
            starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
            pos = starts + np.arange(total)
            qparts.append(qpos)
            vparts.append(np.asarray(seg.vals[pos]))
        if not qparts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint32)
        return np.concatenate(qparts), np.concatenate(vparts)

    def stats(self) -> dict[str, Any]:
        """Counts and sizes: works, hours, landmarks, bytes on disk and per hour, threshold."""
        self._check_open()
        with self._lock:
            self._refresh()
            fs = self.params.frame_seconds
            alive_frames = int(self._frames[self._alive].sum()) if len(self._frames) else 0
            hours = alive_frames * fs / 3600.0
            entries = sum(len(s.keys) for s in self._segments)
            size = sum(f.stat().st_size for f in self.directory.glob("seg-*.npy"))
            size += sum(f.stat().st_size for f in self.directory.glob("audio.sqlite*"))
            return {
                "kind": self.kind,
                "works": int(self._alive.sum()),
                "hours": round(hours, 4),
                "landmarks": entries,
                "segments": len(self._segments),
                "bytes": size,
                "bytes_per_hour": round(size / hours) if hours > 0 else None,
                "threshold": self.threshold,
                "fpr_target": self.fpr_target,
            }

    def close(self) -> None:
        """Release the catalogue and the memory maps; further calls raise."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._segments = []
            self._db.close()

    def __enter__(self) -> AudioIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- maintenance ----------------------------------------------------------------------

    def compact(self) -> None:
        """Merge all segments into one, dropping the landmarks of removed works."""
        self._check_open()
        with self._writer():
            self._compact()

    def _maybe_compact(self) -> None:
        n_segments = int(self._db.execute("SELECT COUNT(*) FROM segments").fetchone()[0])
        removed = int(
            self._db.execute("SELECT COALESCE(SUM(hashes), 0) FROM works WHERE removed = 1").fetchone()[0]
        )
        total = int(self._db.execute("SELECT COALESCE(SUM(entries), 0) FROM segments").fetchone()[0])
        if n_segments > self.max_segments or (removed > 0 and removed * 4 > total):
            self._compact()

    def _compact(self) -> None:
        self._generation = -1
        self._refresh()
        old = [s.name for s in self._segments]
        if not old:
            return
        keys = np.concatenate([np.asarray(s.keys) for s in self._segments])
        vals = np.concatenate([np.asarray(s.vals) for s in self._segments])
        if len(self._bases):
            owner = np.searchsorted(self._bases, vals.astype(np.int64), side="right") - 1
            keep = self._alive[owner]
            keys, vals = keys[keep], vals[keep]
        order = np.argsort(keys, kind="stable")
        keys, vals = keys[order], vals[order]
        name = self._new_segment_name()
        self._write_segment(name, keys, vals)
        with self._db:
            self._db.execute("DELETE FROM segments")
            self._db.execute("INSERT INTO segments (name, entries) VALUES (?, ?)", (name, len(keys)))
            self._db.execute("DELETE FROM works WHERE removed = 1")
            self._bump()
        for n in old:
            self._remove_files(n)
        self._generation = -1
        self._refresh()

    def _remove_files(self, name: str) -> None:
        for part in ("keys", "vals", "dir"):
            with contextlib.suppress(FileNotFoundError):
                (self.directory / f"{name}.{part}.npy").unlink()

    def calibrate(
        self,
        paths: Iterable[Path | str],
        *,
        fpr_target: float = DEFAULT_FPR_TARGET,
        window_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Set the threshold from audio that holds none of the registered works.

        Every file is cut into half-overlapping windows of ``window_seconds`` (the query
        window, by default); each window is matched with no threshold and its best score
        kept. The new threshold is one more than the highest score, so none of the
        windows would have matched: with ``n`` windows that bounds the false-positive rate
        per query at about ``1 / n``. Chance scores grow with the amount of registered
        audio, so calibrate again after the catalogue has grown several-fold.

        Parameters
        ----------
        paths : iterable of Path
            Unrelated audio (music and speech like the expected queries, none of it
            registered), decoded leniently.
        fpr_target : float
            The false-positive rate per query to reach; at least ``1 / fpr_target``
            windows are needed.
        window_seconds : float, optional
            Window length; ``self.window_seconds`` when omitted.

        Returns
        -------
        dict
            ``windows``, ``max_score``, ``threshold`` and ``fpr_target``.

        Raises
        ------
        AudioIndexError
            Too few windows for ``fpr_target``, or the index is empty.
        """
        self._check_open()
        if not self.work_ids():
            raise AudioIndexError("the audio index is empty; register the works before calibrating")
        length = (window_seconds or self.window_seconds) / self.params.frame_seconds
        scores: list[int] = []
        for path in paths:
            peaks, _ = _peaks_of(
                Path(path), self.params, max_seconds=self.max_seconds, strict=False, query=True
            )
            for start in np.arange(0.0, max(peaks.frames - length, 0.0) + 1.0, length / 2):
                sel = (peaks.t >= start) & (peaks.t < start + length)
                window = Peaks(peaks.t[sel] - start, peaks.lf[sel], peaks.strength[sel], int(length))
                top = self.identify_peaks(window, top_k=1, threshold=0) if sel.sum() >= 4 else []
                scores.append(int(top[0].score) if top else 0)
        needed = math.ceil(1.0 / fpr_target)
        if len(scores) < needed:
            raise AudioIndexError(
                f"calibration needs at least {needed} windows for a false-positive rate of {fpr_target:g}, "
                f"the files gave {len(scores)}; give more unrelated audio"
            )
        threshold = max(scores) + 1
        with self._writer(), self._db:
            self._set("threshold", str(threshold))
            self._set("fpr_target", repr(float(fpr_target)))
        return {
            "windows": len(scores),
            "max_score": max(scores),
            "threshold": threshold,
            "fpr_target": fpr_target,
        }

    def work_ids(self) -> list[str]:
        """Ids of the registered (not removed) works."""
        self._check_open()
        with self._lock:
            self._refresh()
            return [w for w, a in zip(self._ids, self._alive, strict=True) if a]


def _shift(c: Candidate, w0: float) -> Candidate:
    if w0 == 0.0:
        return c
    return Candidate(
        work=c.work,
        votes=c.votes,
        variant=c.variant,
        speed=c.speed,
        query_start=c.query_start + w0,
        query_end=c.query_end + w0,
        ref_start=c.ref_start,
        ref_end=c.ref_end,
        residual=c.residual,
    )
