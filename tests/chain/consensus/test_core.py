"""Unit tests of the consensus core: certificates, safety rules, restart, commit rule."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Sequence
from dataclasses import replace

import pytest

from chain.consensus.core import (
    Action,
    BlockDraft,
    Broadcast,
    Committed,
    ConsensusConfig,
    ConsensusCore,
    MemoryBlockStore,
    MemorySafetyStore,
    Send,
    SetTimer,
    quorum_size,
)
from chain.consensus.crypto import SimPki, Sm2Signer, Sm2Verifier
from chain.consensus.messages import (
    Block,
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
    proposal_signing_bytes,
    timeout_signing_bytes,
    vote_signing_bytes,
)
from chain.crypto import PrivateKey
from chain.crypto.sm3 import sm3

IDS = ["v0", "v1", "v2", "v3"]
CFG = ConsensusConfig(chain_id="test")


class App:
    def build_payload(self, parent: Block, timestamp_ms: int, max_txs: int, max_bytes: int) -> list[bytes]:
        return []

    def validate_payload(self, payload: Sequence[bytes]) -> bool:
        return all(not tx.startswith(b"bad") for tx in payload)

    def execute(self, draft: BlockDraft) -> bytes | None:
        return sm3(draft.parent.state_root + self.tx_root(draft.payload))

    def ends_epoch(self, block: Block) -> bool:
        return False

    def tx_root(self, payload: Sequence[bytes]) -> bytes:
        return sm3(b"".join(payload))

    def on_commit(self, block: Block) -> None:
        pass


class Net:
    """Four cores on one PKI with helpers to forge well-formed messages."""

    def __init__(self) -> None:
        self.pki = SimPki(IDS)
        self.safety = {i: MemorySafetyStore() for i in IDS}
        self.stores = {i: MemoryBlockStore() for i in IDS}
        self.cores = {i: self.make_core(i) for i in IDS}

    def make_core(self, i: str) -> ConsensusCore:
        return ConsensusCore(
            i, IDS, self.pki.signer(i), self.pki.verifier(), self.safety[i], self.stores[i], App(), CFG
        )

    def qc(
        self, round: int, block_hash: bytes, signers: Sequence[str] = ("v0", "v1", "v2")
    ) -> QuorumCertificate:
        msg = vote_signing_bytes("test", CFG.genesis_hash, round, block_hash)
        return QuorumCertificate(round, block_hash, tuple((a, self.pki.signer(a).sign(msg)) for a in signers))

    def tc(self, round: int, hqc_rounds: dict[str, int]) -> TimeoutCertificate:
        return TimeoutCertificate(
            round,
            tuple(
                (a, q, self.pki.signer(a).sign(timeout_signing_bytes("test", CFG.genesis_hash, round, q)))
                for a, q in sorted(hqc_rounds.items())
            ),
        )

    def block(
        self,
        parent: Block,
        round: int,
        qc: QuorumCertificate,
        tc: TimeoutCertificate | None = None,
        payload: tuple[bytes, ...] = (),
        ts: int = 0,
    ) -> Block:
        app = App()
        state_root = app.execute(
            BlockDraft(parent, round, max(ts, parent.timestamp_ms), IDS[round % 4], payload, (), 0)
        )
        assert state_root is not None
        return Block(
            "test",
            parent.height + 1,
            round,
            parent.hash,
            payload,
            app.tx_root(payload),
            state_root,
            max(ts, parent.timestamp_ms),
            IDS[round % 4],
            qc,
            tc,
        )

    def proposal(self, b: Block) -> Proposal:
        return Proposal(
            b, self.pki.signer(b.proposer).sign(proposal_signing_bytes("test", CFG.genesis_hash, b.hash))
        )


def votes(actions: list[Action]) -> list[Vote]:
    return [a.msg for a in actions if isinstance(a, (Send, Broadcast)) and isinstance(a.msg, Vote)]


@pytest.fixture
def net() -> Net:
    n = Net()
    for c in n.cores.values():
        c.start(0)
    return n


def test_quorum_size() -> None:
    assert [quorum_size(n) for n in (1, 4, 5, 6, 7, 10)] == [1, 3, 4, 4, 5, 7]


def test_qc_verification(net: Net) -> None:
    core = net.cores["v3"]
    h = core.genesis.hash
    assert core.verify_qc(net.qc(1, h))
    assert core.verify_qc(QuorumCertificate(0, h, ()))  # genesis convention
    assert not core.verify_qc(QuorumCertificate(0, b"\x01" * 32, ()))
    good = net.qc(2, h)
    forged = QuorumCertificate(2, h, (*good.signatures[:2], ("v2", b"\x00" * 32)))
    assert not core.verify_qc(forged)
    dup = QuorumCertificate(2, h, (good.signatures[0], good.signatures[0], good.signatures[1]))
    assert not core.verify_qc(dup)
    assert not core.verify_qc(QuorumCertificate(2, h, good.signatures[:2]))  # insufficient
    pki2 = SimPki(["mallory"])
    unknown = QuorumCertificate(
        2,
        h,
        (
            *good.signatures[:2],
            ("mallory", pki2.signer("mallory").sign(vote_signing_bytes("test", CFG.genesis_hash, 2, h))),
        ),
    )
    assert not core.verify_qc(unknown)
    # signature for another round/block does not transfer
    assert not core.verify_qc(QuorumCertificate(3, h, good.signatures))


def test_tc_verification(net: Net) -> None:
    core = net.cores["v3"]
    tc = net.tc(5, {"v0": 3, "v1": 4, "v2": 2})
    assert core.verify_tc(tc)
    assert tc.max_high_qc_round == 4
    assert not core.verify_tc(TimeoutCertificate(5, tc.entries[:2]))
    assert not core.verify_tc(TimeoutCertificate(5, (tc.entries[0], tc.entries[0], tc.entries[1])))
    lying = TimeoutCertificate(5, (("v0", 1, tc.entries[0][2]), *tc.entries[1:]))
    assert not core.verify_tc(lying)


def test_no_double_vote_in_a_round(net: Net) -> None:
    core = net.cores["v3"]
    g = core.genesis
    b1 = net.block(g, 1, net.qc(0, g.hash, ()), payload=(b"a",))
    b2 = net.block(g, 1, net.qc(0, g.hash, ()), payload=(b"b",))
    first = core.on_message("v1", net.proposal(b1), 1)
    assert [v.block_hash for v in votes(first)] == [b1.hash]
    assert votes(core.on_message("v1", net.proposal(b2), 2)) == []
    # the second signed proposal is equivocation evidence
    assert ("proposal", "v1", 1) in core.pending_evidence
    ev = core.pending_evidence[("proposal", "v1", 1)]
    assert core.verify_evidence(ev)
    assert net.cores["v0"].verify_evidence(ev)


def test_vote_requires_consecutive_qc_or_safe_tc(net: Net) -> None:
    core = net.cores["v0"]
    g = core.genesis
    gqc = QuorumCertificate(0, g.hash, ())
    # round 4 block on the genesis QC without a TC: not consecutive -> no vote
    b = net.block(g, 4, gqc)
    core.on_message("v0", net.proposal(net.block(g, 3, gqc, tc=net.tc(2, {"v1": 0, "v2": 0, "v3": 0}))), 1)
    assert votes(core.on_message("v0", net.proposal(b), 1)) == []
    # a TC for round 3 whose highest QC round (2) is above the block's QC (0): no vote
    b1 = net.block(g, 1, gqc)
    core2 = net.cores["v2"]
    core2.on_message("v1", net.proposal(b1), 1)
    tc_locked = net.tc(3, {"v1": 1, "v2": 0, "v3": 0})
    b4 = net.block(g, 4, gqc, tc=tc_locked)
    acts = core2.on_message("v0", net.proposal(b4), 2)
    assert core2.round == 4 and votes(acts) == []
    # a TC whose high QC rounds are all <= the block's QC round: vote
    core3 = net.cores["v3"]
    tc_ok = net.tc(3, {"v1": 0, "v2": 0, "v0": 0})
    b4b = net.block(g, 4, gqc, tc=tc_ok, payload=(b"x",))
    assert [v.round for v in votes(core3.on_message("v0", net.proposal(b4b), 2))] == [4]


def test_invalid_payload_and_state_root_rejected(net: Net) -> None:
    core = net.cores["v3"]
    g = core.genesis
    gqc = QuorumCertificate(0, g.hash, ())
    assert votes(core.on_message("v1", net.proposal(net.block(g, 1, gqc, payload=(b"bad",))), 1)) == []
    b = net.block(g, 1, gqc)
    wrong = replace(b, state_root=b"\x07" * 32)
    assert votes(core.on_message("v1", net.proposal(wrong), 1)) == []
    forged = Proposal(b, b"\x00" * 32)
    assert votes(core.on_message("v1", forged, 1)) == []


def test_restart_does_not_double_vote(net: Net) -> None:
    core = net.cores["v3"]
    g = core.genesis
    gqc = QuorumCertificate(0, g.hash, ())
    b1 = net.block(g, 1, gqc, payload=(b"a",))
    assert len(votes(core.on_message("v1", net.proposal(b1), 1))) == 1
    assert net.safety["v3"].load() is not None  # persisted before the vote was returned
    restarted = net.make_core("v3")
    restarted.start(5)
    assert restarted.round == 1
    b2 = net.block(g, 1, gqc, payload=(b"b",))
    assert votes(restarted.on_message("v1", net.proposal(b2), 6)) == []
    assert votes(restarted.on_message("v1", net.proposal(b1), 6)) == []
    # a timeout after restart reuses nothing unsafe: it is for round 1 and sets no new vote
    acts = restarted.on_timer("round:1", 10_000)
    tmo = [a.msg for a in acts if isinstance(a, Broadcast) and isinstance(a.msg, Timeout)]
    assert len(tmo) == 1 and tmo[0].round == 1
    again = net.make_core("v3")
    again.start(20_000)
    acts = again.on_timer("round:1", 30_000)
    tmo2 = [a.msg for a in acts if isinstance(a, Broadcast) and isinstance(a.msg, Timeout)]
    assert tmo2 == tmo  # the same persisted timeout is re-sent, never a different one


def run_net(
    cores: dict[str, ConsensusCore],
    rounds: int,
    drop_to: str | None = None,
    started: list[tuple[str, list[Action]]] | None = None,
) -> dict[str, list[Committed]]:
    """Synchronous FIFO network, no timers; returns commits per node.

    The cores are started here, unless ``started`` gives the actions of their ``start``.
    """
    q: deque[tuple[str, str, Message]] = deque()
    commits: dict[str, list[Committed]] = {i: [] for i in cores}

    def apply(src: str, acts: list[Action]) -> None:
        for a in acts:
            if isinstance(a, Send) and a.to != drop_to:
                q.append((src, a.to, a.msg))
            elif isinstance(a, Broadcast):
                q.extend((src, d, a.msg) for d in cores if d not in (src, drop_to))
            elif isinstance(a, Committed):
                commits[src].append(a)

    for i, acts in started if started is not None else [(i, c.start(0)) for i, c in cores.items()]:
        apply(i, acts)
    steps = 0
    while q and steps < 20_000 and min(c.round for c in cores.values()) < rounds:
        src, dst, msg = q.popleft()
        apply(dst, cores[dst].on_message(src, msg, steps))
        steps += 1
    return commits


def test_commit_rule_and_agreement() -> None:
    net = Net()
    commits = run_net(net.cores, 12)
    chains = {i: [c.block.hash for c in cs] for i, cs in commits.items()}
    longest = max(chains.values(), key=len)
    assert len(longest) >= 8
    for ch in chains.values():
        assert ch == longest[: len(ch)]
    for cs in commits.values():
        for c in cs:
            assert c.proof is not None
            # 2-chain: the proof's child directly follows a committed ancestor's round
            assert c.proof.child.qc is not None and c.proof.child.qc.round + 1 == c.proof.child.round
            assert c.proof.qc.block_hash == c.proof.child.hash
    heights = [c.block.height for c in commits["v0"]]
    assert heights == list(range(1, len(heights) + 1))


def test_no_commit_without_consecutive_rounds(net: Net) -> None:
    # not v3: it leads round 3 and would propose its own block there, and a second block of
    # one leader for one round is only evidence, never executed
    core = net.cores["v2"]
    g = core.genesis
    gqc = QuorumCertificate(0, g.hash, ())
    b1 = net.block(g, 1, gqc)
    core.on_message("v1", net.proposal(b1), 1)
    # b3 extends b1 with a gap (round 3 after a TC for round 2)
    tc2 = net.tc(2, {"v0": 1, "v1": 1, "v2": 0})
    b3 = net.block(b1, 3, net.qc(1, b1.hash), tc=tc2)
    core.on_message("v3", net.proposal(b3), 2)
    acts = core.on_message("v0", net.proposal(net.block(b3, 4, net.qc(3, b3.hash))), 3)
    # QC(b3) certifies b3, whose parent b1 is at round 1 != 3 - 1: b1 not committed by it
    committed = [a.block for a in acts if isinstance(a, Committed)]
    assert b1 not in committed
    b5 = net.block(
        net.block(b3, 4, net.qc(3, b3.hash)), 5, net.qc(4, net.block(b3, 4, net.qc(3, b3.hash)).hash)
    )
    acts = core.on_message("v1", net.proposal(b5), 4)
    hashes = [a.block.hash for a in acts if isinstance(a, Committed)]
    assert hashes == [b1.hash, b3.hash]  # b3 <- b4 consecutive: b3 and its ancestor b1 commit


def lagging_core() -> tuple[ConsensusCore, ConsensusCore]:
    """After ten rounds, v3 restarted with empty stores (it lost its disk; same key), and
    the core of v0, which holds the chain."""
    net = Net()
    run_net(net.cores, 10)
    net.safety["v3"], net.stores["v3"] = MemorySafetyStore(), MemoryBlockStore()
    lag = net.make_core("v3")
    lag.start(0)
    return lag, net.cores["v0"]


def test_committed_sync_responses_respect_the_byte_budget() -> None:
    lag, leader = lagging_core()
    full = next(a.msg for a in leader.on_message("v3", SyncRequest(1), 0) if isinstance(a, Send))
    leader.config = dataclasses.replace(leader.config, sync_bytes=1)  # every header is over budget
    responses = 0
    while lag.committed.height < full.blocks[-1].height:
        acts = leader.on_message("v3", SyncRequest(lag.committed.height + 1), 0)
        resp = next(a.msg for a in acts if isinstance(a, Send))
        assert isinstance(resp, SyncResponse) and resp.proof is not None
        assert len(resp.blocks) < len(full.blocks)  # cut at the first block with a proof
        lag.on_message("v0", resp, 100)
        responses += 1
        assert responses <= len(full.blocks)
    assert responses > 1 and lag.committed.hash == full.blocks[-1].hash


def test_lagging_node_catches_up_by_sync() -> None:
    lag, leader = lagging_core()
    assert lag.committed.height == 0
    acts = leader.on_message("v3", SyncRequest(1), 0)
    resp = next(a.msg for a in acts if isinstance(a, Send))
    assert isinstance(resp, SyncResponse) and resp.proof is not None
    out = lag.on_message("v0", resp, 100)
    assert lag.committed.height == resp.blocks[-1].height >= 5
    assert [a.block.height for a in out if isinstance(a, Committed)] == list(
        range(1, lag.committed.height + 1)
    )
    # a tampered response (broken commit proof) is refused
    other = Net()
    for c in other.cores.values():
        c.start(0)
    bad_proof = type(resp.proof)(
        resp.proof.child, QuorumCertificate(resp.proof.qc.round, resp.proof.qc.block_hash, ())
    )
    assert other.cores["v3"].on_message("v0", SyncResponse(resp.blocks, bad_proof), 0) == []
    assert other.cores["v3"].committed.height == 0


def test_committed_sync_executes_each_block_on_the_committed_state() -> None:
    lag, leader = lagging_core()
    resp = next(a.msg for a in leader.on_message("v3", SyncRequest(1), 0) if isinstance(a, Send))
    assert isinstance(resp, SyncResponse) and resp.proof is not None and len(resp.blocks) >= 5
    parents: list[bool] = []
    execute = lag.app.execute

    def recording(draft: BlockDraft) -> bytes | None:
        parents.append(draft.parent.hash == lag.committed.hash)
        return execute(draft)

    lag.app.execute = recording  # type: ignore[method-assign]
    out = lag.on_message("v0", resp, 100)
    # each block ran on its committed parent, not on a chain of blocks still pending
    assert parents and all(parents)
    assert [a.block.height for a in out if isinstance(a, Committed)] == [b.height for b in resp.blocks]
    # the commit proof is kept with the last block only: it certifies that one
    store = lag.block_store
    assert store.proof(resp.blocks[-1].height) == resp.proof
    assert all(store.proof(b.height) is None for b in resp.blocks[:-1])


def test_sync_blocks_to_check_names_only_authentic_blocks_the_core_would_execute() -> None:
    lag, leader = lagging_core()
    resp = next(a.msg for a in leader.on_message("v3", SyncRequest(1), 0) if isinstance(a, Send))
    assert isinstance(resp, SyncResponse) and resp.proof is not None and len(resp.blocks) >= 5
    assert lag.sync_blocks_to_check(resp) == list(resp.blocks)
    # a broken commit proof, a broken hash chain, or blocks nobody asked for: nothing to check
    bad_proof = type(resp.proof)(
        resp.proof.child, QuorumCertificate(resp.proof.qc.round, resp.proof.qc.block_hash, ())
    )
    assert lag.sync_blocks_to_check(SyncResponse(resp.blocks, bad_proof)) == []
    swapped = (resp.blocks[1], resp.blocks[0], *resp.blocks[2:])
    assert lag.sync_blocks_to_check(SyncResponse(swapped, resp.proof)) == []
    last = resp.blocks[-1]
    assert lag.sync_blocks_to_check(SyncResponse(resp.blocks, None, last.hash)) == []
    # once the first blocks are committed, only the ones above them are left to check
    first = next(a.msg for a in leader.on_message("v3", SyncRequest(1), 0) if isinstance(a, Send))
    assert isinstance(first, SyncResponse)
    leader.config = dataclasses.replace(leader.config, sync_bytes=1)
    part = next(a.msg for a in leader.on_message("v3", SyncRequest(1), 0) if isinstance(a, Send))
    assert isinstance(part, SyncResponse) and len(part.blocks) < len(first.blocks)
    lag.on_message("v0", part, 100)
    assert lag.committed.height == part.blocks[-1].height
    # (the proof's child came with it and is known now: it is not checked again either)
    assert part.proof is not None
    left = [b for b in first.blocks if b.height > lag.committed.height and b.hash != part.proof.child.hash]
    assert left and lag.sync_blocks_to_check(first) == left
    assert lag.sync_blocks_to_check(part) == []  # a second copy of an answer already applied


def test_message_codec_roundtrip(net: Net) -> None:
    g = net.cores["v0"].genesis
    b = net.block(g, 1, QuorumCertificate(0, g.hash, ()), payload=(b"t1", b"t2"))
    b2 = net.block(b, 3, net.qc(1, b.hash), tc=net.tc(2, {"v0": 1, "v1": 1, "v2": 0}))
    vote = Vote("v1", 1, b.hash, b"s" * 32)
    tmo = Timeout("v2", 3, net.qc(1, b.hash), b"t" * 32, net.tc(2, {"v0": 1, "v1": 1, "v2": 0}))
    msgs: list[Message] = [
        net.proposal(b),
        net.proposal(b2),
        vote,
        tmo,
        SyncRequest(3, b.hash),
        SyncRequest(1),
        SyncResponse((b, b2), None, b2.hash),
        EvidenceMsg(()),
    ]
    for m in msgs:
        data = encode_message(m)
        back = decode_message(data)
        assert back == m and encode_message(back) == data
    assert Block.from_bytes(b2.to_bytes()).hash == b2.hash


def test_sm2_signer_and_verifier() -> None:
    keys = {i: PrivateKey.generate() for i in IDS[:2]}
    ver = Sm2Verifier({i: k.public_key for i, k in keys.items()})
    sig = Sm2Signer("v0", keys["v0"]).sign(b"m")
    assert ver.verify("v0", b"m", sig)
    assert ver.verify("v0", b"m", sig) and ver.checks == 1  # cached
    assert not ver.verify("v1", b"m", sig)
    assert not ver.verify("v9", b"m", sig)
    assert not ver.verify("v0", b"m2", sig)


def test_block_interval_and_idle_leader() -> None:
    pki = SimPki(IDS)
    cfg = ConsensusConfig(chain_id="test", empty_blocks=False, block_interval_ms=500)
    core = ConsensusCore(
        "v1", IDS, pki.signer("v1"), pki.verifier(), MemorySafetyStore(), MemoryBlockStore(), App(), cfg
    )
    acts = core.start(100)  # v1 leads round 1: genesis timestamp 0 + interval 500 -> wait
    assert SetTimer("propose:1", 500) in acts
    assert not [a for a in acts if isinstance(a, Broadcast)]
    acts = core.on_timer("propose:1", 500)  # nothing to propose, empty_blocks off: poll again
    assert not [a for a in acts if isinstance(a, Broadcast)]
    assert SetTimer("propose:1", 500 + cfg.idle_poll_ms) in acts
    eager = ConsensusCore(
        "v1", IDS, pki.signer("v1"), pki.verifier(), MemorySafetyStore(), MemoryBlockStore(), App(), CFG
    )
    props = [a.msg for a in eager.start(100) if isinstance(a, Broadcast) and isinstance(a.msg, Proposal)]
    assert len(props) == 1 and props[0].block.round == 1 and props[0].block.payload == ()


def _vote(net: Net, author: str, round: int, block_hash: bytes) -> Vote:
    msg = vote_signing_bytes("test", CFG.genesis_hash, round, block_hash)
    return Vote(author, round, block_hash, net.pki.signer(author).sign(msg))


def _block_requests(actions: list[Action]) -> list[SyncRequest]:
    return [
        a.msg
        for a in actions
        if isinstance(a, (Send, Broadcast))
        and isinstance(a.msg, SyncRequest)
        and a.msg.block_hash is not None
    ]


@pytest.mark.parametrize("who", ["v3", "v2"])  # a validator, and the next round's leader
def test_a_qc_formed_from_votes_waits_before_asking_for_its_block(net: Net, who: str) -> None:
    g = net.cores[who].genesis
    b1 = net.block(g, 1, QuorumCertificate(0, g.hash, ()), payload=(b"a",))
    voters = [v for v in IDS if v != who][:3]

    def certify(core: ConsensusCore, now: int) -> list[Action]:
        acts: list[Action] = []
        for v in voters:
            acts += core.on_message(v, _vote(net, v, 1, b1.hash), now)
        return acts

    # the proposal arrives within the grace: nobody is asked for the block
    core = net.cores[who]
    acts = certify(core, 10)
    assert core.high_qc.block_hash == b1.hash and core.round == 2
    assert _block_requests(acts) == []
    timers = [a for a in acts if isinstance(a, SetTimer) and a.timer_id.startswith("fetch:")]
    assert [(t.timer_id, t.at_ms) for t in timers] == [(f"fetch:{b1.hash.hex()}", 10 + CFG.fetch_grace_ms)]
    acts = core.on_message("v1", net.proposal(b1), 50)
    assert _block_requests(acts) == [] and core.get_block(b1.hash) == b1
    assert _block_requests(core.on_timer(timers[0].timer_id, 10 + CFG.fetch_grace_ms)) == []
    # the proposal never comes: every peer is asked once the grace has passed, not before
    fresh = net.make_core(who)
    fresh.start(0)
    acts = certify(fresh, 10)
    acts += fresh.on_timer("propose:2", 60)
    assert _block_requests(acts) == []
    asked = fresh.on_timer(f"fetch:{b1.hash.hex()}", 10 + CFG.fetch_grace_ms)
    assert [r.block_hash for r in _block_requests(asked)] == [b1.hash]
    assert all(isinstance(a, Broadcast) for a in asked if isinstance(getattr(a, "msg", None), SyncRequest))
    # a malformed timer id is ignored
    assert fresh.on_timer("fetch:zz", 300) == []


def test_no_grace_asks_at_once() -> None:
    n = Net()
    cfg = replace(CFG, fetch_grace_ms=0)
    core = ConsensusCore(
        "v3", IDS, n.pki.signer("v3"), n.pki.verifier(), MemorySafetyStore(), MemoryBlockStore(), App(), cfg
    )
    core.start(0)
    g = core.genesis
    b1 = n.block(g, 1, QuorumCertificate(0, g.hash, ()))
    acts: list[Action] = []
    for v in ("v0", "v1", "v2"):
        acts += core.on_message(v, _vote(n, v, 1, b1.hash), 5)
    assert [r.block_hash for r in _block_requests(acts)] == [b1.hash]
