"""Benchmark: a new node joins a chain whose state holds N anchored digests, by snapshot.

The chain is real (one voting node, SM2-signed QCs, SQLite): a benchmark-only contract
(``bench.fill``) writes anchor records exactly as the anchoring contract does, 100,000 per
transaction, so the state reaches N entries in N / 100,000 blocks instead of N anchors.
Then, each step timed:

1. ``export`` — :func:`chain.snapshot.write_snapshot` of the validator's store at its head;
2. ``import`` — :func:`chain.snapshot.import_snapshot_dir` into a new database, in a child
   process (its peak memory is reported alone);
3. ``open`` — :class:`chain.replica.Replica` on the restored database (loads the state and
   checks its root against the head block, as every node start does);
4. ``catch up`` — the restored node joins the in-memory network as an observer and block-
   syncs the blocks committed after the snapshot (one anchor); its own CPU time is reported
   (the validator shares the process);
5. ``network`` — the same snapshot served over the secure peer channel by three serving
   peers on loopback (:class:`chain.node.statesync.SnapshotServer`), restored by a new node
   in a child process with :func:`chain.node.statesync.state_sync` (offers, chunks from
   several peers checked as they arrive, the import streamed), then opened: the time a
   node with ``[state_sync] enable`` spends before it starts following the chain.

The product target: a new node with 1,000,000 anchored digests in state joins within 30 s.

Usage::

    .venv/bin/python bench/snapshot.py [--entries 1000000] [--per-tx 100000] [--dir DIR] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

from chain import codec
from chain.contracts.anchor import anchor_key
from chain.contracts.base import ContractRegistry, TxContext
from chain.crypto import PrivateKey
from chain.crypto.keyfile import load_private_key, save_private_key
from chain.crypto.sealed import MIN_SCRYPT_N
from chain.crypto.sm3 import sm3
from chain.executor import default_registry
from chain.localnet import LocalConsortium
from chain.net import Channel
from chain.net.peers import Peer, PeerManager
from chain.node.identity import certificate_from_json, certificate_to_json
from chain.node.statesync import SnapshotServer, state_sync
from chain.replica import Replica, chain_genesis_block
from chain.snapshot import import_snapshot_dir, write_snapshot
from chain.state import Overlay
from chain.store import LedgerStore
from chain.types import Certificate, ChainParams, Genesis, Role


class FillContract:
    """Benchmark only: ``{"start": i, "count": n}`` anchors the digests ``sm3(b"fill/<k>")``,
    ``i <= k < i + n``, with the records the anchoring contract writes."""

    type_name: ClassVar[str] = "bench.fill"
    permitted_roles: ClassVar[frozenset[Role]] = frozenset({Role.MEDIA_CENTER})

    def check_payload(self, payload: dict[str, Any]) -> None:
        return None

    def authorize(self, ctx: TxContext, payload: dict[str, Any], state: Overlay) -> None:
        return None

    def apply(self, state: Overlay, ctx: TxContext, payload: dict[str, Any]) -> dict[str, Any]:
        for k in range(payload["start"], payload["start"] + payload["count"]):
            record = {
                "tx_id": ctx.tx_id,
                "height": ctx.height,
                "kind": "work",
                "meta": sm3(b"meta/%d" % k),
                "count": 1,
                "sender": ctx.sender.cert_id,
                "timestamp_ms": ctx.block_timestamp_ms,
            }
            state.set(anchor_key(sm3(b"fill/%d" % k)), codec.encode(record))
        return {"status": "filled", "count": payload["count"]}


def registry(genesis: Genesis) -> ContractRegistry:
    reg = default_registry(genesis)
    reg.register(FillContract())
    return reg


def _peak_rss_mib() -> float:
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss`` it starts afresh
    at ``exec``, so a child does not report its parent's size)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def import_child(snap: str, db: str, genesis: str) -> None:
    """The import step, alone in a process: prints its time and peak memory as JSON."""
    g = Genesis.from_bytes(Path(genesis).read_bytes())
    start = time.perf_counter()
    info = import_snapshot_dir(snap, db, g)
    elapsed = time.perf_counter() - start
    peak = _peak_rss_mib()
    print(json.dumps({"seconds": elapsed, "entries": info.entries, "peak_mib": peak}))


def sync_child(directory: str, peers: str) -> None:
    """The network restore, alone in a process: prints its times and peak memory as JSON."""
    d = Path(directory)
    g = Genesis.from_bytes((d / "genesis.cbor").read_bytes())
    key = load_private_key(d / "joiner.key", "bench")
    cert = certificate_from_json((d / "joiner.cert.json").read_text())
    addresses = [(h, int(p)) for h, _, p in (a.rpartition(":") for a in peers.split(","))]
    db = d / "joined.db"
    start = time.perf_counter()
    store = LedgerStore(db, chain_genesis_block(g).hash)
    report = asyncio.run(state_sync(key, cert, g, addresses, store, discovery_s=10))
    store.close()
    synced = time.perf_counter() - start
    start = time.perf_counter()
    replica = Replica(g, db, key, registry(g))
    opened = time.perf_counter() - start
    assert replica.store.base_height() == report.info.height
    replica.close()
    print(
        json.dumps(
            {
                "sync_s": synced,
                "open_s": opened,
                "entries": report.info.entries,
                "peers": len(report.peers),
                "peak_mib": _peak_rss_mib(),
            }
        )
    )


async def _serve_and_join(c: LocalConsortium, directory: Path, served: Path, peers: int) -> dict[str, Any]:
    """Serve the snapshot in ``served`` from ``peers`` loopback peers; restore it in a child."""
    server = SnapshotServer(c.replicas[0].store, c.genesis, served, interval=0)
    assert server.latest is not None

    def handler(peer: Peer, channel: int, payload: bytes) -> Any:
        return server.on_frame(peer, payload) if channel == Channel.STATE_SYNC else None

    def issue(name: str) -> tuple[PrivateKey, Certificate]:
        key = PrivateKey.generate()
        return key, Certificate.issue(c.root, name, name, [Role.CONSENSUS_NODE], key.public_key, 0)

    managers = []
    for i in range(peers):
        key, cert = issue(f"server-{i}")
        pm = PeerManager(
            key,
            cert,
            chain_id=c.genesis.chain_id,
            genesis_hash=c.genesis.hash,
            root=c.genesis.root_key(),
            check_peer=lambda cert: None,
            listen=[("127.0.0.1", 0)],
            persistent_peers=[],
            on_frame=handler,
        )
        await pm.start()
        managers.append(pm)
    key, cert = issue("joiner")
    save_private_key(key, directory / "joiner.key", "bench", scrypt_n=MIN_SCRYPT_N)
    (directory / "joiner.cert.json").write_text(certificate_to_json(cert))
    (directory / "genesis.cbor").write_bytes(c.genesis.to_bytes())
    addresses = ",".join(f"{h}:{p}" for pm in managers for h, p in pm.bound)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--sync-child", str(directory), addresses, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    for pm in managers:
        await pm.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"the joining child failed ({proc.returncode})")
    result: dict[str, Any] = json.loads(out)
    result["chunks_served"] = server.chunks_served
    return result


def run(entries: int, per_tx: int, directory: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    c = LocalConsortium.create(
        directory, nodes=1, params=ChainParams(round_timeout_ms=60_000), registry_factory=registry
    )
    m = c.add_member("bench", [Role.MEDIA_CENTER])
    start = time.perf_counter()
    for first in range(0, entries, per_tx):
        c.submit(m, "bench.fill", {"start": first, "count": min(per_tx, entries - first)})
    out["build_s"] = time.perf_counter() - start
    source = c.replicas[0].store
    start = time.perf_counter()
    manifest = write_snapshot(source, c.genesis, directory / "snap")
    out["export_s"] = time.perf_counter() - start
    served = directory / "served"
    served.mkdir()
    os.symlink(directory / "snap", served / f"{manifest.height:012d}")
    net = asyncio.run(_serve_and_join(c, directory, served, 3))
    assert net["entries"] == manifest.entries
    out["net_sync_s"], out["net_open_s"], out["net_peak_mib"] = net["sync_s"], net["open_s"], net["peak_mib"]
    out["net_peers"] = net["peers"]
    out["entries"] = manifest.entries
    out["chunks"] = len(manifest.chunks)
    out["mbytes"] = manifest.size / 1e6
    genesis = directory / "genesis.cbor"
    genesis.write_bytes(c.genesis.to_bytes())
    db = directory / "restored.db"
    child = subprocess.run(
        [sys.executable, __file__, "--import-child", str(directory / "snap"), str(db), str(genesis)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(child.stdout)
    out["import_s"], out["import_peak_mib"] = result["seconds"], result["peak_mib"]
    start = time.perf_counter()
    restored = Replica(c.genesis, db, PrivateKey.generate(), registry(c.genesis))
    out["open_s"] = time.perf_counter() - start
    name = c.net.add(restored)
    c.net.cpu[name] = 0.0
    start = time.perf_counter()
    receipt = c.anchor(m, sm3(b"after the snapshot"), "work")
    tx_id = receipt.verify(c.genesis).tx_id
    c.net.run_until(lambda: restored.store.tx_location(tx_id) is not None, 600_000)
    out["catch_up_wall_s"] = time.perf_counter() - start
    out["catch_up_cpu_s"] = c.net.cpu[name]
    out["blocks_synced"] = restored.store.head_height() - manifest.height
    top = restored.store.head_height()  # the validator may be a block ahead by now
    assert restored.store.block(top) == source.block(top)
    assert restored.app.state.root == restored.store.block(top).state_root  # type: ignore[union-attr]
    out["join_s"] = out["import_s"] + out["open_s"] + out["catch_up_cpu_s"]
    restored.close()
    c.close()
    return out


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--import-child":
        import_child(*sys.argv[2:])
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--sync-child":
        sync_child(*sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--per-tx", type=int, default=100_000)
    ap.add_argument("--dir", type=Path, default=None, help="Work directory (default: a temporary one).")
    ap.add_argument("--quick", action="store_true", help="100,000 entries (about a minute).")
    args = ap.parse_args()
    if args.quick:
        args.entries = min(args.entries, 100_000)
    if args.dir is None:
        with tempfile.TemporaryDirectory() as d:
            r = run(args.entries, args.per_tx, Path(d))
    else:
        args.dir.mkdir(parents=True, exist_ok=True)
        r = run(args.entries, args.per_tx, args.dir)
    print(
        f"{r['entries']:,.0f} state entries, {r['chunks']:.0f} chunks, {r['mbytes']:.0f} MB; "
        f"{os.cpu_count()} cores"
    )
    print(f"(building the chain took {r['build_s']:.0f} s; not part of joining)\n")
    print(
        "| export s | import s | import peak MiB | open (load + root check) s | catch-up CPU s "
        "(blocks) | join = import + open + catch-up, s |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {r['export_s']:.1f} | {r['import_s']:.1f} | {r['import_peak_mib']:.0f} | {r['open_s']:.1f} | "
        f"{r['catch_up_cpu_s']:.1f} ({r['blocks_synced']:.0f}) | {r['join_s']:.1f} |"
    )
    print(
        "\nOver the network (3 serving peers on loopback, the joining node in its own process):\n"
        "\n| state sync s (offers, chunks, import) | open s | join = sync + open, s | peers that served | "
        "peak MiB |\n|---:|---:|---:|---:|---:|"
    )
    print(
        f"| {r['net_sync_s']:.1f} | {r['net_open_s']:.1f} | {r['net_sync_s'] + r['net_open_s']:.1f} | "
        f"{r['net_peers']:.0f} | {r['net_peak_mib']:.0f} |"
    )


if __name__ == "__main__":
    main()
