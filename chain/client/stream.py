"""Submission streams: batches of signed transactions over one authenticated WebSocket.

A member's application with a steady flow of transactions (a crawler anchoring what it
captures, a platform registering works as they come) opens one stream to its node and
sends each batch as a ``submit`` message (:mod:`chain.api.ws`): the connection is
authenticated once, where ``POST /txs/batch`` costs a signature, an HTTP request and its
framework on both sides for every batch. Measured on the reference machine, a batch of six
transactions costs the node 0.16-0.28 ms of CPU this way against 1.4-1.5 ms as a signed
request, and the client a third (``docs/benchmarks.md``).

:class:`SubmitStream` (blocking) and :class:`AsyncSubmitStream` come from
:meth:`~chain.client.http.NodeClient.submit_stream` and
:meth:`~chain.client.http.AsyncNodeClient.submit_stream`. Each ``submit_batch`` answers,
for every transaction, its id (admitted) or the node's reason for refusing it, exactly as
:meth:`~chain.client.http.NodeClient.submit_batch` does; the node is not trusted: an
answer that does not name the transactions sent is refused. A stream is not retried: when
it breaks, :class:`~chain.errors.ClientError` says so and the caller opens another (a
transaction submitted twice is recognized by its id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from typing import Any

from chain.client.common import hex_bytes
from chain.crypto.sm3 import sm3
from chain.errors import ClientError

MAX_ANSWER_BYTES = 2 * 1024 * 1024
"""Largest message a stream accepts from the node (the answer to 10,000 transactions is
about 700 kB)."""

Results = list[tuple[bytes | None, str | None]]
"""For each transaction of a batch: its id, or ``None`` and the node's reason."""


def batch_results(doc: Any, txs: Sequence[bytes]) -> Results:
    """Read a node's answer to a batch (``POST /txs/batch``, a stream's ``submitted``).

    Raises
    ------
    ClientError
        When the answer does not give one entry per transaction, or names an id that is
        not the transaction's own (a transaction's id is the SM3 of its bytes).

    Examples
    --------
    >>> tx = b"signed transaction"
    >>> batch_results({"tx_ids": [sm3(tx).hex()], "refused": []}, [tx]) == [(sm3(tx), None)]
    True
    >>> batch_results({"tx_ids": [None], "refused": [{"index": 0, "reason": "no"}]}, [tx])
    [(None, 'no')]
    """
    ids = doc.get("tx_ids") if isinstance(doc, dict) else None  # every field is the node's word
    if not isinstance(ids, list) or len(ids) != len(txs):
        raise ClientError("the node's answer to a batch does not list every transaction")
    refused = doc.get("refused", [])
    if not isinstance(refused, list):
        raise ClientError("the node's answer to a batch has no list of refusals")
    reasons = {
        r["index"]: str(r.get("reason"))
        for r in refused
        if isinstance(r, dict) and type(r.get("index")) is int
    }
    out: Results = []
    for i, (raw, t) in enumerate(zip(txs, ids, strict=True)):
        if t is None:
            out.append((None, reasons.get(i, "refused (the node gave no reason)")))
            continue
        tx_id = hex_bytes(t, "transaction id", 32)
        if tx_id != sm3(raw):
            raise ClientError(f"the node answered another id for transaction {i} of the batch")
        out.append((tx_id, None))
    return out


def submit_message(ref: int, txs: Sequence[bytes]) -> str:
    """The ``submit`` message of a batch."""
    if not txs:
        raise ClientError("a batch holds at least one transaction")
    return json.dumps({"type": "submit", "id": ref, "txs": [t.hex() for t in txs]}, separators=(",", ":"))


def read_answer(text: str | bytes, ref: int | None) -> dict[str, Any] | None:
    """A node's message on a stream: the answer to batch ``ref`` (``None`` for another
    message, which the stream skips).

    Raises
    ------
    ClientError
        For an error (the node's reason: the batch was refused as a whole, or the stream is
        closing), or a message that is not a JSON object under the size limit.
    """
    if len(text) > MAX_ANSWER_BYTES:
        raise ClientError("the node sent a message over the stream's size limit")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise ClientError("the node sent a message that is not JSON") from None
    if not isinstance(doc, dict):
        raise ClientError("the node sent a message that is not a JSON object")
    kind = doc.get("type")
    if kind == "error" and (ref is None or doc.get("id") in (ref, None)):
        raise ClientError(str(doc.get("reason", "the node refused the batch")))
    if kind == "submitted" and ref is not None and doc.get("id") == ref:
        return doc
    return None


def _connect_options(url: str, headers: dict[str, str], timeout_s: float, ssl: Any) -> dict[str, Any]:
    """The options of ``websockets``' ``connect`` for a stream (both clients)."""
    options: dict[str, Any] = {
        "additional_headers": headers,
        "proxy": None,
        "max_size": MAX_ANSWER_BYTES,
        "open_timeout": timeout_s,
    }
    if url.startswith("wss:"):
        options["ssl"] = ssl
    return options


class SubmitStream:
    """A blocking submission stream (see the module docstring); a context manager.

    Parameters
    ----------
    url : str
        ``ws://`` or ``wss://`` address of the node's ``/events``.
    headers : dict of str to str
        The member's signed headers for the connection.
    timeout_s : float
        Longest wait for the connection, and for each answer.
    ssl : ssl.SSLContext, optional
        For ``wss://``.
    """

    def __init__(self, url: str, headers: dict[str, str], timeout_s: float, ssl: Any = None) -> None:
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        self.url = url
        self.timeout_s = timeout_s
        self._next = 0
        self._stack = contextlib.ExitStack()
        try:
            self._ws = self._stack.enter_context(
                connect(url, **_connect_options(url, headers, timeout_s, ssl))
            )
        except (OSError, WebSocketException, TimeoutError) as exc:
            raise ClientError(f"node {url} unreachable for a submission stream: {exc}") from None
        try:
            read_answer(self._recv(), None)  # "ready", or the node's refusal
        except BaseException:
            self._stack.close()
            raise

    def _recv(self) -> str | bytes:
        from websockets.exceptions import ConnectionClosed

        try:
            text: str | bytes = self._ws.recv(timeout=self.timeout_s)
        except TimeoutError:
            raise ClientError(f"no answer from node {self.url} within {self.timeout_s} s") from None
        except ConnectionClosed as exc:
            raise ClientError(f"the node closed the submission stream: {exc}") from None
        return text

    def submit_batch(self, txs: Sequence[bytes]) -> Results:
        """Submit signed transactions (admitted as in ``sync`` mode); for each, its id or
        the node's reason for refusing it."""
        from websockets.exceptions import ConnectionClosed

        ref, self._next = self._next, self._next + 1
        try:
            self._ws.send(submit_message(ref, txs))
        except ConnectionClosed as exc:
            raise ClientError(f"the node closed the submission stream: {exc}") from None
        while True:
            doc = read_answer(self._recv(), ref)
            if doc is not None:
                return batch_results(doc, txs)

    def close(self) -> None:
        """Close the connection."""
        self._stack.close()

    def __enter__(self) -> SubmitStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncSubmitStream:
    """An asyncio submission stream: ``async with await client.submit_stream() as s``.

    Open it with :meth:`open` (or through the client); the parameters are
    :class:`SubmitStream`'s. Batches are answered in the order they are sent; one
    stream serves one batch at a time (a lock keeps concurrent callers in turn).
    """

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._next = 0
        self._lock = asyncio.Lock()
        self._ws: Any = None

    @classmethod
    async def open(
        cls, url: str, headers: dict[str, str], timeout_s: float, ssl: Any = None
    ) -> AsyncSubmitStream:
        """Connect and authenticate; the stream."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import WebSocketException

        stream = cls(url, timeout_s)
        try:
            stream._ws = await connect(url, **_connect_options(url, headers, timeout_s, ssl))
        except (OSError, WebSocketException, TimeoutError) as exc:
            raise ClientError(f"node {url} unreachable for a submission stream: {exc}") from None
        try:
            read_answer(await stream._recv(), None)
        except BaseException:
            await stream._ws.close()
            raise
        return stream

    async def _recv(self) -> str | bytes:
        from websockets.exceptions import ConnectionClosed

        try:
            text: str | bytes = await asyncio.wait_for(self._ws.recv(), self.timeout_s)
        except TimeoutError:
            raise ClientError(f"no answer from node {self.url} within {self.timeout_s} s") from None
        except ConnectionClosed as exc:
            raise ClientError(f"the node closed the submission stream: {exc}") from None
        return text

    async def submit_batch(self, txs: Sequence[bytes]) -> Results:
        """See :meth:`SubmitStream.submit_batch`."""
        from websockets.exceptions import ConnectionClosed

        async with self._lock:
            ref, self._next = self._next, self._next + 1
            try:
                await self._ws.send(submit_message(ref, txs))
            except ConnectionClosed as exc:
                raise ClientError(f"the node closed the submission stream: {exc}") from None
            while True:
                doc = read_answer(await self._recv(), ref)
                if doc is not None:
                    return batch_results(doc, txs)

    async def aclose(self) -> None:
        """Close the connection."""
        await self._ws.close()

    async def __aenter__(self) -> AsyncSubmitStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
