"""InProcessLedger: the Ledger protocol over a consortium running in this process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.client import ClientError, InProcessLedger, Ledger
from chain.errors import CommitTimeout, ValidationError
from chain.localnet import LocalConsortium
from chain.types import Role


@pytest.fixture
def consortium(tmp_path: Path) -> Iterator[LocalConsortium]:
    c = LocalConsortium.create(tmp_path, nodes=4)
    yield c
    c.close()


@pytest.fixture
def ledger(consortium: LocalConsortium) -> InProcessLedger:
    return InProcessLedger(consortium, consortium.add_member("County media center", [Role.MEDIA_CENTER]))


def test_it_is_a_ledger(ledger: InProcessLedger) -> None:
    assert isinstance(ledger, Ledger)


def test_anchor_returns_a_verified_receipt_and_the_original_when_anchored_again(
    ledger: InProcessLedger,
) -> None:
    first = ledger.anchor(b"\x01" * 32, "work", meta=b"\x02" * 32)
    info = first.verify(ledger.genesis)
    assert info.transaction.payload == {"digest": b"\x01" * 32, "kind": "work", "meta": b"\x02" * 32}
    again = ledger.anchor(b"\x01" * 32, "work")
    assert again.tx == first.tx
    assert ledger.receipt(info.tx_id).verify(ledger.genesis).tx_id == info.tx_id


@pytest.mark.parametrize(
    ("digest", "kind", "meta"),
    [(b"short", "work", None), (b"\x01" * 32, "", None), (b"\x01" * 32, "w", b"x")],
)
def test_bad_anchor_arguments(ledger: InProcessLedger, digest: bytes, kind: str, meta: bytes | None) -> None:
    with pytest.raises(ClientError):
        ledger.anchor(digest, kind, meta)


def test_submit_then_wait(ledger: InProcessLedger) -> None:
    tx = ledger.sign("anchor", {"digest": b"\x03" * 32, "kind": "work"})
    tx_id = ledger.submit(tx.to_bytes())
    assert tx_id == tx.tx_id
    height = ledger.wait(tx_id)
    assert ledger.receipt(tx_id).verify(ledger.genesis).height == height
    with pytest.raises(ValidationError, match="already committed"):
        ledger.submit(tx.to_bytes())


def test_wait_for_what_cannot_commit(ledger: InProcessLedger) -> None:
    ledger.member.nonce += 1  # a gap: the transaction waits for a predecessor that never comes
    tx = ledger.sign("anchor", {"digest": b"\x04" * 32, "kind": "work"})
    ledger.submit(tx.to_bytes())
    with pytest.raises(CommitTimeout) as e:
        ledger.wait(tx.tx_id, timeout_s=5)
    assert e.value.tx_id == tx.tx_id


def test_receipt_of_an_unknown_transaction(ledger: InProcessLedger) -> None:
    with pytest.raises(ClientError) as e:
        ledger.receipt(b"\x00" * 32)
    assert e.value.status == 404 and "not-committed" in e.value.reason


def test_subscribe_yields_committed_events_and_drains_the_mempool(ledger: InProcessLedger) -> None:
    ledger.anchor(b"\x05" * 32, "work")
    pending = ledger.sign("anchor", {"digest": b"\x06" * 32, "kind": "work"})
    ledger.submit(pending.to_bytes())  # not committed yet: subscribe runs the network for it
    events = list(ledger.subscribe(["tx"], {"sender": ledger.member.cert.cert_id.hex()}))
    assert [e["anchor_digest"] for e in events] == ["05" * 32, "06" * 32]
    blocks = list(ledger.subscribe(["block"]))
    assert [b["height"] for b in blocks] == sorted({b["height"] for b in blocks}) and blocks
    assert all("tx_ids" not in b for b in blocks)
    with_ids = list(ledger.subscribe(["block"], block_tx_ids=True))
    assert [b["height"] for b in with_ids] == [b["height"] for b in blocks]
    committed = [t for b in with_ids for t in b["tx_ids"]]
    assert [e["tx_id"] for e in events] == [t for t in committed if t in {e["tx_id"] for e in events}]
    assert all(len(b["tx_ids"]) == b["txs"] for b in with_ids)
    assert list(ledger.subscribe(["validators"])) == []


def test_send_and_proven_state_reads(ledger: InProcessLedger) -> None:
    from chain import codec
    from chain.contracts.anchor import anchor_key

    done = ledger.send("anchor", {"digest": b"\x05" * 32, "kind": "work"})
    assert done["height"] >= 1 and len(bytes.fromhex(done["tx_id"])) == 32
    value = ledger.state(anchor_key(b"\x05" * 32))
    assert value is not None and codec.decode(value)["tx_id"].hex() == done["tx_id"]
    assert ledger.state(anchor_key(b"\x06" * 32)) is None
    with pytest.raises(ValidationError):
        ledger.send("anchor", {"digest": b"short", "kind": "work"})
    assert ledger.send("anchor", {"digest": b"\x07" * 32, "kind": "work"})["height"] >= done["height"]
    with pytest.raises(ClientError, match="at most"):
        ledger.state(b"k" * 5000)
