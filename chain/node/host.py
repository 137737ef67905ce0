"""The asyncio host of a replica: the consensus core's actions become network sends and
timers on the wall clock.

:class:`NodeHost` owns one :class:`~chain.replica.Replica` and one
:class:`~chain.net.peers.PeerManager`. Everything that touches the replica runs on the
event loop's thread, one handler at a time, exactly as the pure core expects:

* consensus messages (proposals, votes, timeouts, evidence) travel on the ``CONSENSUS``
  channel, block-sync requests and responses on ``BLOCK_SYNC``; the sender of a message is
  the authenticated certificate of the connection, never a field of the message;
* ``SetTimer`` actions become ``loop.call_later`` handles keyed by timer id;
* transactions admitted locally (API, CLI) are gossiped to every peer in batches on the
  ``MEMPOOL`` channel; transactions received by gossip are admitted but not relayed
  (the consortium is a full mesh of persistent peers); a peer that connects is sent the
  whole mempool, so nothing admitted while it (or this node) was cut off is stranded;
* snapshot requests on ``STATE_SYNC`` are answered by the node's
  :class:`~chain.node.statesync.SnapshotServer`, which also writes a snapshot every
  ``snapshot_interval`` blocks;
* a heartbeat every second on ``HEARTBEAT`` carries height and round; the reply gives the
  link's latency. Together they make the online-node map, and a node that hears of
  heights above its own asks those peers for blocks by itself (block sync needs no
  restart);
* after every commit, peers whose certificate was revoked or expired are disconnected,
  and commit listeners (the API's event hub, metrics) are told;
* durability in groups: a consensus step's actions are taken once what it wrote to the
  ledger is fsynced, by one fsync in the ``ledger-sync`` thread for every step since the
  last (:meth:`NodeHost._release`); the event loop goes on meanwhile.

Examples
--------
Tests and ``rongxin node run`` build hosts; see :mod:`chain.node.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from chain import codec
from chain.consensus.core import Action, Broadcast, Committed, EpochEnded, Send, SetTimer
from chain.consensus.messages import (
    Block,
    ConsensusError,
    Proposal,
    SyncRequest,
    SyncResponse,
    decode_message,
    encode_message,
)
from chain.contracts.membership import load_certificate, revoked_from
from chain.crypto import PrivateKey, PublicKey
from chain.errors import ChainError
from chain.net import Channel, PeerRefused
from chain.net.peers import Peer, PeerManager
from chain.node.compact import (
    COMPACT_TAG,
    TX_REQUEST_TAG,
    TX_RESPONSE_TAG,
    CompactProposal,
    Rebuilds,
    TxRequest,
    decode_compact,
    decode_tx_request,
    decode_tx_response,
    serve,
    tag_of,
)
from chain.node.statesync import SnapshotServer
from chain.replica import Replica, node_id
from chain.types import NODE_ROLES, Certificate, Transaction, ValidationError

log = logging.getLogger("rongxin.node")

GOSSIP_FLUSH_S = 0.005
"""Transactions admitted locally are gossiped in batches at most this long after admission."""

GOSSIP_BATCH_BYTES = 1 << 20
"""A gossip batch is sent as soon as it holds this many bytes."""

HEARTBEAT_S = 1.0
SYNC_AHEAD = 2
"""A peer this many blocks ahead of the node makes it ask for blocks."""

SYNC_PIPELINE = 2
"""Block-sync responses checked at once: the one the core takes next, and the one after it,
asked for while the first is checked."""

SYNC_RETRY_S = 3.0
"""Blocks from the same height are asked for again only after this long: a node that fell
behind may take seconds to check a response of thousands of transactions."""

MAX_GOSSIP_TXS = 20_000
"""Transactions in one received gossip batch beyond this are ignored."""

OVERFLOW_TXS = 32_768
OVERFLOW_BYTES = 16 << 20
"""Bounds of the gossip kept, unadmitted, when the admission queue is full (the oldest go
first): a compact proposal naming those transactions is rebuilt from them, not fetched, and
they are admitted when no gossip waits."""

OVERFLOW_CHUNK = 256
"""Kept transactions admitted at a time once the queue is empty."""


@dataclass
class HostCounters:
    """Counters the metrics and the API read."""

    messages_in: int = 0
    bad_messages: int = 0
    txs_gossiped_in: int = 0
    txs_refused: int = 0
    """Gossiped transactions refused: dropped (below) or refused at admission."""
    gossip_dropped: int = 0
    """Gossiped transactions not admitted because the queue of gossip to admit was full
    (kept a while, unchecked, for the proposals that name them)."""
    gossip_overflow_used: int = 0
    """Transactions of proposals found among the gossip kept when the queue was full."""
    sync_requests: int = 0
    """Block requests received from peers (for committed blocks, or one block by hash)."""
    block_requests: int = 0
    """Requests for one block by hash this node sent: a certificate or a proposal named a
    block it did not have (a node that keeps asking is behind, or its links are slow)."""
    commits: int = 0
    txs_committed: int = 0
    compact_in: int = 0
    """Compact proposals received (rebuilt from the mempool, or fetched, or dropped)."""
    tx_requests: int = 0
    """Fetches of a block's missing transactions this node sent."""
    ledger_syncs: int = 0
    """fsyncs of the ledger, each covering the writes of one or more consensus steps."""
    signature_checks: int = 0
    """Transaction signatures the verifying thread checked."""
    signature_check_cpu_s: float = 0.0
    """CPU seconds the verifying thread spent on them: with :attr:`signature_checks`, the
    cost of one SM2 verification on this machine while the node runs (an operator's
    capacity figure; ``bench/ledger_net.py`` reads it during its throughput phase)."""


class _KeptGossip:
    """Gossip the admission queue had no room for, by id, oldest first, bounded by
    :data:`OVERFLOW_TXS` and :data:`OVERFLOW_BYTES` (the oldest go first)."""

    def __init__(self) -> None:
        self._raw: OrderedDict[bytes, bytes] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._raw

    def get(self, tx_id: bytes) -> bytes | None:
        return self._raw.get(tx_id)

    def keep(self, tx_id: bytes, raw: bytes) -> None:
        """Keep ``raw`` (not again if kept), then drop the oldest beyond the bounds."""
        if len(raw) > OVERFLOW_BYTES or tx_id in self._raw:
            return
        self._raw[tx_id] = raw
        self.bytes += len(raw)
        while len(self._raw) > OVERFLOW_TXS or self.bytes > OVERFLOW_BYTES:
            self.bytes -= len(self._raw.popitem(last=False)[1])

    def discard(self, tx_id: bytes) -> None:
        raw = self._raw.pop(tx_id, None)
        if raw is not None:
            self.bytes -= len(raw)

    def take_oldest(self) -> tuple[bytes, bytes]:
        """Remove and return the oldest ``(tx_id, raw)``."""
        tx_id, raw = self._raw.popitem(last=False)
        self.bytes -= len(raw)
        return tx_id, raw


class NodeHost:
    """Run a replica over the network (see the module docstring).

    Parameters
    ----------
    replica : Replica
        The node's ledger and consensus core (opened on its SQLite store).
    key, cert : PrivateKey, Certificate
        The node's identity; ``cert`` must be a node certificate of the consortium.
    name : str
        The operator's name for the node (logs, status).
    listen, persistent_peers : sequence of (host, port)
        P2P addresses to accept on and to keep connections to.
    clock_offset_ms : int
        Added to the wall clock (tests of clock skew); 0 in production.
    """

    def __init__(
        self,
        replica: Replica,
        key: PrivateKey,
        cert: Certificate,
        *,
        name: str,
        listen: Sequence[tuple[str, int]],
        persistent_peers: Sequence[tuple[str, int]],
        clock_offset_ms: int = 0,
        max_frame: int = 16 * 1024 * 1024 + 64,
        handshake_timeout: float = 10.0,
        snapshots: SnapshotServer | None = None,
    ) -> None:
        if key.public_key.to_bytes() != cert.key().to_bytes():
            raise ValidationError("the node key does not match the node certificate")
        self.replica = replica
        self.key = key
        self.cert = cert
        self.name = name
        self.genesis = replica.genesis
        self.clock_offset_ms = clock_offset_ms
        self.counters = HostCounters()
        self.snapshots = snapshots
        self.on_commit: list[Callable[[Committed], None]] = []
        self.on_epoch: list[Callable[[EpochEnded], None]] = []
        self.peers = PeerManager(
            key,
            cert,
            chain_id=self.genesis.chain_id,
            genesis_hash=self.genesis.hash,
            root=self.genesis.root_key(),
            check_peer=self.check_peer,
            listen=listen,
            persistent_peers=persistent_peers,
            on_frame=self._on_frame,
            on_connect=self._on_connect,
            max_frame=max_frame,
            handshake_timeout=handshake_timeout,
        )
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._verify_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sm2-verify")
        # durability in groups: the ledger's writes are fsynced in this thread, once for
        # every consensus step since the last fsync, before those steps' actions are taken
        replica.store.defer_sync()
        self._sync_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-sync")
        self._held: list[list[Action]] = []
        self._releasing: asyncio.Future[None] | None = None
        self.halted = asyncio.Event()
        """Set when the node cannot go on (its ledger cannot be made durable); see :attr:`halt_reason`."""
        self.halt_reason = ""
        self._admission = asyncio.Lock()
        self._inflight: dict[bytes, asyncio.Future[list[str | None]]] = {}
        self._inbound: asyncio.Queue[list[bytes]] = asyncio.Queue(maxsize=256)
        self._gossip: list[bytes] = []
        self._gossip_bytes = 0
        self._gossip_handle: asyncio.TimerHandle | None = None
        self._unadmitted: dict[bytes, bytes] = {}
        """Gossiped transactions received but not yet through admission, by id (a compact
        proposal that follows their gossip on the same link finds them here)."""
        self._overflow = _KeptGossip()
        """Gossip the admission queue had no room for."""
        self.rebuilds = Rebuilds(self._rebuild_lookup)
        self._tasks: list[asyncio.Task[None]] = []
        self._last_sync_ask = 0.0
        self._sync_asked_from = -1
        # block-sync responses being checked: their blocks, the last of them (hash, height of
        # a committed answer, its check), how many, and the answer to look at after them
        self._sync_checking: set[bytes] = set()
        self._sync_tail: tuple[bytes, int | None, asyncio.Future[None]] | None = None
        self._sync_depth = 0
        self._sync_next: tuple[str, SyncResponse] | None = None
        self._sync_turn = 0
        self.started_at = 0.0
        self.running = False
        self.missed: dict[str, int] = {}
        """Rounds whose leader's block did not commit, per validator (since start)."""
        self._last_round: int | None = None

    # ------------------------------------------------------------------ time
    def now_ms(self) -> int:
        """The node's clock in milliseconds since the epoch (wall clock plus offset)."""
        return int(time.time() * 1000) + self.clock_offset_ms

    @property
    def my_id(self) -> str:
        """This node's consensus id when it votes (its certificate id, hex)."""
        return node_id(self.cert.cert_id)

    # ------------------------------------------------------------------ admission of peers
    def check_peer(self, cert: Certificate) -> None:
        """Refuse a peer that is not a current node of the consortium.

        The certificate must be registered on chain (in the genesis or by ``member.add``),
        carry a node role, be valid now and not be revoked at the next height.
        """
        state = self.replica.app.state
        stored = load_certificate(state, cert.cert_id)
        if stored is None or stored.to_dict() != cert.to_dict():
            raise PeerRefused(f"{cert.subject!r} is not a registered node of this consortium")
        if not NODE_ROLES & set(cert.roles):
            raise PeerRefused(f"{cert.subject!r} is a member certificate, not a node's")
        rev = revoked_from(state, cert.cert_id)
        if rev is not None and rev <= self.replica.store.head_height() + 1:
            raise PeerRefused(f"{cert.subject!r} was revoked from height {rev}")
        if not cert.valid_at(self.now_ms()):
            raise PeerRefused(f"{cert.subject!r}'s certificate is not valid now")

    def _recheck_peers(self) -> None:
        for peer in list(self.peers.peers.values()):
            try:
                self.check_peer(peer.cert)
            except PeerRefused as exc:
                self.peers.spawn(self.peers.disconnect(peer.node_id, str(exc)))

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Listen, dial the peers and start consensus."""
        self.started_at = time.time()
        self.running = True
        await self.peers.start()
        actions = self.replica.start(self.now_ms())
        self._sync_now()  # what starting wrote (the epoch's safety data), before acting
        self._handle(actions)
        self._tasks.append(asyncio.ensure_future(self._heartbeat_loop()))
        self._tasks.append(asyncio.ensure_future(self._gossip_worker()))
        log.info(
            "node %s started at height %d as %s",
            self.name,
            self.replica.store.head_height(),
            "consensus node" if self.replica.voting else "observer",
        )

    async def stop(self) -> None:
        """Stop consensus, close every connection; the replica's store stays open."""
        if not self.running:
            return
        self.running = False
        for h in self._timers.values():
            h.cancel()
        self._timers.clear()
        if self._gossip_handle is not None:
            self._gossip_handle.cancel()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.peers.stop()
        if self.snapshots is not None:
            await self.snapshots.wait_idle()
        self._verify_pool.shutdown(wait=False, cancel_futures=True)
        if self._releasing is not None:
            self._releasing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._releasing
        self._held.clear()  # not acted on: as after a crash, the next start takes it up
        self._sync_pool.shutdown(wait=True)
        with contextlib.suppress(OSError):
            self.replica.store.sync()  # a clean stop leaves everything durable
        log.info("node %s stopped at height %d", self.name, self.replica.store.head_height())

    # ------------------------------------------------------------------ actions
    def _channel_of(self, msg: object) -> Channel:
        return Channel.BLOCK_SYNC if isinstance(msg, (SyncRequest, SyncResponse)) else Channel.CONSENSUS

    def _handle(self, actions: list[Action]) -> None:
        pending = list(actions)
        while pending:
            a = pending.pop(0)
            if isinstance(a, (Send, Broadcast)) and isinstance(a.msg, SyncRequest) and a.msg.block_hash:
                self.counters.block_requests += 1
            if isinstance(a, Send):
                if a.to == self.replica.node_id:
                    pass
                elif isinstance(a.msg, Proposal):
                    self._send_proposal(a.msg, [a.to])
                else:
                    self.peers.send(a.to, self._channel_of(a.msg), encode_message(a.msg))
            elif isinstance(a, Broadcast):
                if isinstance(a.msg, Proposal):
                    self._send_proposal(a.msg, list(self.peers.peers))
                else:
                    self.peers.broadcast(self._channel_of(a.msg), encode_message(a.msg))
            elif isinstance(a, SetTimer):
                self._set_timer(a.timer_id, a.at_ms)
            elif isinstance(a, Committed):
                self._committed(a)
            elif isinstance(a, EpochEnded):
                for h in self._timers.values():
                    h.cancel()
                self._timers.clear()
                for cb in self.on_epoch:
                    cb(a)
                log.info("epoch %d ended at height %d", self.replica.core.epoch, a.block.height)
                more = self.replica.next_epoch(self.now_ms())
                self._sync_now()  # the new epoch's safety data, before acting on it
                pending.extend(more)
                self._recheck_peers()

    def _send_proposal(self, proposal: Proposal, targets: Sequence[str]) -> None:
        """Send ``proposal`` compact to the validators among ``targets`` (they have its
        transactions from gossip) and whole to the others (observers take no gossip)."""
        self._flush_gossip()  # the gossip of its transactions goes ahead of it on each link
        validators = set(self.replica.core.validators)
        full: bytes | None = None
        compact: bytes | None = None
        for nid in targets:
            if nid in validators:
                if compact is None:
                    tx_id_of = self.replica.app.executor.tx_id_of
                    ids = [tx_id_of(raw) for raw in proposal.block.payload]
                    compact = CompactProposal.of(proposal, ids).to_bytes()
                self.peers.send(nid, Channel.CONSENSUS, compact)
            else:
                if full is None:
                    full = encode_message(proposal)
                self.peers.send(nid, Channel.CONSENSUS, full)

    def _set_timer(self, timer_id: str, at_ms: int) -> None:
        old = self._timers.pop(timer_id, None)
        if old is not None:
            old.cancel()
        delay = max(0.0, (at_ms - self.now_ms()) / 1000)
        loop = asyncio.get_running_loop()
        self._timers[timer_id] = loop.call_later(delay, self._fire, timer_id)

    def _fire(self, timer_id: str) -> None:
        self._timers.pop(timer_id, None)
        if not self.running:
            return
        self._run(lambda: self.replica.core.on_timer(timer_id, self.now_ms()))

    def _run(self, step: Callable[[], list[Action]]) -> None:
        if self.halted.is_set():
            return
        try:
            actions = step()
        except (ChainError, ValueError, TypeError) as exc:  # a bug or a store failure: say so, go on
            log.exception("consensus step failed: %s", exc)
            return
        self._release(actions)

    def _release(self, actions: list[Action]) -> None:
        """Take a consensus step's actions once what the step wrote is durable.

        A step that wrote nothing, with nothing held or being synced before it, is acted
        on at once (a step may depend on an earlier one's writes: a vote sent again).
        Otherwise its actions wait, in step order, for one fsync of the ledger in the
        ``ledger-sync`` thread that covers every step held meanwhile: a vote never leaves
        before the safety data that allows it, nor a commit is reported before its block is
        stored, and the event loop goes on with other work while the disk flushes.
        """
        if self._releasing is None and not self._held and not self.replica.store.unsynced:
            self._handle(actions)
            return
        self._held.append(actions)
        if self._releasing is None:
            self._releasing = asyncio.ensure_future(self._sync_then_release())

    def _sync_now(self) -> None:
        """fsync what was written, on the event loop: for the rare steps that act at once
        (a start, a new epoch)."""
        store = self.replica.store
        if store.take_unsynced():
            store.sync()

    async def _sync_then_release(self) -> None:
        store = self.replica.store
        loop = asyncio.get_running_loop()
        try:
            while self._held and self.running:
                batch, self._held = self._held, []
                if store.take_unsynced():  # every write of the batch happened before this
                    self.counters.ledger_syncs += 1
                    await loop.run_in_executor(self._sync_pool, store.sync)
                    if not self.running:
                        return
                for actions in batch:
                    self._handle(actions)
        except OSError as exc:
            self._halt(f"the ledger cannot be made durable: {exc}")
        finally:
            self._releasing = None

    def _halt(self, reason: str) -> None:
        """Stop taking consensus steps and actions: what was written may not be durable. The
        owner stops the host (:attr:`halted`); the node must be restarted."""
        log.critical("node %s halts: %s", self.name, reason)
        self._held.clear()
        self.halt_reason = reason
        self.halted.set()

    def _committed(self, a: Committed) -> None:
        self.counters.commits += 1
        self.counters.txs_committed += len(a.block.payload)
        core = self.replica.core
        last = self._last_round
        if last is not None and last < a.block.round and a.block.epoch == core.epoch:
            for r in range(max(last + 1, a.block.round - 1000), a.block.round):
                leader = core.leader(r)
                self.missed[leader] = self.missed.get(leader, 0) + 1
        self._last_round = a.block.round
        if self.snapshots is not None:
            self.snapshots.on_commit(a.block.height)
        for cb in self.on_commit:
            try:
                cb(a)
            except Exception:  # a listener must not stop consensus
                log.exception("commit listener failed")
        executor = self.replica.app.executor
        if self._overflow:
            for raw in a.block.payload:
                self._overflow.discard(executor.tx_id_of(raw))
        executor.forget(a.block.payload)
        self._recheck_peers()

    # ------------------------------------------------------------------ frames
    def _on_connect(self, peer: Peer) -> None:
        # catch up from a peer as soon as it is there (the core asked before it connected)
        req = SyncRequest(self.replica.core.committed.height + 1)
        peer.send(Channel.BLOCK_SYNC, encode_message(req))
        peer.send(Channel.HEARTBEAT, self._heartbeat())
        self._send_mempool(peer)
        # the round's proposal and this node's latest vote and timeout, which the peer
        # missed if the link was down (ConsensusCore.on_peer_connected)
        self._run(lambda: self.replica.core.on_peer_connected(peer.node_id))

    def _send_mempool(self, peer: Peer) -> None:
        """Give a peer that just connected every transaction waiting here: their gossip may
        have missed it (it was down, or this node was cut off when they were admitted), and
        an observer, which never proposes, has no other way to get them into a block."""
        batch: list[bytes] = []
        size = 0
        for entry in list(self.replica.app.mempool):
            batch.append(entry.raw)
            size += entry.size
            if size >= GOSSIP_BATCH_BYTES or len(batch) >= MAX_GOSSIP_TXS:
                peer.send(Channel.MEMPOOL, codec.encode(batch))
                batch, size = [], 0
        if batch:
            peer.send(Channel.MEMPOOL, codec.encode(batch))

    def _on_frame(self, peer: Peer, channel: int, payload: bytes) -> Awaitable[None] | None:
        if channel in (Channel.CONSENSUS, Channel.BLOCK_SYNC):
            self._on_consensus(peer, channel, payload)
        elif channel == Channel.MEMPOOL:
            self._on_gossip(peer, payload)
        elif channel == Channel.HEARTBEAT:
            self._on_heartbeat(peer, payload)
        elif channel == Channel.STATE_SYNC and self.snapshots is not None:
            return self.snapshots.on_frame(peer, payload)
        else:
            self.counters.bad_messages += 1
        return None

    def _on_consensus(self, peer: Peer, channel: int, payload: bytes) -> None:
        self.counters.messages_in += 1
        tag = tag_of(payload)
        if tag is not None:
            self._on_compact_protocol(peer, channel, tag, payload)
            return
        try:
            msg = decode_message(payload)
        except (ConsensusError, ChainError, ValueError) as exc:
            self.counters.bad_messages += 1
            log.debug("bad consensus message from %s: %s", peer.stats.subject, exc)
            return
        if (channel == Channel.BLOCK_SYNC) != isinstance(msg, (SyncRequest, SyncResponse)):
            self.counters.bad_messages += 1
            return
        if isinstance(msg, SyncRequest):
            self.counters.sync_requests += 1
        sender = peer.node_id
        if isinstance(msg, Proposal):
            self._deliver_proposal(sender, msg)
            return
        if isinstance(msg, SyncResponse):
            self._deliver_sync(sender, msg)
            return
        self._run(lambda: self.replica.core.on_message(sender, msg, self.now_ms()))

    def _deliver_proposal(self, sender: str, msg: Proposal) -> None:
        if self.replica.voting and self._unverified(msg.block.payload):
            # check the block's signatures in the worker thread first; consensus goes on meanwhile
            self.peers.spawn(self._verified_then(sender, msg))
            return
        self._run(lambda: self.replica.core.on_message(sender, msg, self.now_ms()))

    def _deliver_sync(self, sender: str, msg: SyncResponse) -> None:
        """Blocks from block sync, like a proposal: the signatures of the blocks the core
        would execute are checked in the worker thread first, sharing the checks already
        running for the same transactions (a node that fell behind has most of them queued
        from gossip), so that none is verified twice and none on the event loop.

        Responses go through a short pipeline: each is checked in the worker, then handed
        to the core in the order of its blocks. A node that is behind gets the same blocks
        from several peers, and as the chain grows, answers that repeat them with one more
        block: blocks already in the pipeline are not checked again, an answer that does
        not continue its last block is kept (the newest only) and looked at again when a
        check ends, and while one committed answer is checked the next is already asked
        for, so that the worker does not wait for the network.
        """
        if self.replica.voting:
            blocks = self.replica.core.sync_blocks_to_check(msg)
            new = [b for b in blocks if b.hash not in self._sync_checking]
            if self._sync_checking:
                if not new:
                    return  # a copy of blocks being checked
                tail = self._sync_tail
                if tail is None or new[0].parent_hash != tail[0] or self._sync_depth >= SYNC_PIPELINE:
                    self._sync_next = (sender, msg)
                    return
            payload = [raw for b in new for raw in b.payload]
            if new and (self._sync_checking or self._unverified(payload)):
                self._queue_sync_check(sender, msg, new, payload)
                return
        self._run(lambda: self.replica.core.on_message(sender, msg, self.now_ms()))

    def _queue_sync_check(
        self, sender: str, msg: SyncResponse, new: list[Block], payload: list[bytes]
    ) -> None:
        hashes = {b.hash for b in new}
        self._sync_checking |= hashes
        before = None if self._sync_tail is None else self._sync_tail[2]
        task = asyncio.ensure_future(self._sync_checked_then(sender, msg, payload, before, hashes))
        self.peers.spawn(task)
        self._sync_tail = (new[-1].hash, new[-1].height if msg.proof is not None else None, task)
        self._sync_depth += 1
        self._ask_ahead()

    def _ask_ahead(self) -> None:
        """Ask one peer that has them for the committed blocks after the pipeline's last."""
        tail = self._sync_tail
        if tail is None or tail[1] is None or self._sync_depth >= SYNC_PIPELINE or self._sync_next:
            return
        after = tail[1]
        ahead = self._peers_at(after + 1)
        if ahead:
            self._sync_turn += 1
            peer = ahead[self._sync_turn % len(ahead)]
            peer.send(Channel.BLOCK_SYNC, encode_message(SyncRequest(after + 1)))

    async def _sync_checked_then(
        self,
        sender: str,
        msg: SyncResponse,
        payload: Sequence[bytes],
        before: asyncio.Future[None] | None,
        hashes: set[bytes],
    ) -> None:
        try:
            if payload:
                await self._check_ahead(payload, "synced blocks")
            if before is not None:
                await asyncio.wait([before])  # the core takes blocks in their order
            if self.running:
                self._run(lambda: self.replica.core.on_message(sender, msg, self.now_ms()))
        finally:
            self._sync_checking -= hashes
            self._sync_depth -= 1
            if self._sync_tail is not None and self._sync_tail[2] is asyncio.current_task():
                self._sync_tail = None
            held, self._sync_next = self._sync_next, None
            if self.running:
                if held is not None:
                    self._deliver_sync(*held)
                self._ask_ahead()

    # ------------------------------------------------------------------ compact proposals
    def _lookup_tx(self, tx_id: bytes) -> bytes | None:
        entry = self.replica.app.mempool.get(tx_id)
        if entry is not None:
            return entry.raw
        return self._unadmitted.get(tx_id) or self._overflow.get(tx_id)

    def _rebuild_lookup(self, tx_id: bytes) -> bytes | None:
        """:meth:`_lookup_tx` for rebuilding a compact proposal (counts the kept gossip used)."""
        raw = self._lookup_tx(tx_id)
        if raw is not None and tx_id in self._overflow:
            self.counters.gossip_overflow_used += 1
        return raw

    def _on_compact_protocol(self, peer: Peer, channel: int, tag: str, payload: bytes) -> None:
        """A compact proposal (CONSENSUS) or a fetch of transactions (BLOCK_SYNC)."""
        max_txs = self.replica.core.config.max_txs
        try:
            if tag == COMPACT_TAG and channel == Channel.CONSENSUS:
                self._on_compact(peer, decode_compact(payload, max_txs))
            elif tag == TX_REQUEST_TAG and channel == Channel.BLOCK_SYNC:
                req = decode_tx_request(payload, max_txs)
                block = self.replica.core.get_block(req.block_hash)
                executor = self.replica.app.executor
                resp = serve(req, block, self._lookup_tx, executor.tx_id_of)
                peer.send(Channel.BLOCK_SYNC, resp.to_bytes())
            elif tag == TX_RESPONSE_TAG and channel == Channel.BLOCK_SYNC:
                resp = decode_tx_response(payload, max_txs)
                refused = self.rebuilds.refused
                done = self.rebuilds.fill(resp, self.replica.app.executor.tx_id_of)
                if self.rebuilds.refused != refused:
                    self.counters.bad_messages += 1
                if done is not None:
                    self._deliver_proposal(*done)
            else:
                self.counters.bad_messages += 1
        except (ConsensusError, ChainError, ValueError) as exc:
            self.counters.bad_messages += 1
            log.debug("bad %s from %s: %s", tag, peer.stats.subject, exc)

    def _on_compact(self, peer: Peer, compact: CompactProposal) -> None:
        self.counters.compact_in += 1
        now = self.now_ms()
        self.rebuilds.expire(now)
        deadline = now + self.replica.core.config.round_timeout_ms
        got = self.rebuilds.start(peer.node_id, compact, deadline)
        if isinstance(got, Proposal):
            self._deliver_proposal(peer.node_id, got)
            return
        # ask the peer that sent it (it holds the block); if it has not answered in a
        # quarter of the round timeout, every other validator it is connected to
        self.counters.tx_requests += 1
        block_hash = compact.block_hash
        peer.send(Channel.BLOCK_SYNC, TxRequest(block_hash, tuple(got)).to_bytes())
        delay = self.replica.core.config.round_timeout_ms / 4000
        asyncio.get_running_loop().call_later(delay, self._ask_others, block_hash, peer.node_id)

    def _ask_others(self, block_hash: bytes, first: str) -> None:
        pending = self.rebuilds.pending.get(block_hash)
        if pending is None or not self.running:
            return
        self.rebuilds.expire(self.now_ms())
        if block_hash not in self.rebuilds.pending:
            return
        req = TxRequest(block_hash, tuple(pending.missing)).to_bytes()
        validators = set(self.replica.core.validators)
        for nid in self.peers.peers:
            if nid != first and nid in validators:
                self.counters.tx_requests += 1
                self.peers.send(nid, Channel.BLOCK_SYNC, req)

    def _unverified(self, payload: Sequence[bytes]) -> bool:
        executor = self.replica.app.executor
        for raw in payload:
            try:
                if not executor.is_verified(executor.decode(raw).tx_id):
                    return True
            except ValidationError:
                return False  # the core refuses the block; nothing to check first
        return False

    async def _check_ahead(self, payload: Sequence[bytes], what: str) -> None:
        """:meth:`_preverify` ``payload``; a check that fails to run is logged, not raised
        (the core then verifies the signatures on its own)."""
        try:
            await self._preverify(payload)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("checking the signatures of %s failed", what)

    async def _verified_then(self, sender: str, msg: Proposal) -> None:
        await self._check_ahead(msg.block.payload, "a proposal")
        if self.running:
            self._run(lambda: self.replica.core.on_message(sender, msg, self.now_ms()))

    # ------------------------------------------------------------------ mempool
    def submit(self, raw: bytes) -> bytes:
        """Admit a transaction to this node's mempool and gossip it; its id.

        Raises
        ------
        ValidationError
            With the reason the transaction cannot be included.
        """
        tx_id = self.replica.app.submit(raw)
        self._queue_gossip(raw)
        return tx_id

    async def submit_many(self, raws: Sequence[bytes]) -> list[tuple[bytes | None, str | None]]:
        """Admit many transactions (signatures checked in a worker thread, so consensus
        goes on meanwhile) and gossip the admitted ones; each one's id or refusal."""
        async with self._admission:
            await self._preverify(raws)
            out: list[tuple[bytes | None, str | None]] = []
            for raw in raws:
                try:
                    out.append((self.submit(raw), None))
                except ValidationError as exc:
                    out.append((None, str(exc)))
            return out

    async def _preverify(self, raws: Sequence[bytes]) -> None:
        """Verify the SM2 signatures of ``raws`` off the event loop (the OpenSSL calls
        release the GIL) and tell the executor the outcomes, so admission and execution do
        not verify them again. A transaction already being verified (it came by gossip and
        now in a proposal) is waited for, not verified twice."""
        app = self.replica.app
        executor = app.executor
        jobs: list[tuple[Transaction, PublicKey]] = []
        waits: set[asyncio.Future[list[str | None]]] = set()
        keys: dict[bytes, PublicKey | None] = {}  # a batch comes from few senders
        for raw in raws:
            if type(raw) is bytes and app.is_known(executor.tx_id_of(raw)):
                # pending here (verified at its admission) or committed or refused: a late
                # gossip copy is not decoded or verified again (admission answers from the id)
                continue
            try:
                tx = executor.decode(raw)
            except ValidationError:
                continue  # admission says why
            if executor.is_verified(tx.tx_id):
                continue
            running = self._inflight.get(tx.tx_id)
            if running is not None:
                waits.add(running)
                continue
            if tx.sender in keys:
                key = keys[tx.sender]
            else:
                cert = load_certificate(app.state, tx.sender)
                key = keys[tx.sender] = None if cert is None else cert.key()
            if key is not None:
                jobs.append((tx, key))
        if jobs:
            chain_id = self.genesis.chain_id
            future = asyncio.get_running_loop().run_in_executor(
                self._verify_pool, self._check_signatures, jobs, chain_id
            )
            for tx, _ in jobs:
                self._inflight[tx.tx_id] = future
            try:
                outcomes = await future
            finally:
                for tx, _ in jobs:
                    self._inflight.pop(tx.tx_id, None)
            for (tx, _), reason in zip(jobs, outcomes, strict=True):
                executor.record_verification(tx.tx_id, reason)
        if waits:
            await asyncio.gather(*waits, return_exceptions=True)

    def _check_signatures(self, jobs: list[tuple[Transaction, PublicKey]], chain_id: str) -> list[str | None]:
        """:meth:`Transaction.verify_signatures` in the verifying thread (the only one that
        runs this, so the counters have one writer), with its CPU time counted."""
        start = time.thread_time()
        try:
            return Transaction.verify_signatures(jobs, chain_id)
        finally:
            self.counters.signature_checks += len(jobs)
            self.counters.signature_check_cpu_s += time.thread_time() - start

    def _queue_gossip(self, raw: bytes) -> None:
        self._gossip.append(raw)
        self._gossip_bytes += len(raw)
        if self._gossip_bytes >= GOSSIP_BATCH_BYTES:
            self._flush_gossip()
        elif self._gossip_handle is None:
            self._gossip_handle = asyncio.get_running_loop().call_later(GOSSIP_FLUSH_S, self._flush_gossip)

    def _flush_gossip(self) -> None:
        if self._gossip_handle is not None:
            self._gossip_handle.cancel()
            self._gossip_handle = None
        if not self._gossip:
            return
        batch, self._gossip, self._gossip_bytes = self._gossip, [], 0
        payload = codec.encode(batch)
        validators = set(self.replica.core.validators)
        for nid, peer in list(self.peers.peers.items()):
            if nid in validators:  # an observer drops gossip: it never proposes
                peer.send(Channel.MEMPOOL, payload)

    def _on_gossip(self, peer: Peer, payload: bytes) -> None:
        if not self.replica.voting:
            return  # an observer never proposes: it leaves the checking of pending txs to validators
        try:
            batch = codec.decode(payload)
        except codec.CodecError:
            self.counters.bad_messages += 1
            return
        if not isinstance(batch, list) or not all(isinstance(b, bytes) for b in batch):
            self.counters.bad_messages += 1
            return
        batch = batch[:MAX_GOSSIP_TXS]
        try:
            self._inbound.put_nowait(batch)
        except asyncio.QueueFull:
            # admission is far behind: the batch is not admitted here (its sender proposes
            # it), but kept a while so that proposals naming it are not fetched again
            self.counters.txs_refused += len(batch)
            self.counters.gossip_dropped += len(batch)
            self._keep_overflow(batch)
            return
        # decoded here (the decode is cached: admission needs it anyway) for the ids under
        # which a compact proposal that follows this gossip finds them
        decode = self.replica.app.executor.decode
        for raw in batch:
            with contextlib.suppress(ValidationError):  # admission refuses it
                self._unadmitted[decode(raw).tx_id] = raw

    def _keep_overflow(self, batch: Sequence[bytes]) -> None:
        app = self.replica.app
        tx_id_of = app.executor.tx_id_of
        for raw in batch:
            tx_id = tx_id_of(raw)
            if not app.is_known(tx_id):
                self._overflow.keep(tx_id, raw)

    def _take_overflow(self, n: int) -> list[bytes]:
        """Up to ``n`` of the oldest kept transactions, moved to :attr:`_unadmitted` (where
        proposals still find them) for admission."""
        out: list[bytes] = []
        while self._overflow and len(out) < n:
            tx_id, raw = self._overflow.take_oldest()
            self._unadmitted[tx_id] = raw
            out.append(raw)
        return out

    async def _gossip_worker(self) -> None:
        """Admit gossiped batches in arrival order, verifying signatures off the loop; then,
        when no gossip waits, what a full queue turned away, oldest first (so that every
        consensus node holds a transaction once the load allows, not only its sender)."""
        app = self.replica.app
        while True:
            kept = self._inbound.empty() and bool(self._overflow)
            batch = self._take_overflow(OVERFLOW_CHUNK) if kept else await self._inbound.get()
            async with self._admission:
                try:
                    await self._preverify(batch)
                    for raw in batch:
                        if not kept:  # (a kept one was counted, as refused, when it came)
                            self.counters.txs_gossiped_in += 1
                        try:
                            app.submit(raw)
                        except ValidationError:
                            if not kept:
                                self.counters.txs_refused += 1
                finally:
                    unadmitted = self._unadmitted
                    tx_id_of = app.executor.tx_id_of
                    for raw in batch:
                        unadmitted.pop(tx_id_of(raw), None)

    # ------------------------------------------------------------------ heartbeats
    def _heartbeat(self) -> bytes:
        core = self.replica.core
        return codec.encode({"h": core.committed.height, "r": core.round, "t": self.now_ms()})

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            self.peers.broadcast(Channel.HEARTBEAT, self._heartbeat())
            self._maybe_sync()

    def _on_heartbeat(self, peer: Peer, payload: bytes) -> None:
        try:
            doc = codec.decode(payload)
        except codec.CodecError:
            self.counters.bad_messages += 1
            return
        if not isinstance(doc, dict):
            self.counters.bad_messages += 1
            return
        if set(doc) == {"h", "r", "t"} and all(isinstance(v, int) for v in doc.values()):
            peer.stats.height, peer.stats.round = doc["h"], doc["r"]
            peer.send(Channel.HEARTBEAT, codec.encode({"echo": doc["t"]}))
            if doc["h"] >= self.replica.core.committed.height + SYNC_AHEAD:
                self._maybe_sync()
        elif set(doc) == {"echo"} and isinstance(doc["echo"], int):
            rtt = self.now_ms() - doc["echo"]
            if 0 <= rtt < 600_000:
                peer.stats.latency_ms = float(rtt)
        else:
            self.counters.bad_messages += 1

    def _peers_at(self, height: int) -> list[Peer]:
        """Peers whose last heartbeat reported at least ``height``, in node-id order."""
        return sorted(
            (p for p in self.peers.peers.values() if p.stats.height >= height), key=lambda p: p.node_id
        )

    def _maybe_sync(self) -> None:
        """Ask peers that are ahead for committed blocks (at most twice a second)."""
        mine = self.replica.core.committed.height
        ahead = self._peers_at(mine + SYNC_AHEAD)
        now = time.monotonic()
        if not ahead or now - self._last_sync_ask < 0.5 or self._sync_checking:
            return  # (while a response is being checked, an ask would bring copies of it)
        if mine == self._sync_asked_from and now - self._last_sync_ask < SYNC_RETRY_S:
            return  # the answers to the last ask may still be being checked: no copies of them
        self._last_sync_ask = now
        self._sync_asked_from = mine
        self._sync_turn += 1
        # two different peers each time: a single lying or slow peer cannot hold the node back
        for i in range(min(2, len(ahead))):
            peer = ahead[(self._sync_turn + i) % len(ahead)]
            peer.send(Channel.BLOCK_SYNC, encode_message(SyncRequest(mine + 1)))

    # ------------------------------------------------------------------ introspection
    def online_map(self) -> list[dict[str, Any]]:
        """Every node of the consortium this node knows of, with its link state."""
        rows: dict[str, dict[str, Any]] = {}
        state = self.replica.app.state
        for c in self.replica.epoch.validators:
            rows[c.cert_id.hex()] = {
                "node_id": c.cert_id.hex(),
                "subject": c.subject,
                "role": "consensus",
                "connected": False,
            }
        now = time.monotonic()
        for nid, p in self.peers.peers.items():
            row = rows.setdefault(nid, {"node_id": nid, "subject": p.stats.subject, "role": "observer"})
            row.update(
                connected=True,
                address=p.stats.address,
                direction="out" if p.stats.outbound else "in",
                last_heard_s=round(now - p.stats.last_heard, 3),
                height=p.stats.height,
                round=p.stats.round,
                latency_ms=p.stats.latency_ms,
                dropped=p.stats.dropped,
            )
        me = rows.setdefault(self.my_id, {"node_id": self.my_id, "subject": self.cert.subject})
        me.update(
            connected=True,
            self=True,
            role="consensus" if self.replica.voting else "observer",
            height=self.replica.core.committed.height,
            round=self.replica.core.round,
        )
        del state
        return sorted(rows.values(), key=lambda r: r["node_id"])
