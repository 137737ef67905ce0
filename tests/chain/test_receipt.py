"""Receipts: built from a node's store, verified offline, every tampering rejected."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chain import codec
from chain.localnet import LocalConsortium
from chain.receipt import Receipt, ReceiptError, build_receipt, verify_receipt
from chain.types import Genesis, Role


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    c = LocalConsortium.create(tmp_path_factory.mktemp("receipt"), nodes=5)
    yield c
    c.close()


@pytest.fixture(scope="module")
def receipt(consortium: LocalConsortium) -> Receipt:
    member = consortium.add_member("County media center", [Role.MEDIA_CENTER])
    for i in range(3):  # a block with several transactions, so the inclusion path is not empty
        tx = member.sign(consortium.genesis.chain_id, "anchor", {"digest": bytes([i]) * 32, "kind": "w"}, 5)
        consortium.net.submit(tx.to_bytes())
    last = member.sign(consortium.genesis.chain_id, "anchor", {"digest": b"z" * 32, "kind": "w"}, 5)
    tx_id = consortium.net.submit(last.to_bytes())
    consortium.net.wait(tx_id)
    return consortium.receipt(tx_id)


def test_receipt_verifies_offline_from_bytes(consortium: LocalConsortium, receipt: Receipt) -> None:
    genesis = Genesis.from_bytes(consortium.genesis.to_bytes())  # only the genesis document is needed
    info = verify_receipt(Receipt.from_bytes(receipt.to_bytes()), genesis)
    assert info.transaction.payload["digest"] == b"z" * 32
    assert info.sender.subject == "County media center"
    assert receipt.tree_size > 1 and len(receipt.path) >= 1
    store = consortium.replicas[0].store
    assert store.tx_location(info.tx_id) == (info.height, receipt.index)
    assert store.block(info.height).hash == info.block_hash  # type: ignore[union-attr]


def test_every_node_builds_an_equivalent_receipt(consortium: LocalConsortium, receipt: Receipt) -> None:
    info = receipt.verify(consortium.genesis)
    for r in consortium.replicas[1:]:
        other = build_receipt(r.store, info.tx_id)
        assert other.verify(consortium.genesis).block_hash == info.block_hash


def test_receipt_of_unknown_transaction(consortium: LocalConsortium) -> None:
    with pytest.raises(ReceiptError) as e:
        build_receipt(consortium.replicas[0].store, b"\x00" * 32)
    assert e.value.reason == "not-committed"


def test_other_chain_genesis_is_refused(receipt: Receipt, tmp_path: Path) -> None:
    other = LocalConsortium.create(tmp_path, nodes=1, chain_id="another-chain")
    try:
        with pytest.raises(ReceiptError) as e:
            receipt.verify(other.genesis)
        assert e.value.reason == "wrong-chain"
        same_id = LocalConsortium.create(tmp_path / "b", nodes=4, chain_id=receipt.chain_id)
        try:  # same chain id, other consortium: its root did not sign the sender
            with pytest.raises(ReceiptError) as e:
                receipt.verify(same_id.genesis)
            assert e.value.reason == "sender-certificate"
        finally:
            same_id.close()
    finally:
        other.close()


def test_genesis_with_another_hash_is_refused(consortium: LocalConsortium, receipt: Receipt) -> None:
    """Same chain id, root key and validators, but another genesis document: the votes
    signed the genesis hash, so the quorum certificate does not count under it."""
    g = consortium.genesis
    for other in (
        dataclasses.replace(g, consortium=g.consortium + " (copy)"),
        dataclasses.replace(g, timestamp_ms=g.timestamp_ms + 1),
    ):
        assert other.hash != g.hash and other.validators() == g.validators()
        with pytest.raises(ReceiptError) as e:
            receipt.verify(other)
        assert e.value.reason == "qc-signature"


def _leaves(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, i))
    else:
        yield path, obj


def _mutated(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1] + ([value - 1] if value > 0 else [])
    if isinstance(value, bytes):
        if not value:
            return [b"\x00"]
        return [bytes([value[0] ^ 1]) + value[1:], value[:-1] + bytes([value[-1] ^ 0x80])]
    if isinstance(value, str):
        return [value + "x"]
    if value is None:
        return [0]
    raise AssertionError(type(value))


def test_tampering_with_any_field_is_rejected(consortium: LocalConsortium, receipt: Receipt) -> None:
    doc = receipt.to_dict()
    reasons: dict[str, int] = {}
    count = 0
    for path, value in _leaves(doc):
        if path == ("format",):
            continue
        for bad in _mutated(value):
            changed = copy.deepcopy(doc)
            target = changed
            for p in path[:-1]:
                target = target[p]
            target[path[-1]] = bad
            with pytest.raises(ReceiptError) as e:
                Receipt.from_bytes(codec.encode(changed)).verify(consortium.genesis)
            reasons[e.value.reason] = reasons.get(e.value.reason, 0) + 1
            count += 1
    assert count > 100
    # each layer of the proof is exercised by some tampering
    for reason in ("inclusion", "header-link", "qc-signature", "sender-certificate", "qc-block", "malformed"):
        assert reason in reasons, (reason, reasons)


def _renonce(raw: bytes) -> bytes:
    tx = codec.decode(raw)
    tx["nonce"] += 1
    return codec.encode(tx)


def test_structural_tampering(consortium: LocalConsortium, receipt: Receipt) -> None:
    g = consortium.genesis
    doc = receipt.to_dict()
    cases: dict[str, Any] = {
        "drop a QC signature": lambda d: d["qc"][2].pop(),
        "duplicate a QC signature": lambda d: d["qc"][2].__setitem__(0, d["qc"][2][1]),
        "drop the top header": lambda d: d["headers"].pop(),
        "drop the first header": lambda d: d["headers"].pop(0),
        "swap headers": lambda d: d["headers"].reverse(),
        "drop a path step": lambda d: d["path"].pop(),
        "extra field": lambda d: d.__setitem__("extra", 1),
        "missing field": lambda d: d.pop("qc"),
        "re-encoded transaction with another nonce": lambda d: d.__setitem__("tx", _renonce(d["tx"])),
        "another member's certificate": lambda d: d["sender_certificate"].__setitem__(
            "subject", d["sender_certificate"]["subject"] + "!"
        ),
    }
    expected = {
        "drop a QC signature": "qc-quorum",
        "duplicate a QC signature": "qc-quorum",
        "drop a path step": "inclusion",
        "extra field": "malformed",
        "missing field": "malformed",
        "re-encoded transaction with another nonce": "tx-signature",
        "another member's certificate": "sender-certificate",
    }
    for name, edit in cases.items():
        changed = copy.deepcopy(doc)
        edit(changed)
        with pytest.raises(ReceiptError) as e:
            Receipt.from_bytes(codec.encode(changed)).verify(g)
        if name in expected:
            assert e.value.reason == expected[name], name


def test_byte_flips_of_serialized_receipt_are_rejected(consortium: LocalConsortium, receipt: Receipt) -> None:
    raw = receipt.to_bytes()
    step = 1  # every byte of the encoding
    for i in range(0, len(raw), step):
        bad = raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :]
        with pytest.raises(ReceiptError):
            Receipt.from_bytes(bad).verify(consortium.genesis)


@pytest.mark.parametrize("data", [b"", b"\xff", codec.encode([1, 2]), codec.encode({"format": "x"})])
def test_garbage_is_malformed(data: bytes) -> None:
    with pytest.raises(ReceiptError) as e:
        Receipt.from_bytes(data)
    assert e.value.reason == "malformed"
