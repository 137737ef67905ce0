"""The node's HTTP API over a real in-process chain: reads, submission, refusals, limits."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chain.api import create_app, sign_request
from chain.errors import ValidationError
from chain.merkle import batch_proofs
from chain.receipt import Checkpoint, Receipt, verify_anchored_digest, verify_checkpoint
from chain.types import Certificate, Role
from tests.chain.api.harness import Node, TestClient, start_node


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """One chain for the tests that only add transactions of their own."""
    n = start_node(tmp_path_factory.mktemp("api"))
    yield n
    n.consortium.close()


@pytest.fixture(scope="module")
def client(node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(node.service)) as c:
        yield c


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Node]:
    """A chain of its own, for a test that stops the network or breaks the host."""
    n = start_node(tmp_path)
    yield n
    n.consortium.close()


def get(client: TestClient, node: Node, path: str) -> httpx.Response:
    return client.get(path, headers=node.headers("GET", path))


def post(client: TestClient, node: Node, path: str, doc: Any) -> httpx.Response:
    body = json.dumps(doc).encode()
    headers = {**node.headers("POST", path, body), "content-type": "application/json"}
    return client.post(path, content=body, headers=headers)


def submit(client: TestClient, node: Node, tx: Any, mode: str = "commit", **kw: Any) -> httpx.Response:
    return post(client, node, "/txs", {"tx": tx.to_bytes().hex(), "mode": mode, **kw})


PROTECTED = [
    "/net_info",
    "/validators",
    "/blocks/1",
    "/blocks/hash/" + "00" * 32,
    "/txs/" + "00" * 32,
    "/receipts/" + "00" * 32,
    "/anchors/" + "00" * 32,
    "/accounts/" + "00" * 32,
    "/checkpoint",
    "/metrics",
]


# ------------------------------------------------------------------ public and protected
def test_status_and_health_are_public(client: TestClient, node: Node) -> None:
    status = client.get("/status").json()
    assert status["node"] == "node-0" and status["chain_id"] == node.genesis.chain_id
    assert {"node_id", "role", "height", "round", "head_hash", "peers", "voting", "catching_up"} <= set(
        status
    )
    assert client.get("/health").json() == {"status": "ok", "height": status["height"]}


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/status", "/txs", "/receipts/{tx_id}", "/anchors/{digest}", "/checkpoint"} <= set(spec["paths"])
    assert "requestBody" in spec["paths"]["/txs"]["post"]
    assert "swagger" in client.get("/docs").text.lower()


@pytest.mark.parametrize("path", PROTECTED)
def test_reads_need_a_signed_request(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.json()["error"].startswith("missing X-Rongxin-Cert header")


def test_unsigned_submission_is_refused(client: TestClient, node: Node) -> None:
    body = json.dumps({"tx": node.unsent_tx(b"\x01" * 32).to_bytes().hex()})
    assert client.post("/txs", content=body).status_code == 401
    assert len(node.consortium.replicas[0].app.mempool) == 0


def test_status_can_require_a_signature_and_auth_can_be_off(fresh: Node) -> None:
    node = fresh
    with TestClient(create_app(node.service, public_status=False)) as c:
        assert c.get("/status").status_code == 401 and c.get("/health").status_code == 401
        assert c.get("/status", headers=node.headers("GET", "/status")).status_code == 200
    with TestClient(create_app(node.service, require_auth=False)) as c:
        assert c.get("/validators").status_code == 200
    with TestClient(create_app(node.service, public_metrics=True)) as c:
        assert "rongxin_api_requests_total" in c.get("/metrics").text


def test_signed_reads_and_what_refusals_say(client: TestClient, node: Node) -> None:
    c = node.consortium
    assert get(client, node, "/validators").status_code == 200
    other = c.add_member("Regulator", [Role.REGULATOR])
    wrong_key = dict(node.headers("GET", "/validators", who=other))
    wrong_key["X-Rongxin-Cert"] = node.member.cert.cert_id.hex()  # claims the member's cert
    response = client.get("/validators", headers=wrong_key)
    assert response.status_code == 401 and "signature does not verify" in response.json()["error"]
    headers = node.headers("GET", "/validators")
    assert client.get("/validators", headers=headers).status_code == 200
    replayed = client.get("/validators", headers=headers)
    assert replayed.status_code == 401 and "already used" in replayed.json()["error"]
    stale = node.headers("GET", "/validators", timestamp_ms=int(time.time() * 1000) - 120_000)
    response = client.get("/validators", headers=stale)
    assert response.status_code == 401 and "from the node's clock" in response.json()["error"]
    elsewhere = node.headers("GET", "/blocks/1")
    assert client.get("/blocks/2", headers=elsewhere).status_code == 401  # signed for another path
    c.submit(c.supervisor, "member.revoke", {"cert_id": other.cert.cert_id, "reason": "left"})
    response = client.get("/validators", headers=node.headers("GET", "/validators", who=other))
    assert response.status_code == 403 and "revoked from height" in response.json()["error"]
    stranger = c.key_factory()
    cert = Certificate.issue(c.root, "Not registered", "x", [Role.AUDITOR], stranger.public_key, 0)
    headers = sign_request(stranger, cert.cert_id, "GET", "/validators", chain_id=node.genesis.chain_id)
    response = client.get("/validators", headers=headers)
    assert response.status_code == 403 and "not registered" in response.json()["error"]
    # a genesis node certificate may read (node operators' tools)
    assert (
        client.get("/validators", headers=node.headers("GET", "/validators", who=c.nodes[1])).status_code
        == 200
    )
    metrics = get(client, node, "/metrics").text
    assert 'rongxin_api_auth_failures_total{status="401"}' in metrics
    assert 'rongxin_api_auth_failures_total{status="403"}' in metrics


# ------------------------------------------------------------------ submission
def test_commit_mode_returns_height_and_result(client: TestClient, node: Node) -> None:
    tx = node.anchor_tx(b"\x02" * 32)
    response = submit(client, node, tx)
    assert response.status_code == 200
    doc = response.json()
    assert doc["tx_id"] == tx.tx_id.hex() and doc["status"] == "committed"
    assert doc["result"]["status"] == "anchored" and doc["height"] >= 1
    again = submit(client, node, tx, mode="sync")  # already committed: its commit again
    assert again.status_code == 200 and again.json()["height"] == doc["height"]


def test_sync_mode_admits_or_says_why_not(fresh: Node) -> None:
    node = fresh
    with TestClient(create_app(node.service)) as client:
        node.drive = False
        tx = node.anchor_tx(b"\x03" * 32)
        response = submit(client, node, tx, mode="sync")
        assert response.json() == {"tx_id": tx.tx_id.hex(), "status": "accepted"}
        pending = get(client, node, f"/txs/{tx.tx_id.hex()}").json()
        assert pending["status"] == "pending"
        bad = node.anchor_tx(b"\x04" * 32, colour=1)
        refused = submit(client, node, bad, mode="sync")
        assert refused.status_code == 400
        assert (
            "unknown payload fields" in refused.json()["error"] and refused.json()["tx_id"] == bad.tx_id.hex()
        )
        forged = node.consortium.supervisor.sign(
            "another-chain", "anchor", {"digest": b"\x05" * 32, "kind": "w"}, 0
        )
        refused = submit(client, node, forged, mode="sync")
        assert refused.status_code == 400 and "signature is not valid" in refused.json()["error"]


def test_async_mode_queues(client: TestClient, node: Node) -> None:
    tx = node.anchor_tx(b"\x06" * 32)
    response = submit(client, node, tx, mode="async")
    assert response.status_code == 202 and response.json() == {"tx_id": tx.tx_id.hex(), "status": "queued"}
    deadline = time.monotonic() + 5
    while get(client, node, f"/txs/{tx.tx_id.hex()}").status_code == 404:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    bad = submit(client, node, node.unsent_tx(b"\x07" * 32, colour=1), mode="async")
    assert bad.status_code == 202  # async only decodes; the refusal is logged by the node


def test_commit_timeout_is_504(fresh: Node) -> None:
    node = fresh
    with TestClient(create_app(node.service)) as client:
        node.drive = False
        tx = node.anchor_tx(b"\x08" * 32)
        response = submit(client, node, tx, timeout_s=0.2)
        assert response.status_code == 504
        assert (
            response.json()["tx_id"] == tx.tx_id.hex() and "not committed within" in response.json()["error"]
        )


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([1, 2], "JSON object"),
        ({"tx": "zz"}, "'tx' must be hex"),
        ({"tx": "abc"}, "'tx' must be hex"),
        ({"tx": ""}, "'tx' must be hex"),
        ({"tx": 5}, "'tx' must be hex"),
        ({"tx": "00" * (64 * 1024 + 1)}, "'tx' must be hex"),
        ({"tx": "a0", "mode": "later"}, "'mode' is one of"),
        ({"tx": "a0", "timeout_s": 0}, "timeout_s"),
        ({"tx": "a0", "timeout_s": 1e9}, "timeout_s"),
        ({"tx": "a0", "timeout_s": True}, "timeout_s"),
        ({"tx": "a0", "extra": 1}, "unknown fields"),
        ({"tx": "a0"}, "transaction has missing or unknown fields"),
        ({"tx": "ff"}, "not canonically encoded"),
    ],
)
def test_malformed_submissions_are_400(client: TestClient, node: Node, doc: Any, message: str) -> None:
    response = post(client, node, "/txs", doc)
    assert response.status_code == 400 and message in response.json()["error"]


def test_body_that_is_not_json(client: TestClient, node: Node) -> None:
    for body in (b"{not json", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000):
        response = client.post("/txs", content=body, headers=node.headers("POST", "/txs", body))
        assert response.status_code == 400 and response.json() == {"error": "the body is not JSON"}


def test_oversized_bodies_are_refused_before_being_read(client: TestClient, node: Node) -> None:
    big = b"0" * (1024 * 1024 + 1)
    response = client.post("/txs", content=big, headers=node.headers("POST", "/txs", big))
    assert response.status_code == 413 and "over 1048576 bytes" in response.json()["error"]
    response = client.post("/txs", content=b"{}", headers={"content-length": "nope"})
    assert response.status_code == 400

    sent = []

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        for _ in range(40):
            sent.append(1)
            yield b"0" * 65536

    response = client.post("/txs", content=chunks(), headers=node.headers("POST", "/txs", b""))
    assert response.status_code == 413
    assert len(sent) <= 40


# ------------------------------------------------------------------ reads
def test_blocks_transactions_receipts(client: TestClient, node: Node) -> None:
    tx = node.anchor_tx(b"\x09" * 32)
    height = submit(client, node, tx).json()["height"]
    block = get(client, node, f"/blocks/{height}").json()
    assert tx.tx_id.hex() in [t["tx_id"] for t in block["txs"]]
    assert get(client, node, f"/blocks/hash/{block['hash']}").json() == block
    assert get(client, node, f"/blocks/hash/{block['hash'].upper()}").json() == block
    assert get(client, node, "/blocks/0").json()["height"] == 0
    found = get(client, node, f"/txs/{tx.tx_id.hex()}").json()
    assert (found["height"], found["tx"]["type"], found["result"]["status"]) == (height, "anchor", "anchored")
    assert bytes.fromhex(found["raw"]) == tx.to_bytes()
    doc = get(client, node, f"/receipts/{tx.tx_id.hex()}").json()
    receipt = Receipt.from_bytes(bytes.fromhex(doc["receipt"]))
    info = receipt.verify(node.genesis)
    assert info.tx_id == tx.tx_id and doc["summary"]["height"] == info.height == height
    assert doc["summary"]["block_hash"] == info.block_hash.hex()


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/blocks/9999", 404, "no block at height 9999"),
        ("/blocks/abc", 400, "a height is a decimal number"),
        ("/blocks/-1", 400, "a height is a decimal number"),
        ("/blocks/99999999999999999999999", 400, "a height is a decimal number"),
        ("/blocks/hash/1234", 400, "64 hex digits"),
        ("/blocks/hash/" + "00" * 32, 404, "no committed block"),
        ("/txs/" + "00" * 32, 404, "knows no transaction"),
        ("/txs/xyz", 400, "a transaction id must be 64 hex digits"),
        ("/txs/" + "g" * 64, 400, "64 hex digits"),
        ("/receipts/" + "00" * 32, 404, "not committed on this node"),
        ("/receipts/00", 400, "64 hex digits"),
        ("/anchors/" + "00" * 32, 404, "not anchored"),
        ("/anchors/" + "0" * 65, 400, "64 hex digits"),
        ("/accounts/00", 400, "64 hex digits"),
        ("/no/such/route", 404, "Not Found"),
    ],
)
def test_bad_and_unknown_reads(client: TestClient, node: Node, path: str, status: int, message: str) -> None:
    response = get(client, node, path)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_anchor_lookup_returns_the_original_receipt(client: TestClient, node: Node) -> None:
    digest = b"\x0a" * 32
    first = submit(client, node, node.anchor_tx(digest)).json()
    second = submit(client, node, node.anchor_tx(digest)).json()
    assert second["result"] == {
        "status": "already_anchored",
        "tx_id": first["tx_id"],
        "height": first["height"],
    }
    doc = get(client, node, f"/anchors/{digest.hex()}").json()
    assert doc["anchor"]["tx_id"] == first["tx_id"] and doc["anchor"]["kind"] == "work"
    assert doc["anchor"]["sender"] == node.member.cert.cert_id.hex() and doc["batch"] is None
    receipt = Receipt.from_bytes(bytes.fromhex(doc["receipt"]))
    assert verify_anchored_digest(receipt, node.genesis, digest, 0, []).height == first["height"]


def test_batch_leaves_are_found_with_their_proof(client: TestClient, node: Node) -> None:
    leaves = [bytes([i]) * 32 for i in range(20, 27)]
    root, proofs = batch_proofs(leaves)
    doc = {"root": root.hex(), "digests": [d.hex() for d in leaves]}
    early = post(client, node, "/anchors/batches", doc)
    assert early.status_code == 400 and "no committed anchor" in early.json()["error"]
    submit(client, node, node.anchor_tx(root, count=len(leaves)))
    assert post(client, node, "/anchors/batches", doc).json()["count"] == 7
    for bad, message in [
        ({"root": root.hex(), "digests": [d.hex() for d in leaves[1:]]}, "batch of 7 digests"),
        ({"root": root.hex(), "digests": "x"}, "'digests' must be a list"),
        ({"root": "00", "digests": []}, "'root' must be 64 hex digits"),
        ({"root": root.hex(), "digests": ["zz"]}, "each digest must be 64 hex digits"),
    ]:
        response = post(client, node, "/anchors/batches", bad)
        assert response.status_code == 400 and message in response.json()["error"]
    found = get(client, node, f"/anchors/{leaves[5].hex()}").json()
    batch = found["batch"]
    assert (batch["root"], batch["index"], batch["count"]) == (root.hex(), 5, 7)
    path = [bytes.fromhex(p) for p in batch["path"]]
    assert path == proofs[5]
    receipt = Receipt.from_bytes(bytes.fromhex(found["receipt"]))
    assert verify_anchored_digest(receipt, node.genesis, leaves[5], 5, path).height >= 1


def test_checkpoint_pins_receipts(client: TestClient, node: Node) -> None:
    tx = node.anchor_tx(b"\x0b" * 32)
    submit(client, node, tx)
    submit(client, node, node.anchor_tx(b"\x0c" * 32))
    doc = get(client, node, "/checkpoint").json()
    cp = Checkpoint.from_bytes(bytes.fromhex(doc["checkpoint"]))
    info = verify_checkpoint(cp, node.genesis)
    assert (info.height, info.block_hash.hex(), info.epoch) == (doc["height"], doc["block_hash"], 0)
    receipt = Receipt.from_bytes(
        bytes.fromhex(get(client, node, f"/receipts/{tx.tx_id.hex()}").json()["receipt"])
    )
    assert receipt.verify(node.genesis, cp).tx_id == tx.tx_id


def test_validators_accounts_net_info_metrics(fresh: Node) -> None:
    node = fresh
    with TestClient(create_app(node.service)) as client:
        validators = get(client, node, "/validators").json()
        assert validators["epoch"] == 0 and len(validators["current"]["validators"]) == 4
        assert validators["history"][0]["epoch"] == 0
        me = node.member.cert.cert_id.hex()
        assert get(client, node, f"/accounts/{me}").json()["next_nonce"] == 1
        submit(client, node, node.anchor_tx(b"\x0d" * 32))
        account = get(client, node, f"/accounts/{me}").json()
        assert (account["next_nonce"], account["subject"]) == (2, "County media center")
        assert get(client, node, "/net_info").json()["listen"] == ["127.0.0.1:26656"]
        text = get(client, node, "/metrics").text
        assert 'rongxin_api_requests_total{route="/accounts/{cert_id}",status="200"}' in text
        assert "rongxin_api_subscriptions" in text


def test_a_node_error_is_a_json_500_without_details(fresh: Node) -> None:
    node = fresh

    def broken() -> dict[str, Any]:
        raise RuntimeError("secret detail")

    node.service._net_info = broken
    with TestClient(create_app(node.service), raise_server_exceptions=False) as c:
        response = get(c, node, "/net_info")
    assert response.status_code == 500
    assert response.json() == {"error": "internal error; the node's log has the details"}


def test_submit_validation_error_from_the_host(fresh: Node) -> None:
    node = fresh

    async def refuse(raw: bytes) -> bytes:
        raise ValidationError("the mempool is full; retry later")

    node.service._submit = refuse
    with TestClient(create_app(node.service)) as c:
        response = submit(c, node, node.anchor_tx(b"\x0e" * 32), mode="sync")
    assert response.status_code == 400 and response.json()["error"] == "the mempool is full; retry later"


def test_batch_admission(client: TestClient, node: Node) -> None:
    good = [node.anchor_tx(bytes([0x30 + i]) * 32) for i in range(3)]
    bad = node.unsent_tx(b"\x40" * 32, colour=1)
    doc = post(client, node, "/txs/batch", {"txs": [t.to_bytes().hex() for t in [*good, bad]]}).json()
    assert doc["accepted"] == 3
    assert doc["tx_ids"] == [t.tx_id.hex() for t in good] + [None]
    assert doc["refused"][0]["index"] == 3 and "unknown payload fields" in doc["refused"][0]["reason"]
    for body, message in [
        ({"txs": []}, "a batch holds 1 to"),
        ({"txs": ["zz"]}, "transaction 0 is not hex"),
        ({"txs": "00"}, "the body is"),
        ({"txs": ["00"], "more": 1}, "the body is"),
    ]:
        response = post(client, node, "/txs/batch", body)
        assert response.status_code == 400 and message in response.json()["error"]
