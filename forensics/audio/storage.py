"""One layer's persistent state: its catalogue and its segment store, kept consistent.

A registration writes a new segment (fsynced, renamed) and then commits its catalogue rows
in one transaction, so a crash never leaves a returned registration unsaved and never
exposes a half-written one. When more than ``max_segments`` segments exist, the run of
segments the merge policy picks (:func:`forensics.audio.segments.plan_merge`, size-tiered)
is merged: the new segment is written, fsynced and renamed, then one catalogue transaction
swaps it in for exactly the merged segments, so an error or a crash midway leaves the old
segments in use. Removed works' landmarks are dropped whenever their segment is merged;
everything is merged when removed works hold a quarter of the entries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from forensics.audio.catalogue import Catalogue
from forensics.audio.errors import AudioIndexError
from forensics.audio.fingerprint import MAX_FRAME
from forensics.audio.landmarks import HASH_BITS, LandmarkParams, Peaks
from forensics.audio.rules import WorkTable
from forensics.audio.segments import SegmentStore, plan_merge

__all__ = ["GAP_FRAMES", "LayerStorage", "MergePolicy"]

log = logging.getLogger(__name__)

GAP_FRAMES = 1024
"""Frames left free on the frame axis between two works."""

MergePolicy = Callable[[Mapping[str, int], int, int], list[str]]
"""Segments to merge next given their sizes, ``max_segments`` and ``fan_in`` (see :func:`plan_merge`)."""


class LayerStorage:
    """The catalogue and the segments of one index directory, and the snapshot readers use.

    Parameters
    ----------
    directory : Path
        The index directory (it must exist).
    params : LandmarkParams, optional
        The parameters of a new index (checked against an existing one).
    threshold : str, optional
        A threshold to store (encoded).
    max_segments, fan_in, merge_chunk : int
        The merge policy's settings and the entries a merge holds at once.

    Attributes
    ----------
    catalogue : Catalogue
        Settings, works, segments and reference peaks.
    store : SegmentStore
        The segments of landmark hashes.
    works : WorkTable
        The works as of the last :meth:`sync`.
    merge_policy : callable
        Injectable policy hook: which segments to merge next (:func:`plan_merge` by
        default); benchmarks swap in another policy to compare.

    Examples
    --------
    >>> import tempfile
    >>> from forensics.audio.fingerprint import make_fingerprint
    >>> s = LayerStorage(Path(tempfile.mkdtemp()), max_segments=8, fan_in=4, merge_chunk=1024)
    >>> fp = make_fingerprint([1, 2], [0, 1], 1.0)
    >>> s.register("w", fp.hashes, fp.frames, 64, fp.digest, Peaks(np.zeros(0), np.zeros(0), np.zeros(0), 64))
    >>> s.sync(); s.works.live(), s.store.entries()
    (['w'], 2)
    >>> s.close()
    """

    def __init__(
        self,
        directory: Path,
        params: LandmarkParams | None = None,
        threshold: str | None = None,
        *,
        max_segments: int,
        fan_in: int,
        merge_chunk: int,
        readonly: bool = False,
    ) -> None:
        self.directory = directory
        self.max_segments, self.fan_in, self.merge_chunk = max_segments, fan_in, merge_chunk
        self.catalogue = Catalogue(directory, params, threshold, readonly=readonly)
        self.store = SegmentStore(directory, distinct_keys=1 << HASH_BITS)
        self.merge_policy: MergePolicy = plan_merge
        self.lock = self.catalogue.lock
        self.works = WorkTable([], *(np.zeros(0, np.int64),) * 2, np.zeros(0, bool), np.zeros(0, np.int64))
        self._generation = -1
        self.sync()

    def sync(self, *, force: bool = False) -> None:
        """Re-read the catalogue and remap the segments when another writer changed them."""
        if not force and self.catalogue.generation() == self._generation:
            return
        generation, works, names = self.catalogue.snapshot()
        self.works = works
        self.catalogue.peaks.forget_cache()
        self.store.sync(names)
        self._generation = generation

    def reference(self, row: int) -> Peaks | None:
        """The stored peaks of the work in catalogue row ``row`` (its ``rowids`` entry)."""
        return self.catalogue.peaks.get(row)

    def register(
        self,
        work_id: str,
        hashes: np.ndarray,
        frames: np.ndarray,
        n_frames: int,
        digest: bytes,
        peaks: Peaks,
    ) -> None:
        """Store a checked fingerprint (sorted ``hashes``, their ``frames``) as a new segment.

        Raises
        ------
        AudioIndexError
            The frame axis is full.
        """
        with self.catalogue.writer():
            base = int(self.catalogue.get("next_base") or 0)
            if base + n_frames + GAP_FRAMES > MAX_FRAME:
                raise AudioIndexError(
                    f"the audio index {self.directory} is full (2^32 frames); start a new index directory"
                )
            name = self.store.new_name()
            vals = (frames.astype(np.int64) + base).astype(np.uint32)
            self.store.write(name, hashes, vals)
            try:
                replaced = self.catalogue.record_work(
                    work_id, base, n_frames, digest, name, len(vals), peaks, base + n_frames + GAP_FRAMES
                )
            except BaseException:
                self.store.remove_files(name)
                raise
            if replaced:
                log.info("audio work %s re-registered; the earlier fingerprint is dropped", work_id)
            self.maybe_compact()

    def remove(self, work_id: str) -> bool:
        """Mark ``work_id`` removed and merge if the policy asks; ``False`` when it was not registered."""
        with self.catalogue.writer():
            removed = self.catalogue.mark_removed(work_id)
            if removed:
                self.maybe_compact()
        return removed

    def maybe_compact(self) -> list[dict[str, int]]:
        """Merge what the policy asks for after a registration or removal; the stats of each merge.

        Everything is merged when removed works hold more than a quarter of the entries, or
        when a merge is due and some work's segment is not recorded (an index written before
        it was); otherwise, while more than ``max_segments`` segments exist, the run
        :attr:`merge_policy` picks is merged. The caller holds the writer lock.
        """
        removed, unknown = self.catalogue.merge_backlog()
        sizes = self.catalogue.segment_sizes()
        total = sum(sizes.values())
        if (removed > 0 and removed * 4 > total) or (unknown > 0 and len(sizes) > self.max_segments):
            return [self.merge()]
        done: list[dict[str, int]] = []
        while run := self.merge_policy(sizes, self.max_segments, self.fan_in):
            done.append(self.merge(names=run))
            sizes = self.catalogue.segment_sizes()
        return done

    def merge(self, chunk: int | None = None, names: list[str] | None = None) -> dict[str, int]:
        """Merge the segments ``names`` (all when omitted) into one new segment.

        The new segment's temporary files are written, fsynced and renamed; then one
        catalogue transaction replaces exactly the merged segments' rows by the new one,
        moves their live works to it and deletes the rows of their removed works (whose
        landmarks the merge dropped). An error before the commit leaves the old segments
        in use and removes the new files. The caller holds the writer lock.
        """
        chunk = chunk or self.merge_chunk
        self.sync(force=True)
        current = self.store.segments()
        self.store.remove_orphans({s.name for s in current})
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
        merged = [s.name for s in segments]
        expected = self.catalogue.live_entries(None if names is None else merged)
        name = self.store.new_name()
        try:
            stats |= self.store.merge_into(
                name, segments, expected, chunk, bases=self.works.bases, alive=self.works.alive
            )
            self.store.publish(name)
            self.catalogue.replace_segments(merged, name, expected, everything=names is None)
        except BaseException:
            self.store.remove_files(name)
            raise
        for seg in segments:
            self.store.remove_files(seg.name)
        self.sync(force=True)
        log.info(
            "audio index: merged %d of %d segments (%d entries in, %d out)",
            len(segments),
            len(current),
            stats["entries_in"],
            expected,
        )
        return stats

    def counts(self, frame_seconds: float) -> dict[str, float | int]:
        """Registered ``works``, their ``hours``, stored ``landmarks``, ``segments`` and ``bytes``.

        As of the last :meth:`sync`; ``bytes`` are the segment files' and the catalogue's.
        """
        works = self.works
        alive_frames = int(works.frames[works.alive].sum()) if len(works.frames) else 0
        size = sum(f.stat().st_size for f in self.directory.glob("seg-*.npy"))
        size += sum(f.stat().st_size for f in self.directory.glob("audio.sqlite*"))
        return {
            "works": int(works.alive.sum()),
            "hours": alive_frames * frame_seconds / 3600.0,
            "landmarks": self.store.entries(),
            "segments": len(self.store.segments()),
            "bytes": size,
        }

    def close(self) -> None:
        """Forget the segments and close the catalogue."""
        self.store.close()
        self.catalogue.close()
