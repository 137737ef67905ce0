"""Stopping a node ends even when one of its tasks lost a cancellation (Python 3.11's
``asyncio.wait_for`` can drop one when the awaited call completes at that moment)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from tests.chain.node.host_fixtures import HostNet, free_ports, wait_for


def test_stop_ends_when_a_task_swallowed_its_cancellation(tmp_path: Path) -> None:
    async def main() -> None:
        net = HostNet.create(tmp_path, nodes=4)
        await net.start(free_ports(4))
        try:
            await wait_for(lambda: all(len(h.peers.peers) == 3 for h in net.hosts), 10, "a full mesh")
            pm = net.hosts[0].peers
            peer = next(iter(pm.peers.values()))

            async def lost_cancel() -> None:  # as a dial loop that connected despite the cancel
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(60)
                await peer.closed.wait()

            stubborn = asyncio.ensure_future(lost_cancel())
            pm._tasks.append(stubborn)
            await asyncio.sleep(0)
        finally:
            started = time.monotonic()
            await asyncio.wait_for(net.stop_all(), 30)
        assert stubborn.done() and peer.closed.is_set()
        assert time.monotonic() - started < 15  # not the 30 s of the outer guard

    asyncio.run(main())
