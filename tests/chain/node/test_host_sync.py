"""Block sync on a networked host: the blocks' signatures checked once, off the event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest

from chain.consensus.core import Send
from chain.consensus.messages import SyncRequest, SyncResponse, encode_message
from chain.net import Channel
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


def test_synced_blocks_are_verified_once_in_the_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[tuple[bytes, str]] = []
    verify = Transaction.verify_signature

    def counting(self: Transaction, *args: object, **kwargs: object) -> None:
        checked.append((self.tx_id, threading.current_thread().name))
        verify(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Transaction, "verify_signature", counting)

    async def main() -> None:
        net = HostNet.create(tmp_path, nodes=4)
        ports = free_ports(4)
        await net.start(ports)
        try:
            await wait_for(lambda: all(len(h.peers.peers) == 3 for h in net.hosts), 10, "a full mesh")
            await commit_without_last(net, 30)
            target = net.hosts[0].replica.store.head_height()
            checked.clear()  # from here on only the restarted node has transactions to check
            net.hosts[3] = net.build(3, ports[3], [q for q in ports if q != ports[3]])
            await net.hosts[3].start()
            restarted = net.hosts[3]
            await wait_for(lambda: restarted.replica.store.head_height() >= target, 20, "the catch-up")
            same_chain(net, target, complete=True)
        finally:
            await net.stop_all()

    asyncio.run(main())
    tx_ids = [t for t, _ in checked]
    assert len(tx_ids) == len(set(tx_ids)) >= 30  # every synced transaction checked, none twice,
    loop_thread = threading.main_thread().name
    assert all(thread != loop_thread for _, thread in checked)  # in the worker, not on the loop


def test_copies_of_a_response_being_checked_are_dropped_and_the_newest_longer_one_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[bytes] = []
    verify = Transaction.verify_signature

    def counting(self: Transaction, *args: object, **kwargs: object) -> None:
        checked.append(self.tx_id)
        verify(self, *args, **kwargs)  # type: ignore[arg-type]

    async def main() -> None:
        net = HostNet.create(tmp_path, nodes=4)
        ports = free_ports(4)
        await net.start(ports)
        try:
            await wait_for(lambda: all(len(h.peers.peers) == 3 for h in net.hosts), 10, "a full mesh")
            await commit_without_last(net, 10)
            for _ in range(3):  # more blocks with transactions
                await commit_on(net, net.hosts[:3], 10)
            # answers of a node that holds the chain: a short one, and the longest it gives
            source = net.hosts[0].replica.core
            lag = net.build(3, ports[3], [])  # no peers: only the frames fed below reach it
            await lag.start()
            me = lag.replica.node_id
            full = next(a.msg for a in source.on_message(me, SyncRequest(1), 0) if isinstance(a, Send))
            source.config = dataclasses.replace(source.config, sync_bytes=1)
            short = next(a.msg for a in source.on_message(me, SyncRequest(1), 0) if isinstance(a, Send))
            assert isinstance(full, SyncResponse) and isinstance(short, SyncResponse)
            assert short.blocks[-1].height < full.blocks[-1].height
            txs = sum(len(b.payload) for b in full.blocks)
            assert txs >= 40
            started: list[SyncResponse] = []
            check = lag._verified_then

            async def counted(sender: str, msg: Any, payload: Any) -> None:
                started.append(msg)
                await check(sender, msg, payload)

            lag._verified_then = counted  # type: ignore[method-assign]
            monkeypatch.setattr(Transaction, "verify_signature", counting)
            peer = StubPeer(source.node_id)
            for resp in (short, short, full, short, full):  # copies, and a longer answer
                lag._on_consensus(peer, Channel.BLOCK_SYNC, encode_message(resp))  # type: ignore[arg-type]
            await wait_for(
                lambda: lag.replica.core.committed.height >= full.blocks[-1].height, 20, "the answers applied"
            )
            await lag.stop()
            lag.replica.close()
        finally:
            await net.stop_all()
        # the short answer, then the long one once the short was applied; nothing twice
        assert started == [short, full]
        assert len(checked) == len(set(checked)) == txs

    asyncio.run(main())
