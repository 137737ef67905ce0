"""A segment's lookup: searched whole (small segments) or bucket by bucket (large ones), the same entries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from forensics.audio import segments
from forensics.audio.segments import SegmentStore


def _lookups(store: SegmentStore, queries: list[npt.NDArray[np.uint32]]) -> list[tuple[list[int], list[int]]]:
    out = []
    for q in queries:
        pos, vals = store.lookup(q)
        out.append((pos.tolist(), vals.tolist()))
    return out


def test_whole_and_bucketed_searches_find_the_same_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(5)
    store = SegmentStore(tmp_path, distinct_keys=1 << 32)
    for n, dup in ((5000, 3), (40_000, 1), (7, 2)):
        keys = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
        keys = np.sort(np.concatenate([keys, keys[: n // 10].repeat(dup)]))  # repeated keys too
        keys[:3] = [0, 0, 1]  # the ends of the key space
        keys[-2:] = [(1 << 32) - 1, (1 << 32) - 1]
        keys.sort()
        name = store.new_name()
        store.write(name, keys, np.arange(len(keys), dtype=np.uint32))
    store.sync(sorted(p.name.split(".")[0] for p in tmp_path.glob("*.keys.npy")))
    stored = np.concatenate([np.asarray(s.keys) for s in store._segments])
    queries = [
        np.unique(
            np.concatenate([rng.choice(stored, 300), rng.integers(0, 1 << 32, 300, dtype=np.uint64)]).astype(
                np.uint32
            )
        ),
        np.array([0, 1, (1 << 32) - 1, 2, 12345], dtype=np.uint32),  # unsorted, the extremes
        np.zeros(0, np.uint32),
    ]
    whole = _lookups(store, queries)
    monkeypatch.setattr(segments, "WHOLE_SEARCH_KEYS", 0)
    bucketed = _lookups(store, queries)
    assert whole == bucketed
    assert len(whole[0][0]) > 300 and 0 in whole[1][0] and 2 in whole[1][0]


def test_a_wider_needle_finds_the_same_entries(tmp_path: Path) -> None:
    store = SegmentStore(tmp_path, distinct_keys=1 << 32)
    store.write("seg-a", np.array([2, 4, 4, 9], dtype=np.uint32), np.array([7, 8, 9, 10], dtype=np.uint32))
    store.sync(["seg-a"])
    pos, vals = store.lookup(np.array([4, 9, 5], dtype=np.int64))
    assert pos.tolist() == [0, 0, 1] and vals.tolist() == [8, 9, 10]
