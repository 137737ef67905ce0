"""A node whose own event loop stood still (SIGSTOP, a long synchronous step) does not
take its peers' unread frames for their silence."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from chain.net import peers
from tests.chain.node.host_fixtures import HostNet, free_ports, wait_for


@pytest.mark.slow  # eight seconds of deliberate stalls
def test_peers_are_kept_after_the_local_event_loop_stood_still(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(peers, "IDLE_LIMIT_S", 3.0)

    async def main() -> None:
        net = HostNet.create(tmp_path, nodes=4)
        await net.start(free_ports(4))
        try:
            await wait_for(lambda: all(len(h.peers.peers) == 3 for h in net.hosts), 10, "a full mesh")
            await asyncio.sleep(1.5)
            before = [dict(h.peers.peers) for h in net.hosts]
            time.sleep(peers.IDLE_LIMIT_S + 1.0)  # every node's loop stands still, as if stopped
            await asyncio.sleep(2.5)  # the idle watch runs; heartbeats flow again
            after = [dict(h.peers.peers) for h in net.hosts]
            dropped = [
                (h.name, p.stats.subject) for h, b, a in zip(net.hosts, before, after, strict=True)
                for nid, p in b.items() if a.get(nid) is not p
            ]  # fmt: skip
            assert dropped == []
        finally:
            await net.stop_all()

    asyncio.run(main())


def test_a_peer_that_really_goes_silent_is_still_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(peers, "IDLE_LIMIT_S", 2.0)

    async def main() -> None:
        net = HostNet.create(tmp_path, nodes=4)
        await net.start(free_ports(4))
        try:
            await wait_for(lambda: all(len(h.peers.peers) == 3 for h in net.hosts), 10, "a full mesh")
            mute = net.hosts[3]
            for p in list(mute.peers.peers.values()):
                p.send = lambda channel, payload: False  # type: ignore[method-assign]
            gone = [dict(h.peers.peers).get(mute.my_id) for h in net.hosts[:3]]
            await wait_for(
                lambda: all(p is not None and p.closed.is_set() for p in gone), 6, "the mute peer dropped"
            )
        finally:
            await net.stop_all()

    asyncio.run(main())
