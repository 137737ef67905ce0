"""Block sync on a networked host: the blocks' signatures checked once, off the event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from chain.consensus.core import Broadcast, Send
from chain.consensus.messages import SyncRequest, SyncResponse, encode_message
from chain.crypto import PublicKey
from chain.net import Channel
from chain.node.metrics import node_registry
from chain.types import Transaction
from tests.chain.node.host_fixtures import (
    HostNet,
    StubPeer,
    commit_on,
    commit_without_last,
    free_ports,
    same_chain,
    wait_for,
)


class Checks:
    """Every transaction signature check from the moment :meth:`watch` is called: the
    transaction's id and the thread that checked it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.seen: list[tuple[bytes, str]] = []

    def watch(self) -> None:
        verify, verify_many = Transaction.verify_signature, Transaction.verify_signatures
        seen = self.seen

        def counting(tx: Transaction, *args: object, **kwargs: object) -> None:
            seen.append((tx.tx_id, threading.current_thread().name))
            verify(tx, *args, **kwargs)  # type: ignore[arg-type]

        def counting_many(jobs: list[tuple[Transaction, PublicKey]], *args: object) -> list[str | None]:
            seen.extend((tx.tx_id, threading.current_thread().name) for tx, _ in jobs)
            return verify_many(jobs, *args)  # type: ignore[arg-type]

        self.monkeypatch.setattr(Transaction, "verify_signature", counting)
        self.monkeypatch.setattr(Transaction, "verify_signatures", staticmethod(counting_many))

    def ids(self) -> list[bytes]:
        return [t for t, _ in self.seen]


async def meshed(tmp_path: Path) -> tuple[HostNet, list[int]]:
    """Four nodes on loopback, started and connected to each other."""
    net = HostNet.create(tmp_path, nodes=4)
    ports = free_ports(4)
    await net.start(ports)
    await wait_for(lambda: all(len(h.peers.peers) == 3 for h in net.hosts), 10, "a full mesh")
    return net, ports


def test_synced_blocks_are_verified_once_in_the_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = Checks(monkeypatch)

    async def main() -> None:
        net, ports = await meshed(tmp_path)
        try:
            await commit_without_last(net, 30)
            target = net.hosts[0].replica.store.head_height()
            checks.watch()  # from here on only the restarted node has transactions to check
            net.hosts[3] = net.build(3, ports[3], [q for q in ports if q != ports[3]])
            await net.hosts[3].start()
            restarted = net.hosts[3]
            await wait_for(lambda: restarted.replica.store.head_height() >= target, 20, "the catch-up")
            same_chain(net, target, complete=True)
        finally:
            await net.stop_all()

    asyncio.run(main())
    tx_ids = checks.ids()
    assert len(tx_ids) == len(set(tx_ids)) >= 30  # every synced transaction checked, none twice,
    loop_thread = threading.main_thread().name
    assert all(thread != loop_thread for _, thread in checks.seen)  # in the worker, not on the loop


def test_synced_answers_are_checked_in_order_and_copies_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = Checks(monkeypatch)

    async def main() -> None:
        net, _ = await meshed(tmp_path)
        try:
            await commit_without_last(net, 10)
            for _ in range(3):  # more blocks with transactions
                await commit_on(net, net.hosts[:3], 10)
            # answers of a node that holds the chain: a short one, and the longest it gives
            source = net.hosts[0].replica.core
            # no peers, and a port the others do not dial (they keep dialing ports[3]):
            # only the frames fed below reach it
            lag = net.build(3, free_ports(1)[0], [])
            await lag.start()
            me = lag.replica.node_id
            full = next(a.msg for a in source.on_message(me, SyncRequest(1), 0) if isinstance(a, Send))
            source.config = dataclasses.replace(source.config, sync_bytes=1)
            short = next(a.msg for a in source.on_message(me, SyncRequest(1), 0) if isinstance(a, Send))
            assert isinstance(full, SyncResponse) and isinstance(short, SyncResponse)
            assert short.blocks[-1].height < full.blocks[-1].height
            txs = sum(len(b.payload) for b in full.blocks)
            assert txs >= 40
            taken: list[SyncResponse] = []  # what the core is handed, in order
            on_message = lag.replica.core.on_message

            def recorded(sender: str, msg: Any, now_ms: int) -> Any:
                if isinstance(msg, SyncResponse):
                    taken.append(msg)
                return on_message(sender, msg, now_ms)

            lag.replica.core.on_message = recorded  # type: ignore[method-assign]
            checks.watch()
            peer = StubPeer(source.node_id)
            for resp in (short, short, full, short, full):  # copies, and a longer answer
                lag._on_consensus(peer, Channel.BLOCK_SYNC, encode_message(resp))  # type: ignore[arg-type]
            await wait_for(
                lambda: lag.replica.core.committed.height >= full.blocks[-1].height, 20, "the answers applied"
            )
            assert lag.counters.messages_in == 5 and not lag.peers.peers  # only the frames above
            await lag.stop()
            lag.replica.close()
        finally:
            await net.stop_all()
        # the short answer, then the long one (only its blocks beyond the short one checked);
        # the copies never reach the core, and no signature is checked twice
        assert taken == [short, full]
        assert len(checks.ids()) == len(set(checks.ids())) == txs

    asyncio.run(main())


def test_block_requests_sent_and_received_are_counted(tmp_path: Path) -> None:
    async def main() -> None:
        net = HostNet.create(tmp_path, nodes=4)
        host = net.build(0, free_ports(1)[0], [])
        net.hosts = [host]
        await host.start()
        try:
            base_sent, base_received = host.counters.block_requests, host.counters.sync_requests
            missing = b"\x42" * 32
            # by hash, to one peer and to all: two requests; for committed blocks: not one
            host._handle(
                [
                    Send("node-1", SyncRequest(1, missing)),
                    Broadcast(SyncRequest(1, missing)),
                    Broadcast(SyncRequest(1)),
                ]
            )
            assert host.counters.block_requests == base_sent + 2
            peer = StubPeer("node-1")
            host._on_consensus(peer, Channel.BLOCK_SYNC, encode_message(SyncRequest(1)))  # type: ignore[arg-type]
            host._on_consensus(peer, Channel.BLOCK_SYNC, encode_message(SyncRequest(1, missing)))  # type: ignore[arg-type]
            # a request on the wrong channel is a bad message, not a request
            host._on_consensus(peer, Channel.CONSENSUS, encode_message(SyncRequest(1)))  # type: ignore[arg-type]
            assert host.counters.sync_requests == base_received + 2
            text = generate_latest(node_registry(host)).decode()
            assert f"rongxin_consensus_block_requests_total {float(base_sent + 2)}" in text
            assert f"rongxin_blocksync_requests_received_total {float(base_received + 2)}" in text
        finally:
            await net.stop_all()

    asyncio.run(main())
