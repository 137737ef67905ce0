"""Which anchored Merkle batch holds a digest: the node's off-chain index of batch leaves.

An ``anchor`` transaction with ``"count": n`` puts only the RFC 6962 root of ``n``
digests on chain (:func:`chain.merkle.batch_proofs`). To answer "was this digest
anchored?" for a leaf, a node must know the leaves: the member that anchored the batch
publishes them (``POST /anchors/batches``) once the root is committed, and the node keeps
them here. A leaf's proof path is recomputed from the leaves when asked for, so anyone can
check it against the root in the anchor's receipt (:func:`chain.verify_anchored_digest`).

The index is bounded (:data:`MAX_LEAVES` digests by default); the oldest batches are
forgotten first. It lives in memory: a host that needs the leaves after a restart passes a
persistent index with the same two methods.

Examples
--------
>>> from chain.merkle import batch_proofs
>>> leaves = [bytes([i]) * 32 for i in range(3)]
>>> root, proofs = batch_proofs(leaves)
>>> index = BatchIndex()
>>> index.add(root, leaves)
>>> found = index.find(leaves[2])
>>> found.root == root and found.index == 2 and found.path == proofs[2]
True
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from chain.errors import ValidationError
from chain.merkle import MerkleTree

MAX_LEAVES = 1_000_000
"""Digests an in-memory index keeps (about 100 MB), all batches together."""
MAX_BATCH_LEAVES = 65_536
"""Most digests one published batch may hold."""
TREE_CACHE = 8
"""Batch trees kept built (a lookup in another batch rebuilds its tree)."""


@dataclass(frozen=True)
class BatchMembership:
    """Where a digest sits in an anchored batch: its root, position, batch size and path."""

    root: bytes
    index: int
    count: int
    path: list[bytes]


class BatchIndex:
    """Leaves of anchored batches, by digest (in memory, bounded, oldest forgotten first).

    Parameters
    ----------
    max_leaves : int
        Digests kept, all batches together.
    """

    def __init__(self, max_leaves: int = MAX_LEAVES) -> None:
        self.max_leaves = max_leaves
        self._batches: OrderedDict[bytes, tuple[bytes, ...]] = OrderedDict()
        self._where: dict[bytes, tuple[bytes, int]] = {}
        self._size = 0
        self._trees: OrderedDict[bytes, MerkleTree] = OrderedDict()

    def __len__(self) -> int:
        return self._size

    def add(self, root: bytes, digests: Sequence[bytes]) -> None:
        """Remember that ``digests`` (in order) are the leaves of the batch ``root``.

        Raises
        ------
        ValidationError
            When ``digests`` are not 32-byte digests whose RFC 6962 root is ``root``, or
            the batch is larger than :data:`MAX_BATCH_LEAVES` or the whole index.
        """
        leaves = tuple(digests)
        if not leaves or len(leaves) > min(MAX_BATCH_LEAVES, self.max_leaves):
            raise ValidationError(
                f"a published batch holds 1..{min(MAX_BATCH_LEAVES, self.max_leaves)} digests"
            )
        if not all(isinstance(d, bytes) and len(d) == 32 for d in leaves):
            raise ValidationError("batch leaves must be 32-byte digests")
        if MerkleTree.from_entries(list(leaves)).root != root:
            raise ValidationError("the digests' Merkle root is not the batch root")
        if root in self._batches:
            self._batches.move_to_end(root)
            return
        while self._batches and self._size + len(leaves) > self.max_leaves:
            self._drop_oldest()
        self._batches[root] = leaves
        self._size += len(leaves)
        for i, d in enumerate(leaves):
            self._where.setdefault(d, (root, i))

    def _drop_oldest(self) -> None:
        old_root, old = self._batches.popitem(last=False)
        self._trees.pop(old_root, None)
        self._size -= len(old)
        for d in old:
            if self._where.get(d, (b"", 0))[0] == old_root:
                del self._where[d]

    def find(self, digest: bytes) -> BatchMembership | None:
        """The batch holding ``digest`` and its proof path, or ``None``."""
        where = self._where.get(digest)
        if where is None:
            return None
        root, index = where
        tree = self._trees.get(root)
        if tree is None:
            tree = MerkleTree.from_entries(list(self._batches[root]))
            self._trees[root] = tree
            while len(self._trees) > TREE_CACHE:
                self._trees.popitem(last=False)
        else:
            self._trees.move_to_end(root)
        return BatchMembership(root, index, tree.size, tree.inclusion_proof(index))
