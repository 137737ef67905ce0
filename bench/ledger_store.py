"""CPU time per transaction of the ledger's state and storage path, as the state grows.

Every block a node commits goes through the same path, whatever the consensus did: each
changed key is read (:meth:`State.get`, through the store's cache), the block's state root
is computed (:meth:`State.root_with`: the changed buckets read from SQLite and rehashed,
then their paths in the tree of buckets), the block is written
(:meth:`LedgerStore.commit_block`: the block, its transactions with their results, the state
rows and the change log, one SQLite transaction), the changes are applied to the state
(:meth:`State.apply`) and the write-ahead log is synced and checkpointed, as the node's
host and checkpoint thread do. Its cost grows with the state (the B-trees get deeper and
leave SQLite's page cache), which is why the full run of ``bench/ledger_net.py`` (100,000
transactions before its latency phase, 1,000,000 digests after) spends more per
transaction than the quick run.

This bench commits blocks of anchor-shaped changes (one new ``anchor/`` record per
transaction, and one nonce per sender) to a store on disk, and prints the CPU time
(``time.process_time``) of each step per transaction, averaged over the blocks committed
once the state has reached each size in ``--at``. No signatures, no consensus, no network:
it resolves changes of a few microseconds that the networked bench cannot, and it is
insensitive to the machine's load (CPU time, one process).

Usage::

    .venv/bin/python bench/ledger_store.py --quick     # about a minute
    .venv/bin/python bench/ledger_store.py --at 100000 400000 1000000
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain.crypto.sm3 import sm3
from chain.store import LedgerStore

STEPS = ("get", "root", "write", "apply", "sync")
SENDERS = 16


def block_of(
    rng: random.Random, txs: int
) -> tuple[list[tuple[bytes, bytes]], dict[bytes, bytes | None], list[bytes]]:
    """A block's ``(tx_id, tx)`` list, state changes and encoded results, shaped like anchors."""
    listed = [(rng.randbytes(32), rng.randbytes(330)) for _ in range(txs)]
    changes: dict[bytes, bytes | None] = {
        b"anchor/" + rng.randbytes(32): rng.randbytes(120) for _ in range(txs)
    }
    changes.update({b"nonce/" + bytes([i]) * 16: rng.randbytes(8) for i in range(SENDERS)})
    results = [rng.randbytes(60) for _ in range(txs)]
    return listed, changes, results


def run(points: list[int], txs: int, measured: int, seed: int) -> dict[int, dict[str, float]]:
    """Commit blocks until the state holds each of ``points`` entries, then time ``measured``
    blocks there; µs per transaction of each step at each point."""
    rng = random.Random(seed)
    out: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as d:
        store = LedgerStore(Path(d) / "node.db", b"g" * 32)
        store.defer_sync()  # as a node's host: one sync after each commit, off the event loop
        state = store.load_state()
        parent, height = b"g" * 32, 0
        entries = len(state.table)  # counted as blocks add them (a COUNT(*) is a table scan)
        for point in points:
            spent = dict.fromkeys(STEPS, 0.0)
            timed, first = 0, entries
            while entries < point or timed < measured:
                filling = entries < point
                if not filling and not timed:
                    first = entries
                listed, changes, results = block_of(rng, txs)
                entries += txs + (SENDERS if height == 0 else 0)
                height += 1
                block_hash = sm3(b"block %d" % height)
                t0 = time.process_time()
                for key in changes:
                    state.get(key)
                t1 = time.process_time()
                root = state.root_with(changes)
                t2 = time.process_time()
                store.commit_block(
                    height, block_hash, parent, root, b"block", b"qc", listed, changes, results
                )
                t3 = time.process_time()
                state.apply(changes, root=root)
                t4 = time.process_time()
                store.sync()
                if store.checkpointer is not None and height % 4 == 0:
                    store.checkpointer.checkpoint()
                t5 = time.process_time()
                parent = block_hash
                if not filling:
                    timed += 1
                    for step, dt in zip(STEPS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                        spent[step] += dt
            out[point] = {s: 1e6 * v / (timed * txs) for s, v in spent.items()}
            out[point]["first"], out[point]["last"] = first, entries
        store.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="about a minute: states of 20,000 and 100,000")
    p.add_argument("--at", type=int, nargs="+", help="state sizes (entries) to measure at")
    p.add_argument("--txs", type=int, default=600, help="transactions (new anchors) per block")
    p.add_argument("--blocks", type=int, default=30, help="blocks measured at each size")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    points = sorted(args.at or ([20_000, 100_000] if args.quick else [100_000, 400_000, 1_000_000]))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"ledger state and storage path, blocks of {args.txs} anchors, {args.blocks} blocks measured per size"
    )
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {load}")
    results = run(points, args.txs, args.blocks, args.seed)
    print(
        "| state entries while measured | " + " | ".join(f"{s} (µs/tx)" for s in STEPS) + " | total (µs/tx) |"
    )
    print("|---|" + "---:|" * (len(STEPS) + 1))
    for row in results.values():
        cells = " | ".join(f"{row[s]:.1f}" for s in STEPS)
        print(f"| {int(row['first']):,}–{int(row['last']):,} | {cells} | {sum(row[s] for s in STEPS):.1f} |")


if __name__ == "__main__":
    main()
