"""State sync over the network: snapshots a node serves, and an empty node restoring one.

A node with ``[state_sync] snapshot_interval = N`` writes a snapshot of its state
(:mod:`chain.snapshot`) every ``N`` blocks into ``data/snapshots/<height>/`` (in a worker
thread, from its own read transaction, so consensus goes on) and keeps the last few. It
answers on the ``STATE_SYNC`` channel:

* ``{"m": "list"}`` → ``{"m": "offer", "h": height, "manifest": bytes}`` (its newest
  snapshot) or ``{"m": "none"}``;
* ``{"m": "chunk", "h": height, "i": index}`` → ``{"m": "data", "h": height, "i": index,
  "data": bytes}``, or ``{"m": "missing", "h": height, "i": index}`` when it no longer
  holds that snapshot.

A peer is served one chunk at a time: its next request is read only once the previous
chunk has left (the connection's own back-pressure), so a peer that asks without reading
cannot make the node buffer more than a couple of chunks for it.

A node with ``[state_sync] enable = true`` whose ledger is empty restores a snapshot before
it starts (:func:`state_sync`): it dials its persistent peers, collects their offers for
``discovery_s``, and tries the newest snapshot first. Nothing a peer says is trusted:

* the manifest's commit proof (a quorum certificate of the epoch's validators, the epochs
  proven from the genesis) is checked before any chunk is fetched;
* chunks are fetched from every peer that offered the same snapshot (same block and chunk
  digests; the commit proofs may carry different quorums of signatures), a few at a time,
  round-robin; each is checked against the manifest's SM3 digest on arrival (then kept in
  a spool directory beside the ledger until the import), and a peer that sends a wrong
  chunk, or none within ``chunk_timeout_s``, is dropped for this snapshot and the chunk is
  asked of another;
* the state rebuilt from the chunks must hash to the block's state root, or nothing is
  kept (:func:`chain.snapshot.import_snapshot` commits all or nothing); the next offer is
  tried then.

The node then starts on the restored store and block-syncs what was committed since.

Examples
--------
``rongxin node run`` does this when the config asks for it; see ``docs/operator-guide.md``
(adding a node) and ``tests/chain/node/test_statesync.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain import codec
from chain.crypto import PrivateKey
from chain.crypto.sm3 import sm3
from chain.errors import ChainError, SnapshotError
from chain.net import Channel, PeerRefused
from chain.net.peers import Peer, PeerManager
from chain.receipt import Checkpoint
from chain.snapshot import (
    CHUNK_BYTES,
    MANIFEST_FILE,
    Manifest,
    SnapshotInfo,
    chunk_name,
    import_snapshot,
    verify_manifest,
    write_snapshot,
)
from chain.store import LedgerStore
from chain.types import NODE_ROLES, Certificate, Genesis

log = logging.getLogger("rongxin.statesync")

MAX_MESSAGE_BYTES = 64 * 1024
"""Largest request a node reads on ``STATE_SYNC`` (requests are a few bytes)."""

WINDOW = 4
"""Chunks in flight at once while restoring (at most this many are held in memory)."""

PROOF_LAG = 3
"""A snapshot is taken of a block at most this far below the head whose commit proof is stored."""

_ENVELOPE = 1024
"""Bytes a chunk message adds around the chunk."""


def chunk_bytes_for(max_frame: int) -> int:
    """The chunk size that fits a frame of ``max_frame`` bytes with its envelope."""
    return max(1024, min(CHUNK_BYTES, max_frame - _ENVELOPE))


# --------------------------------------------------------------------------- serving
class SnapshotServer:
    """The snapshots a node writes and serves (see the module docstring).

    Parameters
    ----------
    store : LedgerStore
        The node's store (snapshots read it through their own read transaction).
    genesis : Genesis
        The chain's genesis.
    directory : Path
        Where snapshots live (``data/snapshots``); one subdirectory per height.
    interval : int
        Blocks between snapshots (0: write none; existing ones are still served).
    keep : int
        Snapshots kept; older ones are deleted once a new one is complete.
    max_frame : int
        The peer channel's frame limit (chunks are sized to fit it).
    chunk_bytes : int, optional
        A smaller chunk size (default: the largest that fits a frame, at most 4 MiB).
    """

    def __init__(
        self,
        store: LedgerStore,
        genesis: Genesis,
        directory: Path,
        *,
        interval: int,
        keep: int = 2,
        max_frame: int = 16 * 1024 * 1024 + 64,
        chunk_bytes: int | None = None,
    ) -> None:
        self.store = store
        self.genesis = genesis
        self.directory = directory
        self.interval = interval
        self.keep = max(1, keep)
        self.chunk_bytes = (
            chunk_bytes_for(max_frame)
            if chunk_bytes is None
            else min(chunk_bytes, chunk_bytes_for(max_frame))
        )
        self.taking = False
        self.taken = 0
        self.chunks_served = 0
        self.last_error: str | None = None
        self._latest: tuple[int, bytes] | None = None
        self._last_height = 0
        self._lock = threading.Lock()
        self._task: asyncio.Future[None] | None = None
        self._clean_partial()
        self._load_latest()

    # ------------------------------------------------------------------ on disk
    def _clean_partial(self) -> None:
        if not self.directory.is_dir():
            return
        for d in self.directory.iterdir():
            if d.name.startswith("."):  # a write interrupted by a crash
                shutil.rmtree(d, ignore_errors=True)

    def heights(self) -> list[int]:
        """Heights of the complete snapshots on disk, ascending."""
        if not self.directory.is_dir():
            return []
        out = []
        for d in self.directory.iterdir():
            if d.name.isdigit() and (d / MANIFEST_FILE).is_file():
                out.append(int(d.name))
        return sorted(out)

    def _load_latest(self) -> None:
        for h in reversed(self.heights()):
            try:
                raw = (self.directory / _dirname(h) / MANIFEST_FILE).read_bytes()
                Manifest.from_bytes(raw)
            except (OSError, SnapshotError) as exc:
                log.warning("snapshot at height %d is unreadable, not served: %s", h, exc)
                continue
            with self._lock:
                self._latest = (h, raw)
            self._last_height = h
            return

    @property
    def latest(self) -> tuple[int, bytes] | None:
        """``(height, manifest bytes)`` of the newest complete snapshot, or ``None``."""
        with self._lock:
            return self._latest

    def take(self) -> int | None:
        """Write a snapshot of the newest provable block (blocking: run it in a worker
        thread); its height, or ``None`` when no block could be proven yet.

        The head is tried first (its state is the stored one); a node restored from a
        snapshot can export its head only (older states are rebuilt from the genesis)."""
        head = self.store.head_height()
        lowest = head if self.store.base_height() > 0 else max(1, head - PROOF_LAG)
        for h in range(head, lowest - 1, -1):
            if h < 1:
                break
            target = self.directory / _dirname(h)
            if target.exists():
                return h
            try:
                write_snapshot(self.store, self.genesis, target, h, chunk_bytes=self.chunk_bytes)
            except SnapshotError as exc:
                if exc.reason == "height":
                    continue  # no commit proof stored yet for this block: try the one below
                raise
            raw = (target / MANIFEST_FILE).read_bytes()
            with self._lock:
                self._latest = (h, raw)
            self._prune()
            return h
        return None

    def _prune(self) -> None:
        heights = self.heights()
        for h in heights[: max(0, len(heights) - self.keep)]:
            shutil.rmtree(self.directory / _dirname(h), ignore_errors=True)

    def read_chunk(self, height: int, index: int) -> bytes | None:
        """Chunk ``index`` of the snapshot at ``height``, or ``None`` when not held."""
        if index < 0 or height < 1:
            return None
        try:
            with open(self.directory / _dirname(height) / chunk_name(index), "rb") as fh:
                return fh.read(self.chunk_bytes + _ENVELOPE + 16 * 1024 * 1024)
        except OSError:
            return None

    # ------------------------------------------------------------------ on the node
    def on_commit(self, height: int) -> None:
        """Start a snapshot in a worker thread when ``interval`` blocks have passed."""
        if self.interval <= 0 or self.taking or height < self._last_height + self.interval:
            return
        self.taking = True
        self._last_height = height
        loop = asyncio.get_running_loop()
        self._task = loop.run_in_executor(None, self._take_logged, height)

    def _take_logged(self, height: int) -> None:
        started = time.monotonic()
        try:
            h = self.take()
            if h is not None:
                self.taken += 1
                self.last_error = None
                log.info("snapshot of height %d written in %.1f s", h, time.monotonic() - started)
        except (ChainError, OSError) as exc:
            self.last_error = str(exc)
            log.warning("snapshot at height %d failed: %s", height, exc)
        finally:
            self.taking = False

    async def wait_idle(self) -> None:
        """Wait for a snapshot being written (before the store is closed)."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task

    def on_frame(self, peer: Peer, payload: bytes) -> Awaitable[None] | None:
        """Answer one ``STATE_SYNC`` request; a chunk is read and queued before the
        peer's next frame is read. Malformed requests are ignored (and counted by the caller
        through the ``False`` path: they return ``None`` without a reply)."""
        req = _decode(payload, MAX_MESSAGE_BYTES)
        if req is None:
            return None
        kind = req.get("m")
        if kind == "list" and len(req) == 1:
            latest = self.latest
            reply = {"m": "none"} if latest is None else {"m": "offer", "h": latest[0], "manifest": latest[1]}
            peer.send(Channel.STATE_SYNC, codec.encode(reply))
            return None
        if kind == "chunk" and set(req) == {"m", "h", "i"} and _ints(req["h"], req["i"]):
            return self._serve(peer, req["h"], req["i"])
        return None

    async def _serve(self, peer: Peer, height: int, index: int) -> None:
        data = await asyncio.get_running_loop().run_in_executor(None, self.read_chunk, height, index)
        if data is None:
            peer.send(Channel.STATE_SYNC, codec.encode({"m": "missing", "h": height, "i": index}))
            return
        self.chunks_served += 1
        peer.send(Channel.STATE_SYNC, codec.encode({"m": "data", "h": height, "i": index, "data": data}))
        # back-pressure: do not read the peer's next request while its chunks pile up here
        deadline = time.monotonic() + 30.0
        while peer.queued_bytes > 2 * self.chunk_bytes and not peer.closed.is_set():
            if time.monotonic() > deadline:
                await peer.close()
                return
            await asyncio.sleep(0.01)


def _content_key(m: Manifest) -> bytes:
    """What makes two offers the same snapshot: its block and its chunks. (The commit proofs
    may differ: each node may hold another quorum of signatures for the same block.)"""
    return sm3(codec.encode([m.height, m.block_hash, m.state_root, [c.to_obj() for c in m.chunks]]))


def _dirname(height: int) -> str:
    return f"{height:012d}"


def _ints(*values: object) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63 for v in values)


def _decode(payload: bytes, limit: int) -> dict[str, Any] | None:
    if len(payload) > limit:
        return None
    try:
        doc = codec.decode(payload, max_size=limit)
    except codec.CodecError:
        return None
    return doc if isinstance(doc, dict) else None


# --------------------------------------------------------------------------- restoring
@dataclass
class _Offer:
    height: int
    manifest_bytes: bytes
    peers: list[str] = field(default_factory=list)


@dataclass
class StateSyncReport:
    """What :func:`state_sync` did: the snapshot restored, from whom, and how long it took."""

    info: SnapshotInfo
    peers: list[str]
    """Subjects of the peers that served chunks."""
    refused: list[str]
    """Why offers or peers were dropped (a lying or broken peer), one sentence each."""
    seconds: float


PRUNED_ROUNDS = 3
"""Times a joining node asks its peers again for their latest snapshots when every one it
tried was pruned while it fetched it (a fast chain prunes old snapshots within seconds)."""
PRUNED_PAUSE_S = 1.0
"""The pause before asking again, for the peers' next snapshots to be written."""


class _Restore:
    """One restore: collects offers, fetches chunks, feeds the importer thread."""

    def __init__(
        self,
        key: PrivateKey,
        cert: Certificate,
        genesis: Genesis,
        peers: Sequence[tuple[str, int]],
        *,
        discovery_s: float,
        chunk_timeout_s: float,
        max_frame: int,
        handshake_timeout: float,
    ) -> None:
        self.genesis = genesis
        self.discovery_s = discovery_s
        self.chunk_timeout_s = chunk_timeout_s
        self.max_frame = max_frame
        self.offers: dict[bytes, _Offer] = {}
        self.answered: set[str] = set()
        self.refused: list[str] = []
        self.bad_peers: set[str] = set()
        self.waiting: dict[tuple[int, int], tuple[str, asyncio.Future[bytes | None]]] = {}
        self.changed = asyncio.Event()
        self.pm = PeerManager(
            key,
            cert,
            chain_id=genesis.chain_id,
            genesis_hash=genesis.hash,
            root=genesis.root_key(),
            check_peer=self._check_peer,
            listen=[],
            persistent_peers=peers,
            on_frame=self._on_frame,
            on_connect=self._on_connect,
            max_frame=max_frame,
            handshake_timeout=handshake_timeout,
        )
        self.expected = len(peers)

    def _check_peer(self, cert: Certificate) -> None:
        # without state yet, a peer is any node certificate of the consortium's root (checked by
        # the handshake) that is valid now; what it sends is checked against the genesis anyway
        if not NODE_ROLES & set(cert.roles):
            raise PeerRefused(f"{cert.subject!r} is a member certificate, not a node's")
        if not cert.valid_at(int(time.time() * 1000)):
            raise PeerRefused(f"{cert.subject!r}'s certificate is not valid now")

    def _on_connect(self, peer: Peer) -> None:
        peer.send(Channel.STATE_SYNC, codec.encode({"m": "list"}))

    def _on_frame(self, peer: Peer, channel: int, payload: bytes) -> None:
        if channel != Channel.STATE_SYNC:
            return  # consensus, gossip and heartbeats of a node that is not running yet
        msg = _decode(payload, self.max_frame)
        if msg is None:
            self._drop(peer.node_id, f"{peer.stats.subject} sent a malformed state-sync message")
            return
        kind = msg.get("m")
        if kind == "none" and len(msg) == 1:
            self.answered.add(peer.node_id)
        elif kind == "offer" and set(msg) == {"m", "h", "manifest"} and _ints(msg["h"]):
            raw = msg["manifest"]
            if not isinstance(raw, bytes):
                self._drop(peer.node_id, f"{peer.stats.subject} offered a manifest that is not bytes")
                return
            self.answered.add(peer.node_id)
            try:
                key = _content_key(Manifest.from_bytes(raw))
            except SnapshotError as exc:
                self._drop(peer.node_id, f"{peer.stats.subject} offered a malformed manifest: {exc.detail}")
                return
            offer = self.offers.setdefault(key, _Offer(msg["h"], raw))
            if peer.node_id not in offer.peers:
                offer.peers.append(peer.node_id)
        elif kind in ("data", "missing") and _ints(msg.get("h"), msg.get("i")):
            waiter = self.waiting.get((msg["h"], msg["i"]))
            if waiter is None or waiter[0] != peer.node_id or waiter[1].done():
                return  # late (timed out and asked elsewhere) or unasked
            data = msg.get("data") if kind == "data" else None
            if kind == "data" and (set(msg) != {"m", "h", "i", "data"} or not isinstance(data, bytes)):
                data = None
            waiter[1].set_result(data)
        else:
            self._drop(peer.node_id, f"{peer.stats.subject} sent an unknown state-sync message")
            return
        self.changed.set()

    def _drop(self, node_id: str, why: str) -> None:
        if node_id not in self.bad_peers:
            self.bad_peers.add(node_id)
            self.refused.append(why)
            log.warning("state sync: %s", why)

    async def discover(self) -> list[_Offer]:
        """Offers collected for ``discovery_s`` (sooner once every peer answered), newest first."""
        deadline = time.monotonic() + self.discovery_s
        while time.monotonic() < deadline:
            if self.expected and len(self.answered) >= self.expected:
                break
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), max(0.01, deadline - time.monotonic()))
        return sorted(self.offers.values(), key=lambda o: (o.height, len(o.peers)), reverse=True)

    async def rediscover(self) -> list[_Offer]:
        """Ask every connected, well-behaved peer again for its latest snapshot (the ones
        offered before were pruned meanwhile); the new offers as :meth:`discover`."""
        self.offers.clear()
        self.answered.clear()
        for node_id, peer in list(self.pm.peers.items()):
            if node_id not in self.bad_peers:
                peer.send(Channel.STATE_SYNC, codec.encode({"m": "list"}))
        self.expected = len([p for p in self.pm.peers if p not in self.bad_peers])
        return await self.discover()

    def _subject(self, node_id: str) -> str:
        peer = self.pm.peers.get(node_id)
        return peer.stats.subject if peer is not None else node_id[:16]

    async def _fetch(self, manifest: Manifest, offer: _Offer, index: int, used: set[str]) -> bytes:
        """Chunk ``index``, from the offer's peers in turn until one sends the right bytes."""
        tried: set[str] = set()
        pruned: set[str] = set()  # peers that answered, this round, that they no longer hold it
        while True:
            candidates = [
                p for p in offer.peers if p not in self.bad_peers and p not in tried and p in self.pm.peers
            ]
            if not candidates:
                if tried and tried <= pruned:  # every live peer has pruned it: a newer one is needed
                    raise SnapshotError(
                        "pruned",
                        f"every peer that offered the snapshot of height {manifest.height} pruned it",
                    )
                if tried:  # every live peer tried once: go round again after a pause
                    tried.clear()
                    pruned.clear()
                    await asyncio.sleep(0.5)
                    continue
                raise SnapshotError("chunk", f"no peer that offered this snapshot can send chunk {index}")
            node_id = candidates[index % len(candidates)]
            tried.add(node_id)
            future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
            self.waiting[(manifest.height, index)] = (node_id, future)
            self.pm.send(
                node_id, Channel.STATE_SYNC, codec.encode({"m": "chunk", "h": manifest.height, "i": index})
            )
            try:
                data = await asyncio.wait_for(future, self.chunk_timeout_s)
            except TimeoutError:
                self._drop(node_id, f"{self._subject(node_id)} did not send chunk {index} in time")
                continue
            finally:
                self.waiting.pop((manifest.height, index), None)
            if data is None:
                pruned.add(node_id)  # it no longer holds the snapshot: not a fault
                continue
            try:
                manifest.check_chunk(index, data)
            except SnapshotError as exc:
                self._drop(node_id, f"{self._subject(node_id)} sent a wrong chunk {index}: {exc.detail}")
                continue
            used.add(self._subject(node_id))
            return data

    async def restore(
        self, offer: _Offer, store: LedgerStore, checkpoint: Checkpoint | None, spool: Path
    ) -> tuple[SnapshotInfo, set[str]]:
        """Fetch ``offer``'s snapshot into ``spool`` (each chunk checked on arrival), then
        import it into the empty ``store``.

        The two phases do not overlap: the import holds the interpreter for seconds at a
        time, and an event loop starved of it reads the network in slow bursts.
        """
        manifest = Manifest.from_bytes(offer.manifest_bytes)
        if manifest.height != offer.height:
            raise SnapshotError(
                "malformed", f"offered as height {offer.height}, the manifest says {manifest.height}"
            )
        verify_manifest(manifest, self.genesis, checkpoint)  # before any chunk is fetched
        used: set[str] = set()
        spool.mkdir(parents=True, exist_ok=True)
        total = len(manifest.chunks)
        pending: dict[int, asyncio.Task[bytes]] = {}
        next_index = 0
        try:
            for index in range(total):
                while next_index < total and len(pending) < WINDOW:
                    pending[next_index] = asyncio.ensure_future(
                        self._fetch(manifest, offer, next_index, used)
                    )
                    next_index += 1
                data = await pending.pop(index)
                (spool / chunk_name(index)).write_bytes(data)
        finally:
            for t in pending.values():
                if t.done() and not t.cancelled():
                    t.exception()  # retrieved: the first failure is the one raised
                t.cancel()

        def chunks() -> Iterator[bytes]:
            for index in range(total):
                yield (spool / chunk_name(index)).read_bytes()

        def run_import() -> SnapshotInfo:
            return import_snapshot(manifest, chunks(), store, self.genesis, checkpoint=checkpoint)

        info = await asyncio.get_running_loop().run_in_executor(None, run_import)
        return info, used


async def state_sync(
    key: PrivateKey,
    cert: Certificate,
    genesis: Genesis,
    peers: Sequence[tuple[str, int]],
    store: LedgerStore,
    *,
    discovery_s: float = 10.0,
    chunk_timeout_s: float = 15.0,
    max_frame: int = 16 * 1024 * 1024 + 64,
    handshake_timeout: float = 10.0,
    checkpoint: Checkpoint | None = None,
    spool_dir: Path | None = None,
    log_to: Callable[[str], None] | None = None,
) -> StateSyncReport:
    """Restore the newest snapshot the ``peers`` offer into the empty ``store``.

    Parameters
    ----------
    key, cert : PrivateKey, Certificate
        This node's identity (the peers admit registered nodes only).
    genesis : Genesis
        The chain's genesis: the root of trust of everything received.
    peers : sequence of (host, port)
        The persistent peers to ask.
    store : LedgerStore
        A new, empty store of ``genesis``'s chain.
    discovery_s, chunk_timeout_s : float
        How long offers are collected; how long one chunk may take from one peer.
    checkpoint : Checkpoint, optional
        A pinned checkpoint the snapshot must not be older than.
    spool_dir : Path, optional
        Where the chunks are kept between download and import (default: beside the
        store's database); removed afterwards.

    Returns
    -------
    StateSyncReport

    Raises
    ------
    SnapshotError
        ``offers`` when no peer offered a snapshot that could be restored (the reasons of
        each refusal are in the message); the store is left empty.
    """
    started = time.monotonic()
    spool_dir = spool_dir if spool_dir is not None else Path(store.path).parent
    job = _Restore(
        key,
        cert,
        genesis,
        peers,
        discovery_s=discovery_s,
        chunk_timeout_s=chunk_timeout_s,
        max_frame=max_frame,
        handshake_timeout=handshake_timeout,
    )
    say = log_to or log.info
    await job.pm.start()
    try:
        offers = await job.discover()
        if not offers:
            raise SnapshotError(
                "offers",
                f"no peer offered a snapshot within {discovery_s:g} s ({len(job.pm.peers)} connected)",
            )
        for round_ in range(1 + PRUNED_ROUNDS):
            if round_:  # the snapshots were pruned while we fetched them: newer ones are offered
                await asyncio.sleep(PRUNED_PAUSE_S)
                offers = await job.rediscover()
            pruned = False
            for offer in offers:
                live = [p for p in offer.peers if p not in job.bad_peers]
                if not live:
                    continue
                n = len(live)
                say(f"state sync: restoring the snapshot of height {offer.height} offered by {n} peer(s)")
                spool = Path(tempfile.mkdtemp(prefix=".state-sync-", dir=spool_dir))
                try:
                    info, used = await job.restore(offer, store, checkpoint, spool)
                except SnapshotError as exc:
                    why = f"the snapshot of height {offer.height} was refused: {exc}"
                    job.refused.append(why)
                    log.warning("state sync: %s", why)
                    if exc.reason in ("commit-proof", "state", "malformed", "wrong-chain", "checkpoint"):
                        for p in offer.peers:  # they offered a snapshot that does not verify
                            job.bad_peers.add(p)
                    pruned = pruned or exc.reason == "pruned"
                    continue
                finally:
                    shutil.rmtree(spool, ignore_errors=True)
                return StateSyncReport(info, sorted(used), job.refused, round(time.monotonic() - started, 3))
            if not pruned:
                break
        raise SnapshotError("offers", "no offered snapshot could be restored: " + "; ".join(job.refused))
    finally:
        await job.pm.stop()


__all__ = ["SnapshotServer", "StateSyncReport", "chunk_bytes_for", "state_sync"]
