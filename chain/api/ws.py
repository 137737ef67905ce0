"""``WS /events``: committed blocks, transactions and validator changes as they happen, and
batches of signed transactions submitted over the same authenticated connection.

The protocol (JSON text messages):

1. authenticate — a member's signature over ``GET /events`` (the path and query it
   connected to) with an empty body, in the ``X-Rongxin-*`` headers of the upgrade
   request or, for a client that cannot set headers, in the first message
   ``{"type": "auth", "cert", "time", "nonce", "signature"}``. The node answers
   ``{"type": "ready"}``; a refusal is ``{"type": "error", "reason"}`` and the connection
   closes (code 1008).
2. subscribe — ``{"type": "subscribe", "kinds": ["block", "tx", "validators"], "filter":
   {"tx_type", "sender", "anchor_digest", "tx_id"}, "from_height": N, "max_queue": M,
   "block_tx_ids": true}`` (all optional; ``block_tx_ids`` adds the ids of a block's
   transactions to its ``block`` event — one message per block where ``tx`` events are
   one per transaction). The node answers ``{"type": "subscribed", "id", "height"}`` (its
   committed height), replays the events of heights ``N`` up to that height from its store
   when ``from_height`` is given, then streams live events, each with ``"subscription":
   id``. ``{"type": "unsubscribe", "id"}`` ends one; ``{"type": "ping"}`` is answered
   ``{"type": "pong"}``.
3. submit — ``{"type": "submit", "id": N, "txs": [hex, ...]}`` admits signed transactions
   as ``POST /txs/batch`` does (checked as in ``sync`` mode, at most
   :data:`~chain.api.app.MAX_TX_BATCH`), without a signature per request: the connection
   was authenticated once, and the member's certificate is looked at again (registered, not
   revoked, valid) for every batch. The node answers ``{"type": "submitted", "id": N,
   "accepted", "tx_ids", "refused"}`` (the fields of ``POST /txs/batch``'s answer; ``id``
   is the client's, echoed), in the order the batches came. A client with a steady flow of
   transactions keeps one connection for them instead of one signed request per batch,
   which costs the node several times the CPU (``docs/benchmarks.md``).
4. overflow — a client that reads too slowly gets one final ``{"type": "error",
   "reason": "subscription overflowed; resubscribe from height N", "resume_height": N,
   "subscription": id}`` and the connection closes (code 1013): it cannot miss it.

Limits: a message is at most :data:`MAX_MESSAGE_BYTES` (a ``submit``,
:data:`~chain.api.app.MAX_BATCH_BODY_BYTES`); one connection holds at most the
app's ``max_ws_subscriptions``; the hub bounds all subscriptions together; a replay covers
at most :data:`MAX_REPLAY_HEIGHTS` heights (older blocks: ``GET /blocks/{height}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from chain.api.app import (
    MAX_BATCH_BODY_BYTES,
    _Api,
    api_of,
    batch_answer,
    batch_transactions,
    request_target,
)
from chain.api.auth import headers_from_message, verify_request
from chain.errors import AuthError, SubscriptionError, ValidationError
from chain.node.events import MAX_QUEUE, Event, Subscription
from chain.types import Certificate

MAX_MESSAGE_BYTES = 64 * 1024
"""Largest message a client may send."""
MAX_REPLAY_HEIGHTS = 10_000
"""Most heights one subscription replays from the store."""
SUBMIT_ROUTE = "/events#submit"
"""The ``route`` label of ``submit`` messages in ``rongxin_api_requests_total`` and
``rongxin_api_request_seconds``."""
AUTH_TIMEOUT_S = 10.0
"""How long the node waits for the first message when the upgrade request was not signed."""

router = APIRouter()


class _BadMessage(SubscriptionError):
    """A client message the node cannot read: the connection closes with ``code``."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class _Refused(SubscriptionError):
    """A submit message the node does not take; its answer names the message's ``id``."""

    def __init__(self, ref: int, message: str) -> None:
        super().__init__(message)
        self.ref = ref


class _Connection:
    """One client's WebSocket: its subscriptions, their pump tasks and a send lock."""

    def __init__(self, ws: WebSocket, api: _Api) -> None:
        self.ws = ws
        self.api = api
        self.subs: dict[int, tuple[Subscription, asyncio.Task[None]]] = {}
        self._lock = asyncio.Lock()
        self.closed = False
        self.member: Certificate | None = None
        """The authenticated member (``None`` when the app requires no authentication)."""

    async def send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            await self.ws.send_text(json.dumps(message, separators=(",", ":")))

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.ws.close(code=code, reason=reason[:120])

    async def refuse(self, reason: str, code: int) -> None:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.send({"type": "error", "reason": reason})
        await self.close(code, reason)

    async def receive(self, timeout: float | None = None) -> dict[str, Any]:
        text = await asyncio.wait_for(self.ws.receive_text(), timeout)
        if len(text) > MAX_BATCH_BODY_BYTES:
            raise _BadMessage(f"a submit message is at most {MAX_BATCH_BODY_BYTES} bytes", 1009)
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            message = None
        # only a submit may be larger (parsing one costs time linear in its size, as reading
        # the body of POST /txs/batch does)
        if len(text) > MAX_MESSAGE_BYTES and not (
            isinstance(message, dict) and message.get("type") == "submit"
        ):
            raise _BadMessage(f"messages other than submit are at most {MAX_MESSAGE_BYTES} bytes", 1009)
        if not isinstance(message, dict):
            raise _BadMessage("messages are JSON objects", 1003)
        return message

    # ------------------------------------------------------------ authentication
    async def authenticate(self) -> bool:
        service = self.api.service
        headers: Any = self.ws.headers
        try:
            if headers.get("x-rongxin-signature") is None:
                first = await self.receive(AUTH_TIMEOUT_S)
                if first.get("type") != "auth":
                    raise AuthError("the first message must be {type: auth, cert, time, nonce, signature}")
                headers = headers_from_message(first)
            self.member = verify_request(
                "GET",
                request_target(self.ws.scope),
                b"",
                headers,
                chain_id=service.genesis.chain_id,
                member=service.authorized_member,
                replay=self.api.config.replay,
                window_ms=self.api.config.window_ms,
            )
        except (AuthError, SubscriptionError) as exc:
            service.metrics.auth_failures.labels(str(getattr(exc, "status", 401))).inc()
            await self.refuse(str(exc), 1008)
            return False
        except TimeoutError:
            await self.refuse("no auth message within the time allowed", 1008)
            return False
        return True

    # ------------------------------------------------------------ subscriptions
    def _replay_start(self, message: dict[str, Any], head: int) -> int | None:
        start = message.get("from_height")
        if start is None:
            return None
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise SubscriptionError("from_height is a height (a whole number)")
        if start > head + 1:
            raise SubscriptionError(f"from_height {start} is above the node's height {head}")
        if head - start >= MAX_REPLAY_HEIGHTS:
            raise SubscriptionError(
                f"from_height is more than {MAX_REPLAY_HEIGHTS} heights behind; read older blocks "
                "with GET /blocks/{height}"
            )
        return max(start, 1)

    async def subscribe(self, message: dict[str, Any]) -> None:
        if len(self.subs) >= self.api.config.max_ws_subscriptions:
            raise SubscriptionError(
                f"a connection holds at most {self.api.config.max_ws_subscriptions} subscriptions"
            )
        service = self.api.service
        head = service.store.head_height()
        start = self._replay_start(message, head)
        sub = service.hub.subscribe(
            message.get("kinds"),
            message.get("filter"),
            message.get("max_queue", MAX_QUEUE),
            message.get("block_tx_ids", False),
        )
        task = asyncio.create_task(self._pump(sub, start, head))
        self.subs[sub.id] = (sub, task)
        await self.send({"type": "subscribed", "id": sub.id, "height": head})

    async def unsubscribe(self, message: dict[str, Any]) -> None:
        sid = message.get("id")
        entry = self.subs.pop(sid, None) if isinstance(sid, int) else None
        if entry is None:
            raise SubscriptionError("no subscription with this id on this connection")
        sub, task = entry
        sub.close()
        task.cancel()
        await self.send({"type": "unsubscribed", "id": sub.id})

    async def _pump(self, sub: Subscription, start: int | None, head: int) -> None:
        try:
            if start is not None:
                for height in range(start, head + 1):
                    for event in self.api.service.events_at(height):
                        if sub.matches(event):
                            await self.send({**sub.shape(event), "subscription": sub.id})
            async for event in sub:
                if event["type"] == "error":
                    await self.send({**event, "subscription": sub.id})
                    await self.close(1013, "subscription overflowed")
                    return
                if start is not None and _height(event) <= head:
                    continue  # already replayed from the store
                await self.send({**event, "subscription": sub.id})
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            sub.close()

    # ------------------------------------------------------------ submissions
    async def submit(self, message: dict[str, Any]) -> None:
        """Admit a ``submit`` message's batch and answer it; counted in the API's request
        metrics under the route :data:`SUBMIT_ROUTE` (status 200 answered, 400 refused as a
        whole, 403 the member may no longer submit, 499 the client left first)."""
        started = time.perf_counter()
        status = "400"
        try:
            await self._submit(message)
            status = "200"
        except AuthError as exc:
            status = str(exc.status)
            raise
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            status = "499"  # the client went away before its answer
            raise
        finally:
            metrics = self.api.service.metrics
            metrics.requests.labels(SUBMIT_ROUTE, status).inc()
            metrics.seconds.labels(SUBMIT_ROUTE).observe(time.perf_counter() - started)

    async def _submit(self, message: dict[str, Any]) -> None:
        ref = message.get("id")
        if isinstance(ref, bool) or not isinstance(ref, int):
            raise SubscriptionError("a submit message has an id (a whole number) that its answer echoes")
        txs = message.get("txs")
        if set(message) != {"type", "id", "txs"} or not isinstance(txs, list):
            raise _Refused(ref, "a submit message is {type: submit, id, txs: [hex, ...]}")
        try:
            raws = batch_transactions(txs)
        except ValidationError as exc:
            raise _Refused(ref, str(exc)) from None
        service = self.api.service
        if self.member is not None:
            # the certificate that opened the connection must still be a member's now
            service.authorized_member(self.member.cert_id, int(time.time() * 1000))
        results = await service.submit_many(raws)
        await self.send({"type": "submitted", "id": ref, **batch_answer(results)})

    def stop(self) -> None:
        for sub, task in self.subs.values():
            sub.close()
            task.cancel()
        self.subs.clear()

    async def serve(self) -> None:
        while not self.closed:
            try:
                message = await self.receive()
            except _BadMessage as exc:
                await self.refuse(str(exc), exc.code)
                return
            kind = message.get("type")
            try:
                if kind == "subscribe":
                    await self.subscribe(message)
                elif kind == "unsubscribe":
                    await self.unsubscribe(message)
                elif kind == "ping":
                    await self.send({"type": "pong"})
                elif kind == "submit":
                    await self.submit(message)
                else:
                    raise SubscriptionError("message types are subscribe, unsubscribe, ping, submit")
            except _Refused as exc:
                await self.send({"type": "error", "reason": str(exc), "fatal": False, "id": exc.ref})
            except SubscriptionError as exc:
                await self.send({"type": "error", "reason": str(exc), "fatal": False})
            except AuthError as exc:
                self.api.service.metrics.auth_failures.labels(str(exc.status)).inc()
                await self.refuse(str(exc), 1008)
                return


def _height(event: Event) -> int:
    height = event.get("height", 0)
    return height if isinstance(height, int) else 0


@router.websocket("/events")
async def events(websocket: WebSocket) -> None:
    """Subscribe to committed-chain events (see the module docstring for the protocol)."""
    api = api_of(websocket.app)
    await websocket.accept()
    conn = _Connection(websocket, api)
    try:
        if api.config.require_auth and not await conn.authenticate():
            return
        await conn.send({"type": "ready", "height": api.service.store.head_height()})
        await conn.serve()
    except (WebSocketDisconnect, RuntimeError, ConnectionError):
        pass
    finally:
        conn.stop()
