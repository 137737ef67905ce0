"""The explorer over a real node API: pages, search, anchored digests and the receipt checker."""

from __future__ import annotations

import json

import pytest

from chain.localnet import LocalConsortium
from chain.types import Role
from rongxin.platform.chainview import classify_query
from tests.rongxin.platform.conftest import Stack, client_of, csrf_of


@pytest.fixture(scope="module")
def anchored(stack: Stack) -> dict[str, object]:
    cli = stack.chain.client
    assert cli is not None
    single = cli.anchor(b"\x11" * 32, "work-fingerprint")
    batch, proofs = cli.anchor_batch([b"\x22" * 32, b"\x33" * 32, b"\x44" * 32], "work-fingerprints")
    return {"single": single, "batch": batch, "proofs": proofs}


def test_overview_blocks_and_chart(stack: Stack, anchored: dict[str, object]) -> None:
    c = client_of(stack, "regulator")
    page = c.get("/explorer")
    assert page.status_code == 200
    assert "<svg" in page.text and 'id="blocks"' in page.text
    info = anchored["single"].verify(stack.node.genesis)
    block = c.get(f"/explorer/blocks/{info.height}")
    assert info.tx_id.hex()[:16] in block.text and block.status_code == 200
    tx = c.get(f"/explorer/txs/{info.tx_id.hex()}")
    assert tx.status_code == 200 and ("11" * 32) in tx.text
    assert c.get("/explorer/blocks/999999").status_code == 404
    assert c.get("/explorer/txs/not-hex").status_code == 404
    assert "node-0" in c.get("/explorer/validators").text
    nodes = c.get("/explorer/nodes").text
    assert stack.node_url in nodes and "在线" in nodes


def test_search_routes_each_kind_of_query(stack: Stack, anchored: dict[str, object]) -> None:
    c = client_of(stack, "auditor")
    info = anchored["single"].verify(stack.node.genesis)
    cases = {
        str(info.height): f"/explorer/blocks/{info.height}",
        info.block_hash.hex(): f"/explorer/blocks/{info.height}",
        info.tx_id.hex(): f"/explorer/txs/{info.tx_id.hex()}",
        ("33" * 32).upper(): f"/explorer/anchors/{'33' * 32}",
    }
    for q, where in cases.items():
        r = c.get("/explorer/search", params={"q": q}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == where, q
    for q in ("ee" * 32, "999999", "<script>alert(1)</script>", ""):
        r = c.get("/explorer/search", params={"q": q}, follow_redirects=False)
        assert r.status_code == 404, q
        assert "<script>alert(1)</script>" not in r.text
    assert classify_query("12345678901234567890") == ("unknown", "12345678901234567890")


def test_anchor_page_and_receipt_checker(stack: Stack, anchored: dict[str, object]) -> None:
    c = client_of(stack, "legal-staff")
    page = c.get(f"/explorer/anchors/{'33' * 32}")
    assert page.status_code == 200 and 'id="verified"' in page.text
    receipt = c.get(f"/explorer/anchors/{'33' * 32}/receipt").content
    proof = c.get(f"/explorer/anchors/{'33' * 32}/proof").content
    assert json.loads(proof)["index"] == 1
    token = csrf_of(c.get("/explorer/receipts").text)

    def check(files: dict[str, tuple[str, bytes]], **data: str) -> tuple[int, str]:
        r = c.post("/explorer/receipts", files=files, data={"csrf": token, **data})
        return r.status_code, r.text

    status, text = check({"receipt": ("r.cbor", receipt)})
    assert status == 200, text[text.find("receipt-bad") : text.find("receipt-bad") + 400]
    ok, text = check({"receipt": ("r.cbor", receipt), "proof": ("p.json", proof)})
    assert ok == 200 and 'id="receipt-ok"' in text
    assert check({"receipt": ("r.hex", receipt.hex().encode())})[0] == 200
    # the same receipt does not prove another digest of the batch at that place
    status, text = check({"receipt": ("r.cbor", receipt)}, digest="22" * 32)
    assert status == 422 and 'id="receipt-bad"' in text
    # truncated, flipped, empty, not CBOR, another chain's receipt
    flipped = bytearray(receipt)
    flipped[len(flipped) // 2] ^= 0x01
    other = LocalConsortium.create(
        stack.config.data_dir / "other-chain", nodes=4
    )  # same chain id, other validators
    try:
        foreign = other.anchor(other.add_member("Another center", [Role.MEDIA_CENTER]), b"\x55" * 32, "work")
    finally:
        other.close()
    bad = [receipt[:-7], bytes(flipped), b"", b"\x00" * 100, b"<html>", foreign.to_bytes()]
    for blob in bad:
        status, text = check({"receipt": ("r.cbor", blob)})
        assert status == 422 and 'id="receipt-bad"' in text, blob[:20]
    status, text = check({"receipt": ("r.cbor", receipt), "proof": ("p.json", b"{not json")})
    assert status == 422 and "proof file" in text
    events = [e for e in stack.app.state.platform.audit.read() if e["event"] == "receipt.verify"]
    assert {e["ok"] for e in events} == {True, False}
