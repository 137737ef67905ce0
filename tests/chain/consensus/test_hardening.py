"""Byzantine inputs to the core: round relations checked before execution, bounded buffers,
and the seeded simulator with one :class:`ByzantineCore` among the validators."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chain.consensus.byzantine import FORGERIES, ByzantineCore
from chain.consensus.core import (
    SEEN_ROUNDS_BEHIND,
    BlockDraft,
    ConsensusCore,
    MemoryBlockStore,
    MemorySafetyStore,
)
from chain.consensus.messages import (
    QuorumCertificate,
    SyncResponse,
    Timeout,
    Vote,
    timeout_signing_bytes,
    vote_signing_bytes,
)
from chain.consensus.simulator import Simulator, make_scenario, run_seed, sm2_pki
from tests.chain.consensus.test_core import CFG, IDS, App, Net, run_net, votes

GAP = 1 << 40


class CountingApp(App):
    """The test application, counting executions."""

    def __init__(self) -> None:
        self.executions = 0

    def execute(self, draft: BlockDraft) -> bytes | None:
        self.executions += 1
        return super().execute(draft)


def _core(net: Net, node: str) -> tuple[ConsensusCore, CountingApp]:
    """A started core with a counting application (not v1, which would propose in round 1)."""
    app = CountingApp()
    core = ConsensusCore(
        node, IDS, net.pki.signer(node), net.pki.verifier(), MemorySafetyStore(), MemoryBlockStore(), app, CFG
    )
    core.start(0)
    return core, app


def _buffered(core: ConsensusCore) -> dict[str, int]:
    return core.buffer_sizes()


# --------------------------------------------------------------------------- round relation
def test_a_far_future_proposal_is_refused_before_execution() -> None:
    net = Net()
    core, app = _core(net, "v2")
    g = core.genesis
    far = net.block(g, GAP, QuorumCertificate(0, g.hash, ()))  # leader of 2^40 is v0; no TC
    assert far.proposer == "v0"
    t0 = time.perf_counter()
    acts = core.on_message("v0", net.proposal(far), 1)
    assert time.perf_counter() - t0 < 0.1
    assert app.executions == 0  # refused before the application saw it
    assert far.hash not in core.blocks and not votes(acts) and core.round == 1


def test_the_round_rule_holds_for_synced_blocks_too() -> None:
    """A block reached by sync (hash-linked to a verified QC) is still checked structurally:
    every committed block follows its QC's round or a TC for the round before."""
    net = Net()
    core, app = _core(net, "v3")
    g = core.genesis
    gqc = QuorumCertificate(0, g.hash, ())
    far = net.block(g, 5, gqc)  # round 5 on a round-0 QC and no TC: never proposed honestly
    child = net.block(far, 6, net.qc(5, far.hash))
    core.on_message("v2", net.proposal(child), 1)  # parent unknown: parked, asked for
    assert core.is_awaiting(far.hash)
    core.on_message("v2", SyncResponse((far,), None, far.hash), 2)
    assert app.executions == 0 and far.hash not in core.blocks


def test_a_tc_justified_round_gap_is_accepted() -> None:
    net = Net()
    core, app = _core(net, "v2")
    g = core.genesis
    tc = net.tc(GAP - 1, {"v0": 0, "v2": 0, "v3": 0})
    b = net.block(g, GAP, QuorumCertificate(0, g.hash, ()), tc=tc)
    acts = core.on_message("v0", net.proposal(b), 1)
    assert app.executions == 1 and b.hash in core.blocks
    assert [v.round for v in votes(acts)] == [GAP]


# --------------------------------------------------------------------------- bounded buffers
def _vote(net: Net, author: str, round: int, block_hash: bytes) -> Vote:
    msg = vote_signing_bytes("test", CFG.genesis_hash, round, block_hash)
    return Vote(author, round, block_hash, net.pki.signer(author).sign(msg))


def _timeout(net: Net, author: str, round: int, qc: QuorumCertificate) -> Timeout:
    msg = timeout_signing_bytes("test", CFG.genesis_hash, round, qc.round)
    return Timeout(author, round, qc, net.pki.signer(author).sign(msg))


def test_future_vote_and_timeout_spam_leaves_buffers_bounded() -> None:
    net = Net()
    starts = [(i, c.start(0)) for i, c in net.cores.items()]
    core = net.cores["v1"]
    gqc = QuorumCertificate(0, core.genesis.hash, ())
    for r in range(2, 10_002):  # 10,000 validly signed future-round votes and timeouts from v0
        core.on_message("v0", _vote(net, "v0", r, r.to_bytes(32, "big")), 0)
        core.on_message("v0", _timeout(net, "v0", r, gqc), 0)
    for i in range(1000):  # and 1,000 different votes for the one round v1 aggregates next
        core.on_message("v0", _vote(net, "v0", 4, i.to_bytes(32, "big")), 0)
    sizes = _buffered(core)
    cap = CFG.max_future_per_sender
    assert sizes["seen_votes"] <= cap and sizes["seen_timeouts"] <= cap, sizes
    assert sizes["votes"] <= cap + 1 and sizes["timeouts"] <= cap, sizes  # + v1's own vote
    assert sizes["pending"] == sizes["requested"] == 0
    assert core.pending_evidence  # the double votes are evidence, kept once
    # consensus goes on
    commits = run_net(net.cores, 14, started=starts)
    assert min(len(c) for c in commits.values()) >= 8
    assert all(
        c.buffer_sizes()["seen_votes"] <= len(IDS) * (SEEN_ROUNDS_BEHIND + 1 + cap)
        for c in net.cores.values()
    )


def test_spam_beyond_the_window_is_dropped_without_verifying_it() -> None:
    net = Net()
    core = net.cores["v1"]
    core.start(0)
    checks = core.verifier.checks  # type: ignore[attr-defined]
    for r in range(core.round + CFG.round_window + 1, core.round + CFG.round_window + 501):
        core.on_message("v0", Vote("v0", r, bytes(32), bytes(64)), 0)
    assert core.verifier.checks == checks  # type: ignore[attr-defined]
    assert _buffered(core)["seen_votes"] == 0


def test_far_ahead_timeouts_still_move_a_lagging_node() -> None:
    net = Net()
    core = net.cores["v1"]
    core.start(0)
    qc = net.qc(499, b"x" * 32)  # certifies a block this node never saw
    core.on_message("v2", _timeout(net, "v2", 500, qc), 0)
    assert core.round == 500 and core.high_qc == qc
    assert core.buffer_sizes()["timeouts"] == 1  # the timeout itself counts: its round is current now
    tc = net.tc(999, {"v0": 499, "v2": 499, "v3": 499})
    ahead = Timeout(
        "v2",
        1000,
        qc,
        net.pki.signer("v2").sign(timeout_signing_bytes("test", CFG.genesis_hash, 1000, 499)),
        tc,
    )
    core.on_message("v2", ahead, 0)
    assert core.round == 1000 and core.last_tc == tc


def test_a_second_block_of_one_leader_for_one_round_is_evidence_not_executed() -> None:
    net = Net()
    core, app = _core(net, "v3")
    g = core.genesis
    gqc = QuorumCertificate(0, g.hash, ())
    first = net.block(g, 1, gqc)
    second = net.block(g, 1, gqc, ts=5)
    assert votes(core.on_message("v1", net.proposal(first), 10))
    core.on_message("v1", net.proposal(second), 10)
    assert app.executions == 1 and second.hash not in core.blocks
    assert [e.kind for e in core.pending_evidence.values()] == ["proposal"]


# --------------------------------------------------------------------------- simulator
BYZANTINE_SEEDS = range(30_000, 30_020)


def _check(seeds: range, **kwargs: Any) -> None:
    failures = [res.report() for s in seeds if not (res := run_seed(s, byzantine=True, **kwargs)).ok]
    assert not failures, f"{len(failures)} failing seed(s):\n" + "\n".join(failures)


def test_byzantine_seeds() -> None:
    _check(BYZANTINE_SEEDS)


def test_the_byzantine_node_attacks_and_honest_buffers_stay_bounded() -> None:
    sim = Simulator(make_scenario(30_001, byzantine=True))
    result = sim.run()
    assert result.ok, result.report()
    byz = next(i.core for i in sim.instances.values() if i.identity == sim.sc.byzantine)
    assert isinstance(byz, ByzantineCore)
    kinds = set(byz.attacks)
    assert {"far-future", "spam", "outsider", "withheld-vote"} <= kinds, kinds
    assert {f"forged-{f}" for f in FORGERIES} <= kinds, kinds
    assert byz.attacks["equivocation"] >= 1
    for inst in sim.instances.values():
        if inst.core is not None and inst.identity != sim.sc.byzantine:
            sizes = _buffered(inst.core)
            assert sizes["seen_votes"] <= sim.sc.n * (SEEN_ROUNDS_BEHIND + 1 + CFG.max_future_per_sender), (
                sizes
            )
            assert sizes["timeouts"] <= sim.sc.n * 3, sizes


def test_byzantine_scenarios() -> None:
    scs = [make_scenario(s, byzantine=True) for s in range(30_000, 30_100)]
    assert {s.n for s in scs} == {4, 5, 7} and all(s.byzantine and not s.twins for s in scs)
    for s in scs:
        assert s.byzantine not in {c[0] for c in s.crashes}
        assert len(s.crashes) + 1 <= (s.n - 1) // 3
    assert make_scenario(7) == make_scenario(7, byzantine=False)  # the other families unchanged


@pytest.mark.slow
def test_many_byzantine_seeds() -> None:
    _check(range(30_020, 30_320))


@pytest.mark.slow
def test_byzantine_seeds_with_real_sm2() -> None:
    _check(range(30_000, 30_003), pki_factory=sm2_pki)
