"""A Byzantine validator for tests: the honest protocol plus deliberate misbehaviour.

:class:`ByzantineCore` runs the honest :class:`~chain.consensus.core.ConsensusCore` (so it
follows rounds, knows the high QC and proposes in its turns) and rewrites what it sends:

* **equivocating leader** – in its rounds it proposes two different blocks (the second one
  a millisecond later), one to each half of the other validators; now and then one node
  gets both (which is equivocation evidence);
* **withheld votes** – drops its own votes with probability ``withhold_votes``;
* **far-future rounds** – proposals for a round ``2^40`` above the current one (without a
  TC, or with a forged one), and validly signed votes and timeouts for such rounds;
* **vote and timeout spam** – validly signed votes (random block hashes) and timeouts for
  many rounds above the current one;
* **invalid certificates** – QCs and TCs with too few signatures, wrong signatures,
  duplicated signers or unknown signers, inside proposals and timeouts;
* **outsiders** – votes, timeouts and proposals signed by keys outside the validator set
  (unknown nodes, or revoked ones: pass their signers as ``outsiders``).

Every attack is drawn from a seeded :class:`random.Random`, so a simulator run replays.
Use it in the simulator (``make_scenario(seed, byzantine=True)``) or over full replicas by
wrapping a replica's core with :func:`corrupt`.

Examples
--------
>>> from chain.consensus.core import MemoryBlockStore, MemorySafetyStore
>>> from chain.consensus.crypto import SimPki
>>> from chain.consensus.simulator import Members, SimApp
>>> pki = SimPki(["v0", "v1", "v2", "v3"])
>>> core = ByzantineCore("v0", ["v0", "v1", "v2", "v3"], pki.signer("v0"), pki.verifier(),
...                      MemorySafetyStore(), MemoryBlockStore(), SimApp(Members({})))
>>> sent = core.start(0)
>>> core.attacks["far-future"] >= 1
True
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from chain.consensus.core import (
    Action,
    Application,
    BlockDraft,
    BlockStore,
    Broadcast,
    ConsensusConfig,
    ConsensusCore,
    SafetyStore,
    Send,
)
from chain.consensus.crypto import Signer, SimPki, Verifier
from chain.consensus.messages import (
    Block,
    Message,
    Proposal,
    QuorumCertificate,
    Timeout,
    TimeoutCertificate,
    Vote,
    proposal_signing_bytes,
    timeout_signing_bytes,
    vote_signing_bytes,
)

__all__ = ["FAR_FUTURE", "ByzantineCore", "Misbehaviour", "corrupt"]

FAR_FUTURE = 1 << 40
"""How far above the current round the far-future attacks go."""

FORGERIES = ("too-few", "wrong-signatures", "duplicated-signers", "unknown-signers")


@dataclass(frozen=True)
class Misbehaviour:
    """Which attacks a :class:`ByzantineCore` mounts (all on by default)."""

    equivocate: bool = True
    withhold_votes: float = 0.5
    far_future: bool = True
    spam: int = 4
    """Votes and as many timeouts for rounds above the current one, per round entered."""
    forge_certificates: bool = True
    outsiders: bool = True


class ByzantineCore(ConsensusCore):
    """The honest core, whose outgoing messages are rewritten by a :class:`Misbehaviour`.

    ``attacks`` counts what it did, by kind. ``outsiders`` sign messages under ids that are
    not validators of this epoch (unknown or revoked nodes); without any, one random
    outsider key is made up (its signatures verify under no known key).
    """

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
        *,
        misbehaviour: Misbehaviour | None = None,
        seed: int = 0,
        outsiders: Sequence[Signer] = (),
    ) -> None:
        super().__init__(node_id, validators, signer, verifier, safety_store, block_store, app, config, base)
        self.misbehaviour = misbehaviour or Misbehaviour()
        self.rng = random.Random(seed)
        self.outsiders = [s for s in outsiders if s.node_id not in self.validators]
        self.attacks: Counter[str] = Counter()
        self._attacked_round = -1

    # ------------------------------------------------------------------ entry points
    def start(self, now_ms: int) -> list[Action]:
        return self._misbehave(super().start(now_ms), now_ms)

    def on_message(self, sender: str, msg: Message, now_ms: int) -> list[Action]:
        return self._misbehave(super().on_message(sender, msg, now_ms), now_ms)

    def on_timer(self, timer_id: str, now_ms: int) -> list[Action]:
        return self._misbehave(super().on_timer(timer_id, now_ms), now_ms)

    # ------------------------------------------------------------------ rewriting
    def _others(self) -> list[str]:
        return [v for v in self.validators if v != self.node_id]

    def _misbehave(self, actions: list[Action], now: int) -> list[Action]:
        if not self.voting or self.ended:
            return actions
        mb = self.misbehaviour
        out: list[Action] = []
        for a in actions:
            msg = getattr(a, "msg", None)
            mine = isinstance(msg, Proposal) and msg.block.proposer == self.node_id
            if isinstance(a, Broadcast) and isinstance(msg, Proposal) and mine and mb.equivocate:
                out.extend(self._equivocate(msg, now))
                continue
            vote = isinstance(a, (Send, Broadcast)) and isinstance(msg, Vote)
            if vote and self.rng.random() < mb.withhold_votes:
                self.attacks["withheld-vote"] += 1
                continue
            out.append(a)
        if self.round != self._attacked_round:
            self._attacked_round = self.round
            out.extend(self._attacks(now))
        return out

    def _equivocate(self, first: Proposal, now: int) -> list[Action]:
        """Two blocks for one round: ``first`` to one half, a sibling to the other half."""
        b = first.block
        parent = self.get_block(b.parent_hash)
        if parent is None:
            return [Broadcast(first)]
        draft = BlockDraft(parent, b.round, b.timestamp_ms + 1, b.proposer, b.payload, b.evidence, b.epoch)
        root = self.app.execute(draft)
        if root is None:
            return [Broadcast(first)]
        second = replace(b, timestamp_ms=b.timestamp_ms + 1, state_root=root)
        other = Proposal(second, self.signer.sign(self._proposal_bytes(second.hash)))
        others = self._others()
        self.rng.shuffle(others)
        half = len(others) // 2
        out: list[Action] = [Send(v, first) for v in others[:half]]
        out += [Send(v, other) for v in others[half:]]
        if others and self.rng.random() < 0.3:
            out.append(Send(others[-1], first))  # one node sees both: evidence
        self.attacks["equivocation"] += 1
        return out

    # ------------------------------------------------------------------ attacks
    def _attacks(self, now: int) -> list[Action]:
        mb = self.misbehaviour
        out: list[Action] = []
        if mb.far_future:
            out += self._far_future(now)
        for _ in range(mb.spam):
            out += self._spam()
        if mb.forge_certificates:
            out += self._forged(now)
        if mb.outsiders:
            out += self._from_outsiders(now)
        return out

    def _own_round(self, at_least: int) -> int:
        """The first round ``>= at_least`` that this node leads."""
        me = self.validators.index(self.node_id)
        return at_least + (me - at_least) % self.n

    def _block(self, round: int, qc: QuorumCertificate, tc: TimeoutCertificate | None, now: int) -> Block:
        """A well-formed block on top of ``qc``'s block (or the committed tip), never executed."""
        parent = self.get_block(qc.block_hash) or self.committed
        return Block(
            chain_id=self.config.chain_id,
            height=parent.height + 1,
            round=round,
            parent_hash=qc.block_hash,
            payload=(),
            tx_root=self.app.tx_root(()),
            state_root=self.rng.randbytes(32),
            timestamp_ms=max(now, parent.timestamp_ms),
            proposer=self.node_id,
            qc=qc,
            tc=tc,
            epoch=self.epoch,
        )

    def _propose(self, block: Block) -> Broadcast:
        return Broadcast(Proposal(block, self.signer.sign(self._proposal_bytes(block.hash))))

    def _vote(self, round: int, block_hash: bytes) -> Vote:
        return Vote(self.node_id, round, block_hash, self.signer.sign(self._vote_bytes(round, block_hash)))

    def _timeout(self, round: int, tc: TimeoutCertificate | None = None) -> Timeout:
        qc = self.high_qc
        return Timeout(self.node_id, round, qc, self.signer.sign(self._timeout_bytes(round, qc.round)), tc)

    def _far_future(self, now: int) -> list[Action]:
        far = self._own_round(self.round + FAR_FUTURE)
        self.attacks["far-future"] += 1
        out: list[Action] = [self._propose(self._block(far, self.high_qc, None, now))]
        if self.rng.random() < 0.5:  # with a TC for the round before, forged
            tc = self._forged_tc(far - 1, self.rng.choice(FORGERIES))
            out.append(self._propose(self._block(far, self.high_qc, tc, now)))
        out.append(Broadcast(self._vote(far, self.rng.randbytes(32))))
        out.append(Broadcast(self._timeout(far)))
        return out

    def _spam(self) -> list[Action]:
        window = self.config.round_window
        r = self.round + 1 + self.rng.randrange(3 * window)
        self.attacks["spam"] += 2
        return [Broadcast(self._vote(r, self.rng.randbytes(32))), Broadcast(self._timeout(r))]

    def _unknown(self, message: bytes, count: int) -> list[tuple[str, bytes]]:
        """``count`` (id, signature) pairs of non-validators: outsiders' real signatures first,
        then made-up ids with random bytes."""
        pairs = [(s.node_id, s.sign(message)) for s in self._outsider_signers()][:count]
        pairs += [(f"unknown-{i}", self.rng.randbytes(64)) for i in range(count - len(pairs))]
        return pairs

    def _forged_qc(self, round: int, block_hash: bytes, how: str) -> QuorumCertificate:
        msg = self._vote_bytes(round, block_hash)
        mine = self.signer.sign(msg)
        q = self.quorum
        if how == "too-few":
            sigs = [(self.node_id, mine)]
        elif how == "wrong-signatures":  # its own signature under other validators' names
            sigs = [(self.node_id, mine)] + [(v, mine) for v in self._others()[: q - 1]]
        elif how == "duplicated-signers":
            sigs = [(self.node_id, mine)] * q
        else:
            sigs = [(self.node_id, mine), *self._unknown(msg, q - 1)]
        return QuorumCertificate(round, block_hash, tuple(sorted(sigs)))

    def _forged_tc(self, round: int, how: str) -> TimeoutCertificate:
        hq = min(self.high_qc.round, max(round - 1, 0))
        msg = self._timeout_bytes(round, hq)
        mine = self.signer.sign(msg)
        q = self.quorum
        if how == "too-few":
            entries = [(self.node_id, hq, mine)]
        elif how == "wrong-signatures":
            entries = [(self.node_id, hq, mine)] + [(v, hq, mine) for v in self._others()[: q - 1]]
        elif how == "duplicated-signers":
            entries = [(self.node_id, hq, mine)] * q
        else:
            entries = [(self.node_id, hq, mine)] + [(a, hq, sig) for a, sig in self._unknown(msg, q - 1)]
        return TimeoutCertificate(round, tuple(sorted(entries)))

    def _forged(self, now: int) -> list[Action]:
        how = self.rng.choice(FORGERIES)
        self.attacks[f"forged-{how}"] += 1
        # a proposal in one of its own rounds whose QC (or TC) is forged
        r = self._own_round(self.round + 1 + self.rng.randrange(2) * self.n)
        target = self.high_qc.block_hash
        if self.rng.random() < 0.5:
            qc = self._forged_qc(r - 1, target, how)
            proposal = self._propose(self._block(r, qc, None, now))
        else:
            proposal = self._propose(self._block(r, self.high_qc, self._forged_tc(r - 1, how), now))
        # a timeout of the current round with a forged high QC, and one with a forged last TC
        qc = self._forged_qc(max(self.round - 1, 0), target, how)
        bad_qc = Timeout(
            self.node_id, self.round, qc, self.signer.sign(self._timeout_bytes(self.round, qc.round))
        )
        bad_tc = self._timeout(self.round, self._forged_tc(self.round - 1, how))
        return [proposal, Broadcast(bad_qc), Broadcast(bad_tc)]

    def _outsider_signers(self) -> list[Signer]:
        if not self.outsiders:
            self.outsiders = [SimPki(["outsider"]).signer("outsider")]
        return list(self.outsiders)

    def _from_outsiders(self, now: int) -> list[Action]:
        cfg = self.config
        out: list[Action] = []
        for s in self._outsider_signers():
            r = self.round
            h = self.high_qc.block_hash
            vote_sig = s.sign(vote_signing_bytes(cfg.chain_id, cfg.genesis_hash, r, h, self.epoch))
            out.append(Send(self.leader(r + 1), Vote(s.node_id, r, h, vote_sig)))
            qc = self.high_qc
            t_sig = s.sign(timeout_signing_bytes(cfg.chain_id, cfg.genesis_hash, r, qc.round, self.epoch))
            out.append(Broadcast(Timeout(s.node_id, r, qc, t_sig)))
            block = replace(self._block(r, qc, None, now), proposer=s.node_id)
            p_sig = s.sign(proposal_signing_bytes(cfg.chain_id, cfg.genesis_hash, block.hash, self.epoch))
            out.append(Broadcast(Proposal(block, p_sig)))
            self.attacks["outsider"] += 3
        return out


def corrupt(
    core: ConsensusCore,
    misbehaviour: Misbehaviour | None = None,
    seed: int = 0,
    outsiders: Sequence[Signer] = (),
) -> ByzantineCore:
    """A :class:`ByzantineCore` with ``core``'s identity, key, stores and application.

    Call its ``start`` (the stores keep the honest state: it never double-signs through the
    honest path, only through its attacks).
    """
    signer = core._signer
    return ByzantineCore(
        core.node_id,
        core.validators,
        signer,
        core.verifier,
        core.safety_store,
        core.block_store,
        core.app,
        core.config,
        core.genesis,
        misbehaviour=misbehaviour,
        seed=seed,
        outsiders=outsiders,
    )
