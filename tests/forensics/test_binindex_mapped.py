"""A saved inverted file opened memory-mapped: the same answers, changes on a copy, bad files refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forensics.image.binindex import GrowingBinaryIndex


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, (4000, 32), dtype=np.uint8)
    idx = GrowingBinaryIndex(ivf_min=1000, nprobe=8)
    idx.add(codes, np.arange(len(codes), dtype=np.int64))
    assert idx.is_ivf
    path = tmp_path / "search.ivf"
    idx.save(path)
    return path, codes


def test_mapped_search_equals_read_search_and_changes_stay_private(saved: tuple[Path, np.ndarray]) -> None:
    path, codes = saved
    before = path.read_bytes()
    read, mapped = GrowingBinaryIndex(1000, 8), GrowingBinaryIndex(1000, 8)
    read.load(path)
    mapped.load(path, mapped=True)
    assert mapped.mapped and not read.mapped and mapped.ntotal == read.ntotal == len(codes)
    queries = codes[:50] ^ np.uint8(1)
    (d1, i1), (d2, i2) = read.search(queries, 5), mapped.search(queries, 5)
    assert np.array_equal(d1, d2) and np.array_equal(i1, i2)
    assert mapped.remove(np.arange(10, dtype=np.int64)) == 10  # copied into memory first
    assert not mapped.mapped and mapped.ntotal == len(codes) - 10
    mapped.add(codes[:3], np.array([90_000, 90_001, 90_002], np.int64))
    assert int(mapped.search(codes[:1], 1)[1][0, 0]) == 90_000
    assert path.read_bytes() == before  # the saved file is untouched
    again = GrowingBinaryIndex(1000, 8)
    again.load(path, mapped=True)
    assert again.ntotal == len(codes)


@pytest.mark.parametrize("cut", ["half", "tail", "garbage", "empty"])
def test_damaged_file_is_refused_when_mapped(saved: tuple[Path, np.ndarray], cut: str) -> None:
    path, _ = saved
    data = path.read_bytes()
    damaged = {
        "half": data[: len(data) // 2],
        "tail": data[:-100],
        "garbage": b"not an index" * 10,
        "empty": b"",
    }[cut]
    path.write_bytes(damaged)
    with pytest.raises(ValueError, match="not a readable binary index"):
        GrowingBinaryIndex(1000, 8).load(path, mapped=True)
