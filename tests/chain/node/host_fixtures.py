"""Consortia of networked hosts in one event loop, over loopback TCP (tests only)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from chain.crypto import PrivateKey
from chain.localnet import Identity
from chain.node.host import NodeHost
from chain.node.statesync import SnapshotServer
from chain.replica import Replica
from chain.types import Certificate, ChainParams, Genesis, Role


@dataclass
class StubPeer:
    """A peer link that records what is sent to it (for frames fed to a host by hand)."""

    node_id: str
    sent: list[tuple[int, bytes]] = field(default_factory=list)
    stats: Any = field(default_factory=lambda: SimpleNamespace(subject="stub"))

    def send(self, channel: int, payload: bytes) -> bool:
        self.sent.append((int(channel), payload))
        return True


@dataclass
class HostNet:
    """Keys, genesis and one :class:`NodeHost` per node, all on 127.0.0.1."""

    directory: Path
    root: PrivateKey
    supervisor: Identity
    nodes: list[Identity]
    genesis: Genesis
    hosts: list[NodeHost] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)

    @classmethod
    def create(cls, directory: Path, nodes: int = 4, observers: int = 0, **params: int) -> HostNet:
        root = PrivateKey.generate()

        def issue(subject: str, roles: list[Role]) -> Identity:
            key = PrivateKey.generate()
            return Identity(key, Certificate.issue(root, subject, subject, roles, key.public_key, 0))

        supervisor = issue("Supervisor", [Role.SUPERVISOR])
        ids = [issue(f"node-{i}", [Role.CONSENSUS_NODE]) for i in range(nodes)]
        ids += [issue(f"observer-{i}", [Role.OBSERVER_NODE]) for i in range(observers)]
        p = {"round_timeout_ms": 1000, **params}
        genesis = Genesis(
            "host test consortium",
            "rongxin-hosttest",
            root.public_key.to_bytes(),
            (supervisor.cert, *(n.cert for n in ids)),
            ChainParams(**p),
        )
        return cls(directory, root, supervisor, ids, genesis)

    def build(
        self, i: int, port: int, peers: list[int], snapshot_interval: int | None = None, **kw: object
    ) -> NodeHost:
        ident = self.nodes[i]
        replica = Replica(self.genesis, self.directory / f"{ident.cert.subject}.db", ident.key)
        if snapshot_interval is not None:
            kw["snapshots"] = SnapshotServer(
                replica.store,
                self.genesis,
                self.directory / f"{ident.cert.subject}-snapshots",
                interval=snapshot_interval,
                chunk_bytes=1024,  # small chunks: a snapshot of a test chain spans several
            )
        return NodeHost(
            replica,
            ident.key,
            ident.cert,
            name=ident.cert.subject,
            listen=[("127.0.0.1", port)],
            persistent_peers=[("127.0.0.1", q) for q in peers],
            **kw,  # type: ignore[arg-type]
        )

    async def start(self, ports: list[int], snapshot_interval: int | None = None) -> None:
        """Build and start a host for each node on ``ports`` (a full mesh of persistent peers)."""
        self.ports = list(ports)
        self.hosts = [
            self.build(i, port, [q for q in self.ports if q != port], snapshot_interval)
            for i, port in enumerate(self.ports)
        ]
        for h in self.hosts:
            await h.start()

    async def stop_all(self) -> None:
        for h in self.hosts:
            await h.stop()
            h.replica.close()


async def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``cond`` every 20 ms; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def same_chain(net: HostNet, upto: int, *, complete: bool = False) -> None:
    """Assert that the nodes hold the same block at every height up to ``upto`` (every node
    holds each one, when ``complete``)."""
    for height in range(1, upto + 1):
        stored = [host.replica.store.block(height) for host in net.hosts]
        assert len({b.hash for b in stored if b is not None}) == 1, f"nodes disagree at height {height}"
        assert not complete or None not in stored, f"a node lacks height {height}"


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    import socket

    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def anchor_tx(net: HostNet, who: Identity, digest: bytes, now_ms: int) -> bytes:
    """A signed anchor transaction of ``digest`` by ``who``."""
    return who.sign(net.genesis.chain_id, "anchor", {"digest": digest, "kind": "work"}, now_ms).to_bytes()


async def commit_on(net: HostNet, live: list[NodeHost], count: int) -> list[bytes]:
    """Submit ``count`` anchor transactions to the first of ``live`` and wait until every
    one of ``live`` has committed them; their ids."""
    first = live[0]
    ids = [first.submit(anchor_tx(net, net.supervisor, os.urandom(32), first.now_ms())) for _ in range(count)]
    await wait_for(
        lambda: all(h.replica.store.tx_location(t) is not None for h in live for t in ids),
        20,
        f"commits on {len(live)} nodes",
    )
    return ids


async def commit_without_last(net: HostNet, count: int) -> list[bytes]:
    """Stop the last node, then commit ``count`` anchor transactions on the others; their ids."""
    down = net.hosts[-1]
    await down.stop()
    down.replica.close()
    return await commit_on(net, net.hosts[:-1], count)
