"""Durability in groups on a networked host: one fsync for the ledger writes of the consensus
steps since the last one, off the event loop, before those steps' messages leave."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from chain.consensus.messages import Vote, decode_message
from chain.net import Channel
from chain.node.host import NodeHost
from tests.chain.node.host_fixtures import HostNet, commit_on, free_ports, wait_for


class Recorder:
    """The votes ``host`` sends, each with the highest voted round that was durable (synced)
    when it left; ``gate`` (set by default) holds every sync until it is set."""

    def __init__(self, host: NodeHost) -> None:
        self.host = host
        self.votes: list[tuple[int, int]] = []
        self.durable_round = -1
        self.syncs_started = 0
        self.gate = threading.Event()
        self.gate.set()
        self.fail: OSError | None = None
        store = host.replica.store
        take, sync = store.take_unsynced, store.sync
        taken: list[int] = []

        def recording_take() -> bool:
            unsynced = take()
            if unsynced:  # what this sync will make durable: the safety data as written now
                saved = host.replica.core.safety_store.load()
                taken.append(-1 if saved is None else saved.highest_voted_round)
            return unsynced

        def recording_sync() -> None:
            self.syncs_started += 1
            self.gate.wait(10)
            if self.fail is not None:
                raise self.fail
            sync()
            if taken:
                self.durable_round = max(self.durable_round, taken.pop(0))

        store.take_unsynced = recording_take  # type: ignore[method-assign]
        store.sync = recording_sync  # type: ignore[method-assign]
        send, broadcast = host.peers.send, host.peers.broadcast

        def recording_send(to: str, channel: Channel, payload: bytes) -> Any:
            self._record(channel, payload)
            return send(to, channel, payload)

        def recording_broadcast(channel: Channel, payload: bytes, exclude: str | None = None) -> Any:
            self._record(channel, payload)
            return broadcast(channel, payload, exclude)

        host.peers.send = recording_send  # type: ignore[method-assign]
        host.peers.broadcast = recording_broadcast  # type: ignore[method-assign]

    def _record(self, channel: Channel, payload: bytes) -> None:
        if channel != Channel.CONSENSUS:
            return
        try:
            msg = decode_message(payload)
        except Exception:  # a compact proposal: not a vote
            return
        if isinstance(msg, Vote):
            self.votes.append((msg.round, self.durable_round))


async def meshed(tmp_path: Path) -> tuple[HostNet, Recorder]:
    """Four nodes on loopback, connected, node 1 watched by a :class:`Recorder` from its start."""
    net = HostNet.create(tmp_path, nodes=4)
    net.ports = free_ports(4)
    net.hosts = [net.build(i, p, [q for q in net.ports if q != p]) for i, p in enumerate(net.ports)]
    rec = Recorder(net.hosts[1])
    for host in net.hosts:
        await host.start()
    await wait_for(lambda: all(len(h.peers.peers) == 3 for h in net.hosts), 10, "a full mesh")
    return net, rec


def on_meshed(tmp_path: Path, body: Callable[[HostNet, Recorder], Awaitable[None]]) -> None:
    """Run ``body`` on a :func:`meshed` consortium, and stop it after."""

    async def main() -> None:
        net, rec = await meshed(tmp_path)
        try:
            await body(net, rec)
        finally:
            await net.stop_all()

    asyncio.run(main())


def test_a_vote_leaves_only_once_the_safety_data_allowing_it_is_synced(tmp_path: Path) -> None:
    async def body(net: HostNet, rec: Recorder) -> None:
        for _ in range(16):  # a block or more each
            await commit_on(net, net.hosts, 3)
        assert len(rec.votes) >= 3
        assert all(r <= durable for r, durable in rec.votes), rec.votes
        assert net.hosts[1].counters.ledger_syncs >= 2

    on_meshed(tmp_path, body)


def test_the_event_loop_goes_on_while_the_ledger_is_synced(tmp_path: Path) -> None:
    async def body(net: HostNet, rec: Recorder) -> None:
        slow = net.hosts[1]
        rec.gate.clear()  # every sync of this node waits
        votes, heard = len(rec.votes), slow.counters.messages_in
        await commit_on(net, [net.hosts[0], *net.hosts[2:]], 20)  # a quorum without it
        await commit_on(net, [net.hosts[0], *net.hosts[2:]], 20)
        assert rec.syncs_started >= 1
        assert slow.counters.messages_in > heard  # its loop still reads its peers
        assert len(rec.votes) == votes  # but nothing waiting for the disk left
        rec.gate.set()
        ids = await commit_on(net, net.hosts, 10)
        assert all(slow.replica.store.tx_location(t) is not None for t in ids)
        assert len(rec.votes) > votes
        assert all(r <= durable for r, durable in rec.votes), rec.votes

    on_meshed(tmp_path, body)


def test_a_failed_sync_halts_the_node_and_nothing_waiting_for_it_leaves(tmp_path: Path) -> None:
    async def body(net: HostNet, rec: Recorder) -> None:
        bad = net.hosts[1]
        rec.fail = OSError(5, "Input/output error")
        await wait_for(lambda: bad.halted.is_set(), 10, "the node to halt")
        assert "cannot be made durable" in bad.halt_reason and "Input/output" in bad.halt_reason
        votes = len(rec.votes)
        await commit_on(net, [net.hosts[0], *net.hosts[2:]], 10)  # the others go on
        assert len(rec.votes) == votes

    on_meshed(tmp_path, body)
