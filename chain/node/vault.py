"""The vault of a running node: its store, its replicas, and the upkeep loop.

:func:`build_vault` makes the node's :class:`~chain.vault.service.VaultService` from its
``[vault]`` section: a :class:`~chain.vault.store.LocalStore` in ``<data_dir>/vault`` (or,
with ``backend = "s3"``, a :class:`~chain.vault.s3.S3Store` over the configured bucket,
the directory then keeping only the catalog, the outbox and copies being pushed), an
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
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from chain.client.vault import HttpObjects
from chain.crypto import PrivateKey
from chain.errors import ConfigError
from chain.node.config import NodeConfig, S3Settings
from chain.types import Certificate, Genesis
from chain.vault.replication import Fetch, Outbox
from chain.vault.service import VaultService
from chain.vault.store import LocalStore, ObjectStore

log = logging.getLogger("rongxin.node.vault")


def _fetcher(url: str, key: PrivateKey, cert: Certificate, genesis: Genesis) -> Fetch:
    def fetch(digest: bytes) -> Iterator[bytes]:
        with HttpObjects(url, key, cert, genesis) as objects:
            yield from objects.fetch(digest)

    return fetch


def _pusher(
    store: ObjectStore, spool: Path, key: PrivateKey, cert: Certificate, genesis: Genesis
) -> Callable[[str, bytes], None]:
    def push(target: str, digest: bytes) -> None:
        with HttpObjects(target, key, cert, genesis) as objects:
            if isinstance(store, LocalStore):
                objects.put_file(digest, store.path(digest))
                return
            fd, name = tempfile.mkstemp(prefix="push-", dir=spool)  # a remote object, copied here first
            try:
                with os.fdopen(fd, "wb") as out, store.open(digest) as src:
                    shutil.copyfileobj(src, out, 1 << 20)
                objects.put_file(digest, name)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name)

    return push


def s3_secret(cfg: NodeConfig, s3: S3Settings) -> str:
    """The S3 secret access key: the first line of ``s3_secret_file``, or the variable
    named by ``s3_secret_env`` (never logged, never in ``node.toml``)."""
    if s3.secret_file is not None:
        try:
            with open(s3.secret_file, encoding="utf-8") as fh:
                secret = fh.readline().strip()
        except (OSError, UnicodeDecodeError):
            raise ConfigError(str(cfg.path), "vault", "s3_secret_file", "cannot be read") from None
        where = "s3_secret_file"
    else:
        secret = os.environ.get(s3.secret_env or "", "")
        where = "s3_secret_env"
    if not secret:
        raise ConfigError(str(cfg.path), "vault", where, "gives an empty secret")
    return secret


def open_store(cfg: NodeConfig) -> ObjectStore:
    """The node's object store as configured (``backend``)."""
    v = cfg.vault
    if v.backend == "s3" and v.s3 is not None:
        from chain.vault.s3 import S3Store  # boto3 is loaded only by nodes that use it

        s3 = v.s3
        return S3Store.connect(
            s3.endpoint,
            s3.bucket,
            region=s3.region,
            access_key_id=s3.access_key_id,
            secret_access_key=s3_secret(cfg, s3),
            prefix=s3.prefix,
            part_bytes=s3.part_bytes,
        )
    return LocalStore(v.directory(cfg.node.data_dir))


def build_vault(
    cfg: NodeConfig, key: PrivateKey, cert: Certificate, genesis: Genesis, state: Callable[[], Any]
) -> tuple[VaultService, Callable[[str, bytes], None]]:
    """The node's vault and its replication push (see the module docstring)."""
    v = cfg.vault
    local = v.directory(cfg.node.data_dir)
    local.mkdir(parents=True, exist_ok=True, mode=0o700)
    spool = local / "spool"
    spool.mkdir(exist_ok=True, mode=0o700)
    for stale in spool.iterdir():
        with contextlib.suppress(OSError):
            stale.unlink()
    store = open_store(cfg)
    outbox = Outbox(local / "outbox", v.replicate_to) if v.replicate_to else None
    vault = VaultService(
        store,
        state,
        max_object_bytes=v.max_object_bytes,
        outbox=outbox,
        sources=[_fetcher(url, key, cert, genesis) for url in v.sources()],
        hold_all=v.hold_all,
        operators=[bytes.fromhex(op) for op in v.operators],
        catalog=local / "catalog",
    )
    return vault, _pusher(store, spool, key, cert, genesis)


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


__all__ = ["build_vault", "open_store", "s3_secret", "vault_upkeep"]
