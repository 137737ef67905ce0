"""What the node API needs from a running node: status, reads, submission and commit waits.

The node host (``chain.node.host``) builds one :class:`NodeService` around its
:class:`~chain.replica.Replica` and runs the API (:func:`chain.api.create_app`) in the same
asyncio event loop, so the service reads the replica directly: no thread ever touches it.
The host gives the service what only it knows — how to admit and gossip a transaction
(``submit``), its peers (``net_info``) and its sync state (``status_extra``) — and publishes
committed-chain events to the service's :class:`~chain.node.events.EventHub`, for instance
with :meth:`NodeService.publish_committed` after each commit.

Every read returns JSON-ready values (bytes as lowercase hex, :func:`~chain.node.events.to_json`).

Examples
--------
>>> import asyncio, tempfile
>>> from chain.localnet import LocalConsortium
>>> c = LocalConsortium.create(tempfile.mkdtemp(), nodes=4)
>>> async def submit(raw: bytes) -> bytes:
...     tx_id = c.net.submit(raw); c.net.wait(tx_id); return tx_id
>>> service = NodeService("node-0", c.replicas[0], submit=submit)
>>> status = service.status()
>>> status["role"], status["height"], status["validators"]
('consensus', 0, 4)
>>> c.close()
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from chain import codec
from chain.consensus.messages import Block
from chain.contracts.anchor import anchor_key
from chain.contracts.membership import load_certificate, revoked_from
from chain.crypto.sm3 import sm3
from chain.epochs import EpochRecord, epoch_info, epoch_key, genesis_epoch
from chain.errors import AuthError, CommitTimeout, ReceiptError, ValidationError
from chain.executor import next_nonce
from chain.node.batches import BatchIndex, BatchMembership, SqliteBatchIndex
from chain.node.events import Event, EventHub, committed_events, to_json
from chain.receipt import Checkpoint, Receipt, build_checkpoint, build_receipt, header_hash
from chain.replica import Replica
from chain.state_receipt import build_state_receipt
from chain.store import LedgerStore
from chain.types import Certificate, Transaction

SubmitFn = Callable[[bytes], Awaitable[bytes]]
"""Admit a raw transaction to the node's mempool and gossip it; its id, or
:class:`~chain.errors.ValidationError` with the reason it was refused."""
SubmitManyFn = Callable[[list[bytes]], Awaitable[list[tuple[bytes | None, str | None]]]]
"""Admit many raw transactions; for each, its id or the reason it was refused."""

POLL_S = 0.25
"""How often a commit wait also looks at the store (when no event wakes it first)."""
CACHE_ENTRIES = 256
"""Receipts kept, per head height (a receipt proves its block's history under the head)."""
MAX_EPOCH_HISTORY = 256
"""Epochs listed by :meth:`NodeService.validators` (the most recent ones)."""


class ApiMetrics:
    """The API's Prometheus metrics (``rongxin_api_*``) in the node's registry."""

    def __init__(self, registry: CollectorRegistry, hub: EventHub) -> None:
        self.requests = Counter(
            "rongxin_api_requests", "API requests by route and status", ["route", "status"], registry=registry
        )
        self.seconds = Histogram(
            "rongxin_api_request_seconds", "API request handling time", ["route"], registry=registry
        )
        self.auth_failures = Counter(
            "rongxin_api_auth_failures", "Signed requests refused, by status", ["status"], registry=registry
        )
        self.subscriptions = Gauge("rongxin_api_subscriptions", "Live event subscriptions", registry=registry)
        self.subscriptions.set_function(lambda: len(hub))
        self.overflows = Gauge(
            "rongxin_api_subscription_overflows",
            "Subscriptions ended because their client fell behind (since start)",
            registry=registry,
        )
        self.overflows.set_function(lambda: hub.overflows)


def tx_json(tx: Transaction) -> dict[str, Any]:
    """A decoded transaction as JSON.

    Examples
    --------
    >>> from chain.crypto import PrivateKey
    >>> tx = Transaction.create(PrivateKey.generate(), b"\\x01" * 32, "anchor",
    ...                         {"digest": b"\\x02" * 32, "kind": "work"}, 1, 0)
    >>> tx_json(tx)["payload"]["kind"]
    'work'
    """
    return {
        "type": tx.type,
        "payload": to_json(tx.payload),
        "sender": tx.sender.hex(),
        "nonce": tx.nonce,
        "timestamp_ms": tx.timestamp_ms,
        "signature": tx.signature.hex(),
    }


def block_json(block: Block) -> dict[str, Any]:
    """A committed block as JSON: its header fields and its transactions' ids."""
    txs = []
    for raw in block.payload:
        tx = Transaction.from_bytes(raw)
        txs.append({"tx_id": sm3(raw).hex(), "type": tx.type, "sender": tx.sender.hex(), "nonce": tx.nonce})
    qc = block.qc
    return {
        "height": block.height,
        "hash": block.hash.hex(),
        "parent_hash": block.parent_hash.hex(),
        "round": block.round,
        "epoch": block.epoch,
        "time_ms": block.timestamp_ms,
        "proposer": block.proposer,
        "tx_root": block.tx_root.hex(),
        "state_root": block.state_root.hex(),
        "qc": None
        if qc is None
        else {"round": qc.round, "block_hash": qc.block_hash.hex(), "signers": [a for a, _ in qc.signatures]},
        "tc_round": None if block.tc is None else block.tc.round,
        "evidence": len(block.evidence),
        "txs": txs,
    }


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    """A receipt as JSON: its bytes in hex and a summary of what it claims (unverified).

    The summary lets a reader see what the receipt is about; trust comes only from
    :meth:`~chain.receipt.Receipt.verify` against the genesis.
    """
    header = receipt.headers[0]
    tx = Transaction.from_bytes(receipt.tx)
    history = receipt.history
    raw = receipt.to_bytes()
    return {
        "receipt": raw.hex(),
        "summary": {
            "chain_id": receipt.chain_id,
            "tx_id": tx.tx_id.hex(),
            "tx_type": tx.type,
            "sender": tx.sender.hex(),
            "height": header[1],
            "index": receipt.index,
            "block_hash": header_hash(header).hex(),
            "block_time_ms": header[6],
            "epoch": header[11],
            "epochs_proven": len(receipt.epochs),
            "history_height": None if history is None else history["headers"][0][1],
            "bytes": len(raw),
        },
    }


class NodeService:
    """A running node as the API sees it.

    Parameters
    ----------
    name : str
        The node's name (``[node] name`` of its configuration).
    replica : Replica
        The node's replica (store, application, consensus core).
    submit : callable
        ``async submit(raw) -> tx_id``: admission to the mempool and gossip, raising
        :class:`~chain.errors.ValidationError` with the reason a transaction is refused.
    net_info : callable, optional
        ``() -> dict`` about the node's network; ``"peers"`` (a list) is counted in
        :meth:`status`.
    status_extra : callable, optional
        ``() -> dict`` merged into :meth:`status` (``"catching_up"``, ``"peers"`` and any
        other key the host wants to show).
    hub : EventHub, optional
        Where the host publishes committed-chain events (a new one by default).
    registry : prometheus_client.CollectorRegistry, optional
        The node's metrics (``/metrics``); the API adds ``rongxin_api_*``.
    batches : BatchIndex, optional
        Leaves of anchored batches (in memory by default).
    submit_many : callable, optional
        The host's batch admission (signatures verified off the event loop); without it,
        ``submit`` is called for each transaction.
    vault : chain.vault.service.VaultService, optional
        The node's off-chain vault; the API serves ``/vault/*`` when it is given.
    """

    def __init__(
        self,
        name: str,
        replica: Replica,
        *,
        submit: SubmitFn,
        net_info: Callable[[], dict[str, Any]] | None = None,
        status_extra: Callable[[], dict[str, Any]] | None = None,
        hub: EventHub | None = None,
        registry: CollectorRegistry | None = None,
        batches: BatchIndex | SqliteBatchIndex | None = None,
        submit_many: SubmitManyFn | None = None,
        vault: Any = None,
    ) -> None:
        self.name = name
        self.vault = vault
        self.replica = replica
        self.genesis = replica.genesis
        self.hub = hub if hub is not None else EventHub()
        self.registry = registry if registry is not None else CollectorRegistry()
        self.batches: BatchIndex | SqliteBatchIndex = batches if batches is not None else BatchIndex()
        self.metrics = ApiMetrics(self.registry, self.hub)
        self._submit = submit
        self._submit_many = submit_many
        self._net_info = net_info if net_info is not None else (lambda: {"peers": []})
        self._status_extra = status_extra if status_extra is not None else dict
        self._waiters: dict[bytes, list[asyncio.Future[int]]] = {}
        self._receipts: OrderedDict[bytes, tuple[int, Receipt]] = OrderedDict()
        self._checkpoint: tuple[int, Checkpoint] | None = None
        self._genesis_certs = {c.cert_id: c for c in self.genesis.certificates}
        self.hub.add_listener(self._on_event)

    @property
    def store(self) -> LedgerStore:
        """The node's ledger store."""
        return self.replica.store

    # ---------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        """Who the node is and where its chain stands.

        Keys: ``node``, ``chain_id``, ``genesis_hash``, ``node_id``, ``role``
        (``consensus`` when it votes, else ``observer``), ``voting``, ``height``,
        ``head_hash``, ``head_time_ms``, ``base_height`` (0, or the snapshot height the node
        was restored from: blocks below it are not kept), ``round``, ``epoch``, ``validators`` (count),
        ``mempool`` (transactions), ``peers`` (count), ``catching_up``, then the host's
        :meth:`status_extra` keys.
        """
        r = self.replica
        extra = dict(self._status_extra())
        peers = self._net_info().get("peers", [])
        status: dict[str, Any] = {
            "node": self.name,
            "chain_id": self.genesis.chain_id,
            "genesis_hash": self.genesis.hash.hex(),
            "node_id": r.node_id,
            "role": "consensus" if r.voting else "observer",
            "voting": r.voting,
            "height": self.store.head_height(),
            "head_hash": r.app.head_hash.hex(),
            "head_time_ms": r.app.head_block.timestamp_ms,
            "base_height": self.store.base_height(),
            "round": r.core.round,
            "epoch": r.core.epoch,
            "validators": r.core.n,
            "mempool": len(r.app.mempool),
            "peers": extra.pop("peers", len(peers) if isinstance(peers, (list, dict)) else peers),
            "catching_up": bool(extra.pop("catching_up", False)),
        }
        for key, value in extra.items():
            status.setdefault(key, value)
        return status

    def status_extra(self) -> dict[str, Any]:
        """What the host adds to :meth:`status`."""
        return dict(self._status_extra())

    def net_info(self) -> dict[str, Any]:
        """The host's view of the network (peers, listen addresses, traffic)."""
        return dict(self._net_info())

    # ---------------------------------------------------------------- members
    def certificate(self, cert_id: bytes) -> Certificate | None:
        """A registered certificate (or one of the genesis'), revoked or not."""
        cert = load_certificate(self.replica.app.state, cert_id)
        return cert if cert is not None else self._genesis_certs.get(cert_id)

    def authorized_member(self, cert_id: bytes, now_ms: int) -> Certificate:
        """The certificate of a member that may read now: registered (or in the genesis),
        not revoked at the next height, valid at ``now_ms``.

        Raises
        ------
        AuthError
            Status 403, saying which of these fails.
        """
        cert = self.certificate(cert_id)
        if cert is None:
            raise AuthError(f"certificate {cert_id.hex()[:16]}… is not registered on this chain", 403)
        rev = revoked_from(self.replica.app.state, cert_id)
        if rev is not None and self.store.head_height() + 1 >= rev:
            raise AuthError(f"certificate {cert_id.hex()[:16]}… is revoked from height {rev}", 403)
        if not cert.valid_at(now_ms):
            raise AuthError(f"certificate {cert_id.hex()[:16]}… is not valid at the node's time", 403)
        return cert

    def account(self, cert_id: bytes) -> dict[str, Any]:
        """A member's certificate summary and nonces.

        ``next_nonce`` is what the committed state expects next; ``pending_nonce`` also
        counts the member's transactions waiting in this node's mempool in an unbroken run
        from it (what a client that lost track of its nonce should use).
        """
        state = self.replica.app.state
        cert = self.certificate(cert_id)
        committed = next_nonce(state, cert_id)
        pending = committed
        mempool = self.replica.app.mempool
        if mempool.pending(cert_id):
            waiting = {entry.nonce for entry in mempool if entry.sender == cert_id}
            while pending in waiting:
                pending += 1
        return {
            "cert_id": cert_id.hex(),
            "registered": cert is not None,
            "subject": None if cert is None else cert.subject,
            "organization": None if cert is None else cert.organization,
            "roles": [] if cert is None else [r.value for r in cert.roles],
            "revoked_from": revoked_from(state, cert_id),
            "next_nonce": committed,
            "pending_nonce": pending,
        }

    # ---------------------------------------------------------------- chain reads
    def block(self, height: int) -> dict[str, Any] | None:
        """The committed block at ``height`` as JSON (``0`` is the genesis block)."""
        if height > self.store.head_height():
            return None
        block = self.replica.block_store.get_by_height(height)
        return None if block is None else block_json(block)

    def block_by_hash(self, block_hash: bytes) -> dict[str, Any] | None:
        """The committed block with ``block_hash`` as JSON."""
        block = self.replica.block_store.get(block_hash)
        return None if block is None else block_json(block)

    def transaction(self, tx_id: bytes) -> dict[str, Any] | None:
        """A transaction: decoded, with its result, height and index once committed, or
        ``"status": "pending"`` while it waits in the mempool; ``None`` when unknown."""
        loc = self.store.tx_location(tx_id)
        if loc is None:
            entry = self.replica.app.mempool.get(tx_id)
            if entry is None:
                return None
            return {
                "tx_id": tx_id.hex(),
                "status": "pending",
                "tx": tx_json(Transaction.from_bytes(entry.raw)),
            }
        height, index = loc
        raw = self.store.transactions(height)[index]
        result = self.store.tx_result(tx_id)
        return {
            "tx_id": tx_id.hex(),
            "status": "committed",
            "height": height,
            "index": index,
            "tx": tx_json(Transaction.from_bytes(raw)),
            "raw": raw.hex(),
            "result": None if result is None else to_json(codec.decode(result)),
        }

    def receipt(self, tx_id: bytes) -> Receipt:
        """The receipt of a committed transaction, proven up to the node's head (cached).

        Raises
        ------
        ReceiptError
            ``not-committed`` when the node has not committed ``tx_id``.
        """
        head = self.store.head_height()
        cached = self._receipts.get(tx_id)
        if cached is not None and cached[0] == head:
            self._receipts.move_to_end(tx_id)
            return cached[1]
        receipt = build_receipt(self.store, tx_id)
        self._receipts[tx_id] = (head, receipt)
        while len(self._receipts) > CACHE_ENTRIES:
            self._receipts.popitem(last=False)
        return receipt

    def checkpoint(self) -> Checkpoint:
        """A checkpoint at the node's committed head (cached per head).

        Raises
        ------
        ReceiptError
            ``not-committed`` before the first block.
        """
        head = self.store.head_height()
        if self._checkpoint is None or self._checkpoint[0] != head:
            self._checkpoint = (head, build_checkpoint(self.store, self.genesis))
        return self._checkpoint[1]

    def state(self, key: bytes) -> dict[str, Any]:
        """The value at ``key`` in the head's state with its state receipt (which proves
        it, or that there is none, against the genesis).

        Raises
        ------
        ReceiptError
            ``malformed`` for an overlong key; ``not-committed`` when the node kept
            committing while the proof was made, or has no commit proof yet.
        """
        last: ReceiptError | None = None
        for _ in range(4):  # the head may move while the proof is made (a worker thread)
            try:
                receipt = build_state_receipt(self.store, self.replica.app.state, key)
            except ReceiptError as exc:
                if exc.reason != "not-committed":
                    raise
                last = exc
                continue
            # built from this node's own store: the client verifies it, the node need not
            height, block_hash, value = receipt.claims()
            return {
                "key": key.hex(),
                "value": None if value is None else value.hex(),
                "height": height,
                "block_hash": block_hash.hex(),
                "receipt": receipt.to_bytes().hex(),
            }
        assert last is not None
        raise last

    def anchor(self, digest: bytes) -> dict[str, Any] | None:
        """How ``digest`` was anchored: the anchor record, the receipt of the transaction
        that anchored it and, for a leaf of a published batch, its batch proof.

        ``None`` when the digest is neither anchored itself nor a known batch leaf.
        """
        state = self.replica.app.state
        batch: BatchMembership | None = None
        raw = state.get(anchor_key(digest))
        if raw is None:
            batch = self.batches.find(digest)
            if batch is None:
                return None
            raw = state.get(anchor_key(batch.root))
            if raw is None:
                return None
        record = codec.decode(raw)
        receipt = self.receipt(record["tx_id"])
        return {
            "digest": digest.hex(),
            "anchor": {
                "tx_id": record["tx_id"].hex(),
                "height": record["height"],
                "kind": record["kind"],
                "meta": record["meta"].hex(),
                "count": record["count"],
                "sender": record["sender"].hex(),
                "time_ms": record["timestamp_ms"],
            },
            **receipt_json(receipt),
            "batch": None
            if batch is None
            else {
                "root": batch.root.hex(),
                "index": batch.index,
                "count": batch.count,
                "path": [p.hex() for p in batch.path],
            },
        }

    def publish_batch(self, root: bytes, digests: list[bytes]) -> dict[str, Any]:
        """Remember the leaves of the committed batch anchor ``root``.

        Raises
        ------
        ValidationError
            When ``root`` is not anchored as a batch of ``len(digests)`` digests, or the
            digests' root is not ``root``.
        """
        answer = self._batch_anchor(root, len(digests))
        self.batches.add(root, digests)
        return answer

    async def publish_batch_async(self, root: bytes, digests: list[bytes]) -> dict[str, Any]:
        """As :meth:`publish_batch`, with the leaves checked (their Merkle root) and stored in
        a worker thread, so the event loop goes on meanwhile."""
        answer = self._batch_anchor(root, len(digests))
        await asyncio.get_running_loop().run_in_executor(None, self.batches.add, root, digests)
        return answer

    def _batch_anchor(self, root: bytes, count: int) -> dict[str, Any]:
        raw = self.replica.app.state.get(anchor_key(root))
        if raw is None:
            raise ValidationError(
                "no committed anchor has this root: publish a batch after its anchor commits"
            )
        record = codec.decode(raw)
        if record["count"] != count:
            raise ValidationError(f"the anchor names a batch of {record['count']} digests, not {count}")
        return {"root": root.hex(), "count": count, "tx_id": record["tx_id"].hex()}

    def validators(self) -> dict[str, Any]:
        """The epoch in force and the history of validator sets (the most recent
        :data:`MAX_EPOCH_HISTORY` epochs)."""
        state = self.replica.app.state
        current = self.replica.epoch
        first = max(0, current.epoch - MAX_EPOCH_HISTORY + 1)
        history: list[EpochRecord] = []
        for number in range(first, current.epoch + 1):
            if number == 0:
                history.append(genesis_epoch(self.genesis))
                continue
            raw = state.get(epoch_key(number))
            if raw is not None:
                history.append(EpochRecord.from_bytes(raw))
        return {
            "epoch": current.epoch,
            "current": epoch_info(current),
            "history": [epoch_info(r) for r in history],
        }

    # ---------------------------------------------------------------- events
    def events_at(self, height: int) -> list[Event]:
        """The events of the committed block at ``height`` (as published live)."""
        return committed_events(self.store, height)

    def publish_committed(self, height: int) -> None:
        """Publish the events of the block just committed at ``height`` (for the host)."""
        self.hub.publish_all(self.events_at(height))

    def _on_event(self, event: Event) -> None:
        if not self._waiters:
            return
        kind = event.get("type")
        if kind == "block":
            ids = event.get("tx_ids")
            if not isinstance(ids, list):
                return
            committed = set(ids)
            for tx_id in [t for t in self._waiters if t.hex() in committed]:
                self._wake(tx_id, event)
        elif kind == "tx":
            try:
                self._wake(bytes.fromhex(event["tx_id"]), event)
            except (KeyError, TypeError, ValueError):
                return

    def _wake(self, tx_id: bytes, event: Event) -> None:
        for fut in self._waiters.pop(tx_id, []):
            if not fut.done():
                fut.set_result(int(event["height"]))

    # ---------------------------------------------------------------- submission
    async def submit(self, raw: bytes) -> bytes:
        """Admit ``raw`` to the mempool and gossip it (the host's callable); its id.

        Raises
        ------
        ValidationError
            With the reason the transaction is refused.
        """
        return await self._submit(raw)

    async def submit_many(self, raws: list[bytes]) -> list[tuple[bytes | None, str | None]]:
        """Admit many transactions: for each, its id or the reason it was refused."""
        if self._submit_many is not None:
            return await self._submit_many(raws)
        out: list[tuple[bytes | None, str | None]] = []
        for raw in raws:
            try:
                out.append((await self._submit(raw), None))
            except ValidationError as exc:
                out.append((None, str(exc)))
        return out

    async def wait_committed(self, tx_id: bytes, timeout_s: float) -> int:
        """Wait until ``tx_id`` is committed on this node; its height.

        Woken by the hub's ``block`` events (their ``tx_ids``) or ``tx`` events, and also
        looks at the store every :data:`POLL_S` seconds (a host that publishes no events
        still works).

        Raises
        ------
        CommitTimeout
            When ``timeout_s`` passes first (the transaction may still commit later).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        fut: asyncio.Future[int] = loop.create_future()
        self._waiters.setdefault(tx_id, []).append(fut)
        try:
            while True:
                loc = self.store.tx_location(tx_id)
                if loc is not None:
                    return loc[0]
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise CommitTimeout(
                        f"transaction {tx_id.hex()} was not committed within {timeout_s:g} s; "
                        "it may still commit: ask for it again later",
                        tx_id,
                    )
                try:
                    return await asyncio.wait_for(asyncio.shield(fut), min(remaining, POLL_S))
                except TimeoutError:
                    continue
        finally:
            waiting = self._waiters.get(tx_id)
            if waiting is not None:
                if fut in waiting:
                    waiting.remove(fut)
                if not waiting:
                    del self._waiters[tx_id]
            if not fut.done():
                fut.cancel()

    def waiting(self) -> int:
        """Commit waits in progress."""
        return sum(len(w) for w in self._waiters.values())
