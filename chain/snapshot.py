"""State-sync snapshots: the state at a committed height, in verifiable chunks.

A new node restored from a snapshot of block ``H`` starts at ``H`` and block-syncs forward,
instead of replaying the chain from genesis. Nothing in a snapshot is trusted: the node
holding the chain's genesis checks

1. the **commit proof** of block ``H``: its header, its certified descendants and the QC of
   a quorum of its epoch's validators, each validator set proven from the genesis by the
   epoch changes before it — exactly what a receipt's block is checked with
   (:func:`chain.receipt.verify_committed`);
2. the **state entries**: in strictly increasing ``(bucket, key)`` order, their state
   commitment (:mod:`chain.state_tree`: 65,536 SM3 buckets, each an RFC 6962 tree of its
   ``codec.encode([key, value])`` entries in key order, under one RFC 6962 tree) must be
   block ``H``'s ``state_root``; each bucket's root is accumulated while its entries stream
   to disk (:class:`StateStream`), so the state is never held twice;
3. the **blocks kept**: block ``H``'s transactions against its ``tx_root`` and count, and,
   when ``H``'s epoch started at a lower block ``E`` (the consensus base of the epoch), that
   block's header against the hash the state records for it (``sys/block/<E>``) and its
   transactions against the header;
4. the **epoch records** in the state against the proven ones.

Only then is the new store committed (one SQLite transaction), with base height ``H``:
queries below ``H`` answer "pruned" (:meth:`chain.store.LedgerStore.pruned`).

Format
------
A snapshot is a manifest and a sequence of chunks (in a directory: ``manifest.cbor`` and
``chunk-000000.cbor``, ...; on a node's STATE_SYNC channel: the same bytes as messages).

*Manifest* — a canonical CBOR map: ``format`` (``"rongxin-snapshot/1"``), ``chain_id``,
``genesis_hash``, ``height``, ``block_hash``, ``state_root``, ``entries`` (how many state
entries), ``chunks`` (``[kind, count, size, SM3 digest]`` per chunk, in order), ``commit``
(``{"headers", "qc"}`` as receipts carry them), ``epochs`` (the proofs of epochs 1..n in
force at ``H``, as receipts carry them) and ``base`` (the header of block ``E`` when
``0 < E < H``, else null).

*Chunk* — a canonical CBOR array ``[kind, height, start, items]`` of at most
:data:`CHUNK_BYTES` (a larger item gets a chunk of its own): ``"txs"`` chunks hold
transactions ``start..`` of block ``height`` (block ``H``'s first, then block ``E``'s);
``"state"`` chunks hold state entries ``start..`` as ``[key, value]`` pairs in
``(bucket, key)`` order (the store's own order) — each pair's encoding is the entry's leaf
data in the state commitment, so a chunk is hashed without re-encoding.
The digests let a node reject a damaged chunk as soon as it arrives (and fetch it from
another peer); the state root is what makes the entries trustworthy.

Trust
-----
Like a receipt without a checkpoint, a snapshot proves what a quorum of its epoch's
validators signed. Pass a pinned :class:`~chain.receipt.Checkpoint` to refuse a snapshot
older than it, or signed by a validator set that is not the checkpoint's line.

Do not restore a *voting* node over a database that has voted: the safety data (last
votes) is not part of a snapshot. Restore new nodes, or observers.

Examples
--------
>>> import tempfile, pathlib
>>> from chain.localnet import LocalConsortium
>>> from chain.replica import Replica
>>> from chain.types import Role
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> c = LocalConsortium.create(d, nodes=4)
>>> _ = c.anchor(c.add_member("m", [Role.MEDIA_CENTER]), b"d" * 32, "work")
>>> manifest = write_snapshot(c.replicas[0].store, c.genesis, d / "snap")
>>> info = import_snapshot_dir(d / "snap", d / "new.db", c.genesis)
>>> info.height == manifest.height, Replica(c.genesis, d / "new.db").store.base_height() == info.height
(True, True)
>>> c.close()
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain import codec
from chain.contracts.membership import history_key
from chain.crypto.sm3 import sm3
from chain.epochs import (
    CURRENT_EPOCH,
    EPOCH_COMMIT_META,
    EPOCH_PROOF_META,
    EpochRecord,
    epoch_key,
)
from chain.errors import ChainError, ReceiptError, SnapshotError
from chain.executor import genesis_state
from chain.merkle import SM3_HASHER, RootAccumulator, merkle_root
from chain.receipt import (
    SNAPSHOT_COMMIT_META,
    Checkpoint,
    CommittedBlock,
    commit_headers,
    epoch_proofs,
    header_hash,
    verify_checkpoint,
    verify_committed,
)
from chain.replica import chain_genesis_block
from chain.state_tree import BucketTree, bucket_of, entry_bytes
from chain.store import LedgerStore, Restore, StoredBlock
from chain.types import Genesis, Transaction

FORMAT = "rongxin-snapshot/1"
CHUNK_BYTES = 4 * 1024 * 1024
"""Target size of a chunk (a single larger transaction or entry gets a chunk of its own)."""
MAX_CHUNK_BYTES = 16 * 1024 * 1024
"""Largest chunk accepted on import (checked before it is parsed)."""
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
"""Largest manifest accepted (checked before it is decoded)."""
MANIFEST_FILE = "manifest.cbor"
TXS, STATE = "txs", "state"
_HEADER_FIELDS = 13

Progress = Callable[[int, int], None]
"""``progress(chunks_done, chunks_total)``, called after each chunk."""


def chunk_name(index: int) -> str:
    """File name of chunk ``index`` in a snapshot directory."""
    return f"chunk-{index:06d}.cbor"


# --------------------------------------------------------------------------- manifest
@dataclass(frozen=True)
class ChunkInfo:
    """One chunk as the manifest lists it."""

    kind: str
    count: int
    size: int
    digest: bytes

    def to_obj(self) -> list[Any]:
        return [self.kind, self.count, self.size, self.digest]


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class Manifest:
    """What a snapshot holds and the proof of its block (see the module docstring)."""

    chain_id: str
    genesis_hash: bytes
    height: int
    block_hash: bytes
    state_root: bytes
    entries: int
    chunks: tuple[ChunkInfo, ...]
    commit: dict[str, Any]
    epochs: tuple[Any, ...]
    base: list[Any] | None = None

    @property
    def size(self) -> int:
        """Total bytes of the chunks."""
        return sum(c.size for c in self.chunks)

    def check_chunk(self, index: int, data: bytes) -> None:
        """Refuse chunk ``index`` unless it is the one this manifest lists (size and digest).

        What a node fetching chunks from several peers calls as each arrives, to ask another
        peer for a bad one; :func:`import_snapshot` checks every chunk again.

        Raises
        ------
        SnapshotError
            ``chunk`` when it differs (damaged, truncated or from another snapshot).
        """
        if not 0 <= index < len(self.chunks):
            raise SnapshotError("chunk", f"the snapshot has no chunk {index} (it has {len(self.chunks)})")
        info = self.chunks[index]
        if len(data) != info.size or sm3(data) != info.digest:
            raise SnapshotError(
                "chunk",
                f"chunk {index} does not match its digest in the manifest (damaged, truncated or "
                "from another snapshot)",
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis_hash,
            "height": self.height,
            "block_hash": self.block_hash,
            "state_root": self.state_root,
            "entries": self.entries,
            "chunks": [c.to_obj() for c in self.chunks],
            "commit": self.commit,
            "epochs": list(self.epochs),
            "base": self.base,
        }

    def to_bytes(self) -> bytes:
        """Canonical CBOR bytes (``manifest.cbor``)."""
        return codec.encode(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse a manifest; :class:`SnapshotError` (``malformed``) when it is not one."""
        if not isinstance(data, (bytes, bytearray)):
            raise SnapshotError("malformed", f"a manifest is bytes, not {type(data).__name__}")
        if len(data) > MAX_MANIFEST_BYTES:
            raise SnapshotError("malformed", f"manifest of {len(data)} bytes exceeds {MAX_MANIFEST_BYTES}")
        try:
            doc = codec.decode(data, max_size=MAX_MANIFEST_BYTES)
        except codec.CodecError as exc:
            raise SnapshotError(
                "malformed", f"the manifest is not canonical CBOR (truncated?): {exc}"
            ) from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise SnapshotError("malformed", f"not a {FORMAT} manifest")
        kinds: dict[str, type | tuple[type, ...]] = {
            "format": str,
            "chain_id": str,
            "genesis_hash": bytes,
            "height": int,
            "block_hash": bytes,
            "state_root": bytes,
            "entries": int,
            "chunks": list,
            "commit": dict,
            "epochs": list,
            "base": (list, type(None)),
        }
        if set(doc) != set(kinds):
            raise SnapshotError("malformed", f"manifest fields must be exactly {sorted(kinds)}")
        for name, kind in kinds.items():
            if not isinstance(doc[name], kind) or isinstance(doc[name], bool):
                raise SnapshotError("malformed", f"manifest field {name!r} has the wrong type")
        if doc["height"] < 1 or doc["entries"] < 0:
            raise SnapshotError("malformed", "manifest height must be positive and entries not negative")
        if set(doc["commit"]) != {"headers", "qc"}:
            raise SnapshotError("malformed", "manifest commit must hold exactly headers and qc")
        chunks = []
        for i, c in enumerate(doc["chunks"]):
            if (
                not isinstance(c, list)
                or len(c) != 4
                or c[0] not in (TXS, STATE)
                or not all(_is_int(x) and x >= 0 for x in c[1:3])
                or not isinstance(c[3], bytes)
                or len(c[3]) != 32
                or c[2] > MAX_CHUNK_BYTES
            ):
                raise SnapshotError("malformed", f"manifest chunk {i} is not [kind, count, size, digest]")
            chunks.append(ChunkInfo(c[0], c[1], c[2], c[3]))
        return cls(
            doc["chain_id"],
            doc["genesis_hash"],
            doc["height"],
            doc["block_hash"],
            doc["state_root"],
            doc["entries"],
            tuple(chunks),
            doc["commit"],
            tuple(doc["epochs"]),
            doc["base"],
        )


@dataclass(frozen=True)
class SnapshotInfo:
    """What an import established."""

    height: int
    block_hash: bytes
    state_root: bytes
    entries: int
    epoch: int
    """The epoch in force after the block (the one the node continues in)."""
    chunks: int
    bytes: int


# --------------------------------------------------------------------------- chunk encoding
_head = codec.encode_head


def _bstr(data: bytes) -> bytes:
    n = len(data)
    return (_BSTR_HEADS[n] if n < 256 else _head(2, n)) + data


_BSTR_HEADS = [_head(2, n) for n in range(256)]


def _chunk(kind: str, height: int, start: int, items: list[bytes]) -> bytes:
    """``codec.encode([kind, height, start, [...]])`` from already-encoded items."""
    return b"".join(
        [b"\x84", codec.encode(kind), codec.encode(height), codec.encode(start), _head(4, len(items)), *items]
    )


class _Parser:
    """Reads the heads of a chunk, refusing anything but the shortest (canonical) form."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def head(self, major: int) -> int:
        data, pos = self.data, self.pos
        if pos >= len(data):
            raise SnapshotError("chunk", "the chunk ends in the middle of a value (truncated)")
        b = data[pos]
        if b >> 5 != major:
            raise SnapshotError("chunk", f"unexpected CBOR item at byte {pos} of the chunk")
        info = b & 31
        if info < 24:
            self.pos = pos + 1
            return info
        width = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
        if width is None or pos + 1 + width > len(data):
            raise SnapshotError("chunk", f"bad or truncated CBOR head at byte {pos} of the chunk")
        n = int.from_bytes(data[pos + 1 : pos + 1 + width], "big")
        if n < (24 if width == 1 else 1 << (4 * width)):
            raise SnapshotError("chunk", f"non-canonical CBOR head at byte {pos} of the chunk")
        self.pos = pos + 1 + width
        return n

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise SnapshotError("chunk", "the chunk ends in the middle of a value (truncated)")
        out = self.data[self.pos : end]
        self.pos = end
        return out


@dataclass
class _Chunk:
    kind: str
    height: int
    start: int
    items: list[bytes]  # txs: the transactions; state: the leaf data of each entry
    keys: list[bytes]
    values: list[bytes]


def parse_chunk(data: bytes) -> tuple[str, int, int, list[tuple[bytes, bytes]] | list[bytes]]:
    """Decode a chunk: ``(kind, height, start, items)`` — transactions, or ``(key, value)`` pairs.

    Raises
    ------
    SnapshotError
        ``chunk`` when the bytes are not a canonical chunk.

    Examples
    --------
    >>> parse_chunk(codec.encode(["state", 7, 0, [[b"k", b"v"]]]))
    ('state', 7, 0, [(b'k', b'v')])
    """
    c = _parse(data)
    if c.kind == TXS:
        return c.kind, c.height, c.start, c.items
    return c.kind, c.height, c.start, list(zip(c.keys, c.values, strict=True))


def _parse(data: bytes) -> _Chunk:
    p = _Parser(data)
    if p.head(4) != 4:
        raise SnapshotError("chunk", "a chunk is [kind, height, start, items]")
    kind = p.take(p.head(3)).decode("utf-8", "replace")
    if kind not in (TXS, STATE):
        raise SnapshotError("chunk", f"unknown chunk kind {kind!r}")
    height, start, n = p.head(0), p.head(0), p.head(4)
    items: list[bytes] = []
    keys: list[bytes] = []
    values: list[bytes] = []
    head, take = p.head, p.take
    if kind == TXS:
        for _ in range(n):
            items.append(take(head(2)))
    else:
        try:
            p.pos = _state_items(p, n, items, keys, values)
        except IndexError:
            raise SnapshotError("chunk", "the chunk ends in the middle of an entry (truncated)") from None
    if p.pos != len(data):
        raise SnapshotError("chunk", f"{len(data) - p.pos} bytes after the chunk's items")
    return _Chunk(kind, height, start, items, keys, values)


def _state_items(p: _Parser, n: int, items: list[bytes], keys: list[bytes], values: list[bytes]) -> int:
    """Read ``n`` ``[key, value]`` entries from ``p.pos``; the position after them.

    The common heads (byte strings shorter than 256 bytes) are read inline; any other goes
    through :meth:`_Parser.head`, which also refuses non-canonical forms.
    """
    data, pos = p.data, p.pos
    end = len(data)
    for _ in range(n):
        if data[pos] != 0x82:
            raise SnapshotError("chunk", f"a state entry is [key, value] (byte {pos} of the chunk)")
        bounds = []
        at = pos + 1
        for _field in (0, 1):
            b = data[at]
            if 0x40 <= b < 0x58:
                first, at = at + 1, at + 1 + (b - 0x40)
            elif b == 0x58 and data[at + 1] >= 24:
                first, at = at + 2, at + 2 + data[at + 1]
            else:
                p.pos = at
                length = p.head(2)
                first, at = p.pos, p.pos + length
            if at > end:
                raise IndexError
            bounds.append((first, at))
        (k0, k1), (v0, v1) = bounds
        keys.append(data[k0:k1])
        values.append(data[v0:v1])
        items.append(data[pos:at])
        pos = at
    return pos


class StateStream:
    """State entries as a snapshot streams them: their order and the state root they build.

    The one place here that knows the state commitment (:mod:`chain.state_tree`): entries
    come in strictly increasing ``(bucket, key)`` order, each bucket's RFC 6962 root is
    accumulated while its entries pass (O(log n) hashes), and the root is the tree of the
    65,536 bucket digests. Each entry's store row ``(bucket, key, value, leaf)`` comes out
    on the way.

    Examples
    --------
    >>> from chain.state import State
    >>> entries = {b"a": b"1", b"b": b"2", b"c": b"3"}
    >>> s = StateStream()
    >>> rows = [s.add_one(k, v, entry_bytes(k, v)) for k, v in sorted(entries.items(),
    ...         key=lambda kv: (bucket_of(kv[0]), kv[0]))]
    >>> s.root == State(entries).root, s.count
    (True, 3)
    """

    def __init__(self) -> None:
        self._digests: dict[int, bytes] = {}
        self._bucket = -1
        self._key = b""
        self._acc = RootAccumulator()
        self.count = 0

    def _close_bucket(self) -> None:
        if self._bucket >= 0:
            self._digests[self._bucket] = self._acc.root
        self._acc = RootAccumulator()

    def add_one(self, key: bytes, value: bytes, entry: bytes) -> tuple[int, bytes, bytes, bytes]:
        """Add an entry (``entry`` is its encoding, :func:`chain.state_tree.entry_bytes`);
        its store row. ``state`` error when it is out of order."""
        bucket = bucket_of(key)
        if bucket != self._bucket:
            if bucket < self._bucket:
                raise SnapshotError("state", "state entries are not in increasing (bucket, key) order")
            self._close_bucket()
            self._bucket = bucket
        elif key <= self._key:
            raise SnapshotError("state", "state entries are not in increasing (bucket, key) order")
        self._key = key
        leaf = SM3_HASHER.leaf(entry)
        self._acc.add_leaf_hash(leaf)
        self.count += 1
        return bucket, key, value, leaf

    def add(
        self, keys: list[bytes], values: list[bytes], entries: list[bytes], where: str
    ) -> list[tuple[int, bytes, bytes, bytes]]:
        """Add a chunk's entries; their store rows."""
        try:
            return [self.add_one(k, v, e) for k, v, e in zip(keys, values, entries, strict=True)]
        except SnapshotError as exc:
            raise SnapshotError("state", f"{where}: {exc.detail}") from None

    @property
    def root(self) -> bytes:
        """The state root of the entries so far."""
        digests = dict(self._digests)
        if self._bucket >= 0:
            digests[self._bucket] = self._acc.root
        return BucketTree(digests).root


# --------------------------------------------------------------------------- export
def _epochs_at(view: LedgerStore, height: int) -> list[EpochRecord]:
    """The records of epochs 1..n, n the epoch in force after block ``height``."""
    records: list[EpochRecord] = []
    while True:
        raw = view.get_state(epoch_key(len(records) + 1))  # records never change once written
        if raw is None:
            return records
        record = EpochRecord.from_bytes(raw)
        if record.height > height:
            return records
        records.append(record)


class SnapshotExport:
    """A snapshot being produced: iterate :meth:`chunks`, then read :attr:`manifest`.

    Made by :func:`export_snapshot`. Everything is read from one consistent view of the
    store (its own read transaction), so the node may keep committing meanwhile.
    """

    def __init__(
        self, store: LedgerStore, genesis: Genesis, height: int | None, chunk_bytes: int, verify: bool
    ) -> None:
        if chunk_bytes < 1024:
            raise SnapshotError("malformed", "chunks of fewer than 1024 bytes are not useful")
        self._store = store
        self._genesis = genesis
        self._height = height
        self._chunk_bytes = chunk_bytes
        self._verify = verify
        self._manifest: Manifest | None = None
        self._infos: list[ChunkInfo] = []

    @property
    def manifest(self) -> Manifest:
        """The manifest, once every chunk has been produced."""
        if self._manifest is None:
            raise SnapshotError("malformed", "the manifest is known once every chunk has been produced")
        return self._manifest

    def _emit(self, kind: str, height: int, start: int, items: list[bytes]) -> bytes:
        data = _chunk(kind, height, start, items)
        self._infos.append(ChunkInfo(kind, len(items), len(data), sm3(data)))
        return data

    def _batches(self, kind: str, height: int, items: Iterable[bytes]) -> Iterator[bytes]:
        batch: list[bytes] = []
        size, start = 64, 0
        for count, item in enumerate(items):
            if batch and size + len(item) > self._chunk_bytes:
                yield self._emit(kind, height, start, batch)
                start, batch, size = count, [], 64
            batch.append(item)
            size += len(item)
        if batch:
            yield self._emit(kind, height, start, batch)

    def chunks(self) -> Iterator[bytes]:
        """The chunks in order (block transactions, then state entries in ``(bucket, key)`` order).

        Raises
        ------
        SnapshotError
            ``wrong-chain`` (store of another genesis), ``height`` (no such committed block
            on this node, or no commit proof for it yet), ``state`` (the stored state does
            not hash to the block's state root: a damaged store).
        """
        genesis = self._genesis
        with self._store.reader() as view:
            if view.genesis_hash != chain_genesis_block(genesis).hash:
                raise SnapshotError("wrong-chain", "this ledger store belongs to another genesis")
            head, base = view.head_height(), view.base_height()
            height = head if self._height is None else self._height
            if not 1 <= height <= head:
                raise SnapshotError(
                    "height", f"height {height} is not a committed block of this node (1..{head})"
                )
            if height < base:
                raise SnapshotError(
                    "height", f"block {height} is below this node's own snapshot height {base} (pruned)"
                )
            try:
                headers, qc = commit_headers(view, height)
                records = _epochs_at(view, height)
                epochs = epoch_proofs(view, len(records))
            except (ReceiptError, ChainError) as exc:
                raise SnapshotError(
                    "height", f"block {height} cannot be proven committed here: {exc}"
                ) from None
            header = headers[0]
            base_height = records[-1].height if records else 0
            base_header: list[Any] | None = None
            yield from self._batches(TXS, height, (_bstr(t) for t in view.transactions(height)))
            if 0 < base_height < height:
                row = view.block(base_height)
                if row is None:
                    raise SnapshotError(
                        "height", f"this node lacks block {base_height}, where the epoch began"
                    )
                txs = view.transactions(base_height)
                base_header = codec.decode(row.block)
                base_header[-1] = len(txs)
                yield from self._batches(TXS, base_height, (_bstr(t) for t in txs))
            stream = StateStream() if self._verify else None
            entries = 0

            def leaves() -> Iterator[bytes]:
                nonlocal entries
                initial = genesis_state(genesis).entries() if height < head else None
                for key, value in view.state_items(height, initial):
                    leaf = entry_bytes(key, value)
                    if stream is not None:
                        stream.add_one(key, value, leaf)
                    entries += 1
                    yield leaf

            yield from self._batches(STATE, height, leaves())
            if stream is not None and stream.root != header[5]:
                raise SnapshotError(
                    "state",
                    f"the stored state at height {height} does not match the block's state root: "
                    "the store is damaged",
                )
            self._manifest = Manifest(
                genesis.chain_id,
                genesis.hash,
                height,
                header_hash(header),
                header[5],
                entries,
                tuple(self._infos),
                {"headers": headers, "qc": qc},
                tuple(epochs),
                base_header,
            )


def export_snapshot(
    store: LedgerStore,
    genesis: Genesis,
    height: int | None = None,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    verify: bool = True,
) -> SnapshotExport:
    """A snapshot of the state at committed block ``height`` (default: the head).

    Parameters
    ----------
    store : LedgerStore
        The node's store (it may keep committing: the export reads one consistent view).
    genesis : Genesis
        The chain's genesis.
    height : int, optional
        A committed height of this node (older heights are rolled back from the store's
        change log; the node's head is the cheap case).
    chunk_bytes : int
        Target chunk size (default 4 MiB).
    verify : bool
        Recompute the state root while exporting and refuse a store whose state does not
        match the block (default true).

    Returns
    -------
    SnapshotExport
        Iterate ``.chunks()`` (streamed: memory is one chunk), then read ``.manifest``.

    Examples
    --------
    See the module docstring, and :func:`write_snapshot` for a directory.
    """
    return SnapshotExport(store, genesis, height, chunk_bytes, verify)


def write_snapshot(
    store: LedgerStore,
    genesis: Genesis,
    out: str | os.PathLike[str],
    height: int | None = None,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    progress: Progress | None = None,
) -> Manifest:
    """Write a snapshot into the new directory ``out`` (chunks, then ``manifest.cbor``).

    The files are written into a temporary directory beside ``out`` that is renamed to
    ``out`` when complete, so ``out`` never holds half a snapshot.

    Raises
    ------
    SnapshotError
        As :meth:`SnapshotExport.chunks`, or ``io`` when ``out`` exists and is not empty or
        cannot be written.
    """
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise SnapshotError("io", f"{target} exists and is not an empty directory")
    parent = target.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    except OSError as exc:
        raise SnapshotError("io", f"cannot write into {parent}: {exc.strerror}") from None
    try:
        export = export_snapshot(store, genesis, height, chunk_bytes=chunk_bytes)
        for i, data in enumerate(export.chunks()):
            with open(tmp / chunk_name(i), "wb") as fh:
                fh.write(data)
            if progress is not None:
                progress(i + 1, 0)
        manifest = export.manifest
        with open(tmp / MANIFEST_FILE, "wb") as fh:
            fh.write(manifest.to_bytes())
            fh.flush()
            os.fsync(fh.fileno())
        if target.exists():
            target.rmdir()
        tmp.rename(target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SnapshotError("io", f"cannot write the snapshot to {target}: {exc.strerror}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def read_snapshot(directory: str | os.PathLike[str]) -> tuple[Manifest, Iterator[bytes]]:
    """The manifest of a snapshot directory and an iterator reading its chunks one by one.

    Raises
    ------
    SnapshotError
        ``malformed`` for a missing or bad manifest; the iterator raises ``chunk`` for a
        missing chunk file or one whose size differs from the manifest's (truncated).
    """
    d = Path(directory)
    try:
        with open(d / MANIFEST_FILE, "rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise SnapshotError(
            "malformed", f"cannot read the manifest {d / MANIFEST_FILE}: {exc.strerror}"
        ) from None
    manifest = Manifest.from_bytes(raw)

    def chunks() -> Iterator[bytes]:
        for i, info in enumerate(manifest.chunks):
            path = d / chunk_name(i)
            try:
                with open(path, "rb") as fh:
                    data = fh.read(info.size + 1)
            except FileNotFoundError:
                raise SnapshotError("chunk", f"chunk {i} ({path.name}) is missing") from None
            except OSError as exc:
                raise SnapshotError("chunk", f"cannot read chunk {i} ({path}): {exc.strerror}") from None
            if len(data) != info.size:
                raise SnapshotError(
                    "chunk",
                    f"chunk {i} ({path.name}) has {len(data) if len(data) <= info.size else 'more'} bytes, "
                    f"the manifest says {info.size}: truncated or replaced",
                )
            yield data

    return manifest, chunks()


# --------------------------------------------------------------------------- import
def _check_base_header(h: Any, height: int) -> list[Any]:
    if (
        not isinstance(h, list)
        or len(h) != _HEADER_FIELDS
        or not _is_int(h[1])
        or not isinstance(h[3], bytes)
        or not isinstance(h[4], bytes)
        or not isinstance(h[5], bytes)
        or not _is_int(h[12])
    ):
        raise SnapshotError("malformed", "the manifest's base block header is malformed")
    if h[1] != height:
        raise SnapshotError(
            "commit-proof", f"the base block header is of height {h[1]}, the epoch began at {height}"
        )
    return h


def _stored(header: list[Any], block_hash: bytes) -> StoredBlock:
    return StoredBlock(header[1], block_hash, header[3], header[5], codec.encode([*header[:-1], []]), b"")


class _Import:
    """One import: the manifest's proofs first, then the chunks as they arrive."""

    def __init__(
        self, manifest: Manifest, genesis: Genesis, checkpoint: Checkpoint | None, progress: Progress | None
    ) -> None:
        self.m = manifest
        self.genesis = genesis
        self.progress = progress
        if manifest.chain_id != genesis.chain_id or manifest.genesis_hash != genesis.hash:
            raise SnapshotError(
                "wrong-chain",
                f"the snapshot is of chain {manifest.chain_id!r} with another genesis"
                if manifest.chain_id != genesis.chain_id
                else "the snapshot is of another genesis of this chain id",
            )
        try:
            self.block: CommittedBlock = verify_committed(
                manifest.commit["headers"], manifest.commit["qc"], manifest.epochs, genesis
            )
        except ReceiptError as exc:
            raise SnapshotError("commit-proof", f"block {manifest.height}'s commit proof: {exc}") from None
        header = self.block.header
        if self.block.height != manifest.height:
            raise SnapshotError(
                "height",
                f"the manifest says height {manifest.height}, its proof is of block {self.block.height}",
            )
        if self.block.block_hash != manifest.block_hash or header[5] != manifest.state_root:
            raise SnapshotError(
                "commit-proof", "the manifest's block hash or state root is not the proven block's"
            )
        records = self.block.records
        if records[-1].height > manifest.height:
            raise SnapshotError("commit-proof", "the snapshot proves an epoch that starts after its block")
        if checkpoint is not None:
            self._check_checkpoint(checkpoint)
        self.base_height = records[-1].height
        self.base: list[Any] | None = None
        if 0 < self.base_height < manifest.height:
            if manifest.base is None:
                raise SnapshotError("malformed", f"the manifest lacks the header of block {self.base_height}")
            self.base = _check_base_header(manifest.base, self.base_height)
        elif manifest.base is not None:
            raise SnapshotError("malformed", "the manifest carries a base block it does not need")
        # the blocks whose transactions come first, in order: (height, header)
        self.blocks: list[tuple[int, list[Any]]] = [(manifest.height, header)]
        if self.base is not None:
            self.blocks.append((self.base_height, self.base))
        self.txs: dict[int, list[bytes]] = {h: [] for h, _ in self.blocks}

    def _check_checkpoint(self, cp: Checkpoint) -> None:
        try:
            info = verify_checkpoint(cp, self.genesis)
        except ReceiptError as exc:
            raise SnapshotError("checkpoint", f"the checkpoint: {exc}") from None
        records = self.block.records
        if info.epoch >= len(records) or records[info.epoch].to_bytes() != info.record.to_bytes():
            raise SnapshotError("checkpoint", "the snapshot's validator sets are not the checkpoint's line")
        if self.block.height < info.height or (
            self.block.height == info.height and self.block.block_hash != info.block_hash
        ):
            raise SnapshotError(
                "checkpoint",
                f"the snapshot (height {self.block.height}) is older than the pinned checkpoint "
                f"(height {info.height}) or conflicts with it",
            )

    def run(self, chunks: Iterable[bytes], w: Restore) -> SnapshotInfo:
        m = self.m
        total = len(m.chunks)
        it = iter(chunks)
        stream = StateStream()
        entries = 0
        block_index = 0
        size = 0
        for i, info in enumerate(m.chunks):
            data = next(it, None)
            if data is None:
                raise SnapshotError("chunk", f"the snapshot ends after {i} of its {total} chunks")
            m.check_chunk(i, data)
            size += len(data)
            c = _parse(data)
            if c.kind != info.kind or len(c.items) != info.count:
                raise SnapshotError("chunk", f"chunk {i} is not the {info.kind} chunk the manifest lists")
            if c.kind == TXS:
                while block_index < len(self.blocks) and len(self.txs[self.blocks[block_index][0]]) == int(
                    self.blocks[block_index][1][12]
                ):
                    block_index += 1
                if block_index >= len(self.blocks) or c.height != self.blocks[block_index][0]:
                    raise SnapshotError(
                        "chunk", f"chunk {i} holds transactions of an unexpected block {c.height}"
                    )
                got = self.txs[c.height]
                if c.start != len(got) or len(got) + len(c.items) > int(self.blocks[block_index][1][12]):
                    raise SnapshotError("chunk", f"chunk {i}: transactions out of order or too many")
                got.extend(c.items)
            else:
                if c.height != m.height or c.start != entries:
                    raise SnapshotError(
                        "chunk",
                        f"chunk {i} holds entries {c.start}.. of height {c.height}, expected "
                        f"{entries}.. of height {m.height}: a chunk is missing or out of order",
                    )
                w.put_state(stream.add(c.keys, c.values, c.items, f"chunk {i}"))
                entries += len(c.keys)
            if self.progress is not None:
                self.progress(i + 1, total)
        if next(it, None) is not None:
            raise SnapshotError("chunk", f"more chunks than the {total} the manifest lists")
        self._finish(w, stream, entries)
        return SnapshotInfo(
            m.height, m.block_hash, m.state_root, entries, len(self.block.records) - 1, total, size
        )

    def _finish(self, w: Restore, stream: StateStream, entries: int) -> None:
        m, block = self.m, self.block
        if stream.root != m.state_root:
            raise SnapshotError(
                "state",
                f"the state entries do not hash to block {m.height}'s state root (tampered or incomplete)",
            )
        if entries != m.entries:
            raise SnapshotError("state", f"the snapshot has {entries} entries, its manifest says {m.entries}")
        # the blocks kept: transactions against their headers
        for height, header in self.blocks:
            txs = self.txs[height]
            if len(txs) != header[12] or merkle_root(txs) != header[4]:
                raise SnapshotError("chunk", f"the transactions of block {height} do not match its header")
        raw_epoch = w.get_state(CURRENT_EPOCH)
        in_force = 0 if raw_epoch is None else int.from_bytes(raw_epoch, "big")
        if in_force != len(block.records) - 1:
            raise SnapshotError(
                "state",
                f"the state is in epoch {in_force}, the snapshot proves epochs 0..{len(block.records) - 1}",
            )
        for n, ep in enumerate(m.epochs, start=1):
            if w.get_state(epoch_key(n)) != ep["record"]:
                raise SnapshotError("state", f"the state's record of epoch {n} differs from its proof")
        if self.base is not None and w.get_state(history_key(self.base_height)) != header_hash(self.base):
            raise SnapshotError(
                "commit-proof", f"the header of block {self.base_height} is not the one the state records"
            )
        try:
            blocks = [(_stored(block.header, block.block_hash), self.txs[m.height])]
            if self.base is not None:
                blocks.insert(0, (_stored(self.base, header_hash(self.base)), self.txs[self.base_height]))
            for stored, txs in blocks:
                w.put_block(stored, [(Transaction.from_bytes(t).tx_id, t) for t in txs])
        except ChainError as exc:
            raise SnapshotError("chunk", f"a kept block's transaction is malformed: {exc}") from None
        for n, ep in enumerate(m.epochs, start=1):
            proof = {"height": ep["headers"][0][1], "proof": ep["proof"]}
            w.put_meta(f"{EPOCH_PROOF_META}{n}", codec.encode(proof))
            w.put_meta(f"{EPOCH_COMMIT_META}{n}", codec.encode({"headers": ep["headers"], "qc": ep["qc"]}))
        w.put_meta(
            SNAPSHOT_COMMIT_META,
            codec.encode({"height": m.height, "headers": m.commit["headers"], "qc": m.commit["qc"]}),
        )


def verify_manifest(manifest: Manifest, genesis: Genesis, checkpoint: Checkpoint | None = None) -> None:
    """Check a manifest's proofs before fetching its chunks: its chain, the commit proof of
    its block from the genesis, its epochs and, with ``checkpoint``, that it is not older.

    Raises
    ------
    SnapshotError
        ``wrong-chain``, ``commit-proof``, ``height``, ``malformed`` or ``checkpoint``.
    """
    _Import(manifest, genesis, checkpoint, None)


def import_snapshot(
    manifest: Manifest | bytes,
    chunks: Iterable[bytes],
    store: LedgerStore,
    genesis: Genesis,
    *,
    checkpoint: Checkpoint | None = None,
    progress: Progress | None = None,
) -> SnapshotInfo:
    """Verify a snapshot and fill the empty ``store`` with it (all or nothing).

    Parameters
    ----------
    manifest : Manifest or bytes
        The snapshot's manifest (checked first: chain, commit proof, epochs).
    chunks : iterable of bytes
        The chunks in the manifest's order, e.g. as they arrive from a peer; each is
        checked against its digest, parsed and streamed to the store.
    store : LedgerStore
        A new store of ``genesis``'s chain (no blocks yet).
    genesis : Genesis
        The chain's genesis: the root of trust.
    checkpoint : Checkpoint, optional
        A pinned checkpoint the snapshot must not be older than.
    progress : callable, optional
        ``progress(chunks_done, chunks_total)``.

    Returns
    -------
    SnapshotInfo

    Raises
    ------
    SnapshotError
        ``reason`` one of ``malformed``, ``wrong-chain``, ``commit-proof``, ``height``,
        ``checkpoint``, ``chunk``, ``state``, ``store``; the store is left empty.

    Examples
    --------
    See the module docstring; :func:`import_snapshot_dir` reads a directory.
    """
    m = manifest if isinstance(manifest, Manifest) else Manifest.from_bytes(manifest)
    if store.genesis_hash != chain_genesis_block(genesis).hash:
        raise SnapshotError("wrong-chain", "the ledger store belongs to another genesis")
    job = _Import(m, genesis, checkpoint, progress)
    try:
        with store.restoring(m.height) as w:
            return job.run(chunks, w)
    except SnapshotError:
        raise
    except (ChainError, TypeError, ValueError, KeyError, IndexError) as exc:
        reason = "store" if type(exc).__name__ == "StoreError" else "malformed"
        raise SnapshotError(reason, str(exc)) from None


def import_snapshot_dir(
    directory: str | os.PathLike[str],
    db: str | os.PathLike[str],
    genesis: Genesis,
    *,
    checkpoint: Checkpoint | None = None,
    progress: Progress | None = None,
) -> SnapshotInfo:
    """Create the ledger database ``db`` from the snapshot in ``directory``.

    ``db`` must not exist; if the import fails it is removed again. Start the node on it
    (:class:`chain.replica.Replica`) and it block-syncs from the snapshot's height.

    Raises
    ------
    SnapshotError
        As :func:`import_snapshot`, or ``io`` when ``db`` exists.
    """
    path = Path(db)
    if path.exists():
        raise SnapshotError("io", f"{path} exists; restore a snapshot into a new database file")
    manifest, chunks = read_snapshot(directory)
    store = LedgerStore(path, chain_genesis_block(genesis).hash)
    ok = False
    try:
        info = import_snapshot(manifest, chunks, store, genesis, checkpoint=checkpoint, progress=progress)
        ok = True
        return info
    finally:
        store.close()
        if not ok:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
