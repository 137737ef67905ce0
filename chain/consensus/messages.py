"""Consensus messages: blocks, votes, certificates, timeouts, proposals, sync and evidence.

Every message has a canonical byte form (:func:`chain.codec.encode` of a plain list) with
``to_bytes()`` / ``from_bytes()``; blocks are identified by ``sm3(encode(header))``.  The
bytes that are *signed* are separate, domain-separated lists that include the chain id
(see ``vote_signing_bytes`` etc.), so a signature for one chain or one message kind can
never be replayed as another.

Genesis conventions
-------------------
The genesis block has height 0, round 0, ``parent_hash`` of 32 zero bytes, no payload,
proposer ``""`` and ``qc=None``.  The *genesis QC* certifies it with round 0 and no
signatures; :meth:`QuorumCertificate.is_genesis` recognises it and verification accepts it
only when its block hash equals the genesis hash of the chain.

Size limit
----------
:data:`MAX_MESSAGE_BYTES` (16 MiB) bounds every consensus message read from a peer and is
checked before anything is decoded. A proposal carries one block of at most
``ChainParams.max_block_bytes`` (4 MiB by default) plus its header, certificates and at most
eight pieces of evidence — about 5 MiB; the rest is headroom for sync responses, which carry
several blocks (a response that would exceed the limit is refused by its receiver).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Self

from chain.codec import decode, encode
from chain.crypto.sm3 import sm3
from chain.errors import ChainError
from chain.errors import ConsensusError as ConsensusError  # re-exported under its historical path

ZERO_HASH = b"\x00" * 32
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Largest encoded consensus message accepted from a peer (checked before decoding)."""


def _bytes(v: Any, name: str) -> bytes:
    if not isinstance(v, bytes):
        raise ConsensusError(f"{name} must be bytes")
    return v


def _int(v: Any, name: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ConsensusError(f"{name} must be a non-negative int")
    return v


def _str(v: Any, name: str) -> str:
    if not isinstance(v, str):
        raise ConsensusError(f"{name} must be str")
    return v


def _list(v: Any, name: str, length: int | None = None) -> list[Any]:
    if not isinstance(v, list) or (length is not None and len(v) != length):
        raise ConsensusError(f"{name} must be a list" + (f" of {length}" if length is not None else ""))
    return v


def _decode(data: bytes) -> Any:
    """Canonical value of one consensus message, refusing more than :data:`MAX_MESSAGE_BYTES`."""
    if not isinstance(data, (bytes, bytearray)):
        raise ConsensusError(f"a consensus message is bytes, not {type(data).__name__}")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ConsensusError(
            f"consensus message of {len(data)} bytes exceeds the limit of {MAX_MESSAGE_BYTES}"
        )
    try:
        return decode(data, max_size=MAX_MESSAGE_BYTES)
    except ChainError as exc:
        raise ConsensusError(f"consensus message is not canonically encoded: {exc}") from None


class _Wire:
    """Canonical bytes for every message type: ``encode(to_obj())`` and back."""

    def to_obj(self) -> Any:
        raise NotImplementedError

    @classmethod
    def from_obj(cls, obj: Any) -> Self:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """Canonical CBOR of :meth:`to_obj`."""
        return encode(self.to_obj())

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Inverse of :meth:`to_bytes` (within :data:`MAX_MESSAGE_BYTES`); :class:`ConsensusError`."""
        return cls.from_obj(_decode(data))


def _domain(kind: str, chain_id: str, genesis_hash: bytes, epoch: int) -> list[Any]:
    return [f"rongxin/{kind}", chain_id, genesis_hash, epoch]


def vote_signing_bytes(
    chain_id: str, genesis_hash: bytes, round: int, block_hash: bytes, epoch: int = 0
) -> bytes:
    """Bytes signed by a vote for ``block_hash`` in ``round`` of ``epoch``.

    The chain id *and* the genesis document's hash are signed: a certificate made for one
    genesis never counts under another genesis with the same chain id and validators.
    """
    return encode([*_domain("vote", chain_id, genesis_hash, epoch), round, block_hash])


def timeout_signing_bytes(
    chain_id: str, genesis_hash: bytes, round: int, high_qc_round: int, epoch: int = 0
) -> bytes:
    """Bytes signed by a timeout of ``round`` of ``epoch`` reporting the signer's highest QC round.

    Rounds restart in every epoch, so the epoch is signed: a timeout of one epoch can never
    count (or look like equivocation) in another.
    """
    return encode([*_domain("timeout", chain_id, genesis_hash, epoch), round, high_qc_round])


def proposal_signing_bytes(chain_id: str, genesis_hash: bytes, block_hash: bytes, epoch: int = 0) -> bytes:
    """Bytes signed by the proposer of a block of ``epoch``."""
    return encode([*_domain("proposal", chain_id, genesis_hash, epoch), block_hash])


@dataclass(frozen=True)
class QuorumCertificate(_Wire):
    """2f+1 votes for one block in one round; keeps every ``(author, signature)``."""

    round: int
    block_hash: bytes
    signatures: tuple[tuple[str, bytes], ...] = ()

    def is_genesis(self) -> bool:
        """True for a signature-less certificate: of the genesis block, or of an epoch's base
        block (already committed under the previous epoch); verification accepts it only for
        the verifier's own epoch base."""
        return not self.signatures

    def to_obj(self) -> list[Any]:
        return [self.round, self.block_hash, [[a, s] for a, s in self.signatures]]

    @classmethod
    def from_obj(cls, obj: Any) -> QuorumCertificate:
        r, h, sigs = _list(obj, "qc", 3)
        pairs = tuple(
            (_str(a, "author"), _bytes(s, "sig"))
            for a, s in (_list(p, "signature entry", 2) for p in _list(sigs, "signatures"))
        )
        return cls(_int(r, "round"), _bytes(h, "block_hash"), pairs)


@dataclass(frozen=True)
class TimeoutCertificate(_Wire):
    """2f+1 timeouts of one round: ``(author, high_qc_round, signature)`` each."""

    round: int
    entries: tuple[tuple[str, int, bytes], ...]

    @property
    def max_high_qc_round(self) -> int:
        """Highest QC round reported by the timeouts (the lock a new block must respect)."""
        return max((e[1] for e in self.entries), default=0)

    def to_obj(self) -> list[Any]:
        return [self.round, [[a, q, s] for a, q, s in self.entries]]

    @classmethod
    def from_obj(cls, obj: Any) -> TimeoutCertificate:
        r, es = _list(obj, "tc", 2)
        entries = tuple(
            (_str(a, "author"), _int(q, "hqc_round"), _bytes(s, "sig"))
            for a, q, s in (_list(e, "entry", 3) for e in _list(es, "entries"))
        )
        return cls(_int(r, "round"), entries)


@dataclass(frozen=True)
class Evidence(_Wire):
    """Two different signed messages of one kind by one author for one round.

    ``kind`` is ``"proposal"``, ``"vote"`` or ``"timeout"``; ``first`` and ``second`` are the
    canonical bytes of the two signed messages (:class:`Proposal`, :class:`Vote`,
    :class:`Timeout`), ordered so that ``first < second`` (one evidence, one encoding).
    """

    kind: str
    author: str
    round: int
    first: bytes
    second: bytes

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.kind, self.author, self.round)

    def to_obj(self) -> list[Any]:
        return [self.kind, self.author, self.round, self.first, self.second]

    @classmethod
    def from_obj(cls, obj: Any) -> Evidence:
        k, a, r, f, s = _list(obj, "evidence", 5)
        return cls(
            _str(k, "kind"), _str(a, "author"), _int(r, "round"), _bytes(f, "first"), _bytes(s, "second")
        )


@dataclass(frozen=True)
class Block(_Wire):
    """A proposed block; ``hash`` covers every field (payload through ``tx_root``)."""

    chain_id: str
    height: int
    round: int
    parent_hash: bytes
    payload: tuple[bytes, ...]
    tx_root: bytes
    state_root: bytes
    timestamp_ms: int
    proposer: str
    qc: QuorumCertificate | None
    tc: TimeoutCertificate | None = None
    evidence: tuple[Evidence, ...] = ()
    epoch: int = 0

    def header_obj(self) -> list[Any]:
        """Fields covered by the block hash (the payload enters through ``tx_root``)."""
        return [
            self.chain_id,
            self.height,
            self.round,
            self.parent_hash,
            self.tx_root,
            self.state_root,
            self.timestamp_ms,
            self.proposer,
            None if self.qc is None else self.qc.to_obj(),
            None if self.tc is None else self.tc.to_obj(),
            [e.to_obj() for e in self.evidence],
            self.epoch,
            len(self.payload),
        ]

    @cached_property
    def hash(self) -> bytes:
        return sm3(encode(self.header_obj()))

    def to_obj(self) -> list[Any]:
        return [*self.header_obj()[:-1], list(self.payload)]

    @classmethod
    def from_obj(cls, obj: Any) -> Block:
        c, h, r, p, tr, sr, ts, pr, qc, tc, ev, ep, pl = _list(obj, "block", 13)
        return cls(
            chain_id=_str(c, "chain_id"),
            height=_int(h, "height"),
            round=_int(r, "round"),
            parent_hash=_bytes(p, "parent_hash"),
            payload=tuple(_bytes(t, "tx") for t in _list(pl, "payload")),
            tx_root=_bytes(tr, "tx_root"),
            state_root=_bytes(sr, "state_root"),
            timestamp_ms=_int(ts, "timestamp_ms"),
            proposer=_str(pr, "proposer"),
            qc=None if qc is None else QuorumCertificate.from_obj(qc),
            tc=None if tc is None else TimeoutCertificate.from_obj(tc),
            evidence=tuple(Evidence.from_obj(e) for e in _list(ev, "evidence")),
            epoch=_int(ep, "epoch"),
        )


def genesis_block(chain_id: str, state_root: bytes, tx_root: bytes = ZERO_HASH) -> Block:
    """The genesis block of ``chain_id`` (height 0, round 0, no QC)."""
    return Block(chain_id, 0, 0, ZERO_HASH, (), tx_root, state_root, 0, "", None)


def genesis_qc(genesis: Block) -> QuorumCertificate:
    """The signature-less certificate of ``genesis`` (or of an epoch's base block)."""
    return QuorumCertificate(genesis.round, genesis.hash, ())


@dataclass(frozen=True)
class Vote(_Wire):
    """A signed vote of ``author`` for ``block_hash`` in ``round``."""

    author: str
    round: int
    block_hash: bytes
    signature: bytes

    def to_obj(self) -> list[Any]:
        return [self.author, self.round, self.block_hash, self.signature]

    @classmethod
    def from_obj(cls, obj: Any) -> Vote:
        a, r, h, s = _list(obj, "vote", 4)
        return cls(_str(a, "author"), _int(r, "round"), _bytes(h, "block_hash"), _bytes(s, "sig"))


@dataclass(frozen=True)
class Timeout(_Wire):
    """A signed timeout of ``round`` carrying the author's highest QC.

    ``last_tc`` (a TC for ``round - 1``, if the author entered the round by one) is not
    signed: it is self-authenticating and only helps lagging nodes catch up.
    """

    author: str
    round: int
    high_qc: QuorumCertificate
    signature: bytes
    last_tc: TimeoutCertificate | None = None

    def signed_obj(self) -> list[Any]:
        return [self.author, self.round, self.high_qc.to_obj(), self.signature]

    def to_obj(self) -> list[Any]:
        return [*self.signed_obj(), None if self.last_tc is None else self.last_tc.to_obj()]

    @classmethod
    def from_obj(cls, obj: Any) -> Timeout:
        a, r, q, s, tc = _list(obj, "timeout", 5)
        return cls(
            _str(a, "author"),
            _int(r, "round"),
            QuorumCertificate.from_obj(q),
            _bytes(s, "sig"),
            None if tc is None else TimeoutCertificate.from_obj(tc),
        )


@dataclass(frozen=True)
class Proposal(_Wire):
    """A block signed by its proposer (the leader of ``block.round``)."""

    block: Block
    signature: bytes

    def to_obj(self) -> list[Any]:
        return [self.block.to_obj(), self.signature]

    @classmethod
    def from_obj(cls, obj: Any) -> Proposal:
        b, s = _list(obj, "proposal", 2)
        return cls(Block.from_obj(b), _bytes(s, "sig"))


@dataclass(frozen=True)
class CommitProof(_Wire):
    """Proof that a block ``X`` is committed.

    ``path`` are the blocks from ``X`` (exclusive) up to ``child``'s parent ``P`` (``P = X``
    when ``path`` is empty); ``child`` directly extends ``P`` (``child.round == P.round + 1``,
    ``child.qc`` certifies ``P``) and ``qc`` certifies ``child``: by the 2-chain rule ``P``
    and all its ancestors, ``X`` among them, are committed. ``path`` is non-empty only for an
    epoch-ending block, whose empty successors are not committed in its epoch.
    """

    child: Block
    qc: QuorumCertificate
    path: tuple[Block, ...] = ()

    def to_obj(self) -> list[Any]:
        return [self.child.to_obj(), self.qc.to_obj(), [b.to_obj() for b in self.path]]

    @classmethod
    def from_obj(cls, obj: Any) -> CommitProof:
        c, q, path = _list(obj, "commit_proof", 3)
        return cls(
            Block.from_obj(c),
            QuorumCertificate.from_obj(q),
            tuple(Block.from_obj(b) for b in _list(path, "path")),
        )


@dataclass(frozen=True)
class SyncRequest(_Wire):
    """Ask a peer for blocks.

    With ``block_hash``: that block and its ancestors down to ``from_height`` (inclusive).
    Without: the peer's committed blocks from ``from_height`` on, with a commit proof.
    """

    from_height: int
    block_hash: bytes | None = None

    def to_obj(self) -> list[Any]:
        return [self.from_height, self.block_hash]

    @classmethod
    def from_obj(cls, obj: Any) -> SyncRequest:
        h, b = _list(obj, "sync_request", 2)
        return cls(_int(h, "from_height"), None if b is None else _bytes(b, "block_hash"))


@dataclass(frozen=True)
class SyncResponse(_Wire):
    """Blocks in ascending height; ``proof`` (committed mode) proves the last one committed."""

    blocks: tuple[Block, ...]
    proof: CommitProof | None = None
    requested_hash: bytes | None = None

    def to_obj(self) -> list[Any]:
        return [
            [b.to_obj() for b in self.blocks],
            None if self.proof is None else self.proof.to_obj(),
            self.requested_hash,
        ]

    @classmethod
    def from_obj(cls, obj: Any) -> SyncResponse:
        bs, p, rh = _list(obj, "sync_response", 3)
        return cls(
            tuple(Block.from_obj(b) for b in _list(bs, "blocks")),
            None if p is None else CommitProof.from_obj(p),
            None if rh is None else _bytes(rh, "requested_hash"),
        )


@dataclass(frozen=True)
class EvidenceMsg(_Wire):
    """Gossip of equivocation evidence towards the next leaders."""

    evidence: tuple[Evidence, ...] = field(default_factory=tuple)

    def to_obj(self) -> list[Any]:
        return [e.to_obj() for e in self.evidence]

    @classmethod
    def from_obj(cls, obj: Any) -> EvidenceMsg:
        return cls(tuple(Evidence.from_obj(e) for e in _list(obj, "evidence")))


Message = Proposal | Vote | Timeout | SyncRequest | SyncResponse | EvidenceMsg

_TAGS: dict[type[Any], str] = {
    Proposal: "proposal",
    Vote: "vote",
    Timeout: "timeout",
    SyncRequest: "sync_request",
    SyncResponse: "sync_response",
    EvidenceMsg: "evidence",
}
_BY_TAG: dict[str, Any] = {v: k for k, v in _TAGS.items()}


def encode_message(msg: Message) -> bytes:
    """Wire bytes ``encode([tag, body])`` of any consensus message."""
    return encode([_TAGS[type(msg)], msg.to_obj()])


def decode_message(data: bytes) -> Message:
    """Inverse of :func:`encode_message`; raises :class:`ConsensusError` on bad input."""
    try:
        tag, body = _list(_decode(data), "message", 2)
        cls = _BY_TAG.get(_str(tag, "message tag"))
        if cls is None:
            raise ConsensusError(f"unknown message tag {tag!r}")
        msg: Message = cls.from_obj(body)
        return msg
    except ChainError as exc:
        if isinstance(exc, ConsensusError):
            raise
        raise ConsensusError(str(exc)) from exc
    except (ValueError, TypeError) as exc:
        raise ConsensusError(f"malformed message: {exc}") from exc
