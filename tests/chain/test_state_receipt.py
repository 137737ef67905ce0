"""State receipts: the value at a key (or its absence) in a committed block's state,
checked offline against the genesis; every forgery refused with the check that failed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chain import codec
from chain.contracts.anchor import anchor_key
from chain.errors import ReceiptError
from chain.localnet import LocalConsortium
from chain.state_receipt import MAX_KEY_BYTES, StateReceipt, build_state_receipt
from chain.state_tree import bucket_of
from chain.types import Role


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    c = LocalConsortium.create(tmp_path_factory.mktemp("state-receipt"), nodes=4)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    for i in range(40):
        c.anchor(m, bytes([i]) * 32, "work")
    yield c
    c.close()


def _receipt(c: LocalConsortium, key: bytes) -> StateReceipt:
    r = c.replicas[0]
    return build_state_receipt(r.store, r.app.state, key)


def test_present_and_absent_keys_verify_with_the_value(chain: LocalConsortium) -> None:
    key = anchor_key(bytes([5]) * 32)
    receipt = StateReceipt.from_bytes(_receipt(chain, key).to_bytes())  # through bytes
    answer = receipt.verify(chain.genesis)
    assert answer.value == chain.replicas[0].app.state.get(key) is not None
    assert codec.decode(answer.value)["kind"] == "work"
    assert answer.height == chain.replicas[0].store.head_height()
    assert receipt.claims() == (answer.height, answer.block_hash, answer.value)
    missing = anchor_key(b"\xee" * 32)
    assert _receipt(chain, missing).verify(chain.genesis).value is None


def test_forgeries_are_refused(chain: LocalConsortium) -> None:
    key = anchor_key(bytes([7]) * 32)
    good = _receipt(chain, key)
    entries = good.bucket["entries"]
    assert entries, "the key's bucket holds it"
    # another value for the key
    forged = [[k, (v + b"x") if k == key else v] for k, v in entries]
    bad = StateReceipt(
        good.chain_id, key, {**good.bucket, "entries": forged}, good.headers, good.qc, good.epochs
    )
    with pytest.raises(ReceiptError) as e:
        bad.verify(chain.genesis)
    assert e.value.reason == "state"
    # the key dropped from its bucket, to claim it is absent
    hidden = [[k, v] for k, v in entries if k != key]
    bad = StateReceipt(
        good.chain_id, key, {**good.bucket, "entries": hidden}, good.headers, good.qc, good.epochs
    )
    with pytest.raises(ReceiptError, match="root mismatch"):
        bad.verify(chain.genesis)
    # the proof of another key's bucket
    other = next(
        anchor_key(bytes([i]) * 32)
        for i in range(40)
        if bucket_of(anchor_key(bytes([i]) * 32)) != bucket_of(key)
    )
    bad = StateReceipt(good.chain_id, other, good.bucket, good.headers, good.qc, good.epochs)
    with pytest.raises(ReceiptError, match="bucket"):
        bad.verify(chain.genesis)
    # entries out of order
    if len(entries) > 1:
        bad = StateReceipt(
            good.chain_id, key, {**good.bucket, "entries": entries[::-1]}, good.headers, good.qc, good.epochs
        )
        with pytest.raises(ReceiptError, match="increasing"):
            bad.verify(chain.genesis)
    # a header changed: the QC no longer certifies it
    headers = [list(h) for h in good.headers]
    headers[0][5] = b"\x00" * 32
    with pytest.raises(ReceiptError):
        StateReceipt(good.chain_id, key, good.bucket, tuple(headers), good.qc, good.epochs).verify(
            chain.genesis
        )
    # no QC signatures
    with pytest.raises(ReceiptError):
        StateReceipt(
            good.chain_id, key, good.bucket, good.headers, [good.qc[0], good.qc[1], []], good.epochs
        ).verify(chain.genesis)
    # another chain's genesis
    other_chain = LocalConsortium.create(chain.directory / "other", nodes=4, chain_id="another-chain")
    with pytest.raises(ReceiptError) as e:
        good.verify(other_chain.genesis)
    assert e.value.reason == "wrong-chain"
    other_chain.close()


def test_malformed_bytes_and_keys_are_refused(chain: LocalConsortium) -> None:
    raw = _receipt(chain, b"k").to_bytes()
    for bad in (
        b"",
        raw[:-3],
        b"\xa0",
        codec.encode({"format": "rongxin-state/1"}),
        raw.replace(b"rongxin-state/1", b"rongxin-state/9"),
    ):
        with pytest.raises(ReceiptError) as e:
            StateReceipt.from_bytes(bad)
        assert e.value.reason == "malformed"
    with pytest.raises(ReceiptError, match="at most"):
        _receipt(chain, b"k" * (MAX_KEY_BYTES + 1))
