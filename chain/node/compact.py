"""Compact proposals: a proposal sent as its block header and transaction ids.

Every transaction already reaches every consensus node by mempool gossip; sending its
bytes again inside the proposal costs each node one more encoding, SM4-GCM sealing and
opening, and decoding of every transaction. A validator peer is therefore sent a
:class:`CompactProposal` (the block without its payload, the ids of its transactions in
order, the proposer's signature) and rebuilds the block from its own mempool; the
transactions it lacks it fetches with a :class:`TxRequest`, answered by a
:class:`TxResponse`. The rebuilt block is the proposer's block byte for byte (its hash,
its ``tx_root`` and the signature are checked by the consensus core as for any
proposal), so the block hash, the QC and execution are unchanged.

Safety rests on three rules, kept by :class:`Rebuilds`:

* a fetched transaction is accepted only if its id (SM3 of its bytes) is one the block
  lists and still lacks: anything else (forged, mismatching, unasked) is refused;
* a rebuild that is not complete by its deadline (the round timeout) is dropped: the node
  acts as if the proposal never arrived, exactly as when a proposal is lost;
* pending rebuilds are bounded in number and each in transactions, so a proposer (or a
  peer) listing ids that nobody knows makes the node wait for nothing and gets no vote.

This module is the pure part (wire forms and the rebuild bookkeeping); the host
(:mod:`chain.node.host`) sends, receives and keeps the timers. Wire forms are specified in
``docs/protocol.md`` (section 7, messages of the CONSENSUS and BLOCK_SYNC channels).

Examples
--------
>>> from chain.consensus.messages import Block, Proposal
>>> raws = [b"tx-a", b"tx-b"]
>>> block = Block("c", 1, 1, b"p" * 32, tuple(raws), b"t" * 32, b"s" * 32, 5, "n", None)
>>> cp = CompactProposal.of(Proposal(block, b"sig"), [sm3(r) for r in raws])
>>> cp.block_hash == block.hash
True
>>> decode_compact(cp.to_bytes()).rebuild(raws).block == block
True
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chain.codec import encode
from chain.consensus.messages import Block, ConsensusError, Proposal, _decode, _list
from chain.crypto.sm3 import sm3

COMPACT_TAG = "compact_proposal"
TX_REQUEST_TAG = "tx_request"
TX_RESPONSE_TAG = "tx_response"
ID_BYTES = 32
"""A transaction id is the SM3 of its bytes."""

MAX_PENDING = 16
"""Rebuilds waiting for fetched transactions at once; a new one evicts the oldest."""

MAX_PENDING_PER_SENDER = 2
"""Rebuilds of one sender's proposals at once: a peer flooding compact proposals evicts
only its own."""


def _prefix(tag: str) -> bytes:
    # canonical CBOR of ``[tag, body]`` starts with the 2-array head and the tag's text
    return encode([tag, None])[:-1]


_PREFIX = {tag: _prefix(tag) for tag in (COMPACT_TAG, TX_REQUEST_TAG, TX_RESPONSE_TAG)}


def tag_of(data: bytes) -> str | None:
    """The compact-protocol tag ``data`` starts with, or ``None`` (another message).

    Only a prefix test: the message is still decoded and checked in full.
    """
    for tag, prefix in _PREFIX.items():
        if data.startswith(prefix):
            return tag
    return None


def _ids(v: Any, name: str, limit: int) -> tuple[bytes, ...]:
    items = _list(v, name)
    if len(items) > limit:
        raise ConsensusError(f"{name}: {len(items)} ids, more than {limit}")
    if not all(isinstance(i, bytes) and len(i) == ID_BYTES for i in items):
        raise ConsensusError(f"{name} must be {ID_BYTES}-byte ids")
    if len(set(items)) != len(items):
        raise ConsensusError(f"{name} repeats an id")
    return tuple(items)


@dataclass(frozen=True)
class CompactProposal:
    """A proposal without its transactions: ``header`` is the block with an empty payload."""

    header: Block
    tx_ids: tuple[bytes, ...]
    signature: bytes

    @classmethod
    def of(cls, proposal: Proposal, tx_ids: Sequence[bytes]) -> CompactProposal:
        """The compact form of ``proposal``; ``tx_ids[i]`` is the id of its i-th transaction."""
        if len(tx_ids) != len(proposal.block.payload):
            raise ConsensusError("one id per transaction of the block")
        return cls(replace(proposal.block, payload=()), tuple(tx_ids), proposal.signature)

    @property
    def block_hash(self) -> bytes:
        """The hash of the full block (its header counts the transactions)."""
        return sm3(encode([*self.header.header_obj()[:-1], len(self.tx_ids)]))

    def rebuild(self, raws: Sequence[bytes]) -> Proposal:
        """The full proposal with ``raws`` (the transactions in order) as payload."""
        if len(raws) != len(self.tx_ids):
            raise ConsensusError("one transaction per id")
        return Proposal(replace(self.header, payload=tuple(raws)), self.signature)

    def to_bytes(self) -> bytes:
        """Wire bytes ``[tag, [block without payload, ids, signature]]``."""
        return encode([COMPACT_TAG, [self.header.to_obj(), list(self.tx_ids), self.signature]])


@dataclass(frozen=True)
class TxRequest:
    """Ask a peer for the transactions with ``tx_ids`` of the block ``block_hash``."""

    block_hash: bytes
    tx_ids: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        return encode([TX_REQUEST_TAG, [self.block_hash, list(self.tx_ids)]])


@dataclass(frozen=True)
class TxResponse:
    """Transactions (bytes) a peer has of those asked for ``block_hash``."""

    block_hash: bytes
    txs: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        return encode([TX_RESPONSE_TAG, [self.block_hash, list(self.txs)]])


def _body(data: bytes, tag: str, fields: int) -> list[Any]:
    t, body = _list(_decode(data), "message", 2)
    if t != tag:
        raise ConsensusError(f"expected a {tag} message")
    return _list(body, tag, fields)


def decode_compact(data: bytes, max_txs: int = 1 << 16) -> CompactProposal:
    """Inverse of :meth:`CompactProposal.to_bytes`; :class:`ConsensusError` on bad input.

    The header must carry no payload and at most ``max_txs`` distinct ids are accepted.
    """
    b, ids, sig = _body(data, COMPACT_TAG, 3)
    header = Block.from_obj(b)
    if header.payload:
        raise ConsensusError("a compact proposal's block carries no transactions")
    if not isinstance(sig, bytes):
        raise ConsensusError("sig must be bytes")
    return CompactProposal(header, _ids(ids, "tx_ids", max_txs), sig)


def decode_tx_request(data: bytes, max_txs: int = 1 << 16) -> TxRequest:
    """Inverse of :meth:`TxRequest.to_bytes`; :class:`ConsensusError` on bad input."""
    h, ids = _body(data, TX_REQUEST_TAG, 2)
    if not isinstance(h, bytes) or len(h) != ID_BYTES:
        raise ConsensusError("block_hash must be 32 bytes")
    return TxRequest(h, _ids(ids, "tx_ids", max_txs))


def decode_tx_response(data: bytes, max_txs: int = 1 << 16) -> TxResponse:
    """Inverse of :meth:`TxResponse.to_bytes`; :class:`ConsensusError` on bad input."""
    h, txs = _body(data, TX_RESPONSE_TAG, 2)
    if not isinstance(h, bytes) or len(h) != ID_BYTES:
        raise ConsensusError("block_hash must be 32 bytes")
    items = _list(txs, "txs")
    if len(items) > max_txs or not all(isinstance(t, bytes) for t in items):
        raise ConsensusError(f"txs must be at most {max_txs} byte strings")
    return TxResponse(h, tuple(items))


@dataclass
class Pending:
    """A compact proposal waiting for some of its transactions."""

    sender: str
    compact: CompactProposal
    raws: list[bytes | None]
    missing: dict[bytes, int]
    """Id → position, of the transactions still lacking."""
    deadline_ms: int
    asked: set[str] = field(default_factory=set)


class Rebuilds:
    """The compact proposals this node is rebuilding (pure bookkeeping, no I/O).

    Parameters
    ----------
    lookup : callable
        The bytes of a transaction this node holds, by id, or ``None``.
    max_pending, per_sender : int
        Rebuilds kept at once, in all and per sender; beyond either the oldest is dropped.
    """

    def __init__(
        self,
        lookup: Callable[[bytes], bytes | None],
        max_pending: int = MAX_PENDING,
        per_sender: int = MAX_PENDING_PER_SENDER,
    ) -> None:
        self.lookup = lookup
        self.max_pending = max_pending
        self.per_sender = per_sender
        self.pending: OrderedDict[bytes, Pending] = OrderedDict()
        self.refused = 0
        """Fetched transactions refused (not asked for, or not matching their id)."""
        self.fetched = 0
        """Fetched transactions accepted."""
        self.expired = 0
        """Rebuilds dropped at their deadline or evicted."""

    def start(self, sender: str, compact: CompactProposal, deadline_ms: int) -> Proposal | list[bytes]:
        """Rebuild ``compact`` from what this node holds: the full proposal, or the ids to
        fetch (the rebuild then waits, under its block hash, until :meth:`fill` completes it
        or ``deadline_ms`` passes)."""
        raws: list[bytes | None] = []
        missing: dict[bytes, int] = {}
        lookup = self.lookup
        for i, tx_id in enumerate(compact.tx_ids):
            raw = lookup(tx_id)
            raws.append(raw)
            if raw is None:
                missing[tx_id] = i
        if not missing:
            return compact.rebuild(raws)  # type: ignore[arg-type]  # no None left
        key = compact.block_hash
        self.pending.pop(key, None)
        mine = [k for k, p in self.pending.items() if p.sender == sender]
        for k in mine[: max(0, len(mine) - self.per_sender + 1)]:
            del self.pending[k]
            self.expired += 1
        self.pending[key] = Pending(sender, compact, raws, missing, deadline_ms)
        while len(self.pending) > self.max_pending:
            self.pending.popitem(last=False)
            self.expired += 1
        return list(missing)

    def fill(
        self, response: TxResponse, id_of: Callable[[bytes], bytes] = sm3
    ) -> tuple[str, Proposal] | None:
        """Add fetched transactions; ``(sender, proposal)`` once the block is complete.

        A transaction whose id is not one the block still lacks is refused (counted in
        :attr:`refused`); the others are kept even if some of the response is refused.
        """
        p = self.pending.get(response.block_hash)
        if p is None:
            self.refused += len(response.txs)
            return None
        for raw in response.txs:
            pos = p.missing.pop(id_of(raw), None)
            if pos is None:
                self.refused += 1
                continue
            p.raws[pos] = raw
            self.fetched += 1
        if p.missing:
            return None
        del self.pending[response.block_hash]
        return p.sender, p.compact.rebuild(p.raws)  # type: ignore[arg-type]  # complete

    def expire(self, now_ms: int) -> int:
        """Drop the rebuilds whose deadline has passed; how many."""
        late = [k for k, p in self.pending.items() if p.deadline_ms <= now_ms]
        for k in late:
            del self.pending[k]
        self.expired += len(late)
        return len(late)


def serve(
    request: TxRequest,
    block: Block | None,
    lookup: Callable[[bytes], bytes | None],
    id_of: Callable[[bytes], bytes],
) -> TxResponse:
    """The answer to ``request``: the asked transactions found in ``block`` (the block with
    that hash, if this node holds it) or else through ``lookup``, in the asked order."""
    found: dict[bytes, bytes] = {}
    if block is not None:
        wanted = set(request.tx_ids)
        for tx in block.payload:
            tx_id = id_of(tx)
            if tx_id in wanted:
                found[tx_id] = tx
    out = []
    for tx_id in request.tx_ids:
        raw = found.get(tx_id) or lookup(tx_id)
        if raw is not None:
            out.append(raw)
    return TxResponse(request.block_hash, tuple(out))
