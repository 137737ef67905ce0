"""What every ledger client shares: anchor payloads and the checks on what a node returns.

A node is not trusted: a receipt it returns is parsed within its size limit, verified
against the genesis and checked to be the receipt that was asked for before a client hands
it on. Failures are :class:`~chain.errors.ClientError` naming what was wrong.

Examples
--------
>>> anchor_payload(b"d" * 32, "work")
{'digest': b'dddddddddddddddddddddddddddddddd', 'kind': 'work'}
"""

from __future__ import annotations

import functools
import json
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chain.errors import ChainError, ClientError, CommitTimeout
from chain.receipt import Receipt, verify_anchored_digest
from chain.state_receipt import StateReceipt
from chain.types import Genesis

MAX_RESPONSE_BYTES = 40 * 1024 * 1024
"""Largest answer a client reads from a node (a receipt is at most 16 MiB, 32 MiB in hex)."""


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context every client of this process shares (certificates and host names
    verified against httpx's trust store).

    An ``httpx.Client`` made without one builds its own and loads the whole CA bundle:
    ≈ 20 ms of CPU per client, although a node's API is usually plain HTTP on loopback.
    An ``SSLContext`` may be shared between threads and connections.

    Examples
    --------
    >>> tls_context() is tls_context(), tls_context().verify_mode == ssl.CERT_REQUIRED
    (True, True)
    """
    import httpx

    return httpx.create_ssl_context()


def anchor_payload(
    digest: bytes, kind: str, meta: bytes | None = None, count: int | None = None
) -> dict[str, Any]:
    """The payload of an ``anchor`` transaction, checked before anything is signed.

    Raises
    ------
    ClientError
        When ``digest`` or ``meta`` is not 32 bytes or ``kind`` is empty or too long.
    """
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise ClientError("an anchored digest is 32 bytes (e.g. an SM3 digest)")
    if not isinstance(kind, str) or not 0 < len(kind) <= 64:
        raise ClientError("an anchor kind is 1..64 characters")
    payload: dict[str, Any] = {"digest": digest, "kind": kind}
    if meta is not None:
        if not isinstance(meta, bytes) or len(meta) != 32:
            raise ClientError("anchor meta is a 32-byte digest")
        payload["meta"] = meta
    if count is not None:
        payload["count"] = count
    return payload


def hex_bytes(value: Any, what: str, size: int | None = None) -> bytes:
    """Bytes from a node's hex field, or :class:`ClientError` naming ``what``.

    Examples
    --------
    >>> hex_bytes("00ff", "a field")
    b'\\x00\\xff'
    """
    if not isinstance(value, str):
        raise ClientError(f"the node answered no {what}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ClientError(f"the node answered a {what} that is not hex") from None
    if size is not None and len(raw) != size:
        raise ClientError(f"the node answered a {what} of {len(raw)} bytes, not {size}")
    return raw


def checked_receipt(raw: bytes, genesis: Genesis, tx_id: bytes | None = None) -> Receipt:
    """Parse and verify receipt bytes from a node (of ``tx_id`` when given).

    Raises
    ------
    ClientError
        When the bytes are not a receipt of this chain that verifies, or prove another
        transaction.
    """
    try:
        receipt = Receipt.from_bytes(raw)
        info = receipt.verify(genesis)
    except ChainError as exc:
        raise ClientError(f"the node's receipt does not verify against the genesis: {exc}") from None
    if tx_id is not None and info.tx_id != tx_id:
        raise ClientError("the node answered the receipt of another transaction")
    return receipt


def checked_state(doc: Any, genesis: Genesis, key: bytes) -> bytes | None:
    """The value a node's ``GET /state/{key}`` answer proves (``None``: no entry).

    Raises
    ------
    ClientError
        When the answer's state receipt does not verify against the genesis, is about
        another key, or says otherwise than the answer.
    """
    if not isinstance(doc, dict):
        raise ClientError("the node's state answer is not an object")
    try:
        answer = StateReceipt.from_bytes(hex_bytes(doc.get("receipt"), "state receipt")).verify(genesis)
    except ChainError as exc:
        raise ClientError(f"the node's state receipt does not verify against the genesis: {exc}") from None
    if answer.key != key:
        raise ClientError("the node answered the state of another key")
    said = doc.get("value")
    if (None if answer.value is None else answer.value.hex()) != said:
        raise ClientError("the node's answer says another value than its state receipt proves")
    return answer.value


def check_anchors(receipt: Receipt, genesis: Genesis, digest: bytes) -> None:
    """Check that a (verified) receipt's transaction anchors exactly ``digest``.

    Raises
    ------
    ClientError
        When it is not an ``anchor`` transaction of ``digest``.
    """
    info = receipt.verify(genesis)
    if info.transaction.type != "anchor" or info.transaction.payload.get("digest") != digest:
        raise ClientError("the node's receipt is not of an anchor of this digest")


@dataclass(frozen=True)
class AnchoredDigest:
    """A digest found on chain: the receipt of the anchor transaction, and the digest's
    position and proof path in the anchored batch (``0`` and ``[]`` when anchored alone).
    Check it with ``verify_anchored_digest(receipt, genesis, digest, index, path)``."""

    digest: bytes
    receipt: Receipt
    index: int
    path: tuple[bytes, ...]
    kind: str
    height: int


def anchored_digest(doc: Any, genesis: Genesis, digest: bytes) -> AnchoredDigest:
    """An :class:`AnchoredDigest` from a node's ``GET /anchors/{digest}`` answer, verified.

    Raises
    ------
    ClientError
        When the answer is malformed or does not prove that ``digest`` was anchored.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("anchor"), dict):
        raise ClientError("the node's anchor answer is malformed")
    receipt = checked_receipt(hex_bytes(doc.get("receipt"), "receipt"), genesis)
    batch = doc.get("batch")
    index = 0
    path: tuple[bytes, ...] = ()
    if batch is not None:
        if not isinstance(batch, dict) or not isinstance(batch.get("index"), int):
            raise ClientError("the node's batch proof is malformed")
        raw_path = batch.get("path")
        if not isinstance(raw_path, list) or len(raw_path) > 64:
            raise ClientError("the node's batch proof is malformed")
        index = batch["index"]
        path = tuple(hex_bytes(p, "batch proof node", 32) for p in raw_path)
    try:
        info = (
            verify_anchored_digest(receipt, genesis, digest, index, list(path))
            if batch is not None
            else receipt.verify(genesis)
        )
    except ChainError as exc:
        raise ClientError(f"the node's anchor proof does not verify: {exc}") from None
    if batch is None:
        check_anchors(receipt, genesis, digest)
    record = doc["anchor"]
    kind = record.get("kind")
    return AnchoredDigest(digest, receipt, index, path, kind if isinstance(kind, str) else "", info.height)


def node_answer(status: int, content: bytes) -> dict[str, Any]:
    """A node's JSON object answer, or the error it stands for.

    Raises
    ------
    CommitTimeout
        A 504 naming the transaction that was not committed in time.
    ClientError
        Any other status of 400 and above (with the node's reason), or an answer that is
        not a JSON object.
    """
    text = content.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        doc = None
    if status >= 400:
        if status == 504 and isinstance(doc, dict) and isinstance(doc.get("tx_id"), str):
            raise CommitTimeout(error_reason(doc, text), hex_bytes(doc["tx_id"], "transaction id"))
        raise ClientError(error_reason(doc, text), status)
    if not isinstance(doc, dict):
        raise ClientError("the node's answer is not a JSON object", status)
    return doc


def error_reason(doc: Any, text: str) -> str:
    """The node's ``{"error": reason}``, or the start of its answer."""
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return str(doc["error"])[:1000]
    return text[:200] or "the node gave no reason"


def ws_url(url: str, path: Sequence[str] = ("events",)) -> tuple[str, str]:
    """The WebSocket URL of a node's ``/events`` and the target to sign.

    Examples
    --------
    >>> ws_url("http://127.0.0.1:26657/")
    ('ws://127.0.0.1:26657/events', '/events')
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None:
        raise ClientError(f"a node URL is http(s)://host:port, not {url!r}")
    target = "/".join([parts.path.rstrip("/"), *path])
    if not target.startswith("/"):
        target = "/" + target
    return f"{scheme}://{parts.netloc}{target}", target
