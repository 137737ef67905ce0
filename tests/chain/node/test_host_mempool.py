"""Mempool gossip across reconnections: a transaction a node admitted while it had no
connection to the others still reaches them once it connects."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from chain import codec
from chain.node.host import NodeHost
from chain.node.metrics import node_registry
from tests.chain.node.host_fixtures import HostNet, StubPeer, anchor_tx, free_ports, wait_for


def test_transactions_admitted_without_peers_are_sent_to_peers_that_connect(tmp_path: Path) -> None:
    async def main() -> None:
        net = HostNet.create(tmp_path, nodes=4, observers=1)
        ports = free_ports(5)
        observer = net.build(4, ports[4], ports[:4])
        net.hosts = [observer]
        await observer.start()  # alone: nobody to gossip to
        try:
            ids = [
                observer.submit(anchor_tx(net, net.supervisor, os.urandom(32), observer.now_ms()))
                for _ in range(5)
            ]
            await asyncio.sleep(0.1)  # the gossip flush went to no one
            assert len(observer.replica.app.mempool) == 5
            for i in range(4):
                host = net.build(i, ports[i], [q for q in ports if q != ports[i]])
                net.hosts.append(host)
                await host.start()
            await wait_for(
                lambda: all(h.replica.store.tx_location(t) is not None for h in net.hosts for t in ids),
                20,
                "the observer's transactions committed on every node",
            )
        finally:
            await net.stop_all()

    asyncio.run(main())


async def _lone_host(tmp_path: Path) -> tuple[HostNet, NodeHost]:
    """A started validator of a four-node network, with no peers."""
    net = HostNet.create(tmp_path, nodes=4)
    host = net.build(0, free_ports(1)[0], [])
    net.hosts = [host]
    await host.start()
    return net, host


def test_gossip_beyond_a_full_admission_queue_is_counted_and_kept_for_proposals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chain.node import host as host_module

    async def main() -> None:
        net, host = await _lone_host(tmp_path)
        try:
            peer = StubPeer(host.replica.node_id)
            txs = [anchor_tx(net, net.supervisor, os.urandom(32), host.now_ms()) for _ in range(300)]
            async with host._admission:  # the admission of gossip stalls (a slow node)
                for raw in txs:
                    host._on_gossip(peer, codec.encode([raw]))  # type: ignore[arg-type]
                await asyncio.sleep(0.05)
                # 256 batches queued (fed without a pause: the worker took none), the rest
                # dropped unread
                assert host.counters.gossip_dropped == 300 - 256
                assert host.counters.txs_refused == host.counters.gossip_dropped
                text = generate_latest(node_registry(host)).decode()
                assert "rongxin_mempool_dropped_gossip_txs_total 44.0" in text
                # not admitted, but a compact proposal naming them is rebuilt from them
                tx_id_of = host.replica.app.executor.tx_id_of
                kept = txs[256:]
                assert all(host.rebuilds.lookup(tx_id_of(raw)) == raw for raw in kept)
                assert host.counters.gossip_overflow_used == 44
                assert host.rebuilds.lookup(os.urandom(32)) is None
                text = generate_latest(node_registry(host)).decode()
                assert "rongxin_mempool_overflow_rebuilt_txs_total 44.0" in text
                # bounded: past the limit the oldest go first
                monkeypatch.setattr(host_module, "OVERFLOW_TXS", 50)
                # the worker has taken one batch meanwhile (it waits for admission): one more fills the queue
                host._on_gossip(peer, codec.encode([txs[0]]))  # type: ignore[arg-type]
                assert host.counters.gossip_dropped == 44
                more = [anchor_tx(net, net.supervisor, os.urandom(32), host.now_ms()) for _ in range(10)]
                host._on_gossip(peer, codec.encode(more))  # type: ignore[arg-type]
                assert host.rebuilds.lookup(tx_id_of(kept[0])) is None
                assert host.rebuilds.lookup(tx_id_of(kept[3])) is None
                assert host.rebuilds.lookup(tx_id_of(kept[4])) == kept[4]
                assert host.rebuilds.lookup(tx_id_of(more[-1])) == more[-1]
                # gossip of what is kept already is not kept twice (it would push others out)
                host._on_gossip(peer, codec.encode(more))  # type: ignore[arg-type]
                assert host.rebuilds.lookup(tx_id_of(kept[4])) == kept[4]
                assert host.counters.gossip_dropped == 64
                assert len(host.replica.app.mempool) == 0
            # once the queue is through, what it turned away (and the bound kept) is admitted
            # too, oldest first, and counted once
            await wait_for(lambda: len(host.replica.app.mempool) == 256 + 50, 10, "the gossip admitted")
            assert all(host.replica.app.mempool.get(tx_id_of(raw)) is not None for raw in kept[4:] + more)
            assert all(host.replica.app.mempool.get(tx_id_of(raw)) is None for raw in kept[:4])
            # (the copy of txs[0] is pending: not refused)
            assert host.counters.txs_gossiped_in == 257 and host.counters.txs_refused == 64
            assert not host._overflow and host._overflow.bytes == 0
        finally:
            await net.stop_all()

    asyncio.run(main())


def test_kept_gossip_is_let_go_once_committed(tmp_path: Path) -> None:
    async def main() -> None:
        net = HostNet.create(tmp_path, nodes=4)
        await net.start(free_ports(4))
        try:
            first, other = net.hosts[0], net.hosts[1]
            raw = anchor_tx(net, net.supervisor, os.urandom(32), other.now_ms())
            tx_id = first.replica.app.executor.tx_id_of(raw)
            first._keep_overflow([raw])  # as if its gossip had found the queue full
            assert first.rebuilds.lookup(tx_id) == raw
            other.submit(raw)
            await wait_for(
                lambda: all(h.replica.store.tx_location(tx_id) is not None for h in net.hosts),
                20,
                "the transaction committed everywhere",
            )
            assert first._overflow.bytes == 0 and not first._overflow
            first._keep_overflow([raw])  # a late copy of a committed transaction is not kept
            assert not first._overflow
        finally:
            await net.stop_all()

    asyncio.run(main())


def test_signature_checks_of_gossip_are_counted_with_their_cpu_time(tmp_path: Path) -> None:
    async def main() -> None:
        net, host = await _lone_host(tmp_path)
        try:
            peer = StubPeer(host.replica.node_id)
            txs = [anchor_tx(net, net.supervisor, os.urandom(32), host.now_ms()) for _ in range(20)]
            forged = bytearray(anchor_tx(net, net.supervisor, os.urandom(32), host.now_ms()))
            forged[-5] ^= 1
            assert host.counters.signature_checks == 0
            host._on_gossip(peer, codec.encode([*txs, bytes(forged)]))  # type: ignore[arg-type]
            await wait_for(lambda: len(host.replica.app.mempool) == 20, 10, "the gossip admitted")
            assert host.counters.signature_checks == 21  # the forged one was checked too
            assert host.counters.signature_check_cpu_s > 0
            text = generate_latest(node_registry(host)).decode()
            assert "rongxin_crypto_tx_signature_checks_total 21.0" in text
            line = next(x for x in text.splitlines() if x.startswith("rongxin_crypto_tx_signature_check_cpu"))
            assert float(line.split()[-1]) == host.counters.signature_check_cpu_s
            # the node's registry also carries the collector's counters and the process's own
            assert 'rongxin_process_gc_collections_total{generation="0"}' in text
            assert "process_resident_memory_bytes" in text
        finally:
            await net.stop_all()

    asyncio.run(main())
