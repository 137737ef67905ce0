"""``rongxin node run``: a consortium node as a long-running process.

:func:`run_node` opens the node's ledger, starts its :class:`~chain.node.host.NodeHost`
(P2P and consensus) and its HTTP API (uvicorn, in the same event loop, so that API
handlers read the replica without locks), and runs until SIGTERM or SIGINT. Then it
stops accepting work, closes its connections, closes the ledger and records the stop in
the operations audit log. A SIGKILL loses nothing that was acknowledged: blocks, state
and the consensus safety data are fsynced before anything that depends on them leaves
the node.

Examples
--------
``rongxin node run --config net/node-0/node.toml`` (see ``docs/operator-guide.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import os
import signal
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from chain import _native
from chain.contracts.base import ContractRegistry
from chain.errors import SnapshotError, StoreError
from chain.mempool import MempoolConfig
from chain.node.batches import SqliteBatchIndex
from chain.node.config import NodeConfig
from chain.node.heap import tuned_collector
from chain.node.host import NodeHost
from chain.node.identity import load_genesis, load_identity
from chain.node.logs import OpsAudit, configure_logging
from chain.node.metrics import node_registry
from chain.node.statesync import SnapshotServer, StateSyncReport, state_sync
from chain.replica import Replica, chain_genesis_block
from chain.store import LedgerStore
from chain.types import Genesis

log = logging.getLogger("rongxin.node")

SYNC_BATCH = 32
"""Blocks per block-sync response a node serves."""

CLOCK_OFFSET_ENV = "RONGXIN_CLOCK_OFFSET_MS"
"""Test hook: milliseconds added to the node's clock (clock-skew scenarios)."""


def _api_server(app: Any, host: str, port: int) -> Any:
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:  # the node owns the signals
            yield

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        ws="websockets-sansio",
    )
    return _Server(config)


def build_host(
    cfg: NodeConfig,
    registry_factory: Callable[[Genesis], ContractRegistry] | None = None,
    replica_factory: Callable[..., Replica] = Replica,
) -> NodeHost:
    """The host of the node ``cfg`` describes (ledger opened, nothing started).

    ``replica_factory`` builds the replica from ``Replica``'s arguments (fault tests run a
    :class:`~chain.node.byzantine.ByzantineReplica` this way)."""
    genesis = load_genesis(cfg)
    key, cert = load_identity(cfg, genesis)
    cfg.node.data_dir.mkdir(parents=True, exist_ok=True)
    # sync responses of 32 blocks: each is executed in one handler on the event loop, and
    # 256 (the core's default) kept a catching-up node's API and heartbeats silent for seconds
    overrides: dict[str, Any] = {"sync_batch": SYNC_BATCH}
    if cfg.consensus.round_timeout_ms is not None:
        overrides["round_timeout_ms"] = cfg.consensus.round_timeout_ms
        overrides["max_round_timeout_ms"] = 8 * cfg.consensus.round_timeout_ms
    mempool = MempoolConfig(
        max_txs=cfg.mempool.max_txs,
        max_bytes=cfg.mempool.max_bytes,
        max_per_sender=cfg.mempool.max_per_sender,
    )
    db = cfg.node.data_dir / "ledger.db"
    replica = replica_factory(
        genesis,
        db,
        key,
        registry_factory(genesis) if registry_factory is not None else None,
        overrides,
        mempool,
    )
    return NodeHost(
        replica,
        key,
        cert,
        name=cfg.node.name,
        listen=[(a.host, a.port) for a in cfg.p2p.listen],
        persistent_peers=[(a.dial_host, a.port) for a in cfg.p2p.persistent_peers],
        clock_offset_ms=int(os.environ.get(CLOCK_OFFSET_ENV, "0") or 0),
        max_frame=cfg.p2p.max_frame_bytes,
        handshake_timeout=cfg.p2p.handshake_timeout_s,
        snapshots=SnapshotServer(
            replica.store,
            genesis,
            cfg.node.data_dir / "snapshots",
            interval=cfg.state_sync.snapshot_interval,
            keep=cfg.state_sync.snapshot_keep,
            max_frame=cfg.p2p.max_frame_bytes,
        ),
    )


async def restore_if_empty(cfg: NodeConfig, audit: OpsAudit | None = None) -> StateSyncReport | None:
    """With ``[state_sync] enable``, restore a peer's snapshot into a new ledger.

    Does nothing (``None``) when state sync is off or the node already has a ledger. When
    no peer offers a usable snapshot the node starts empty and block-syncs from the
    genesis (logged as a warning): slower, never wrong.
    """
    db = cfg.node.data_dir / "ledger.db"
    if not cfg.state_sync.enable or db.exists():
        return None
    genesis = load_genesis(cfg)
    key, cert = load_identity(cfg, genesis)
    cfg.node.data_dir.mkdir(parents=True, exist_ok=True)
    store = LedgerStore(db, chain_genesis_block(genesis).hash)
    restored = False
    try:
        try:
            report = await state_sync(
                key,
                cert,
                genesis,
                [(a.dial_host, a.port) for a in cfg.p2p.persistent_peers],
                store,
                discovery_s=cfg.state_sync.discovery_s,
                chunk_timeout_s=cfg.state_sync.chunk_timeout_s,
                max_frame=cfg.p2p.max_frame_bytes,
                handshake_timeout=cfg.p2p.handshake_timeout_s,
            )
            restored = True
        except SnapshotError as exc:
            log.warning("state sync failed, block-syncing from the genesis instead: %s", exc)
            return None
    finally:
        store.close()
        if not restored:  # the replica creates its ledger from the genesis itself
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
    log.info(
        "state sync: restored height %d (%d state entries) in %.1f s from %s",
        report.info.height,
        report.info.entries,
        report.seconds,
        ", ".join(report.peers),
    )
    if audit is not None:
        audit.record(
            "node.state_sync",
            height=report.info.height,
            block_hash=report.info.block_hash.hex(),
            entries=report.info.entries,
            peers=report.peers,
            refused=report.refused,
            seconds=report.seconds,
        )
    return report


def config_digest(cfg: NodeConfig) -> str:
    """SHA-256 of the config file's bytes (recorded at start in the audit log)."""
    return hashlib.sha256(cfg.path.read_bytes()).hexdigest()


async def run_node(
    cfg: NodeConfig,
    registry_factory: Callable[[Genesis], ContractRegistry] | None = None,
    stop: asyncio.Event | None = None,
    replica_factory: Callable[..., Replica] = Replica,
    tune_gc: bool = False,
) -> None:
    """Run the node of ``cfg`` until ``stop`` is set, or SIGTERM/SIGINT arrives.

    ``tune_gc`` (what ``rongxin node run`` passes; it changes the whole process): once the
    node has started, freeze its objects and collect garbage less often
    (:func:`chain.node.heap.tuned_collector`), until it stops."""
    from chain.api import create_app
    from chain.node.events import EventHub, validators_event
    from chain.node.service import NodeService

    configure_logging(cfg.node.name, cfg.node.log_level)
    audit = OpsAudit(cfg.node.data_dir / "ops-audit.jsonl", cfg.node.name)
    await restore_if_empty(cfg, audit)
    host = build_host(cfg, registry_factory, replica_factory)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    hub = EventHub()
    batches = SqliteBatchIndex(cfg.node.data_dir / "batches.db")
    vault, push = None, None
    if cfg.vault.enable:
        from chain.node.vault import build_vault

        vault, push = build_vault(
            cfg, host.key, host.cert, host.replica.genesis, lambda: host.replica.app.state
        )
    service = NodeService(
        cfg.node.name,
        host.replica,
        submit=_async_submit(host),
        submit_many=host.submit_many,
        net_info=lambda: {"peers": host.online_map(), "listen": [f"{h}:{p}" for h, p in host.peers.bound]},
        status_extra=lambda: _status_extra(host),
        hub=hub,
        registry=node_registry(host),
        batches=batches,
        vault=vault,
    )
    host.on_commit.append(lambda a: _publish(host, hub, a))
    host.on_commit.append(lambda a: _audit_membership(host, audit, a))
    host.on_epoch.append(lambda a: hub.publish(validators_event(host.replica.epoch)))
    app = create_app(service, public_status=cfg.api.public_status, public_metrics=True)
    server = _api_server(app, cfg.api.listen.host, cfg.api.listen.port)
    await host.start()
    api_task = asyncio.ensure_future(server.serve())
    upkeep: asyncio.Future[None] | None = None
    if vault is not None and push is not None:
        from chain.node.vault import vault_upkeep

        upkeep = asyncio.ensure_future(vault_upkeep(vault, cfg, push, stop))
    heap = contextlib.ExitStack()
    try:
        frozen = heap.enter_context(tuned_collector()) if tune_gc else 0
        audit.record(
            "node.start",
            config=str(cfg.path),
            config_sha256=config_digest(cfg),
            height=host.replica.store.head_height(),
            pid=os.getpid(),
            api=str(cfg.api.listen),
            code=_native.STATUS,  # compiled hot modules in use, or why the source runs
            gc={"frozen": frozen, "thresholds": list(gc.get_threshold())},
        )
        done, _ = await asyncio.wait(
            [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(host.halted.wait()), api_task],
            return_when=asyncio.FIRST_COMPLETED,
        )
        if api_task in done and api_task.exception() is not None:
            log.error("the API server failed: %s", api_task.exception())
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(api_task, 5.0)
        if upkeep is not None:
            upkeep.cancel()
            with contextlib.suppress(BaseException):
                await upkeep
        await host.stop()
        heap.close()
        height = host.replica.store.head_height()
        host.replica.close()
        batches.close()
        audit.record("node.stop", height=height, pid=os.getpid(), halted=host.halt_reason or None)
    if host.halt_reason:
        raise StoreError(f"the node halted: {host.halt_reason}")


def _async_submit(host: NodeHost) -> Callable[[bytes], Any]:
    async def submit(raw: bytes) -> bytes:
        return host.submit(raw)

    return submit


def _status_extra(host: NodeHost) -> dict[str, Any]:
    peers = host.peers.peers
    best = max([p.stats.height for p in peers.values()] + [host.replica.store.head_height()])
    return {
        "peers": len(peers),
        "catching_up": best - host.replica.store.head_height() >= 2,
        "best_peer_height": best,
        "uptime_s": round(max(0.0, time.time() - host.started_at), 1),
        "p2p_listen": [f"{h}:{p}" for h, p in host.peers.bound],
    }


MEMBERSHIP_TXS = frozenset({"member.add", "member.revoke", "member.promote", "member.vote", "node.ready"})
"""Transaction types recorded in the operations audit log when they commit."""


def _audit_membership(host: NodeHost, audit: OpsAudit, a: Any) -> None:
    """Record who changed the consortium's membership, and how, as each change commits."""
    from chain.contracts.membership import load_certificate

    block = a.block
    executor = host.replica.app.executor
    state = host.replica.app.state
    for raw in block.payload:
        tx = executor.decode(raw)
        if tx.type not in MEMBERSHIP_TXS:
            continue
        sender = load_certificate(state, tx.sender)
        fields: dict[str, Any] = {}
        target = tx.payload.get("cert_id")
        cert = tx.payload.get("certificate")
        if isinstance(cert, dict):
            fields["subject"] = cert.get("subject")
            fields["roles"] = cert.get("roles")
        elif isinstance(target, bytes):
            named = load_certificate(state, target)
            fields["cert_id"] = target.hex()
            fields["subject"] = None if named is None else named.subject
        if "reason" in tx.payload:
            fields["reason"] = str(tx.payload["reason"])[:200]
        audit.record(
            f"chain.{tx.type}",
            height=block.height,
            tx_id=tx.tx_id.hex(),
            by=None if sender is None else sender.subject,
            by_cert_id=tx.sender.hex(),
            **fields,
        )


def _publish(host: NodeHost, hub: Any, a: Any) -> None:
    """Publish the events of a committed block: the block with its transactions' ids, and
    one event per transaction with its result only while a subscription asks for them (each
    costs a stored result read)."""
    from chain import codec
    from chain.node.events import block_event, tx_event

    block = a.block
    store = host.replica.store
    executor = host.replica.app.executor
    txs = [executor.decode(raw) for raw in block.payload]
    hub.publish(block_event(block, [tx.tx_id for tx in txs]))
    if not hub.wants("tx"):
        return
    for index, tx in enumerate(txs):
        stored = store.tx_result(tx.tx_id)
        hub.publish(tx_event(tx, block.height, index, None if stored is None else codec.decode(stored)))
