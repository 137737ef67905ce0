"""State sync over the network: snapshots served by running hosts, an empty node restoring
one from several peers, lying peers (wrong chunks, forged manifests) refused."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from chain import codec
from chain.contracts.anchor import anchor_key
from chain.errors import SnapshotError
from chain.net import Channel
from chain.node.statesync import SnapshotServer, StateSyncReport, state_sync
from chain.replica import Replica, chain_genesis_block
from chain.snapshot import Manifest
from chain.store import LedgerStore
from tests.chain.node.host_fixtures import HostNet, anchor_tx, free_ports, wait_for


async def _running_chain(
    tmp_path: Path, interval: int = 4
) -> tuple[HostNet, list[int], list[bytes], list[bytes]]:
    """Four hosts serving snapshots every ``interval`` blocks, 30 anchors committed, and a
    snapshot taken by every host (the observer of the genesis stays down)."""
    net = HostNet.create(tmp_path, nodes=4, observers=1, empty_blocks=True, block_interval_ms=100)
    ports = free_ports(5)
    await net.start(ports[:4], snapshot_interval=interval)
    await wait_for(lambda: all(len(h.peers.peers) == 3 for h in net.hosts), 10, "a full mesh")
    digests = [os.urandom(32) for _ in range(30)]
    ids = [net.hosts[0].submit(anchor_tx(net, net.supervisor, d, net.hosts[0].now_ms())) for d in digests]
    await wait_for(
        lambda: all(h.replica.store.tx_location(t) is not None for h in net.hosts for t in ids),
        20,
        "the anchors to commit",
    )
    await wait_for(
        lambda: all(h.snapshots is not None and h.snapshots.latest is not None for h in net.hosts),
        20,
        "every host to write a snapshot",
    )
    return net, ports, ids, digests


def _empty_store(net: HostNet, name: str) -> LedgerStore:
    return LedgerStore(net.directory / f"{name}.db", chain_genesis_block(net.genesis).hash)


async def _join(net: HostNet, ports: list[int], store: LedgerStore, **kw: float) -> StateSyncReport:
    """State-sync the genesis observer (``net.nodes[4]``) from the hosts on ``ports``."""
    joiner = net.nodes[4]
    peers = [("127.0.0.1", p) for p in ports]
    return await state_sync(joiner.key, joiner.cert, net.genesis, peers, store, **kw)


def test_empty_node_restores_a_snapshot_from_peers_and_follows_the_chain(tmp_path: Path) -> None:
    async def main() -> None:
        net, ports, _, digests = await _running_chain(tmp_path)
        try:
            joiner = net.nodes[4]
            store = _empty_store(net, joiner.cert.subject)
            report = await _join(net, ports[:4], store, discovery_s=5)
            store.close()
            assert report.info.height >= 4
            assert report.info.entries > 30  # the anchors, members, epochs
            assert report.peers
            # the chain moves on while the joiner fetches: a snapshot its peers pruned meanwhile
            # is refused as such and a newer one restored; any other refusal is a failure
            assert all("pruned" in reason for reason in report.refused), report.refused
            # chunks come from several peers, though each holds its own quorum certificates
            assert report.info.chunks >= 2 and len(report.peers) >= 2, report
            assert not list(net.directory.glob(".state-sync-*"))  # the chunks' spool is gone
            # the restored node starts at the snapshot and block-syncs the rest
            host = net.build(4, ports[4], ports[:4], snapshot_interval=2)
            assert host.replica.store.base_height() == report.info.height
            await host.start()
            net.hosts.append(host)
            later = [
                net.hosts[0].submit(anchor_tx(net, net.supervisor, os.urandom(32), net.hosts[0].now_ms()))
                for _ in range(3)
            ]
            await wait_for(
                lambda: all(host.replica.store.tx_location(t) is not None for t in later),
                20,
                "the joiner to commit what came after its snapshot",
            )
            target = net.hosts[0].replica.store.head_height()
            await wait_for(lambda: host.replica.store.head_height() >= target, 20, "the joiner to follow")
            a, b = net.hosts[0].replica.store, host.replica.store
            for h in range(report.info.height, target + 1):
                assert a.block(h) is not None and b.block(h) is not None
                assert a.block(h).hash == b.block(h).hash  # type: ignore[union-attr]
            # anchored before the snapshot: in the restored state, though their blocks are not kept
            for d in digests:
                assert b.get_state(anchor_key(d)) == a.get_state(anchor_key(d)) is not None
            assert b.pruned(1) and b.block(1) is None
            # a restored node serves snapshots of its own head in turn
            served = host.snapshots
            assert served is not None
            await wait_for(
                lambda: served.latest is not None and served.latest[0] > report.info.height,
                20,
                "the restored node's own snapshot",
            )
            assert served.last_error is None
        finally:
            await net.stop_all()

    asyncio.run(main())


def test_lying_peers_are_dropped_and_the_snapshot_comes_from_honest_ones(tmp_path: Path) -> None:
    async def main() -> None:
        net, ports, _, _ = await _running_chain(tmp_path)
        try:
            liar, forger = net.hosts[1].snapshots, net.hosts[2].snapshots
            assert liar is not None and forger is not None
            honest_read = liar.read_chunk

            def corrupt(height: int, index: int) -> bytes | None:
                data = honest_read(height, index)
                return None if data is None else data[:-1] + bytes([data[-1] ^ 1])

            liar.read_chunk = corrupt  # type: ignore[method-assign]
            # the forger offers a newer "snapshot": the real manifest claiming another state
            height, raw = forger.latest  # type: ignore[misc]
            doc = Manifest.from_bytes(raw).to_dict()
            doc["height"] += 50
            doc["state_root"] = bytes(32)
            forged = codec.encode(doc)

            class Forger(SnapshotServer):
                @property
                def latest(self) -> tuple[int, bytes] | None:
                    return height + 50, forged

            forger.__class__ = Forger
            joiner = net.nodes[4]
            store = _empty_store(net, joiner.cert.subject)
            report = await _join(
                net, ports[1:4], store, discovery_s=5, chunk_timeout_s=5
            )  # 2 liars, 1 honest
            assert report.peers == [net.hosts[3].cert.subject]
            assert any("wrong chunk" in r and "node-1" in r for r in report.refused), report.refused
            assert any(f"height {height + 50}" in r for r in report.refused), report.refused
            assert store.base_height() == report.info.height
            assert not list(net.directory.glob(".state-sync-*"))
            store.close()
            replica = Replica(net.genesis, net.directory / f"{joiner.cert.subject}.db", joiner.key)
            assert replica.store.base_height() == report.info.height
            replica.close()
        finally:
            await net.stop_all()

    asyncio.run(main())


def test_no_snapshot_offered_is_a_clear_error_and_leaves_the_store_empty(tmp_path: Path) -> None:
    async def main() -> None:
        net = HostNet.create(tmp_path, nodes=4, observers=1)
        ports = free_ports(5)
        await net.start(ports[:4], snapshot_interval=0)
        try:
            joiner = net.nodes[4]
            store = _empty_store(net, joiner.cert.subject)
            with pytest.raises(SnapshotError) as err:
                await _join(net, ports[:4], store, discovery_s=3)
            assert err.value.reason == "offers" and "no peer offered" in str(err.value)
            assert store.head_height() == 0 and store.base_height() == 0
            store.close()
        finally:
            await net.stop_all()

    asyncio.run(main())


def test_a_snapshot_every_peer_pruned_meanwhile_ends_the_restore_with_a_clear_error(tmp_path: Path) -> None:
    async def main() -> None:
        net, ports, _, _ = await _running_chain(tmp_path)
        try:
            for host in net.hosts[:4]:
                assert host.snapshots is not None
                host.snapshots.read_chunk = lambda height, index: None  # type: ignore[method-assign]
            joiner = net.nodes[4]
            store = _empty_store(net, joiner.cert.subject)
            with pytest.raises(SnapshotError) as err:
                await asyncio.wait_for(_join(net, ports[:4], store, discovery_s=3, chunk_timeout_s=5), 60)
            assert err.value.reason == "offers" and "pruned it" in str(err.value), err.value
            assert store.head_height() == 0 and store.base_height() == 0
            store.close()
        finally:
            await net.stop_all()

    asyncio.run(main())


def test_a_joiner_asks_again_when_the_snapshot_it_fetches_is_pruned_meanwhile(tmp_path: Path) -> None:
    async def main() -> None:
        net, ports, _, _ = await _running_chain(tmp_path)
        try:
            first: list[int] = []  # the height first asked for: every peer has "pruned" it
            for host in net.hosts[:4]:
                assert host.snapshots is not None
                read = host.snapshots.read_chunk

                def pruned_then(height: int, index: int, read: Any = read) -> bytes | None:
                    first[:] = first or [height]
                    return None if height == first[0] else read(height, index)  # type: ignore[no-any-return]

                host.snapshots.read_chunk = pruned_then  # type: ignore[method-assign]
            joiner = net.nodes[4]
            store = _empty_store(net, joiner.cert.subject)
            report = await asyncio.wait_for(
                _join(net, ports[:4], store, discovery_s=3, chunk_timeout_s=5), 60
            )
            assert first and report.info.height > first[0] and store.base_height() == report.info.height
            assert any("pruned" in r for r in report.refused), report.refused
            store.close()
        finally:
            await net.stop_all()

    asyncio.run(main())


def test_server_answers_requests_and_ignores_malformed_ones(tmp_path: Path) -> None:
    async def main() -> None:
        net, _, _, _ = await _running_chain(tmp_path)
        try:
            server = net.hosts[0].snapshots
            assert isinstance(server, SnapshotServer)
            height, raw = server.latest  # type: ignore[misc]
            manifest = Manifest.from_bytes(raw)
            assert manifest.height == height and server.heights()[-1] == height
            sent: list[tuple[int, bytes]] = []

            class FakePeer:
                queued_bytes = 0
                closed = asyncio.Event()

                def send(self, channel: int, payload: bytes) -> bool:
                    sent.append((channel, payload))
                    return True

            peer = FakePeer()
            for bad in (
                b"",
                b"\xff\x00",
                codec.encode([1, 2]),
                codec.encode({"m": "chunk", "h": -1, "i": 0}),
                codec.encode({"m": "chunk", "h": 1, "i": 0, "x": 1}),
                codec.encode({"m": "gimme"}),
                b"\xa1" + b"\x61m" * 40_000,
            ):
                assert server.on_frame(peer, bad) is None  # type: ignore[arg-type]
            assert sent == []
            assert server.on_frame(peer, codec.encode({"m": "list"})) is None  # type: ignore[arg-type]
            assert codec.decode(sent[-1][1]) == {"m": "offer", "h": height, "manifest": raw}
            await server.on_frame(peer, codec.encode({"m": "chunk", "h": height, "i": 0}))  # type: ignore[arg-type,misc]
            reply = codec.decode(sent[-1][1])
            assert sent[-1][0] == Channel.STATE_SYNC and reply["m"] == "data"
            manifest.check_chunk(0, reply["data"])
            await server.on_frame(peer, codec.encode({"m": "chunk", "h": height + 7, "i": 0}))  # type: ignore[arg-type,misc]
            assert codec.decode(sent[-1][1]) == {"m": "missing", "h": height + 7, "i": 0}
            await server.on_frame(peer, codec.encode({"m": "chunk", "h": height, "i": 10_000}))  # type: ignore[arg-type,misc]
            assert codec.decode(sent[-1][1])["m"] == "missing"
        finally:
            await net.stop_all()

    asyncio.run(main())


def test_snapshots_are_pruned_and_a_half_written_one_is_removed(tmp_path: Path) -> None:
    async def main() -> None:
        net, _, _, _ = await _running_chain(tmp_path, interval=2)
        try:
            host = net.hosts[0]
            server = host.snapshots
            assert server is not None
            for _ in range(6):
                host.submit(anchor_tx(net, net.supervisor, os.urandom(32), host.now_ms()))
                h = host.replica.store.head_height()
                await wait_for(lambda h=h: host.replica.store.head_height() > h + 2, 10, "more blocks")  # type: ignore[misc]
            await wait_for(lambda: len(server.heights()) == 2 and not server.taking, 10, "pruning")
            assert len(server.heights()) == server.keep == 2
        finally:
            await net.stop_all()
        d = server.directory
        (d / ".000000000099.partial").mkdir()
        store = LedgerStore(net.directory / "node-0.db", chain_genesis_block(net.genesis).hash)
        again = SnapshotServer(store, net.genesis, d, interval=0)
        assert not (d / ".000000000099.partial").exists()
        assert again.latest is not None and again.latest[0] == server.heights()[-1]
        store.close()

    asyncio.run(main())
