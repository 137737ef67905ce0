"""The vault of a running node: its store, its replicas, and the upkeep loop.

:func:`build_vault` makes the node's :class:`~chain.vault.service.VaultService` from its
``[vault]`` section: a :class:`~chain.vault.store.LocalStore` in ``<data_dir>/vault``, an
outbox for ``replicate_to`` and repair sources for ``repair_from``. Pushes and fetches
between nodes are signed with the node's own certificate (a node may hold any object's
ciphertext, never its key). :func:`vault_upkeep` pushes pending copies every
``replicate_interval_s`` and scrubs every ``scrub_interval_s`` (when set), off the event
loop, until the node stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from chain.client.vault import HttpObjects
from chain.crypto import PrivateKey
from chain.node.config import NodeConfig
from chain.types import Certificate, Genesis
from chain.vault.replication import Fetch, Outbox
from chain.vault.service import VaultService
from chain.vault.store import LocalStore

log = logging.getLogger("rongxin.node.vault")


def _fetcher(url: str, key: PrivateKey, cert: Certificate, genesis: Genesis) -> Fetch:
    def fetch(digest: bytes) -> Iterator[bytes]:
        with HttpObjects(url, key, cert, genesis) as objects:
            yield from objects.fetch(digest)

    return fetch


def _pusher(
    store: LocalStore, key: PrivateKey, cert: Certificate, genesis: Genesis
) -> Callable[[str, bytes], None]:
    def push(target: str, digest: bytes) -> None:
        with HttpObjects(target, key, cert, genesis) as objects:
            objects.put_file(digest, store.path(digest))

    return push


def build_vault(
    cfg: NodeConfig, key: PrivateKey, cert: Certificate, genesis: Genesis, state: Callable[[], Any]
) -> tuple[VaultService, Callable[[str, bytes], None]]:
    """The node's vault and its replication push (see the module docstring)."""
    v = cfg.vault
    store = LocalStore(v.directory(cfg.node.data_dir))
    outbox = Outbox(store.root / "outbox", v.replicate_to) if v.replicate_to else None
    vault = VaultService(
        store,
        state,
        max_object_bytes=v.max_object_bytes,
        outbox=outbox,
        sources=[_fetcher(url, key, cert, genesis) for url in v.sources()],
        hold_all=v.hold_all,
        operators=[bytes.fromhex(op) for op in v.operators],
    )
    return vault, _pusher(store, key, cert, genesis)


async def vault_upkeep(
    vault: VaultService, cfg: NodeConfig, push: Callable[[str, bytes], None], stop: asyncio.Event
) -> None:
    """Push pending copies and scrub on schedule until ``stop`` is set."""
    v = cfg.vault
    next_scrub = time.monotonic() + v.scrub_interval_s if v.scrub_interval_s else None
    while not stop.is_set():
        if vault.outbox is not None and vault.outbox.backlog():
            try:
                pushed, failed = await asyncio.to_thread(vault.replicate, push)
                if pushed:
                    log.info("vault: copied %d object(s) to replicas (%d failed)", pushed, failed)
            except Exception:  # the loop must outlive any one round
                log.exception("vault: replication round failed")
        if next_scrub is not None and time.monotonic() >= next_scrub:
            try:
                report = await asyncio.to_thread(vault.scrub, vault.expected())  # state read on the loop
                log.info(
                    "vault scrub: %d checked, %d damaged, %d missing, %d repaired, %d lost",
                    report.checked,
                    len(report.damaged),
                    len(report.missing),
                    len(report.repaired),
                    len(report.lost),
                )
            except Exception:
                log.exception("vault: scrub failed")
            next_scrub = time.monotonic() + v.scrub_interval_s
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), v.replicate_interval_s)


__all__ = ["build_vault", "vault_upkeep"]
