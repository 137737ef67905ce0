"""Tests of :mod:`chain.state_tree` against a literal transcription of its definition."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import codec
from chain.crypto.sm3 import sm3
from chain.merkle import MerkleError, leaf_hash, merkle_root, verify_inclusion
from chain.state import State, state_root
from chain.state_tree import (
    BUCKETS,
    EMPTY_DIGEST,
    BucketTree,
    StateProof,
    bucket_digest,
    bucket_of,
    commitment_of,
    entry_bytes,
    entry_leaf,
    verify_state_proof,
)


def reference_root(entries: dict[bytes, bytes]) -> bytes:
    """The definition in docs/ledger.md, written out with nothing cached."""
    buckets: list[list[bytes]] = [[] for _ in range(BUCKETS)]
    for key in sorted(entries):
        buckets[int.from_bytes(sm3(key)[:2], "big")].append(codec.encode([key, entries[key]]))
    return merkle_root([merkle_root(b) for b in buckets])


def crowded_keys(entries: dict[bytes, bytes], least: int) -> list[bytes]:
    """Keys of ``entries`` whose bucket holds at least ``least`` of them."""
    sizes: dict[int, int] = {}
    for k in entries:
        sizes[bucket_of(k)] = sizes.get(bucket_of(k), 0) + 1
    return [k for k in entries if sizes[bucket_of(k)] >= least]


def random_entries(n: int, seed: int = 1) -> dict[bytes, bytes]:
    rnd = random.Random(seed)
    return {b"anchor/" + rnd.randbytes(32): rnd.randbytes(rnd.randrange(0, 300)) for _ in range(n)}


@pytest.fixture(scope="module")
def crowded() -> dict[bytes, bytes]:
    """3,000 entries: about 65 buckets hold two or more of them."""
    entries = random_entries(3000)
    assert crowded_keys(entries, 3)
    return entries


# --------------------------------------------------------------------------- definition


def test_fixed_vectors() -> None:
    # Pinned so that another implementation can check itself (docs/ledger.md).
    assert sm3(b"") == EMPTY_DIGEST
    assert State().root.hex() == "d162e8e008bf88c01f7009f48542a880fcfdb251032cafbe79614c1280dfb41f"
    assert State({b"a": b"1", b"b": b"2"}).root.hex() == (
        "81fff3ddcf3431dccfd4668804ae9e2dde24ba431afe1d942351fcfb3cd7e869"
    )


def test_empty_state_root_is_the_tree_of_empty_buckets() -> None:
    assert State().root == merkle_root([sm3(b"")] * BUCKETS) == BucketTree().root


def test_root_matches_the_definition(crowded: dict[bytes, bytes]) -> None:
    expected = reference_root(crowded)
    assert State(crowded).root == expected
    assert state_root(crowded) == expected
    assert commitment_of(sorted(crowded.items())) == expected
    by_bucket = sorted(crowded.items(), key=lambda kv: (bucket_of(kv[0]), kv[0]))
    assert commitment_of(by_bucket) == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=70000), st.binary(max_size=300))
def test_entry_bytes_is_the_canonical_encoding(key: bytes, value: bytes) -> None:
    assert entry_bytes(key, value) == codec.encode([key, value])
    assert entry_leaf(key, value) == leaf_hash(codec.encode([key, value]))


@pytest.mark.parametrize("n", [0, 1, 23, 24, 255, 256, 65535, 65536])
def test_entry_bytes_at_length_boundaries(n: int) -> None:
    assert entry_bytes(b"k" * n, b"v" * n) == codec.encode([b"k" * n, b"v" * n])


def test_entry_bytes_refuses_other_types() -> None:
    with pytest.raises(MerkleError):
        entry_bytes("k", b"v")  # type: ignore[arg-type]


def test_bucket_of_is_the_first_two_bytes_of_sm3() -> None:
    for key in (b"", b"a", b"anchor/" + bytes(32)):
        assert bucket_of(key) == int.from_bytes(sm3(key)[:2], "big")


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_bucket_digest_is_rfc6962(n: int) -> None:
    data = [b"e%d" % i for i in range(n)]
    assert bucket_digest([leaf_hash(d) for d in data]) == merkle_root(data)


# --------------------------------------------------------------------------- streaming


def test_commitment_refuses_disorder_within_a_bucket() -> None:
    with pytest.raises(MerkleError, match="out of order"):
        commitment_of([(b"a", b"1"), (b"a", b"1")])
    by_bucket: dict[int, list[bytes]] = {}
    for k in random_entries(2000, seed=4):
        by_bucket.setdefault(bucket_of(k), []).append(k)
    low, high = sorted(next(keys for keys in by_bucket.values() if len(keys) >= 2)[:2])
    with pytest.raises(MerkleError, match="out of order"):
        commitment_of([(high, b""), (low, b"")])
    # across buckets any order goes
    one, other = sorted(keys[0] for keys in list(by_bucket.values())[:2])
    assert commitment_of([(other, b""), (one, b"")]) == state_root({one: b"", other: b""})


def test_commitment_of_empty_stream() -> None:
    assert commitment_of([]) == State().root


# --------------------------------------------------------------------------- the tree


def test_bucket_tree_changes_leave_the_tree_alone_until_updated() -> None:
    tree = BucketTree({3: sm3(b"x")})
    before = tree.root
    after = tree.root_with({3: sm3(b"y"), 9: sm3(b"z")})
    assert tree.root == before != after
    tree.update({3: sm3(b"y"), 9: sm3(b"z")})
    assert tree.root == after
    digests = [EMPTY_DIGEST] * BUCKETS
    digests[3], digests[9] = sm3(b"y"), sm3(b"z")
    assert tree.root == merkle_root(digests)
    path = tree.path(9)
    assert len(path) == 16
    verify_inclusion(leaf_hash(sm3(b"z")), 9, BUCKETS, path, tree.root)


def test_bucket_tree_updates_match_the_definition_for_siblings_and_scattered_buckets() -> None:
    rnd = random.Random(5)
    digests = [EMPTY_DIGEST] * BUCKETS
    tree = BucketTree()
    edges = {0, 1, 2, 5, 6, 7, BUCKETS - 2, BUCKETS - 1}  # both siblings, left only, right only
    for changes in (
        {b: sm3(b"%d" % b) for b in edges},
        {rnd.randrange(BUCKETS): rnd.randbytes(32) for _ in range(700)},
        {b: EMPTY_DIGEST for b in (1, 6, BUCKETS - 1)},
    ):
        for b, d in changes.items():
            digests[b] = d
        before = tree.root
        assert tree.root_with(changes) == merkle_root(digests) and tree.root == before
        tree.update(changes)
        assert tree.root == merkle_root(digests)


def test_bucket_tree_refuses_out_of_range() -> None:
    with pytest.raises(MerkleError):
        BucketTree({BUCKETS: sm3(b"")})
    with pytest.raises(MerkleError):
        BucketTree({0: b"short"})
    with pytest.raises(MerkleError):
        BucketTree().path(-1)


# --------------------------------------------------------------------------- proofs


def test_every_entry_proves_and_nothing_else_does(crowded: dict[bytes, bytes]) -> None:
    state = State(crowded)
    keys = list(crowded)
    for key in keys[:300] + crowded_keys(crowded, 3):
        proof = state.prove(key)
        verify_state_proof(state.root, key, crowded[key], proof)
        assert StateProof.from_obj(codec.decode(codec.encode(proof.to_obj()))) == proof
        with pytest.raises(MerkleError):
            verify_state_proof(state.root, key, crowded[key] + b"x", proof)
        with pytest.raises(MerkleError):
            verify_state_proof(state.root, key + b"x", crowded[key], proof)
    with pytest.raises(MerkleError, match="no entry"):
        state.prove(b"absent")


def test_tampered_proofs_fail(crowded: dict[bytes, bytes]) -> None:
    state = State(crowded)
    key = crowded_keys(crowded, 3)[0]
    proof = state.prove(key)
    assert proof.size >= 3 and proof.path
    bad = [
        StateProof(proof.index ^ 1, proof.size, proof.path, proof.bucket_path),
        StateProof(proof.index, proof.size + 5, proof.path, proof.bucket_path),
        StateProof(proof.index, proof.size, (bytes(32), *proof.path[1:]), proof.bucket_path),
        StateProof(proof.index, proof.size, proof.path, proof.bucket_path[:-1]),
        StateProof(proof.index, proof.size, proof.path, (*proof.bucket_path[:-1], bytes(32))),
    ]
    for p in bad:
        with pytest.raises(MerkleError):
            verify_state_proof(state.root, key, crowded[key], p)
    with pytest.raises(MerkleError):
        verify_state_proof(State().root, key, crowded[key], proof)
    with pytest.raises(MerkleError):
        verify_state_proof(state.root, key, crowded[key], proof.to_obj())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "obj",
    [
        None,
        [],
        {"index": 0, "size": 1, "path": []},
        {"index": True, "size": 1, "path": [], "bucket_path": []},
        {"index": 0, "size": 1, "path": [b"short"], "bucket_path": []},
        {"index": 0, "size": 1, "path": (), "bucket_path": []},
        {"index": 0, "size": 1, "path": [], "bucket_path": [], "extra": 1},
    ],
)
def test_malformed_proof_objects_are_refused(obj: object) -> None:
    with pytest.raises(MerkleError):
        StateProof.from_obj(obj)


def test_proof_under_pending_changes(crowded: dict[bytes, bytes]) -> None:
    state = State(crowded)
    before = state.root
    changes: dict[bytes, bytes | None] = {k: None for k in list(crowded)[:50]}
    changes[b"epoch/7"] = b"record"
    proof = state.prove(b"epoch/7", changes)
    verify_state_proof(state.root_with(changes), b"epoch/7", b"record", proof)
    assert state.root == before  # proving did not apply the changes
    with pytest.raises(MerkleError):
        state.prove(next(iter(crowded)), changes)  # deleted by the changes
