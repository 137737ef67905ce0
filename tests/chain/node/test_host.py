"""Networked hosts over loopback TCP in one event loop: consensus, gossip, sync, admission."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from chain.crypto import PrivateKey
from chain.localnet import Identity
from chain.types import Certificate, Role
from tests.chain.node.host_fixtures import (
    HostNet,
    anchor_tx,
    commit_without_last,
    free_ports,
    same_chain,
    wait_for,
)


def test_hosts_commit_gossiped_transactions_identically(tmp_path: Path) -> None:
    async def main() -> None:
        net = HostNet.create(tmp_path, nodes=4)
        await net.start(free_ports(4))
        try:
            await wait_for(lambda: all(len(h.peers.peers) == 3 for h in net.hosts), 10, "a full mesh")
            member = net.supervisor
            ids = [
                net.hosts[0].submit(anchor_tx(net, member, os.urandom(32), net.hosts[0].now_ms()))
                for _ in range(30)
            ]
            await wait_for(
                lambda: all(h.replica.store.tx_location(t) is not None for h in net.hosts for t in ids),
                20,
                "every transaction committed on every node",
            )
            top = min(h.replica.store.head_height() for h in net.hosts)
            same_chain(net, top)
            assert all(h.counters.bad_messages == 0 for h in net.hosts)
            online = net.hosts[1].online_map()
            assert sum(1 for r in online if r["connected"]) == 4
        finally:
            await net.stop_all()

    asyncio.run(main())


def test_restarted_node_catches_up_and_foreign_node_is_refused(tmp_path: Path) -> None:
    async def main() -> None:
        net = HostNet.create(tmp_path, nodes=4)
        ports = free_ports(5)
        await net.start(ports[:4])
        try:
            await wait_for(lambda: all(len(h.peers.peers) == 3 for h in net.hosts), 10, "a full mesh")
            await commit_without_last(net, 20)
            # an impostor: a node certificate from another root, dialling every node
            other_root = PrivateKey.generate()
            key = PrivateKey.generate()
            fake = Identity(
                key, Certificate.issue(other_root, "node-9", "x", [Role.CONSENSUS_NODE], key.public_key, 0)
            )
            net.nodes.append(fake)
            impostor = net.build(4, ports[4], ports[:3])
            await impostor.start()
            net.hosts[3] = net.build(3, ports[3], [q for q in ports[:4] if q != ports[3]])
            await net.hosts[3].start()
            target = net.hosts[0].replica.store.head_height()
            await wait_for(
                lambda: net.hosts[3].replica.store.head_height() >= target,
                20,
                "the restarted node to catch up",
            )
            same_chain(net, target)
            await asyncio.sleep(0.5)
            assert all(impostor.cert.cert_id.hex() not in h.peers.peers for h in net.hosts)
            assert not impostor.peers.peers
            await impostor.stop()
            impostor.replica.close()
        finally:
            await net.stop_all()

    asyncio.run(main())
