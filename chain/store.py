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
gives the state whose root the last block header carries.

The state lives on disk, not in memory: table ``state`` holds each entry with its bucket
and its leaf hash (:mod:`chain.state_tree`), clustered by ``(bucket, key)`` so that
rehashing a bucket reads one short range. A read by key goes to its bucket too (the bucket
is the key's SM3, one lookup in the table's own B-tree). Prefix scans go through an index on
``key`` that leaves out the anchor records (:data:`POINT_PREFIX`): they are the bulk of a
media chain's state, nothing scans them, and a random key's index row cost each block's
commit one more page of log per anchor. A node at a million anchored digests keeps only the
tree of bucket digests (about 10 MB) and SQLite's page cache in memory.

A store may also start at a **base height** ``B`` instead of genesis: restored from a state
snapshot (:mod:`chain.snapshot`, through :meth:`LedgerStore.restoring`), it holds the state
at ``B``, block ``B`` (and the block its epoch started at), then every block it commits
after ``B``. Blocks and transactions below ``B`` are not on this node
(:meth:`LedgerStore.pruned`); readers say so instead of calling them missing.

:meth:`LedgerStore.reader` gives a consistent read-only view (its own connection and read
transaction) while the node keeps committing: what a snapshot is exported from.
"""

from __future__ import annotations

import heapq
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote

from chain.checkpointer import WalCheckpointer
from chain.crypto.atomic import fsync_directory
from chain.errors import StoreError as StoreError  # re-exported under its historical path
from chain.state import State, prefix_end
from chain.state_tree import bucket_of, entry_leaf

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
-- a block's transactions in order (without it every block read scans the whole table)
CREATE INDEX IF NOT EXISTS txs_block ON txs (height, idx);
CREATE TABLE IF NOT EXISTS state (
    bucket INTEGER NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    leaf BLOB NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state_log (
    height INTEGER NOT NULL, key BLOB NOT NULL, value BLOB, PRIMARY KEY (height, key)
);
"""


STATE_COLUMNS = ["bucket", "key", "value", "leaf"]
POINT_PREFIX = b"anchor/"
"""Keys under this prefix (the anchor contract's records) are read by key only: the scan
index leaves them out. A prefix scan that reaches into them reads the table in its own
order and sorts (nothing in the ledger does; it stays correct, only slower)."""
_POINT_END = prefix_end(POINT_PREFIX)
_SCANNED = f"substr(key, 1, {len(POINT_PREFIX)}) <> X'{POINT_PREFIX.hex()}'"
"""The scan index's condition; a query names it word for word so SQLite can use the index."""
_SCAN_INDEX = f"CREATE INDEX IF NOT EXISTS state_scan ON state (key) WHERE {_SCANNED}"
WAL_LIMIT_PAGES = 4096
"""Pages of write-ahead log (4 KiB each) past which a commit checkpoints by itself."""
BASE_META = "base"
"""Meta key of a restored store's base height (absent: the store starts at genesis)."""


def state_row(key: bytes, value: bytes) -> tuple[int, bytes, bytes, bytes]:
    """The ``state`` table row of an entry: ``(bucket, key, value, leaf)``.

    Examples
    --------
    >>> row = state_row(b"k", b"v")
    >>> row[1:3], 0 <= row[0] < 65536, len(row[3])
    ((b'k', b'v'), True, 32)
    """
    return bucket_of(key), key, value, entry_leaf(key, value)


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
        self.path = os.fspath(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            # checkpoints run in a thread of their own (chain.checkpointer), not inside the
            # commit that fills the log (that commit took 70-120 ms on a large store); this
            # connection checkpoints only if the log outgrows the thread (about 16 MB)
            self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_LIMIT_PAGES}")
            self._db.execute("PRAGMA foreign_keys=ON")
            # 16 MB of pages: the interior pages of a million-entry state table and its key
            # index stay cached, so a block's random row writes read fewer pages
            self._db.execute("PRAGMA cache_size=-16384")
            self._db.executescript(SCHEMA)
            # stores written before 2026-12-06 indexed every key (anchors included): the
            # index is replaced once, when such a store is opened
            self._db.execute("DROP INDEX IF EXISTS state_key")
            self._db.execute(_SCAN_INDEX)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open ledger store {os.fspath(path)!r}: {exc}") from None
        columns = [r[1] for r in self._db.execute("PRAGMA table_info(state)")]
        if columns != STATE_COLUMNS:
            self._db.close()
            raise StoreError(
                f"ledger store {os.fspath(path)!r} keeps its state in an earlier layout, whose block "
                "state roots this version does not compute: start the node on a new store and sync it"
            )
        self._lock = threading.RLock()
        self._state: State | None = None
        self._recent: tuple[int, dict[bytes, bytes | None]] | None = None  # last block's changes
        self.checkpointer = None if self.path in ("", ":memory:") else WalCheckpointer(self.path)
        """Copies the write-ahead log back into the database in a thread (``None`` in memory)."""
        self._deferred = False
        self._unsynced = False
        self._synced_dir = False
        row = self._db.execute("SELECT value FROM meta WHERE key = 'genesis'").fetchone()
        if row is None:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT INTO meta VALUES ('genesis', ?)", (genesis_hash,))
            rows = sorted(state_row(k, v) for k, v in (initial_state or {}).items())
            self._db.executemany("INSERT INTO state VALUES (?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
        elif bytes(row[0]) != genesis_hash:
            raise StoreError("this ledger store belongs to another chain (genesis hash differs)")
        self.genesis_hash = genesis_hash

    def defer_sync(self) -> None:
        """Stop fsyncing each commit: the owner calls :meth:`sync` before it acts on writes.

        For an owner that batches durability (a node's host: one fsync for everything a
        consensus step wrote, off its event loop, before that step's messages leave).
        Writes stay atomic and in order (SQLite's ``synchronous=NORMAL`` in WAL mode, which
        a crash or power loss cannot corrupt); what waits for :meth:`sync` is only their
        durability. An in-memory store has nothing to sync.
        """
        if self.checkpointer is None:
            return
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._deferred = True

    @property
    def unsynced(self) -> bool:
        """Whether something was written after :meth:`defer_sync` and not yet taken."""
        return self._unsynced

    def take_unsynced(self) -> bool:
        """Whether anything was written since the last call (and forget it): call it just
        before :meth:`sync`, in the thread that writes, so that a write after it is seen by
        the next call."""
        with self._lock:
            unsynced, self._unsynced = self._unsynced, False
            return unsynced

    def sync(self) -> None:
        """Make every write committed so far durable: an fsync of the write-ahead log (and
        of its directory, the first time). May run in another thread than the writer's.

        Raises
        ------
        OSError
            If the operating system cannot flush the log: the writes may be lost on a power
            failure, and nothing that depends on them may be acted on.
        """
        if self.checkpointer is None:
            return
        try:
            fd = os.open(f"{self.path}-wal", os.O_RDONLY)
        except FileNotFoundError:  # closed and checkpointed: nothing left in a log
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if not self._synced_dir:
            fsync_directory(os.path.dirname(os.path.abspath(self.path)))
            self._synced_dir = True

    def close(self) -> None:
        """Close the database (after the checkpoint that may be running)."""
        if self.checkpointer is not None:
            self.checkpointer.close()
        self._db.close()

    def _committed(self) -> None:
        """After a write transaction: have its pages copied back to the database soon."""
        self._unsynced = self._deferred
        if self.checkpointer is not None:
            self.checkpointer.poke()

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
                self._db.executemany(
                    "DELETE FROM state WHERE bucket = ? AND key = ?",
                    [(bucket_of(k), k) for k, v in changes.items() if v is None],
                )
                self._db.executemany(
                    "INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?)",
                    [state_row(k, v) for k, v in changes.items() if v is not None],
                )
                self._db.executemany(
                    "INSERT INTO state_log VALUES (?, ?, ?)", [(height, k, v) for k, v in changes.items()]
                )
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
            else:
                self._recent = (height, dict(changes))
                self._committed()

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
        row = self._db.execute(
            "SELECT value FROM state WHERE bucket = ? AND key = ?", (bucket_of(key), key)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def load_state(self) -> State:
        """The state as of the head block, read from this store (not copied into memory).

        One :class:`~chain.state.State` per store: the first call builds its commitment
        from the stored leaf hashes (about 2 s at a million entries); later calls return
        the same object, first applying the blocks committed since (from the change log).
        The owner of the store (``chain.replica.LedgerApp``) applies each block's changes
        after :meth:`commit_block`; the state checks that they are the committed ones.
        Use it from the thread that commits blocks.
        """
        with self._lock:
            head = self.head_height()
            if self._state is None:
                self._state = State(table=StoreTable(self, head))
                return self._state
            table = self._state.table
            assert isinstance(table, StoreTable)
            for height in range(table.height + 1, head + 1):
                self._state.apply(self.state_changes(height))
            return self._state

    def state_changes(self, height: int) -> dict[bytes, bytes | None]:
        """The state changes committed with the block at ``height`` (``None`` deletes)."""
        recent = self._recent
        if recent is not None and recent[0] == height:
            return dict(recent[1])  # the block this store committed last (not read back)
        rows = self._db.execute("SELECT key, value FROM state_log WHERE height = ?", (height,))
        return {bytes(k): None if v is None else bytes(v) for k, v in rows}

    def iter_state(self) -> Iterator[tuple[bytes, bytes]]:
        """Every state entry in ``(bucket, key)`` order: the table's own order (a sequential
        read), and one that :func:`chain.state_tree.commitment_of` accepts."""
        cursor = self._db.execute("SELECT key, value FROM state ORDER BY bucket, key")
        while rows := cursor.fetchmany(4096):
            for key, value in rows:
                yield bytes(key), bytes(value)

    def set_meta(self, key: str, value: bytes) -> None:
        """Record a small durable value (e.g. a node's safety data): durable when this
        returns, or at the next :meth:`sync` after :meth:`defer_sync`."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
            self._unsynced = self._deferred

    def get_meta(self, key: str) -> bytes | None:
        """Read a value written by :meth:`set_meta`."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    # ------------------------------------------------------------------ snapshots
    def base_height(self) -> int:
        """The height this store was restored at from a snapshot (0: it starts at genesis)."""
        raw = self.get_meta(BASE_META)
        return 0 if raw is None else int.from_bytes(raw, "big")

    def pruned(self, height: int) -> bool:
        """Whether block ``height`` is below this store's snapshot and not kept here."""
        return 0 < height < self.base_height() and self.block(height) is None

    def state_items(
        self, height: int | None = None, initial: Mapping[bytes, bytes] | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """The state entries as of block ``height`` (default: the head) in ``(bucket, key)``
        order (:meth:`iter_state`'s), streamed.

        Below the head, the entries changed since ``height`` are rolled back from the change
        log; ``initial`` is the genesis state (entries no block ever wrote). Memory: the
        entries changed after ``height``, not the state.

        Raises
        ------
        StoreError
            When ``height`` is above the head or below this store's base, or (restored store)
            when an entry changed after ``height`` was last written before the base.
        """
        head, base = self.head_height(), self.base_height()
        if height is None or height == head:
            yield from self.iter_state()
            return
        if not base <= height < head:
            raise StoreError(f"height {height} is outside this store's blocks {base}..{head}")
        changed = {
            bytes(k): None
            for (k,) in self._db.execute("SELECT DISTINCT key FROM state_log WHERE height > ?", (height,))
        }
        at: dict[bytes, bytes | None] = {}
        rows = self._db.execute(
            "SELECT key, value, MAX(height) FROM state_log WHERE height <= ? AND height > ? "
            "AND key IN (SELECT key FROM state_log WHERE height > ?) GROUP BY key",
            (height, base, height),
        )
        for k, v, _ in rows:
            at[bytes(k)] = None if v is None else bytes(v)
        for k in changed:
            if k not in at:
                if base:
                    raise StoreError(
                        f"the state at height {height} cannot be rebuilt: this store starts at its "
                        f"snapshot height {base}; export its head instead"
                    )
                at[k] = (initial or {}).get(k)

        def kept() -> Iterator[tuple[int, bytes, bytes]]:
            cursor = self._db.execute("SELECT bucket, key, value FROM state ORDER BY bucket, key")
            while batch := cursor.fetchmany(4096):
                for b, k, v in batch:
                    if k not in changed:
                        yield b, bytes(k), bytes(v)

        rolled_back = sorted((bucket_of(k), k, v) for k, v in at.items() if v is not None)
        for _, k, v in heapq.merge(kept(), rolled_back):
            yield k, v

    @contextmanager
    def reader(self) -> Iterator[LedgerStore]:
        """A read-only view of the store as it is now, unaffected by later commits.

        It has its own connection and read transaction (SQLite's WAL lets the node keep
        committing meanwhile) and the store's read methods; an in-memory store has no
        second connection and is read directly.
        """
        if self.path in ("", ":memory:"):
            yield self
            return
        db = sqlite3.connect(
            f"file:{quote(os.path.abspath(self.path))}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            db.execute("BEGIN")
            db.execute("SELECT COUNT(*) FROM meta").fetchone()  # the read snapshot starts here
            yield _ReadView(db, self.genesis_hash, self.path)
        finally:
            db.close()

    @contextmanager
    def restoring(self, base: int) -> Iterator[Restore]:
        """Fill an empty store with a snapshot at height ``base``, in one transaction.

        The genesis state written when the store was created is replaced by what the
        caller puts; on a clean exit the base height is recorded and everything commits at
        once (fsynced), on an exception nothing is kept.

        Raises
        ------
        StoreError
            If the store already holds blocks or was restored before.
        """
        with self._lock:
            if self.head_height() or self.base_height():
                raise StoreError(
                    "this ledger store already holds blocks; restore a snapshot into a new database"
                )
            if base < 1:
                raise StoreError("a snapshot is of a committed block (height 1 or more)")
            # a rollback journal while the new store fills: its pages are written once, not
            # to the write-ahead log and then again into the database (atomic all the same)
            wal = self.path not in ("", ":memory:")
            if wal:
                self._db.execute("PRAGMA journal_mode=DELETE")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("DELETE FROM state")
                self._db.execute("DELETE FROM state_log")
                self._recent = None
                # the scan index is built once at the end (a sort), not row by row at random
                self._db.execute("DROP INDEX state_scan")
                writer = Restore(self._db)
                yield writer
                self._db.execute(_SCAN_INDEX)
                writer.put_meta(BASE_META, base.to_bytes(8, "big"))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            finally:
                self._state = None  # the state is the restored one now
                if wal:
                    self._db.execute("PRAGMA journal_mode=WAL")


class _ReadView(LedgerStore):
    """The read side of a :class:`LedgerStore` on another connection (:meth:`LedgerStore.reader`)."""

    def __init__(self, db: sqlite3.Connection, genesis_hash: bytes, path: str) -> None:
        self._db = db
        self._lock = threading.RLock()
        self._state = None
        self._recent = None
        self.checkpointer: WalCheckpointer | None = None
        self.genesis_hash = genesis_hash
        self.path = path

    def commit_block(self, *args: object, **kwargs: object) -> None:
        raise StoreError("a read view of the store does not commit blocks")

    def set_meta(self, key: str, value: bytes) -> None:
        raise StoreError("a read view of the store does not write")


class Restore:
    """Writes of :meth:`LedgerStore.restoring`, all in its one transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.entries = 0

    def put_state(self, rows: Iterable[tuple[int, bytes, bytes, bytes]]) -> None:
        """Insert state rows ``(bucket, key, value, leaf)`` (:func:`state_row`; keys new to
        the store)."""
        before = self._db.total_changes
        self._db.executemany("INSERT INTO state VALUES (?, ?, ?, ?)", rows)
        self.entries += self._db.total_changes - before

    def put_block(self, block: StoredBlock, txs: list[tuple[bytes, bytes]]) -> None:
        """Insert a block and its ``(tx_id, tx)`` list (without execution results)."""
        self._db.execute(
            "INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?)",
            (block.height, block.hash, block.parent_hash, block.state_root, block.block, block.commit_proof),
        )
        self._db.executemany(
            "INSERT INTO txs VALUES (?, ?, ?, ?, NULL)",
            [(tx_id, block.height, i, tx) for i, (tx_id, tx) in enumerate(txs)],
        )

    def put_meta(self, key: str, value: bytes) -> None:
        """Write a meta entry."""
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def get_state(self, key: bytes) -> bytes | None:
        """A state entry written so far in this restore (by its bucket: the key index is not
        built yet)."""
        row = self._db.execute(
            "SELECT value FROM state WHERE bucket = ? AND key = ?", (bucket_of(key), key)
        ).fetchone()
        return None if row is None else bytes(row[0])


_PREFETCH_CHUNK = 64
"""Point reads per statement of :meth:`StoreTable.prefetch` (below SQLite's 500 selects
per compound statement and 999 parameters of its oldest builds)."""
_PREFETCH_SQL = " UNION ALL ".join(
    ["SELECT key, value FROM state WHERE bucket = ? AND key = ?"] * _PREFETCH_CHUNK
)

_IN_CHUNK = 500
"""Buckets per query of :meth:`StoreTable.leaves_of` (SQLite's bound on parameters is far above)."""


def _scanned_apart(prefix: bytes, end: bytes | None) -> bool:
    """Whether the keys in ``[prefix, end)`` are all outside :data:`POINT_PREFIX`'s range
    (so the scan index holds every one of them)."""
    below = end is not None and end <= POINT_PREFIX
    return below or (_POINT_END is not None and prefix >= _POINT_END)


class StoreTable:
    """The :class:`~chain.state.StateTable` of a store's committed state (see
    :meth:`LedgerStore.load_state`).

    Reads go to SQLite through a bounded LRU cache of recent keys, present or absent (a
    transaction reads its sender's certificate and revocation four times each, and its new
    anchor's key three times, between admission and commit). :meth:`write` writes no
    row: :meth:`LedgerStore.commit_block` has already committed them with their block; it
    checks that the changes are the next block's (or the last one's, when already taken),
    refreshes the cache and moves on to that height.

    Parameters
    ----------
    store : LedgerStore
        The store whose ``state`` table this reads.
    height : int
        The height whose state the table stands for (the store's head when made).
    """

    CACHE_ENTRIES = 16384

    def __init__(self, store: LedgerStore, height: int) -> None:
        self._store = store
        self._db = store._db
        self.height = height
        self._cache: OrderedDict[bytes, bytes | None] = OrderedDict()

    def get(self, key: bytes) -> bytes | None:
        cache = self._cache
        try:  # another thread may drop the key in between: then read the row
            value = cache[key]
            cache.move_to_end(key)
            return value
        except KeyError:
            pass
        row = self._db.execute(
            "SELECT value FROM state WHERE bucket = ? AND key = ?", (bucket_of(key), key)
        ).fetchone()
        value = None if row is None else bytes(row[0])
        cache[key] = value
        if len(cache) > self.CACHE_ENTRIES:
            cache.popitem(last=False)
        return value

    def prefetch(self, keys: Collection[bytes]) -> None:
        """Read those of ``keys`` the cache lacks in statements of :data:`_PREFETCH_CHUNK`
        point reads each (``UNION ALL``; a short chunk repeats its last key), and cache
        each value or its absence: a block's new keys cost one statement per chunk instead
        of one each, about half the CPU per key."""
        cache = self._cache
        wanted = list(dict.fromkeys(k for k in keys if k not in cache))[: self.CACHE_ENTRIES // 2]
        found: dict[bytes, bytes] = {}
        for i in range(0, len(wanted), _PREFETCH_CHUNK):
            chunk = wanted[i : i + _PREFETCH_CHUNK]
            chunk += [chunk[-1]] * (_PREFETCH_CHUNK - len(chunk))
            args = [x for key in chunk for x in (bucket_of(key), key)]
            for key, value in self._db.execute(_PREFETCH_SQL, args):
                found[bytes(key)] = bytes(value)
        for key in wanted:
            cache[key] = found.get(key)
        while len(cache) > self.CACHE_ENTRIES:
            cache.popitem(last=False)

    def items_with_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        end = prefix_end(prefix)
        upper = "" if end is None else " AND key < ?"
        args = (prefix,) if end is None else (prefix, end)
        if _scanned_apart(prefix, end):
            sql = f"SELECT key, value FROM state WHERE key >= ?{upper} AND {_SCANNED} ORDER BY key"
        else:  # reaches into the anchor records: the whole table in its own order, sorted
            sql = f"SELECT key, value FROM state WHERE key >= ?{upper} ORDER BY key"
        rows = self._db.execute(sql, args)
        return iter([(bytes(k), bytes(v)) for k, v in rows.fetchall()])

    def bucket_leaves(self, bucket: int) -> list[tuple[bytes, bytes]]:
        rows = self._db.execute("SELECT key, leaf FROM state WHERE bucket = ? ORDER BY key", (bucket,))
        return [(bytes(k), bytes(leaf)) for k, leaf in rows.fetchall()]

    def leaves_of(self, buckets: Collection[int]) -> dict[int, list[tuple[bytes, bytes]]]:
        out: dict[int, list[tuple[bytes, bytes]]] = {}
        ordered = sorted(buckets)  # the index read in its own order
        for i in range(0, len(ordered), _IN_CHUNK):
            chunk = ordered[i : i + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT bucket, key, leaf FROM state WHERE bucket IN ({marks}) ORDER BY bucket, key", chunk
            )
            for bucket, key, leaf in rows.fetchall():
                out.setdefault(bucket, []).append((bytes(key), bytes(leaf)))
        return out

    def buckets(self) -> Iterator[tuple[int, list[bytes]]]:
        """Every non-empty bucket's leaf hashes, each recomputed from its entry and checked
        against the stored one (a damaged row is found when the state is loaded)."""
        cursor = self._db.execute("SELECT bucket, key, value, leaf FROM state ORDER BY bucket, key")
        current = -1
        leaves: list[bytes] = []
        while rows := cursor.fetchmany(4096):
            for bucket, key, value, stored in rows:
                leaf = entry_leaf(bytes(key), bytes(value))
                if leaf != stored or bucket != bucket_of(key):
                    raise StoreError(
                        f"the store's state is damaged: the entry at key {bytes(key)!r} does not match "
                        "its stored bucket and hash; start the node on a new store and sync it"
                    )
                if bucket != current:
                    if leaves:
                        yield current, leaves
                    current, leaves = bucket, []
                leaves.append(leaf)
        if leaves:
            yield current, leaves

    def write(self, changes: Mapping[bytes, bytes | None]) -> None:
        store = self._store
        head = store.head_height()
        if self.height < head and dict(changes) == store.state_changes(self.height + 1):
            self.height += 1
            cache = self._cache
            for key, value in changes.items():
                if key in cache:
                    cache[key] = value
            return
        if self.height == head and dict(changes) == store.state_changes(head):
            return  # already taken (load_state caught the state up first)
        raise StoreError(
            "the state of a store changes only with committed blocks: commit the block with "
            "LedgerStore.commit_block, then apply exactly its changes"
        )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM state").fetchone()[0])
