"""A node's API over an in-process consortium, for the API, WebSocket and client tests.

The service reads ``consortium.replicas[0]``; its ``submit`` gives a transaction to every
replica's mempool and, while ``drive`` is on, runs the in-memory network (virtual clock)
until it is committed — the way a host's gossip and consensus would, in milliseconds.
Every commit of node-0 publishes its events to the service's hub, as the host does.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.api.auth import sign_request
from chain.consensus.core import Committed
from chain.contracts.base import ContractRegistry
from chain.localnet import Identity, LocalConsortium
from chain.node.service import NodeService
from chain.types import Genesis, Role, Transaction

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what the project pins
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient as TestClient


@dataclass
class Node:
    """A consortium, a member of it and a :class:`NodeService` over its first replica."""

    consortium: LocalConsortium
    member: Identity
    service: NodeService = field(init=False)
    drive: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def genesis(self) -> Genesis:
        return self.consortium.genesis

    def headers(
        self, method: str, path: str, body: bytes = b"", who: Identity | None = None, **kw: Any
    ) -> dict[str, str]:
        """Signed-request headers of ``who`` (the member by default)."""
        signer = who or self.member
        return sign_request(
            signer.key, signer.cert.cert_id, method, path, body, chain_id=self.genesis.chain_id, **kw
        )

    def anchor_tx(self, digest: bytes, who: Identity | None = None, **extra: Any) -> Transaction:
        """A signed anchor transaction of ``who`` (next nonce)."""
        signer = who or self.member
        payload = {"digest": digest, "kind": "work", **extra}
        return signer.sign(self.genesis.chain_id, "anchor", payload, self.consortium.net.now)

    def unsent_tx(self, digest: bytes, **extra: Any) -> Transaction:
        """An anchor transaction of the member that will never commit (its nonce stays free)."""
        tx = self.anchor_tx(digest, **extra)
        self.member.nonce -= 1
        return tx

    async def _submit(self, raw: bytes) -> bytes:
        tx_id = self.consortium.net.submit(raw)
        if self.drive:
            self.consortium.net.wait(tx_id)
        return tx_id

    def _on_commit(self, name: str, done: Committed) -> None:
        if name == "node-0":
            self.service.publish_committed(done.block.height)


def start_node(
    directory: Path, nodes: int = 4, registry_factory: Callable[[Genesis], ContractRegistry] | None = None
) -> Node:
    """A running in-process consortium with a member and the service of node-0
    (``registry_factory``: the nodes' contracts, the ledger's own by default)."""
    consortium = LocalConsortium.create(directory, nodes=nodes, registry_factory=registry_factory)
    member = consortium.add_member("County media center", [Role.MEDIA_CENTER])
    node = Node(consortium, member)
    node.service = NodeService(
        "node-0",
        consortium.replicas[0],
        submit=node._submit,
        net_info=lambda: {"peers": [{"id": "peer-1"}, {"id": "peer-2"}], "listen": ["127.0.0.1:26656"]},
        status_extra=lambda: dict(node.extra),
    )
    consortium.net.on_commit.append(node._on_commit)
    return node


@contextlib.contextmanager
def serve(app: Any, timeout_s: float = 10.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port) in a thread; its URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", ws="websockets-sansio"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
        sock.close()
