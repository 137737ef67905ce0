"""I/O-free, deterministic 2-chain HotStuff (DiemBFT v4 / Jolteon) consensus core.

A :class:`ConsensusCore` is driven by three entry points -- :meth:`ConsensusCore.start`,
:meth:`ConsensusCore.on_message` and :meth:`ConsensusCore.on_timer` -- each returning a list
of :data:`Action` for the host (network, timers, commit notifications).  All safety data is
written to the :class:`SafetyStore` *before* the action that sends a vote, timeout or
proposal is returned, so a node restarted from its stores never equivocates.

See ``docs/consensus.md`` for the rules and the safety/liveness argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from chain.consensus.crypto import Signer, Verifier
from chain.consensus.interfaces import (
    Action,
    BlockStore,
    Broadcast,
    Committed,
    EpochEnded,
    MemoryBlockStore,
    MemorySafetyStore,
    SafetyData,
    SafetyStore,
    Send,
    SetTimer,
)
from chain.consensus.messages import (
    ZERO_HASH,
    Block,
    CommitProof,
    ConsensusError,
    Evidence,
    EvidenceMsg,
    Message,
    Proposal,
    QuorumCertificate,
    SyncRequest,
    SyncResponse,
    Timeout,
    TimeoutCertificate,
    Vote,
    decode_message,
    encode_message,
    genesis_block,
    genesis_qc,
    proposal_signing_bytes,
    timeout_signing_bytes,
    vote_signing_bytes,
)

__all__ = [
    "Action",
    "Application",
    "BlockDraft",
    "BlockStore",
    "Broadcast",
    "Committed",
    "ConsensusConfig",
    "ConsensusCore",
    "ConsensusError",
    "EpochEnded",
    "MemoryBlockStore",
    "MemorySafetyStore",
    "SafetyData",
    "SafetyStore",
    "Send",
    "SetTimer",
    "quorum_size",
]

MAX_EVIDENCE_PER_BLOCK = 8
SEEN_ROUNDS_BEHIND = 16
"""Votes, timeouts and proposals are remembered (for equivocation evidence) this many rounds back."""


@dataclass(frozen=True)
class BlockDraft:
    """What the application sees of a block being proposed or checked (all but the roots)."""

    parent: Block
    round: int
    timestamp_ms: int
    proposer: str
    payload: tuple[bytes, ...]
    evidence: tuple[Evidence, ...]
    epoch: int

    @property
    def height(self) -> int:
        return self.parent.height + 1


class Application(Protocol):
    """The state machine replicated by consensus.

    ``build_payload`` and ``execute`` receive the parent block, so an application can run
    transactions against the (possibly uncommitted) state the block builds on, at the
    block's height ``parent.height + 1`` and timestamp. ``execute`` must be deterministic and
    return ``None`` when the draft is not valid on top of ``parent`` (the block is then
    rejected). ``ends_epoch`` tells whether an executed block changes the validator set:
    its descendants in the same epoch carry nothing, and committing it ends the epoch.
    ``on_commit`` is called once per committed block, in height order, after the block
    store has made the block durable.
    """

    def build_payload(
        self, parent: Block, timestamp_ms: int, max_txs: int, max_bytes: int
    ) -> list[bytes]: ...

    def validate_payload(self, payload: Sequence[bytes]) -> bool: ...

    def execute(self, draft: BlockDraft) -> bytes | None: ...

    def tx_root(self, payload: Sequence[bytes]) -> bytes: ...

    def ends_epoch(self, block: Block) -> bool: ...

    def on_commit(self, block: Block) -> None: ...


@dataclass(frozen=True)
class ConsensusConfig:
    """Tunables; every validator of a chain must use the same ``chain_id`` and genesis."""

    chain_id: str = "rongxin"
    genesis_state_root: bytes = ZERO_HASH
    genesis_hash: bytes = ZERO_HASH
    block_interval_ms: int = 0
    empty_blocks: bool = True
    round_timeout_ms: int = 1000
    max_round_timeout_ms: int = 8000
    max_txs: int = 500
    max_bytes: int = 1 << 20
    max_clock_drift_ms: int = 2000
    idle_poll_ms: int = 50
    sync_batch: int = 256
    sync_bytes: int = 4 << 20
    """A committed-sync response stops at the last block with a commit proof once its blocks
    pass this many bytes (transactions plus 512 per header), so that with blocks of at most
    ``ChainParams.max_block_bytes`` (8 MiB) it stays under the 16 MiB message limit."""
    epoch: int = 0
    round_window: int = 64
    """Votes, timeouts and proposals for rounds above ``round + round_window`` are dropped (after
    the QC/TC they carry is processed): a node that far behind catches up by sync."""
    max_future_per_sender: int = 8
    """At most this many votes (and as many timeouts, proposals) per sender for rounds above the
    current one are kept; more are dropped until the node's round catches up."""
    fetch_grace_ms: int = 200
    """A QC formed from votes for a block this node has not received yet waits this long
    before the block is asked for: the votes are broadcast, so the faster validators' votes
    often arrive while the block's proposal is still on its way or queued behind other
    work here, and asking every peer at once would have each of them send the uncommitted
    chain for nothing. A proposal that builds on the block, when it comes first, asks its
    sender at once."""


def quorum_size(n: int) -> int:
    """Votes needed among ``n`` validators: ``floor((n + f) / 2) + 1`` with ``f = (n - 1) // 3``.

    Equals ``2f + 1`` when ``n = 3f + 1``; for other ``n`` it keeps two quorums intersecting
    in at least ``f + 1`` validators (one honest), which plain ``2f + 1`` would not (n = 5).
    """
    f = (n - 1) // 3
    return (n + f) // 2 + 1


# --------------------------------------------------------------------------- core
@dataclass
class _Pending:
    proposals: list[tuple[str, Proposal]] = field(default_factory=list)
    qcs: list[QuorumCertificate] = field(default_factory=list)


class ConsensusCore:
    """One validator's consensus state machine (see module docstring)."""

    def __init__(
        self,
        node_id: str,
        validators: Sequence[str],
        signer: Signer | None,
        verifier: Verifier,
        safety_store: SafetyStore,
        block_store: BlockStore,
        app: Application,
        config: ConsensusConfig | None = None,
        base: Block | None = None,
    ) -> None:
        if signer is not None and signer.node_id != node_id:
            raise ConsensusError("signer does not belong to this node")
        self.validators: tuple[str, ...] = tuple(sorted(set(validators)))
        if not self.validators:
            raise ConsensusError("an epoch needs at least one validator")
        self.node_id = node_id
        #: False for an observer (no key, or not in this epoch's set): follows, never signs.
        self.voting = signer is not None and node_id in self.validators
        self.n = len(self.validators)
        self.f = (self.n - 1) // 3
        self.quorum = quorum_size(self.n)
        self._signer = signer
        self.verifier = verifier
        self.safety_store = safety_store
        self.block_store = block_store
        self.app = app
        self.config = config or ConsensusConfig()
        self.epoch = self.config.epoch
        self.genesis = base or genesis_block(
            self.config.chain_id, self.config.genesis_state_root, self.config.genesis_hash
        )
        self._genesis_qc = genesis_qc(self.genesis)
        self._vset = frozenset(self.validators)
        # volatile state, rebuilt by start()
        self.safety = SafetyData()
        self.round = 0
        self.high_qc = self._genesis_qc
        self.last_tc: TimeoutCertificate | None = None
        self.committed: Block = self.genesis
        self.blocks: dict[bytes, Block] = {}
        self._qc_ok: set[QuorumCertificate] = set()
        self._tc_ok: set[TimeoutCertificate] = set()
        self._votes: dict[tuple[int, bytes], dict[str, bytes]] = {}
        self._qc_formed: set[int] = set()
        self._timeouts: dict[int, dict[str, Timeout]] = {}
        # author -> round -> first validly signed message (equivocation evidence, window bound)
        self._seen_vote: dict[str, dict[int, Vote]] = {}
        self._seen_timeout: dict[str, dict[int, Timeout]] = {}
        self._seen_proposal: dict[str, dict[int, Proposal]] = {}
        self._pending: dict[bytes, _Pending] = {}
        self._fetch_after: dict[bytes, int] = {}
        """Blocks certified by a QC formed here from votes, and when they may be asked for."""
        self._requested: dict[bytes, int] = {}
        self._backoff = 0
        self.pending_evidence: dict[tuple[str, str, int], Evidence] = {}
        self.onchain_evidence: set[tuple[str, str, int]] = set()
        self.evidence_found: list[tuple[int, Evidence]] = []
        self.conflicts: list[str] = []
        self.started = False
        self.ended = False
        self._ending: SyncResponse | None = None

    # ------------------------------------------------------------------ helpers
    @property
    def signer(self) -> Signer:
        """This node's signer (voting nodes only)."""
        if self._signer is None or not self.voting:
            raise ConsensusError("an observer does not sign")
        return self._signer

    def leader(self, round: int) -> str:
        """Leader of ``round``: round-robin over the sorted validator ids."""
        return self.validators[round % self.n]

    def buffer_sizes(self) -> dict[str, int]:
        """Entries held in each message buffer (for monitoring, and to check their bounds)."""

        def entries(buffer: dict[Any, Any]) -> int:
            return sum(len(v) if isinstance(v, dict) else 1 for v in buffer.values())

        return {
            "votes": entries(self._votes),
            "seen_votes": entries(self._seen_vote),
            "timeouts": entries(self._timeouts),
            "seen_timeouts": entries(self._seen_timeout),
            "seen_proposals": entries(self._seen_proposal),
            "pending": len(self._pending),
            "requested": len(self._requested),
        }

    def is_awaiting(self, block_hash: bytes) -> bool:
        """Whether this node asked its peers for ``block_hash`` and has not received it yet."""
        return block_hash in self._requested

    def sync_blocks_to_check(self, resp: SyncResponse) -> list[Block]:
        """The blocks of ``resp`` that :meth:`on_message` would check and execute now.

        They are authentic (hash-linked to a block this node asked for, or certified by a
        valid commit proof), above the committed height and not yet known. A host checks
        their transactions' signatures ahead, off its event loop, as it does a proposal's;
        for any other response the list is empty and the core refuses or skips it cheaply.
        """
        blocks = resp.blocks
        if self.ended or not blocks or not _linked(blocks):
            return []
        if resp.proof is not None:
            if not self._proof_certifies(blocks[-1], resp.proof):
                return []
        elif resp.requested_hash not in self._requested or blocks[-1].hash != resp.requested_hash:
            return []
        mine = self.committed.height
        return [b for b in blocks if b.height > mine and self.get_block(b.hash) is None]

    def get_block(self, block_hash: bytes) -> Block | None:
        """A known block: pending tree first, then the committed head (asked for with every
        QC and timeout that certifies it: reading it back would load all its transactions
        from the store), then the committed store."""
        b = self.blocks.get(block_hash)
        if b is not None:
            return b
        if block_hash == self.committed.hash:
            return self.committed
        return self.block_store.get(block_hash)

    def _vote_bytes(self, round: int, block_hash: bytes) -> bytes:
        return vote_signing_bytes(
            self.config.chain_id, self.config.genesis_hash, round, block_hash, self.epoch
        )

    def _timeout_bytes(self, round: int, high_qc_round: int) -> bytes:
        return timeout_signing_bytes(
            self.config.chain_id, self.config.genesis_hash, round, high_qc_round, self.epoch
        )

    def _proposal_bytes(self, block_hash: bytes) -> bytes:
        return proposal_signing_bytes(self.config.chain_id, self.config.genesis_hash, block_hash, self.epoch)

    def _save(self, **changes: object) -> None:
        pending = self.safety.pending_blocks
        if not pending or pending[-1].hash != self.high_qc.block_hash:
            tip = self.get_block(self.high_qc.block_hash)
            pending = tuple(reversed(self._uncommitted_chain(tip))) if tip is not None else ()
        self.safety = replace(
            self.safety,
            high_qc=self.high_qc,
            last_tc=self.last_tc,
            pending_blocks=pending,
            **changes,  # type: ignore[arg-type]
        )
        self.safety_store.save(self.safety)

    def verify_qc(self, qc: QuorumCertificate) -> bool:
        """Check a QC: genesis convention, or >= quorum distinct validators, each signature valid."""
        if qc in self._qc_ok:
            return True
        if qc.is_genesis():
            return qc.block_hash == self.genesis.hash and qc.round == self.genesis.round
        authors = [a for a, _ in qc.signatures]
        if len(set(authors)) != len(authors) or len(authors) < self.quorum:
            return False
        if not self._vset.issuperset(authors):
            return False
        msg = self._vote_bytes(qc.round, qc.block_hash)
        if not all(self.verifier.verify(a, msg, s) for a, s in qc.signatures):
            return False
        self._qc_ok.add(qc)
        return True

    def verify_tc(self, tc: TimeoutCertificate) -> bool:
        """Check a TC: >= quorum distinct validators, each timeout signature valid."""
        if tc in self._tc_ok:
            return True
        authors = [e[0] for e in tc.entries]
        if len(set(authors)) != len(authors) or len(authors) < self.quorum:
            return False
        if not self._vset.issuperset(authors):
            return False
        for author, hqc_round, sig in tc.entries:
            if hqc_round >= tc.round:
                return False
            if not self.verifier.verify(author, self._timeout_bytes(tc.round, hqc_round), sig):
                return False
        self._tc_ok.add(tc)
        return True

    def verify_evidence(self, ev: Evidence) -> bool:
        """Both messages decode, are of ``ev.kind`` by ``ev.author`` in ``ev.round``, differ in
        signed content, and carry valid signatures."""
        if ev.first >= ev.second or ev.author not in self._vset:
            return False
        try:
            a, b = decode_message(ev.first), decode_message(ev.second)
        except ConsensusError:
            return False
        if ev.kind == "proposal" and isinstance(a, Proposal) and isinstance(b, Proposal):
            ok = all(
                p.block.proposer == ev.author
                and p.block.round == ev.round
                and self.verifier.verify(ev.author, self._proposal_bytes(p.block.hash), p.signature)
                for p in (a, b)
            )
            return ok and a.block.hash != b.block.hash
        if ev.kind == "vote" and isinstance(a, Vote) and isinstance(b, Vote):
            ok = all(
                v.author == ev.author
                and v.round == ev.round
                and self.verifier.verify(ev.author, self._vote_bytes(v.round, v.block_hash), v.signature)
                for v in (a, b)
            )
            return ok and a.block_hash != b.block_hash
        if ev.kind == "timeout" and isinstance(a, Timeout) and isinstance(b, Timeout):
            ok = all(
                t.author == ev.author
                and t.round == ev.round
                and self.verifier.verify(
                    ev.author, self._timeout_bytes(t.round, t.high_qc.round), t.signature
                )
                for t in (a, b)
            )
            return ok and a.high_qc.round != b.high_qc.round
        return False

    def _timeout_duration(self) -> int:
        c = self.config
        return min(
            c.round_timeout_ms << min(self._backoff, 16), max(c.max_round_timeout_ms, c.round_timeout_ms)
        )

    # ------------------------------------------------------------------ lifecycle
    def start(self, now_ms: int) -> list[Action]:
        """(Re)build state from the stores and enter the current round."""
        actions: list[Action] = []
        if self.block_store.tip_height() < 0 and self.genesis.height == 0:
            self.block_store.append(self.genesis, None)
        tip_h = self.block_store.tip_height()
        tip = self.block_store.get_by_height(tip_h)
        assert tip is not None
        if self.block_store.get_by_height(self.genesis.height) != self.genesis:
            raise ConsensusError("block store holds another chain, or lacks this epoch's base block")
        self.committed = tip
        # evidence recorded in this epoch (an earlier epoch's never verifies in this one: its
        # messages are signed for their own epoch), in the blocks this store has
        for h in range(max(self.genesis.height, self.block_store.base_height()) + 1, tip_h + 1):
            b = self.block_store.get_by_height(h)
            assert b is not None
            self.onchain_evidence.update(e.key for e in b.evidence)
        self.safety = self.safety_store.load() or SafetyData()
        if self.safety.high_qc is not None and self.verify_qc(self.safety.high_qc):
            self.high_qc = self.safety.high_qc
        self.last_tc = self.safety.last_tc
        proof = self.block_store.proof(tip_h)
        if proof is not None and tip.epoch == self.epoch:
            self.blocks[proof.child.hash] = proof.child  # certified by proof.qc
            if proof.qc.round > self.high_qc.round:
                self.high_qc = proof.qc
        # the uncommitted chain to the high QC's block, kept with the safety data: after a
        # restart of every node nobody else has it, and the next leader must extend it
        parent: Block = tip
        for b in self.safety.pending_blocks:
            if b.height <= tip_h:
                continue
            if b.parent_hash != parent.hash or b.epoch != self.epoch or b.hash in self.blocks:
                if b.hash in self.blocks:
                    parent = self.blocks[b.hash]
                    continue
                break
            # executed again (as a proposal would be), so that its children can be checked
            draft = BlockDraft(parent, b.round, b.timestamp_ms, b.proposer, b.payload, b.evidence, b.epoch)
            if self.app.execute(draft) != b.state_root:
                break
            self.blocks[b.hash] = b
            parent = b
        self.started = True
        start_round = max(self.high_qc.round, self.last_tc.round if self.last_tc else 0) + 1
        # ask peers for anything committed while we were away
        for peer in self.validators:
            if peer != self.node_id:
                actions.append(Send(peer, SyncRequest(self.committed.height + 1)))
        self._enter_round(start_round, now_ms, actions, by_qc=True)
        return actions

    def on_timer(self, timer_id: str, now_ms: int) -> list[Action]:
        """Handle a timer set by a :class:`SetTimer` action."""
        actions: list[Action] = []
        if self.ended:
            return actions
        kind, _, arg = timer_id.partition(":")
        if kind == "round" and int(arg) == self.round:
            self._backoff += 1
            self._local_timeout(now_ms, actions)
            actions.append(SetTimer(f"round:{self.round}", now_ms + self._timeout_duration()))
            # a stuck round may mean we fell behind (e.g. missed the end of an epoch): ask one
            # peer, rotating, for committed blocks; it answers only if it has newer ones
            peers = [v for v in self.validators if v != self.node_id]
            if peers:
                actions.append(
                    Send(
                        peers[(self.round + self._backoff) % len(peers)],
                        SyncRequest(self.committed.height + 1),
                    )
                )
        elif kind == "propose" and int(arg) == self.round:
            self._try_propose(now_ms, actions)
        elif kind == "fetch":
            try:
                block_hash = bytes.fromhex(arg)
            except ValueError:
                return actions
            # still certified and still missing: ask every peer now
            if self._fetch_after.pop(block_hash, None) is not None and self.get_block(block_hash) is None:
                self._request(block_hash, None, now_ms, actions)
        elif kind == "sync":
            for h, t in list(self._requested.items()):
                if now_ms - t >= self.config.round_timeout_ms:
                    del self._requested[h]
        return actions

    def on_peer_connected(self, peer: str) -> list[Action]:
        """A link to ``peer`` (re)opened: send it the round's proposal, and this node's latest
        vote and timeout if they belong to this round or the one before.

        Messages sent while the link was down are lost. Without this, a partition that left
        no quorum heals only when the round timers fire again, and those have backed off to
        their longest while no round could end; with it, the timeouts of the stuck round meet
        as soon as the links are back, and the round ends at once. The links come back one by
        one, so the next leader's proposal may leave before some of them: it is passed on
        too, or that round would fail and cost a backed-off timeout (CometBFT's peers
        likewise send their round state, and the proposal they hold, to a peer that connects).
        """
        actions: list[Action] = []
        if not self.started or self.ended or peer == self.node_id or peer not in self._vset:
            return actions
        s = self.safety
        proposal = self._seen_proposal.get(self.leader(self.round), {}).get(self.round)
        if proposal is not None:  # signed by its leader: any node may pass it on
            actions.append(Send(peer, proposal))
        # also those of the round before: with the others', they form the certificate that
        # ended it, which the peer lacks if it was cut off when that round ended
        if s.last_vote is not None and s.last_vote.round >= self.round - 1:
            actions.append(Send(peer, s.last_vote))
        if s.last_timeout is not None and s.last_timeout.round >= self.round - 1:
            actions.append(Send(peer, s.last_timeout))
        return actions

    def on_message(self, sender: str, msg: Message, now_ms: int) -> list[Action]:
        """Handle one message from ``sender``; bad messages are dropped.

        Anyone may ask for blocks (observers and nodes joining catch up that way) and send
        them (responses are self-authenticating); the rest must come from a validator of
        this epoch. After the epoch ended, only requests for blocks are answered.
        """
        actions: list[Action] = []
        if isinstance(msg, SyncRequest):
            self._on_sync_request(sender, msg, actions)
            return actions
        if self.ended:
            if self._ending is not None and sender in self._vset and not isinstance(msg, SyncResponse):
                actions.append(Send(sender, self._ending))  # a straggler of this epoch: help it end
            return actions
        if isinstance(msg, SyncResponse):
            self._on_sync_response(sender, msg, now_ms, actions)
            return actions
        if sender not in self._vset:
            return actions
        if isinstance(msg, Proposal):
            self._on_proposal(sender, msg, now_ms, actions)
        elif isinstance(msg, Vote):
            self._on_vote(msg, now_ms, actions)
        elif isinstance(msg, Timeout):
            self._on_timeout(msg, now_ms, actions)
        elif isinstance(msg, EvidenceMsg):
            for ev in msg.evidence[:MAX_EVIDENCE_PER_BLOCK]:
                self._add_evidence(ev, now_ms, verified=False)
        return actions

    # ------------------------------------------------------------------ pacemaker
    def _enter_round(self, r: int, now: int, actions: list[Action], by_qc: bool) -> None:
        if r <= self.round:
            return
        self.round = r
        if by_qc:
            self._backoff = 0
        for old in [k for k in self._votes if k[0] < r - 2]:
            del self._votes[old]
        for old_r in [k for k in self._timeouts if k < r - 1]:
            del self._timeouts[old_r]
        self._qc_formed = {x for x in self._qc_formed if x >= r - 2}
        _forget_rounds_below(self._seen_vote, r - SEEN_ROUNDS_BEHIND)
        _forget_rounds_below(self._seen_timeout, r - SEEN_ROUNDS_BEHIND)
        _forget_rounds_below(self._seen_proposal, r - SEEN_ROUNDS_BEHIND)
        if r % 16 == 0:  # verified-certificate caches: recent rounds only
            keep = r - self.config.round_window
            self._qc_ok = {q for q in self._qc_ok if q.round >= keep or q == self.high_qc}
            self._tc_ok = {t for t in self._tc_ok if t.round >= keep}
        actions.append(SetTimer(f"round:{r}", now + self._timeout_duration()))
        ldr = self.leader(r)
        if ldr == self.node_id:
            self._try_propose(now, actions)
        else:
            pending = self._unrecorded_evidence()
            if pending:
                actions.append(Send(ldr, EvidenceMsg(tuple(pending))))

    def _process_qc(
        self, qc: QuorumCertificate, now: int, actions: list[Action], *, from_votes: bool = False
    ) -> None:
        """Record a verified QC: update high QC, apply the commit rule, advance the round.

        An unknown block is asked for at once, or after ``fetch_grace_ms`` when the QC was
        formed here from votes (its proposal is likely on its way)."""
        if qc.round > self.high_qc.round:
            self.high_qc = qc
        block = self.get_block(qc.block_hash)
        if block is None:
            pend = self._pending.setdefault(qc.block_hash, _Pending())
            if not pend.qcs:  # every QC of one block has its round: one is enough
                pend.qcs.append(qc)
            if from_votes and self.config.fetch_grace_ms > 0 and qc.block_hash not in self._requested:
                due = self._fetch_after.setdefault(qc.block_hash, now + self.config.fetch_grace_ms)
                actions.append(SetTimer(f"fetch:{qc.block_hash.hex()}", due))
            else:
                self._request(qc.block_hash, None, now, actions)
        else:
            final = self.commit_rule(block)
            if final is not None and final.height > self.committed.height:
                self._commit(final, CommitProof(block, qc), actions)
        self._enter_round(qc.round + 1, now, actions, by_qc=True)

    def commit_rule(self, certified: Block) -> Block | None:
        """The 2-chain rule: a QC for ``certified`` commits its parent when ``certified``
        directly extends it (``certified.round == parent.round + 1``); else nothing."""
        if certified.qc is None or certified.qc.round + 1 != certified.round:
            return None
        return self.get_block(certified.parent_hash)

    def _process_tc(self, tc: TimeoutCertificate, now: int, actions: list[Action]) -> None:
        if self.last_tc is None or tc.round > self.last_tc.round:
            self.last_tc = tc
        self._enter_round(tc.round + 1, now, actions, by_qc=False)

    # ------------------------------------------------------------------ commit
    def _commit(
        self, block: Block, proof: CommitProof, actions: list[Action], *, store_proof: bool = True
    ) -> None:
        """Commit ``block`` and its uncommitted ancestors; ``proof`` (that ``block`` or a
        descendant is committed) is stored with ``block`` unless ``store_proof`` is false."""
        chain: list[Block] = []
        cur: Block | None = block
        while cur is not None and cur.height > self.committed.height:
            chain.append(cur)
            cur = self.get_block(cur.parent_hash)
        if cur is None or cur.hash != self.committed.hash:
            self.conflicts.append(f"commit of {block.hash.hex()[:16]} does not extend committed tip")
            return
        ascending = list(reversed(chain))
        cut = next((i for i, b in enumerate(ascending) if self.app.ends_epoch(b)), None)
        if cut is not None:
            # the epoch ends at the first block that changes the validator set; the empty blocks
            # after it are not committed, they only join the proof that it is committed
            proof = CommitProof(proof.child, proof.qc, (*ascending[cut + 1 :], *proof.path))
            ascending = ascending[: cut + 1]
            block = ascending[-1]
        for b in ascending:
            top = b is block
            self.block_store.append(b, proof if top and store_proof else None)
            self.committed = b
            self.onchain_evidence.update(e.key for e in b.evidence)
            for e in b.evidence:
                self.pending_evidence.pop(e.key, None)
            self.app.on_commit(b)
            actions.append(Committed(b, proof))
        if cut is not None:
            self.ended = True
            # tell everyone: a node that has not seen the last QC could not finish the epoch
            self._ending = SyncResponse((block,), proof)
            actions.append(Broadcast(self._ending))
            actions.append(EpochEnded(block))
            return
        for h in [h for h, b in self.blocks.items() if b.height <= self.committed.height]:
            del self.blocks[h]
        for h, pend in list(self._pending.items()):
            pend.proposals = [(s, p) for s, p in pend.proposals if p.block.height > self.committed.height + 1]
            pend.qcs = [q for q in pend.qcs if q.round > self.committed.round]
            if not pend.proposals and not pend.qcs:
                del self._pending[h]

    # ------------------------------------------------------------------ proposing
    def _uncommitted_chain(self, tip: Block) -> list[Block]:
        out: list[Block] = []
        cur: Block | None = tip
        while cur is not None and cur.height > self.committed.height:
            out.append(cur)
            cur = self.blocks.get(cur.parent_hash)
        return out

    def _unrecorded_evidence(self, chain: Sequence[Block] = ()) -> list[Evidence]:
        in_chain = {e.key for b in chain for e in b.evidence}
        return [
            e
            for k, e in sorted(self.pending_evidence.items())
            if k not in self.onchain_evidence and k not in in_chain
        ][:MAX_EVIDENCE_PER_BLOCK]

    def _try_propose(self, now: int, actions: list[Action]) -> None:
        r = self.round
        if (
            not self.voting
            or self.ended
            or self.leader(r) != self.node_id
            or self.safety.highest_proposed_round >= r
        ):
            return
        tc: TimeoutCertificate | None = None
        if self.high_qc.round + 1 != r:
            if self.last_tc is None or self.last_tc.round + 1 != r:
                return
            tc = self.last_tc
        parent = self.get_block(self.high_qc.block_hash)
        if parent is None:
            if now >= self._fetch_after.get(self.high_qc.block_hash, now):
                self._request(self.high_qc.block_hash, None, now, actions)
            actions.append(SetTimer(f"propose:{r}", now + self.config.idle_poll_ms))
            return
        if parent.height < self.committed.height:
            return
        cfg = self.config
        if cfg.block_interval_ms and now < parent.timestamp_ms + cfg.block_interval_ms:
            actions.append(SetTimer(f"propose:{r}", parent.timestamp_ms + cfg.block_interval_ms))
            return
        chain = self._uncommitted_chain(parent)
        in_flight = {tx for b in chain for tx in b.payload}
        timestamp = max(now, parent.timestamp_ms)
        candidates = self.app.build_payload(parent, timestamp, cfg.max_txs, cfg.max_bytes)
        payload = [tx for tx in candidates if tx not in in_flight]
        evidence = self._unrecorded_evidence(chain)
        if any(self.app.ends_epoch(b) for b in chain):
            payload, evidence = [], []  # the epoch is ending: only empty blocks until it commits
        if not cfg.empty_blocks and not payload and not evidence:
            needs_commit = any(b.payload or b.evidence for b in chain)
            # the QC this block carries may be what commits the parent's parent here; the
            # others learn it only from this block, so propose it even when empty
            grand = self.get_block(parent.parent_hash)
            if (
                grand is not None
                and (grand.payload or grand.evidence)
                and grand.height >= self.committed.height
            ):
                needs_commit = True
            if not needs_commit:
                actions.append(SetTimer(f"propose:{r}", now + cfg.idle_poll_ms))
                return
        draft = BlockDraft(parent, r, timestamp, self.node_id, tuple(payload), tuple(evidence), self.epoch)
        state_root = self.app.execute(draft)
        if state_root is None:  # the application built a payload it cannot execute: skip it
            payload = []
            draft = replace(draft, payload=())
            state_root = self.app.execute(draft)
            if state_root is None:
                raise ConsensusError("the application cannot execute a block without transactions")
        block = Block(
            chain_id=cfg.chain_id,
            height=parent.height + 1,
            round=r,
            parent_hash=parent.hash,
            payload=tuple(payload),
            tx_root=self.app.tx_root(payload),
            state_root=state_root,
            timestamp_ms=timestamp,
            proposer=self.node_id,
            qc=self.high_qc,
            tc=tc,
            evidence=tuple(evidence),
            epoch=self.epoch,
        )
        self._save(highest_proposed_round=r)  # persisted before the proposal leaves
        proposal = Proposal(block, self.signer.sign(self._proposal_bytes(block.hash)))
        actions.append(Broadcast(proposal))
        self._on_proposal(self.node_id, proposal, now, actions)

    # ------------------------------------------------------------------ proposals
    def _admit(self, seen: dict[str, dict[int, _Signed]], author: str, r: int) -> bool:
        """Whether a message of ``author`` for round ``r`` may be kept: the round lies in the
        window ``[round - SEEN_ROUNDS_BEHIND, round + round_window]`` and, for a round above
        the current one, the author has fewer than ``max_future_per_sender`` of them."""
        cfg = self.config
        if not self.round - SEEN_ROUNDS_BEHIND <= r <= self.round + cfg.round_window:
            return False
        rounds = seen.get(author)
        if rounds is None or r in rounds or r <= self.round:
            return True
        return sum(1 for x in rounds if x > self.round) < cfg.max_future_per_sender

    def _check_equivocation(
        self, seen: dict[str, dict[int, _Signed]], author: str, r: int, msg: _Signed, kind: str, now: int
    ) -> bool:
        """Remember the first validly signed ``msg`` of ``author`` in round ``r``; a different
        one becomes evidence and is dropped (``False``). The same one again is ``True``."""
        rounds = seen.setdefault(author, {})
        prev = rounds.get(r)
        if prev is None:
            rounds[r] = msg
            return True
        if isinstance(msg, Proposal) and isinstance(prev, Proposal):
            differ = msg.block.hash != prev.block.hash
        elif isinstance(msg, Vote) and isinstance(prev, Vote):
            differ = msg.block_hash != prev.block_hash
        elif isinstance(msg, Timeout) and isinstance(prev, Timeout):
            differ = msg.high_qc.round != prev.high_qc.round
        else:  # pragma: no cover
            differ = False
        if not differ:
            return True
        a, b = sorted([_wire(prev), _wire(msg)])
        self._add_evidence(Evidence(kind, author, r, a, b), now, verified=True)
        return False

    def _add_evidence(self, ev: Evidence, now: int, verified: bool) -> None:
        if ev.key in self.pending_evidence or ev.key in self.onchain_evidence:
            return
        if any(k[1] == ev.author for k in self.pending_evidence):
            return  # one proof per author suffices to exclude it; more would only use memory
        if not verified and not self.verify_evidence(ev):
            return
        self.pending_evidence[ev.key] = ev
        self.evidence_found.append((now, ev))

    @staticmethod
    def round_follows_certificates(b: Block) -> bool:
        """The structural round rule: ``b.round == b.qc.round + 1``, or ``b`` carries a TC with
        ``tc.round + 1 == b.round``. Every block an honest leader proposes satisfies it, so
        every block of a committed chain does; anything else is refused before execution."""
        if b.qc is None:
            return False
        return b.round == b.qc.round + 1 or (b.tc is not None and b.tc.round + 1 == b.round)

    def _on_proposal(self, sender: str, p: Proposal, now: int, actions: list[Action]) -> None:
        b = p.block
        cfg = self.config
        if b.chain_id != cfg.chain_id or b.qc is None or b.proposer != self.leader(b.round):
            return
        if not self.round_follows_certificates(b) or b.parent_hash != b.qc.block_hash:
            return
        if not self.verifier.verify(b.proposer, self._proposal_bytes(b.hash), p.signature):
            return
        certified = self.verify_qc(b.qc) and (b.tc is None or self.verify_tc(b.tc))
        if certified:  # a valid QC/TC moves a lagging node forward before the window check
            self._process_qc(b.qc, now, actions)
            if b.tc is not None:
                self._process_tc(b.tc, now, actions)
        if not self._admit(self._seen_proposal, b.proposer, b.round):
            return
        if not self._check_equivocation(self._seen_proposal, b.proposer, b.round, p, "proposal", now):
            return  # a second block of this leader for this round: evidence; never executed
        if not certified or b.hash in self.blocks or b.height <= self.committed.height:
            return
        parent = self.get_block(b.parent_hash)
        if parent is None:
            pend = self._pending.setdefault(b.parent_hash, _Pending())
            if all(q.block.hash != b.hash for _, q in pend.proposals):
                pend.proposals.append((sender, p))
            self._request(b.parent_hash, sender, now, actions)
            return
        if not self._valid_block(b, parent, now):
            return
        self._insert(b, now, actions)
        self._maybe_vote(b, now, actions)

    def _valid_block(self, b: Block, parent: Block, now: int | None) -> bool:
        cfg = self.config
        qc = b.qc
        if not self.round_follows_certificates(b):
            return False  # before anything costs time: execution may be linear in the round gap
        if (
            qc is None
            or b.parent_hash != qc.block_hash
            or qc.round != parent.round
            or b.round <= parent.round
        ):
            return False
        if b.height != parent.height + 1 or b.timestamp_ms < parent.timestamp_ms or b.epoch != self.epoch:
            return False
        if now is not None and b.timestamp_ms > now + cfg.max_clock_drift_ms:
            return False
        if b.tc is not None and b.tc.round + 1 != b.round:
            return False
        if len(b.payload) > cfg.max_txs or sum(len(t) for t in b.payload) > cfg.max_bytes:
            return False
        if len(b.evidence) > MAX_EVIDENCE_PER_BLOCK:
            return False
        chain = self._uncommitted_chain(parent)
        seen = {e.key for c in chain for e in c.evidence} | self.onchain_evidence
        for e in b.evidence:
            if e.key in seen or not self.verify_evidence(e):
                return False
            seen.add(e.key)
        if (b.payload or b.evidence) and any(self.app.ends_epoch(c) for c in chain):
            return False  # nothing may ride on an epoch-ending block
        if b.tx_root != self.app.tx_root(b.payload) or not self.app.validate_payload(b.payload):
            return False
        draft = BlockDraft(parent, b.round, b.timestamp_ms, b.proposer, b.payload, b.evidence, b.epoch)
        return b.state_root == self.app.execute(draft)

    def _insert(self, b: Block, now: int, actions: list[Action]) -> None:
        self.blocks[b.hash] = b
        self._fetch_after.pop(b.hash, None)
        pend = self._pending.pop(b.hash, None)
        self._requested.pop(b.hash, None)
        if pend is None:
            return
        for qc in pend.qcs:
            self._process_qc(qc, now, actions)
        for sender, p in pend.proposals:
            self._on_proposal(sender, p, now, actions)

    def safe_to_vote(self, b: Block) -> bool:
        """DiemBFT v4 voting rule for block ``b`` in round ``b.round``."""
        assert b.qc is not None
        if b.round <= max(self.safety.highest_voted_round, b.qc.round):
            return False
        if b.qc.round + 1 == b.round:
            return True
        tc = b.tc
        return tc is not None and tc.round + 1 == b.round and b.qc.round >= tc.max_high_qc_round

    def _maybe_vote(self, b: Block, now: int, actions: list[Action]) -> None:
        if not self.voting or self.ended or b.round != self.round or not self.safe_to_vote(b):
            return
        assert b.qc is not None
        vote = Vote(
            self.node_id,
            b.round,
            b.hash,
            self.signer.sign(self._vote_bytes(b.round, b.hash)),
        )
        self._save(
            highest_voted_round=max(b.round, self.safety.highest_voted_round),
            highest_qc_round=max(b.qc.round, self.safety.highest_qc_round),
            last_vote=vote,
        )  # persisted before the vote leaves
        # every validator aggregates the votes: when the next leader is down, the others still
        # form the QC, so its round costs one timeout and this block is not lost
        actions.append(Broadcast(vote))
        self._collect_vote(vote, now, actions)

    # ------------------------------------------------------------------ votes
    def _on_vote(self, v: Vote, now: int, actions: list[Action]) -> None:
        if v.author not in self._vset or not self._admit(self._seen_vote, v.author, v.round):
            return
        msg = self._vote_bytes(v.round, v.block_hash)
        if not self.verifier.verify(v.author, msg, v.signature):
            return
        if not self._check_equivocation(self._seen_vote, v.author, v.round, v, "vote", now):
            return
        self._collect_vote(v, now, actions)

    def _collect_vote(self, v: Vote, now: int, actions: list[Action]) -> None:
        """Count a checked vote (or this node's own); a quorum forms the QC here."""
        if v.round < self.round - 1 or v.round in self._qc_formed:
            return
        votes = self._votes.setdefault((v.round, v.block_hash), {})
        votes[v.author] = v.signature
        if len(votes) >= self.quorum:
            self._qc_formed.add(v.round)
            qc = QuorumCertificate(v.round, v.block_hash, tuple(sorted(votes.items())))
            self._qc_ok.add(qc)
            self._process_qc(qc, now, actions, from_votes=True)

    # ------------------------------------------------------------------ timeouts
    def safe_to_timeout(self, r: int) -> bool:
        """DiemBFT v4 timeout rule for round ``r`` with the current high QC and last TC."""
        qc_round = self.high_qc.round
        if qc_round < self.safety.highest_qc_round or r <= max(self.safety.highest_voted_round - 1, qc_round):
            return False
        return qc_round + 1 == r or (self.last_tc is not None and self.last_tc.round + 1 == r)

    def _local_timeout(self, now: int, actions: list[Action]) -> None:
        if not self.voting or self.ended:
            return
        r = self.round
        last = self.safety.last_timeout
        if last is not None and last.round == r:
            t = last
        else:
            if not self.safe_to_timeout(r):
                return
            sig = self.signer.sign(self._timeout_bytes(r, self.high_qc.round))
            tc = self.last_tc if self.last_tc is not None and self.last_tc.round + 1 == r else None
            t = Timeout(self.node_id, r, self.high_qc, sig, tc)
            self._save(highest_voted_round=max(r, self.safety.highest_voted_round), last_timeout=t)
        actions.append(Broadcast(t))  # persisted above, before it leaves
        self._on_timeout(t, now, actions)

    def _on_timeout(self, t: Timeout, now: int, actions: list[Action]) -> None:
        if t.author not in self._vset or t.high_qc.round >= t.round or not self.verify_qc(t.high_qc):
            return
        # the certificates are self-authenticating: they move a lagging node forward first
        self._process_qc(t.high_qc, now, actions)
        if t.last_tc is not None and t.last_tc.round + 1 == t.round and self.verify_tc(t.last_tc):
            self._process_tc(t.last_tc, now, actions)
        if not self._admit(self._seen_timeout, t.author, t.round):
            return
        msg = self._timeout_bytes(t.round, t.high_qc.round)
        if not self.verifier.verify(t.author, msg, t.signature):
            return
        if not self._check_equivocation(self._seen_timeout, t.author, t.round, t, "timeout", now):
            return
        if t.round < self.round:
            return
        bucket = self._timeouts.setdefault(t.round, {})
        if t.author in bucket:
            return
        bucket[t.author] = t
        if (
            len(bucket) == self.f + 1
            and t.round == self.round
            and self.node_id not in bucket
            and not (self.safety.last_timeout is not None and self.safety.last_timeout.round == t.round)
        ):
            self._local_timeout(now, actions)  # Bracha-style join: f+1 timeouts mean the round is stuck
            return
        if len(bucket) >= self.quorum and (self.last_tc is None or self.last_tc.round < t.round):
            entries = tuple(sorted((a, x.high_qc.round, x.signature) for a, x in bucket.items()))
            tc = TimeoutCertificate(t.round, entries)
            self._tc_ok.add(tc)
            self._process_tc(tc, now, actions)

    # ------------------------------------------------------------------ sync
    def _request(self, block_hash: bytes, to: str | None, now: int, actions: list[Action]) -> None:
        self._fetch_after.pop(block_hash, None)
        if block_hash in self._requested:
            return
        self._requested[block_hash] = now
        req = SyncRequest(self.committed.height + 1, block_hash)
        if to is not None and to != self.node_id:
            actions.append(Send(to, req))
        else:
            actions.append(Broadcast(req))
        actions.append(SetTimer("sync", now + self.config.round_timeout_ms))

    def _on_sync_request(self, sender: str, req: SyncRequest, actions: list[Action]) -> None:
        batch = self.config.sync_batch
        if req.block_hash is not None:
            chain: list[Block] = []
            b = self.get_block(req.block_hash)
            while b is not None and b.height >= max(req.from_height, 1) and len(chain) < batch:
                chain.append(b)
                b = self.get_block(b.parent_hash)
            if chain:
                actions.append(Send(sender, SyncResponse(tuple(reversed(chain)), None, req.block_hash)))
            return
        tip = self.committed.height
        if req.from_height > tip:
            return
        blocks: list[Block] = []
        proof: CommitProof | None = None
        best: tuple[int, CommitProof] | None = None  # the longest prefix that ends with a proof
        size = 0
        for h in range(req.from_height, tip + 1):
            b = self.block_store.get_by_height(h)
            if b is None:
                return
            if blocks and b.epoch != blocks[0].epoch:
                break  # one epoch per response: its last block carries the proof its signers made
            size += 512 + sum(len(t) for t in b.payload)
            if best is not None and size > self.config.sync_bytes:
                break  # enough for one message: send up to the last proof
            blocks.append(b)
            proof = self.block_store.proof(h)
            if proof is not None:
                best = (len(blocks), proof)
                if len(blocks) >= batch:
                    break
        if best is not None:
            actions.append(Send(sender, SyncResponse(tuple(blocks[: best[0]]), best[1])))

    def _on_sync_response(self, sender: str, resp: SyncResponse, now: int, actions: list[Action]) -> None:
        blocks = resp.blocks
        if not blocks or not _linked(blocks):
            return
        if resp.proof is not None:
            self._on_committed_sync(sender, blocks, resp.proof, now, actions)
            return
        if resp.requested_hash is None or resp.requested_hash not in self._requested:
            return
        if blocks[-1].hash != resp.requested_hash:
            return
        # blocks are authentic: they hash-link to a hash taken from a verified QC/proposal
        self._requested.pop(resp.requested_hash, None)
        first = next((i for i, b in enumerate(blocks) if self.get_block(b.parent_hash) is not None), None)
        if first is None:
            return  # does not reach a known block; a later request will ask again
        for b in blocks[first:]:
            if self.get_block(b.hash) is not None:
                continue
            parent = self.get_block(b.parent_hash)
            if parent is None or b.qc is None or not self.verify_qc(b.qc):
                return
            if b.tc is not None and not self.verify_tc(b.tc):
                return
            if b.height <= self.committed.height or not self._valid_block(b, parent, None):
                return
            self._insert(b, now, actions)
            self._process_qc(b.qc, now, actions)

    def _on_committed_sync(
        self, sender: str, blocks: Sequence[Block], proof: CommitProof, now: int, actions: list[Action]
    ) -> None:
        last = blocks[-1]
        child, qc = proof.child, proof.qc
        if not self._proof_certifies(last, proof):
            return
        todo = [b for b in blocks if b.height > self.committed.height]
        if not todo:
            return
        if todo[0].parent_hash != self.committed.hash:
            if todo[0].height > self.committed.height + 1:  # a gap: ask this peer for what we miss
                actions.append(Send(sender, SyncRequest(self.committed.height + 1)))
            return
        parent = self.committed
        for b in todo:
            if not self._valid_block(b, parent, None):
                return
            self.blocks[b.hash] = b
            parent = b
            if b is not last and not self.app.ends_epoch(b):
                # committed by the proof of ``last``, its descendant: applied at once, so that
                # the next block executes on the state, not on the pending changes of every
                # block before it in this response (a state root over all of them each time)
                self._commit(b, proof, actions, store_proof=False)
        self._commit(last, proof, actions)
        if self.ended or proof.path:
            return
        if child.hash not in self.blocks:
            self._insert(child, now, actions)
        self._process_qc(qc, now, actions)

    def _proof_certifies(self, last: Block, proof: CommitProof) -> bool:
        """Whether ``proof`` shows ``last`` committed: ``last``, the proof's path and its
        child hash-link, the child's QC certifies its parent in the round before, and the
        proof's QC certifies the child (the two-chain commit rule); both QCs valid."""
        child, qc = proof.child, proof.qc
        links = [last, *proof.path, child]
        if not _linked(links):
            return False
        certified = links[-2]
        if child.qc is None or child.qc.block_hash != certified.hash:
            return False
        if child.qc.round + 1 != child.round or child.qc.round != certified.round:
            return False
        if qc.block_hash != child.hash:
            return False
        return self.verify_qc(qc) and self.verify_qc(child.qc)


def _linked(blocks: Sequence[Block]) -> bool:
    """Whether each block of ``blocks`` is the parent of the next."""
    return all(blocks[i].parent_hash == blocks[i - 1].hash for i in range(1, len(blocks)))


_Signed = TypeVar("_Signed", Proposal, Vote, Timeout)


def _forget_rounds_below(seen: dict[str, dict[int, _Signed]], low: int) -> None:
    for author, rounds in list(seen.items()):
        for r in [r for r in rounds if r < low]:
            del rounds[r]
        if not rounds:
            del seen[author]


def _wire(msg: Proposal | Vote | Timeout) -> bytes:
    if isinstance(msg, Timeout):
        msg = replace(msg, last_tc=None)
    return encode_message(msg)
