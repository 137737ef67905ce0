"""Deterministic, seeded network simulator for :class:`~chain.consensus.core.ConsensusCore`.

A scenario (drawn from a seed by :func:`make_scenario`) fixes the validator count, the
faults (crash/restart, one Byzantine *Twins* identity run by two cores, a partition that
heals, message drops/duplicates/reordering before GST) and a client workload; with
``byzantine=True`` one validator runs :class:`~chain.consensus.byzantine.ByzantineCore`
(equivocation, far-future rounds, spam, forged certificates, withheld votes, outsiders).  The run
uses a virtual clock and an event queue; ``random.Random(seed)`` drives only the network
and the scenario (keys come from ``os.urandom``).  After the run :func:`check_invariants`
reports agreement, validity, durability, no honest equivocation, liveness after GST and
equivocation evidence on chain.

Replay a seed::

    python -m chain.consensus.simulator --seed 17
    python -m chain.consensus.simulator --seeds 0..99
    python -m chain.consensus.simulator --seeds 0..49 --byzantine
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import hmac
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chain.codec import decode, encode
from chain.consensus.byzantine import ByzantineCore
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
)
from chain.consensus.crypto import Signer, SimPki, Verifier
from chain.consensus.messages import Block, Message, Proposal, Timeout, Vote
from chain.crypto.sm3 import hmac_sm3, sm3
from chain.errors import ChainError

LIVENESS_BOUND_MS = 4000
"""After GST every valid transaction commits on every honest node within this virtual time."""

ROLE_OPS: dict[str, frozenset[str]] = {
    "admin": frozenset({"put", "grant"}),
    "writer": frozenset({"put"}),
    "auditor": frozenset(),
}


# --------------------------------------------------------------------------- workload
class Members:
    """Simulated consortium members: HMAC-SM3 keys (``os.urandom``) and roles."""

    def __init__(self, roles: dict[str, str]) -> None:
        self.roles = dict(roles)
        self._keys = {m: os.urandom(32) for m in roles}

    def make_tx(self, member: str, op: str, nonce: int, forge: bool = False) -> bytes:
        body = encode({"member": member, "op": op, "nonce": nonce})
        sig = hmac_sm3(self._keys[member], body)
        if forge:
            sig = bytes(32)
        return encode([body, sig])

    def tx_valid(self, tx: bytes) -> bool:
        """Signature valid and the member's role permits the operation."""
        try:
            body, sig = decode(tx)
            fields = decode(body)
            member, op = fields["member"], fields["op"]
        except (ChainError, ValueError, TypeError, KeyError):
            return False
        key = self._keys.get(member) if isinstance(member, str) else None
        if key is None or not isinstance(sig, bytes) or not hmac.compare_digest(hmac_sm3(key, body), sig):
            return False
        return op in ROLE_OPS.get(self.roles[member], frozenset())


class SimApp:
    """Application for the simulator: mempool, signature/role checks, hash-chained state."""

    def __init__(self, members: Members, committed: Sequence[Block] = ()) -> None:
        self.members = members
        self.mempool: dict[bytes, None] = {}
        self.committed_txs: set[bytes] = {tx for b in committed for tx in b.payload}

    def submit(self, tx: bytes) -> None:
        if tx not in self.committed_txs and self.members.tx_valid(tx):
            self.mempool[tx] = None

    def build_payload(self, parent: Block, timestamp_ms: int, max_txs: int, max_bytes: int) -> list[bytes]:
        out: list[bytes] = []
        size = 0
        for tx in self.mempool:
            if len(out) >= max_txs or size + len(tx) > max_bytes:
                break
            out.append(tx)
            size += len(tx)
        return out

    def validate_payload(self, payload: Sequence[bytes]) -> bool:
        return all(self.members.tx_valid(tx) for tx in payload)

    def execute(self, draft: BlockDraft) -> bytes | None:
        return sm3(draft.parent.state_root + self.tx_root(draft.payload))

    def ends_epoch(self, block: Block) -> bool:
        return False

    def tx_root(self, payload: Sequence[bytes]) -> bytes:
        return sm3(encode(list(payload)))

    def on_commit(self, block: Block) -> None:
        for tx in block.payload:
            self.committed_txs.add(tx)
            self.mempool.pop(tx, None)


# --------------------------------------------------------------------------- scenario
@dataclass(frozen=True)
class Scenario:
    """Everything a run depends on besides keys; drawn from ``seed``."""

    seed: int
    n: int
    twins: str | None
    crashes: tuple[tuple[str, int, int], ...]
    partitions: tuple[tuple[tuple[frozenset[str], ...], int, int], ...]
    drop_rate: float
    dup_rate: float
    max_delay_ms: int
    post_gst_delay_ms: int
    gst_ms: int
    end_ms: int
    block_interval_ms: int
    empty_blocks: bool
    round_timeout_ms: int
    txs: tuple[tuple[int, str, str, bool], ...]
    roles: tuple[tuple[str, str], ...]
    byzantine: str | None = None
    reconnect_spread_ms: int = 0
    """After a partition heals, each link between its groups reopens at its own moment
    within this many ms (links come back one by one, as dials retry on their own)."""

    @property
    def validators(self) -> list[str]:
        return [f"v{i}" for i in range(self.n)]

    def describe(self) -> str:
        parts = [f"seed={self.seed} n={self.n} f={(self.n - 1) // 3}"]
        if self.twins:
            parts.append(f"twins={self.twins}")
        if self.byzantine:
            parts.append(f"byzantine={self.byzantine}")
        for node, down, up in self.crashes:
            parts.append(f"crash {node}@{down}->{up}ms")
        for groups, start, heal in self.partitions:
            gs = "|".join(",".join(sorted(g)) for g in groups)
            parts.append(f"partition [{gs}] {start}->{heal}ms")
        parts.append(f"drop={self.drop_rate} dup={self.dup_rate} delay<={self.max_delay_ms}ms")
        parts.append(f"gst={self.gst_ms} end={self.end_ms}")
        parts.append(
            f"interval={self.block_interval_ms} empty_blocks={self.empty_blocks} txs={len(self.txs)}"
        )
        return " ".join(parts)


def make_scenario(seed: int, twins: bool | None = None, byzantine: bool = False) -> Scenario:
    """Draw a scenario from ``seed`` (``twins`` forces a Twins node on or off; ``byzantine``
    makes one validator a :class:`~chain.consensus.byzantine.ByzantineCore`, without Twins)."""
    rng = random.Random(seed)
    n = rng.choice([4, 4, 5, 7])
    f = (n - 1) // 3
    ids = [f"v{i}" for i in range(n)]
    use_twins = (rng.random() < 0.4 if twins is None else twins) and not byzantine
    twin = rng.choice(ids) if use_twins else None
    byz = rng.choice(ids) if byzantine else None
    budget = f - (1 if twin or byz else 0)
    crash_nodes = rng.sample([i for i in ids if i not in (twin, byz)], rng.randint(0, budget))
    crashes = []
    for node in crash_nodes:
        down = rng.randint(100, 900)
        crashes.append((node, down, down + rng.randint(50, 800)))
    instances = ids + ([twin + "'"] if twin else [])
    partitions: list[tuple[tuple[frozenset[str], ...], int, int]] = []
    if rng.random() < 0.5 or twin:
        # Twins get 1-3 consecutive phases (a different split each), twins on opposite sides
        t = rng.randint(0, 400)
        for _ in range(rng.randint(1, 3) if twin else 1):
            shuffled = instances[:]
            rng.shuffle(shuffled)
            if twin:
                shuffled.remove(twin)
                shuffled.remove(twin + "'")
                cut = rng.randint(0, len(shuffled))
                groups = (frozenset([twin, *shuffled[:cut]]), frozenset([twin + "'", *shuffled[cut:]]))
            else:
                cut = rng.randint(1, len(shuffled) - 1)
                groups = (frozenset(shuffled[:cut]), frozenset(shuffled[cut:]))
            end = t + rng.randint(150, 1000)
            partitions.append((groups, t, end))
            t = end
    drop_rate = rng.choice([0.0, 0.05, 0.2])
    gst = max([1000] + [up for _, _, up in crashes] + [end for _, _, end in partitions])
    roles = tuple((f"m{i}", rng.choice(["admin", "writer", "writer", "auditor"])) for i in range(4))
    txs = tuple(
        sorted(
            (
                rng.randint(0, gst + 300),
                rng.choice(roles)[0],
                rng.choice(["put", "grant"]),
                rng.random() < 0.1,
            )
            for _ in range(rng.randint(3, 10))
        )
    )
    return Scenario(
        seed=seed,
        n=n,
        twins=twin,
        crashes=tuple(crashes),
        partitions=tuple(partitions),
        drop_rate=drop_rate,
        dup_rate=rng.choice([0.0, 0.05]),
        max_delay_ms=rng.choice([10, 40, 120]),
        post_gst_delay_ms=rng.choice([5, 20]),
        gst_ms=gst,
        end_ms=gst + LIVENESS_BOUND_MS,
        block_interval_ms=rng.choice([0, 50, 100]),
        empty_blocks=rng.random() < 0.5,
        round_timeout_ms=rng.choice([200, 300]),
        txs=txs,
        roles=roles,
        byzantine=byz,
    )


# --------------------------------------------------------------------------- simulation
@dataclass
class _Instance:
    name: str
    identity: str
    signer: Signer
    safety: MemorySafetyStore
    blocks: MemoryBlockStore
    skew: int
    core: ConsensusCore | None = None
    app: SimApp | None = None
    timers: dict[str, int] = field(default_factory=dict)
    alive: bool = True
    epoch: int = 0
    restarted_at: int = -1


@dataclass
class SimResult:
    """Outcome of one run; ``ok`` iff no invariant was violated."""

    scenario: Scenario
    violations: list[str]
    heights: dict[str, int]
    events: int
    evidence_on_chain: int
    wall_s: float

    @property
    def ok(self) -> bool:
        return not self.violations

    def report(self) -> str:
        status = "OK" if self.ok else "VIOLATION"
        lines = [
            f"[{status}] {self.scenario.describe()}",
            f"  heights={self.heights} events={self.events} evidence_on_chain={self.evidence_on_chain} "
            f"wall={self.wall_s:.2f}s",
        ]
        lines += [f"  - {v}" for v in self.violations]
        if not self.ok:
            lines.append(f"  replay: python -m chain.consensus.simulator --seed {self.scenario.seed}")
        return "\n".join(lines)


class Simulator:
    """Runs one :class:`Scenario`; see the module docstring."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        core_class: type[ConsensusCore] = ConsensusCore,
        pki_factory: Any = None,
    ) -> None:
        self.sc = scenario
        self.rng = random.Random(scenario.seed ^ 0x5EED)
        self.core_class = core_class
        ids = scenario.validators
        if pki_factory is None:
            pki = SimPki(ids)
            self._signer = pki.signer
            self._verifier: Any = pki.verifier
        else:
            self._signer, self._verifier = pki_factory(ids)
        self.members = Members(dict(scenario.roles))
        self.config = ConsensusConfig(
            chain_id=f"sim-{scenario.seed}",
            block_interval_ms=scenario.block_interval_ms,
            empty_blocks=scenario.empty_blocks,
            round_timeout_ms=scenario.round_timeout_ms,
            max_round_timeout_ms=scenario.round_timeout_ms * 4,
            max_txs=4,
            idle_poll_ms=25,
        )
        self.instances: dict[str, _Instance] = {}
        for i in ids:
            self.instances[i] = _Instance(i, i, self._signer(i), MemorySafetyStore(), MemoryBlockStore(), 0)
        if scenario.twins:
            t = scenario.twins
            self.instances[t + "'"] = _Instance(
                t + "'", t, self._signer(t), MemorySafetyStore(), MemoryBlockStore(), 1
            )
        self.queue: list[tuple[int, int, str, Any]] = []
        self.seq = 0
        self.now = 0
        self.events = 0
        self.violations: list[str] = []
        self.sent: dict[tuple[str, str, int], bytes] = {}
        self.commit_log: dict[str, list[tuple[int, int]]] = {name: [] for name in self.instances}
        self.pre_crash: dict[str, list[bytes]] = {}
        self.submitted: list[tuple[int, bytes]] = []

    # ------------------------------------------------------------------ plumbing
    def _push(self, at: int, kind: str, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, kind, payload))

    def _honest(self, inst: _Instance) -> bool:
        return inst.identity not in (self.sc.twins, self.sc.byzantine)

    def _connected(self, a: str, b: str) -> bool:
        for groups, start, heal in self.sc.partitions:
            if start <= self.now < heal + self._reopen_delay(a, b):
                return any(a in g and b in g for g in groups)
        return True

    def _schedule_faults(self) -> None:
        for node, down, up in self.sc.crashes:
            self._push(down, "crash", node)
            self._push(up, "restart", node)
        for groups, _, heal in self.sc.partitions:
            for a in self.instances:
                ga = next((g for g in groups if a in g), None)
                if ga is None:
                    continue
                for b in self.instances:
                    if b not in ga:
                        self._push(heal + self._reopen_delay(a, b), "reopen", (a, b))

    def _reopen_delay(self, a: str, b: str) -> int:
        """When the link ``a``–``b`` reopens after a heal, in ms after it (0..spread)."""
        spread = self.sc.reconnect_spread_ms
        if spread <= 0:
            return 0
        x, y = sorted((a, b))
        return int.from_bytes(hashlib.sha256(f"{self.sc.seed}:{x}:{y}".encode()).digest()[:4]) % (spread + 1)

    def _deliver(self, src: _Instance, dest_identity: str, msg: Message) -> None:
        for inst in self.instances.values():
            if inst.identity != dest_identity or inst.identity == src.identity:
                continue
            if not self._connected(src.name, inst.name):
                continue
            pre_gst = self.now < self.sc.gst_ms
            if pre_gst and self.rng.random() < self.sc.drop_rate:
                continue
            copies = 2 if pre_gst and self.rng.random() < self.sc.dup_rate else 1
            for _ in range(copies):
                delay = self.rng.randint(1, self.sc.max_delay_ms if pre_gst else self.sc.post_gst_delay_ms)
                self._push(self.now + delay, "msg", (inst.name, src.identity, msg))

    def _record_signed(self, inst: _Instance, msg: Message) -> None:
        if not self._honest(inst):
            return
        key: tuple[str, str, int] | None = None
        content = b""
        if isinstance(msg, Vote):
            key, content = ("vote", msg.author, msg.round), msg.block_hash
        elif isinstance(msg, Timeout):
            key, content = ("timeout", msg.author, msg.round), encode(msg.high_qc.round)
        elif isinstance(msg, Proposal):
            key, content = ("proposal", msg.block.proposer, msg.block.round), msg.block.hash
        if key is None or key[1] != inst.identity:  # passing on another's message is no vote of its own
            return
        prev = self.sent.setdefault(key, content)
        if prev != content:
            self.violations.append(
                f"honest equivocation: {inst.name} sent two different {key[0]}s in round {key[2]}"
            )

    def _apply(self, inst: _Instance, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, Send):
                self._record_signed(inst, a.msg)
                self._deliver(inst, a.to, a.msg)
            elif isinstance(a, Broadcast):
                self._record_signed(inst, a.msg)
                for v in self.sc.validators:
                    self._deliver(inst, v, a.msg)
            elif isinstance(a, SetTimer):
                inst.timers[a.timer_id] = a.at_ms
                self._push(max(a.at_ms, self.now), "timer", (inst.name, a.timer_id, a.at_ms, inst.epoch))
            elif isinstance(a, Committed):
                self.commit_log[inst.name].append((a.block.height, self.now))

    def _reconnected(self, a: _Instance, b: _Instance) -> None:
        """``a``'s link to ``b`` reopened (a partition healed, ``b`` restarted)."""
        if a.alive and a.core is not None and b.alive and a.identity != b.identity:
            self._apply(a, a.core.on_peer_connected(b.identity))

    def _boot(self, inst: _Instance) -> None:
        inst.app = SimApp(self.members, inst.blocks.blocks)
        args = (inst.identity, self.sc.validators, inst.signer, self._verifier())
        core: ConsensusCore
        if inst.identity == self.sc.byzantine:
            outsider = SimPki(["outsider"]).signer("outsider")  # a key no validator knows
            stores = (inst.safety, inst.blocks, inst.app, self.config)
            core = ByzantineCore(*args, *stores, seed=self.sc.seed, outsiders=[outsider])
        else:
            core = self.core_class(*args, inst.safety, inst.blocks, inst.app, self.config)
        inst.core = core
        inst.timers = {}
        self._apply(inst, core.start(self.now + inst.skew))

    # ------------------------------------------------------------------ run
    def run(self) -> SimResult:
        t0 = time.perf_counter()
        sc = self.sc
        for inst in self.instances.values():
            self._boot(inst)
        self._schedule_faults()
        for i, (at, member, op, forge) in enumerate(sc.txs):
            self._push(at, "tx", self.members.make_tx(member, op, i, forge))
        while self.queue:
            at, _, kind, payload = heapq.heappop(self.queue)
            if at > sc.end_ms:
                break
            self.now = at
            self.events += 1
            if kind == "msg":
                name, sender, msg = payload
                inst = self.instances[name]
                if inst.alive and inst.core is not None:
                    self._apply(inst, inst.core.on_message(sender, msg, self.now + inst.skew))
            elif kind == "timer":
                name, tid, t_at, epoch = payload
                inst = self.instances[name]
                if (
                    inst.alive
                    and inst.core is not None
                    and inst.epoch == epoch
                    and inst.timers.get(tid) == t_at
                ):
                    del inst.timers[tid]
                    self._apply(inst, inst.core.on_timer(tid, self.now + inst.skew))
            elif kind == "tx":
                self.submitted.append((self.now, payload))
                for inst in self.instances.values():
                    if inst.alive and inst.app is not None:
                        inst.app.submit(payload)
            elif kind == "crash":
                inst = self.instances[payload]
                self.pre_crash[inst.name] = [b.hash for b in inst.blocks.blocks]
                inst.alive, inst.core, inst.app, inst.timers = False, None, None, {}
                inst.epoch += 1
            elif kind == "reopen":
                a, b = payload
                self._reconnected(self.instances[a], self.instances[b])
            elif kind == "restart":
                self._restart(self.instances[payload])
        self.now = sc.end_ms
        self.check_invariants()
        heights = {name: inst.blocks.tip_height() for name, inst in self.instances.items()}
        onchain = max(
            (len(inst.core.onchain_evidence) for inst in self._honest_instances() if inst.core), default=0
        )
        return SimResult(sc, self.violations, heights, self.events, onchain, time.perf_counter() - t0)

    def _restart(self, inst: _Instance) -> None:
        inst.alive = True
        inst.restarted_at = self.now
        self._boot(inst)
        for other in self.instances.values():
            if other is not inst:
                self._reconnected(other, inst)
        # the client re-sends what it has not seen committed
        for _, tx in self.submitted:
            assert inst.app is not None
            inst.app.submit(tx)
        before = self.pre_crash.get(inst.name, [])
        after = [b.hash for b in inst.blocks.blocks[: len(before)]]
        if after != before:
            self.violations.append(f"durability: {inst.name} lost committed blocks across restart")

    def _honest_instances(self) -> list[_Instance]:
        return [i for i in self.instances.values() if self._honest(i)]

    # ------------------------------------------------------------------ invariants
    def check_invariants(self) -> None:
        honest = self._honest_instances()
        v = self.violations
        # agreement
        by_height: dict[int, tuple[bytes, str]] = {}
        for inst in honest:
            for b in inst.blocks.blocks:
                prev = by_height.setdefault(b.height, (b.hash, inst.name))
                if prev[0] != b.hash:
                    v.append(f"agreement: {prev[1]} and {inst.name} differ at height {b.height}")
                    break
            if inst.core is not None and inst.core.conflicts:
                v.append(f"agreement: {inst.name} saw conflicting commit: {inst.core.conflicts[0]}")
        # validity
        for inst in honest:
            for b in inst.blocks.blocks:
                bad = [tx for tx in b.payload if not self.members.tx_valid(tx)]
                if bad:
                    v.append(f"validity: {inst.name} committed {len(bad)} invalid tx(s) at height {b.height}")
                    break
        # liveness: after GST every valid submitted tx is committed on every honest node
        valid = {tx for _, tx in self.submitted if self.members.tx_valid(tx)}
        for inst in honest:
            have = {tx for b in inst.blocks.blocks for tx in b.payload}
            missing = valid - have
            if missing:
                v.append(
                    f"liveness: {inst.name} has {len(missing)}/{len(valid)} valid txs uncommitted "
                    f"{LIVENESS_BOUND_MS}ms after GST (height {inst.blocks.tip_height()})"
                )
            if self.sc.empty_blocks:
                after_gst = [h for h, t in self.commit_log[inst.name] if t >= self.sc.gst_ms]
                if len(after_gst) < 2:
                    v.append(
                        f"liveness: {inst.name} committed {len(after_gst)} blocks after GST (empty_blocks on)"
                    )
        # evidence: no honest validator accused; equivocation by the Twin seen by an honest node
        # (that kept its memory) ends up on chain
        faulty = {x for x in (self.sc.twins, self.sc.byzantine) if x}
        on_chain = {e.key for inst in honest for b in inst.blocks.blocks for e in b.evidence}
        accused = [k for k in on_chain if k[1] not in faulty]
        if accused:
            v.append(f"evidence: honest validator accused on chain: {accused[0]}")
        twin = self.sc.twins
        if twin:
            deadline = self.sc.end_ms - LIVENESS_BOUND_MS // 2
            detected = [
                (t, ev)
                for inst in honest
                if inst.core is not None
                for t, ev in inst.core.evidence_found
                if ev.author == twin and t <= deadline and t >= inst.restarted_at
            ]
            if detected and not any(ev.key in on_chain for _, ev in detected):
                v.append(f"evidence: equivocation by {twin} detected at {detected[0][0]}ms but not on chain")


def run_seed(
    seed: int,
    *,
    twins: bool | None = None,
    byzantine: bool = False,
    core_class: type[ConsensusCore] = ConsensusCore,
    pki_factory: Any = None,
) -> SimResult:
    """Run the scenario of ``seed``; same seed, same run (replay)."""
    scenario = make_scenario(seed, twins, byzantine)
    return Simulator(scenario, core_class=core_class, pki_factory=pki_factory).run()


def sm2_pki(ids: Sequence[str]) -> tuple[Any, Any]:
    """Real SM2 keys for a run (slow; for a few seeds)."""
    from chain.consensus.crypto import Sm2Signer, Sm2Verifier
    from chain.crypto import PrivateKey

    keys = {i: PrivateKey.generate() for i in ids}
    pubs = {i: k.public_key for i, k in keys.items()}

    def signer(i: str) -> Signer:
        return Sm2Signer(i, keys[i])

    def verifier() -> Verifier:
        return Sm2Verifier(pubs)

    return signer, verifier


def _parse_seeds(text: str) -> range:
    if ".." in text:
        a, b = text.split("..", 1)
        return range(int(a), int(b) + 1)
    return range(int(text), int(text) + 1)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m chain.consensus.simulator --seed N | --seeds A..B [--sm2] [--byzantine]``."""
    ap = argparse.ArgumentParser(prog="python -m chain.consensus.simulator")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--seed", type=int)
    g.add_argument("--seeds", type=str, help="inclusive range A..B")
    ap.add_argument("--sm2", action="store_true", help="use real SM2 signatures")
    ap.add_argument("--quiet", action="store_true", help="print failing seeds only")
    ap.add_argument("--byzantine", action="store_true", help="one validator runs ByzantineCore")
    args = ap.parse_args(argv)
    seeds = range(args.seed, args.seed + 1) if args.seed is not None else _parse_seeds(args.seeds)
    failed = []
    for s in seeds:
        res = run_seed(s, byzantine=args.byzantine, pki_factory=sm2_pki if args.sm2 else None)
        if not res.ok:
            failed.append(s)
        if not args.quiet or not res.ok:
            print(res.report())
    print(f"{len(seeds)} seed(s), {len(failed)} failing" + (f": {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
