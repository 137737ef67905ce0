"""Which anchored Merkle batch holds a digest: the node's off-chain index of batch leaves.

An ``anchor`` transaction with ``"count": n`` puts only the RFC 6962 root of ``n``
digests on chain (:func:`chain.merkle.batch_proofs`). To answer "was this digest
anchored?" for a leaf, a node must know the leaves: the member that anchored the batch
publishes them (``POST /anchors/batches``) once the root is committed, and the node keeps
them here. A leaf's proof path is recomputed from the leaves when asked for, so anyone can
check it against the root in the anchor's receipt (:func:`chain.verify_anchored_digest`).

Two indexes with the same methods (``add``, ``find``, ``len``), both bounded (the oldest
batches are forgotten first) and safe to use from a worker thread and the event loop:

* :class:`BatchIndex` — in memory (:data:`MAX_LEAVES` digests, about 100 MB); for tests
  and embedded use;
* :class:`SqliteBatchIndex` — in a SQLite file beside the ledger (``data/batches.db``),
  what a node process uses: the leaves survive restarts and cost the node no memory
  (a node with a million published leaves stays small).

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

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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


def check_batch(root: bytes, digests: Sequence[bytes], max_leaves: int) -> tuple[bytes, ...]:
    """The leaves of a published batch, checked: 32-byte digests whose root is ``root``.

    Raises
    ------
    ValidationError
        When ``digests`` are not 32-byte digests whose RFC 6962 root is ``root``, or the
        batch is larger than :data:`MAX_BATCH_LEAVES` or ``max_leaves``.
    """
    leaves = tuple(digests)
    limit = min(MAX_BATCH_LEAVES, max_leaves)
    if not leaves or len(leaves) > limit:
        raise ValidationError(f"a published batch holds 1..{limit} digests")
    if not all(isinstance(d, bytes) and len(d) == 32 for d in leaves):
        raise ValidationError("batch leaves must be 32-byte digests")
    if MerkleTree.from_entries(list(leaves)).root != root:
        raise ValidationError("the digests' Merkle root is not the batch root")
    return leaves


class _TreeCache:
    """The most recently used batch trees (a lookup builds its batch's tree once)."""

    def __init__(self) -> None:
        self._trees: OrderedDict[bytes, MerkleTree] = OrderedDict()

    def membership(self, root: bytes, index: int, leaves: Sequence[bytes]) -> BatchMembership:
        tree = self._trees.get(root)
        if tree is None:
            tree = MerkleTree.from_entries(list(leaves))
            self._trees[root] = tree
            while len(self._trees) > TREE_CACHE:
                self._trees.popitem(last=False)
        else:
            self._trees.move_to_end(root)
        return BatchMembership(root, index, tree.size, tree.inclusion_proof(index))

    def forget(self, root: bytes) -> None:
        self._trees.pop(root, None)


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
        self._trees = _TreeCache()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    def add(self, root: bytes, digests: Sequence[bytes]) -> None:
        """Remember that ``digests`` (in order) are the leaves of the batch ``root``.

        Raises
        ------
        ValidationError
            As :func:`check_batch`.
        """
        leaves = check_batch(root, digests, self.max_leaves)
        with self._lock:
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
        self._trees.forget(old_root)
        self._size -= len(old)
        for d in old:
            if self._where.get(d, (b"", 0))[0] == old_root:
                del self._where[d]

    def find(self, digest: bytes) -> BatchMembership | None:
        """The batch holding ``digest`` and its proof path, or ``None``."""
        with self._lock:
            where = self._where.get(digest)
            if where is None:
                return None
            root, index = where
            return self._trees.membership(root, index, self._batches[root])


class SqliteBatchIndex:
    """Leaves of anchored batches, by digest, in a SQLite file (bounded, oldest forgotten first).

    Parameters
    ----------
    path : Path
        The database file (created if missing).
    max_leaves : int
        Digests kept, all batches together (default 100 million: about 10 GB on disk).
    """

    def __init__(self, path: str | Path, max_leaves: int = 100_000_000) -> None:
        self.path = Path(path)
        self.max_leaves = max_leaves
        self._lock = threading.Lock()
        self._trees = _TreeCache()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS batch (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, root BLOB NOT NULL UNIQUE, leaves BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS leaf (
                digest BLOB PRIMARY KEY, seq INTEGER NOT NULL, idx INTEGER NOT NULL) WITHOUT ROWID;
            """
        )
        row = self._db.execute("SELECT COALESCE(SUM(LENGTH(leaves)), 0) / 32 FROM batch").fetchone()
        self._size = int(row[0])

    def __len__(self) -> int:
        return self._size

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def add(self, root: bytes, digests: Sequence[bytes]) -> None:
        """Remember that ``digests`` (in order) are the leaves of the batch ``root``
        (one transaction: all of the batch or nothing).

        Raises
        ------
        ValidationError
            As :func:`check_batch`.
        """
        leaves = check_batch(root, digests, self.max_leaves)
        with self._lock:
            if self._db.execute("SELECT 1 FROM batch WHERE root = ?", (root,)).fetchone() is not None:
                return
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                while self._size + len(leaves) > self.max_leaves and self._drop_oldest():
                    pass
                cur = db.execute("INSERT INTO batch (root, leaves) VALUES (?, ?)", (root, b"".join(leaves)))
                seq = cur.lastrowid
                # in digest order: the index's pages are then visited in order, not at random
                # (half the time at a million digests); a digest repeated in the batch keeps
                # its first place, as the in-memory index does
                rows = sorted((d, seq, i) for i, d in enumerate(leaves))
                db.executemany("INSERT OR IGNORE INTO leaf (digest, seq, idx) VALUES (?, ?, ?)", rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._size += len(leaves)

    def _drop_oldest(self) -> bool:
        row = self._db.execute("SELECT seq, root, LENGTH(leaves) FROM batch ORDER BY seq LIMIT 1").fetchone()
        if row is None:
            return False
        seq, root, size = row
        self._db.execute("DELETE FROM leaf WHERE seq = ?", (seq,))
        self._db.execute("DELETE FROM batch WHERE seq = ?", (seq,))
        self._trees.forget(root)
        self._size -= size // 32
        return True

    def find(self, digest: bytes) -> BatchMembership | None:
        """The batch holding ``digest`` and its proof path, or ``None``."""
        with self._lock:
            row = self._db.execute(
                "SELECT batch.root, leaf.idx, batch.leaves FROM leaf JOIN batch ON batch.seq = leaf.seq "
                "WHERE leaf.digest = ?",
                (digest,),
            ).fetchone()
            if row is None:
                return None
            root, index, blob = row
            leaves = [blob[i : i + 32] for i in range(0, len(blob), 32)]
            return self._trees.membership(root, index, leaves)
