"""The peer manager: one authenticated, multiplexed connection per consortium peer.

It listens on the node's addresses, dials its persistent peers (with jittered backoff),
runs the secure handshake on every connection and keeps exactly one connection per peer
certificate. When two nodes dial each other at the same time, both keep the connection
dialled by the node with the smaller certificate id, so they agree without talking. A
new connection from the same dialler replaces the old one (the peer restarted).

Each peer has a bounded outbound queue served by its own writer task: a slow or stalled
peer never blocks the node, it loses messages (counted) and, if it stays silent past the
idle limit, is disconnected. Frames are handed to the host through ``on_frame``.

Examples
--------
See :mod:`chain.node.host`, which runs one manager per node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from chain.crypto import PrivateKey, PublicKey
from chain.errors import ChainError
from chain.net import Channel, SecureConnection, secure_accept, secure_connect
from chain.types import Certificate

log = logging.getLogger("rongxin.p2p")

QUEUE_LIMIT = 4096
"""Messages queued for one peer before new ones are dropped."""

IDLE_LIMIT_S = 10.0
"""A peer heard nothing from for this long is disconnected (heartbeats come every second)."""

STOP_GRACE_S = 2.0
"""How long :meth:`PeerManager.stop` waits for its cancelled tasks at each step."""

DIAL_BACKOFF_MAX_S = 2.0
"""Longest pause between two dials of an unreachable peer (before jitter of ×0.5–1.5): a
healed link is found again within about three seconds, for the cost of one refused
connection attempt per peer every two seconds."""


async def _settle(tasks: list[asyncio.Task[None]], timeout: float) -> None:
    """Wait up to ``timeout`` s for ``tasks`` to end, retrieving their outcomes."""
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)
    for t in tasks:
        if t.done() and not t.cancelled():
            t.exception()


def parse_address(text: str) -> tuple[str, int]:
    """``"host:port"`` or ``"[v6]:port"`` → ``(host, port)``.

    Examples
    --------
    >>> parse_address("127.0.0.1:26656"), parse_address("[::1]:7")
    (('127.0.0.1', 26656), ('::1', 7))
    """
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"address {text!r} is not host:port")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"address {text!r}: unbalanced brackets")
        host = host[1:-1]
    p = int(port)
    if not 0 <= p <= 65535:
        raise ValueError(f"address {text!r}: port out of range")
    return host, p


def format_address(host: str, port: int) -> str:
    """Inverse of :func:`parse_address`."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class PeerStats:
    """What the node knows about one connected peer (the online map's row)."""

    node_id: str
    subject: str
    address: str
    outbound: bool
    connected_at: float
    last_heard: float
    height: int = 0
    round: int = 0
    latency_ms: float | None = None
    dropped: int = 0
    sent: dict[int, int] = field(default_factory=dict)
    received: dict[int, int] = field(default_factory=dict)


class Peer:
    """One live connection: a bounded send queue, a writer task and a reader task."""

    def __init__(self, conn: SecureConnection, outbound: bool, address: str, dialler: str) -> None:
        self.conn = conn
        self.cert: Certificate = conn.peer_cert
        self.node_id = self.cert.cert_id.hex()
        self.dialler = dialler
        now = time.monotonic()
        self.stats = PeerStats(self.node_id, self.cert.subject, address, outbound, time.time(), now)
        self._queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(QUEUE_LIMIT)
        self.closed = asyncio.Event()
        self.queued_bytes = 0
        """Bytes queued for this peer and not yet written to its connection."""
        self._tasks: list[asyncio.Task[None]] = []

    def send(self, channel: int, payload: bytes) -> bool:
        """Queue ``payload`` on ``channel``; ``False`` (and counted) when the queue is full."""
        if self.closed.is_set():
            return False
        try:
            self._queue.put_nowait((channel, payload))
        except asyncio.QueueFull:
            self.stats.dropped += 1
            return False
        self.queued_bytes += len(payload)
        return True

    async def _writer(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            channel, payload = item
            self.queued_bytes -= len(payload)
            await self.conn.send(channel, payload)
            self.stats.sent[channel] = self.stats.sent.get(channel, 0) + len(payload)

    async def _reader(self, on_frame: Callable[[Peer, int, bytes], Awaitable[None] | None]) -> None:
        while True:
            channel, payload = await self.conn.recv()
            self.stats.last_heard = time.monotonic()
            self.stats.received[channel] = self.stats.received.get(channel, 0) + len(payload)
            result = on_frame(self, channel, payload)
            if result is not None:
                await result

    def run(self, on_frame: Callable[[Peer, int, bytes], Awaitable[None] | None]) -> None:
        """Start the reader and writer; the first to stop closes the connection."""

        async def guarded(coro: Awaitable[None]) -> None:
            try:
                await coro
            except (ChainError, OSError, asyncio.IncompleteReadError, ConnectionError) as exc:
                log.info("peer %s: connection ended: %s", self.stats.subject, exc)
            finally:
                await self.close()

        self._tasks = [
            asyncio.ensure_future(guarded(self._writer())),
            asyncio.ensure_future(guarded(self._reader(on_frame))),
        ]

    async def close(self) -> None:
        """Close the connection (idempotent) and stop both tasks."""
        if self.closed.is_set():
            return
        self.closed.set()
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
        current = asyncio.current_task()
        for t in self._tasks:
            if t is not current:
                t.cancel()
        with contextlib.suppress(Exception):
            await self.conn.close()


FrameHandler = Callable[[Peer, int, bytes], Awaitable[None] | None]


class PeerManager:
    """Accept, dial, authenticate and keep one connection per peer.

    Parameters
    ----------
    key, cert : PrivateKey, Certificate
        This node's identity.
    chain_id, genesis_hash : str, bytes
        Bound into every handshake: a node of another chain is refused.
    root : PublicKey
        The consortium's root key: peers' certificates must be signed by it.
    check_peer : callable
        ``check_peer(cert)`` raises :class:`~chain.net.PeerRefused` for a peer that is
        not (or no longer) a node of the consortium.
    listen : sequence of (host, port)
        Addresses to accept connections on (IPv4 and IPv6).
    persistent_peers : sequence of (host, port)
        Addresses to keep a connection to.
    on_frame, on_connect, on_disconnect : callables
        The host's handlers.
    """

    def __init__(
        self,
        key: PrivateKey,
        cert: Certificate,
        *,
        chain_id: str,
        genesis_hash: bytes,
        root: PublicKey,
        check_peer: Callable[[Certificate], None],
        listen: Sequence[tuple[str, int]],
        persistent_peers: Sequence[tuple[str, int]],
        on_frame: FrameHandler,
        on_connect: Callable[[Peer], None] = lambda p: None,
        on_disconnect: Callable[[Peer], None] = lambda p: None,
        max_frame: int = 16 * 1024 * 1024 + 64,
        handshake_timeout: float = 10.0,
    ) -> None:
        self.key = key
        self.cert = cert
        self.my_id = cert.cert_id.hex()
        self.chain_id = chain_id
        self.genesis_hash = genesis_hash
        self.root = root
        self.check_peer = check_peer
        self.listen = list(listen)
        self.persistent = list(persistent_peers)
        self.on_frame = on_frame
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.max_frame = max_frame
        self.handshake_timeout = handshake_timeout
        self.peers: dict[str, Peer] = {}
        self.bound: list[tuple[str, int]] = []
        self.refused = 0
        self._servers: list[asyncio.Server] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._stopping = False

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run ``coro`` in the background, holding a reference until it ends."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Listen on every address and start dialling the persistent peers."""
        for host, port in self.listen:
            server = await asyncio.start_server(self._accept, host, port, limit=2**16)
            self._servers.append(server)
            for sock in server.sockets:
                addr = sock.getsockname()
                self.bound.append((addr[0], addr[1]))
        for addr in self.persistent:
            self._tasks.append(asyncio.ensure_future(self._dial_loop(addr)))
        self._tasks.append(asyncio.ensure_future(self._idle_watch()))

    async def stop(self) -> None:
        """Stop listening and dialling, and close every connection."""
        self._stopping = True
        for s in self._servers:
            s.close()
        for t in self._tasks:
            t.cancel()
        # Python 3.11's wait_for can lose a cancellation when the call it waits for completes
        # at that moment: a dial loop may then go on to connect and wait on its peer. So the
        # wait is bounded, the peers are closed (which wakes such a loop; it sees the stop and
        # ends), and what is left is cancelled again.
        await _settle(self._tasks, STOP_GRACE_S)
        for p in list(self.peers.values()):
            await p.close()
        left = [t for t in self._tasks if not t.done()]
        for t in left:
            t.cancel()
        await _settle(left, STOP_GRACE_S)
        for s in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(s.wait_closed(), 2.0)

    # ------------------------------------------------------------------ sending
    def send(self, node_id: str, channel: Channel | int, payload: bytes) -> bool:
        """Queue ``payload`` for peer ``node_id``; ``False`` if not connected or queue full."""
        peer = self.peers.get(node_id)
        return peer is not None and peer.send(int(channel), payload)

    def broadcast(self, channel: Channel | int, payload: bytes, exclude: str | None = None) -> int:
        """Queue ``payload`` for every connected peer; how many accepted it."""
        return sum(p.send(int(channel), payload) for nid, p in list(self.peers.items()) if nid != exclude)

    async def disconnect(self, node_id: str, reason: str) -> None:
        """Close the connection to ``node_id`` (e.g. its certificate was revoked)."""
        peer = self.peers.get(node_id)
        if peer is not None:
            log.warning("disconnecting peer %s: %s", peer.stats.subject, reason)
            await peer.close()

    # ------------------------------------------------------------------ connections
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        address = _peername(writer)
        if self._stopping:
            writer.close()
            return
        try:
            conn = await secure_accept(
                reader,
                writer,
                self.key,
                self.cert,
                chain_id=self.chain_id,
                genesis_hash=self.genesis_hash,
                root=self.root,
                check_peer=self._check,
                timeout=self.handshake_timeout,
                max_frame=self.max_frame,
            )
        except (ChainError, OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            self.refused += 1
            log.info("inbound connection from %s refused: %s", address, exc)
            writer.close()
            return
        self._register(conn, outbound=False, address=address)

    def _check(self, cert: Certificate) -> None:
        from chain.net import PeerRefused

        if cert.cert_id == self.cert.cert_id:
            raise PeerRefused("a node does not connect to itself")
        self.check_peer(cert)

    async def _dial_loop(self, addr: tuple[str, int]) -> None:
        delay = 0.2
        rng = random.Random()
        text = format_address(*addr)
        while not self._stopping:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(addr[0], addr[1], limit=2**16), self.handshake_timeout
                )
            except (OSError, TimeoutError):
                await asyncio.sleep(delay * (0.5 + rng.random()))
                delay = min(delay * 2, DIAL_BACKOFF_MAX_S)
                continue
            try:
                conn = await secure_connect(
                    reader,
                    writer,
                    self.key,
                    self.cert,
                    chain_id=self.chain_id,
                    genesis_hash=self.genesis_hash,
                    root=self.root,
                    check_peer=self._check,
                    timeout=self.handshake_timeout,
                    max_frame=self.max_frame,
                )
            except (ChainError, OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                self.refused += 1
                log.info("connection to %s refused: %s", text, exc)
                writer.close()
                await asyncio.sleep(delay * (0.5 + rng.random()))
                delay = min(delay * 2, DIAL_BACKOFF_MAX_S)
                continue
            peer = self._register(conn, outbound=True, address=text)
            if peer is None:  # a connection to this peer is already up
                await asyncio.sleep(1.0 + rng.random())
                existing = self.peers.get(conn.peer_cert.cert_id.hex())
                if existing is not None:
                    await existing.closed.wait()
                continue
            delay = 0.2
            await peer.closed.wait()
            await asyncio.sleep(0.05 + 0.2 * rng.random())

    def _register(self, conn: SecureConnection, *, outbound: bool, address: str) -> Peer | None:
        node_id = conn.peer_cert.cert_id.hex()
        dialler = self.my_id if outbound else node_id
        peer = Peer(conn, outbound, address, dialler)
        existing = self.peers.get(node_id)
        if existing is not None and not existing.closed.is_set():
            preferred = min(self.my_id, node_id)
            if existing.dialler != dialler and existing.dialler == preferred:
                self.spawn(conn.close())
                return None
            self.spawn(self._replace(existing))
        self.peers[node_id] = peer

        def frame(p: Peer, channel: int, payload: bytes) -> Awaitable[None] | None:
            return self.on_frame(p, channel, payload)

        peer.run(frame)
        self.spawn(self._watch(peer))
        log.info("peer %s connected (%s, %s)", peer.stats.subject, address, "out" if outbound else "in")
        self.on_connect(peer)
        return peer

    async def _replace(self, old: Peer) -> None:
        old_id = old.node_id
        await old.close()
        if self.peers.get(old_id) is old:
            del self.peers[old_id]

    async def _watch(self, peer: Peer) -> None:
        await peer.closed.wait()
        if self.peers.get(peer.node_id) is peer:
            del self.peers[peer.node_id]
            log.info("peer %s disconnected", peer.stats.subject)
            self.on_disconnect(peer)

    async def _idle_watch(self) -> None:
        tick = awake = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            if now - tick > 1.0 + min(2.0, IDLE_LIMIT_S / 2):
                # this node stood still (stopped, or a long step held its loop): what its
                # peers sent meanwhile is unread, not missing; they get a full period again
                awake = now
            tick = now
            for p in list(self.peers.values()):
                if now - max(p.stats.last_heard, awake) > IDLE_LIMIT_S:
                    log.warning("peer %s silent for %.0f s: disconnecting", p.stats.subject, IDLE_LIMIT_S)
                    await p.close()


def _peername(writer: asyncio.StreamWriter) -> str:
    name = writer.get_extra_info("peername")
    if isinstance(name, tuple) and len(name) >= 2:
        return format_address(str(name[0]), int(name[1]))
    return str(name)
