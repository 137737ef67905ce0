"""NodeClient and AsyncNodeClient against a node served by uvicorn on loopback, and against
a hostile node (an httpx mock transport) whose answers must not be believed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chain import codec
from chain.client import AsyncNodeClient, ClientError, Ledger, NodeClient
from chain.client.vault import HttpObjects
from chain.contracts.anchor import anchor_key
from chain.crypto import PrivateKey
from chain.errors import CommitTimeout, SubscriptionError
from chain.receipt import Receipt, verify_anchored_digest
from chain.types import Certificate, Genesis, Role, Transaction
from tests.chain.api.harness import Node


@pytest.fixture(scope="module")
def client(node: Node, url: str) -> Iterator[NodeClient]:
    with NodeClient(url, node.member.key, node.member.cert, node.genesis) as c:
        yield c


# ------------------------------------------------------------------ a real node over HTTP
def test_anchor_receipt_wait(client: NodeClient, node: Node) -> None:
    assert isinstance(client, Ledger)
    assert client.status()["chain_id"] == node.genesis.chain_id
    first = client.anchor(b"\x01" * 32, "work")
    info = first.verify(node.genesis)
    assert info.sender.cert_id == node.member.cert.cert_id
    assert client.wait(info.tx_id, 5) == info.height
    assert client.receipt(info.tx_id).verify(node.genesis).tx_id == info.tx_id
    again = client.anchor(b"\x01" * 32, "work")  # a new transaction, the original receipt
    assert again.tx == first.tx
    account = client.account()
    assert account["next_nonce"] == account["pending_nonce"] == 3
    assert client.transaction(info.tx_id)["status"] == "committed"
    assert client.block(info.height)["height"] == info.height
    assert client.validators()["epoch"] == 0


def test_nonce_is_tracked_and_refetched_after_a_refusal(client: NodeClient) -> None:
    before = client.account()["next_nonce"]
    with pytest.raises(ClientError) as e:
        client.send("anchor", {"digest": b"\x02" * 32, "kind": "work", "colour": 1})
    assert e.value.status == 400 and "unknown payload fields" in e.value.reason
    receipt = client.anchor(b"\x02" * 32, "work")  # the refused nonce is used again
    assert receipt.verify(client.genesis).transaction.nonce == before


def test_submit_a_transaction_signed_elsewhere(client: NodeClient, node: Node) -> None:
    nonce = client.account()["pending_nonce"]
    tx = Transaction.create(
        node.member.key,
        node.member.cert.cert_id,
        "anchor",
        {"digest": b"\x03" * 32, "kind": "work"},
        nonce,
        0,
        node.genesis.chain_id,
    )
    client._forget_nonce()
    assert client.submit(tx.to_bytes()) == tx.tx_id
    assert client.wait(tx.tx_id, 5) >= 1
    with pytest.raises(ClientError) as e:  # replayed: the node refuses it with its reason
        client.submit(
            Transaction.create(
                node.member.key,
                node.member.cert.cert_id,
                "anchor",
                {"digest": b"\x04" * 32, "kind": "work"},
                nonce,
                0,
                node.genesis.chain_id,
            ).to_bytes()
        )
    assert e.value.status == 400 and "already used" in e.value.reason


def test_batches_and_anchor_lookups(client: NodeClient, node: Node) -> None:
    leaves = [bytes([i]) * 32 for i in range(40, 46)]
    receipt, proofs = client.anchor_batch(leaves, "work-batch")
    found = client.find_anchor(leaves[4])
    assert found is not None and (found.index, list(found.path)) == (4, proofs[4])
    assert found.receipt.tx == receipt.tx and found.kind == "work-batch"
    assert verify_anchored_digest(found.receipt, node.genesis, leaves[4], 4, proofs[4]).height == found.height
    direct = client.anchor(b"\x05" * 32, "work")
    alone = client.find_anchor(b"\x05" * 32)
    assert alone is not None and alone.receipt.tx == direct.tx and alone.path == ()
    assert client.find_anchor(b"\x06" * 32) is None


def test_checkpoint(client: NodeClient, node: Node) -> None:
    receipt = client.anchor(b"\x07" * 32, "work")
    client.anchor(b"\x08" * 32, "work")
    cp = client.checkpoint()
    tx_id = receipt.verify(node.genesis).tx_id
    assert client.receipt(tx_id).verify(node.genesis, cp).tx_id == tx_id


def test_state_reads_are_proven(client: NodeClient, node: Node, url: str) -> None:
    receipt = client.anchor(b"\x0b" * 32, "work")
    key = anchor_key(b"\x0b" * 32)
    value = client.state(key)
    assert value is not None and codec.decode(value)["tx_id"] == receipt.verify(node.genesis).tx_id
    assert client.state(anchor_key(b"\xfe" * 32)) is None
    with pytest.raises(ClientError) as e:
        client.state(b"")
    assert e.value.status in (400, 404)
    with pytest.raises(ClientError, match=r"1\.\.1024 bytes"):
        client.state(b"k" * 1025)

    async def scenario() -> bytes | None:
        async with AsyncNodeClient(url, node.member.key, node.member.cert, node.genesis) as c:
            return await c.state(key)

    assert asyncio.run(scenario()) == value


def test_a_lying_state_answer_is_refused(node: Node) -> None:
    key = anchor_key(b"\x0c" * 32)
    node.consortium.anchor(
        node.consortium.add_member("state-test", [Role.MEDIA_CENTER]), b"\x0c" * 32, "work"
    )
    honest = node.service.state(key)
    other = node.service.state(anchor_key(b"\x0d" * 32))
    lies = [
        {**honest, "value": None},  # says absent, proves present
        {**honest, "value": "00"},  # another value than proven
        {**other, "key": key.hex()},  # the receipt of another key
        {**honest, "receipt": honest["receipt"][:-8]},  # truncated
    ]
    for lie in lies:
        client = mock(node, lambda r, lie=lie: httpx.Response(200, json=lie))  # type: ignore[misc]
        with pytest.raises(ClientError):
            client.state(key)


def test_subscribe_over_a_websocket(client: NodeClient) -> None:
    receipt = client.anchor(b"\x09" * 32, "work")
    events = client.subscribe(["tx"], {"anchor_digest": "09" * 32}, from_height=1)
    try:
        event = next(events)
    finally:
        events.close()
    assert event["tx_id"] == receipt.verify(client.genesis).tx_id.hex()


def test_wait_times_out(client: NodeClient) -> None:
    with pytest.raises(CommitTimeout):
        client.wait(b"\x00" * 32, timeout_s=0.2)


def test_async_client(node: Node, url: str) -> None:
    async def scenario() -> None:
        async with AsyncNodeClient(url, node.member.key, node.member.cert, node.genesis) as client:
            assert (await client.status())["node"] == "node-0"
            got: list[dict[str, Any]] = []

            async def listen() -> None:
                async for event in client.subscribe(["tx"], {"anchor_digest": "0a" * 32}):
                    got.append(event)
                    return

            listener = asyncio.create_task(listen())
            await asyncio.sleep(0.3)  # subscribed before the commit: the event comes live
            receipt = await client.anchor(b"\x0a" * 32, "work")
            await asyncio.wait_for(listener, 5)
            info = receipt.verify(node.genesis)
            assert got[0]["tx_id"] == info.tx_id.hex()
            assert await client.wait(info.tx_id, 5) == info.height
            assert (await client.receipt(info.tx_id)).tx == receipt.tx
            assert (await client.find_anchor(b"\x0a" * 32)) is not None
            assert (await client.account())["next_nonce"] >= 2
            await client.checkpoint()

    asyncio.run(scenario())


def test_an_unreachable_node() -> None:
    key = PrivateKey.generate()
    cert = Certificate.issue(key, "m", "m", [Role.AUDITOR], key.public_key, 0)
    with NodeClient("http://127.0.0.1:9", key, cert, _genesis(), retries=2, backoff_s=0.01) as c:
        with pytest.raises(ClientError, match="unreachable") as e:
            c.status()
        assert e.value.status == 0
        with pytest.raises(ClientError, match="events unreachable"):
            next(c.subscribe())


def test_key_must_match_the_certificate(node: Node) -> None:
    with pytest.raises(ClientError, match="not the certificate's key"):
        NodeClient("http://127.0.0.1:9", PrivateKey.generate(), node.member.cert, node.genesis)


def _genesis() -> Genesis:
    return Genesis("g", "g", PrivateKey.generate().public_key.to_bytes(), ())


# ------------------------------------------------------------------ a hostile node
def mock(node: Node, handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> NodeClient:
    return NodeClient(
        "http://node.invalid",
        node.member.key,
        node.member.cert,
        node.genesis,
        transport=httpx.MockTransport(handler),
        backoff_s=0.001,
        **kw,
    )


def test_every_attempt_is_signed_afresh_and_503_is_retried(node: Node) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) < 3:
            return httpx.Response(503, json={"error": "busy"})
        return httpx.Response(200, json={"node": "x"})

    assert mock(node, handler).status() == {"node": "x"}
    nonces = {r.headers["X-Rongxin-Nonce"] for r in seen}
    assert len(seen) == 3 and len(nonces) == 3
    assert all(r.headers["X-Rongxin-Cert"] == node.member.cert.cert_id.hex() for r in seen)
    seen.clear()
    with pytest.raises(ClientError) as e:
        mock(node, lambda r: httpx.Response(503, json={"error": "busy"}), retries=1).status()
    assert (e.value.status, e.value.reason) == (503, "busy")


def test_connection_errors_are_retried(node: Node) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"ok": True})

    assert mock(node, handler).status() == {"ok": True} and len(calls) == 2


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(400, json={"error": "nonce 3 already used"}), "nonce 3 already used"),
        (httpx.Response(404, text="<html>gone</html>"), "<html>gone</html>"),
        (httpx.Response(200, text="not json"), "not a JSON object"),
        (httpx.Response(200, json=[1, 2]), "not a JSON object"),
        (httpx.Response(200, content=b"x" * (41 * 1024 * 1024)), "over"),
    ],
)
def test_refusals_and_garbage(node: Node, response: httpx.Response, error: str) -> None:
    with pytest.raises(ClientError, match=error):
        mock(node, lambda r: response).status()


def test_commit_timeout_from_the_node(node: Node) -> None:
    answer = {"error": "not committed within 30 s", "tx_id": "ab" * 32}
    client = mock(node, lambda r: httpx.Response(504, json=answer))
    with pytest.raises(CommitTimeout) as e:
        client.request("POST", "/txs", {"tx": "00"})
    assert e.value.tx_id == b"\xab" * 32


@pytest.fixture(scope="module")
def real_receipt(client: NodeClient) -> Receipt:
    return client.anchor(b"\x0b" * 32, "work")


def test_a_receipt_that_does_not_verify_is_refused(node: Node, real_receipt: Receipt) -> None:
    tx_id = real_receipt.verify(node.genesis).tx_id
    raw = bytearray(real_receipt.to_bytes())
    raw[len(raw) // 2] ^= 1

    def answer(receipt_hex: str) -> NodeClient:
        return mock(node, lambda r: httpx.Response(200, json={"receipt": receipt_hex}))

    with pytest.raises(ClientError, match="does not verify"):
        answer(bytes(raw).hex()).receipt(tx_id)
    with pytest.raises(ClientError, match="not hex"):
        answer("zz").receipt(tx_id)
    with pytest.raises(ClientError, match="another transaction"):
        answer(real_receipt.to_bytes().hex()).receipt(b"\x01" * 32)
    assert answer(real_receipt.to_bytes().hex()).receipt(tx_id).tx == real_receipt.tx


def test_an_anchor_answer_for_another_digest_is_refused(node: Node, real_receipt: Receipt) -> None:
    doc = {"anchor": {"kind": "work"}, "receipt": real_receipt.to_bytes().hex(), "batch": None}
    client = mock(node, lambda r: httpx.Response(200, json=doc))
    assert client.find_anchor(b"\x0b" * 32) is not None
    with pytest.raises(ClientError, match="not of an anchor of this digest"):
        client.find_anchor(b"\x0c" * 32)
    doc["batch"] = {"index": 0, "path": ["00" * 32]}
    with pytest.raises(ClientError, match="does not verify"):
        client.find_anchor(b"\x0b" * 32)


def test_a_forged_checkpoint_is_refused(node: Node) -> None:
    client = mock(node, lambda r: httpx.Response(200, json={"checkpoint": "a0"}))
    with pytest.raises(ClientError, match="checkpoint does not verify"):
        client.checkpoint()


def test_node_sends_an_overflow_error(node: Node) -> None:
    event = json.dumps(
        {"type": "error", "reason": "subscription overflowed; resubscribe from height 9", "resume_height": 9}
    )
    with pytest.raises(SubscriptionError) as e:
        NodeClient._event(event)
    assert e.value.resume_height == 9
    with pytest.raises(ClientError, match="not JSON"):
        NodeClient._event("{")


def test_two_clients_of_one_member_share_its_nonces(client: NodeClient, node: Node, url: str) -> None:
    client.anchor(b"\x0d" * 32, "work")  # the client counts from here on
    with NodeClient(url, node.member.key, node.member.cert, node.genesis) as other:
        taken = other.anchor(b"\x0e" * 32, "work").verify(node.genesis).transaction.nonce
    # the first client's next nonce was taken: the node refuses it, the client signs again
    receipt = client.anchor(b"\x0f" * 32, "work")
    assert receipt.verify(node.genesis).transaction.nonce == taken + 1


# ------------------------------------------------------------------ a hostile vault node
def vault_mock(node: Node, handler: Callable[[httpx.Request], httpx.Response]) -> HttpObjects:
    return HttpObjects(
        "http://node.invalid",
        node.member.key,
        node.member.cert,
        node.genesis,
        transport=httpx.MockTransport(handler),
    )


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(200, text="stored"), "not a JSON object"),
        (httpx.Response(403, json={"error": "no grant"}), "no grant"),
        (httpx.Response(500, text="<html>" + "x" * 100_000), "<html>x"),
    ],
)
def test_vault_upload_refusals_and_garbage(
    node: Node, tmp_path: Path, response: httpx.Response, error: str
) -> None:
    f = tmp_path / "object"
    f.write_bytes(b"sealed")
    with vault_mock(node, lambda r: response) as objects, pytest.raises(ClientError, match=error) as e:
        objects.put_file(b"\x01" * 32, f)
    assert len(e.value.reason) <= 1000


def test_vault_download_refusal_reads_a_bounded_body(node: Node) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, content=b'{"error": "no such object"}' + b" " * (50 * 1024 * 1024))

    with vault_mock(node, handler) as objects, pytest.raises(ClientError) as e:
        list(objects.fetch(b"\x02" * 32))
    assert e.value.status == 404


def test_clients_share_one_verifying_tls_context(node: Node) -> None:
    import ssl

    from chain.client.common import tls_context

    def context_of(http: Any) -> Any:
        return http._transport._pool._ssl_context  # httpcore's pool keeps the context it was given

    shared = tls_context()
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname
    clients = [
        NodeClient(f"https://127.0.0.1:{9000 + i}", node.member.key, node.member.cert, node.genesis)
        for i in range(8)
    ]
    try:  # a context of its own each would load the CA bundle each time (≈ 20 ms of CPU)
        assert all(context_of(c._http) is shared for c in clients)
        async_client = AsyncNodeClient("https://[::1]:9", node.member.key, node.member.cert, node.genesis)
        assert context_of(async_client._http) is shared
        asyncio.run(async_client.aclose())
    finally:
        for c in clients:
            c.close()
