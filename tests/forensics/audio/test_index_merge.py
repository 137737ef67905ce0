"""AudioIndex's streaming segment merge: same result as an in-memory merge, bounded memory, crash safety."""

from __future__ import annotations

import sqlite3
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from forensics.audio import index as index_module
from forensics.audio.errors import AudioIndexError
from forensics.audio.index import AudioIndex, Fingerprint, bucket_directory, make_fingerprint

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
    index._refresh()
    keys = np.concatenate([np.asarray(s.keys) for s in index._segments])
    vals = np.concatenate([np.asarray(s.vals) for s in index._segments])
    owner = np.searchsorted(index._bases, vals.astype(np.int64), side="right") - 1
    keep = index._alive[owner]
    keys, vals = keys[keep], vals[keep]
    order = np.argsort(keys, kind="stable")
    return keys[order], vals[order], bucket_directory(keys[order])


def only_segment(index: AudioIndex) -> tuple[U32, U32, NDArray[np.unsignedinteger]]:
    index._refresh()
    (seg,) = index._segments
    return np.asarray(seg.keys), np.asarray(seg.vals), np.asarray(seg.buckets)


def assert_all_found(index: AudioIndex, works: Works) -> None:
    """Every (hash, frame) of every live work is returned by a lookup, under that work."""
    alive = {w: i for i, w in enumerate(index._ids) if index._alive[i]}
    assert set(alive) == set(works)
    for work_id, fp in works.items():
        base = int(index._bases[alive[work_id]])
        sample = np.arange(0, len(fp.hashes), 7)  # every 7th landmark keeps the test fast
        q, vals = index._lookup(fp.hashes[sample])
        found = set(zip(fp.hashes[sample][q].tolist(), vals.astype(np.int64).tolist(), strict=True))
        want = set(
            zip(fp.hashes[sample].tolist(), (fp.frames[sample].astype(np.int64) + base).tolist(), strict=True)
        )
        hot = np.uint32(0xABCDEF01)  # the stop-word rule may skip the hot hash: leave it out
        want = {(h, v) for h, v in want if h != hot}
        assert want <= found, f"{work_id}: {len(want - found)} landmarks not found"


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
    q, v = index._lookup(np.arange(100, dtype=np.uint32))
    assert len(q) == len(v) == 0
    index.close()


def test_automatic_merge_streams_with_the_index_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real = index_module._kway_merge

    def spy(readers: list[index_module._SegmentReader], out: index_module._MergeOutput) -> None:
        seen.append(sum(r.block for r in readers))
        real(readers, out)

    monkeypatch.setattr(index_module, "_kway_merge", spy)
    rng = np.random.default_rng(8)
    works: Works = {}
    with AudioIndex(tmp_path / "idx", max_segments=3, merge_chunk=256) as index:
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


def test_error_midway_leaves_the_old_segments_in_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "idx"
    index, works = build(d, 3, [2000, 1500, 2500, 800, 1000])
    before = sorted(p.name for p in d.glob("seg-*.npy"))
    generation = index._get("generation")
    calls = {"n": 0}
    real_write = index_module._NpyWriter.write

    def failing_write(self: index_module._NpyWriter, arr: NDArray[np.uint32]) -> None:
        calls["n"] += 1
        if calls["n"] == 25:
            raise OSError(28, "No space left on device")
        real_write(self, arr)

    monkeypatch.setattr(index_module._NpyWriter, "write", failing_write)
    with pytest.raises(OSError, match="No space left"):
        index.compact(chunk=100)
    assert calls["n"] == 25  # it failed midway, after writing part of the new segment
    monkeypatch.undo()
    assert sorted(p.name for p in d.glob("seg-*.npy")) == before  # old segments intact, nothing new
    assert not list(d.glob(".*.tmp"))  # temporary files removed
    assert index._get("generation") == generation
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
    index._refresh()
    segments = list(index._segments)
    # a crash after the new segment was published but before the catalogue named it, and
    # one while its temporary files were being written
    with index._writer():
        index._merge_into("seg-crashed", segments, sum(len(f.hashes) for f in works.values()), 128)
        index._publish("seg-crashed")
        index._merge_into("seg-halfway", segments, sum(len(f.hashes) for f in works.values()), 128)
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
    index._refresh()
    name = index._segments[1].name
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
