"""Indexes of published batch leaves: in memory and in SQLite, bounded, checked, durable."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from chain.errors import ValidationError
from chain.merkle import SM3_HASHER, batch_proofs, verify_inclusion
from chain.node.batches import BatchIndex, SqliteBatchIndex

Index = BatchIndex | SqliteBatchIndex


def _leaves(start: int, n: int) -> list[bytes]:
    return [i.to_bytes(32, "big") for i in range(start, start + n)]


@pytest.fixture(params=["memory", "sqlite"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[int], Index]:
    def build(max_leaves: int) -> Index:
        if request.param == "memory":
            return BatchIndex(max_leaves=max_leaves)
        return SqliteBatchIndex(tmp_path / "batches.db", max_leaves=max_leaves)

    return build


def test_leaves_are_found_with_paths_that_verify(make: Callable[[int], Index]) -> None:
    index = make(1000)
    leaves = _leaves(0, 37)
    root, proofs = batch_proofs(leaves)
    index.add(root, leaves)
    index.add(root, leaves)  # publishing twice is harmless
    assert len(index) == 37
    for i in (0, 17, 36):
        found = index.find(leaves[i])
        assert found is not None and (found.root, found.index, found.count) == (root, i, 37)
        assert found.path == proofs[i]
        verify_inclusion(SM3_HASHER.leaf(leaves[i]), i, 37, found.path, root)  # raises if wrong
    assert index.find(b"\xff" * 32) is None


def test_unordered_digests_and_a_repeated_one_keep_their_places(make: Callable[[int], Index]) -> None:
    index = make(1000)
    leaves = [os.urandom(32) for _ in range(50)]
    leaves[40] = leaves[7]  # the same digest twice: found at its first place
    root, proofs = batch_proofs(leaves)
    index.add(root, leaves)
    for i in range(50):
        found = index.find(leaves[i])
        first = 7 if i == 40 else i
        assert found is not None and found.index == first and found.path == proofs[first]
        verify_inclusion(SM3_HASHER.leaf(leaves[i]), first, 50, found.path, root)


def test_index_forgets_the_oldest_batches_and_refuses_bad_ones(make: Callable[[int], Index]) -> None:
    index = make(4)
    a, b = _leaves(0, 3), _leaves(10, 3)
    index.add(batch_proofs(a)[0], a)
    index.add(batch_proofs(b)[0], b)
    assert index.find(a[0]) is None and index.find(b[2]) is not None and len(index) == 3
    with pytest.raises(ValidationError, match=r"1\.\.4 digests"):
        index.add(b"\x00" * 32, _leaves(20, 5))  # larger than the index
    with pytest.raises(ValidationError, match="32-byte"):
        index.add(b"\x00" * 32, [b"short"])
    with pytest.raises(ValidationError, match="not the batch root"):
        index.add(b"\x00" * 32, _leaves(30, 2))
    with pytest.raises(ValidationError):
        index.add(b"\x00" * 32, [])
    assert len(index) == 3 and index.find(b[0]) is not None


def test_sqlite_index_survives_a_restart_and_serves_threads(tmp_path: Path) -> None:
    path = tmp_path / "batches.db"
    index = SqliteBatchIndex(path, max_leaves=10_000)
    batches = [_leaves(1000 * k, 500) for k in range(6)]
    errors: list[BaseException] = []

    def publish(leaves: list[bytes]) -> None:
        try:
            index.add(batch_proofs(leaves)[0], leaves)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for b in batches:  # lookups while others publish
        index.find(b[0])
    for t in threads:
        t.join()
    assert not errors and len(index) == 3000
    index.close()
    again = SqliteBatchIndex(path, max_leaves=10_000)
    assert len(again) == 3000
    found = again.find(batches[4][123])
    assert found is not None and found.index == 123 and found.count == 500
    again.close()
    assert os.path.getsize(path) > 3000 * 32
