"""Benchmark: the state commitment per block at 10k, 100k and 1M anchored digests, old and new.

For each state size, in one run:

* **old**: the commitment before :mod:`chain.state_tree` — one RFC 6962 tree over every
  ``[key, value]`` in key order, recomputed whole by ``Overlay.root()`` (which merged and
  sorted the whole state) and again by ``State.root`` after the commit;
* **new, node store**: the state in a node's SQLite store (:class:`chain.store.StoreTable`),
  as a replica runs it: ``Overlay.root()`` when the block is executed, then
  ``LedgerStore.commit_block`` (SQLite rows, fsync; shown apart, it is storage, not the
  commitment) and ``State.apply`` when it commits — given the block's root, as a replica
  does for a block it executed (the execution's hashes are installed), on odd blocks, and
  without it (rehashed, as for a block stored without executing it) on even ones;
* **new, in memory** (:class:`chain.state.MemoryTable`), up to 100k entries.

A block is 1,000 anchor transactions' changes: 1,000 new ``anchor/<digest>`` records, the
nonces of 10 senders and the ``sys/block/<height>`` history entry. Entries are shaped as
the anchor contract writes them (``chain/contracts/anchor.py``: a 39-byte key, a
≈170-byte canonical-CBOR record), synthesized directly.

Then, at 1M: the commitment built from scratch (:func:`chain.state_tree.commitment_of`
streamed in key order and in the store's bucket order), the store filled in bucket order
and opened (``load_state``: every stored leaf hash recomputed and checked), and, in a
fresh process, the resident memory of a process holding the 1M-entry state.

Usage::

    PYTHONPATH=. .venv/bin/python bench/state_tree.py [--quick] [--smt] [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from bisect import bisect_left, insort
from collections.abc import Callable, Iterator
from pathlib import Path

from chain import codec
from chain.contracts.anchor import anchor_key
from chain.crypto.sm3 import sm3
from chain.merkle import merkle_root
from chain.state import Overlay, State
from chain.state_tree import EMPTY_DIGEST, bucket_of, commitment_of, entry_leaf
from chain.store import LedgerStore, state_row

GENESIS = b"\x00" * 32
BLOCK_TXS = 1000
SENDERS = 10


def anchor_entries(n: int, seed: int) -> Iterator[tuple[bytes, bytes]]:
    """``n`` state entries as ``anchor`` transactions write them (random digests)."""
    rnd = random.Random(seed)
    senders = [rnd.randbytes(32) for _ in range(SENDERS)]
    for i in range(n):
        record = {
            "tx_id": rnd.randbytes(32),
            "height": 1 + i // BLOCK_TXS,
            "kind": "work",
            "meta": rnd.randbytes(32),
            "count": 1,
            "sender": senders[i % SENDERS],
            "timestamp_ms": 1_796_342_400_000 + i,
        }
        yield anchor_key(rnd.randbytes(32)), codec.encode(record)


def block_changes(height: int, seed: int) -> dict[bytes, bytes | None]:
    """The state changes of one block of ``BLOCK_TXS`` anchors."""
    changes: dict[bytes, bytes | None] = dict(anchor_entries(BLOCK_TXS, seed))
    for s in range(SENDERS):
        changes[b"nonce/" + sm3(b"sender%d" % s)] = (height * 100).to_bytes(8, "big")
    changes[b"sys/block/" + height.to_bytes(8, "big")] = sm3(b"parent%d" % height)
    return changes


# --------------------------------------------------------------------------- old commitment


def old_root(entries: dict[bytes, bytes]) -> bytes:
    """The former ``state_root``: one tree over every entry in key order."""
    return merkle_root([codec.encode([k, entries[k]]) for k in sorted(entries)])


def old_overlay_root(entries: dict[bytes, bytes], changes: dict[bytes, bytes | None]) -> bytes:
    """The former ``Overlay.root()``: merge the whole state in key order, then hash it all."""
    merged = {k: entries[k] for k in sorted(entries)}
    for k, v in changes.items():
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = v
    return old_root(merged)


def old_commit_root(entries: dict[bytes, bytes], changes: dict[bytes, bytes | None], reps: int) -> float:
    """Median seconds of the former ``State.root`` after committing ``changes``."""
    after = dict(entries)
    after.update({k: v for k, v in changes.items() if v is not None})
    return statistics.median(timed(lambda: old_root(after))[0] for _ in range(reps))


# --------------------------------------------------------------------------- alternative


class SparseTree:
    """The alternative measured with ``--smt``: a sparse Merkle tree on the bits of
    ``SM3(key)``, paths compressed (a subtree holding one entry is that entry's leaf), every
    interior node cached in memory, a batch of changes rehashing the union of their paths."""

    def __init__(self, entries: dict[bytes, bytes]) -> None:
        items = sorted((sm3(k), entry_leaf(k, v)) for k, v in entries.items())
        self.hkeys = [h for h, _ in items]
        self.leaves = dict(items)
        self.cache: dict[tuple[int, int], bytes] = {}
        self.root = self._hash(0, 0, 0, len(self.hkeys))

    def _hash(self, depth: int, prefix: int, lo: int, hi: int) -> bytes:
        if hi - lo <= 1:
            return EMPTY_DIGEST if hi == lo else self.leaves[self.hkeys[lo]]
        got = self.cache.get((depth, prefix))
        if got is not None:
            return got
        right = (((prefix << 1) | 1) << (255 - depth)).to_bytes(32, "big")
        mid = bisect_left(self.hkeys, right, lo, hi)
        left_hash = self._hash(depth + 1, prefix << 1, lo, mid)
        h = sm3(b"\x01" + left_hash + self._hash(depth + 1, (prefix << 1) | 1, mid, hi))
        self.cache[(depth, prefix)] = h
        return h

    def apply(self, changes: dict[bytes, bytes | None]) -> None:
        for k, v in changes.items():
            hk = sm3(k)
            n = int.from_bytes(hk, "big")
            for d in range(256):  # drop the cached nodes on the key's path
                if self.cache.pop((d, n >> (256 - d)), None) is None and d > 32:
                    break
            if v is None:
                if self.leaves.pop(hk, None) is not None:
                    del self.hkeys[bisect_left(self.hkeys, hk)]
            else:
                if hk not in self.leaves:
                    insort(self.hkeys, hk)
                self.leaves[hk] = entry_leaf(k, v)
        self.root = self._hash(0, 0, 0, len(self.hkeys))


def run_sparse(n: int, blocks: int) -> dict[str, float]:
    """Per-block update and memory (``tracemalloc``) of :class:`SparseTree` at ``n`` entries."""
    entries = dict(anchor_entries(n, seed=n))
    tracemalloc.start()
    tree = SparseTree(entries)
    memory = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    times = [
        timed(lambda h=h: tree.apply(block_changes(h, seed=10_000_000 + h)))[0] for h in range(1, blocks + 1)
    ]
    return {
        "n": n,
        "update": statistics.median(times),
        "bytes_per_entry": memory / n,
        "nodes": len(tree.cache),
    }


# --------------------------------------------------------------------------- helpers


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def fill_store(path: Path, entries: dict[bytes, bytes]) -> float:
    """Write ``entries`` into a new store in ``(bucket, key)`` order; seconds taken."""
    start = time.perf_counter()
    rows = sorted(state_row(k, v) for k, v in entries.items())
    store = LedgerStore(path, GENESIS)
    db = store._db
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT INTO state VALUES (?, ?, ?, ?)", rows)
    db.execute("COMMIT")
    store.close()
    return time.perf_counter() - start


def overlay_of(state: State, changes: dict[bytes, bytes | None]) -> Overlay:
    o = Overlay(state)
    for k, v in changes.items():
        if v is None:
            o.delete(k)
        else:
            o.set(k, v)
    return o


def run_size(n: int, blocks: int, old_reps: int, workdir: Path, from_scratch: bool) -> dict[str, float]:
    entries = dict(anchor_entries(n, seed=n))
    out: dict[str, float] = {"n": n}
    changes = [block_changes(h, seed=10_000_000 + h) for h in range(1, blocks + 1)]

    # old: overlay root for the first block, and the root after committing it
    old_overlay = [timed(lambda: old_overlay_root(entries, changes[0]))[0] for _ in range(old_reps)]
    out["old_overlay"] = statistics.median(old_overlay)
    out["old_commit"] = old_commit_root(entries, changes[0], old_reps)

    # new, in memory
    if n <= 100_000:
        build, state = timed(lambda: State(entries))
        assert isinstance(state, State)
        out["mem_build"] = build
        roots, applies = [], []
        for ch in changes:
            roots.append(timed(overlay_of(state, ch).root)[0])
            applies.append(timed(lambda ch=ch: state.apply(ch))[0])
        out["mem_overlay"] = statistics.median(roots)
        out["mem_apply"] = statistics.median(applies)
        del state

    # new, node store
    path = workdir / f"state-{n}.db"
    out["store_fill"] = fill_store(path, entries)
    store = LedgerStore(path, GENESIS)
    out["store_open"], live = timed(store.load_state)
    assert isinstance(live, State)
    if n <= 10_000:
        assert live.root == State(entries).root
    roots, commits, reused, recomputed = [], [], [], []
    parent = GENESIS
    for h, ch in enumerate(changes, start=1):
        t, root = timed(overlay_of(live, ch).root)
        roots.append(t)
        block_hash = sm3(b"block%d" % h)
        commits.append(
            timed(lambda: store.commit_block(h, block_hash, parent, root, b"", b"", [], ch))[0]  # noqa: B023
        )
        parent = block_hash
        if h % 2:  # as a replica commits a block it executed: the execution's hashes reused
            reused.append(timed(lambda: live.apply(ch, root=root))[0])  # noqa: B023
        else:  # as for a block stored without executing it first: rehashed
            recomputed.append(timed(lambda: live.apply(ch))[0])  # noqa: B023
        assert live.root == root
    out["store_overlay"] = statistics.median(roots)
    out["store_commit"] = statistics.median(commits)
    out["store_apply_reused"] = statistics.median(reused)
    out["store_apply"] = statistics.median(recomputed)
    out["db_mb"] = os.path.getsize(path) / 1e6
    store.close()
    if from_scratch:
        in_key_order = sorted(entries.items())
        out["stream_key"] = timed(lambda: commitment_of(in_key_order))[0]
        in_key_order.sort(key=lambda kv: (bucket_of(kv[0]), kv[0]))
        out["stream_bucket"] = timed(lambda: commitment_of(in_key_order))[0]
    return out


RSS_CHILD = """
import sys
def rss(field="VmRSS"):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
import chain.replica, chain.receipt  # a node's modules
from chain.store import LedgerStore
base = rss()
store = LedgerStore(sys.argv[1], b"\\x00" * 32)
state = store.load_state()
loaded = rss()
sys.path.insert(0, sys.argv[2])
from bench.state_tree import block_changes, overlay_of
from chain.crypto.sm3 import sm3
parent = store.head_hash()
for h in range(store.head_height() + 1, store.head_height() + 6):
    ch = block_changes(h, seed=20_000_000 + h)
    root = overlay_of(state, ch).root()
    store.commit_block(h, sm3(b"rss%d" % h), parent, root, b"", b"", [], ch)
    parent = sm3(b"rss%d" % h)
    state.apply(ch)
print(f"{base:.0f} {loaded:.0f} {rss():.0f} {rss('VmHWM'):.0f}")
"""


def rss_of(path: Path) -> list[float]:
    """Resident MB of a fresh process: after importing a node's modules, after loading the
    state, after five more blocks, and its peak."""
    out = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, str(path), str(Path(__file__).resolve().parent.parent)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return [float(x) for x in out]


def ms(x: float) -> str:
    return f"{1000 * x:,.1f}"


def main() -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"block: {BLOCK_TXS} anchors + {SENDERS} nonces + 1 history entry; median of {ARGS.blocks} blocks\n"
    )
    results = []
    with tempfile.TemporaryDirectory() as d:
        sizes = [int(x) for x in ARGS.sizes.split(",")]
        for n in sizes:
            old_reps = 1 if n >= 1_000_000 or ARGS.quick else 3
            results.append(run_size(n, ARGS.blocks, old_reps, Path(d), n == sizes[-1]))
            print(f"  {n:,} entries done", file=sys.stderr, flush=True)
        print(
            "| entries | old: Overlay.root (ms) | old: root after commit (ms) | new store: Overlay.root (ms) "
            "| new store: State.apply, executed block (ms) | new store: State.apply, rehashed (ms) "
            "| new memory: Overlay.root / apply, rehashed (ms) | old ÷ new (root + apply, executed block) "
            "| store commit_block (ms, not the commitment) |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in results:
            mem = f"{ms(r['mem_overlay'])} / {ms(r['mem_apply'])}" if "mem_overlay" in r else "—"
            ratio = (r["old_overlay"] + r["old_commit"]) / (r["store_overlay"] + r["store_apply_reused"])
            print(
                f"| {r['n']:,.0f} | {ms(r['old_overlay'])} | {ms(r['old_commit'])} "
                f"| {ms(r['store_overlay'])} | {ms(r['store_apply_reused'])} | {ms(r['store_apply'])} "
                f"| {mem} | {ratio:,.0f}× | {ms(r['store_commit'])} |"
            )
        top = results[-1]
        print(f"\nfrom scratch at {top['n']:,.0f} entries:")
        print(f"- old root over all entries (the old root after a commit): {top['old_commit']:.2f} s")
        print(
            f"- commitment_of, key order: {top['stream_key']:.2f} s; "
            f"the store's bucket order: {top['stream_bucket']:.2f} s"
        )
        print(
            f"- store filled in bucket order: {top['store_fill']:.2f} s ({top['db_mb']:.0f} MB file); "
            f"opened (load_state, leaves checked): {top['store_open']:.2f} s"
        )
        base, loaded, after, peak = rss_of(Path(d) / f"state-{top['n']:.0f}.db")
        print(
            f"- resident memory (fresh process): {base:.0f} MB after importing a node's modules, "
            f"{loaded:.0f} MB with the state loaded, {after:.0f} MB after 5 more blocks (peak {peak:.0f} MB)"
        )
        print(f"- this process's peak (it also held the old dict of entries): {peak_mb():.0f} MB")
        if ARGS.smt:
            print("\nalternative, sparse Merkle tree in memory (per block: changes applied and root):")
            for n in [x for x in sizes if x <= 100_000]:
                r = run_sparse(n, ARGS.blocks)
                print(
                    f"- {n:,} entries: {ms(r['update'])} ms per block, "
                    f"{r['bytes_per_entry']:.0f} B per entry in memory besides the entries "
                    f"({r['nodes']:,.0f} interior nodes)"
                )


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 blocks per size, the old roots once")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--blocks", type=int, default=None)
    ap.add_argument("--smt", action="store_true", help="also measure a sparse Merkle tree (up to 100k)")
    ARGS = ap.parse_args()
    if ARGS.blocks is None:
        ARGS.blocks = 4 if ARGS.quick else 10
    main()
