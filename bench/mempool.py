"""Benchmark: a full mempool — admit N pre-signed anchors, then commit them all.

Every replica of a :class:`chain.localnet.LocalConsortium` (real SM2, SQLite, in-memory
transport) is given all N transactions first (as gossip would), from several members, and
only then does the chain run until every one is committed. This is the case that hurts a
mempool that is scanned per block: each proposal and each commit happens with a pool of up
to N entries.

Printed: admission time per transaction, commit time, the time spent building proposals
(``build_payload``) and cleaning the pool after commits (``on_commit``), and how many times
each node SM2-verified each transaction's signature (the target is once per node).

Usage::

    .venv/bin/python bench/mempool.py [--txs 20000] [--senders 4] [--nodes 1] [--block-txs 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from typing import Any

from chain.localnet import LocalConsortium
from chain.replica import LedgerApp
from chain.types import ChainParams, Role, Transaction


def run(txs: int, senders: int, nodes: int, block_txs: int) -> dict[str, float]:
    """Admit ``txs`` anchors from ``senders`` members on every node, then commit them."""
    verified: Counter[bytes] = Counter()
    spent: dict[str, float] = {"build": 0.0, "commit": 0.0, "proposals": 0.0}
    original_verify = Transaction.verify_signature
    original_build, original_commit = LedgerApp.build_payload, LedgerApp.on_commit

    def counting_verify(self: Transaction, *args: Any, **kwargs: Any) -> None:
        verified[self.tx_id] += 1
        original_verify(self, *args, **kwargs)

    def timed_build(self: LedgerApp, *args: Any, **kwargs: Any) -> list[bytes]:
        t0 = time.perf_counter()
        try:
            return original_build(self, *args, **kwargs)
        finally:
            spent["build"] += time.perf_counter() - t0
            spent["proposals"] += 1

    def timed_commit(self: LedgerApp, *args: Any, **kwargs: Any) -> None:
        t0 = time.perf_counter()
        try:
            original_commit(self, *args, **kwargs)
        finally:
            spent["commit"] += time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as d:
        c = LocalConsortium.create(
            d, nodes=nodes, params=ChainParams(max_block_txs=block_txs, round_timeout_ms=2000)
        )
        members = [c.add_member(f"bench-{s}", [Role.MEDIA_CENTER]) for s in range(senders)]
        raws = [
            members[i % senders]
            .sign(c.genesis.chain_id, "anchor", {"digest": i.to_bytes(32, "big"), "kind": "b"}, 1)
            .to_bytes()
            for i in range(txs)
        ]  # clients sign; not part of the ledger's cost
        ids = [Transaction.from_bytes(raw).tx_id for raw in raws]
        Transaction.verify_signature = counting_verify  # type: ignore[method-assign]
        LedgerApp.build_payload = timed_build  # type: ignore[method-assign]
        LedgerApp.on_commit = timed_commit  # type: ignore[method-assign]
        try:
            start = time.perf_counter()
            for raw in raws:  # every node admits every transaction before any block is made
                for r in c.replicas:
                    r.app.submit(raw)
            admitted = time.perf_counter() - start
            pool = len(c.replicas[0].app.mempool)
            h0 = c.replicas[0].store.head_height()
            start = time.perf_counter()
            c.net.wait(ids[-1], 3_600_000)
            c.net.run_until(lambda: all(c.net.committed_everywhere(t) for t in ids[:: max(1, txs // 100)]))
            committed = time.perf_counter() - start
            blocks = c.replicas[0].store.head_height() - h0
            missing = sum(1 for t in ids if c.replicas[0].store.tx_location(t) is None)
        finally:
            Transaction.verify_signature = original_verify  # type: ignore[method-assign]
            LedgerApp.build_payload = original_build  # type: ignore[method-assign]
            LedgerApp.on_commit = original_commit  # type: ignore[method-assign]
        c.close()
    counts = [verified[t] for t in ids]
    return {
        "admit_us": 1e6 * admitted / (txs * nodes),
        "pool": pool,
        "commit_s": committed,
        "tps": txs / committed,
        "blocks": blocks,
        "missing": missing,
        "build_ms": 1000 * spent["build"] / max(1, spent["proposals"]),
        "build_s": spent["build"],
        "on_commit_s": spent["commit"],
        "verify_per_node": sum(counts) / (len(counts) * nodes),
        "verify_max_per_node": max(counts) / nodes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--txs", type=int, default=20_000)
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--block-txs", type=int, default=1000)
    args = ap.parse_args()
    r = run(args.txs, args.senders, args.nodes, args.block_txs)
    print(
        f"{args.txs} anchors from {args.senders} senders on {args.nodes} node(s), "
        f"≤ {args.block_txs} per block\n"
    )
    print(
        "| admit µs/tx/node | pool after admit | commit all (s) | committed tx/s | blocks | "
        "build_payload ms/proposal (total s) | on_commit total s | SM2 verifies per tx per node "
        "(mean, max) | not committed |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {r['admit_us']:,.0f} | {r['pool']:,.0f} | {r['commit_s']:.1f} | {r['tps']:,.0f} | "
        f"{r['blocks']:.0f} | {r['build_ms']:.1f} ({r['build_s']:.1f}) | {r['on_commit_s']:.2f} | "
        f"{r['verify_per_node']:.2f}, {r['verify_max_per_node']:.0f} | {r['missing']:.0f} |"
    )


if __name__ == "__main__":
    main()
