"""The state commitment: entries in 2**16 SM3 buckets, each an RFC 6962 tree, under one tree.

Definition (enough for another implementation to recompute a state root):

* an entry ``(key, value)`` (both byte strings) is hashed as the bytes
  ``E = codec.encode([key, value])``: canonical CBOR, i.e. ``0x82``, then ``key`` and
  ``value`` each as a CBOR byte string with its shortest length head;
* the **bucket** of a key is the first two bytes of ``SM3(key)`` read big-endian, a number
  in ``[0, 65536)`` (:data:`BUCKETS`);
* a **bucket digest** is the RFC 6962 Merkle tree hash, with SM3
  (:mod:`chain.merkle`: leaf ``SM3(0x00‖d)``, node ``SM3(0x01‖l‖r)``), of the ``E`` of the
  bucket's entries in increasing bytewise key order; an empty bucket's digest is the
  empty tree's hash ``SM3(b"")``;
* the **state root** is the RFC 6962 Merkle tree hash of the 65,536 bucket digests in
  bucket order, each taken as an entry of that tree (its leaf is ``SM3(0x00‖digest)``).

In one line: ``merkle_root([merkle_root(sorted E of bucket b) for b in range(65536)])``.

Why this shape (measured in ``docs/benchmarks.md``, ``bench/state_tree.py``): a block
that changes ``k`` keys dirties at most ``k`` buckets; each costs a tree over its own
entries (about ``n / 65536`` of them: 15 at a million entries, whose leaf hashes the
node's store keeps) and one path of 16 nodes, shared near the root — so the cost follows
what the block changed, not the state's size. The tree of buckets is 2**17 hashes in
memory (about 10 MB) whatever the state's size. Keys are spread by SM3, so no
prefix (``anchor/``) crowds one bucket.

:class:`StateProof` proves one entry: its path inside its bucket, then its bucket's path
among the buckets; :func:`verify_state_proof` recomputes the bucket from the key, so a
proof cannot move an entry to another bucket. :func:`commitment_of` computes a root from
a stream of entries in constant memory per bucket (a snapshot importer's check).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from chain.crypto.sm3 import HASHLIB_SM3, sm3
from chain.errors import MerkleError
from chain.merkle import MerkleTree, leaf_hash, root_from_inclusion

__all__ = [
    "BUCKETS",
    "BUCKET_BITS",
    "EMPTY_DIGEST",
    "BucketProof",
    "BucketTree",
    "StateProof",
    "bucket_digest",
    "bucket_of",
    "commitment_of",
    "entry_bytes",
    "entry_leaf",
    "prove_in_bucket",
    "verify_bucket_proof",
    "verify_state_proof",
]

BUCKET_BITS = 16
"""Bits of ``SM3(key)`` that choose a key's bucket (part of the definition)."""
BUCKETS = 1 << BUCKET_BITS
"""Number of buckets: 65,536."""


def _one_shot_sm3() -> Callable[[bytes], bytes]:
    """SM3 of one byte string, as fast as the backend allows (copying a fresh context is
    cheaper than looking the algorithm up on every call: 0.6 µs against 1.0 µs)."""
    if not HASHLIB_SM3:
        return sm3
    fresh = hashlib.new("sm3")
    copy = fresh.copy

    def digest(data: bytes) -> bytes:
        h = copy()
        h.update(data)
        return h.digest()

    return digest


_sm3 = _one_shot_sm3()

EMPTY_DIGEST = sm3(b"")
"""Digest of an empty bucket (the RFC 6962 hash of the empty tree)."""


def _node(left: bytes, right: bytes) -> bytes:
    return _sm3(b"\x01" + left + right)


def _leaf(data: bytes) -> bytes:
    return _sm3(b"\x00" + data)


_RECENT_KEYS = 4096
"""Keys (and entries) whose bucket (and leaf hash) are remembered: a block's changed key
is looked up, rehashed into its bucket and stored within one block or two (a block beyond
this many changes hashes again what it forgot; about 2 MB at most)."""


def bucket_of(key: bytes) -> int:
    """The bucket of ``key``: the first two bytes of ``SM3(key)``, big-endian.

    Examples
    --------
    >>> bucket_of(b"anchor/x") == int.from_bytes(sm3(b"anchor/x")[:2], "big")
    True
    >>> 0 <= bucket_of(b"") < BUCKETS
    True
    """
    if type(key) is bytes:  # remembered (another type is hashed every time, or refused)
        return _bucket_of(key)
    return int.from_bytes(_sm3(key)[:2], "big")


@functools.lru_cache(maxsize=_RECENT_KEYS)
def _bucket_of(key: bytes) -> int:
    return int.from_bytes(_sm3(key)[:2], "big")


def _bytes_head(n: int) -> bytes:
    """The shortest CBOR head of a byte string of length ``n`` (major type 2)."""
    if n < 24:
        return bytes((0x40 | n,))
    if n < 0x100:
        return bytes((0x58, n))
    if n < 0x10000:
        return b"\x59" + n.to_bytes(2, "big")
    if n < 0x100000000:
        return b"\x5a" + n.to_bytes(4, "big")
    return b"\x5b" + n.to_bytes(8, "big")


def entry_bytes(key: object, value: object) -> bytes:
    """``codec.encode([key, value])``, built directly (twice as fast; the tests compare them).

    Examples
    --------
    >>> from chain import codec
    >>> entry_bytes(b"k", b"v" * 30) == codec.encode([b"k", b"v" * 30])
    True
    """
    if not isinstance(key, bytes) or not isinstance(value, bytes):
        raise MerkleError(f"state keys and values are bytes, not {type(key).__name__}/{type(value).__name__}")
    return b"\x82" + _bytes_head(len(key)) + key + _bytes_head(len(value)) + value


def entry_leaf(key: object, value: object) -> bytes:
    """The RFC 6962 leaf hash of an entry: ``SM3(0x00 ‖ codec.encode([key, value]))``.

    Examples
    --------
    >>> from chain import codec
    >>> entry_leaf(b"k", b"v") == leaf_hash(codec.encode([b"k", b"v"]))
    True
    """
    if type(key) is bytes and type(value) is bytes:  # remembered
        return _entry_leaf(key, value)
    return _leaf(entry_bytes(key, value))


@functools.lru_cache(maxsize=_RECENT_KEYS)
def _entry_leaf(key: bytes, value: bytes) -> bytes:
    return _leaf(entry_bytes(key, value))


def bucket_digest(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 root over a bucket's entry leaf hashes, given in key order.

    Parameters
    ----------
    leaves : sequence of bytes
        :func:`entry_leaf` of each entry of the bucket, in increasing key order.

    Returns
    -------
    bytes
        The bucket's digest; :data:`EMPTY_DIGEST` when it has no entry.

    Examples
    --------
    >>> from chain.merkle import merkle_root
    >>> entries = [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]
    >>> bucket_digest([entry_leaf(k, v) for k, v in entries]) == merkle_root(
    ...     [entry_bytes(k, v) for k, v in entries])
    True
    >>> bucket_digest([]) == EMPTY_DIGEST
    True
    """
    level = list(leaves)
    if not level:
        return EMPTY_DIGEST
    node = _node
    while len(level) > 1:
        up = [node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            up.append(level[-1])
        level = up
    return level[0]


def _empty_heap() -> tuple[bytes, ...]:
    """The tree of :data:`BUCKETS` empty buckets as a heap (index 1 is the root, the
    children of ``i`` are ``2i`` and ``2i + 1``, bucket ``b``'s leaf is ``BUCKETS + b``)."""
    per_level = [_leaf(EMPTY_DIGEST)]
    for _ in range(BUCKET_BITS):
        per_level.append(_node(per_level[-1], per_level[-1]))
    heap: list[bytes] = [b""]
    for depth in range(BUCKET_BITS + 1):
        heap.extend([per_level[BUCKET_BITS - depth]] * (1 << depth))
    return tuple(heap)


_EMPTY_HEAP = _empty_heap()


class BucketTree:
    """The RFC 6962 tree over the 65,536 bucket digests, every node kept.

    A perfect binary tree (65,536 is a power of two) stored as a heap: changing ``d``
    bucket digests rehashes their paths, at most ``16 d`` nodes and fewer where paths meet.

    Parameters
    ----------
    digests : mapping of int to bytes, optional
        Digest of each non-empty bucket; the others are :data:`EMPTY_DIGEST`.

    Examples
    --------
    >>> from chain.merkle import merkle_root
    >>> tree = BucketTree({7: sm3(b"x")})
    >>> all_digests = [EMPTY_DIGEST] * BUCKETS
    >>> all_digests[7] = sm3(b"x")
    >>> tree.root == merkle_root(all_digests)
    True
    >>> tree.root_with({7: EMPTY_DIGEST}) == BucketTree().root
    True
    """

    __slots__ = ("_nodes",)

    def __init__(self, digests: Mapping[int, bytes] | None = None) -> None:
        self._nodes = list(_EMPTY_HEAP)
        if digests:
            self.update(digests)

    @property
    def root(self) -> bytes:
        """The state root."""
        return self._nodes[1]

    def changed_nodes(self, digests: Mapping[int, bytes]) -> dict[int, bytes]:
        """Heap nodes that differ once buckets take ``digests`` (the tree itself unchanged).

        Returns
        -------
        dict of int to bytes
            New hash of every node on the changed buckets' paths, by heap index (1 = root).
        """
        nodes = self._nodes
        changed: dict[int, bytes] = {}
        for bucket, digest in digests.items():
            if not 0 <= bucket < BUCKETS or len(digest) != 32:
                raise MerkleError(f"bucket {bucket} or its digest is out of range")
            changed[BUCKETS + bucket] = _leaf(digest)
        node = _node
        level = sorted(changed)  # one level's changed nodes in order: siblings are adjacent
        for _ in range(BUCKET_BITS):
            up: list[int] = []
            i, n = 0, len(level)
            while i < n:
                c = level[i]
                if c & 1:  # a right child whose left sibling is unchanged
                    h = node(nodes[c - 1], changed[c])
                    i += 1
                elif i + 1 < n and level[i + 1] == c + 1:  # both children changed
                    h = node(changed[c], changed[c + 1])
                    i += 2
                else:  # a left child whose right sibling is unchanged
                    h = node(changed[c], nodes[c + 1])
                    i += 1
                changed[c >> 1] = h
                up.append(c >> 1)
            level = up
        return changed

    def root_with(self, digests: Mapping[int, bytes]) -> bytes:
        """The root once buckets take ``digests``, without changing the tree."""
        return self.changed_nodes(digests).get(1, self._nodes[1])

    def update(self, digests: Mapping[int, bytes]) -> None:
        """Give buckets their new ``digests``."""
        self.install(self.changed_nodes(digests))

    def install(self, changed: Mapping[int, bytes]) -> None:
        """Set the nodes :meth:`changed_nodes` computed (for the tree as it was then)."""
        nodes = self._nodes
        for i, h in changed.items():
            nodes[i] = h

    def path(self, bucket: int, changed: Mapping[int, bytes] | None = None) -> list[bytes]:
        """RFC 6962 audit path of ``bucket``'s digest (16 hashes, leaf level first).

        ``changed`` (from :meth:`changed_nodes`) gives the path in the tree as it would be
        after those changes.
        """
        if not 0 <= bucket < BUCKETS:
            raise MerkleError(f"bucket {bucket} is out of range")
        over = changed or {}
        nodes = self._nodes
        path = []
        i = BUCKETS + bucket
        while i > 1:
            sibling = i ^ 1
            path.append(over.get(sibling) or nodes[sibling])
            i >>= 1
        return path


def commitment_of(entries: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The state root of a stream of ``(key, value)`` entries, in one pass.

    Memory is a few hashes per bucket (the RFC 6962 "peaks" of each bucket's tree so far),
    not the entries: a snapshot importer checks a million entries against a block's state
    root as they arrive.

    Parameters
    ----------
    entries : iterable of (bytes, bytes)
        Each key once, and the keys of each bucket in increasing order: increasing key
        order qualifies, and so does the store's ``(bucket, key)`` order
        (:meth:`chain.store.LedgerStore.iter_state`).

    Returns
    -------
    bytes
        The state root (:attr:`chain.state.State.root` of the same entries).

    Raises
    ------
    MerkleError
        A key repeated or out of order within its bucket.

    Examples
    --------
    >>> from chain.state import State
    >>> entries = {b"a": b"1", b"b": b"2", b"c": b"3"}
    >>> commitment_of(sorted(entries.items())) == State(entries).root
    True
    >>> commitment_of([(b"a", b"1"), (b"a", b"2")])
    Traceback (most recent call last):
    ...
    chain.errors.MerkleError: state entries out of order: a key repeats or goes back within its bucket
    """
    peaks: dict[int, list[bytes]] = {}
    counts: dict[int, int] = {}
    last: dict[int, bytes] = {}
    node = _node
    for key, value in entries:
        leaf = _leaf(entry_bytes(key, value))
        b = bucket_of(key)
        previous = last.get(b)
        if previous is not None and key <= previous:
            raise MerkleError("state entries out of order: a key repeats or goes back within its bucket")
        last[b] = key
        stack = peaks.get(b)
        if stack is None:
            peaks[b] = [leaf]
            counts[b] = 1
            continue
        n = counts[b]
        stack.append(leaf)
        while n & 1:  # merge complete subtrees of equal size, as a binary counter carries
            right = stack.pop()
            stack[-1] = node(stack[-1], right)
            n >>= 1
        counts[b] += 1
    digests = {}
    for b, stack in peaks.items():
        root = stack[-1]
        for left in reversed(stack[:-1]):
            root = node(left, root)
        digests[b] = root
    return BucketTree(digests).root


# --------------------------------------------------------------------------- proofs


@dataclass(frozen=True)
class StateProof:
    """Inclusion of one entry under a state root.

    Attributes
    ----------
    index : int
        The entry's position in its bucket (key order).
    size : int
        Number of entries in the bucket.
    path : tuple of bytes
        RFC 6962 audit path of the entry inside its bucket.
    bucket_path : tuple of bytes
        RFC 6962 audit path of the bucket's digest among the 65,536 (16 hashes).
    """

    index: int
    size: int
    path: tuple[bytes, ...]
    bucket_path: tuple[bytes, ...]

    def to_obj(self) -> dict[str, Any]:
        """The proof as a canonical-CBOR-ready map (receipts carry it)."""
        return {
            "index": self.index,
            "size": self.size,
            "path": list(self.path),
            "bucket_path": list(self.bucket_path),
        }

    @classmethod
    def from_obj(cls, obj: Any) -> StateProof:
        """Read :meth:`to_obj`'s map; :class:`MerkleError` when it is not exactly one.

        Examples
        --------
        >>> p = StateProof(0, 1, (), (b"\\x00" * 32,) * 16)
        >>> StateProof.from_obj(p.to_obj()) == p
        True
        >>> StateProof.from_obj({"index": 0})
        Traceback (most recent call last):
        ...
        chain.errors.MerkleError: a state proof has exactly the fields bucket_path, index, path, size
        """
        if not isinstance(obj, dict) or set(obj) != {"index", "size", "path", "bucket_path"}:
            raise MerkleError("a state proof has exactly the fields bucket_path, index, path, size")
        for name in ("index", "size"):
            if not isinstance(obj[name], int) or isinstance(obj[name], bool):
                raise MerkleError(f"state proof field {name!r} must be an int")
        for name in ("path", "bucket_path"):
            items = obj[name]
            if not isinstance(items, list) or not all(isinstance(h, bytes) and len(h) == 32 for h in items):
                raise MerkleError(f"state proof field {name!r} must be a list of 32-byte hashes")
        return cls(obj["index"], obj["size"], tuple(obj["path"]), tuple(obj["bucket_path"]))


def prove_in_bucket(
    leaves: Sequence[tuple[bytes, bytes]], key: bytes, bucket_nodes: BucketTree, changed: Mapping[int, bytes]
) -> StateProof:
    """Proof of ``key`` given its bucket's ``(key, leaf)`` pairs in key order and the tree.

    ``changed`` is :meth:`BucketTree.changed_nodes` of the state being proven (empty for
    the tree as it is). Used by :meth:`chain.state.State.prove`.

    Examples
    --------
    >>> leaf = entry_leaf(b"k", b"v")
    >>> tree = BucketTree({bucket_of(b"k"): bucket_digest([leaf])})
    >>> proof = prove_in_bucket([(b"k", leaf)], b"k", tree, {})
    >>> verify_state_proof(tree.root, b"k", b"v", proof)
    """
    keys = [k for k, _ in leaves]
    try:
        index = keys.index(key)
    except ValueError:
        raise MerkleError("the state holds no entry at this key: there is nothing to prove") from None
    tree = MerkleTree([leaf for _, leaf in leaves])
    path = bucket_nodes.path(bucket_of(key), changed)
    return StateProof(index, tree.size, tuple(tree.inclusion_proof(index)), tuple(path))


def verify_state_proof(root: object, key: object, value: object, proof: object) -> None:
    """Check that ``key`` holds ``value`` in the state whose root is ``root``.

    Parameters
    ----------
    root : bytes
        A state root taken from a trusted (committed) block header.
    key, value : bytes
        The entry.
    proof : StateProof
        From :meth:`chain.state.State.prove`.

    Raises
    ------
    MerkleError
        Malformed proof, or "root mismatch" when the entry is not in that state.

    Examples
    --------
    >>> from chain.state import State
    >>> s = State({b"a": b"1", b"b": b"2"})
    >>> verify_state_proof(s.root, b"a", b"1", s.prove(b"a"))
    >>> verify_state_proof(s.root, b"a", b"2", s.prove(b"a"))
    Traceback (most recent call last):
    ...
    chain.errors.MerkleError: root mismatch
    """
    # typed ``object``: a proof read from a file or a peer gets a MerkleError for any type,
    # also in the compiled module (which checks annotated argument types itself)
    if not isinstance(proof, StateProof):
        raise MerkleError(f"expected a StateProof, not {type(proof).__name__}")
    if not isinstance(root, bytes) or len(root) != 32:
        raise MerkleError("a state root is 32 bytes")
    if not isinstance(key, bytes) or not isinstance(value, bytes):
        raise MerkleError(f"state keys and values are bytes, not {type(key).__name__}/{type(value).__name__}")
    digest = root_from_inclusion(entry_leaf(key, value), proof.index, proof.size, list(proof.path))
    computed = root_from_inclusion(leaf_hash(digest), bucket_of(key), BUCKETS, list(proof.bucket_path))
    if not hmac.compare_digest(computed, root):
        raise MerkleError("root mismatch")


MAX_BUCKET_PROOF_ENTRIES = 4096
"""Most entries a bucket proof may list (a bucket holds ~15 at a million entries)."""


@dataclass(frozen=True)
class BucketProof:
    """Every entry of one bucket and the bucket's path to the root: proves what a key holds,
    or that it holds nothing, under a state root.

    Attributes
    ----------
    bucket : int
        The bucket (:func:`bucket_of` of the key asked about).
    entries : tuple of (bytes, bytes)
        The bucket's ``(key, value)`` entries in increasing key order.
    bucket_path : tuple of bytes
        RFC 6962 audit path of the bucket's digest among the 65,536 (16 hashes).
    """

    bucket: int
    entries: tuple[tuple[bytes, bytes], ...]
    bucket_path: tuple[bytes, ...]

    def to_obj(self) -> dict[str, Any]:
        """A canonical-CBOR-ready map."""
        return {
            "bucket": self.bucket,
            "entries": [[k, v] for k, v in self.entries],
            "bucket_path": list(self.bucket_path),
        }

    @classmethod
    def from_obj(cls, obj: Any) -> BucketProof:
        """Read :meth:`to_obj`'s map; :class:`MerkleError` when it is not exactly one.

        Examples
        --------
        >>> p = BucketProof(3, ((b"k", b"v"),), (b"\\x00" * 32,) * 16)
        >>> BucketProof.from_obj(p.to_obj()) == p
        True
        """
        if not isinstance(obj, dict) or set(obj) != {"bucket", "entries", "bucket_path"}:
            raise MerkleError("a bucket proof has exactly the fields bucket, bucket_path, entries")
        bucket, entries, path = obj["bucket"], obj["entries"], obj["bucket_path"]
        if not isinstance(bucket, int) or isinstance(bucket, bool) or not 0 <= bucket < BUCKETS:
            raise MerkleError("a bucket proof's bucket is out of range")
        if not isinstance(entries, list) or len(entries) > MAX_BUCKET_PROOF_ENTRIES:
            raise MerkleError(f"a bucket proof lists at most {MAX_BUCKET_PROOF_ENTRIES} entries")
        pairs = []
        for e in entries:
            if not (isinstance(e, list) and len(e) == 2 and all(isinstance(x, bytes) for x in e)):
                raise MerkleError("a bucket proof's entries are [key, value] byte-string pairs")
            pairs.append((e[0], e[1]))
        if not isinstance(path, list) or len(path) != BUCKET_BITS:
            raise MerkleError(f"a bucket path has {BUCKET_BITS} hashes")
        if not all(isinstance(h, bytes) and len(h) == 32 for h in path):
            raise MerkleError("a bucket path holds 32-byte hashes")
        return cls(bucket, tuple(pairs), tuple(path))


def verify_bucket_proof(root: object, key: object, proof: object) -> bytes | None:
    """The value ``key`` holds in the state whose root is ``root`` (``None``: no entry).

    Raises
    ------
    MerkleError
        When the proof is not of ``key``'s bucket, its entries are not that bucket's in key
        order, or they do not hash to ``root`` ("root mismatch").

    Examples
    --------
    >>> from chain.state import State
    >>> s = State({b"a": b"1", b"b": b"2"})
    >>> verify_bucket_proof(s.root, b"a", s.bucket_proof(b"a"))
    b'1'
    >>> verify_bucket_proof(s.root, b"zz", s.bucket_proof(b"zz")) is None
    True
    """
    if not isinstance(proof, BucketProof):
        raise MerkleError(f"expected a BucketProof, not {type(proof).__name__}")
    if not isinstance(root, bytes) or len(root) != 32:
        raise MerkleError("a state root is 32 bytes")
    if not isinstance(key, bytes):
        raise MerkleError(f"a state key is bytes, not {type(key).__name__}")
    bucket = bucket_of(key)
    if proof.bucket != bucket:
        raise MerkleError(f"the proof is of bucket {proof.bucket}, the key is in bucket {bucket}")
    keys = [k for k, _ in proof.entries]
    if any(a >= b for a, b in pairwise(keys)):
        raise MerkleError("a bucket proof's entries must be in strictly increasing key order")
    if any(bucket_of(k) != bucket for k in keys):
        raise MerkleError("a bucket proof lists an entry of another bucket")
    digest = bucket_digest([entry_leaf(k, v) for k, v in proof.entries])
    computed = root_from_inclusion(leaf_hash(digest), bucket, BUCKETS, list(proof.bucket_path))
    if not hmac.compare_digest(computed, root):
        raise MerkleError("root mismatch")
    return next((v for k, v in proof.entries if k == key), None)
