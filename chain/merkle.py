"""Merkle trees, inclusion proofs and consistency proofs (RFC 6962 §2.1, with SM3).

The tree is the Certificate Transparency tree of RFC 6962 §2.1 with SM3 in place of
SHA-256, so that proofs are interoperable with any RFC 6962 / RFC 9162 verifier that is
given SM3 as its hash:

* ``leaf_hash(d) = SM3(0x00 || d)`` and ``node_hash(l, r) = SM3(0x01 || l || r)``: the
  domain-separation prefixes stop an interior node from passing as a leaf;
* the hash of the empty tree is ``SM3(b"")``;
* a tree of ``n > 1`` leaves is split at ``k``, the largest power of two strictly less
  than ``n``: ``MTH(D[0:n]) = node_hash(MTH(D[0:k]), MTH(D[k:n]))``.

:class:`MerkleTree` builds the tree bottom-up: each level pairs up the nodes of the level
below, and an unpaired last node is carried up unchanged.  This gives exactly the
recursive definition's hashes (every node of the recursive tree covers either a complete,
aligned block of ``2**l`` leaves or the aligned tail of the tree, which is what the
bottom-up level ``l`` holds), in O(n) hashes, and keeps every level so that each proof is
read off in O(log n).

Verification (:func:`verify_inclusion`, :func:`verify_consistency`) never returns
normally for a bad proof: it raises :class:`MerkleError` saying what is wrong.

Every function takes a keyword-only ``hasher`` (default :data:`SM3_HASHER`); tests pass
a SHA-256 :class:`TreeHasher` to check the structure against the published RFC 6962
test vectors.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, overload

from chain.crypto.sm3 import HASHLIB_SM3, sm3
from chain.errors import MerkleError as MerkleError  # re-exported under its historical path

__all__ = [
    "SM3_HASHER",
    "BatchProofs",
    "MerkleError",
    "MerkleTree",
    "RootAccumulator",
    "TreeHasher",
    "batch_proofs",
    "is_included",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "root_from_inclusion",
    "verify_consistency",
    "verify_inclusion",
]

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_BYTES_LIKE = (bytes, bytearray, memoryview)


class TreeHasher:
    """The three RFC 6962 hashes (leaf, interior node, empty tree) over one hash function.

    Parameters
    ----------
    digest : callable
        One-shot hash function ``bytes -> bytes`` with a fixed output length.

    Examples
    --------
    >>> import hashlib
    >>> sha256 = TreeHasher(lambda d: hashlib.sha256(d).digest())
    >>> sha256.empty_root.hex()[:16], sha256.digest_size
    ('e3b0c44298fc1c14', 32)
    """

    __slots__ = ("_digest", "digest_size", "empty_root")

    def __init__(self, digest: Callable[[bytes], bytes]) -> None:
        self._digest = digest
        self.empty_root: bytes = digest(b"")
        self.digest_size: int = len(self.empty_root)

    def leaf(self, data: bytes) -> bytes:
        """Return ``H(0x00 || data)``; ``data`` must already be checked to be bytes-like."""
        return self._digest(_LEAF_PREFIX + data)

    def node(self, left: bytes, right: bytes) -> bytes:
        """Return ``H(0x01 || left || right)``; both must already be checked hashes."""
        return self._digest(_NODE_PREFIX + left + right)


class _PrefixedHasher(TreeHasher):
    """A :class:`TreeHasher` whose leaf and node hashes continue a hash object that has
    already absorbed the prefix byte (``copy()`` is cheaper than a new object, and the data
    is not concatenated): the same hashes, about twice as fast for interior nodes."""

    __slots__ = ("_leaf_ctx", "_node_ctx")

    def __init__(self, digest: Callable[[bytes], bytes], new: Callable[[bytes], Any]) -> None:
        super().__init__(digest)
        self._leaf_ctx = new(_LEAF_PREFIX)
        self._node_ctx = new(_NODE_PREFIX)

    def leaf(self, data: bytes) -> bytes:
        h = self._leaf_ctx.copy()
        h.update(data)
        return bytes(h.digest())

    def node(self, left: bytes, right: bytes) -> bytes:
        h = self._node_ctx.copy()
        h.update(left)
        h.update(right)
        return bytes(h.digest())


SM3_HASHER: TreeHasher = (
    _PrefixedHasher(sm3, lambda prefix: hashlib.new("sm3", prefix)) if HASHLIB_SM3 else TreeHasher(sm3)
)
"""The ledger's hasher: RFC 6962 over SM3 (32-byte hashes)."""


# --------------------------------------------------------------------------- input checks


def _check_data(data: object, what: str) -> bytes:
    if not isinstance(data, _BYTES_LIKE):
        raise MerkleError(f"{what} must be bytes, not {type(data).__name__}")
    return bytes(data)


def _check_hash(value: object, what: str, hasher: TreeHasher) -> bytes:
    value = _check_data(value, what)
    if len(value) != hasher.digest_size:
        raise MerkleError(f"{what} must be {hasher.digest_size} bytes, got {len(value)}")
    return value


def _check_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MerkleError(f"{what} must be an int, not {type(value).__name__}")
    return value


def _check_proof(proof: object, hasher: TreeHasher) -> list[bytes]:
    if isinstance(proof, (str, *_BYTES_LIKE)) or not isinstance(proof, Sequence):
        raise MerkleError(f"a proof is a sequence of hashes, not {type(proof).__name__}")
    return [_check_hash(p, f"proof element {i}", hasher) for i, p in enumerate(proof)]


# --------------------------------------------------------------------------- tree shape


def _split(n: int) -> int:
    """Largest power of two strictly less than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _inclusion_path_length(index: int, size: int) -> int:
    """Length of the audit path of leaf ``index`` in a tree of ``size`` leaves."""
    length = 0
    last = size - 1
    while last:
        if index & 1 or index < last:  # the node has a sibling at this level
            length += 1
        index >>= 1
        last >>= 1
    return length


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Leaf ranges ``[start, end)`` whose subtree hashes form PROOF(old_size, D[new_size]).

    An iterative RFC 6962 §2.1.2 SUBPROOF, for ``0 < old_size <= new_size``: the ranges
    are found from the root down and returned in proof order (from the leaves up).
    """
    ranges: list[tuple[int, int]] = []
    m, start, end = old_size, 0, new_size
    whole_old_tree = True  # SUBPROOF's flag b: is [start, start + m) the entire old tree?
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            whole_old_tree = False
    if not whole_old_tree:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


# --------------------------------------------------------------------------- hashing


def leaf_hash(data: bytes, *, hasher: TreeHasher = SM3_HASHER) -> bytes:
    """Hash one entry as a leaf: ``SM3(0x00 || data)``.

    Parameters
    ----------
    data : bytes
        The entry (any length).
    hasher : TreeHasher, optional
        Hash to use instead of SM3.

    Returns
    -------
    bytes
        The 32-byte leaf hash.

    Examples
    --------
    >>> leaf_hash(b"abc") == sm3(b"\\x00abc")
    True
    """
    return hasher.leaf(_check_data(data, "entry"))


def node_hash(left: bytes, right: bytes, *, hasher: TreeHasher = SM3_HASHER) -> bytes:
    """Hash two child hashes into their parent: ``SM3(0x01 || left || right)``.

    Parameters
    ----------
    left, right : bytes
        The children's 32-byte hashes.
    hasher : TreeHasher, optional
        Hash to use instead of SM3.

    Returns
    -------
    bytes
        The parent's 32-byte hash.

    Examples
    --------
    >>> a, b = leaf_hash(b"a"), leaf_hash(b"b")
    >>> node_hash(a, b) == merkle_root([b"a", b"b"])
    True
    """
    return hasher.node(_check_hash(left, "left hash", hasher), _check_hash(right, "right hash", hasher))


def merkle_root(entries: Sequence[bytes], *, hasher: TreeHasher = SM3_HASHER) -> bytes:
    """Root hash of the tree whose leaves are the (leaf-hashed) ``entries``.

    Parameters
    ----------
    entries : sequence of bytes
        Raw entries, in order; may be empty.
    hasher : TreeHasher, optional
        Hash to use instead of SM3.

    Returns
    -------
    bytes
        The 32-byte root; ``SM3(b"")`` for no entries.

    Examples
    --------
    >>> merkle_root([]) == sm3(b"")
    True
    >>> merkle_root([b"x"]) == leaf_hash(b"x")
    True
    """
    return MerkleTree.from_entries(entries, hasher=hasher).root


# --------------------------------------------------------------------------- the tree


class MerkleTree:
    """An immutable RFC 6962 tree, built once, that serves inclusion and consistency proofs.

    Parameters
    ----------
    leaf_hashes : iterable of bytes
        The leaves' 32-byte hashes, in order (use :meth:`from_entries` for raw entries).
    hasher : TreeHasher, optional
        Hash to use instead of SM3.

    Examples
    --------
    >>> tree = MerkleTree.from_entries([b"a", b"b", b"c"])
    >>> tree.size, tree.root == merkle_root([b"a", b"b", b"c"])
    (3, True)
    >>> verify_inclusion(leaf_hash(b"c"), 2, 3, tree.inclusion_proof(2), tree.root)
    """

    __slots__ = ("_hasher", "_levels")

    def __init__(self, leaf_hashes: Iterable[bytes], *, hasher: TreeHasher = SM3_HASHER) -> None:
        if isinstance(leaf_hashes, (str, *_BYTES_LIKE)):
            raise MerkleError("leaf hashes are a sequence of hashes, not a single string")
        leaves = [_check_hash(h, f"leaf hash {i}", hasher) for i, h in enumerate(leaf_hashes)]
        self._hasher = hasher
        self._levels = self._build(leaves, hasher)

    @classmethod
    def from_entries(cls, entries: Iterable[bytes], *, hasher: TreeHasher = SM3_HASHER) -> MerkleTree:
        """Build the tree over raw entries (each is leaf-hashed first).

        Examples
        --------
        >>> MerkleTree.from_entries([b"a"]).root == leaf_hash(b"a")
        True
        """
        if isinstance(entries, (str, *_BYTES_LIKE)):
            raise MerkleError("entries are a sequence of bytes, not a single string")
        leaf = hasher.leaf
        leaves = [
            leaf(e) if type(e) is bytes else leaf(_check_data(e, f"entry {i}")) for i, e in enumerate(entries)
        ]
        tree = cls.__new__(cls)  # the hasher made the leaf hashes: nothing to check again
        tree._hasher = hasher
        tree._levels = cls._build(leaves, hasher)
        return tree

    @staticmethod
    def _build(leaves: list[bytes], hasher: TreeHasher) -> list[list[bytes]]:
        """All levels, leaves first; an unpaired last node is carried up unchanged."""
        node = hasher.node
        levels = [leaves]
        level = leaves
        while len(level) > 1:
            up = [node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) & 1:
                up.append(level[-1])
            levels.append(up)
            level = up
        return levels

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    @property
    def root(self) -> bytes:
        """The 32-byte root hash (``SM3(b"")`` for the empty tree)."""
        top = self._levels[-1]
        return top[0] if top else self._hasher.empty_root

    def _subtree(self, start: int, end: int) -> bytes:
        """Hash of leaves ``[start, end)``: an aligned block, or the aligned tail of the tree."""
        level = (end - start - 1).bit_length()
        return self._levels[level][start >> level]

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"MerkleTree(size={self.size}, root={self.root.hex()})"

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The audit path (RFC 6962 §2.1.1 PATH) of leaf ``index``, from the leaf up.

        Parameters
        ----------
        index : int
            Leaf position, ``0 <= index < size``.

        Returns
        -------
        list of bytes
            Sibling hashes, about ``log2(size)`` of them (none for a one-leaf tree).

        Examples
        --------
        >>> tree = MerkleTree.from_entries([b"a", b"b", b"c"])
        >>> tree.inclusion_proof(2) == [node_hash(leaf_hash(b"a"), leaf_hash(b"b"))]
        True
        """
        index = _check_int(index, "index")
        if not 0 <= index < self.size:
            raise MerkleError(f"index out of range: {index} not in [0, {self.size})")
        proof = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index >>= 1
        return proof

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """Proof (RFC 6962 §2.1.2 PROOF) that the first ``old_size`` leaves are a prefix.

        Parameters
        ----------
        old_size : int
            Size of the earlier tree, ``0 < old_size <= size``.

        Returns
        -------
        list of bytes
            The proof; empty when ``old_size == size``.

        Examples
        --------
        >>> old = MerkleTree.from_entries([b"a", b"b", b"c"])
        >>> new = MerkleTree.from_entries([b"a", b"b", b"c", b"d"])
        >>> verify_consistency(3, 4, old.root, new.root, new.consistency_proof(3))
        """
        old_size = _check_int(old_size, "old size")
        if not 0 < old_size <= self.size:
            raise MerkleError(f"old size out of range: {old_size} not in [1, {self.size}]")
        return [self._subtree(start, end) for start, end in _consistency_ranges(old_size, self.size)]


# --------------------------------------------------------------------------- verification


def verify_inclusion(
    leaf_hash: bytes,
    index: int,
    size: int,
    proof: Sequence[bytes],
    root: bytes,
    *,
    hasher: TreeHasher = SM3_HASHER,
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    Parameters
    ----------
    leaf_hash : bytes
        The leaf's 32-byte hash (see :func:`leaf_hash`).
    index : int
        Leaf position, ``0 <= index < size``.
    size : int
        Number of leaves of the tree.
    proof : sequence of bytes
        The audit path from :meth:`MerkleTree.inclusion_proof`.
    root : bytes
        The tree's 32-byte root.
    hasher : TreeHasher, optional
        Hash to use instead of SM3.

    Raises
    ------
    MerkleError
        Malformed input ("index out of range", a hash of the wrong length, ...), "proof has
        wrong length for this index and size", or "root mismatch".

    Notes
    -----
    The hashes bind the leaves, not ``size``: where leaf ``index`` has an audit path of the
    same shape in two sizes, one proof checks for both.  Take ``size`` and ``root`` together
    from a trusted (signed) tree head, never from the prover.

    Examples
    --------
    >>> tree = MerkleTree.from_entries([b"a", b"b"])
    >>> verify_inclusion(leaf_hash(b"b"), 1, 2, tree.inclusion_proof(1), tree.root)
    >>> verify_inclusion(leaf_hash(b"b"), 0, 2, tree.inclusion_proof(1), tree.root)
    Traceback (most recent call last):
    ...
    chain.errors.MerkleError: root mismatch
    """
    root = _check_hash(root, "root", hasher)
    computed = root_from_inclusion(leaf_hash, index, size, proof, hasher=hasher)
    if not hmac.compare_digest(computed, root):
        raise MerkleError("root mismatch")


def root_from_inclusion(
    leaf_hash: bytes,
    index: int,
    size: int,
    proof: Sequence[bytes],
    *,
    hasher: TreeHasher = SM3_HASHER,
) -> bytes:
    """The root that an audit path leads to from leaf ``index`` of a tree of ``size`` leaves.

    :func:`verify_inclusion` compares it with a trusted root; a two-level structure (the
    ledger's state: a bucket's tree under the tree of buckets) feeds it to the next level.

    Parameters
    ----------
    leaf_hash : bytes
        The leaf's 32-byte hash (see :func:`leaf_hash`).
    index : int
        Leaf position, ``0 <= index < size``.
    size : int
        Number of leaves of the tree.
    proof : sequence of bytes
        The audit path from :meth:`MerkleTree.inclusion_proof`.
    hasher : TreeHasher, optional
        Hash to use instead of SM3.

    Returns
    -------
    bytes
        The 32-byte root the path leads to.

    Raises
    ------
    MerkleError
        Malformed input, or "proof has wrong length for this index and size".

    Examples
    --------
    >>> tree = MerkleTree.from_entries([b"a", b"b", b"c"])
    >>> root_from_inclusion(leaf_hash(b"c"), 2, 3, tree.inclusion_proof(2)) == tree.root
    True
    """
    computed = _check_hash(leaf_hash, "leaf hash", hasher)
    index = _check_int(index, "index")
    size = _check_int(size, "size")
    path = _check_proof(proof, hasher)
    if not 0 <= index < size:
        raise MerkleError(f"index out of range: {index} not in [0, {size})")
    if len(path) != _inclusion_path_length(index, size):
        raise MerkleError("proof has wrong length for this index and size")
    # Walk up the same shape MerkleTree builds: at each level the node is a right child
    # (odd index), a left child with a sibling, or the unpaired last node (carried up).
    elements = iter(path)
    last = size - 1
    while last:
        if index & 1:
            computed = hasher.node(next(elements), computed)
        elif index < last:
            computed = hasher.node(computed, next(elements))
        index >>= 1
        last >>= 1
    return computed


def is_included(
    leaf_hash: bytes,
    index: int,
    size: int,
    proof: Sequence[bytes],
    root: bytes,
    *,
    hasher: TreeHasher = SM3_HASHER,
) -> bool:
    """:func:`verify_inclusion` as a predicate: ``True`` if it passes, ``False`` if not.

    Examples
    --------
    >>> tree = MerkleTree.from_entries([b"a", b"b"])
    >>> is_included(leaf_hash(b"a"), 0, 2, tree.inclusion_proof(0), tree.root)
    True
    >>> is_included(leaf_hash(b"z"), 0, 2, tree.inclusion_proof(0), tree.root)
    False
    """
    try:
        verify_inclusion(leaf_hash, index, size, proof, root, hasher=hasher)
    except MerkleError:
        return False
    return True


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
    *,
    hasher: TreeHasher = SM3_HASHER,
) -> None:
    """Check that the tree ``(old_size, old_root)`` is a prefix of ``(new_size, new_root)``.

    The algorithm of RFC 9162 §2.1.4.2, preceded by an exact proof-length check (which makes
    the RFC's in-loop bound checks redundant: the walk depends on the sizes only).

    Parameters
    ----------
    old_size, new_size : int
        Tree sizes, ``0 < old_size <= new_size``.
    old_root, new_root : bytes
        The two 32-byte roots.
    proof : sequence of bytes
        The proof from :meth:`MerkleTree.consistency_proof`; empty when the sizes are equal.
    hasher : TreeHasher, optional
        Hash to use instead of SM3.

    Raises
    ------
    MerkleError
        Malformed input (sizes out of order, an old size of 0, a hash of the wrong length,
        ...), "proof has wrong length for these sizes", "old root mismatch" or "new root
        mismatch".

    Notes
    -----
    As for :func:`verify_inclusion`, the hashes do not bind the sizes: take each size with
    its root from a trusted (signed) tree head.  Consistency from the empty tree is not a
    proof (there is nothing to check) and is refused rather than silently accepted.

    Examples
    --------
    >>> old = MerkleTree.from_entries([b"a"])
    >>> new = MerkleTree.from_entries([b"a", b"b", b"c"])
    >>> verify_consistency(1, 3, old.root, new.root, new.consistency_proof(1))
    >>> verify_consistency(1, 3, old.root, old.root, new.consistency_proof(1))
    Traceback (most recent call last):
    ...
    chain.errors.MerkleError: new root mismatch
    """
    old_size = _check_int(old_size, "old size")
    new_size = _check_int(new_size, "new size")
    old_root = _check_hash(old_root, "old root", hasher)
    new_root = _check_hash(new_root, "new root", hasher)
    path = _check_proof(proof, hasher)
    if old_size <= 0:
        raise MerkleError(f"old size must be positive, got {old_size}")
    if old_size > new_size:
        raise MerkleError(f"old size {old_size} exceeds new size {new_size}")
    if len(path) != len(_consistency_ranges(old_size, new_size)):
        raise MerkleError("proof has wrong length for these sizes")
    if old_size == new_size:
        if not hmac.compare_digest(old_root, new_root):
            raise MerkleError("root mismatch: trees of equal size must have equal roots")
        return

    if old_size & (old_size - 1) == 0:  # the old tree is a complete subtree of the new one
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if fn & 1 or fn == sn:
            fr = hasher.node(c, fr)
            sr = hasher.node(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = hasher.node(sr, c)
        fn >>= 1
        sn >>= 1
    if not hmac.compare_digest(fr, old_root):
        raise MerkleError("old root mismatch")
    if not hmac.compare_digest(sr, new_root):
        raise MerkleError("new root mismatch")


# --------------------------------------------------------------------------- streaming root


class RootAccumulator:
    """The root of a tree whose leaves arrive one at a time, in O(log n) memory.

    Keeps the roots of the complete subtrees so far (a "compact range": at most one per
    power of two, largest first); :attr:`root` folds them right to left, which is exactly
    RFC 6962's split at the largest power of two. Used to check a state snapshot's entries
    against a block's state root while streaming them to disk.

    Examples
    --------
    >>> acc = RootAccumulator()
    >>> for e in [b"a", b"b", b"c"]:
    ...     acc.add(e)
    >>> acc.root == merkle_root([b"a", b"b", b"c"]), acc.size
    (True, 3)
    >>> RootAccumulator().root == merkle_root([])
    True
    """

    __slots__ = ("_hasher", "_stack", "size")

    def __init__(self, *, hasher: TreeHasher = SM3_HASHER) -> None:
        self._hasher = hasher
        self._stack: list[bytes] = []  # subtree roots, sizes decreasing powers of two
        self.size = 0

    def add(self, entry: bytes) -> None:
        """Append a raw entry (leaf-hashed here)."""
        self.add_leaf_hash(self._hasher.leaf(entry))

    def add_leaf_hash(self, leaf: bytes) -> None:
        """Append a leaf given by its hash."""
        stack, node = self._stack, self._hasher.node
        size = self.size
        while size & 1:  # merge the equal-size subtrees this leaf completes
            leaf = node(stack.pop(), leaf)
            size >>= 1
        stack.append(leaf)
        self.size += 1

    @property
    def root(self) -> bytes:
        """The root of the leaves so far (``SM3(b"")`` for none)."""
        if not self._stack:
            return self._hasher.empty_root
        node = self._hasher.node
        acc = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            acc = node(left, acc)
        return acc


# --------------------------------------------------------------------------- batches


class BatchProofs(Sequence[list[bytes]]):
    """The inclusion proof of each digest of a batch, in order, each computed when it is read.

    A batch of 50,000 digests has 50,000 paths of 16 hashes; a caller that keeps one or
    a few of them does not pay for the others (reading every one costs what building
    them all at once would).

    Examples
    --------
    >>> root, proofs = batch_proofs([sm3(b"a"), sm3(b"b"), sm3(b"c")])
    >>> len(proofs), proofs[2] == proofs[-1], len(list(proofs))
    (3, True, 3)
    """

    __slots__ = ("_tree",)

    def __init__(self, tree: MerkleTree) -> None:
        self._tree = tree

    def __len__(self) -> int:
        return self._tree.size

    @overload
    def __getitem__(self, index: int) -> list[bytes]: ...

    @overload
    def __getitem__(self, index: slice) -> list[list[bytes]]: ...

    def __getitem__(self, index: int | slice) -> list[bytes] | list[list[bytes]]:
        if isinstance(index, slice):
            return [self._tree.inclusion_proof(i) for i in range(*index.indices(self._tree.size))]
        size = self._tree.size
        if type(index) is not int:
            raise TypeError(f"proof indices are integers, not {type(index).__name__}")
        if not -size <= index < size:
            raise IndexError(f"proof index {index} out of range for a batch of {size}")
        return self._tree.inclusion_proof(index % size)

    def __iter__(self) -> Iterator[list[bytes]]:
        proof = self._tree.inclusion_proof
        for i in range(self._tree.size):
            yield proof(i)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BatchProofs):
            return self._tree.root == other._tree.root and self._tree.size == other._tree.size
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BatchProofs(size={self._tree.size})"


def batch_proofs(digests: Sequence[bytes], *, hasher: TreeHasher = SM3_HASHER) -> tuple[bytes, BatchProofs]:
    """Root and inclusion proofs for anchoring many digests in one transaction.

    Each digest is an entry of the tree (so it is leaf-hashed); digest ``i`` is then
    proven with ``verify_inclusion(leaf_hash(digests[i]), i, len(digests), proofs[i], root)``.

    Parameters
    ----------
    digests : sequence of bytes
        The digests to anchor, in order; at least one.
    hasher : TreeHasher, optional
        Hash to use instead of SM3.

    Returns
    -------
    tuple of (bytes, BatchProofs)
        The root over ``digests`` and the inclusion proof of each digest, in order (a
        sequence whose items are computed when read).

    Examples
    --------
    >>> ds = [sm3(b"doc1"), sm3(b"doc2"), sm3(b"doc3")]
    >>> root, proofs = batch_proofs(ds)
    >>> root == merkle_root(ds)
    True
    >>> verify_inclusion(leaf_hash(ds[1]), 1, 3, proofs[1], root)
    """
    tree = MerkleTree.from_entries(digests, hasher=hasher)
    if tree.size == 0:
        raise MerkleError("batch_proofs needs at least one digest")
    return tree.root, BatchProofs(tree)
