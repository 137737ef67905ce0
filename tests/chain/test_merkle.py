"""Tests of :mod:`chain.merkle` against a literal transcription of RFC 6962 §2.1 and against
the RFC 6962 (SHA-256) test vectors published by transparency-dev/merkle."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto.sm3 import sm3
from chain.errors import ChainError
from chain.merkle import (
    SM3_HASHER,
    MerkleError,
    MerkleTree,
    RootAccumulator,
    TreeHasher,
    batch_proofs,
    is_included,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_consistency,
    verify_inclusion,
)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


SHA256_HASHER = TreeHasher(_sha256)


# --------------------------------------------------------------------------- reference


class Reference:
    """RFC 6962 §2.1 written out literally: recursion on leaf ranges ``[lo, hi)``.

    Only memoized (so that all proofs of a 200-leaf tree are cheap); no levels, no bit
    tricks, nothing shared with the implementation but the hash function.
    """

    def __init__(self, leaves: list[bytes], digest: Callable[[bytes], bytes]) -> None:
        self.leaves = leaves
        self.digest = digest
        self._mth: dict[tuple[int, int], bytes] = {}

    @staticmethod
    def split(n: int) -> int:
        k = 1
        while 2 * k < n:
            k *= 2
        return k

    def mth(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi])."""
        if (lo, hi) not in self._mth:
            n = hi - lo
            if n == 0:
                value = self.digest(b"")
            elif n == 1:
                value = self.digest(b"\x00" + self.leaves[lo])
            else:
                k = self.split(n)
                value = self.digest(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi))
            self._mth[(lo, hi)] = value
        return self._mth[(lo, hi)]

    def path(self, m: int, lo: int, hi: int) -> list[tuple[str, bytes]]:
        """PATH(m, D[lo:hi]) with each element tagged by the side its subtree is on."""
        n = hi - lo
        if n == 1:
            return []
        k = self.split(n)
        if m - lo < k:
            return [*self.path(m, lo, lo + k), ("right", self.mth(lo + k, hi))]
        return [*self.path(m, lo + k, hi), ("left", self.mth(lo, lo + k))]

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        """SUBPROOF(m, D[lo:hi], b)."""
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = self.split(n)
        if m <= k:
            return [*self.subproof(m, lo, lo + k, b), self.mth(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]


def entries_for(n: int, salt: bytes = b"") -> list[bytes]:
    return [salt + i.to_bytes(2, "big") for i in range(n)]


def flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def shape(index: int, size: int) -> list[str]:
    """Sides of the audit path's subtrees: PATH's recursion without the hashes."""
    if size == 1:
        return []
    k = Reference.split(size)
    if index < k:
        return [*shape(index, k), "right"]
    return [*shape(index - k, size - k), "left"]


# --------------------------------------------------------------------------- RFC 6962 vectors

# From transparency-dev/merkle, proof/verify_test.go (commit 02194e9afb6c1d95b5381350007963aa70fff472):
# SHA-256 RFC 6962 tree over these eight entries; ROOTS[n] is the root of the first n.
VECTOR_ENTRIES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
H_0E = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
H_5F = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
H_6B = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
H_96 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
H_B0 = "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"
H_BC = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
H_CA = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
H_D3 = "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
H_FA = "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
H_6E = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
# (0-based leaf index, tree size, audit path)
INCLUSION_VECTORS = [
    (0, 8, [H_96, H_5F, H_6B]),
    (5, 8, [H_BC, H_CA, H_D3]),
    (2, 3, [H_FA]),
    (1, 5, [H_6E, H_5F, H_BC]),
]
# (old size, new size, proof)
CONSISTENCY_VECTORS = [
    (1, 8, [H_96, H_5F, H_6B]),
    (6, 8, [H_0E, H_CA, H_D3]),
    (2, 5, [H_5F, H_BC]),
    (6, 7, [H_0E, H_B0, H_D3]),
]


def test_rfc6962_roots_with_sha256() -> None:
    for n in range(len(VECTOR_ENTRIES) + 1):
        assert merkle_root(VECTOR_ENTRIES[:n], hasher=SHA256_HASHER) == ROOTS[n], n
    assert leaf_hash(b"", hasher=SHA256_HASHER) == ROOTS[1]
    pair = [leaf_hash(e, hasher=SHA256_HASHER) for e in VECTOR_ENTRIES[:2]]
    assert node_hash(*pair, hasher=SHA256_HASHER) == ROOTS[2]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_VECTORS)
def test_rfc6962_inclusion_vectors(index: int, size: int, path: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in path]
    tree = MerkleTree.from_entries(VECTOR_ENTRIES[:size], hasher=SHA256_HASHER)
    assert tree.inclusion_proof(index) == proof
    leaf = leaf_hash(VECTOR_ENTRIES[index], hasher=SHA256_HASHER)
    verify_inclusion(leaf, index, size, proof, ROOTS[size], hasher=SHA256_HASHER)
    with pytest.raises(MerkleError):
        verify_inclusion(leaf, index, size, proof, ROOTS[size])  # SM3 is not SHA-256


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY_VECTORS)
def test_rfc6962_consistency_vectors(old: int, new: int, path: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in path]
    tree = MerkleTree.from_entries(VECTOR_ENTRIES[:new], hasher=SHA256_HASHER)
    assert tree.consistency_proof(old) == proof
    verify_consistency(old, new, ROOTS[old], ROOTS[new], proof, hasher=SHA256_HASHER)
    # The corruptions of transparency-dev's corruptConsistencyProof, for these vectors.
    some = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    r1, r2 = ROOTS[old], ROOTS[new]
    probes = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, some, r2, proof),
        (old, new, r1, some, proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*proof, r1]),
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),
    ]
    for probe in probes:
        with pytest.raises(MerkleError):
            verify_consistency(*probe, hasher=SHA256_HASHER)


# --------------------------------------------------------------------------- agreement with the reference


def check_against_reference(
    entries: list[bytes], hasher: TreeHasher, digest: Callable[[bytes], bytes]
) -> None:
    n = len(entries)
    ref = Reference(entries, digest)
    tree = MerkleTree.from_entries(entries, hasher=hasher)
    assert tree.size == len(tree) == n
    assert tree.root == ref.mth(0, n) == merkle_root(entries, hasher=hasher)
    for i in range(n):
        proof = tree.inclusion_proof(i)
        assert proof == [h for _, h in ref.path(i, 0, n)]
        verify_inclusion(ref.mth(i, i + 1), i, n, proof, tree.root, hasher=hasher)
    for m in range(1, n + 1):
        proof = tree.consistency_proof(m)
        assert proof == ref.subproof(m, 0, n, True)
        verify_consistency(m, n, ref.mth(0, m), tree.root, proof, hasher=hasher)


@pytest.mark.parametrize(
    ("hasher", "digest"), [(SM3_HASHER, sm3), (SHA256_HASHER, _sha256)], ids=["sm3", "sha256"]
)
def test_every_small_tree_matches_reference(hasher: TreeHasher, digest: Callable[[bytes], bytes]) -> None:
    for n in range(0, 70):
        check_against_reference(entries_for(n), hasher, digest)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=200), st.binary(max_size=4))
def test_random_trees_match_reference(n: int, salt: bytes) -> None:
    check_against_reference(entries_for(n, salt), SM3_HASHER, sm3)


@pytest.mark.parametrize(
    ("hasher", "digest"), [(SM3_HASHER, sm3), (SHA256_HASHER, _sha256)], ids=["sm3", "sha256"]
)
def test_streaming_root_matches_the_tree(hasher: TreeHasher, digest: Callable[[bytes], bytes]) -> None:
    for n in range(0, 140):
        entries = entries_for(n)
        acc = RootAccumulator(hasher=hasher)
        for e in entries:
            acc.add(e)
        assert acc.size == n and acc.root == Reference(entries, digest).mth(0, n)


@settings(deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=40))
def test_arbitrary_entries_root(entries: list[bytes]) -> None:
    # Duplicates, empty entries, entries that look like hashes: the root is still the reference's.
    assert merkle_root(entries) == Reference(entries, sm3).mth(0, len(entries))
    leaves = [leaf_hash(e) for e in entries]
    assert MerkleTree(leaves).root == merkle_root(entries)


def test_empty_tree() -> None:
    assert merkle_root([]) == sm3(b"") == MerkleTree([]).root
    assert MerkleTree([]).size == 0
    assert leaf_hash(b"abc") == sm3(b"\x00abc")
    assert node_hash(b"a" * 32, b"b" * 32) == sm3(b"\x01" + b"a" * 32 + b"b" * 32)


# --------------------------------------------------------------------------- tampering


def test_every_bit_flip_of_inclusion_proofs_fails() -> None:
    n = 13
    tree = MerkleTree.from_entries(entries_for(n))
    for i in range(n):
        leaf, proof, root = leaf_hash(entries_for(n)[i]), tree.inclusion_proof(i), tree.root
        verify_inclusion(leaf, i, n, proof, root)
        for bit in range(256):
            with pytest.raises(MerkleError, match="root mismatch"):
                verify_inclusion(flip(leaf, bit), i, n, proof, root)
            with pytest.raises(MerkleError, match="root mismatch"):
                verify_inclusion(leaf, i, n, proof, flip(root, bit))
            for j in range(len(proof)):
                bad = [*proof[:j], flip(proof[j], bit), *proof[j + 1 :]]
                with pytest.raises(MerkleError, match="root mismatch"):
                    verify_inclusion(leaf, i, n, bad, root)


@settings(deadline=None)
@given(st.data())
def test_random_bit_flip_of_inclusion_proof_fails(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=2, max_value=300), label="size")
    i = data.draw(st.integers(min_value=0, max_value=n - 1), label="index")
    tree = MerkleTree.from_entries(entries_for(n))
    leaf, proof = leaf_hash(entries_for(n)[i]), tree.inclusion_proof(i)
    target = data.draw(st.integers(min_value=-2, max_value=len(proof) - 1), label="target")
    bit = data.draw(st.integers(min_value=0, max_value=255), label="bit")
    root = tree.root
    if target == -2:
        leaf = flip(leaf, bit)
    elif target == -1:
        root = flip(root, bit)
    else:
        proof[target] = flip(proof[target], bit)
    assert not is_included(leaf, i, n, proof, root)
    with pytest.raises(MerkleError, match="root mismatch"):
        verify_inclusion(leaf, i, n, proof, root)


def test_wrong_index_truncated_or_extended_inclusion_proofs_fail() -> None:
    junk = sm3(b"junk")
    for n in range(1, 34):
        entries = entries_for(n)
        tree = MerkleTree.from_entries(entries)
        for i in range(n):
            leaf, proof = leaf_hash(entries[i]), tree.inclusion_proof(i)
            assert is_included(leaf, i, n, proof, tree.root)
            for j in range(n):
                if j != i:
                    assert not is_included(leaf, j, n, proof, tree.root), (n, i, j)
            for bad in ([*proof, junk], [junk, *proof], [*proof, tree.root], proof[:-1], proof[1:]):
                if bad != proof:
                    with pytest.raises(MerkleError, match="wrong length"):
                        verify_inclusion(leaf, i, n, bad, tree.root)
            for bad_index in (-1, n, n + 1):
                with pytest.raises(MerkleError, match="index out of range"):
                    verify_inclusion(leaf, bad_index, n, proof, tree.root)


def test_wrong_size_fails_unless_the_path_has_the_same_shape() -> None:
    # A root commits to the leaves, not to the size: when leaf i's audit path in a tree of
    # size m has the same shape (same sides, same length) as in size n, the proof checks
    # for either size.  Trusted sizes come from signed tree heads, never from the prover.
    for n in range(1, 34):
        entries = entries_for(n)
        tree = MerkleTree.from_entries(entries)
        for i in range(n):
            leaf, proof = leaf_hash(entries[i]), tree.inclusion_proof(i)
            for m in range(i + 1, 2 * n + 2):
                same_shape = shape(i, m) == shape(i, n)
                assert is_included(leaf, i, m, proof, tree.root) == same_shape, (n, i, m)
            with pytest.raises(MerkleError):
                verify_inclusion(leaf, i, 2 * n, proof, tree.root)
    # The smallest example: leaf 0 has path [right, right, right] in sizes 5 to 8.
    tree5 = MerkleTree.from_entries(entries_for(5))
    verify_inclusion(leaf_hash(entries_for(5)[0]), 0, 6, tree5.inclusion_proof(0), tree5.root)


@settings(deadline=None)
@given(st.data())
def test_random_tampering_of_consistency_proof_fails(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=2, max_value=300), label="new size")
    m = data.draw(st.integers(min_value=1, max_value=n - 1), label="old size")
    tree = MerkleTree.from_entries(entries_for(n))
    old_root, new_root, proof = (
        MerkleTree.from_entries(entries_for(m)).root,
        tree.root,
        tree.consistency_proof(m),
    )
    verify_consistency(m, n, old_root, new_root, proof)
    target = data.draw(st.integers(min_value=-2, max_value=len(proof) - 1), label="target")
    bit = data.draw(st.integers(min_value=0, max_value=255), label="bit")
    if target == -2:
        old_root = flip(old_root, bit)
    elif target == -1:
        new_root = flip(new_root, bit)
    else:
        proof[target] = flip(proof[target], bit)
    with pytest.raises(MerkleError, match="root mismatch"):
        verify_consistency(m, n, old_root, new_root, proof)


def test_every_bit_flip_and_length_change_of_consistency_proofs_fails() -> None:
    n = 13
    tree = MerkleTree.from_entries(entries_for(n))
    junk = sm3(b"junk")
    for m in range(1, n + 1):
        old_root, proof = MerkleTree.from_entries(entries_for(m)).root, tree.consistency_proof(m)
        verify_consistency(m, n, old_root, tree.root, proof)
        for bit in range(256):
            with pytest.raises(MerkleError, match="root mismatch"):
                verify_consistency(m, n, flip(old_root, bit), tree.root, proof)
            with pytest.raises(MerkleError, match="root mismatch"):
                verify_consistency(m, n, old_root, flip(tree.root, bit), proof)
            for j in range(len(proof)):
                bad = [*proof[:j], flip(proof[j], bit), *proof[j + 1 :]]
                with pytest.raises(MerkleError, match="root mismatch"):
                    verify_consistency(m, n, old_root, tree.root, bad)
        for bad in ([*proof, junk], [junk, *proof], [*proof, old_root], proof[:-1], proof[1:]):
            if bad != proof:
                with pytest.raises(MerkleError, match="wrong length"):
                    verify_consistency(m, n, old_root, tree.root, bad)
        if m < n:
            with pytest.raises(MerkleError):
                verify_consistency(m, n, tree.root, old_root, proof)  # swapped roots


def test_wrong_sizes_of_consistency_proofs_fail() -> None:
    # transparency-dev's probes (old - 1, old + 1, old ^ 2, new * 2, new // 2), on every pair.
    trees = [MerkleTree.from_entries(entries_for(n)) for n in range(34)]
    for n in range(2, 34):
        for m in range(1, n):
            proof, old_root, new_root = trees[n].consistency_proof(m), trees[m].root, trees[n].root
            for old, new in {(m - 1, n), (m + 1, n), (m ^ 2, n), (m, 2 * n), (m, n // 2)} - {(m, n)}:
                with pytest.raises(MerkleError):
                    verify_consistency(old, new, old_root, new_root, proof)
    # As with inclusion, the hashes do not bind the sizes: a proof for 6 -> 8 also checks as
    # 6 -> 7 (same shape).  Sizes must come from signed tree heads.
    verify_consistency(6, 7, trees[6].root, trees[8].root, trees[8].consistency_proof(6))


def test_equal_sizes_need_equal_roots_and_an_empty_proof() -> None:
    tree = MerkleTree.from_entries(entries_for(5))
    assert tree.consistency_proof(5) == []
    verify_consistency(5, 5, tree.root, tree.root, [])
    with pytest.raises(MerkleError, match="root mismatch"):
        verify_consistency(5, 5, tree.root, sm3(b"other"), [])
    with pytest.raises(MerkleError, match="wrong length"):
        verify_consistency(5, 5, tree.root, tree.root, [tree.root])


# --------------------------------------------------------------------------- bad inputs


def test_merkle_error_is_a_chain_error() -> None:
    assert issubclass(MerkleError, ChainError)


@pytest.mark.parametrize("bad", ["text", 7, None, [b"x"]])
def test_non_bytes_entries_are_refused(bad: object) -> None:
    with pytest.raises(MerkleError, match="must be bytes"):
        merkle_root([b"ok", bad])  # type: ignore[list-item]
    with pytest.raises(MerkleError, match="must be bytes"):
        leaf_hash(bad)  # type: ignore[arg-type]
    with pytest.raises(MerkleError, match="must be bytes"):
        batch_proofs([bad])  # type: ignore[list-item]


def test_a_single_string_is_not_a_list_of_entries() -> None:
    for bad in ("abc", b"abc", bytearray(b"abc")):
        with pytest.raises(MerkleError):
            merkle_root(bad)  # type: ignore[arg-type]
        with pytest.raises(MerkleError):
            MerkleTree(bad)  # type: ignore[arg-type]


def test_bytes_like_entries_are_accepted() -> None:
    bytes_like = [bytearray(b"a"), memoryview(b"b")]
    assert merkle_root(bytes_like) == merkle_root([b"a", b"b"])  # type: ignore[arg-type]


def test_hashes_must_have_the_digest_size() -> None:
    good, short, long = sm3(b"x"), sm3(b"x")[:31], sm3(b"x") + b"\x00"
    for bad in (short, long, b"", "0" * 32):
        with pytest.raises(MerkleError):
            MerkleTree([good, bad])  # type: ignore[list-item]
        with pytest.raises(MerkleError):
            node_hash(good, bad)  # type: ignore[arg-type]
        with pytest.raises(MerkleError):
            node_hash(bad, good)  # type: ignore[arg-type]
    tree = MerkleTree([good, good, good])
    proof = tree.inclusion_proof(1)
    with pytest.raises(MerkleError, match="leaf hash must be 32 bytes, got 31"):
        verify_inclusion(short, 1, 3, proof, tree.root)
    with pytest.raises(MerkleError, match="root must be 32 bytes"):
        verify_inclusion(good, 1, 3, proof, short)
    with pytest.raises(MerkleError, match="proof element 1 must be 32 bytes"):
        verify_inclusion(good, 1, 3, [proof[0], short], tree.root)
    with pytest.raises(MerkleError, match="old root must be 32 bytes"):
        verify_consistency(1, 3, short, tree.root, tree.consistency_proof(1))
    with pytest.raises(MerkleError, match="new root must be 32 bytes"):
        verify_consistency(1, 3, good, short, tree.consistency_proof(1))


def test_bad_indices_and_sizes() -> None:
    tree = MerkleTree.from_entries(entries_for(4))
    for index in (-1, 4, 5, 2**70):
        with pytest.raises(MerkleError, match="index out of range"):
            tree.inclusion_proof(index)
    for not_int in (1.0, "1", True, None):
        with pytest.raises(MerkleError, match="must be an int"):
            tree.inclusion_proof(not_int)  # type: ignore[arg-type]
    with pytest.raises(MerkleError, match="index out of range"):
        MerkleTree([]).inclusion_proof(0)
    leaf = leaf_hash(entries_for(4)[0])
    with pytest.raises(MerkleError, match="index out of range"):
        verify_inclusion(leaf, 0, 0, [], sm3(b""))
    with pytest.raises(MerkleError, match="index out of range"):
        verify_inclusion(leaf, 0, -3, [], tree.root)
    with pytest.raises(MerkleError, match="must be an int"):
        verify_inclusion(leaf, 0, 4.0, tree.inclusion_proof(0), tree.root)  # type: ignore[arg-type]
    with pytest.raises(MerkleError, match="sequence of hashes"):
        verify_inclusion(leaf, 0, 4, b"".join(tree.inclusion_proof(0)), tree.root)  # type: ignore[arg-type]
    for old in (0, -1, 5):
        with pytest.raises(MerkleError, match="old size out of range"):
            tree.consistency_proof(old)
    with pytest.raises(MerkleError, match="old size must be positive"):
        verify_consistency(0, 4, sm3(b""), tree.root, [])
    with pytest.raises(MerkleError, match="exceeds new size"):
        verify_consistency(5, 4, tree.root, tree.root, [])


def test_is_included_never_raises() -> None:
    assert not is_included(b"short", 0, 1, [], b"short")
    assert not is_included(sm3(b""), 0, 1, "nope", sm3(b""))  # type: ignore[arg-type]
    assert is_included(sm3(b""), 0, 1, (), sm3(b""))


# --------------------------------------------------------------------------- batches, speed


@settings(deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70))
def test_batch_proofs_round_trip(digests: list[bytes]) -> None:
    root, proofs = batch_proofs(digests)
    assert root == merkle_root(digests)
    assert len(proofs) == len(digests)
    for i, (digest, proof) in enumerate(zip(digests, proofs, strict=True)):
        verify_inclusion(leaf_hash(digest), i, len(digests), proof, root)


def test_batch_proofs_read_like_a_list_of_the_paths() -> None:
    digests = [sm3(bytes([i])) for i in range(11)]
    root, proofs = batch_proofs(digests)
    tree = MerkleTree.from_entries(digests)
    every = [tree.inclusion_proof(i) for i in range(11)]
    assert root == tree.root
    assert len(proofs) == 11 and list(proofs) == every and proofs == every
    assert proofs[-1] == every[10] and proofs[-11] == every[0]
    assert proofs[2:9:3] == every[2:9:3] and proofs[::-1] == every[::-1] and proofs[20:] == []
    for bad in (11, -12):
        with pytest.raises(IndexError, match="out of range"):
            proofs[bad]
    with pytest.raises(TypeError, match="integers"):
        proofs["1"]  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="integers"):
        proofs[True]
    assert proofs == batch_proofs(digests)[1] and proofs != batch_proofs(digests[:10])[1]
    assert proofs != every[:10] and proofs != [[b"x"]] * 11 and proofs != "not proofs"
    assert digests.index(digests[4]) == 4 and proofs.index(every[4]) == 4  # Sequence mixin
    with pytest.raises(TypeError):
        hash(proofs)


def test_batch_proofs_needs_a_digest() -> None:
    with pytest.raises(MerkleError, match="at least one"):
        batch_proofs([])


@pytest.mark.slow
def test_hundred_thousand_entries_build_fast() -> None:
    entries = [i.to_bytes(8, "big") * 4 for i in range(100_000)]
    start = time.perf_counter()
    tree = MerkleTree.from_entries(entries)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"building took {elapsed:.2f} s"
    start = time.perf_counter()
    for i in range(0, 100_000, 97):
        tree.inclusion_proof(i)
    assert time.perf_counter() - start < 0.1
