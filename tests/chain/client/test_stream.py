"""Submission streams against a node served by uvicorn on loopback, and against a hostile
node (a WebSocket server of the test's own) whose answers must not be believed."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chain.client import AsyncNodeClient, AsyncSubmitStream, ClientError, NodeClient, SubmitStream
from chain.client.stream import MAX_ANSWER_BYTES, batch_results, read_answer
from chain.crypto import PrivateKey
from chain.crypto.sm3 import sm3
from chain.localnet import Identity
from chain.types import Certificate, Role, Transaction
from tests.chain.api.harness import Node


@pytest.fixture(scope="module")
def archive(node: Node) -> Identity:
    """A member of its own, whose nonces only these tests use."""
    return node.consortium.add_member("County archive", [Role.MEDIA_CENTER])


def anchors(node: Node, who: Identity, first: int, n: int) -> list[Transaction]:
    return [node.anchor_tx(bytes([first + i]) * 32, who=who) for i in range(n)]


# ------------------------------------------------------------------ a real node
def test_batches_over_one_stream(node: Node, url: str, archive: Identity) -> None:
    good = anchors(node, archive, 0x20, 3)
    forged = Transaction.from_bytes(anchors(node, archive, 0x30, 1)[0].to_bytes())
    forged_raw = forged.to_bytes()[:-8] + b"\x00" * 8  # its signature spoiled
    archive.nonce -= 1  # that nonce was never used
    with NodeClient(url, archive.key, archive.cert, node.genesis) as client, client.submit_stream() as stream:
        assert isinstance(stream, SubmitStream)
        results = stream.submit_batch([t.to_bytes() for t in good] + [forged_raw])
        assert [tx_id for tx_id, _ in results[:3]] == [t.tx_id for t in good]
        assert all(reason is None for _, reason in results[:3])
        assert results[3][0] is None and results[3][1]
        assert all(node.service.store.tx_location(t.tx_id) is not None for t in good)
        more = anchors(node, archive, 0x40, 2)
        assert [r[0] for r in stream.submit_batch([t.to_bytes() for t in more])] == [t.tx_id for t in more]
        with pytest.raises(ClientError, match="at least one"):
            stream.submit_batch([])


def test_an_async_stream(node: Node, url: str, archive: Identity) -> None:
    txs = anchors(node, archive, 0x50, 4)
    over_http = anchors(node, archive, 0x58, 2)

    async def scenario() -> list[Any]:
        async with (
            AsyncNodeClient(url, archive.key, archive.cert, node.genesis) as client,
            await client.submit_stream() as stream,
        ):
            assert isinstance(stream, AsyncSubmitStream)
            # two callers at once take their turns on the one connection
            both = await asyncio.gather(
                stream.submit_batch([t.to_bytes() for t in txs[:2]]),
                stream.submit_batch([t.to_bytes() for t in txs[2:]]),
            )
            # and the same answers through an HTTP request
            return [*both, await client.submit_batch([t.to_bytes() for t in over_http])]

    first, second, third = asyncio.run(scenario())
    assert [r[0] for r in first + second] == [t.tx_id for t in txs]
    assert third == [(t.tx_id, None) for t in over_http]


def test_a_stranger_is_refused_and_an_unreachable_node_says_so(node: Node, url: str) -> None:
    stranger = PrivateKey.generate()
    cert = Certificate.issue(stranger, "Not registered", "x", [Role.AUDITOR], stranger.public_key, 0)
    with (
        NodeClient(url, stranger, cert, node.genesis) as client,
        pytest.raises(ClientError, match="not registered"),
    ):
        client.submit_stream()
    with (
        NodeClient("http://127.0.0.1:9", stranger, cert, node.genesis) as client,
        pytest.raises(ClientError, match="unreachable for a submission stream"),
    ):
        client.submit_stream()

    async def unreachable() -> None:
        async with AsyncNodeClient("http://127.0.0.1:9", stranger, cert, node.genesis) as client:
            await client.submit_stream()

    with pytest.raises(ClientError, match="unreachable for a submission stream"):
        asyncio.run(unreachable())


# ------------------------------------------------------------------ a hostile node
@pytest.fixture
def hostile() -> Iterator[Callable[[Callable[[dict[str, Any]], Any]], str]]:
    """A WebSocket server that says ready, then answers each message with ``answer(msg)``
    (a dict is sent as JSON, a str as it is, a list message by message, ``None`` closes)."""
    from websockets.sync.server import serve as ws_serve

    servers = []

    def start(answer: Callable[[dict[str, Any]], Any]) -> str:
        def handler(ws: Any) -> None:
            ws.send(json.dumps({"type": "ready", "height": 1}))
            for text in ws:
                out = answer(json.loads(text))
                if out is None:
                    return
                for one in out if isinstance(out, list) else [out]:
                    ws.send(one if isinstance(one, str) else json.dumps(one))

        server = ws_serve(handler, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"ws://127.0.0.1:{server.socket.getsockname()[1]}/events"

    yield start
    for s in servers:
        s.shutdown()


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (lambda m: {"type": "submitted", "id": m["id"], "tx_ids": ["ab" * 32], "refused": []}, "another id"),
        (lambda m: {"type": "submitted", "id": m["id"], "tx_ids": [], "refused": []}, "every transaction"),
        (lambda m: {"type": "submitted", "id": m["id"], "tx_ids": [None], "refused": 3}, "list of refusals"),
        (lambda m: {"type": "error", "reason": "go away", "id": m["id"]}, "go away"),
        (lambda m: "not json", "not JSON"),
        (lambda m: "[1]", "not a JSON object"),
        (lambda m: "x" * (MAX_ANSWER_BYTES + 1), "closed the submission stream|size limit"),
        (lambda m: None, "closed the submission stream"),
    ],
)
def test_a_lying_or_broken_node_is_not_believed(
    hostile: Callable[[Callable[[dict[str, Any]], Any]], str], answer: Any, error: str
) -> None:
    url = hostile(answer)
    with SubmitStream(url, {}, timeout_s=5) as stream, pytest.raises(ClientError, match=error):
        stream.submit_batch([b"a signed transaction"])


def test_other_messages_are_skipped_and_a_silent_node_times_out(
    hostile: Callable[[Callable[[dict[str, Any]], Any]], str],
) -> None:
    raw = b"a signed transaction"

    def chatty(m: dict[str, Any]) -> Any:  # an event, an answer to another batch, then this one's
        return [
            {"type": "block", "height": 2},
            {"type": "submitted", "id": m["id"] + 100, "tx_ids": [], "refused": []},
            {"type": "error", "reason": "not yours", "id": m["id"] + 100},
            {"type": "submitted", "id": m["id"], "tx_ids": [sm3(raw).hex()], "refused": []},
        ]

    url = hostile(chatty)
    with SubmitStream(url, {}, timeout_s=5) as stream:
        assert stream.submit_batch([raw]) == [(sm3(raw), None)]
        assert stream.submit_batch([raw]) == [(sm3(raw), None)]
    silent = hostile(lambda m: {"type": "block", "height": 2})  # never answers the batch
    with SubmitStream(silent, {}, timeout_s=0.5) as stream, pytest.raises(ClientError, match="no answer"):
        stream.submit_batch([raw])


# ------------------------------------------------------------------ answers, offline
def test_batch_results_checks_every_id() -> None:
    txs = [b"one", b"two"]
    doc = {"tx_ids": [sm3(b"one").hex(), None], "refused": [{"index": 1, "reason": "nonce used"}]}
    assert batch_results(doc, txs) == [(sm3(b"one"), None), (None, "nonce used")]
    unexplained = [(None, "refused (the node gave no reason)")]
    assert batch_results({"tx_ids": [None], "refused": []}, [b"x"]) == unexplained
    for index in ([0], {"0": 0}, "0", 0.0, None):  # not an index: the refusal has no reason
        doc = {"tx_ids": [None], "refused": [{"index": index, "reason": "x"}]}
        assert batch_results(doc, [b"x"]) == unexplained
    for bad, error in [
        ({"tx_ids": [sm3(b"two").hex(), None]}, "another id"),
        ({"tx_ids": ["zz", None]}, "transaction id"),
        ({"tx_ids": [None]}, "every transaction"),
        ([], "every transaction"),
    ]:
        with pytest.raises(ClientError, match=error):
            batch_results(bad, txs)


def test_read_answer() -> None:
    assert read_answer('{"type": "ready", "height": 3}', None) is None
    assert read_answer('{"type": "submitted", "id": 4}', 3) is None  # another batch's
    assert read_answer('{"type": "submitted", "id": 3}', 3) == {"type": "submitted", "id": 3}
    assert read_answer('{"type": "error", "reason": "x", "id": 4}', 3) is None
    with pytest.raises(ClientError, match="revoked"):
        read_answer('{"type": "error", "reason": "revoked"}', 3)


def test_http_batches_are_read_the_same_way(node: Node, url: str) -> None:
    member = node.consortium.add_member("Legal center", [Role.LEGAL_CENTER])
    tx = node.anchor_tx(b"\x70" * 32, who=member)
    with NodeClient(url, member.key, member.cert, node.genesis) as client:
        assert client.submit_batch([tx.to_bytes()]) == [(tx.tx_id, None)]
