"""The node's HTTP API (FastAPI): status, chain reads, receipts, submission, metrics.

:func:`create_app` builds the app over a :class:`~chain.node.service.NodeService`; the
node host serves it with uvicorn in its own event loop, on loopback by default. Every
answer is JSON with bytes as lowercase hex; every refusal is ``{"error": reason}`` with a
4xx status (5xx only for the node's own trouble). Request bodies are bounded
(:data:`MAX_BODY_BYTES`) before they are read in full, and every byte is treated as
hostile: identifiers are parsed strictly, transactions are decoded under their own limits.

Endpoints (``/docs`` shows them with their schemas; ``/openapi.json`` is the document):

=================================  ===========================================================
``GET /status``, ``GET /health``   who the node is, where its chain stands (public by default)
``GET /net_info``                  peers and traffic (the host's view)
``GET /validators``                the epoch in force and the history of validator sets
``GET /blocks/{height}``           a committed block (``/blocks/hash/{hex}`` by hash)
``GET /txs/{tx_id}``               a transaction, its result, height and index (or pending)
``GET /receipts/{tx_id}``          an offline-verifiable receipt (hex) and its summary
``GET /anchors/{digest}``          how a digest was anchored: record, receipt, batch proof
``POST /anchors/batches``          publish the leaves of a committed batch anchor
``GET /state/{key}``                a state entry (or its absence) with its state receipt
``GET /accounts/{cert_id}``        a member's certificate summary and next nonce
``GET /checkpoint``                a recent header with its QC, for offline verifiers
``GET /metrics``                   Prometheus exposition of the node's registry
``POST /txs``                      submit ``{"tx": hex, "mode": "async"|"sync"|"commit"}``
``POST /txs/batch``                admit many transactions at once ``{"txs": [hex, ...]}``
``WS /events``                     subscribe to committed blocks, transactions, validators
``PUT|GET /vault/objects/{digest}`` store and fetch encrypted vault objects (:mod:`chain.api.vault`)
=================================  ===========================================================

Reads other than ``/status`` and ``/health`` need a member's signed request
(:mod:`chain.api.auth`).

Examples
--------
>>> import tempfile
>>> from fastapi.testclient import TestClient
>>> from chain.localnet import LocalConsortium
>>> from chain.node.service import NodeService
>>> c = LocalConsortium.create(tempfile.mkdtemp(), nodes=4)
>>> async def submit(raw: bytes) -> bytes:
...     return c.net.submit(raw)
>>> app = create_app(NodeService("node-0", c.replicas[0], submit=submit))
>>> client = TestClient(app)
>>> client.get("/status").json()["chain_id"]
'rongxin-local'
>>> client.get("/validators").json()["error"][:40]
'missing X-Rongxin-Cert header: reads nee'
>>> c.close()
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chain import codec
from chain.api.auth import WINDOW_MS, ReplayCache, verify_request
from chain.errors import AuthError, CommitTimeout, ReceiptError, ValidationError
from chain.node.events import to_json
from chain.node.service import NodeService, receipt_json
from chain.receipt import header_hash
from chain.state_receipt import MAX_KEY_BYTES
from chain.types import MAX_TX_BYTES, Certificate, Transaction

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body (``POST /txs``), refused before it is read in full."""
MAX_BATCH_BODY_BYTES = 8 * 1024 * 1024
"""Largest body of ``POST /anchors/batches`` (65 536 digests in hex) and ``POST /txs/batch``."""
MAX_TX_BATCH = 10_000
"""Most transactions in one ``POST /txs/batch``."""
MAX_COMMIT_WAIT_S = 120.0
"""Longest ``timeout_s`` of ``POST /txs`` in ``commit`` mode."""
DEFAULT_COMMIT_WAIT_S = 30.0


@dataclass
class ApiConfig:
    """How one app instance guards its node (see :func:`create_app`)."""

    require_auth: bool = True
    public_status: bool = True
    public_metrics: bool = False
    max_body_bytes: int = MAX_BODY_BYTES
    window_ms: int = WINDOW_MS
    max_ws_subscriptions: int = 8
    max_waits: int = 1000
    replay: ReplayCache = field(default_factory=ReplayCache)


@dataclass
class _Api:
    service: NodeService
    config: ApiConfig
    background: set[asyncio.Task[Any]] = field(default_factory=set)


def api_of(app: Any) -> _Api:
    """The service and configuration an app was created with."""
    api: _Api = app.state.rongxin
    return api


def _fail(status: int, reason: str) -> HTTPException:
    return HTTPException(status_code=status, detail=reason)


# --------------------------------------------------------------------------- ASGI guards
class BodyLimit:
    """Refuse a request body over its limit: at once from ``Content-Length``, else while
    it streams in (413), so an oversized body is never held in memory."""

    def __init__(
        self, app: ASGIApp, default: int, limits: dict[str, int], prefixes: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.default = default
        self.limits = limits
        self.prefixes = dict(prefixes or {})

    def limit_of(self, path: str) -> int:
        """The body limit of a request path: its own, its prefix's, or the default."""
        if path in self.limits:
            return self.limits[path]
        for prefix, limit in self.prefixes.items():
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope.get("path", ""))
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                if not value.isdigit() or len(value) > 18:
                    await _send_error(send, 400, "Content-Length is not a number")
                    return
                if int(value) > limit:
                    await _send_error(send, 413, f"request body over {limit} bytes")
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _fail(413, f"request body over {limit} bytes")
            return message

        await self.app(scope, limited, send)


class RequestMetrics:
    """Count requests by route and status, and time them, in the service's registry."""

    def __init__(self, app: ASGIApp, service: NodeService) -> None:
        self.app = app
        self.metrics = service.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.seconds.labels(route).observe(time.perf_counter() - started)


async def _send_error(send: Send, status: int, reason: str) -> None:
    body = json.dumps({"error": reason}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- authentication
def request_target(scope: Scope) -> str:
    """The path and query of a request exactly as the client sent them (what it signed)."""
    raw = scope.get("raw_path") or scope.get("path", "").encode()
    query = scope.get("query_string", b"")
    target = raw.decode("latin-1")
    return f"{target}?{query.decode('latin-1')}" if query else target


async def authenticate(request: Request, api: _Api, body_sm3: bytes | None = None) -> Certificate:
    """Check the request's signature (:func:`chain.api.auth.verify_request`); 401/403 if not.

    With ``body_sm3`` (a streamed upload) the body is not read: the signature is checked
    over that declared digest, and the route checks the body against it as it arrives.
    """
    body = b"" if body_sm3 is not None else await request.body()
    try:
        return verify_request(
            request.method,
            request_target(request.scope),
            body,
            request.headers,
            chain_id=api.service.genesis.chain_id,
            member=api.service.authorized_member,
            replay=api.config.replay,
            window_ms=api.config.window_ms,
            body_sm3=body_sm3,
        )
    except AuthError as exc:
        api.service.metrics.auth_failures.labels(str(exc.status)).inc()
        raise _fail(exc.status, str(exc)) from None


async def member(request: Request) -> Certificate | None:
    """Dependency of every read beyond ``/status`` and ``/health``: a member's signed request."""
    api = api_of(request.app)
    return await authenticate(request, api) if api.config.require_auth else None


async def status_reader(request: Request) -> Certificate | None:
    """Dependency of ``/status`` and ``/health``: public unless the app says otherwise."""
    api = api_of(request.app)
    if api.config.public_status or not api.config.require_auth:
        return None
    return await authenticate(request, api)


async def metrics_reader(request: Request) -> Certificate | None:
    """Dependency of ``/metrics``: signed unless the app makes it public."""
    api = api_of(request.app)
    if api.config.public_metrics or not api.config.require_auth:
        return None
    return await authenticate(request, api)


# --------------------------------------------------------------------------- parsing
def parse_digest(value: str, what: str) -> bytes:
    """32 bytes from 64 hex digits, or a 400 naming ``what``.

    Examples
    --------
    >>> parse_digest("AB" * 32, "tx id") == b"\\xab" * 32
    True
    """
    if len(value) != 64:
        raise _fail(400, f"{what} must be 64 hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise _fail(400, f"{what} must be 64 hex digits") from None


def parse_height(value: str) -> int:
    """A block height from its decimal digits, or a 400.

    Examples
    --------
    >>> parse_height("12")
    12
    """
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise _fail(400, "a height is a decimal number from 0 to 10^18 - 1")
    return int(value)


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying why not."""
    body = await request.body()
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise _fail(400, "the body is not JSON") from None
    if not isinstance(doc, dict):
        raise _fail(400, "the body must be a JSON object")
    return doc


def _hex_field(doc: dict[str, Any], name: str, max_bytes: int) -> bytes:
    value = doc.get(name)
    if not isinstance(value, str) or not value or len(value) > 2 * max_bytes or len(value) % 2:
        raise _fail(400, f"{name!r} must be hex of 1..{max_bytes} bytes")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise _fail(400, f"{name!r} must be hex of 1..{max_bytes} bytes") from None


# --------------------------------------------------------------------------- routes
# Reads of what the node holds in memory (status, peers, validators, an account, metrics)
# are ``async def``: they run on the event loop beside the replica, with no hop to a worker
# thread and back (the hop and its wake-ups cost more CPU than such a read). Reads of
# blocks, transactions and proofs from the store stay ``def``: FastAPI runs them in its
# thread pool, so a large read does not hold up consensus.
router = APIRouter()


@router.get("/health", tags=["node"], dependencies=[Depends(status_reader)])
async def health(request: Request) -> dict[str, Any]:
    """Whether the node serves; its committed height."""
    service = api_of(request.app).service
    return {"status": "ok", "height": service.store.head_height()}


@router.get("/status", tags=["node"], dependencies=[Depends(status_reader)])
async def status(request: Request) -> dict[str, Any]:
    """Node name, chain id, genesis hash, node id, role (consensus or observer), voting,
    height, head hash, round, epoch, validators, mempool size, peers, catching up."""
    return api_of(request.app).service.status()


@router.get("/net_info", tags=["node"], dependencies=[Depends(member)])
async def net_info(request: Request) -> dict[str, Any]:
    """The node's peers and traffic, as its host reports them."""
    return api_of(request.app).service.net_info()


@router.get("/validators", tags=["chain"], dependencies=[Depends(member)])
async def validators(request: Request) -> dict[str, Any]:
    """The epoch in force (its validators) and the history of validator-set epochs."""
    return api_of(request.app).service.validators()


@router.get("/blocks/hash/{block_hash}", tags=["chain"], dependencies=[Depends(member)])
def block_by_hash(request: Request, block_hash: str) -> JSONResponse:
    """The committed block with this hash (64 hex digits)."""
    found = api_of(request.app).service.block_by_hash(parse_digest(block_hash, "a block hash"))
    if found is None:
        raise _fail(404, "no committed block has this hash on this node")
    return JSONResponse(found)  # plain JSON already: FastAPI's encoder would walk every transaction


@router.get("/blocks/{height}", tags=["chain"], dependencies=[Depends(member)])
def block(request: Request, height: str) -> JSONResponse:
    """The committed block at ``height``: header fields, QC signers, transaction ids."""
    found = api_of(request.app).service.block(parse_height(height))
    if found is None:
        raise _fail(404, f"no block at height {height} is committed on this node")
    return JSONResponse(found)


@router.get("/txs/{tx_id}", tags=["chain"], dependencies=[Depends(member)])
def transaction(request: Request, tx_id: str) -> dict[str, Any]:
    """A transaction decoded, with its result, height and index; ``status`` is
    ``committed``, or ``pending`` while it waits in this node's mempool."""
    found = api_of(request.app).service.transaction(parse_digest(tx_id, "a transaction id"))
    if found is None:
        raise _fail(404, "this node knows no transaction with this id")
    return found


@router.get("/receipts/{tx_id}", tags=["chain"], dependencies=[Depends(member)])
def receipt(request: Request, tx_id: str) -> dict[str, Any]:
    """The receipt of a committed transaction: ``receipt`` (canonical CBOR, hex) proves
    it offline against the genesis; ``summary`` says what it claims."""
    raw_id = parse_digest(tx_id, "a transaction id")
    try:
        made = api_of(request.app).service.receipt(raw_id)
    except ReceiptError as exc:
        raise _fail(404 if exc.reason == "not-committed" else 500, str(exc)) from None
    return {"tx_id": tx_id.lower(), **receipt_json(made)}


@router.get("/anchors/{digest}", tags=["chain"], dependencies=[Depends(member)])
def anchor(request: Request, digest: str) -> dict[str, Any]:
    """How a digest was anchored: the anchor record, the receipt of the transaction that
    anchored it (of the original one when it was anchored again), and, for a leaf of a
    published batch, ``batch`` with the root, index, count and proof path."""
    try:
        found = api_of(request.app).service.anchor(parse_digest(digest, "a digest"))
    except ReceiptError as exc:
        raise _fail(404 if exc.reason == "not-committed" else 500, str(exc)) from None
    if found is None:
        raise _fail(404, "this digest is not anchored (nor a leaf of a published batch) on this chain")
    return found


@router.post(
    "/anchors/batches",
    tags=["chain"],
    dependencies=[Depends(member)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["root", "digests"],
                        "properties": {
                            "root": {"type": "string", "description": "batch root, 64 hex digits"},
                            "digests": {"type": "array", "items": {"type": "string"}},
                        },
                    }
                }
            },
        }
    },
)
async def publish_batch(request: Request) -> dict[str, Any]:
    """Publish the leaves (in order) of a committed batch anchor, so that
    ``GET /anchors/{leaf}`` finds each with its proof path."""
    doc = await json_body(request)
    root = parse_digest(str(doc.get("root", "")), "'root'")
    digests = doc.get("digests")
    if not isinstance(digests, list) or not all(isinstance(d, str) for d in digests):
        raise _fail(400, "'digests' must be a list of 64-hex-digit digests")
    leaves = [parse_digest(d, "each digest") for d in digests]
    try:
        return await api_of(request.app).service.publish_batch_async(root, leaves)
    except ValidationError as exc:
        raise _fail(400, str(exc)) from None


@router.get("/accounts/{cert_id}", tags=["chain"], dependencies=[Depends(member)])
async def account(request: Request, cert_id: str) -> dict[str, Any]:
    """A member's certificate summary, revocation and nonces (``next_nonce`` committed,
    ``pending_nonce`` counting this node's mempool)."""
    return api_of(request.app).service.account(parse_digest(cert_id, "a certificate id"))


@router.get("/state/{key}", tags=["chain"], dependencies=[Depends(member)])
def state(request: Request, key: str) -> dict[str, Any]:
    """The value at a state key (hex; ``null``: no entry) in the committed head's state,
    with a state receipt (canonical CBOR, hex) that proves it against the genesis."""
    if len(key) > 2 * MAX_KEY_BYTES or len(key) % 2:
        raise _fail(400, f"a state key is 1..{MAX_KEY_BYTES} bytes in hex")
    try:
        raw = bytes.fromhex(key)
    except ValueError:
        raise _fail(400, "a state key is hex") from None
    if not raw:
        raise _fail(400, f"a state key is 1..{MAX_KEY_BYTES} bytes in hex")
    try:
        return api_of(request.app).service.state(raw)
    except ReceiptError as exc:
        raise _fail(503 if exc.reason == "not-committed" else 400, str(exc)) from None


@router.get("/checkpoint", tags=["chain"], dependencies=[Depends(member)])
def checkpoint(request: Request) -> dict[str, Any]:
    """A checkpoint at the committed head: canonical CBOR (hex) for ``rongxin verify
    --checkpoint``, and its height, block hash and epoch."""
    try:
        cp = api_of(request.app).service.checkpoint()
    except ReceiptError as exc:
        raise _fail(404 if exc.reason == "not-committed" else 500, str(exc)) from None
    header = cp.headers[0]
    return {
        "checkpoint": cp.to_bytes().hex(),
        "height": header[1],
        "block_hash": header_hash(header).hex(),
        "epoch": header[11],
        "time_ms": header[6],
    }


@router.get("/metrics", tags=["node"], dependencies=[Depends(metrics_reader)], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus exposition of the node's registry."""
    return Response(generate_latest(api_of(request.app).service.registry), media_type=CONTENT_TYPE_LATEST)


def _committed(service: NodeService, tx_id: bytes) -> dict[str, Any] | None:
    loc = service.store.tx_location(tx_id)
    if loc is None:
        return None
    result = service.store.tx_result(tx_id)
    return {
        "tx_id": tx_id.hex(),
        "status": "committed",
        "height": loc[0],
        "index": loc[1],
        "result": None if result is None else to_json(codec.decode(result)),
    }


def _parse_submission(doc: dict[str, Any]) -> tuple[bytes, str, float]:
    unknown = set(doc) - {"tx", "mode", "timeout_s"}
    if unknown:
        raise _fail(400, f"unknown fields {sorted(unknown)[:4]}; the body is {{tx, mode, timeout_s}}")
    raw = _hex_field(doc, "tx", MAX_TX_BYTES)
    mode = doc.get("mode", "sync")
    if mode not in ("async", "sync", "commit"):
        raise _fail(400, "'mode' is one of async, sync, commit")
    timeout = doc.get("timeout_s", DEFAULT_COMMIT_WAIT_S)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or not 0 < timeout <= MAX_COMMIT_WAIT_S
    ):
        raise _fail(400, f"'timeout_s' is a number of seconds in (0, {MAX_COMMIT_WAIT_S:g}]")
    return raw, str(mode), float(timeout)


def _log_refusal(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if isinstance(exc, ValidationError):
        log.info("queued transaction refused: %s", exc)
    elif exc is not None:
        log.error("queued transaction failed", exc_info=exc)


@router.post(
    "/txs",
    tags=["chain"],
    dependencies=[Depends(member)],
    responses={
        202: {"description": "queued (mode async)"},
        400: {"description": "refused: malformed, badly signed, not permitted"},
        504: {"description": "not committed in time (mode commit)"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["tx"],
                        "properties": {
                            "tx": {"type": "string", "description": "canonical transaction bytes, hex"},
                            "mode": {
                                "type": "string",
                                "enum": ["async", "sync", "commit"],
                                "default": "sync",
                            },
                            "timeout_s": {"type": "number", "default": DEFAULT_COMMIT_WAIT_S},
                        },
                    }
                }
            },
        }
    },
)
async def submit(request: Request) -> Response:
    """Submit a signed transaction. ``async``: decoded and queued (202); ``sync``: admitted
    to the mempool and gossiped, or refused with the reason (400); ``commit``: waits for
    the commit and returns height, index and result (504 when ``timeout_s`` passes).
    A transaction already committed is answered with its commit in every mode."""
    api = api_of(request.app)
    service = api.service
    raw, mode, timeout = _parse_submission(await json_body(request))
    try:
        tx_id = Transaction.from_bytes(raw).tx_id
    except ValidationError as exc:
        raise _fail(400, str(exc)) from None
    done = _committed(service, tx_id)
    if done is not None:
        return JSONResponse(done)
    if mode == "async":
        if len(api.background) >= api.config.max_waits:
            raise _fail(503, "too many transactions queued on this node; retry shortly")
        task = asyncio.create_task(service.submit(raw))
        api.background.add(task)
        task.add_done_callback(api.background.discard)
        task.add_done_callback(_log_refusal)
        return JSONResponse({"tx_id": tx_id.hex(), "status": "queued"}, status_code=202)
    if mode == "commit" and service.waiting() >= api.config.max_waits:
        raise _fail(503, "too many commit waits on this node; submit in sync mode and poll /txs")
    try:
        await service.submit(raw)
    except ValidationError as exc:
        return JSONResponse({"error": str(exc), "tx_id": tx_id.hex()}, status_code=400)
    if mode == "sync":
        return JSONResponse({"tx_id": tx_id.hex(), "status": "accepted"})
    try:
        await service.wait_committed(tx_id, timeout)
    except CommitTimeout as exc:
        return JSONResponse({"error": str(exc), "tx_id": tx_id.hex()}, status_code=504)
    return JSONResponse(_committed(service, tx_id))


@router.post(
    "/txs/batch",
    tags=["chain"],
    dependencies=[Depends(member)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["txs"],
                        "properties": {
                            "txs": {
                                "type": "array",
                                "items": {"type": "string"},
                                "description": f"signed transactions, hex (at most {MAX_TX_BATCH})",
                            }
                        },
                    }
                }
            },
        }
    },
)
async def submit_batch(request: Request) -> dict[str, Any]:
    """Admit many signed transactions at once (checked as in ``sync`` mode; signatures are
    verified off the event loop). Returns each one's id, and the refused ones with reasons."""
    doc = await json_body(request)
    txs = doc.get("txs")
    if set(doc) != {"txs"} or not isinstance(txs, list) or not all(isinstance(t, str) for t in txs):
        raise _fail(400, "the body is {'txs': [hex, ...]}")
    try:
        raws = batch_transactions(txs)
    except ValidationError as exc:
        raise _fail(400, str(exc)) from None
    return batch_answer(await api_of(request.app).service.submit_many(raws))


def batch_transactions(txs: list[Any]) -> list[bytes]:
    """The transactions of a batch of submissions (``POST /txs/batch``, a WebSocket
    ``submit``): 1 to :data:`MAX_TX_BATCH` hex strings, as bytes.

    Raises
    ------
    ValidationError
        Saying which bound or which entry is wrong.

    Examples
    --------
    >>> batch_transactions(["00ff"])
    [b'\\x00\\xff']
    """
    if not 1 <= len(txs) <= MAX_TX_BATCH:
        raise ValidationError(f"a batch holds 1 to {MAX_TX_BATCH} transactions, not {len(txs)}")
    raws = []
    for i, t in enumerate(txs):
        try:
            raws.append(bytes.fromhex(t))
        except (ValueError, TypeError):
            raise ValidationError(f"transaction {i} is not hex") from None
    return raws


def batch_answer(results: list[tuple[bytes | None, str | None]]) -> dict[str, Any]:
    """The answer to a batch of submissions (``POST /txs/batch``, a WebSocket ``submit``):
    how many were admitted, each one's id (``None`` when refused) and the refusals."""
    accepted = [tx_id.hex() if tx_id is not None else None for tx_id, _ in results]
    refused = [{"index": i, "reason": reason} for i, (_, reason) in enumerate(results) if reason is not None]
    return {"accepted": sum(1 for a in accepted if a), "tx_ids": accepted, "refused": refused}


# --------------------------------------------------------------------------- the app
async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return JSONResponse({"error": f"bad request: {where}: {first.get('msg', 'invalid')}"}, status_code=400)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("API request failed", exc_info=exc)
    return JSONResponse({"error": "internal error; the node's log has the details"}, status_code=500)


DESCRIPTION = """\
The API of one Rongxin consortium-ledger node. Bytes are lowercase hex; every refusal is
`{"error": reason}`.

Reads beyond `/status` and `/health` need a member's **signed request**: SM2 over
`RONGXIN-API-1`, the chain id, the method, the path and query, the SM3 of the body, the
time (ms), a random nonce and the certificate id (one per line), sent in `X-Rongxin-Cert`,
`X-Rongxin-Time`, `X-Rongxin-Nonce`, `X-Rongxin-Signature`. The certificate must be
registered on the chain and not revoked; the time within 60 s of the node's; the nonce
new. `chain.api.auth.sign_request` makes the headers, `chain.client.NodeClient` signs for you.
"""


def create_app(
    service: NodeService,
    *,
    require_auth: bool = True,
    public_status: bool = True,
    public_metrics: bool = False,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_ws_subscriptions: int = 8,
    max_waits: int = 1000,
    window_s: float = WINDOW_MS / 1000,
) -> FastAPI:
    """The node's API app over ``service``.

    Parameters
    ----------
    service : NodeService
        The running node.
    require_auth : bool
        Reads beyond ``/status`` and ``/health`` need a member's signed request. Turn it
        off only for a node whose API nobody else can reach.
    public_status : bool
        ``/status`` and ``/health`` answer without a signature.
    public_metrics : bool
        ``/metrics`` answers without a signature (for a Prometheus scraper on loopback).
    max_body_bytes : int
        Largest request body (``POST /txs``).
    max_ws_subscriptions : int
        Subscriptions one WebSocket connection may hold (the hub bounds the total).
    max_waits : int
        ``POST /txs`` requests in ``commit`` mode waiting at once (and queued ``async`` ones).
    window_s : float
        How far a signed request's time may be from the node's clock.

    Returns
    -------
    fastapi.FastAPI
        Serve it with uvicorn (the node host does, in its event loop).
    """
    from chain.api.vault import router as vault_router
    from chain.api.ws import router as ws_router

    window_ms = int(window_s * 1000)
    config = ApiConfig(
        require_auth=require_auth,
        public_status=public_status,
        public_metrics=public_metrics,
        max_body_bytes=max_body_bytes,
        window_ms=window_ms,
        max_ws_subscriptions=max_ws_subscriptions,
        max_waits=max_waits,
        replay=ReplayCache(window_ms),
    )
    app = FastAPI(
        title="Rongxin node API",
        version="1",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.rongxin = _Api(service, config)
    app.include_router(router)
    app.include_router(ws_router)
    vault = getattr(service, "vault", None)
    if vault is not None:
        app.include_router(vault_router)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(
        BodyLimit,
        default=max_body_bytes,
        limits={"/anchors/batches": MAX_BATCH_BODY_BYTES, "/txs/batch": MAX_BATCH_BODY_BYTES},
        prefixes={} if vault is None else {"/vault/objects/": vault.max_object_bytes},
    )
    app.add_middleware(RequestMetrics, service=service)
    return app
