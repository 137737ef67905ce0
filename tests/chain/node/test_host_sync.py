"""Block sync on a networked host: the blocks' signatures checked once, off the event loop."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from chain.types import Transaction
from tests.chain.node.host_fixtures import HostNet, anchor_tx, free_ports, same_chain, wait_for


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
            down = net.hosts[3]
            await down.stop()
            down.replica.close()
            ids = [
                net.hosts[0].submit(anchor_tx(net, net.supervisor, os.urandom(32), net.hosts[0].now_ms()))
                for _ in range(30)
            ]
            live = net.hosts[:3]
            await wait_for(
                lambda: all(h.replica.store.tx_location(t) is not None for h in live for t in ids),
                20,
                "commits with one node down",
            )
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
