"""A store of sorted, memory-mapped (key, value) segments: the storage under the audio index.

A :class:`SegmentStore` keeps, in one directory, segments of ``uint32`` keys (sorted) and
``uint32`` values of the same order, each with a bucket directory over the keys' top bits::

    seg-<n>.keys.npy        sorted uint32 keys of one segment
    seg-<n>.vals.npy        uint32 value of each key (same order)
    seg-<n>.dir.npy         bucket directory: where the keys whose top B bits are b start

The audio index stores landmark hashes as keys and global anchor frames as values; any
index whose keys are well-mixed 32-bit hashes and whose values name an owner by range
(a video index's frame hashes, for instance) can use it the same way; damaged or
inconsistent files raise :class:`forensics.audio.errors.AudioIndexError`. The store knows files
only: which segments exist, and which entries belong to removed owners, is the caller's
catalogue's business (the caller names the segments to map with :meth:`SegmentStore.sync`).

Lookups are O(1) in the size of the store: keys are mixed so that their top bits are even;
the directory, with 2^B + 1 entries for about eight keys per bucket, gives the bucket of
each query key, and a vectorized binary search (:func:`search`) inside the buckets finds the
matching keys. Only the pages of the memory-mapped files that a lookup touches are read.

A segment is written to temporary files, fsynced, then renamed (:meth:`SegmentStore.write`,
:meth:`SegmentStore.publish`). Merges stream (:meth:`SegmentStore.merge_into`): a k-way
merge of the sorted segments read in blocks writes the new keys, values and bucket
directory front to back, holding about ``chunk`` entries at once whatever the size of the
store, and drops the entries of removed owners on the way. Which segments to merge next is
:func:`plan_merge`'s size-tiered policy.

Examples
--------
>>> import tempfile, numpy as np
>>> store = SegmentStore(tempfile.mkdtemp(), distinct_keys=1 << 32)
>>> name = store.new_name()
>>> store.write(name, np.array([3, 9, 9], dtype=np.uint32), np.array([10, 20, 30], dtype=np.uint32))
>>> store.sync([name])
>>> q, vals = store.lookup(np.array([9, 4], dtype=np.uint32))
>>> q.tolist(), vals.tolist()
([0, 0], [20, 30])
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from forensics.audio.errors import AudioIndexError

__all__ = [
    "KEYS_PER_BUCKET",
    "MergeHook",
    "Segment",
    "SegmentStore",
    "WriteHook",
    "bucket_directory",
    "plan_merge",
    "search",
    "size_tier",
]

log = logging.getLogger(__name__)

KEYS_PER_BUCKET = 8
"""Keys per bucket the bucket directory is sized for."""
_MIN_BLOCK = 64
_PARTS = ("keys", "vals", "dir")

WriteHook = Callable[[Path, int], None]
"""Called with the file and the number of entries before each piece a merge writes."""
MergeHook = Callable[[Sequence["Segment"], Sequence[int]], None]
"""Called when a merge starts, with the segments merged and the entries read at once from each."""


@dataclass
class Segment:
    """One segment: sorted keys, their values and the bucket directory, memory-mapped read-only.

    Attributes
    ----------
    name : str
        The segment's name (its files are ``<name>.keys.npy`` and so on).
    keys : numpy.ndarray of uint32
        Sorted keys.
    vals : numpy.ndarray of uint32
        The value of each key.
    buckets : numpy.ndarray of uint32 or uint64
        The bucket directory (:func:`bucket_directory`).

    Examples
    --------
    >>> import numpy as np
    >>> keys = np.array([1, 5], dtype=np.uint32)
    >>> Segment("s", keys, keys, bucket_directory(keys)).shift
    28
    """

    name: str
    keys: npt.NDArray[np.uint32]
    vals: npt.NDArray[np.uint32]
    buckets: npt.NDArray[np.unsignedinteger[Any]]

    @property
    def shift(self) -> int:
        """Right shift of a key that gives its bucket."""
        return 32 - (len(self.buckets) - 1).bit_length() + 1


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


#: Keys (4 bytes each) up to which a segment is searched whole with ``np.searchsorted``
#: instead of bucket by bucket with :func:`search`: the same bounds, found in C; a larger
#: segment is searched in its buckets, so that a lookup reads only the pages it needs.
WHOLE_SEARCH_KEYS = 1 << 22


def search(
    keys: npt.NDArray[np.uint32],
    lo: npt.NDArray[np.int64],
    hi: npt.NDArray[np.int64],
    x: npt.NDArray[np.uint32],
    right: bool,
) -> npt.NDArray[np.int64]:
    """Vectorized binary search of each ``x[i]`` in ``keys[lo[i]:hi[i]]`` (sorted).

    Returns what ``lo[i] + np.searchsorted(keys[lo[i]:hi[i]], x[i], side)`` would, with
    ``side`` "right" when ``right`` else "left", for every ``i`` at once.

    Examples
    --------
    >>> import numpy as np
    >>> keys = np.array([1, 3, 3, 7], dtype=np.uint32)
    >>> lo, hi = np.array([0, 0]), np.array([4, 4])
    >>> search(keys, lo, hi, np.array([3, 3], dtype=np.uint32), right=False).tolist()
    [1, 1]
    >>> search(keys, lo, hi, np.array([3, 8], dtype=np.uint32), right=True).tolist()
    [3, 4]
    """
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
    return min(28, max(4, math.ceil(math.log2(max(n, 1) / KEYS_PER_BUCKET))))


def _directory_dtype(n: int) -> np.dtype[Any]:
    return np.dtype("<u4") if n < (1 << 32) else np.dtype("<u8")


class _NpyWriter:
    """A 1-D ``.npy`` file of ``n`` items written front to back in pieces, then fsynced.

    ``hook`` (:attr:`SegmentStore.write_hook`) is called before each piece is written.
    """

    def __init__(self, path: Path, dtype: np.dtype[Any], n: int, hook: WriteHook | None = None) -> None:
        self.path, self.dtype, self.n, self.written, self.hook = path, dtype, n, 0, hook
        self._fh = open(path, "wb")  # noqa: SIM115 - closed by close()/abort()
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n,)}
        np.lib.format.write_array_header_1_0(self._fh, header)

    def write(self, arr: npt.NDArray[Any]) -> None:
        if self.hook is not None:
            self.hook(self.path, len(arr))
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

    def __init__(self, path: Path, n: int, chunk: int, hook: WriteHook | None = None) -> None:
        self.bits = _bucket_bits(n)
        self.shift = np.uint32(32 - self.bits)
        self.chunk = chunk
        self.next = 0  # first entry not written yet
        self.seen = 0  # keys fed so far
        self.out = _NpyWriter(path, _directory_dtype(n), (1 << self.bits) + 1, hook)

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


class SegmentStore:
    """The segment files of one directory, the segments mapped from them, lookups and merges.

    Parameters
    ----------
    directory : Path
        Where the segment files live (it must exist).
    distinct_keys : int
        How many distinct keys the caller's hashes can take (2^``HASH_BITS`` for audio
        landmarks): a lookup skips a key stored more than ``stop_factor`` times its average
        count (and at least 32 times) in a segment, a stop word that carries little
        evidence and dominates the cost.
    stop_factor : float
        See ``distinct_keys``.

    Attributes
    ----------
    write_hook : callable or None
        Injectable hook, for fault-injection tests and instrumentation: called with the
        file and the number of entries before each piece a merge writes; an exception it
        raises (``OSError(28, ...)``, a full disk) aborts the merge as the write would.
    on_merge : callable or None
        Injectable hook, for tests and benchmarks that count merge work: called when a
        merge starts with the segments merged and the entries read at once from each.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> store = SegmentStore(tempfile.mkdtemp(), distinct_keys=1 << 32)
    >>> a, b = store.new_name(), store.new_name()
    >>> store.write(a, np.array([1, 5], dtype=np.uint32), np.array([0, 1], dtype=np.uint32))
    >>> store.write(b, np.array([5, 8], dtype=np.uint32), np.array([2, 3], dtype=np.uint32))
    >>> store.sync(sorted([a, b]))
    >>> merged = store.new_name()
    >>> store.merge_into(merged, store.segments(), 4, chunk=1024)["entries_out"]
    4
    >>> store.publish(merged); store.sync([merged])
    >>> [s.keys.tolist() for s in store.segments()]
    [[1, 5, 5, 8]]
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        distinct_keys: int,
        stop_factor: float = 8.0,
    ) -> None:
        self.directory = Path(directory)
        self.distinct_keys = distinct_keys
        self.stop_factor = stop_factor
        self.write_hook: WriteHook | None = None
        self.on_merge: MergeHook | None = None
        self._segments: list[Segment] = []

    # -- the mapped segments ------------------------------------------------------------------

    def segments(self) -> list[Segment]:
        """The segments mapped by the last :meth:`sync`, in the order it named them."""
        return list(self._segments)

    def sync(self, names: Sequence[str]) -> None:
        """Map exactly the segments ``names`` (in that order); those already mapped are kept.

        Raises
        ------
        AudioIndexError
            A segment's files are missing, damaged or of a wrong layout.
        """
        loaded = {s.name: s for s in self._segments}
        self._segments = [loaded.get(name) or self.load(name) for name in names]

    def load(self, name: str) -> Segment:
        """Map segment ``name`` read-only, after checking its layout."""
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
        return Segment(name, keys, vals, buckets)

    def entries(self) -> int:
        """Entries in the mapped segments."""
        return sum(len(s.keys) for s in self._segments)

    def close(self) -> None:
        """Forget the mapped segments (their maps close when no array refers to them)."""
        self._segments = []

    def lookup(self, keys: npt.NDArray[np.uint32]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint32]]:
        """Every stored entry whose key is one of ``keys``: (position in ``keys``, value) pairs.

        Stop words (see ``distinct_keys``) are skipped. Segments are searched in order,
        each segment's entries in file order.

        Examples
        --------
        >>> import tempfile, numpy as np
        >>> store = SegmentStore(tempfile.mkdtemp(), distinct_keys=1 << 32)
        >>> store.write("seg-a", np.array([2, 4, 4], dtype=np.uint32), np.array([7, 8, 9], dtype=np.uint32))
        >>> store.sync(["seg-a"])
        >>> [a.tolist() for a in store.lookup(np.array([4, 1, 2], dtype=np.uint32))]
        [[0, 0, 2], [8, 9, 7]]
        """
        qparts: list[npt.NDArray[np.int64]] = []
        vparts: list[npt.NDArray[np.uint32]] = []
        keys = np.asarray(keys, dtype=np.uint32)  # a wider needle would copy the haystack
        for seg in self._segments:
            if len(seg.keys) <= WHOLE_SEARCH_KEYS:
                # a small segment's keys (a few MiB, in the page cache): numpy's binary search
                # over all of them gives the same bounds (the keys are sorted, and a bucket
                # holds every key with its top bits) without the Python-level loop of search()
                lo = np.searchsorted(seg.keys, keys, side="left").astype(np.int64)
                hi = np.searchsorted(seg.keys, keys, side="right").astype(np.int64)
            else:
                bucket = (keys >> np.uint32(seg.shift)).astype(np.int64)
                b_lo = np.asarray(seg.buckets[bucket], dtype=np.int64)
                b_hi = np.asarray(seg.buckets[bucket + 1], dtype=np.int64)
                lo = search(seg.keys, b_lo, b_hi, keys, right=False)
                hi = search(seg.keys, lo, b_hi, keys, right=True)
            counts = hi - lo
            # stop-word rule: a key far more common than average carries little evidence
            # and dominates the cost; skip it (measured: no loss of accuracy, see docs)
            cap = max(32, int(self.stop_factor * len(seg.keys) / self.distinct_keys))
            counts[counts > cap] = 0
            total = int(counts.sum())
            if total == 0:
                continue
            qpos = np.repeat(np.arange(len(keys), dtype=np.int64), counts)
            starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
            pos = starts + np.arange(total)
            qparts.append(qpos)
            vparts.append(np.asarray(seg.vals[pos]))
        if not qparts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint32)
        return np.concatenate(qparts), np.concatenate(vparts)

    # -- files --------------------------------------------------------------------------------

    @staticmethod
    def new_name() -> str:
        """A fresh, unique segment name."""
        return f"seg-{uuid.uuid4().hex}"

    def _tmp(self, name: str, part: str) -> Path:
        return self.directory / f".{name}.{part}.npy.tmp"

    def write(self, name: str, keys: npt.NDArray[np.uint32], vals: npt.NDArray[np.uint32]) -> None:
        """Write segment ``name`` from sorted ``keys`` and their ``vals``: fsynced, renamed, durable.

        On an error its files are removed.
        """
        try:
            for part, arr in (("keys", keys), ("vals", vals), ("dir", bucket_directory(keys))):
                with open(self._tmp(name, part), "wb") as fh:
                    np.save(fh, np.ascontiguousarray(arr))
                    fh.flush()
                    os.fsync(fh.fileno())
            self.publish(name)
        except BaseException:
            self.remove_files(name)
            raise

    def publish(self, name: str) -> None:
        """Rename a segment's fsynced temporary files to their names, and fsync the directory."""
        for part in _PARTS:
            os.replace(self._tmp(name, part), self.directory / f"{name}.{part}.npy")
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def remove_files(self, name: str) -> None:
        """Delete segment ``name``'s files, published or temporary (missing ones are fine)."""
        for part in _PARTS:
            for f in (self.directory / f"{name}.{part}.npy", self._tmp(name, part)):
                with contextlib.suppress(FileNotFoundError):
                    f.unlink()

    def remove_orphans(self, keep: set[str]) -> None:
        """Delete files a crashed writer left: temporary files and segments not in ``keep``.

        Only to be called by a writer holding the caller's exclusive lock, when no other
        writer can be midway.
        """
        for f in self.directory.glob(".seg-*.npy.tmp"):
            f.unlink(missing_ok=True)
        for f in self.directory.glob("seg-*.npy"):
            if f.name.split(".", 1)[0] not in keep:
                log.warning("removing %s, a segment file no catalogue entry names (left by a crash)", f)
                f.unlink(missing_ok=True)

    def merge_into(
        self,
        name: str,
        segments: Sequence[Segment],
        expected: int,
        chunk: int,
        *,
        bases: npt.NDArray[np.int64] | None = None,
        alive: npt.NDArray[np.bool_] | None = None,
    ) -> dict[str, int]:
        """Stream the merge of ``segments`` into the temporary files of segment ``name``.

        Within one key the entries keep the order of ``segments``, then each segment's
        own. With ``bases`` (the sorted first value of each owner) and ``alive`` (whether
        each owner is kept), entries of owners not alive are dropped. The new files are
        fsynced but not published (:meth:`publish`); on an error they are removed.

        Parameters
        ----------
        name : str
            The new segment.
        segments : sequence of Segment
            The segments to merge.
        expected : int
            Entries the result must hold (the caller's catalogue's count).
        chunk : int
            Entries held in memory at once (at least 64 per segment are read at a time).
        bases, alive : numpy.ndarray, optional
            The owners of the values, to drop the removed ones' entries.

        Returns
        -------
        dict
            ``entries_out``, ``chunks`` written and the ``largest_chunk``.

        Raises
        ------
        AudioIndexError
            A segment file is damaged, unsorted, or holds another number of
            entries than the catalogue counts.
        """
        total = max(1, sum(len(s.keys) for s in segments))
        blocks = [max(_MIN_BLOCK, -(-chunk * len(s.keys) // total)) for s in segments]
        if self.on_merge is not None:
            self.on_merge(list(segments), blocks)
        readers: list[_SegmentReader] = []
        writers: list[_NpyWriter] = []
        try:
            for s, block in zip(segments, blocks, strict=True):
                readers.append(_SegmentReader(self.directory, s.name, len(s.keys), block))
            keys = _NpyWriter(self._tmp(name, "keys"), np.dtype("<u4"), expected, self.write_hook)
            writers.append(keys)
            vals = _NpyWriter(self._tmp(name, "vals"), np.dtype("<u4"), expected, self.write_hook)
            writers.append(vals)
            directory = _DirectoryWriter(self._tmp(name, "dir"), expected, chunk, self.write_hook)
            writers.append(directory.out)
            if bases is not None and alive is not None and len(bases) > 0 and not bool(alive.all()):
                out = _MergeOutput(keys, vals, directory, bases, alive)
            else:  # nothing to drop
                out = _MergeOutput(keys, vals, directory, None, np.zeros(0, dtype=bool))
            _kway_merge(readers, out)
            keys.close()
            vals.close()
            directory.close()
        except BaseException:
            for w in writers:
                w.abort()
            self.remove_files(name)
            raise
        finally:
            for r in readers:
                r.close()
        return {"entries_out": expected, "chunks": out.chunks, "largest_chunk": out.largest}
