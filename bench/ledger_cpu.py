"""CPU time per transaction of one replica's stages, in one process, without SM2.

A node spends each transaction's CPU in a few stages: admission to the mempool
(``LedgerApp.submit``), building a block when it leads (``build_payload``), executing
each block (``execute``), writing it (``LedgerBlockStore.append``: SQLite and fsync) and
the commit bookkeeping (``on_commit``). This bench runs those stages on one replica for
pre-signed anchor transactions from several members, with the signatures recorded as
verified beforehand (the node verifies them in a worker thread; the verify rate is
measured apart by ``bench/ledger_net.py``), and prints the CPU time
(``time.process_time``) of each stage per transaction, for a block's proposer (its
execution finishes the block it built) and for the other validators (they execute the
block in full).

CPU time is much less sensitive to a shared machine's load than wall-clock rates, which
is why this bench exists beside ``bench/ledger_net.py``: it resolves changes of a few
microseconds per transaction that the networked bench cannot.

Usage::

    .venv/bin/python bench/ledger_cpu.py --quick     # a few seconds
    .venv/bin/python bench/ledger_cpu.py --rounds 5 --members 32 --per-member 500
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain.consensus.core import BlockDraft
from chain.consensus.messages import Block
from chain.crypto import PrivateKey
from chain.replica import Replica, tx_root
from chain.types import Certificate, ChainParams, Genesis, Role, Transaction

STAGES = ("admit", "build", "execute", "store", "commit")


def consortium(members: int) -> tuple[Genesis, list[PrivateKey], list[tuple[PrivateKey, Certificate]]]:
    """A genesis with five consensus nodes and ``members`` media centres."""
    root = PrivateKey.generate()

    def issue(name: str, role: Role) -> tuple[PrivateKey, Certificate]:
        key = PrivateKey.generate()
        return key, Certificate.issue(root, name, name, [role], key.public_key, 0)

    nodes = [issue(f"node-{i}", Role.CONSENSUS_NODE) for i in range(5)]
    clients = [issue(f"member-{i}", Role.MEDIA_CENTER) for i in range(members)]
    certs = tuple(c for _, c in nodes + clients)
    genesis = Genesis("CPU bench", "bench-cpu", root.public_key.to_bytes(), certs, ChainParams())
    return genesis, [k for k, _ in nodes], clients


def presign(clients: list[tuple[PrivateKey, Certificate]], per: int, ts: int, chain_id: str) -> list[bytes]:
    """``per`` anchors from each client, interleaved, nonces in order."""
    return [
        Transaction.create(
            key, cert.cert_id, "anchor", {"digest": os.urandom(32), "kind": "work"}, n + 1, ts, chain_id
        ).to_bytes()
        for n in range(per)
        for key, cert in clients
    ]


def run(
    genesis: Genesis, node_key: PrivateKey, txs: list[bytes], block_txs: int, proposer: bool
) -> dict[str, float]:
    """One replica through every stage; CPU seconds per stage."""
    spent = dict.fromkeys(STAGES, 0.0)

    @contextlib.contextmanager
    def timed(stage: str) -> Iterator[None]:
        t0 = time.process_time()
        yield
        spent[stage] += time.process_time() - t0

    with tempfile.TemporaryDirectory() as d:
        replica = Replica(genesis, Path(d) / "node.db", node_key)
        app = replica.app
        executor = app.executor
        for raw in txs:  # as the node's worker thread would have
            executor.record_verification(executor.decode(raw).tx_id, None)
        executor._decoded.clear()  # admission decodes each transaction, as on a node
        with timed("admit"):
            for raw in txs:
                app.submit(raw)
        parent = app.head_block
        ts = max(int(time.time() * 1000), parent.timestamp_ms) + 1000
        round_ = 1
        while len(app.mempool):
            with timed("build"):
                payload = app.build_payload(parent, ts, block_txs, 1 << 24)
            if not payload:
                raise RuntimeError(f"{len(app.mempool)} pending transactions fit in no block")
            if not proposer:
                app._built = None  # another validator never built this block
            draft = BlockDraft(parent, round_, ts, replica.node_id, tuple(payload), (), 0)
            with timed("execute"):
                root = app.execute(draft)
            assert root is not None
            block = Block(
                genesis.chain_id, parent.height + 1, round_, parent.hash, tuple(payload),
                tx_root(payload), root, ts, replica.node_id, None,
            )  # fmt: skip
            with timed("store"):
                replica.block_store.append(block, None)
            with timed("commit"):
                app.on_commit(block)
                executor.forget(block.payload)
            parent, round_, ts = block, round_ + 1, ts + 100
        replica.close()
    if not proposer:
        spent["build"] = 0.0  # a block is built once, by its proposer
    return spent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a few seconds")
    p.add_argument("--members", type=int, default=16)
    p.add_argument("--per-member", type=int, default=250)
    p.add_argument("--block-txs", type=int, default=500)
    p.add_argument("--rounds", type=int, default=3, help="runs of each role; the median is printed")
    args = p.parse_args()
    per = 60 if args.quick else args.per_member
    genesis, node_keys, clients = consortium(args.members)
    txs = presign(clients, per, int(time.time() * 1000), genesis.chain_id)
    print(f"one replica, {len(txs):,} anchors from {args.members} members, ≤ {args.block_txs}/block")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {load}")
    print("| role | " + " | ".join(f"{s} (µs/tx)" for s in STAGES) + " | total (µs/tx) |")
    print("|---|" + "---:|" * (len(STAGES) + 1))
    totals = {}
    for role, proposer in (("proposer", True), ("other validator", False)):
        runs = [run(genesis, node_keys[1], txs, args.block_txs, proposer) for _ in range(args.rounds)]
        med = {s: statistics.median(r[s] for r in runs) * 1e6 / len(txs) for s in STAGES}
        totals[role] = statistics.median(sum(r.values()) for r in runs) * 1e6 / len(txs)
        cells = " | ".join(f"{med[s]:.1f}" for s in STAGES)
        print(f"| {role} | {cells} | {totals[role]:.1f} |")
    mean = (totals["proposer"] + 4 * totals["other validator"]) / 5
    print(f"\nper node, five validators taking turns: {mean:.1f} µs/tx (SM2 verification not included)")


if __name__ == "__main__":
    main()
