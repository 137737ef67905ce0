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
when more than :attr:`AudioIndex.max_segments` segments exist, a run of the smallest
segments of similar size is merged (a size-tiered policy, :func:`plan_merge`), so that a
landmark is rewritten about ``log_fan_in`` (index size) times in all, not once every few
registrations; removed works' landmarks are dropped whenever their segment is merged,
and :meth:`AudioIndex.compact` (also run when removed works hold a quarter of the
entries) merges everything into one. The catalogue records which segment holds each
work. The merge streams: a k-way merge of the sorted segments read in
blocks, writing the new keys, values and bucket directory front to back, so its memory
is bounded by ``merge_chunk`` entries, not by the size of the index (see
:meth:`AudioIndex.compact`). Readers map the segments read-only and notice a writer's
changes through a generation counter.

Decisions are calibrated: a work is reported only when its aligned votes reach
``threshold``, measured on unrelated audio for a false-positive rate of at most
``fpr_target`` per query window (see ``docs/benchmarks.md``).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import math
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from chain.crypto.sm3 import SM3
from forensics.audio.bass import BASS_PARAMS, DEFAULT_BASS_THRESHOLDS, DEFAULT_JOINT_THRESHOLDS, Decimator
from forensics.audio.decode import iter_blocks
from forensics.audio.errors import AudioIndexError, ClipTooShortError, NoFingerprintError
from forensics.audio.landmarks import (
    HASH_BITS,
    LandmarkParams,
    PeakExtractor,
    Peaks,
    analysis_bins,
    anchor_peaks,
    hash_peaks,
)
from forensics.audio.match import Candidate, Variant, Verification, default_variants, verify, vote
from forensics.audio.peakstore import SCHEMA as _PEAK_SCHEMA
from forensics.audio.peakstore import PeakStore
from forensics.types import Match, MediaKind

__all__ = [
    "DEFAULT_FPR_TARGET",
    "DEFAULT_THRESHOLD",
    "DEFAULT_THRESHOLDS",
    "AudioIndex",
    "Fingerprint",
    "fingerprint_file",
    "make_fingerprint",
    "plan_merge",
    "size_tier",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 6
DEFAULT_THRESHOLDS: dict[float, float] = {3.0: 9.356, 5.0: 11.951, 10.0: 13.354}
"""Score a match needs (the peak check's significance plus the spectral evidence's, in
decades; see :func:`forensics.audio.match.verify`), per query window length in seconds
(interpolated between, constant beyond): at each length one more than the highest score
that the unrelated calibration windows of that length (5,940 / 5,947 / 4,581 at 3 / 5 /
10 s, from about 6.8 h of music and speech) reached against the benchmark's catalogue
(``bench/audio_robustness.py``, docs/benchmarks.md, session 6). Recalibrate with
:meth:`AudioIndex.calibrate` for a much larger catalogue."""
DEFAULT_THRESHOLD = DEFAULT_THRESHOLDS[10.0]
"""The threshold of a full 10-s query window."""
_UPGRADABLE = {
    "3": "scores now count reference frames, not single peaks",
    "4": "few-vote candidates are now verified at their hypothesis's speed",
    "5": "scores now add the query spectrum's evidence at the reference's peaks",
}
"""Older formats whose stored data this code reads, and what changed in their scores."""
DEFAULT_FPR_TARGET = 1e-3
"""False-positive rate per query window the default threshold was calibrated for."""

_GAP_FRAMES = 1024
_BASS_DIR = "bass"
_CANDIDATE_VOTES = 3
"""Aligned hash votes a candidate needs before it is verified peak by peak."""
_VERIFY_TOP = 10
"""Candidates verified per query window (the best by votes)."""
_JOINT_VOTES = 2
"""Aligned bass-layer votes a candidate needs to be checked in both layers at once."""
_STOP_FACTOR = 8.0
_MERGE_CHUNK = 1 << 20
_MIN_BLOCK = 64
_PARTS = ("keys", "vals", "dir")
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
    removed INTEGER NOT NULL DEFAULT 0,
    segment TEXT
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
    peaks : Peaks, optional
        The spectral peaks the hashes came from; the index keeps them to verify candidate
        alignments peak by peak. Without them :meth:`AudioIndex.add_fingerprint` keeps the
        anchor peaks the hashes imply (coarser: a frame and half a semitone).
    """

    hashes: npt.NDArray[np.uint32]
    frames: npt.NDArray[np.uint32]
    duration: float
    digest: bytes
    peaks: Peaks | None = None


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


def _layers_of(
    path: Path,
    params: LandmarkParams,
    bass: LandmarkParams,
    *,
    max_seconds: float | None,
    strict: bool,
    query: bool = False,
) -> tuple[Peaks, Peaks, float]:
    """Peaks of the main layer and of the bass layer from one decode of ``path``."""
    main = PeakExtractor(params, query=query)
    low = PeakExtractor(bass, query=query)
    decimator = Decimator()
    samples = 0
    for block in iter_blocks(
        path, sample_rate=params.sample_rate, max_seconds=max_seconds, strict=strict, block_seconds=30.0
    ):
        main.feed(block)
        low.feed(decimator.feed(block))
        samples += len(block)
    return main.finish(), low.finish(), samples / params.sample_rate


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
    return _fingerprint(path, peaks, duration, p, min_seconds)


def _fingerprint(
    path: Path, peaks: Peaks, duration: float, params: LandmarkParams, min_seconds: float
) -> Fingerprint:
    """The fingerprint of ``peaks`` decoded from ``path``, refused when it has too little content."""
    hashes, times = hash_peaks(peaks, params)
    _check_content(path, peaks, hashes, duration, min_seconds)
    return make_fingerprint(hashes, times, duration, params, peaks=peaks)


def make_fingerprint(
    hashes: npt.ArrayLike,
    times: npt.ArrayLike,
    duration: float,
    params: LandmarkParams | None = None,
    *,
    peaks: Peaks | None = None,
) -> Fingerprint:
    """A :class:`Fingerprint` from landmarks computed elsewhere: sorted and digested.

    Parameters
    ----------
    hashes : array_like of uint32
        Landmark hashes.
    times : array_like
        Anchor time of each hash in frames from the start of the file (rounded).
    duration : float
        Seconds of audio the landmarks come from.
    params : LandmarkParams, optional
        The parameters they were computed with (part of the digest).
    peaks : Peaks, optional
        The peaks they were computed from (see :attr:`Fingerprint.peaks`; not part of
        the digest, which names the hashes).

    Returns
    -------
    Fingerprint
        Sorted by hash, then frame, as :meth:`AudioIndex.add_fingerprint` needs.

    Raises
    ------
    ValueError
        Hashes and times differ in length, a time is negative or past ``duration``, or a
        hash does not fit 32 bits.

    Examples
    --------
    >>> fp = make_fingerprint([7, 3, 7], [5.2, 1.0, 2.0], 1.0)
    >>> fp.hashes.tolist(), fp.frames.tolist(), len(fp.digest)
    ([3, 7, 7], [1, 2, 5], 32)
    """
    p = params or LandmarkParams()
    h_in, t_in = np.asarray(hashes), np.asarray(times, dtype=np.float64)
    if h_in.ndim != 1 or h_in.shape != t_in.shape:
        raise ValueError(f"hashes and times must be 1-D and of one length, not {h_in.shape} and {t_in.shape}")
    if not math.isfinite(duration) or duration < 0:
        raise ValueError(f"duration must be a finite number of seconds >= 0, not {duration}")
    if h_in.size and (int(h_in.min()) < 0 or int(h_in.max()) > _MAX_FRAME):
        raise ValueError("landmark hashes must fit in 32 bits (0 .. 2^32 - 1)")
    frames = np.rint(t_in)
    last = round(duration / p.frame_seconds)
    if frames.size and (not np.all(np.isfinite(frames)) or frames.min() < 0 or frames.max() > last):
        raise ValueError(f"landmark times must lie in 0 .. {last} frames ({duration:g} s)")
    h32, f32 = h_in.astype(np.uint32), frames.astype(np.uint32)
    order = np.lexsort((f32, h32))
    h32, f32 = h32[order], f32[order]
    h = SM3(b"rongxin/audio-landmarks/v1\n")
    h.update(json.dumps(p.to_dict(), sort_keys=True).encode())
    h.update(h32.astype("<u4").tobytes()).update(f32.astype("<u4").tobytes())
    return Fingerprint(hashes=h32, frames=f32, duration=duration, digest=h.digest(), peaks=peaks)


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
    bits = _bucket_bits(n)
    counts = np.bincount(keys >> np.uint32(32 - bits), minlength=1 << bits)
    out: npt.NDArray[np.unsignedinteger[Any]] = np.zeros((1 << bits) + 1, dtype=_directory_dtype(n))
    np.cumsum(counts, out=out[1:])
    return out


def size_tier(entries: int, fan_in: int) -> int:
    """The size tier of a segment of ``entries`` landmarks: ``floor(log_fan_in(entries))``, 0 for none.

    Examples
    --------
    >>> [size_tier(n, 4) for n in (0, 3, 4, 15, 16, 1000)]
    [0, 0, 1, 1, 2, 4]
    """
    tier = 0
    while entries >= fan_in:
        entries //= fan_in
        tier += 1
    return tier


def plan_merge(sizes: Mapping[str, int], max_segments: int, fan_in: int) -> list[str]:
    """The segments to merge next under the size-tiered policy; empty when none need merging.

    Nothing is merged while at most ``max_segments`` segments exist. Otherwise segments
    are grouped into tiers by size (:func:`size_tier`) and the smallest tier holding at
    least ``fan_in`` segments is merged whole: the result is at least ``fan_in`` times the
    tier's floor, so it lands in a higher tier and each landmark climbs a tier per
    rewrite (``log_fan_in`` of the index size rewrites in all). When no tier is that
    full, the smallest tier holding two or more segments is merged, and when every tier
    holds one, the two smallest segments: the cheapest merges that keep the count down.

    Parameters
    ----------
    sizes : mapping of str to int
        Landmarks (entries) of each segment, by segment name.
    max_segments : int
        Segments allowed before a merge is due.
    fan_in : int
        Segments of one tier merged together (at least 2).

    Returns
    -------
    list of str
        Names of the segments to merge, sorted (the order of equal hashes in the
        result), or an empty list.

    Examples
    --------
    >>> plan_merge({"a": 100, "b": 90, "c": 5000}, max_segments=3, fan_in=4)
    []
    >>> plan_merge({"a": 100, "b": 90, "c": 80, "d": 110, "e": 5000}, max_segments=4, fan_in=4)
    ['a', 'b', 'c', 'd']
    >>> plan_merge({"a": 100, "b": 90, "c": 300, "e": 5000}, max_segments=3, fan_in=4)
    ['a', 'b']
    >>> plan_merge({"a": 10, "b": 100, "c": 1000}, max_segments=2, fan_in=4)
    ['a', 'b']
    """
    if len(sizes) <= max_segments:
        return []
    tiers: dict[int, list[str]] = {}
    for name in sorted(sizes, key=lambda n: (sizes[n], n)):
        tiers.setdefault(size_tier(sizes[name], fan_in), []).append(name)
    ordered = [tiers[t] for t in sorted(tiers)]
    for least in (fan_in, 2):
        for run in ordered:
            if len(run) >= least:
                return sorted(run)
    return sorted(name for run in ordered[:2] for name in run)


def _in_clause(column: str, values: list[str]) -> tuple[str, tuple[str, ...]]:
    """``column IN (?, ...)`` and its arguments, for a SQL ``WHERE``."""
    return f"{column} IN ({', '.join('?' * len(values))})", tuple(values)


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


# -- streaming merge ---------------------------------------------------------------------------
# A merge reads each segment front to back in blocks (plain reads, so the page cache and
# not the process holds the files) and writes the merged keys, values and bucket
# directory front to back; it holds about ``chunk`` entries of the inputs at once.


def _bucket_bits(n: int) -> int:
    return min(28, max(4, math.ceil(math.log2(max(n, 1) / _KEYS_PER_BUCKET))))


def _directory_dtype(n: int) -> np.dtype[Any]:
    return np.dtype("<u4") if n < (1 << 32) else np.dtype("<u8")


class _NpyWriter:
    """A 1-D ``.npy`` file of ``n`` items written front to back in pieces, then fsynced."""

    def __init__(self, path: Path, dtype: np.dtype[Any], n: int) -> None:
        self.path, self.dtype, self.n, self.written = path, dtype, n, 0
        self._fh = open(path, "wb")  # noqa: SIM115 - closed by close()/abort()
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n,)}
        np.lib.format.write_array_header_1_0(self._fh, header)

    def write(self, arr: npt.NDArray[Any]) -> None:
        if self.written + len(arr) > self.n:
            raise AudioIndexError(
                f"{self.path.name}: more entries than the {self.n} the catalogue counts; the catalogue "
                "and the segments disagree: restore the index from a backup or re-register its works"
            )
        self._fh.write(np.ascontiguousarray(arr, dtype=self.dtype).data)
        self.written += len(arr)

    def close(self) -> None:
        if self.written != self.n:
            raise AudioIndexError(
                f"{self.path.name}: {self.written} entries written, the catalogue counts {self.n}; the "
                "catalogue and the segments disagree: restore the index from a backup or re-register "
                "its works"
            )
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()

    def abort(self) -> None:
        self._fh.close()


class _DirectoryWriter:
    """The bucket directory of sorted keys fed in order, written as it becomes final.

    Entry ``b`` (the number of keys whose top bits are below ``b``) is final once a key
    of bucket ``b`` or above has been seen; the rest are ``n`` at the end. Writes go in
    pieces of at most ``chunk`` entries.
    """

    def __init__(self, path: Path, n: int, chunk: int) -> None:
        self.bits = _bucket_bits(n)
        self.shift = np.uint32(32 - self.bits)
        self.chunk = chunk
        self.next = 0  # first entry not written yet
        self.seen = 0  # keys fed so far
        self.out = _NpyWriter(path, _directory_dtype(n), (1 << self.bits) + 1)

    def feed(self, keys: npt.NDArray[np.uint32]) -> None:
        if not len(keys):
            return
        buckets = keys >> self.shift
        last = int(buckets[-1])
        for lo in range(self.next, last + 1, self.chunk):
            b = np.arange(lo, min(last + 1, lo + self.chunk), dtype=np.int64)
            self.out.write(self.seen + np.searchsorted(buckets, b, side="left"))
        self.next = max(self.next, last + 1)
        self.seen += len(keys)

    def close(self) -> None:
        end = (1 << self.bits) + 1
        for lo in range(self.next, end, self.chunk):
            self.out.write(np.full(min(end, lo + self.chunk) - lo, self.seen, dtype=np.int64))
        self.out.close()


def _open_npy(path: Path, n: int) -> io.BufferedReader:
    """``path`` opened at its data, after checking it holds ``n`` little-endian uint32."""
    fh = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    except (OSError, ValueError) as exc:
        fh.close()
        raise AudioIndexError(
            f"{path.name} is damaged ({exc}); restore the index directory from a backup or re-register "
            "its works"
        ) from exc
    if dtype != np.dtype("<u4") or shape != (n,):
        fh.close()
        raise AudioIndexError(f"{path.name} does not hold {n} uint32 entries; rebuild the index")
    return fh


def _read_u32(fh: io.BufferedReader, count: int, name: str) -> npt.NDArray[np.uint32]:
    out = np.empty(count, dtype="<u4")
    got = fh.readinto(out.data.cast("B"))
    if got != 4 * count:
        raise AudioIndexError(
            f"{name} ends early ({got} of {4 * count} bytes); restore the index from a backup or "
            "re-register its works"
        )
    return out


class _SegmentReader:
    """One segment's keys and values, buffered ``block`` entries at a time, in file order."""

    def __init__(self, directory: Path, name: str, n: int, block: int) -> None:
        self.name, self.block, self.left = name, block, n
        self.keys = np.zeros(0, dtype=np.uint32)
        self.vals = np.zeros(0, dtype=np.uint32)
        self._kf = _open_npy(directory / f"{name}.keys.npy", n)
        try:
            self._vf = _open_npy(directory / f"{name}.vals.npy", n)
        except BaseException:
            self._kf.close()
            raise

    @property
    def exhausted(self) -> bool:
        """Every entry of the files is in the buffer (or already taken)."""
        return self.left == 0

    def top_up(self) -> None:
        want = min(self.block - len(self.keys), self.left)
        if want <= 0:
            return
        k = _read_u32(self._kf, want, f"{self.name}.keys.npy")
        v = _read_u32(self._vf, want, f"{self.name}.vals.npy")
        if bool(np.any(k[1:] < k[:-1])) or (len(self.keys) > 0 and k[0] < self.keys[-1]):
            raise AudioIndexError(f"{self.name}.keys.npy is not sorted; rebuild the index")
        self.keys = np.concatenate([self.keys, k]) if len(self.keys) else k
        self.vals = np.concatenate([self.vals, v]) if len(self.vals) else v
        self.left -= want

    def take(self, n: int) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
        keys, vals = self.keys[:n], self.vals[:n]
        self.keys, self.vals = self.keys[n:], self.vals[n:]
        return keys, vals

    def close(self) -> None:
        self._kf.close()
        self._vf.close()


@dataclass
class _MergeOutput:
    """Where merged entries go, with removed works' entries dropped on the way."""

    keys: _NpyWriter
    vals: _NpyWriter
    directory: _DirectoryWriter
    bases: npt.NDArray[np.int64] | None  # None: nothing to drop
    alive: npt.NDArray[np.bool_]
    chunks: int = 0
    largest: int = 0

    def emit(self, keys: npt.NDArray[np.uint32], vals: npt.NDArray[np.uint32], *, sort: bool) -> None:
        if self.bases is not None and len(vals):
            owner = np.searchsorted(self.bases, vals, side="right") - 1
            keep = self.alive[np.maximum(owner, 0)] & (owner >= 0)
            keys, vals = keys[keep], vals[keep]
        if sort and len(keys) > 1:
            order = np.argsort(keys, kind="stable")
            keys, vals = keys[order], vals[order]
        self.keys.write(keys)
        self.vals.write(vals)
        self.directory.feed(keys)
        self.chunks += 1
        self.largest = max(self.largest, len(keys))

    def emit_parts(self, parts: list[tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]]) -> None:
        """Merge pieces taken from the segments (in segment order) and write them."""
        keys = np.concatenate([k for k, _ in parts])
        vals = np.concatenate([v for _, v in parts])
        self.emit(keys, vals, sort=len(parts) > 1)


def _kway_merge(readers: list[_SegmentReader], out: _MergeOutput) -> None:
    """Merge sorted segments; equal keys keep the order of ``readers``, then file order.

    Each round tops every buffer up; ``limit`` is the smallest last buffered key of the
    segments that have more on disk, so every entry below it is in some buffer: those are
    merged (a stable sort of the concatenation in segment order) and written. When no
    buffered entry is below ``limit``, that one key fills a whole buffer; its entries are
    passed on segment by segment, already sorted.
    """
    while True:
        for r in readers:
            r.top_up()
        live = [r for r in readers if len(r.keys)]
        pending = [int(r.keys[-1]) for r in live if not r.exhausted]
        if not pending:  # everything left is buffered
            if live:
                out.emit_parts([r.take(len(r.keys)) for r in live])
            return
        limit = np.uint32(min(pending))
        parts = [r.take(int(np.searchsorted(r.keys, limit, side="left"))) for r in live]
        if any(len(k) for k, _ in parts):
            out.emit_parts(parts)
            continue
        for r in live:
            while len(r.keys) and r.keys[0] == limit:
                keys, vals = r.take(int(np.searchsorted(r.keys, limit, side="right")))
                out.emit(keys, vals, sort=False)
                r.top_up()


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
        Most segments kept: when more exist, the smallest are merged (see
        :func:`plan_merge`). Every lookup searches every segment.
    fan_in : int
        Segments of one size tier (sizes within a factor ``fan_in``) merged at once; each
        merge moves a landmark up at least one tier, so it is rewritten about
        ``log_fan_in`` (index size / work size) times while the tiers fit in
        ``max_segments`` segments.
    merge_chunk : int
        Entries a merge holds in memory at once (about 70 bytes each); see :meth:`compact`.

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
    ) -> None:
        self.directory = Path(directory)
        self._created = False
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
        if max_segments < 1 or fan_in < 2:
            raise ValueError(f"max_segments must be >= 1 and fan_in >= 2, not {max_segments} and {fan_in}")
        self.max_segments = max_segments
        self.fan_in = fan_in
        if merge_chunk < 1:
            raise ValueError("merge_chunk must be at least 1 entry")
        self.merge_chunk = merge_chunk
        self.variants = variants if variants is not None else default_variants()
        self._lock = threading.RLock()
        self._closed = False
        try:
            self._db = sqlite3.connect(self.directory / "audio.sqlite", check_same_thread=False, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            with self._writer(), self._db:
                self._db.executescript(_SCHEMA + _PEAK_SCHEMA)
                self._migrate_membership()
                self.params = self._init_settings(params)
                if threshold is not None:
                    self._set("threshold", _encode_threshold(threshold))
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
        self._rowids = np.zeros(0, dtype=np.int64)
        self._peaks = PeakStore(self._db)
        self._layer = "main" if bass else "bass"
        self._refresh()
        self._bass: AudioIndex | None = None
        if bass:
            self._open_bass(bass_threshold)
        if joint_threshold is not None:
            try:
                with self._writer(), self._db:
                    self._set("joint_threshold", _encode_threshold(joint_threshold))
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
        if not exists and not (self._created and self.params == LandmarkParams()):
            return
        common: dict[str, Any] = {
            "max_seconds": self.max_seconds,
            "min_seconds": self.min_seconds,
            "max_query_seconds": self.max_query_seconds,
            "window_seconds": self.window_seconds,
            "bass": False,
        }
        try:
            if exists:
                self._bass = AudioIndex(where, threshold=threshold, **common)
            else:
                self._bass = AudioIndex(
                    where,
                    params=BASS_PARAMS,
                    threshold=DEFAULT_BASS_THRESHOLDS if threshold is None else threshold,
                    **common,
                )
        except BaseException:
            self._db.close()
            raise
        if self._bass.params.sample_rate * 4 != self.params.sample_rate:
            self._bass.close()
            self._db.close()
            raise AudioIndexError(
                f"the bass layer in {where} analyses {self._bass.params.sample_rate} Hz, which is not a "
                f"quarter of the main layer's {self.params.sample_rate} Hz"
            )

    @property
    def bass(self) -> AudioIndex | None:
        """The bass layer (:mod:`forensics.audio.bass`), or ``None`` for an index made without one."""
        return self._bass

    # -- settings and state ---------------------------------------------------------------

    def _get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))

    def _init_settings(self, params: LandmarkParams | None) -> LandmarkParams:
        stored = self._get("params")
        if stored is None:
            self._created = True
            chosen = params or LandmarkParams()
            self._set("format", str(FORMAT_VERSION))
            self._set("params", json.dumps(chosen.to_dict(), sort_keys=True))
            self._set("threshold", _encode_threshold(DEFAULT_THRESHOLDS))
            self._set("fpr_target", repr(DEFAULT_FPR_TARGET))
            self._set("next_base", "0")
            self._set("generation", "0")
            return chosen
        old = self._get("format")
        if old in _UPGRADABLE:
            # formats 3 to 5 scored otherwise; their data is valid, their thresholds are not
            log.warning(
                "%s: audio index of format %s upgraded to %d; its decision thresholds were reset to "
                "the defaults (%s); recalibrate if they were calibrated",
                self.directory,
                old,
                FORMAT_VERSION,
                _UPGRADABLE[old],
            )
            self._set("threshold", _encode_threshold(DEFAULT_THRESHOLDS))
            self._set("format", str(FORMAT_VERSION))
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

    def _migrate_membership(self) -> None:
        """Give an index written before segment membership was recorded its ``segment`` column.

        Works of such an index have no recorded segment (NULL); the next merge rewrites
        every segment (:meth:`_compact`), which records it.
        """
        columns = {str(r[1]) for r in self._db.execute("PRAGMA table_info(works)")}
        if "segment" not in columns:
            self._db.execute("ALTER TABLE works ADD COLUMN segment TEXT")
        self._db.execute("CREATE INDEX IF NOT EXISTS works_by_segment ON works (segment)")

    @property
    def threshold(self) -> float:
        """Significance a full query window (``window_seconds``) needs."""
        return self.threshold_for(self.window_seconds)

    @property
    def thresholds(self) -> dict[float, float]:
        """Significance a match needs, per calibrated query window length (seconds)."""
        stored = self._get("threshold")
        return _decode_threshold(stored) if stored else dict(DEFAULT_THRESHOLDS)

    def threshold_for(self, seconds: float) -> float:
        """Significance a query window of ``seconds`` needs (interpolated between lengths)."""
        return _threshold_at(self.thresholds, seconds)

    @property
    def joint_thresholds(self) -> dict[float, float]:
        """What the two layers' significances at one alignment need in sum, per window length.

        See :meth:`identify_peaks`; :data:`forensics.audio.bass.DEFAULT_JOINT_THRESHOLDS`
        until :meth:`calibrate` sets them.
        """
        stored = self._get("joint_threshold")
        return _decode_threshold(stored) if stored else dict(DEFAULT_JOINT_THRESHOLDS)

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
        self._rowids = np.array([int(r[0]) for r in rows], dtype=np.int64)
        self._peaks.forget_cache()
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

    def _tmp(self, name: str, part: str) -> Path:
        return self.directory / f".{name}.{part}.npy.tmp"

    def _write_segment(self, name: str, keys: npt.NDArray[np.uint32], vals: npt.NDArray[np.uint32]) -> None:
        try:
            for part, arr in (("keys", keys), ("vals", vals), ("dir", bucket_directory(keys))):
                with open(self._tmp(name, part), "wb") as fh:
                    np.save(fh, np.ascontiguousarray(arr))
                    fh.flush()
                    os.fsync(fh.fileno())
            self._publish(name)
        except BaseException:
            self._remove_files(name)
            raise

    def _publish(self, name: str) -> None:
        """Rename a segment's fsynced temporary files to their names, and fsync the directory."""
        for part in _PARTS:
            os.replace(self._tmp(name, part), self.directory / f"{name}.{part}.npy")
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
        if self._bass is None:
            fp = fingerprint_file(
                path, self.params, max_seconds=self.max_seconds, min_seconds=self.min_seconds, strict=True
            )
            return self.add_fingerprint(work_id, fp)
        path = Path(path)
        main, low, duration = _layers_of(
            path, self.params, self._bass.params, max_seconds=self.max_seconds, strict=True
        )
        digest = self._add_fingerprint(
            work_id, _fingerprint(path, main, duration, self.params, self.min_seconds)
        )
        try:
            low_fp = _fingerprint(path, low, duration, self._bass.params, self.min_seconds)
        except (ClipTooShortError, NoFingerprintError):
            # nothing below 300 Hz to fingerprint: the work is matched by the main layer only
            self._bass.remove(work_id)
            return digest
        try:
            self._bass.add_fingerprint(work_id, low_fp)
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
        frames = round(fp.duration / self.params.frame_seconds) + 1
        h, f = fp.hashes, fp.frames
        if (
            not isinstance(h, np.ndarray)
            or not isinstance(f, np.ndarray)
            or h.dtype != np.uint32
            or f.dtype != np.uint32
            or h.ndim != 1
            or h.shape != f.shape
        ):
            raise AudioIndexError(
                "a fingerprint needs 1-D uint32 hashes and frames of one length; build it with "
                "make_fingerprint"
            )
        if len(h) > 1 and bool(np.any(h[1:] < h[:-1])):
            raise AudioIndexError("the fingerprint's hashes are not sorted; build it with make_fingerprint")
        if len(f) and int(f.max()) >= frames:
            raise AudioIndexError(
                f"the fingerprint has a landmark at frame {int(f.max())}, past its {fp.duration:g} s; "
                "build it with make_fingerprint"
            )
        # verification needs the work's peaks; without them, the anchor peaks the hashes imply
        peaks = fp.peaks if fp.peaks is not None else anchor_peaks(h, f, frames, self.params)
        with self._writer():
            base = int(self._get("next_base") or 0)
            if base + frames + _GAP_FRAMES > _MAX_FRAME:
                raise AudioIndexError(
                    f"the audio index {self.directory} is full (2^32 frames); start a new index directory"
                )
            name = self._new_segment_name()
            vals = (f.astype(np.int64) + base).astype(np.uint32)
            self._write_segment(name, h, vals)
            try:
                with self._db:
                    replaced = self._db.execute(
                        "UPDATE works SET removed = 1 WHERE work_id = ? AND removed = 0", (work_id,)
                    ).rowcount
                    row = self._db.execute(
                        "INSERT INTO works (work_id, base, frames, hashes, digest, added, segment) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (work_id, base, frames, len(h), fp.digest, datetime.now(UTC).isoformat(), name),
                    ).lastrowid
                    if replaced:
                        self._peaks.drop_removed()
                    if row is not None:
                        self._peaks.put(row, peaks)
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
                    self._peaks.drop_removed()
                    self._bump()
            if n:
                self._maybe_compact()
        if self._bass is not None:
            self._bass.remove(work_id)
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
        low: Peaks | None = None
        if self._bass is None:
            peaks, duration = _peaks_of(
                Path(path), p, max_seconds=self.max_query_seconds, strict=False, query=True
            )
        else:
            peaks, low, duration = _layers_of(
                Path(path), p, self._bass.params, max_seconds=self.max_query_seconds, strict=False, query=True
            )
        hashes, _ = hash_peaks(peaks, p)
        _check_content(Path(path), peaks, hashes, duration, self.min_seconds)
        return self.identify_peaks(peaks, top_k, bass=low)

    def identify_peaks(
        self, peaks: Peaks, top_k: int = 5, *, threshold: float | None = None, bass: Peaks | None = None
    ) -> list[Match]:
        """:meth:`identify` for peaks already extracted (see :func:`extract_peaks`).

        Each query window's hashes are voted against the index; the candidates with at
        least three aligned votes (the best ten) are verified against the work's stored
        peaks — peak by peak and, when the peaks carry their evidence map
        (``extract_peaks(..., query=True)``), on the query's spectrum
        (:func:`forensics.audio.match.verify`) — and a candidate's score is the
        significance of that verification. Peaks without a map score lower than the
        thresholds were calibrated for (never higher). ``threshold`` overrides the
        calibrated one for this call (calibration uses 0 to see the best score on
        unrelated audio).

        ``bass`` are the same query's bass-layer peaks (``extract_peaks(bass_samples(x),
        index.bass.params, query=True)``, see :mod:`forensics.audio.bass`): when given and
        the index has a bass layer, three rules decide, each against its own calibrated
        thresholds:

        * ``main``: the main layer's own candidates, verified in the main layer;
        * ``bass``: the bass layer's own candidates (three votes or more), verified in
          the bass layer;
        * ``both``: every bass-layer candidate with at least two votes, verified in both
          layers at its alignment; the score is the sum of the two significances
          (:attr:`joint_thresholds`). A work whose evidence is split between the bass
          line and the upper band (bass-heavy music under noise or another track) is
          found by neither layer alone but by both together.

        A work found by several rules is reported once, by the rule whose score clears
        its threshold by most (``details["layer"]``: ``main``, ``bass`` or ``both``).
        Works are ranked by that margin.

        Raises
        ------
        ValueError
            The evidence map does not fit the peaks or the index's parameters.
        """
        found = self._identify_layer(peaks, top_k, threshold)
        if bass is None or self._bass is None:
            return found
        low, both = self._identify_bass(peaks, bass, threshold)
        best: dict[str, tuple[float, Match]] = {}
        for m in [*found, *low, *both]:
            _keep(best, m.work_id, m.score - m.threshold, m)
        ranked = sorted(best.values(), key=lambda mm: -mm[0])
        return [m for _, m in ranked[:top_k]]

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

    def _identify_bass(
        self, peaks: Peaks, bass: Peaks, threshold: float | None
    ) -> tuple[list[Match], list[Match]]:
        """The matches of the ``bass`` and ``both`` rules (see :meth:`identify_peaks`), best per work."""
        low = self._bass
        assert low is not None
        self._check_open()
        with self._lock, low._lock:
            self._refresh()
            low._refresh()
            if not low._segments or not self._segments:
                return [], []
            ratio = low.params.frame_seconds / self.params.frame_seconds
            fs = low.params.frame_seconds
            override = None if threshold is None else float(threshold)
            bass_table, joint_table = low.thresholds, self.joint_thresholds  # read once, not per window
            bass_fpr, fpr = low.fpr_target, self.fpr_target
            main_of: dict[str, int] | None = None
            kept: dict[str, dict[str, tuple[float, Match]]] = {"bass": {}, "both": {}}
            for w0, window in low._windows(bass):
                seconds = window.frames * fs
                need_bass = _threshold_at(bass_table, seconds) if override is None else override
                need_both = _threshold_at(joint_table, seconds) if override is None else override
                upper = peaks.window(round(w0 * ratio), round((w0 + window.frames) * ratio))
                for cand in low._candidates(window, _VERIFY_TOP, _JOINT_VOTES):
                    if main_of is None:  # read only when the bass layer has a candidate
                        main_of = {w: k for k, w in enumerate(self._ids) if self._alive[k]}
                    work_id = low._ids[cand.work]
                    k = main_of.get(work_id)
                    if k is None:  # a bass fingerprint whose work the main layer does not hold
                        continue
                    ref = low._peaks.get(int(low._rowids[cand.work]))
                    checked = verify(window, cand, ref, params=low.params) if ref is not None else _NOTHING
                    if cand.votes >= _CANDIDATE_VOTES and checked.significance >= need_bass:
                        m = low._match(_shift(cand, w0), checked, need_bass, bass_fpr, fs)
                        _keep(kept["bass"], work_id, checked.significance, m)
                    main_ref = self._peaks.get(int(self._rowids[k]))
                    scaled = _scaled(cand, ratio, k)
                    upper_check = (
                        verify(upper, scaled, main_ref, params=self.params)
                        if main_ref is not None
                        else _NOTHING
                    )
                    score = checked.significance + upper_check.significance
                    if score >= need_both:
                        m = self._match(_shift(scaled, w0 * ratio), upper_check, need_both, fpr, fs / ratio)
                        m.details.update(
                            layer="both",
                            bass_significance=round(checked.significance, 3),
                            main_significance=round(upper_check.significance, 3),
                            votes=cand.votes,
                        )
                        joint = Match(
                            work_id=m.work_id,
                            score=round(score, 3),
                            kind="audio",
                            threshold=m.threshold,
                            details=m.details,
                        )
                        _keep(kept["both"], work_id, score, joint)
            return (
                [m for _, m in kept["bass"].values()],
                [m for _, m in kept["both"].values()],
            )

    def _identify_layer(self, peaks: Peaks, top_k: int, threshold: float | None) -> list[Match]:
        self._check_open()
        if peaks.evidence is not None:
            lo, hi = analysis_bins(self.params)
            if peaks.evidence.ndim != 2 or peaks.evidence.shape != (peaks.frames, hi - lo):
                raise ValueError(
                    f"the query's evidence map has shape {peaks.evidence.shape}, these parameters make "
                    f"({peaks.frames}, {hi - lo}) for {peaks.frames} frames; extract the query with "
                    "extract_peaks(samples, index.params, query=True)"
                )
        with self._lock:
            self._refresh()
            if not self._segments:
                return []
            override = None if threshold is None else float(threshold)
            table = self.thresholds  # read once, not per window
            fpr = self.fpr_target
            fs = self.params.frame_seconds
            best: dict[int, tuple[Candidate, Verification, float]] = {}
            for w0, window in self._windows(peaks):
                needed = _threshold_at(table, window.frames * fs) if override is None else override
                for cand in self._candidates(window, max(top_k, _VERIFY_TOP), _CANDIDATE_VOTES):
                    ref = self._peaks.get(int(self._rowids[cand.work]))
                    checked = verify(window, cand, ref, params=self.params) if ref is not None else _NOTHING
                    if checked.significance < needed:
                        continue
                    kept = best.get(cand.work)
                    if kept is None or kept[1].significance < checked.significance:
                        best[cand.work] = (_shift(cand, w0), checked, needed)
            ranked = sorted(best.values(), key=lambda cv: -cv[1].significance)[:top_k]
            return [self._match(c, v, needed, fpr, fs) for c, v, needed in ranked]

    def _candidates(self, window: Peaks, top_k: int, min_votes: int) -> list[Candidate]:
        """The best ``top_k`` alignments of a query window by votes (:func:`vote`), this layer's works."""
        return vote(
            window,
            self._lookup,
            self._bases,
            params=self.params,
            variants=self.variants,
            alive=self._alive,
            top_k=top_k,
            min_votes=min_votes,
        )

    def _windows(self, peaks: Peaks) -> Iterator[tuple[float, Peaks]]:
        fs = self.params.frame_seconds
        length = self.window_seconds / fs
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

    def _match(self, c: Candidate, v: Verification, threshold: float, fpr: float, fs: float) -> Match:
        details = {
            "query_start": round(c.query_start * fs, 3),
            "query_end": round(c.query_end * fs, 3),
            "ref_start": round(c.ref_start * fs, 3),
            "ref_end": round(c.ref_end * fs, 3),
            "speed": round(c.speed, 4),
            "pitch": round(c.variant.pitch_scale, 4),
            "offset_accuracy": round(max(fs, c.residual * fs), 3),
            "votes": c.votes,
            "verified_frames": v.matched,
            "reference_frames": v.expected,
            "chance_frames": round(v.chance, 2),
            "peak_significance": round(v.peak_significance, 3),
            "spectral_evidence": round(v.spectral, 3),
            "verified_peaks": v.peaks_matched,
            "reference_peaks": v.peaks,
            "fpr_target": fpr,
            "layer": self._layer,
        }
        return Match(
            work_id=self._ids[c.work],
            score=round(v.significance, 3),
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
            layer: dict[str, Any] | None = None
            if self._bass is not None:
                layer = self._bass.stats()
                size += int(layer["bytes"])
            return {
                "kind": self.kind,
                "works": int(self._alive.sum()),
                "hours": round(hours, 4),
                "landmarks": entries,
                "segments": len(self._segments),
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
            self._segments = []
            self._db.close()
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
        this full merge is for an explicit clean-up, and runs by itself when removed works
        hold more than a quarter of the entries.

        The merge streams (a k-way merge of the sorted segments, read in blocks, the new
        segment written front to back), so it holds about ``chunk`` entries of the inputs
        at once (about 70 bytes each, with the sorting), whatever the size of the
        index. Within one hash the entries keep the order of the segments, by name, and
        each segment's own order. The new segment is written to temporary files, fsynced
        and renamed, then swapped in with one catalogue transaction: an error or a crash
        midway leaves the old segments in use (temporary files left by a crash are
        deleted by the next merge).

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
        with self._writer():
            out = self._compact(chunk or self.merge_chunk)
        if self._bass is not None:
            self._bass.compact(chunk=chunk)
        return out

    def _maybe_compact(self) -> list[dict[str, int]]:
        """Merge what the policy asks for after a registration or removal; the stats of each merge.

        Everything is merged (:meth:`compact`) when removed works hold more than a quarter
        of the entries, or when a merge is due and some work's segment is not recorded
        (an index written before it was); otherwise, while more than ``max_segments``
        segments exist, the run :func:`plan_merge` picks is merged.
        """
        removed, unknown = self._db.execute(
            "SELECT COALESCE(SUM(CASE WHEN removed = 1 THEN hashes END), 0), "
            "COUNT(CASE WHEN segment IS NULL THEN 1 END) FROM works"
        ).fetchone()
        sizes = {str(n): int(e) for n, e in self._db.execute("SELECT name, entries FROM segments")}
        total = sum(sizes.values())
        if (removed > 0 and removed * 4 > total) or (unknown > 0 and len(sizes) > self.max_segments):
            return [self._compact()]
        done: list[dict[str, int]] = []
        while run := plan_merge(sizes, self.max_segments, self.fan_in):
            done.append(self._compact(names=run))
            sizes = {str(n): int(e) for n, e in self._db.execute("SELECT name, entries FROM segments")}
        return done

    def _compact(self, chunk: int | None = None, names: list[str] | None = None) -> dict[str, int]:
        """Merge the segments ``names`` (all when omitted) into one new segment.

        The new segment's temporary files are written, fsynced and renamed; then one
        catalogue transaction replaces exactly the merged segments' rows by the new one,
        moves their live works to it and deletes the rows of their removed works (whose
        landmarks the merge dropped). An error before the commit leaves the old segments
        in use and removes the new files.
        """
        chunk = chunk or self.merge_chunk
        self._generation = -1
        self._refresh()
        current = list(self._segments)
        self._remove_orphans({s.name for s in current})
        wanted = set(names) if names is not None else {s.name for s in current}
        segments = [s for s in current if s.name in wanted]
        if len(segments) != len(wanted):
            raise AudioIndexError(
                f"segments {sorted(wanted - {s.name for s in segments})} are not in the catalogue; "
                "reopen the index and merge again"
            )
        stats = {"segments": len(segments), "entries_in": sum(len(s.keys) for s in segments)}
        if not segments:
            return {**stats, "entries_out": 0, "chunks": 0, "largest_chunk": 0}
        # ``where`` picks the works (rows of ``works``) held by the merged segments
        where, args = ("1", ()) if names is None else _in_clause("segment", [s.name for s in segments])
        expected = int(
            self._db.execute(
                f"SELECT COALESCE(SUM(hashes), 0) FROM works WHERE removed = 0 AND {where}", args
            ).fetchone()[0]
        )
        name = self._new_segment_name()
        try:
            stats |= self._merge_into(name, segments, expected, chunk)
            self._publish(name)
            seg_where, seg_args = _in_clause("name", [s.name for s in segments])
            with self._db:
                self._db.execute(f"DELETE FROM segments WHERE {seg_where}", seg_args)
                self._db.execute("INSERT INTO segments (name, entries) VALUES (?, ?)", (name, expected))
                self._db.execute(f"UPDATE works SET segment = ? WHERE removed = 0 AND {where}", (name, *args))
                self._peaks.drop_removed()
                self._db.execute(f"DELETE FROM works WHERE removed = 1 AND {where}", args)
                self._bump()
        except BaseException:
            self._remove_files(name)
            raise
        for seg in segments:
            self._remove_files(seg.name)
        self._generation = -1
        self._refresh()
        log.info(
            "audio index: merged %d of %d segments (%d entries in, %d out)",
            len(segments),
            len(current),
            stats["entries_in"],
            expected,
        )
        return stats

    def _merge_into(self, name: str, segments: list[_Segment], expected: int, chunk: int) -> dict[str, int]:
        """Stream the merge of ``segments`` into the temporary files of segment ``name``."""
        total = max(1, sum(len(s.keys) for s in segments))
        readers: list[_SegmentReader] = []
        writers: list[_NpyWriter] = []
        try:
            for s in segments:
                block = max(_MIN_BLOCK, -(-chunk * len(s.keys) // total))
                readers.append(_SegmentReader(self.directory, s.name, len(s.keys), block))
            keys = _NpyWriter(self._tmp(name, "keys"), np.dtype("<u4"), expected)
            writers.append(keys)
            vals = _NpyWriter(self._tmp(name, "vals"), np.dtype("<u4"), expected)
            writers.append(vals)
            directory = _DirectoryWriter(self._tmp(name, "dir"), expected, chunk)
            writers.append(directory.out)
            drop = len(self._bases) > 0 and not bool(self._alive.all())
            out = _MergeOutput(keys, vals, directory, self._bases if drop else None, self._alive)
            _kway_merge(readers, out)
            keys.close()
            vals.close()
            directory.close()
        except BaseException:
            for w in writers:
                w.abort()
            raise
        finally:
            for r in readers:
                r.close()
        return {"entries_out": expected, "chunks": out.chunks, "largest_chunk": out.largest}

    def _remove_orphans(self, keep: set[str]) -> None:
        """Delete files a crashed writer left: temporary files and segments the catalogue lacks.

        Only called with the writer lock held, when no other writer can be midway.
        """
        for f in self.directory.glob(".seg-*.npy.tmp"):
            f.unlink(missing_ok=True)
        for f in self.directory.glob("seg-*.npy"):
            if f.name.split(".", 1)[0] not in keep:
                log.warning("removing %s, a segment file no catalogue entry names (left by a crash)", f)
                f.unlink(missing_ok=True)

    def _remove_files(self, name: str) -> None:
        for part in _PARTS:
            for f in (self.directory / f"{name}.{part}.npy", self._tmp(name, part)):
                with contextlib.suppress(FileNotFoundError):
                    f.unlink()

    def calibrate(
        self,
        paths: Iterable[Path | str],
        *,
        fpr_target: float = DEFAULT_FPR_TARGET,
        lengths: Sequence[float] | None = None,
        window_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Set the thresholds from audio that holds none of the registered works.

        Every file is cut into half-overlapping windows of each length in ``lengths``;
        each window is matched with no threshold and its best score kept. A length's new
        threshold is one more than its highest score (a tenfold smaller chance
        probability), so none of the windows would have matched: with ``n`` windows that
        bounds the false-positive rate per query of that length at about ``1 / n``.
        Queries of other lengths use the thresholds interpolated between. Chance scores
        grow with the amount of registered audio, so calibrate again after the catalogue
        has grown several-fold. The bass layer and the rule that sums both layers (see
        :meth:`identify_peaks`), when the index has a bass layer, are calibrated on the same
        windows in the same way.

        Parameters
        ----------
        paths : iterable of Path
            Unrelated audio (music and speech like the expected queries, none of it
            registered), decoded leniently.
        fpr_target : float
            The false-positive rate per query to reach; at least ``1 / fpr_target``
            windows of every length are needed.
        lengths : sequence of float, optional
            Window lengths in seconds; 3 s, 5 s and ``window_seconds`` by default.
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
        """
        self._check_open()
        if not self.work_ids():
            raise AudioIndexError("the audio index is empty; register the works before calibrating")
        if window_seconds is not None:
            lengths = [window_seconds]
        chosen = sorted({float(x) for x in (lengths or (3.0, 5.0, self.window_seconds))})
        if not chosen or chosen[0] <= 0:
            raise AudioIndexError(f"calibration lengths must be positive seconds, not {chosen}")
        scores: dict[float, list[dict[str, float]]] = {x: [] for x in chosen}
        for path in paths:
            low: Peaks | None = None
            if self._bass is None:
                peaks, _ = _peaks_of(
                    Path(path), self.params, max_seconds=self.max_seconds, strict=False, query=True
                )
            else:
                peaks, low, _ = _layers_of(
                    Path(path),
                    self.params,
                    self._bass.params,
                    max_seconds=self.max_seconds,
                    strict=False,
                    query=True,
                )
            for seconds in chosen:
                scores[seconds] += self._window_scores(peaks, low, seconds)
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
        bass = table_of("bass") if self._bass is not None else None
        joint = table_of("both") if self._bass is not None else None
        with self._writer(), self._db:
            self._set("threshold", _encode_threshold(table))
            self._set("fpr_target", repr(float(fpr_target)))
            if joint is not None:
                self._set("joint_threshold", _encode_threshold(joint))
        if self._bass is not None and bass is not None:
            with self._bass._writer(), self._bass._db:
                self._bass._set("threshold", _encode_threshold(bass))
                self._bass._set("fpr_target", repr(float(fpr_target)))
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

    def _window_scores(self, peaks: Peaks, low: Peaks | None, seconds: float) -> list[dict[str, float]]:
        """:meth:`best_scores` of each half-overlapping window of ``seconds`` in ``peaks`` (and ``low``)."""
        fs = self.params.frame_seconds
        size = round(seconds / fs)
        out: list[dict[str, float]] = []
        for start in range(0, max(peaks.frames - size, 0) + 1, max(1, size // 2)):
            window = peaks.window(start, start + size)
            bass = None
            if low is not None and self._bass is not None:
                bfs = self._bass.params.frame_seconds
                b0 = round(start * fs / bfs)
                bass = low.window(b0, b0 + round(seconds / bfs))
            out.append(self.best_scores(window, bass))
        return out

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


_NOTHING = Verification(0, 0, 0.0, 0.0)


def _scaled(c: Candidate, ratio: float, work: int) -> Candidate:
    """A bass-layer candidate in the main layer's frames (``ratio`` main frames per bass frame)."""
    return Candidate(
        work=work,
        votes=c.votes,
        variant=c.variant,
        speed=c.speed,
        query_start=c.query_start * ratio,
        query_end=c.query_end * ratio,
        ref_start=c.ref_start * ratio,
        ref_end=c.ref_end * ratio,
        residual=c.residual * ratio,
        anchors=c.anchors,
    )


def _keep(best: dict[str, tuple[float, Match]], work_id: str, score: float, m: Match) -> None:
    if work_id not in best or best[work_id][0] < score:
        best[work_id] = (score, m)


def _encode_threshold(threshold: float | Mapping[float, float]) -> str:
    """The stored form: a JSON list of [seconds, threshold] pairs (one pair: any length)."""
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


def _threshold_at(table: Mapping[float, float], seconds: float) -> float:
    """The threshold of a window of ``seconds``: interpolated in ``table``, constant beyond."""
    pairs = sorted(table.items())
    return float(np.interp(seconds, [k for k, _ in pairs], [v for _, v in pairs]))


def _decode_threshold(stored: str) -> dict[float, float]:
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
