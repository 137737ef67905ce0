"""Vault nodes over one in-process consortium, each served by uvicorn on loopback.

``vault_nodes`` starts the API of ``count`` replicas, each with its own vault directory;
node 0 (a member's node) replicates to the last one (the supervisory organization's node,
``hold_all``), which repairs from node 0. Members: an owner (a legal center), a court
and a stranger; each gets a :class:`VaultClient` over an in-process ledger and node 0's
HTTP vault routes.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.api import create_app
from chain.client.inprocess import InProcessLedger
from chain.client.vault import HttpObjects, VaultClient
from chain.localnet import Identity, LocalConsortium
from chain.node.service import NodeService
from chain.types import Role
from chain.vault.replication import Outbox
from chain.vault.service import VaultService
from chain.vault.store import LocalStore, ObjectStore
from tests.chain.api.harness import serve


@dataclass
class VaultNet:
    consortium: LocalConsortium
    owner: Identity
    court: Identity
    stranger: Identity
    vaults: list[VaultService] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    node_ids: list[Identity] = field(default_factory=list)

    def objects(self, who: Identity, node: int = 0) -> HttpObjects:
        return HttpObjects(self.urls[node], who.key, who.cert, self.consortium.genesis)

    def client(self, who: Identity, node: int = 0) -> VaultClient:
        ledger = InProcessLedger(self.consortium, who)
        return VaultClient(ledger, self.objects(who, node), who.key, who.cert)

    def push(self, node: int) -> Any:
        """The replication push of ``node``: upload as the node's own certificate."""
        me = self.node_ids[node]
        vault = self.vaults[node]

        def push(target: str, digest: bytes) -> None:
            store = vault.store
            with HttpObjects(target, me.key, me.cert, self.consortium.genesis) as objects:
                if isinstance(store, LocalStore):
                    objects.put_file(digest, store.path(digest))
                    return
                with tempfile.NamedTemporaryFile() as spool, store.open(digest) as src:
                    shutil.copyfileobj(src, spool)
                    spool.flush()
                    objects.put_file(digest, spool.name)

        return push

    def fetcher(self, node: int, source: int) -> Any:
        me = self.node_ids[node]

        def fetch(digest: bytes) -> Iterator[bytes]:
            with HttpObjects(self.urls[source], me.key, me.cert, self.consortium.genesis) as objects:
                yield from objects.fetch(digest)

        return fetch


async def _submit(consortium: LocalConsortium, raw: bytes) -> bytes:
    tx_id = consortium.net.submit(raw)
    consortium.net.wait(tx_id)
    return tx_id


@contextlib.contextmanager
def vault_nodes(
    directory: Path,
    count: int = 2,
    max_object_bytes: int = 1 << 20,
    store_for: Callable[[int], ObjectStore] | None = None,
) -> Iterator[VaultNet]:
    consortium = LocalConsortium.create(directory / "chain", nodes=4)
    net = VaultNet(
        consortium,
        consortium.add_member("Legal center", [Role.LEGAL_CENTER]),
        consortium.add_member("Internet court", [Role.AUDITOR]),
        consortium.add_member("Another center", [Role.MEDIA_CENTER]),
        node_ids=list(consortium.nodes),
    )
    with contextlib.ExitStack() as stack:
        for i in range(count):
            replica = consortium.replicas[i]
            (directory / f"vault-{i}").mkdir(parents=True, exist_ok=True)
            store = store_for(i) if store_for is not None else LocalStore(directory / f"vault-{i}")
            vault = VaultService(
                store,
                lambda r=replica: r.app.state,  # type: ignore[misc]
                max_object_bytes=max_object_bytes,
                hold_all=i == count - 1,
                catalog=directory / f"vault-{i}" / "catalog",
            )
            net.vaults.append(vault)

            async def submit(raw: bytes) -> bytes:
                return await _submit(consortium, raw)

            service = NodeService(f"node-{i}", replica, submit=submit, vault=vault)
            net.urls.append(stack.enter_context(serve(create_app(service))))
        last = count - 1
        if count > 1:
            net.vaults[0].outbox = Outbox(directory / "vault-0" / "outbox", [net.urls[last]])
            net.vaults[last].sources = [net.fetcher(last, 0)]
            net.vaults[0].sources = [net.fetcher(0, last)]
        try:
            yield net
        finally:
            consortium.close()
