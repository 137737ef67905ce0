"""A ledger replica: the consensus core wired to the executor, the Merkle tree and SQLite.

This is where the pure pieces meet storage:

* :class:`LedgerApp` is the consensus :class:`~chain.consensus.core.Application`. It runs
  transactions with the :class:`~chain.executor.Executor` on top of the state of the
  block being extended (committed, or a speculative overlay for an uncommitted parent),
  puts the RFC 6962 SM3 root of the transactions in ``tx_root`` and the state root in
  ``state_root``, and keeps a bounded :class:`~chain.mempool.Mempool`.
* :class:`LedgerBlockStore` stores committed blocks in a :class:`~chain.store.LedgerStore`:
  a block, its transactions, their results and its state changes in **one** SQLite
  transaction, fsynced before the core learns the block is committed (or, on a networked
  node, before any action that follows from it is taken).
* :class:`SqliteSafetyStore` keeps the consensus safety data (last vote, last timeout,
  locks) in the same database; every ``save`` is its own transaction (fsynced, or synced
  by the owner before it acts: :meth:`~chain.store.LedgerStore.defer_sync`) and the core
  saves before it returns the action that sends a vote, timeout or proposal.
* :class:`Replica` builds all of the above for one node from the genesis document.

Examples
--------
See :mod:`chain.localnet`, which runs several replicas in one process.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from chain import codec
from chain.consensus.core import (
    Action,
    BlockDraft,
    ConsensusConfig,
    ConsensusCore,
    SafetyData,
)
from chain.consensus.crypto import Sm2Signer, Sm2Verifier
from chain.consensus.messages import (
    Block,
    CommitProof,
    ConsensusError,
    Evidence,
    QuorumCertificate,
    Timeout,
    TimeoutCertificate,
    Vote,
    genesis_block,
)
from chain.contracts.base import ContractRegistry
from chain.crypto import PrivateKey
from chain.crypto.sm3 import sm3
from chain.epochs import (
    CURRENT_EPOCH,
    EPOCH_PROOF_META,
    EVIDENCE,
    EpochRecord,
    begin_block,
    current_epoch,
    epoch_key,
    finalize_block,
    genesis_epoch,
)
from chain.executor import NONCE, BlockExecution, Executor, genesis_state, next_nonce
from chain.mempool import Mempool, MempoolConfig, MempoolEntry
from chain.merkle import MerkleError, merkle_root
from chain.state import Overlay, State
from chain.state_tree import verify_state_proof
from chain.store import LedgerStore, StoreError
from chain.types import MAX_TX_BYTES, Genesis, ValidationError

SAFETY_KEY = "consensus/safety"
MAX_SAFETY_BYTES = 64 * 1024 * 1024
"""Largest stored safety record (it holds the few uncommitted blocks up to the high QC,
each at most ``ChainParams.max_block_bytes``)."""


def node_id(cert_id: bytes) -> str:
    """The consensus identity of a node: the hex of its certificate id."""
    return cert_id.hex()


def consensus_config(genesis: Genesis, **overrides: Any) -> ConsensusConfig:
    """Consensus parameters from the genesis document (every node derives the same ones)."""
    p = genesis.params
    fields: dict[str, Any] = {
        "chain_id": genesis.chain_id,
        "genesis_state_root": genesis_state(genesis).root,
        "genesis_hash": genesis.hash,
        "block_interval_ms": p.block_interval_ms,
        "empty_blocks": p.empty_blocks,
        "round_timeout_ms": p.round_timeout_ms,
        "max_round_timeout_ms": max(8 * p.round_timeout_ms, p.round_timeout_ms),
        "max_txs": p.max_block_txs,
        "max_bytes": p.max_block_bytes,
    }
    fields.update(overrides)
    return ConsensusConfig(**fields)


def chain_genesis_block(genesis: Genesis) -> Block:
    """Height-0 block of the chain: binds the genesis document hash and genesis state root."""
    return genesis_block(genesis.chain_id, genesis_state(genesis).root, genesis.hash)


def tx_root(payload: Sequence[bytes]) -> bytes:
    """RFC 6962 SM3 Merkle root over a block's raw transactions (leaf = whole tx bytes)."""
    return merkle_root(list(payload))


# --------------------------------------------------------------------------- safety store
def encode_safety(data: SafetyData) -> bytes:
    """Canonical bytes of a node's safety data."""

    def obj(x: QuorumCertificate | TimeoutCertificate | Vote | Timeout | None) -> Any:
        return None if x is None else x.to_obj()

    return codec.encode(
        [
            data.highest_voted_round,
            data.highest_qc_round,
            data.highest_proposed_round,
            obj(data.high_qc),
            obj(data.last_tc),
            obj(data.last_vote),
            obj(data.last_timeout),
            [b.to_obj() for b in data.pending_blocks],
        ]
    )


def decode_safety(raw: bytes) -> SafetyData:
    """Inverse of :func:`encode_safety`; :class:`ConsensusError` when corrupt."""
    try:
        fields = codec.decode(raw, max_size=MAX_SAFETY_BYTES)
        if not isinstance(fields, list) or len(fields) not in (7, 8):
            raise ValueError("seven or eight fields expected")
        hv, hq, hp, qc, tc, vote, timeout = fields[:7]
        pending = fields[7] if len(fields) == 8 else []
        if not isinstance(pending, list):
            raise ValueError("pending blocks are a list")
        return SafetyData(
            int(hv),
            int(hq),
            int(hp),
            None if qc is None else QuorumCertificate.from_obj(qc),
            None if tc is None else TimeoutCertificate.from_obj(tc),
            None if vote is None else Vote.from_obj(vote),
            None if timeout is None else Timeout.from_obj(timeout),
            tuple(Block.from_obj(b) for b in pending),
        )
    except (ValueError, TypeError, codec.CodecError) as exc:
        raise ConsensusError(f"stored consensus safety data is corrupt: {exc}") from None


class SqliteSafetyStore:
    """:class:`~chain.consensus.core.SafetyStore` in the node's ledger database, one per epoch."""

    def __init__(self, store: LedgerStore, epoch: int = 0) -> None:
        self._store = store
        self._key = f"{SAFETY_KEY}/{epoch}"

    def load(self) -> SafetyData | None:
        raw = self._store.get_meta(self._key)
        return None if raw is None else decode_safety(raw)

    def save(self, data: SafetyData) -> None:
        # autocommit: fsynced here, or by the owner's LedgerStore.sync after defer_sync
        self._store.set_meta(self._key, encode_safety(data))


# --------------------------------------------------------------------------- application
def _execution_key(
    parent_hash: bytes,
    round: int,
    ts: int,
    root: bytes,
    proposer: str,
    epoch: int,
    evidence: Sequence[Evidence],
) -> bytes:
    """What a block's execution depends on (everything of the block but its state root)."""
    return sm3(codec.encode([parent_hash, round, ts, root, proposer, epoch, [e.to_obj() for e in evidence]]))


def _draft_key(draft: BlockDraft, root: bytes) -> bytes:
    return _execution_key(
        draft.parent.hash, draft.round, draft.timestamp_ms, root, draft.proposer, draft.epoch, draft.evidence
    )


def _block_key(block: Block) -> bytes:
    return _execution_key(
        block.parent_hash,
        block.round,
        block.timestamp_ms,
        block.tx_root,
        block.proposer,
        block.epoch,
        block.evidence,
    )


def _draft_of(block: Block, parent: Block) -> BlockDraft:
    if block.parent_hash != parent.hash:
        raise ConsensusError("block does not extend the given parent")
    return BlockDraft(
        parent, block.round, block.timestamp_ms, block.proposer, block.payload, block.evidence, block.epoch
    )


@dataclass
class _Speculative:
    height: int
    overlay: Overlay
    execution: BlockExecution


@dataclass
class _Built:
    """What :meth:`LedgerApp.build_payload` ran: the block's start and its transactions
    applied on ``base``, with their results. The block's execution, when it is asked for
    next, finishes this overlay instead of running the transactions again."""

    parent_hash: bytes
    timestamp_ms: int
    base: State | Overlay
    payload: tuple[bytes, ...]
    overlay: Overlay
    results: list[dict[str, Any]]


def _same(a: Sequence[bytes], b: Sequence[bytes]) -> bool:
    """Whether two payloads hold the same transactions in the same order (usually the very
    same objects, so the comparison is by identity first)."""
    return len(a) == len(b) and all(x is y or x == y for x, y in zip(a, b, strict=True))


class LedgerApp:
    """The replicated state machine: executor + mempool + speculative states.

    Parameters
    ----------
    genesis : Genesis
        The chain's founding document.
    store : LedgerStore
        The node's committed chain; its state is loaded and checked against the head.
    registry : ContractRegistry, optional
        Contracts beyond the defaults (built by :func:`chain.executor.default_registry`).
    mempool : MempoolConfig, optional
        Limits of the node's mempool (defaults: 100,000 transactions, 256 MiB, 10,000 per
        sender).
    """

    def __init__(
        self,
        genesis: Genesis,
        store: LedgerStore,
        registry: ContractRegistry | None = None,
        mempool: MempoolConfig | None = None,
    ) -> None:
        self.genesis = genesis
        self.store = store
        self.mempool = Mempool(mempool)
        self.trust_signatures = False
        """Skip transaction signature checks when executing blocks: set for observers only
        (see :meth:`chain.executor.Executor.execute`)."""
        # remember every pooled transaction's signature check, and a few blocks' more
        cache = max(2 * self.mempool.config.max_txs, 4 * genesis.params.max_block_txs, 1024)
        self.executor = Executor(genesis, registry, verified_cache=cache)
        self.state: State = store.load_state()
        head = store.block(store.head_height())
        self.head_hash = head.hash if head is not None else chain_genesis_block(genesis).hash
        self._head_height = store.head_height()
        expected = head.state_root if head is not None else genesis_state(genesis).root
        if self.state.root != expected:
            raise StoreError(
                "the stored state does not match the head block's state root; the store is damaged"
            )
        self._spec: dict[bytes, _Speculative] = {}
        self._built: _Built | None = None
        self._tx_root: tuple[tuple[bytes, ...], bytes] | None = None
        self.head_block: Block = chain_genesis_block(genesis)  # the Replica loads the real head

    # ---------------------------------------------------------------- mempool
    def submit(self, raw: bytes, timestamp_ms: int | None = None) -> bytes:
        """Check a transaction against the committed state and queue it; return its id.

        A transaction already pending returns its id at once; one the node committed
        recently is refused from the mempool's memory, without a database lookup. The cheap
        refusals (mempool limits, a pending transaction with the same nonce) come before the
        signature is verified; the verification is remembered, so the block that carries
        the transaction does not verify it again on this node.

        Raises
        ------
        ValidationError
            With the reason when the transaction could never be included as it stands, or
            does not fit in the mempool now (``"the mempool is full ..."``: retry later).
        """
        if type(raw) is bytes and len(raw) <= MAX_TX_BYTES:
            # a transaction's id is the SM3 of its canonical bytes: a copy already pending or
            # committed (gossip from every peer, a retried submission) is answered from its
            # id alone, without decoding it again
            known = self._known(self.executor.tx_id_of(raw))
            if known is not None:
                return known
        tx = self.executor.decode(raw)
        tx_id = tx.tx_id
        if self._known(tx_id) is not None:
            return tx_id
        expected = next_nonce(self.state, tx.sender)
        # a committed transaction's nonce is below its sender's next one, so only such a
        # nonce needs the store's index (a replay older than the mempool's memory)
        if tx.nonce < expected and self.store.tx_location(tx_id) is not None:
            self.mempool.remember(tx_id)
            raise ValidationError("transaction is already committed")
        self.mempool.check(tx.sender, tx.nonce, len(raw))
        ts = tx.timestamp_ms if timestamp_ms is None else timestamp_ms
        view: State | Overlay = self.state
        if tx.nonce > expected:  # queued behind its predecessors
            view = Overlay(self.state)
            view.set(NONCE + tx.sender, (tx.nonce - 1).to_bytes(8, "big"))
        height = self._head_height + 1
        overlay = Overlay(view)
        begin_block(overlay, height, self.head_hash)
        # every check a block makes; the contract's apply only where it can refuse
        self.executor.apply_one(overlay, raw, height, ts, check_only=True)
        self.mempool.add(MempoolEntry(tx_id, raw, tx.sender, tx.nonce))
        return tx_id

    def _known(self, tx_id: bytes) -> bytes | None:
        """``tx_id`` if that transaction is pending here; raise with the reason the mempool
        remembers (it committed the transaction recently); ``None`` when it is new here."""
        if tx_id in self.mempool:
            return tx_id
        reason = self.mempool.refusal(tx_id)
        if reason is not None:
            raise ValidationError(reason)
        return None

    def is_known(self, tx_id: bytes) -> bool:
        """Whether the transaction with ``tx_id`` is pending here or the mempool remembers it
        as committed: :meth:`submit` answers such a copy from its id, so its signature need
        not be checked first."""
        return tx_id in self.mempool or self.mempool.refusal(tx_id) is not None

    # ---------------------------------------------------------------- Application
    def _finalizer(self, draft: BlockDraft) -> Callable[[Overlay], None]:
        """The end-of-block bookkeeping of ``draft`` (evidence, missed turns, epochs)."""

        def finalize(overlay: Overlay) -> None:
            finalize_block(
                overlay,
                self.genesis,
                draft.height,
                draft.round,
                draft.parent.round,
                draft.proposer,
                draft.evidence,
                draft.timestamp_ms,
            )

        return finalize

    def _run(self, draft: BlockDraft, base: State | Overlay) -> BlockExecution:
        """Execute ``draft`` on ``base``: transactions, then the end-of-block bookkeeping."""
        begin = partial(begin_block, height=draft.height, parent_hash=draft.parent.hash)
        return self.executor.execute(
            base,
            list(draft.payload),
            draft.height,
            draft.timestamp_ms,
            self._finalizer(draft),
            begin,
            trust_signatures=self.trust_signatures,
        )

    def _spec_of(self, block: Block) -> _Speculative | None:
        spec = self._spec.get(_block_key(block))
        return spec if spec is not None and spec.execution.state_root == block.state_root else None

    def _base(self, parent: Block) -> State | Overlay | None:
        if parent.hash == self.head_hash:
            return self.state
        spec = self._spec_of(parent)
        if spec is None and parent.parent_hash == self.head_hash:
            # e.g. after a restart: the parent extends the head but was never executed here
            try:
                execution = self._run(_draft_of(parent, self.head_block), self.state)
            except ValidationError:
                return None
            spec = self._remember(_block_key(parent), parent.height, self.state, execution)
            spec = self._spec_of(parent)
        return None if spec is None else spec.overlay

    def _remember(
        self, key: bytes, height: int, base: State | Overlay, execution: BlockExecution
    ) -> _Speculative:
        overlay = Overlay(base)
        for k, v in execution.changes.items():
            if v is None:
                overlay.delete(k)
            else:
                overlay.set(k, v)
        spec = _Speculative(height, overlay, execution)
        self._spec[key] = spec
        return spec

    def build_payload(self, parent: Block, timestamp_ms: int, max_txs: int, max_bytes: int) -> list[bytes]:
        """The transactions of a new block on ``parent``: the mempool's proposal order (each
        sender from the nonce it needs next, round-robin over senders), valid ones only.

        Nothing is decoded to order the pool, and only the entries looked at cost time. A
        transaction found invalid against the committed head is dropped from the mempool
        (it can never commit as it stands; its sender may send another with that nonce).
        """
        base = self._base(parent)
        if base is None:
            return []
        height = parent.height + 1
        overlay = Overlay(base)
        begin_block(overlay, height, parent.hash)
        chosen: list[bytes] = []
        results: list[dict[str, Any]] = []
        invalid: list[bytes] = []
        size = 0
        cursor = self.mempool.cursor(partial(next_nonce, base))
        for entry in cursor:
            if len(chosen) >= max_txs or size + entry.size > max_bytes:
                break
            child = overlay.child()
            try:
                results.append(self.executor.apply_one(child, entry.raw, height, timestamp_ms))
            except ValidationError:
                cursor.skip_sender()  # its later transactions need this one first
                if base is self.state:
                    invalid.append(entry.tx_id)
                continue
            overlay.merge_child(child)
            chosen.append(entry.raw)
            size += entry.size
        for tx_id in invalid:
            self.mempool.remove(tx_id)
        self._built = _Built(parent.hash, timestamp_ms, base, tuple(chosen), overlay, results)
        return chosen

    def validate_payload(self, payload: Sequence[bytes]) -> bool:
        try:
            for raw in payload:
                self.executor.decode(raw)
        except ValidationError:
            return False
        return True

    def tx_root(self, payload: Sequence[bytes]) -> bytes:
        """:func:`tx_root` of ``payload``; the last one is remembered (the core asks for a
        block's root when it checks or builds the block, and its execution again)."""
        last = self._tx_root
        if last is not None and _same(last[0], payload):
            return last[1]
        root = tx_root(payload)
        self._tx_root = (tuple(payload), root)
        return root

    def execute(self, draft: BlockDraft) -> bytes | None:
        # what build_payload ran serves only the execution asked for right after it
        built, self._built = self._built, None
        key = _draft_key(draft, self.tx_root(draft.payload))
        spec = self._spec.get(key)
        if spec is not None:
            return spec.execution.state_root
        base = self._base(draft.parent)
        if base is None:
            return None
        try:
            if (
                built is not None
                and built.base is base
                and built.parent_hash == draft.parent.hash
                and built.timestamp_ms == draft.timestamp_ms
                and _same(built.payload, draft.payload)
                and not self.trust_signatures  # build_payload verified every signature
            ):
                # the proposer's own block: its transactions ran on this very base, at this
                # height and time, when the payload was built; only the block's end is left
                execution = self.executor.finish(built.overlay, built.results, self._finalizer(draft))
            else:
                execution = self._run(draft, base)
        except ValidationError:
            return None
        self._remember(key, draft.height, base, execution)
        return execution.state_root

    def ends_epoch(self, block: Block) -> bool:
        spec = self._spec_of(block)
        if spec is None:
            return False
        return CURRENT_EPOCH in spec.execution.changes

    def execution_for(self, block: Block) -> BlockExecution:
        """The execution of ``block`` (which extends the committed head), recomputed if needed."""
        spec = self._spec_of(block)
        if spec is not None:
            return spec.execution
        if block.parent_hash != self.head_hash:
            raise ConsensusError("block to store does not extend the committed head")
        execution = self._run(_draft_of(block, self.head_block), self.state)
        if execution.state_root != block.state_root:
            raise ConsensusError("block's state root does not match its execution")
        return execution

    def on_commit(self, block: Block) -> None:
        self._built = None  # its base may change now
        committed = self._spec_of(block)
        if committed is not None:
            self.state.apply(committed.execution.changes, root=block.state_root)
            for spec in self._spec.values():
                if spec.overlay.base is committed.overlay:
                    spec.overlay.rebase(self.state)
        else:  # stored without local speculation: the store has the state
            self.state = self.store.load_state()
            self._spec.clear()
        self.head_hash = block.hash
        self.head_block = block
        self._head_height = block.height
        for k in [k for k, s in self._spec.items() if s.height <= block.height]:
            del self._spec[k]
        # drop the block's transactions and what can never commit now (a nonce another
        # transaction took): O(block + those senders' dropped entries), not O(mempool)
        txs = [self.executor.decode(raw) for raw in block.payload]
        self.mempool.remove_committed(
            [(tx.tx_id, tx.sender, tx.nonce) for tx in txs], partial(next_nonce, self.state)
        )


# --------------------------------------------------------------------------- block store
class LedgerBlockStore:
    """:class:`~chain.consensus.core.BlockStore` over a :class:`LedgerStore`."""

    def __init__(self, store: LedgerStore, genesis: Block, app: LedgerApp) -> None:
        self.store = store
        self.genesis = genesis
        self.app = app

    def tip_height(self) -> int:
        return self.store.head_height()

    def base_height(self) -> int:
        return self.store.base_height()

    def _load(self, row: Any) -> Block:
        obj = codec.decode(row.block)
        obj[-1] = self.store.transactions(row.height)
        return Block.from_obj(obj)

    def get_by_height(self, height: int) -> Block | None:
        if height == 0:
            return self.genesis
        row = self.store.block(height)
        return None if row is None else self._load(row)

    def get(self, block_hash: bytes) -> Block | None:
        if block_hash == self.genesis.hash:
            return self.genesis
        row = self.store.block_by_hash(block_hash)
        return None if row is None else self._load(row)

    def proof(self, height: int) -> CommitProof | None:
        row = self.store.block(height)
        if row is None or not row.commit_proof:
            return None
        return CommitProof.from_obj(codec.decode(row.commit_proof))

    def append(self, block: Block, proof: CommitProof | None) -> None:
        if block.height == 0:
            if block != self.genesis:
                raise ConsensusError("genesis block differs from the chain's genesis")
            return
        execution = self.app.execution_for(block)
        meta: dict[str, bytes] = {}
        raw_epoch = execution.changes.get(CURRENT_EPOCH)
        if raw_epoch is not None:
            meta[f"{EPOCH_PROOF_META}{int.from_bytes(raw_epoch, 'big')}"] = self._epoch_proof(
                execution, int.from_bytes(raw_epoch, "big"), block.height
            )
        obj = block.to_obj()
        obj[-1] = []  # transactions live in their own table
        self.store.commit_block(
            block.height,
            block.hash,
            block.parent_hash,
            block.state_root,
            codec.encode(obj),
            b"" if proof is None else codec.encode(proof.to_obj()),
            [(self.app.executor.decode(raw).tx_id, raw) for raw in block.payload],
            execution.changes,
            [codec.encode(r) for r in execution.results],
            meta,
        )

    def _epoch_proof(self, execution: BlockExecution, epoch: int, height: int) -> bytes:
        """State inclusion proof of the new epoch's record under the ending block's state root."""
        key = epoch_key(epoch)
        value = execution.changes[key] if key in execution.changes else self.app.state.get(key)
        try:
            proof = self.app.state.prove(key, execution.changes)
            verify_state_proof(execution.state_root, key, value or b"", proof)
        except MerkleError:
            raise ConsensusError("state root mismatch while proving an epoch change") from None
        return codec.encode({"height": height, "proof": proof.to_obj()})


# --------------------------------------------------------------------------- replica
class Replica:
    """One node of the chain: store, application and (for voting nodes) the consensus core.

    Parameters
    ----------
    genesis : Genesis
        The chain's founding document.
    path : str or PathLike
        The node's SQLite database (created on first use).
    key : PrivateKey, optional
        The node's SM2 key; with it and a consensus-node certificate in the genesis, the
        replica votes.
    registry : ContractRegistry, optional
        Extra contracts.
    config : dict, optional
        Overrides of :func:`consensus_config` (e.g. timeouts in tests).
    mempool : MempoolConfig, optional
        Limits of the node's mempool.
    """

    def __init__(
        self,
        genesis: Genesis,
        path: str | os.PathLike[str],
        key: PrivateKey | None = None,
        registry: ContractRegistry | None = None,
        config: dict[str, Any] | None = None,
        mempool: MempoolConfig | None = None,
    ) -> None:
        genesis.validate()
        self.genesis = genesis
        first = chain_genesis_block(genesis)
        self.store = LedgerStore(path, first.hash, genesis_state(genesis).entries())
        self.app = LedgerApp(genesis, self.store, registry, mempool)
        self.block_store = LedgerBlockStore(self.store, first, self.app)
        self.config = consensus_config(genesis, **(config or {}))
        if not genesis_epoch(genesis).validators:
            raise ValidationError("the genesis names no consensus node")
        self.key = key
        head = self.block_store.get_by_height(self.store.head_height())
        assert head is not None
        self.app.head_block = head
        self.core = self._make_core()

    @property
    def node_id(self) -> str:
        """This node's consensus id in the current epoch (an ``observer-…`` id when not voting)."""
        return self.core.node_id

    @property
    def epoch(self) -> EpochRecord:
        """The epoch in force at the committed head."""
        return current_epoch(self.app.state, self.genesis)

    def _make_core(self) -> ConsensusCore:
        record = self.epoch
        keys = {node_id(c.cert_id): c.key() for c in record.validators}
        base = self.block_store.get_by_height(record.height)
        if base is None:
            raise StoreError(f"the store lacks block {record.height}, where epoch {record.epoch} starts")
        signer: Sm2Signer | None = None
        me = f"observer-{secrets.token_hex(8)}"
        if self.key is not None:
            mine = self.key.public_key.to_bytes()
            for cert in record.validators:
                if cert.key().to_bytes() == mine:
                    me = node_id(cert.cert_id)
                    signer = Sm2Signer(me, self.key)
            if signer is None:
                me = f"observer-{self.key.public_key.key_id()[:16]}"
        voting = signer is not None and me in keys
        self.app.trust_signatures = not voting
        core = ConsensusCore(
            me,
            sorted(keys),
            signer,
            Sm2Verifier(keys),
            SqliteSafetyStore(self.store, record.epoch),
            self.block_store,
            self.app,
            replace(self.config, epoch=record.epoch),
            base,
        )
        if self.store.base_height() > record.height:
            # restored from a snapshot inside this epoch: the evidence its blocks recorded
            # before the snapshot is known from the state, not from blocks
            for _, raw in self.app.state.items_with_prefix(EVIDENCE):
                core.onchain_evidence.add(Evidence.from_bytes(raw).key)
        return core

    @property
    def voting(self) -> bool:
        """Whether this node votes in the current epoch."""
        return self.core.voting

    def start(self, now_ms: int) -> list[Action]:
        """Start the consensus core and return its first actions."""
        return self.core.start(now_ms)

    def next_epoch(self, now_ms: int) -> list[Action]:
        """After :class:`~chain.consensus.core.EpochEnded`: start the next epoch's core."""
        if not self.core.ended:
            raise ConsensusError("the current epoch has not ended")
        self.core = self._make_core()
        return self.core.start(now_ms)

    def close(self) -> None:
        """Close the database."""
        self.store.close()
