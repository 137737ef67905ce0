"""Benchmark: committed transactions per second of the ledger, 4, 5 and 7 nodes, real SM2.

Every node is a full replica (:class:`chain.replica.Replica`): consensus messages are SM2
signed and verified, every transaction is an SM2-signed anchor that each node verifies
once at admission, executes with the executor and commits to its own SQLite store
(WAL, ``synchronous=FULL``). Only the transport is in memory (:class:`chain.localnet.LocalNet`),
and all nodes share this one process, i.e. **one core**.

Printed beside the measurement, from the same run: the SM2 verify rate on one core and
the bound it implies. Each transaction is verified once by every node, so nodes that
share ``c`` cores cannot commit more than ``c × verify rate ÷ nodes`` transactions per
second; here ``c = 1`` (one process). A deployment with one machine per node is bounded by
``cores_per_node × verify rate`` instead; the table prints that too for this machine's cores.

Usage::

    .venv/bin/python bench/consensus_sim.py [--txs N] [--nodes 4,5,7] [--block-txs B]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

from chain.crypto import PrivateKey
from chain.localnet import LocalConsortium
from chain.types import ChainParams, Role


def verify_rate(seconds: float = 1.0) -> float:
    """SM2 verifications per second on one core."""
    key = PrivateKey.generate()
    msg = b"rongxin" * 20
    sig = key.sign(msg)
    pub = key.public_key
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        pub.verify(msg, sig)
        n += 1
    return n / (time.perf_counter() - start)


def run(nodes: int, txs: int, block_txs: int) -> dict[str, float]:
    """Commit ``txs`` pre-signed anchors on ``nodes`` replicas; return the figures."""
    with tempfile.TemporaryDirectory() as d:
        c = LocalConsortium.create(
            d, nodes=nodes, params=ChainParams(max_block_txs=block_txs, round_timeout_ms=2000)
        )
        member = c.add_member("bench", [Role.MEDIA_CENTER])
        raws = [
            member.sign(
                c.genesis.chain_id, "anchor", {"digest": i.to_bytes(32, "big"), "kind": "b"}, 1
            ).to_bytes()
            for i in range(txs)
        ]  # clients sign; not part of the ledger's cost
        for nid in c.net.cpu:
            c.net.cpu[nid] = 0.0
        heights = [r.store.head_height() for r in c.replicas]
        msgs0, bytes0 = c.net.messages, c.net.bytes
        start = time.perf_counter()
        last = b""
        for chunk in range(0, txs, block_txs):
            for raw in raws[chunk : chunk + block_txs]:
                last = c.net.submit(raw)
            c.net.run_until(lambda: len(c.replicas[0].app.mempool) < block_txs // 2, 600_000)
        c.net.wait(last, 600_000)
        elapsed = time.perf_counter() - start
        blocks = min(r.store.head_height() for r in c.replicas) - min(heights)
        cpu = list(c.net.cpu.values())
        out = {
            "tps": txs / elapsed,
            "elapsed": elapsed,
            "cpu_mean": sum(cpu) / len(cpu),
            "cpu_max": max(cpu),
            "blocks": blocks,
            "msgs": c.net.messages - msgs0,
            "mbytes": (c.net.bytes - bytes0) / 1e6,
        }
        c.close()
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--txs", type=int, default=3000)
    ap.add_argument("--nodes", default="4,5,7")
    ap.add_argument("--block-txs", type=int, default=500)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    rate = verify_rate()
    print(f"machine: {platform.machine()}, {cores} cores, Python {platform.python_version()}")
    print(
        f"SM2 verify on one core, same run: {rate:,.0f}/s; "
        f"{args.txs} anchors per row, ≤ {args.block_txs}/block\n"
    )
    print(
        "| nodes | committed tx/s | bound 1 core (rate÷n) | tx/s ÷ bound | CPU s/node (mean, max) "
        "| CPU ms per tx per node | blocks | messages | MB on wire | bound, own machine per node "
        f"({cores} cores × rate) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in (int(x) for x in args.nodes.split(",")):
        r = run(n, args.txs, args.block_txs)
        bound = rate / n
        print(
            f"| {n} | {r['tps']:,.0f} | {bound:,.0f} | {r['tps'] / bound:.2f} | "
            f"{r['cpu_mean']:.2f}, {r['cpu_max']:.2f} | {1000 * r['cpu_mean'] / args.txs:.3f} | "
            f"{r['blocks']:.0f} | {r['msgs']:.0f} | {r['mbytes']:.1f} | {cores * rate:,.0f} |"
        )


if __name__ == "__main__":
    main()
