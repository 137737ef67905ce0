"""AudioIndex's streaming segment merge: same result as an in-memory merge, bounded memory, crash safety."""

from __future__ import annotations

import math
import sqlite3
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from forensics.audio import index as index_module
from forensics.audio.errors import AudioIndexError
from forensics.audio.index import AudioIndex, Fingerprint, bucket_directory, make_fingerprint
from forensics.audio.segments import Segment

U32 = NDArray[np.uint32]
Works = dict[str, Fingerprint]


def random_fingerprint(
    rng: np.random.Generator, n: int, *, hot: int = 0, narrow: bool = False
) -> Fingerprint:
    """``n`` landmarks over 60 s; ``narrow`` draws hashes from 2^12 values (many ties across
    works), ``hot`` adds that many copies of hash 0xABCDEF01 (one key spanning many chunks)."""
    high = 1 << 12 if narrow else 1 << 32
    hashes = rng.integers(0, high, n, dtype=np.uint64).astype(np.uint32)
    hashes = np.concatenate([hashes, np.full(hot, 0xABCDEF01, dtype=np.uint32)])
    times = rng.integers(0, 3700, len(hashes))
    return make_fingerprint(hashes, times, 60.0)


def build(
    directory: Path, seed: int, sizes: list[int], remove: tuple[str, ...] = (), merge_chunk: int = 1 << 20
) -> tuple[AudioIndex, Works]:
    """An index with one segment per work (no automatic merge by count), ``w1`` re-registered
    (its first fingerprint dropped) when there are more than three works, ``remove`` removed."""
    rng = np.random.default_rng(seed)
    index = AudioIndex(directory, max_segments=1000, merge_chunk=merge_chunk)
    works: Works = {}
    for i, n in enumerate(sizes):
        fp = random_fingerprint(rng, n, hot=300 if i % 2 else 0, narrow=i % 3 == 0)
        index.add_fingerprint(f"w{i}", fp)
        works[f"w{i}"] = fp
    if len(sizes) > 3:
        works["w1"] = random_fingerprint(rng, sizes[1], hot=50)
        index.add_fingerprint("w1", works["w1"])
    for gone in remove:
        assert index.remove(gone)
        del works[gone]
    return index, works


def in_memory_merge(index: AudioIndex) -> tuple[U32, U32, NDArray[np.unsignedinteger]]:
    """The merge as it was done before streaming: concatenate, drop removed works, stable sort."""
    index.refresh()
    works = index.works()
    keys = np.concatenate([np.asarray(s.keys) for s in index.store.segments()])
    vals = np.concatenate([np.asarray(s.vals) for s in index.store.segments()])
    owner = np.searchsorted(works.bases, vals.astype(np.int64), side="right") - 1
    keep = works.alive[owner]
    keys, vals = keys[keep], vals[keep]
    order = np.argsort(keys, kind="stable")
    return keys[order], vals[order], bucket_directory(keys[order])


def only_segment(index: AudioIndex) -> tuple[U32, U32, NDArray[np.unsignedinteger]]:
    index.refresh()
    (seg,) = index.store.segments()
    return np.asarray(seg.keys), np.asarray(seg.vals), np.asarray(seg.buckets)


def assert_all_found(index: AudioIndex, works: Works) -> None:
    """Every (hash, frame) of every live work is returned by a lookup, under that work."""
    table = index.works()
    alive = {w: i for i, w in enumerate(table.ids) if table.alive[i]}
    assert set(alive) == set(works)
    for work_id, fp in works.items():
        base = int(table.bases[alive[work_id]])
        sample = np.arange(0, len(fp.hashes), 7)  # every 7th landmark keeps the test fast
        q, vals = index.store.lookup(fp.hashes[sample])
        found = set(zip(fp.hashes[sample][q].tolist(), vals.astype(np.int64).tolist(), strict=True))
        want = set(
            zip(fp.hashes[sample].tolist(), (fp.frames[sample].astype(np.int64) + base).tolist(), strict=True)
        )
        hot = np.uint32(0xABCDEF01)  # the stop-word rule may skip the hot hash: leave it out
        want = {(h, v) for h, v in want if h != hot}
        assert want <= found, f"{work_id}: {len(want - found)} landmarks not found"


def fail_nth_write(index: AudioIndex, n: int) -> dict[str, int]:
    """Make the ``n``-th piece a merge of ``index`` writes fail as a full disk would (through the
    store's write hook); the count of pieces. Reset with ``index.store.write_hook = None``."""
    calls = {"n": 0}

    def failing_write(path: Path, entries: int) -> None:
        calls["n"] += 1
        if calls["n"] == n:
            raise OSError(28, "No space left on device")

    index.store.write_hook = failing_write
    return calls


@pytest.mark.parametrize("chunk", [1, 50, 777, 100_000])
@pytest.mark.parametrize("seed", [1, 2])
def test_streaming_merge_equals_in_memory_merge(tmp_path: Path, seed: int, chunk: int) -> None:
    # removed: under a quarter of the entries, so that no merge happens before this one
    index, works = build(tmp_path / "idx", seed, [3000, 500, 4000, 10, 2500, 1200], remove=("w3", "w5"))
    want_keys, want_vals, want_dir = in_memory_merge(index)
    n_before = index.stats()["segments"]
    stats = index.compact(chunk=chunk)
    keys, vals, directory = only_segment(index)
    np.testing.assert_array_equal(keys, want_keys)
    np.testing.assert_array_equal(vals, want_vals)
    np.testing.assert_array_equal(directory, want_dir)
    assert directory.dtype == want_dir.dtype
    assert stats["segments"] == n_before == 7 and stats["entries_out"] == len(want_keys)
    assert stats["entries_in"] > stats["entries_out"]  # the removed and replaced works are gone
    assert stats["largest_chunk"] <= max(chunk, 64) + 7 * 64  # buffers: chunk, at least 64 per segment
    assert stats["chunks"] >= len(want_keys) // (max(chunk, 64) + 7 * 64)
    assert sorted(index.work_ids()) == sorted(works)
    assert_all_found(index, works)
    assert len(list((tmp_path / "idx").glob("*.npy"))) == 3 and not list((tmp_path / "idx").glob(".*tmp"))
    index.close()
    with AudioIndex(tmp_path / "idx") as reopened:  # persisted: another process sees the merged index
        assert_all_found(reopened, works)


def test_merge_of_one_segment_and_of_nothing(tmp_path: Path) -> None:
    with AudioIndex(tmp_path / "empty") as empty:
        assert empty.compact() == {
            "segments": 0,
            "entries_in": 0,
            "entries_out": 0,
            "chunks": 0,
            "largest_chunk": 0,
        }
    index, works = build(tmp_path / "one", 5, [900])
    want = in_memory_merge(index)
    index.compact(chunk=100)
    for got, exp in zip(only_segment(index), want, strict=True):
        np.testing.assert_array_equal(got, exp)
    assert_all_found(index, works)
    index.close()


def test_merge_when_every_work_is_removed(tmp_path: Path) -> None:
    index, works = build(tmp_path / "idx", 6, [400, 300])
    for w in works:
        index.remove(w)
    index.compact(chunk=64)
    keys, vals, directory = only_segment(index)
    assert len(keys) == len(vals) == 0 and directory.tolist() == [0] * 17
    assert index.work_ids() == [] and index.stats()["landmarks"] == 0
    q, v = index.store.lookup(np.arange(100, dtype=np.uint32))
    assert len(q) == len(v) == 0
    index.close()


def test_automatic_merge_streams_with_the_index_chunk(tmp_path: Path) -> None:
    seen: list[int] = []

    def spy(segments: Sequence[Segment], blocks: Sequence[int]) -> None:
        seen.append(sum(blocks))

    rng = np.random.default_rng(8)
    works: Works = {}
    with AudioIndex(tmp_path / "idx", max_segments=3, merge_chunk=256) as index:
        index.store.on_merge = spy
        for i in range(7):
            works[f"w{i}"] = random_fingerprint(rng, 1000)
            index.add_fingerprint(f"w{i}", works[f"w{i}"])
        assert index.stats()["segments"] <= 3 and seen  # merged on the way, in blocks of the chunk
        assert max(seen) <= 256 + 4 * 64
        assert_all_found(index, works)


def _peak_bytes_of_compact(directory: Path, sizes: list[int], chunk: int) -> tuple[int, int]:
    index, _ = build(directory, 11, sizes, merge_chunk=chunk)
    data = 8 * index.stats()["landmarks"]
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        index.compact()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    index.close()
    return peak, data


def test_merge_memory_is_bounded_by_the_chunk_not_the_index(tmp_path: Path) -> None:
    chunk = 4096
    small_peak, small_data = _peak_bytes_of_compact(tmp_path / "small", [20_000] * 6, chunk)
    large_peak, large_data = _peak_bytes_of_compact(tmp_path / "large", [160_000] * 6, chunk)
    assert large_data > 7 * small_data  # eight times the landmarks ...
    assert large_peak < 1.25 * small_peak + 64 * 1024  # ... not eight times the memory
    # about 40 bytes per buffered entry plus the catalogue, far below the 8 bytes per entry
    # (7.6 MB) an in-memory merge of the large index would hold, twice over
    assert large_peak < 60 * (chunk + 7 * 64) + 512 * 1024
    assert large_peak < large_data / 5


def test_error_midway_leaves_the_old_segments_in_use(tmp_path: Path) -> None:
    d = tmp_path / "idx"
    index, works = build(d, 3, [2000, 1500, 2500, 800, 1000])
    before = sorted(p.name for p in d.glob("seg-*.npy"))
    generation = index.catalogue.generation()
    calls = fail_nth_write(index, 25)
    with pytest.raises(OSError, match="No space left"):
        index.compact(chunk=100)
    assert calls["n"] == 25  # it failed midway, after writing part of the new segment
    index.store.write_hook = None
    assert sorted(p.name for p in d.glob("seg-*.npy")) == before  # old segments intact, nothing new
    assert not list(d.glob(".*.tmp"))  # temporary files removed
    assert index.catalogue.generation() == generation
    assert_all_found(index, works)
    with AudioIndex(d) as other:  # a fresh reader sees the old, complete index
        assert sorted(other.work_ids()) == sorted(works)
        assert_all_found(other, works)
    index.compact(chunk=100)  # and the next merge succeeds
    assert index.stats()["segments"] == 1
    assert_all_found(index, works)
    index.close()


def test_files_of_a_crashed_merge_are_ignored_then_removed(tmp_path: Path) -> None:
    d = tmp_path / "idx"
    index, works = build(d, 4, [1200, 900, 700, 600])
    index.refresh()
    segments = index.store.segments()
    table = index.works()
    # a crash after the new segment was published but before the catalogue named it, and
    # one while its temporary files were being written
    with index.catalogue.writer():
        live = sum(len(f.hashes) for f in works.values())
        index.store.merge_into("seg-crashed", segments, live, 128, bases=table.bases, alive=table.alive)
        index.store.publish("seg-crashed")
        index.store.merge_into("seg-halfway", segments, live, 128, bases=table.bases, alive=table.alive)
    (d / ".seg-halfway.keys.npy.tmp").write_bytes(b"\x93NUMPY truncated")
    index.close()
    with AudioIndex(d) as reopened:
        assert reopened.stats()["segments"] == 5  # the catalogue's segments only (w1 twice)
        assert_all_found(reopened, works)
        reopened.compact()
        assert not list(d.glob("seg-crashed*")) and not list(d.glob(".seg-*"))
        assert len(list(d.glob("seg-*.npy"))) == 3
        assert_all_found(reopened, works)


def test_damaged_segments_are_refused_and_kept(tmp_path: Path) -> None:
    d = tmp_path / "idx"
    index, works = build(d, 9, [1000, 1000, 1000])
    index.refresh()
    name = index.store.segments()[1].name
    keys_file = d / f"{name}.keys.npy"
    original = keys_file.read_bytes()
    raw = bytearray(original)
    raw[-8:-4], raw[-4:] = original[-4:], original[-8:-4]  # swap the last two keys
    keys_file.write_bytes(bytes(raw))
    if original != bytes(raw):
        with pytest.raises(AudioIndexError, match="not sorted"):
            index.compact(chunk=64)
        assert index.stats()["segments"] == 3
    keys_file.write_bytes(original[: len(original) - 40])  # truncated under an open index
    with pytest.raises(AudioIndexError, match=r"ends early|does not hold"):
        index.compact(chunk=64)
    keys_file.write_bytes(original)
    with sqlite3.connect(d / "audio.sqlite") as db:
        db.execute("UPDATE works SET hashes = hashes + 5 WHERE work_id = 'w2'")
    with pytest.raises(AudioIndexError, match="catalogue and the segments disagree"):
        index.compact(chunk=64)
    assert index.stats()["segments"] == 3 and not list(d.glob(".*tmp"))
    assert_all_found(index, works)
    index.close()


def test_add_fingerprint_refuses_malformed_fingerprints(tmp_path: Path) -> None:
    good = make_fingerprint([1, 2, 3], [0, 1, 2], 1.0)
    with AudioIndex(tmp_path / "idx") as index:
        with pytest.raises(AudioIndexError, match="not sorted"):
            index.add_fingerprint("w", Fingerprint(good.hashes[::-1].copy(), good.frames, 1.0, good.digest))
        with pytest.raises(AudioIndexError, match="1-D uint32"):
            index.add_fingerprint(
                "w", Fingerprint(good.hashes.astype(np.int64), good.frames, 1.0, good.digest)
            )
        with pytest.raises(AudioIndexError, match="1-D uint32"):
            index.add_fingerprint("w", Fingerprint(good.hashes, good.frames[:2], 1.0, good.digest))
        with pytest.raises(AudioIndexError, match="past its"):
            index.add_fingerprint("w", Fingerprint(good.hashes, good.frames + 100, 1.0, good.digest))
        with pytest.raises(AudioIndexError, match="non-empty"):
            index.add_fingerprint("", good)
        assert index.stats()["segments"] == 0 and not list((tmp_path / "idx").glob("*.tmp"))
    with pytest.raises(ValueError, match="one length"):
        make_fingerprint([1, 2], [0], 1.0)
    with pytest.raises(ValueError, match="32 bits"):
        make_fingerprint([1 << 32], [0], 1.0)
    with pytest.raises(ValueError, match="lie in"):
        make_fingerprint([1], [-1], 1.0)
    with pytest.raises(ValueError, match="duration"):
        make_fingerprint([1], [0], float("nan"))
    with pytest.raises(ValueError, match="merge_chunk"):
        AudioIndex(tmp_path / "x", merge_chunk=0)


# -- size-tiered merge policy -------------------------------------------------------------------


class MergeLog:
    """Watches an index's merges (the store's ``on_merge`` hook): entries read by each merge and
    the works each one rewrote."""

    def __init__(self) -> None:
        self.entries: list[int] = []
        self.rewrites: dict[str, int] = {}  # work id -> merges that rewrote its landmarks

    def watch(self, index: AudioIndex) -> AudioIndex:
        def spy(segments: Sequence[Segment], blocks: Sequence[int]) -> None:
            self.entries.append(sum(len(s.keys) for s in segments))
            names = [s.name for s in segments]
            rows = index.catalogue.query(
                f"SELECT work_id FROM works WHERE removed = 0 AND segment IN ({','.join('?' * len(names))})",
                names,
            )
            for (work_id,) in rows:
                self.rewrites[work_id] = self.rewrites.get(work_id, 0) + 1

        index.store.on_merge = spy
        return index


def segment_sizes(index: AudioIndex) -> dict[str, int]:
    return {str(n): int(e) for n, e in index.catalogue.query("SELECT name, entries FROM segments")}


def test_one_by_one_registration_keeps_few_segments_and_rewrites_each_landmark_log_times(
    tmp_path: Path,
) -> None:
    merges = MergeLog()
    rng = np.random.default_rng(21)
    n_works, fan_in = 192, 4
    works: Works = {}
    most = 0
    with merges.watch(AudioIndex(tmp_path / "idx", fan_in=fan_in)) as index:  # max_segments 8
        for i in range(n_works):
            works[f"w{i}"] = random_fingerprint(rng, int(rng.integers(100, 400)))
            index.add_fingerprint(f"w{i}", works[f"w{i}"])
            most = max(most, index.stats()["segments"])
        total = sum(len(fp.hashes) for fp in works.values())
        assert most <= 8 and index.stats()["landmarks"] == total
        assert_all_found(index, works)
    log_n = math.log(n_works, fan_in)  # 3.8
    rewritten = sum(merges.entries)
    # O(N log N) entries written in all; the former policy (rewrite everything whenever a
    # ninth segment appears) wrote about N / 16 = 12 times the index here
    assert 1.0 * total < rewritten <= 1.5 * log_n * total
    # no landmark is rewritten more than about log_fan_in(N) times
    assert max(merges.rewrites.values()) <= math.ceil(log_n) + 2
    # the largest merges are rare: only a few touch more than half of the index
    assert sum(e > total / 2 for e in merges.entries) <= 3


def test_old_full_rewrite_policy_would_write_far_more(tmp_path: Path) -> None:
    """The same registrations under full compaction (every merge rewrites all segments)."""
    merges = MergeLog()
    rng = np.random.default_rng(21)
    real_plan = index_module.plan_merge
    total = 0
    with merges.watch(AudioIndex(tmp_path / "idx")) as index:
        index.storage.merge_policy = lambda sizes, k, f: sorted(sizes) if real_plan(sizes, k, f) else []
        for i in range(96):
            fp = random_fingerprint(rng, int(rng.integers(100, 400)))
            index.add_fingerprint(f"w{i}", fp)
            total += len(fp.hashes)
        assert index.stats()["segments"] <= 8
    assert sum(merges.entries) > 4 * total  # ≈ N / 16 = 6 times; the tiered policy: ≈ log_4 N
    assert max(merges.rewrites.values()) >= 10


def test_partial_merge_drops_removed_works_of_the_merged_segments_only(tmp_path: Path) -> None:
    merges = MergeLog()
    rng = np.random.default_rng(22)
    d = tmp_path / "idx"
    index = merges.watch(AudioIndex(d, max_segments=5))
    sizes = {"big": 5000, "mid": 1000, "s1": 200, "s2": 200, "s3": 200}
    works = {w: random_fingerprint(rng, n) for w, n in sizes.items()}
    for w, fp in works.items():
        index.add_fingerprint(w, fp)
    before = segment_sizes(index)
    big_seg, mid_seg = (
        index.catalogue.query("SELECT segment FROM works WHERE work_id = ?", (w,))[0][0]
        for w in ("big", "mid")
    )
    table = index.works()
    mid_base = int(table.bases[table.ids.index("mid")])
    s2_base = int(table.bases[table.ids.index("s2")])
    assert index.remove("mid") and index.remove("s2") and merges.entries == []  # removed: 1200 of 6600
    works["s4"] = random_fingerprint(rng, 200)
    index.add_fingerprint("s4", works["s4"])  # a sixth segment: the four small ones merge
    del works["mid"], works["s2"]
    assert merges.entries == [800] and merges.rewrites == {"s1": 1, "s3": 1, "s4": 1}
    after = segment_sizes(index)
    assert len(after) == 3 and after[big_seg] == before[big_seg] and after[mid_seg] == before[mid_seg]
    assert sorted(after.values()) == [600, 1000, 5000]  # s2's 200 landmarks are gone
    rows = dict(index.catalogue.query("SELECT work_id, removed FROM works"))
    assert rows == {"big": 0, "mid": 1, "s1": 0, "s3": 0, "s4": 0}  # s2's row went with its landmarks
    index.refresh()

    def owners_in_index(base: int, frames: int) -> int:
        return sum(
            int(np.count_nonzero((s.vals >= base) & (s.vals < base + frames))) for s in index.store.segments()
        )

    frames = int(index.works().frames[0])  # every work here is 60 s long
    assert owners_in_index(s2_base, frames) == 0
    assert owners_in_index(mid_base, frames) == 1000  # its segment was not merged: still there
    assert index.catalogue.query("SELECT COUNT(*) FROM peaks")[0][0] == 4  # peaks of live works only
    assert_all_found(index, works)
    stats = index.compact()  # a full compaction rewrites everything and drops the rest
    assert stats["segments"] == 3 and stats["entries_out"] == 5600 and index.stats()["segments"] == 1
    index.refresh()
    assert owners_in_index(mid_base, frames) == 0
    assert dict(index.catalogue.query("SELECT work_id, removed FROM works")) == dict.fromkeys(works, 0)
    (seg,) = index.store.segments()
    assert {r[0] for r in index.catalogue.query("SELECT DISTINCT segment FROM works")} == {seg.name}
    assert_all_found(index, works)
    index.close()


def _index_before_a_partial_merge(d: Path) -> tuple[AudioIndex, Works, Fingerprint]:
    """Four segments (one large, three small) at ``max_segments`` 4; adding the returned
    fingerprint as ``s4`` merges the four small ones."""
    rng = np.random.default_rng(23)
    index = AudioIndex(d, max_segments=4)
    works = {w: random_fingerprint(rng, n) for w, n in {"big": 4000, "s1": 150, "s2": 150, "s3": 150}.items()}
    for w, fp in works.items():
        index.add_fingerprint(w, fp)
    assert index.remove("s2")  # dropped by the merge, when it succeeds
    return index, works, random_fingerprint(rng, 150)


def test_error_midway_in_a_partial_merge_keeps_every_work_findable(tmp_path: Path) -> None:
    d = tmp_path / "idx"
    index, works, extra = _index_before_a_partial_merge(d)
    calls = fail_nth_write(index, 3)
    with pytest.raises(OSError, match="No space left"):
        index.add_fingerprint("s4", extra)  # registered, then the merge fails
    index.store.write_hook = None
    assert calls["n"] == 3
    assert len(segment_sizes(index)) == 5 and not list(d.glob(".*tmp"))
    assert len(list(d.glob("seg-*.npy"))) == 15  # the five segments' files, nothing else
    del works["s2"]
    works["s4"] = extra
    assert_all_found(index, works)
    with AudioIndex(d, max_segments=4) as other:  # another process sees the same, complete index
        assert sorted(other.work_ids()) == sorted(works)
        assert_all_found(other, works)
    index.add_fingerprint("s5", extra)  # the next registration merges
    works["s5"] = extra
    assert len(segment_sizes(index)) <= 4
    assert "s2" not in {r[0] for r in index.catalogue.query("SELECT work_id FROM works")}
    assert_all_found(index, works)
    index.close()


def test_error_in_the_catalogue_transaction_rolls_the_partial_merge_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "idx"
    index, works, extra = _index_before_a_partial_merge(d)
    real = index.catalogue.peaks.drop_removed

    def failing_drop() -> int:  # runs inside the transaction, after the segments rows changed
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(index.catalogue.peaks, "drop_removed", failing_drop)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        index.add_fingerprint("s4", extra)
    monkeypatch.setattr(index.catalogue.peaks, "drop_removed", real)
    sizes = segment_sizes(index)
    assert len(sizes) == 5 and sorted(sizes.values()) == [150, 150, 150, 150, 4000]
    assert {p.name.split(".")[0] for p in d.glob("seg-*.npy")} == set(sizes)  # new files removed
    assert index.catalogue.query("SELECT COUNT(*) FROM works WHERE removed = 1")[0][0] == 1  # s2 kept
    members = index.catalogue.query("SELECT COUNT(DISTINCT segment) FROM works")[0][0]
    assert members == 5  # nothing moved to the merged segment
    del works["s2"]
    works["s4"] = extra
    assert_all_found(index, works)
    index.close()


def test_files_of_a_crashed_partial_merge_are_ignored_then_removed(tmp_path: Path) -> None:
    d = tmp_path / "idx"
    index, works, extra = _index_before_a_partial_merge(d)
    index.refresh()
    small = [s for s in index.store.segments() if len(s.keys) < 1000]
    table = index.works()
    with index.catalogue.writer():  # published, but the process died before the catalogue named it
        index.store.merge_into("seg-crashed", small, 300, 128, bases=table.bases, alive=table.alive)
        index.store.publish("seg-crashed")
    index.close()
    del works["s2"]
    with AudioIndex(d, max_segments=4) as reopened:
        assert len(segment_sizes(reopened)) == 4 and reopened.stats()["landmarks"] == 4450
        assert_all_found(reopened, works)
        reopened.add_fingerprint("s4", extra)
        works["s4"] = extra
        assert not list(d.glob("seg-crashed*")) and len(segment_sizes(reopened)) == 2
        assert reopened.stats()["landmarks"] == 4450
        assert_all_found(reopened, works)


def test_an_index_without_recorded_segments_is_merged_whole(tmp_path: Path) -> None:
    d = tmp_path / "idx"
    rng = np.random.default_rng(24)
    works = {f"w{i}": random_fingerprint(rng, 300) for i in range(4)}
    with AudioIndex(d, max_segments=3) as index:
        for w in ("w0", "w1", "w2"):
            index.add_fingerprint(w, works[w])
    with sqlite3.connect(d / "audio.sqlite") as db:  # as written before segments were recorded
        db.execute("DROP INDEX works_by_segment")
        db.execute("ALTER TABLE works DROP COLUMN segment")
    with AudioIndex(d, max_segments=3) as index:  # the column is added back, empty
        assert index.catalogue.query("SELECT COUNT(*) FROM works WHERE segment IS NULL")[0][0] == 3
        assert_all_found(index, {w: works[w] for w in ("w0", "w1", "w2")})
        index.add_fingerprint("w3", works["w3"])  # a merge is due: everything, as membership is unknown
        assert index.stats()["segments"] == 1
        (seg,) = index.store.segments()
        assert [r[0] for r in index.catalogue.query("SELECT DISTINCT segment FROM works")] == [seg.name]
        assert_all_found(index, works)


def test_merge_policy_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fan_in"):
        AudioIndex(tmp_path / "a", fan_in=1)
    with pytest.raises(ValueError, match="max_segments"):
        AudioIndex(tmp_path / "b", max_segments=0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 1 << 30), min_size=0, max_size=40),
    st.integers(1, 12),
    st.integers(2, 10),
)
def test_plan_merge_always_shrinks_to_the_cap(sizes: list[int], cap: int, fan_in: int) -> None:
    segs = {f"s{i}": n for i, n in enumerate(sizes)}
    merged = 0
    while run := index_module.plan_merge(segs, cap, fan_in):
        assert len(run) >= 2 and run == sorted(run) and set(run) <= set(segs)
        tiers = {index_module.size_tier(segs[n], fan_in) for n in run}
        # a run is one tier, or the two smallest segments when every tier holds one
        assert len(tiers) == 1 or sorted(segs.values())[:2] == sorted(segs[n] for n in run)
        segs = {n: e for n, e in segs.items() if n not in run} | {f"m{merged}": sum(segs[n] for n in run)}
        merged += 1
    assert len(segs) <= max(cap, 1) and sum(segs.values()) == sum(sizes)
    assert merged <= max(0, len(sizes) - cap)
