"""SQLite storage for the committed chain: blocks, transactions and state, atomically.

Durability discipline:

* one database file per node, ``journal_mode=WAL`` and ``synchronous=FULL``: every commit
  appends to the write-ahead log and fsyncs it before :meth:`LedgerStore.commit_block`
  returns, so a block reported committed survives a crash or power loss;
* a block, its transactions, its state changes and the new head are written in **one**
  SQLite transaction: after a crash the store holds a prefix of the chain, each block
  complete with its state, never half a block;
* heights are contiguous (``height == head + 1``) and each block names its parent hash,
  checked before writing;
* the store is bound to one chain: the genesis hash is recorded on creation and checked on
  every open.

Reopening a store yields exactly the committed chain, and :meth:`LedgerStore.load_state`
rebuilds the state whose root the last block header carries.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from chain.errors import StoreError as StoreError  # re-exported under its historical path
from chain.state import State

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    parent_hash BLOB NOT NULL,
    state_root BLOB NOT NULL,
    block BLOB NOT NULL,
    commit_proof BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS txs (
    tx_id BLOB PRIMARY KEY,
    height INTEGER NOT NULL REFERENCES blocks(height),
    idx INTEGER NOT NULL,
    tx BLOB NOT NULL,
    result BLOB
);
CREATE TABLE IF NOT EXISTS state (key BLOB PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS state_log (
    height INTEGER NOT NULL, key BLOB NOT NULL, value BLOB, PRIMARY KEY (height, key)
);
"""


@dataclass(frozen=True)
class StoredBlock:
    """A committed block as stored."""

    height: int
    hash: bytes
    parent_hash: bytes
    state_root: bytes
    block: bytes
    commit_proof: bytes


class LedgerStore:
    """The committed chain of one node.

    Parameters
    ----------
    path : str or PathLike
        Database file (created if missing; ``":memory:"`` for tests).
    genesis_hash : bytes
        Hash of the chain's genesis; a store created for another chain is refused.
    initial_state : mapping, optional
        The genesis state (e.g. :func:`chain.executor.genesis_state`), written once when
        the store is created, in the same transaction as the genesis hash.

    Examples
    --------
    >>> s = LedgerStore(":memory:", b"g" * 32)
    >>> txs = [(b"t" * 32, b"tx")]
    >>> s.commit_block(1, b"h" * 32, b"g" * 32, b"r" * 32, b"block", b"qc", txs, {b"k": b"v"})
    >>> s.head_height(), s.load_state().get(b"k")
    (1, b'v')
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        genesis_hash: bytes,
        initial_state: Mapping[bytes, bytes] | None = None,
    ) -> None:
        try:
            self._db = sqlite3.connect(os.fspath(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open ledger store {os.fspath(path)!r}: {exc}") from None
        self._lock = threading.Lock()
        row = self._db.execute("SELECT value FROM meta WHERE key = 'genesis'").fetchone()
        if row is None:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT INTO meta VALUES ('genesis', ?)", (genesis_hash,))
            self._db.executemany("INSERT INTO state VALUES (?, ?)", sorted((initial_state or {}).items()))
            self._db.execute("COMMIT")
        elif bytes(row[0]) != genesis_hash:
            raise StoreError("this ledger store belongs to another chain (genesis hash differs)")
        self.genesis_hash = genesis_hash

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def head_height(self) -> int:
        """Height of the last committed block (0 when only genesis)."""
        row = self._db.execute("SELECT MAX(height) FROM blocks").fetchone()
        return int(row[0]) if row[0] is not None else 0

    def head_hash(self) -> bytes:
        """Hash of the last committed block (the genesis hash when empty)."""
        row = self._db.execute("SELECT hash FROM blocks ORDER BY height DESC LIMIT 1").fetchone()
        return bytes(row[0]) if row else self.genesis_hash

    def commit_block(
        self,
        height: int,
        block_hash: bytes,
        parent_hash: bytes,
        state_root: bytes,
        block: bytes,
        commit_proof: bytes,
        txs: list[tuple[bytes, bytes]],
        changes: Mapping[bytes, bytes | None],
        results: list[bytes] | None = None,
        meta: Mapping[str, bytes] | None = None,
    ) -> None:
        """Write one block with its ``(tx_id, tx)`` list and state changes atomically.

        ``results`` (optional, one per transaction) are the encoded execution results that
        :meth:`tx_result` returns later; ``meta`` entries are written in the same transaction.

        Raises
        ------
        StoreError
            If ``height`` is not the next height or ``parent_hash`` is not the head's hash.
        """
        with self._lock:
            head = self.head_height()
            if height != head + 1:
                raise StoreError(f"block height {height} does not follow the head {head}")
            if parent_hash != self.head_hash():
                raise StoreError(f"block {height} does not extend the committed head")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?)",
                    (height, block_hash, parent_hash, state_root, block, commit_proof),
                )
                if results is not None and len(results) != len(txs):
                    raise StoreError("one result per transaction is required")
                self._db.executemany(
                    "INSERT INTO txs VALUES (?, ?, ?, ?, ?)",
                    [
                        (tx_id, height, i, tx, None if results is None else results[i])
                        for i, (tx_id, tx) in enumerate(txs)
                    ],
                )
                for key, value in changes.items():
                    if value is None:
                        self._db.execute("DELETE FROM state WHERE key = ?", (key,))
                    else:
                        self._db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, value))
                    self._db.execute("INSERT INTO state_log VALUES (?, ?, ?)", (height, key, value))
                for mkey, mvalue in (meta or {}).items():
                    self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (mkey, mvalue))
                self._db.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(f"block {height} conflicts with the stored chain: {exc}") from None
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def block(self, height: int) -> StoredBlock | None:
        """The block at ``height``, or ``None``."""
        row = self._db.execute("SELECT * FROM blocks WHERE height = ?", (height,)).fetchone()
        return None if row is None else StoredBlock(row[0], *(bytes(v) for v in row[1:]))

    def blocks(self, start: int = 1) -> Iterator[StoredBlock]:
        """Committed blocks from ``start`` in height order."""
        for row in self._db.execute("SELECT * FROM blocks WHERE height >= ? ORDER BY height", (start,)):
            yield StoredBlock(row[0], *(bytes(v) for v in row[1:]))

    def block_by_hash(self, block_hash: bytes) -> StoredBlock | None:
        """The committed block with ``block_hash``, or ``None``."""
        row = self._db.execute("SELECT * FROM blocks WHERE hash = ?", (block_hash,)).fetchone()
        return None if row is None else StoredBlock(row[0], *(bytes(v) for v in row[1:]))

    def transactions(self, height: int) -> list[bytes]:
        """Transactions of the block at ``height`` in order."""
        rows = self._db.execute("SELECT tx FROM txs WHERE height = ? ORDER BY idx", (height,))
        return [bytes(r[0]) for r in rows]

    def tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        """``(height, index)`` of a committed transaction."""
        row = self._db.execute("SELECT height, idx FROM txs WHERE tx_id = ?", (tx_id,)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def tx_result(self, tx_id: bytes) -> bytes | None:
        """The encoded execution result recorded with a committed transaction."""
        row = self._db.execute("SELECT result FROM txs WHERE tx_id = ?", (tx_id,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def get_state(self, key: bytes) -> bytes | None:
        """One state entry as of the head block."""
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def load_state(self) -> State:
        """The current state (as of the head block)."""
        return State({bytes(k): bytes(v) for k, v in self._db.execute("SELECT key, value FROM state")})

    def set_meta(self, key: str, value: bytes) -> None:
        """Record a small durable value (e.g. a node's safety data)."""
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> bytes | None:
        """Read a value written by :meth:`set_meta`."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])
