"""``NodeClient`` and ``AsyncNodeClient``: a member's client of a node's API over HTTP.

Every request is signed with the member's SM2 key (:func:`chain.api.auth.sign_request`),
afresh for each attempt. Calls are idempotent — reads, and submissions of a transaction
whose id the node recognizes when it sees it again — so a connection error, a timeout or a
503 is retried with exponential backoff before a :class:`~chain.errors.ClientError` says
the node is unreachable. A refusal carries the node's own reason (``ClientError.reason``)
and HTTP status.

The client tracks its member's nonce: it asks the node once (``GET /accounts/{cert_id}``,
counting the node's mempool) and counts up; after a refusal it asks again, and a
transaction refused only for its nonce (another client of the same member took it) is
signed again once with the node's count. Receipts are
verified against the genesis before they are returned, and answers are read up to
:data:`~chain.client.common.MAX_RESPONSE_BYTES`: the node is not trusted.

Examples
--------
With a node running on loopback (``rongxin node run``; the tests in
``tests/chain/client/test_http.py`` run this against a real server)::

    client = NodeClient("http://127.0.0.1:26657", key, cert, genesis)
    receipt = client.anchor(sm3(report), "forensic-report")
    receipt.verify(genesis).height
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

import httpx

from chain.api.auth import sign_request
from chain.client.common import (
    MAX_RESPONSE_BYTES,
    AnchoredDigest,
    anchor_payload,
    anchored_digest,
    check_anchors,
    checked_receipt,
    checked_state,
    hex_bytes,
    node_answer,
    tls_context,
    ws_url,
)
from chain.client.stream import AsyncSubmitStream, Results, SubmitStream, batch_results
from chain.crypto import PrivateKey
from chain.errors import ChainError, ClientError, CommitTimeout, SubscriptionError
from chain.merkle import batch_proofs
from chain.receipt import Checkpoint, Receipt, verify_checkpoint
from chain.types import Certificate, Genesis, Transaction

RETRY_STATUSES = frozenset({502, 503})
MAX_EVENT_BYTES = 1024 * 1024
"""Largest event message a client accepts from a node."""

Event = dict[str, Any]


def _stale_nonce(exc: ClientError) -> bool:
    """Whether the node refused a transaction only for its nonce (another client of the
    same member used it, or one of ours was refused): signing again with the node's
    count is safe, since the refused transaction was not admitted."""
    return (
        exc.status == 400
        and "nonce" in exc.reason
        and ("already used" in exc.reason or "ahead" in exc.reason)
    )


class _Base:
    """What the sync and async clients share: identity, signing, answers, receipts."""

    def __init__(
        self,
        url: str,
        key: PrivateKey,
        cert: Certificate,
        genesis: Genesis,
        retries: int,
        backoff_s: float,
    ) -> None:
        if key.public_key.to_bytes() != cert.public_key:
            raise ClientError("the key is not the certificate's key")
        self.url = url.rstrip("/")
        self.key = key
        self.cert = cert
        self.genesis = genesis
        self.retries = retries
        self.backoff_s = backoff_s
        self._nonce: int | None = None

    def _signed(self, request: httpx.Request, body: bytes) -> None:
        target = request.url.raw_path.decode("ascii")
        request.headers.update(
            sign_request(
                self.key, self.cert.cert_id, request.method, target, body, chain_id=self.genesis.chain_id
            )
        )

    def _ws_headers(self) -> tuple[str, dict[str, str]]:
        url, target = ws_url(self.url)
        return url, sign_request(
            self.key, self.cert.cert_id, "GET", target, b"", chain_id=self.genesis.chain_id
        )

    @staticmethod
    def _body(doc: dict[str, Any] | None) -> bytes:
        return b"" if doc is None else json.dumps(doc, separators=(",", ":")).encode()

    @staticmethod
    def _answer(status: int, content: bytes) -> dict[str, Any]:
        return node_answer(status, content)

    def _backoff(self, attempt: int) -> float:
        return float(self.backoff_s * (2**attempt))

    def _tx(self, type: str, payload: dict[str, Any], nonce: int) -> Transaction:
        return Transaction.create(
            self.key,
            self.cert.cert_id,
            type,
            payload,
            nonce,
            time.time_ns() // 1_000_000,
            self.genesis.chain_id,
        )

    def _receipt_of(self, doc: dict[str, Any], tx_id: bytes) -> Receipt:
        return checked_receipt(hex_bytes(doc.get("receipt"), "receipt"), self.genesis, tx_id)

    def _checkpoint_of(self, doc: dict[str, Any]) -> Checkpoint:
        try:
            cp = Checkpoint.from_bytes(hex_bytes(doc.get("checkpoint"), "checkpoint"))
            verify_checkpoint(cp, self.genesis)
        except ChainError as exc:
            raise ClientError(f"the node's checkpoint does not verify against the genesis: {exc}") from None
        return cp

    @staticmethod
    def _original(committed: dict[str, Any], tx_id: bytes) -> bytes:
        """The id of the anchor that holds the digest (the original when anchored again)."""
        result = committed.get("result")
        if isinstance(result, dict) and result.get("status") == "already_anchored":
            return hex_bytes(result.get("tx_id"), "original transaction id", 32)
        return tx_id

    @staticmethod
    def _event(text: str | bytes) -> Event:
        if len(text) > MAX_EVENT_BYTES:
            raise ClientError("the node sent an event over the size limit")
        try:
            event = json.loads(text)
        except (ValueError, RecursionError):
            raise ClientError("the node sent an event that is not JSON") from None
        if not isinstance(event, dict):
            raise ClientError("the node sent an event that is not a JSON object")
        if event.get("type") == "error":
            resume = event.get("resume_height")
            raise SubscriptionError(
                str(event.get("reason", "the node ended the subscription")),
                resume if isinstance(resume, int) else None,
            )
        return event

    @staticmethod
    def _subscribe_message(
        kinds: Iterable[str] | None,
        filter: Mapping[str, Any] | None,
        from_height: int | None,
        block_tx_ids: bool = False,
    ) -> str:
        message: dict[str, Any] = {"type": "subscribe"}
        if block_tx_ids:
            message["block_tx_ids"] = True
        if kinds is not None:
            message["kinds"] = sorted(kinds)
        if filter is not None:
            message["filter"] = dict(filter)
        if from_height is not None:
            message["from_height"] = from_height
        return json.dumps(message)


class NodeClient(_Base):
    """A member's synchronous client of one node (:class:`~chain.client.Ledger`).

    Parameters
    ----------
    url : str
        The node's API, ``http://host:port``.
    key : PrivateKey
        The member's SM2 key.
    cert : Certificate
        Its certificate (registered on the chain).
    genesis : Genesis
        The chain's genesis: what receipts and checkpoints are verified against.
    timeout_s : float
        Per-request timeout.
    retries : int
        Extra attempts after a connection error, a timeout or a 502/503.
    backoff_s : float
        First wait before a retry (doubled each time).
    transport : httpx.BaseTransport, optional
        For tests (e.g. an ASGI transport).
    """

    def __init__(
        self,
        url: str,
        key: PrivateKey,
        cert: Certificate,
        genesis: Genesis,
        *,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, key, cert, genesis, retries, backoff_s)
        self.timeout_s = timeout_s
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout_s, transport=transport, verify=tls_context()
        )
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- transport
    def _read(self, response: httpx.Response) -> bytes:
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise ClientError(f"the node's answer is over {MAX_RESPONSE_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def request(self, method: str, path: str, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        """A signed request (retried when the node cannot be reached); the JSON answer.

        Raises
        ------
        ClientError
            The node's refusal (status and reason), or that it could not be reached.
        CommitTimeout
            A ``commit`` submission that the node did not see committed in time.
        """
        body = self._body(doc)
        for attempt in range(self.retries + 1):
            request = self._http.build_request(
                method,
                path,
                content=body or None,
                headers={"content-type": "application/json"} if body else None,
            )
            self._signed(request, body)
            try:
                response = self._http.send(request, stream=True)
                try:
                    status, content = response.status_code, self._read(response)
                finally:
                    response.close()
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise ClientError(f"node {self.url} unreachable: {exc or type(exc).__name__}") from None
                time.sleep(self._backoff(attempt))
                continue
            if status in RETRY_STATUSES and attempt < self.retries:
                time.sleep(self._backoff(attempt))
                continue
            return self._answer(status, content)
        raise AssertionError("unreachable")  # pragma: no cover

    # ---------------------------------------------------------------- reads
    def status(self) -> dict[str, Any]:
        """The node's ``/status``."""
        return self.request("GET", "/status")

    def account(self, cert_id: bytes | None = None) -> dict[str, Any]:
        """A member's certificate summary and nonces (this client's member by default)."""
        return self.request("GET", f"/accounts/{(cert_id or self.cert.cert_id).hex()}")

    def block(self, height: int) -> dict[str, Any]:
        """The committed block at ``height``."""
        return self.request("GET", f"/blocks/{int(height)}")

    def transaction(self, tx_id: bytes) -> dict[str, Any]:
        """A transaction with its status, result, height and index."""
        return self.request("GET", f"/txs/{tx_id.hex()}")

    def validators(self) -> dict[str, Any]:
        """The epoch in force and the history of validator sets."""
        return self.request("GET", "/validators")

    def state(self, key: bytes) -> bytes | None:
        """The value at state ``key`` in the node's committed head (``None``: no entry),
        proven by a state receipt checked against the genesis (the node is not trusted)."""
        return checked_state(self.request("GET", f"/state/{key.hex()}"), self.genesis, key)

    def checkpoint(self) -> Checkpoint:
        """A checkpoint at the node's head, checked against the genesis."""
        return self._checkpoint_of(self.request("GET", "/checkpoint"))

    def receipt(self, tx_id: bytes) -> Receipt:
        """The verified receipt of committed ``tx_id`` (:class:`ClientError` 404 if not)."""
        return self._receipt_of(self.request("GET", f"/receipts/{tx_id.hex()}"), tx_id)

    def find_anchor(self, digest: bytes) -> AnchoredDigest | None:
        """How ``digest`` was anchored, verified (with its batch proof); ``None`` if not."""
        try:
            doc = self.request("GET", f"/anchors/{digest.hex()}")
        except ClientError as exc:
            if exc.status == 404:
                return None
            raise
        return anchored_digest(doc, self.genesis, digest)

    def wait(self, tx_id: bytes, timeout_s: float = 30.0) -> int:
        """Poll the node until ``tx_id`` is committed; its height.

        Raises
        ------
        CommitTimeout
            When ``timeout_s`` passes first.
        """
        deadline = time.monotonic() + timeout_s
        delay = 0.05
        while True:
            try:
                doc = self.transaction(tx_id)
                if doc.get("status") == "committed" and isinstance(doc.get("height"), int):
                    return int(doc["height"])
            except ClientError as exc:
                if exc.status != 404:
                    raise
            if time.monotonic() + delay > deadline:
                raise CommitTimeout(f"transaction {tx_id.hex()} not committed within {timeout_s:g} s", tx_id)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def subscribe(
        self,
        kinds: Iterable[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        *,
        from_height: int | None = None,
        block_tx_ids: bool = False,
    ) -> Iterator[Event]:
        """Events from the node's ``/events`` (see :mod:`chain.api.ws`), as they commit.

        With ``block_tx_ids`` each ``block`` event carries the ids of its transactions
        (``"tx_ids"``): one message per block tells when each transaction committed.

        Raises
        ------
        SubscriptionError
            When the node ends the subscription (``resume_height`` says where to resume
            after an overflow) or refuses it.
        """
        from websockets.exceptions import ConnectionClosed, WebSocketException
        from websockets.sync.client import connect

        url, headers = self._ws_headers()
        try:
            ws = connect(url, additional_headers=headers, proxy=None, max_size=MAX_EVENT_BYTES)
        except (OSError, WebSocketException) as exc:
            raise ClientError(f"node {self.url} events unreachable: {exc}") from None
        try:
            with ws:
                self._event(ws.recv())  # ready
                ws.send(self._subscribe_message(kinds, filter, from_height, block_tx_ids))
                self._event(ws.recv())  # subscribed
                while True:
                    yield self._event(ws.recv())
        except ConnectionClosed as exc:
            raise SubscriptionError(f"the node closed the event stream: {exc}") from None

    # ---------------------------------------------------------------- writes
    def _next_nonce(self) -> int:
        with self._lock:
            if self._nonce is None:
                pending = self.account().get("pending_nonce")
                if not isinstance(pending, int) or pending < 1:
                    raise ClientError("the node's account answer has no nonce")
                self._nonce = pending
            nonce = self._nonce
            self._nonce += 1
            return nonce

    def _forget_nonce(self) -> None:
        with self._lock:
            self._nonce = None

    def submit(self, tx_bytes: bytes, mode: str = "sync", timeout_s: float = 30.0) -> bytes:
        """Submit a signed transaction; its id (admitted in ``sync`` mode, queued in ``async``,
        committed in ``commit``)."""
        tx_id = Transaction.from_bytes(tx_bytes).tx_id
        doc = self.request("POST", "/txs", {"tx": tx_bytes.hex(), "mode": mode, "timeout_s": timeout_s})
        if hex_bytes(doc.get("tx_id"), "transaction id", 32) != tx_id:
            raise ClientError("the node answered another transaction id")
        return tx_id

    def submit_batch(self, txs: Sequence[bytes]) -> Results:
        """Submit many signed transactions in one request (admitted as in ``sync`` mode);
        for each, its id or the node's reason for refusing it. A steady flow of batches
        costs the node and the client less through :meth:`submit_stream`."""
        return batch_results(self.request("POST", "/txs/batch", {"txs": [t.hex() for t in txs]}), txs)

    def submit_stream(self) -> SubmitStream:
        """A stream of batches to this node over one WebSocket, authenticated once
        (:mod:`chain.client.stream`); a context manager.

        Raises
        ------
        ClientError
            When the node cannot be reached or refuses the member.
        """
        url, headers = self._ws_headers()
        return SubmitStream(url, headers, self.timeout_s, tls_context())

    def send(self, type: str, payload: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
        """Sign a transaction of this member (next nonce), submit it and wait for its commit;
        the node's answer (``tx_id``, ``height``, ``index``, ``result``)."""
        for attempt in range(2):
            tx = self._tx(type, payload, self._next_nonce())
            try:
                return self.request(
                    "POST", "/txs", {"tx": tx.to_bytes().hex(), "mode": "commit", "timeout_s": timeout_s}
                )
            except ClientError as exc:
                self._forget_nonce()
                if attempt or not _stale_nonce(exc):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def anchor(self, digest: bytes, kind: str, meta: bytes | None = None) -> Receipt:
        """Anchor ``digest`` and wait for the commit; the verified receipt (the original one
        when the digest was anchored before)."""
        done = self.send("anchor", anchor_payload(digest, kind, meta))
        tx_id = hex_bytes(done.get("tx_id"), "transaction id", 32)
        receipt = self.receipt(self._original(done, tx_id))
        check_anchors(receipt, self.genesis, digest)
        return receipt

    def anchor_batch(
        self, digests: Sequence[bytes], kind: str, meta: bytes | None = None
    ) -> tuple[Receipt, Sequence[list[bytes]]]:
        """Anchor many digests in one transaction (their Merkle root); the verified receipt
        and each digest's proof path. The leaves are published to the node so that
        :meth:`find_anchor` finds each digest."""
        root, proofs = batch_proofs(list(digests))
        done = self.send("anchor", anchor_payload(root, kind, meta, count=len(proofs)))
        tx_id = hex_bytes(done.get("tx_id"), "transaction id", 32)
        receipt = self.receipt(self._original(done, tx_id))
        check_anchors(receipt, self.genesis, root)
        self.request("POST", "/anchors/batches", {"root": root.hex(), "digests": [d.hex() for d in digests]})
        return receipt, proofs


class AsyncNodeClient(_Base):
    """:class:`NodeClient` for asyncio code (:class:`~chain.client.AsyncLedger`); events
    through a WebSocket.

    Parameters are those of :class:`NodeClient` (``transport`` an
    ``httpx.AsyncBaseTransport``).
    """

    def __init__(
        self,
        url: str,
        key: PrivateKey,
        cert: Certificate,
        genesis: Genesis,
        *,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, key, cert, genesis, retries, backoff_s)
        self.timeout_s = timeout_s
        self._http = httpx.AsyncClient(
            base_url=self.url, timeout=timeout_s, transport=transport, verify=tls_context()
        )
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncNodeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _read(self, response: httpx.Response) -> bytes:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise ClientError(f"the node's answer is over {MAX_RESPONSE_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def request(self, method: str, path: str, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        """See :meth:`NodeClient.request`."""
        body = self._body(doc)
        for attempt in range(self.retries + 1):
            request = self._http.build_request(
                method,
                path,
                content=body or None,
                headers={"content-type": "application/json"} if body else None,
            )
            self._signed(request, body)
            try:
                response = await self._http.send(request, stream=True)
                try:
                    status, content = response.status_code, await self._read(response)
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise ClientError(f"node {self.url} unreachable: {exc or type(exc).__name__}") from None
                await asyncio.sleep(self._backoff(attempt))
                continue
            if status in RETRY_STATUSES and attempt < self.retries:
                await asyncio.sleep(self._backoff(attempt))
                continue
            return self._answer(status, content)
        raise AssertionError("unreachable")  # pragma: no cover

    async def status(self) -> dict[str, Any]:
        """The node's ``/status``."""
        return await self.request("GET", "/status")

    async def account(self, cert_id: bytes | None = None) -> dict[str, Any]:
        """A member's certificate summary and nonces (this client's member by default)."""
        return await self.request("GET", f"/accounts/{(cert_id or self.cert.cert_id).hex()}")

    async def transaction(self, tx_id: bytes) -> dict[str, Any]:
        """A transaction with its status, result, height and index."""
        return await self.request("GET", f"/txs/{tx_id.hex()}")

    async def state(self, key: bytes) -> bytes | None:
        """See :meth:`NodeClient.state`."""
        return checked_state(await self.request("GET", f"/state/{key.hex()}"), self.genesis, key)

    async def checkpoint(self) -> Checkpoint:
        """A checkpoint at the node's head, checked against the genesis."""
        return self._checkpoint_of(await self.request("GET", "/checkpoint"))

    async def receipt(self, tx_id: bytes) -> Receipt:
        """The verified receipt of committed ``tx_id``."""
        return self._receipt_of(await self.request("GET", f"/receipts/{tx_id.hex()}"), tx_id)

    async def find_anchor(self, digest: bytes) -> AnchoredDigest | None:
        """How ``digest`` was anchored, verified; ``None`` if it was not."""
        try:
            doc = await self.request("GET", f"/anchors/{digest.hex()}")
        except ClientError as exc:
            if exc.status == 404:
                return None
            raise
        return anchored_digest(doc, self.genesis, digest)

    async def wait(self, tx_id: bytes, timeout_s: float = 30.0) -> int:
        """See :meth:`NodeClient.wait`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        delay = 0.05
        while True:
            try:
                doc = await self.transaction(tx_id)
                if doc.get("status") == "committed" and isinstance(doc.get("height"), int):
                    return int(doc["height"])
            except ClientError as exc:
                if exc.status != 404:
                    raise
            if loop.time() + delay > deadline:
                raise CommitTimeout(f"transaction {tx_id.hex()} not committed within {timeout_s:g} s", tx_id)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def subscribe(
        self,
        kinds: Iterable[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        *,
        from_height: int | None = None,
        block_tx_ids: bool = False,
    ) -> AsyncIterator[Event]:
        """See :meth:`NodeClient.subscribe`."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, WebSocketException

        url, headers = self._ws_headers()
        try:
            ws = await connect(url, additional_headers=headers, proxy=None, max_size=MAX_EVENT_BYTES)
        except (OSError, WebSocketException) as exc:
            raise ClientError(f"node {self.url} events unreachable: {exc}") from None
        try:
            async with ws:
                self._event(await ws.recv())  # ready
                await ws.send(self._subscribe_message(kinds, filter, from_height, block_tx_ids))
                self._event(await ws.recv())  # subscribed
                while True:
                    yield self._event(await ws.recv())
        except ConnectionClosed as exc:
            raise SubscriptionError(f"the node closed the event stream: {exc}") from None

    async def _next_nonce(self) -> int:
        async with self._lock:
            if self._nonce is None:
                pending = (await self.account()).get("pending_nonce")
                if not isinstance(pending, int) or pending < 1:
                    raise ClientError("the node's account answer has no nonce")
                self._nonce = pending
            nonce = self._nonce
            self._nonce += 1
            return nonce

    async def submit(self, tx_bytes: bytes, mode: str = "sync", timeout_s: float = 30.0) -> bytes:
        """See :meth:`NodeClient.submit`."""
        tx_id = Transaction.from_bytes(tx_bytes).tx_id
        doc = await self.request("POST", "/txs", {"tx": tx_bytes.hex(), "mode": mode, "timeout_s": timeout_s})
        if hex_bytes(doc.get("tx_id"), "transaction id", 32) != tx_id:
            raise ClientError("the node answered another transaction id")
        return tx_id

    async def submit_batch(self, txs: Sequence[bytes]) -> Results:
        """See :meth:`NodeClient.submit_batch`."""
        doc = await self.request("POST", "/txs/batch", {"txs": [t.hex() for t in txs]})
        return batch_results(doc, txs)

    async def submit_stream(self) -> AsyncSubmitStream:
        """See :meth:`NodeClient.submit_stream`: ``async with await client.submit_stream() as s``."""
        url, headers = self._ws_headers()
        return await AsyncSubmitStream.open(url, headers, self.timeout_s, tls_context())

    async def send(self, type: str, payload: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
        """See :meth:`NodeClient.send`."""
        for attempt in range(2):
            tx = self._tx(type, payload, await self._next_nonce())
            try:
                return await self.request(
                    "POST", "/txs", {"tx": tx.to_bytes().hex(), "mode": "commit", "timeout_s": timeout_s}
                )
            except ClientError as exc:
                self._nonce = None
                if attempt or not _stale_nonce(exc):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def anchor(self, digest: bytes, kind: str, meta: bytes | None = None) -> Receipt:
        """See :meth:`NodeClient.anchor`."""
        done = await self.send("anchor", anchor_payload(digest, kind, meta))
        tx_id = hex_bytes(done.get("tx_id"), "transaction id", 32)
        receipt = await self.receipt(self._original(done, tx_id))
        check_anchors(receipt, self.genesis, digest)
        return receipt
