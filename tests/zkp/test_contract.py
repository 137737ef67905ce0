from typing import Any

import pytest

from chain import codec
from chain.executor import Executor, default_registry, genesis_state
from chain.state import State
from chain.types import Role, ValidationError
from tests.chain.ledger_fixtures import Consortium, Member, consortium
from tests.zkp.transfer_fixtures import make_deal
from zkp.auditor import AuditorKey
from zkp.contract import (
    NULL,
    TransferRecord,
    auditor_payload,
    load_auditor,
    load_record,
    register_contracts,
    register_payload,
    transfer_records,
)
from zkp.errors import ZkpError
from zkp.transfer import OwnerKey, OwnershipRecord, audit, prove_key_possession, prove_transfer

WORK = b"\x42" * 32
CHAIN = "test-chain"


class Ledger:
    def __init__(self) -> None:
        self.c: Consortium = consortium()
        reg = default_registry(self.c.genesis)
        register_contracts(reg)
        self.ex = Executor(self.c.genesis, reg)
        self.state: State = genesis_state(self.c.genesis)
        self.height = 0
        self.auditor = AuditorKey.generate()
        self.owner = OwnerKey.generate()

    def run(self, member: Member, type_: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.height += 1
        tx = member.tx(type_, payload)
        result = self.ex.execute(self.state, [tx.to_bytes()], self.height, 1000 + self.height)
        self.state.apply(result.changes)
        assert self.state.root == result.state_root
        return result.results[0]

    def refuse(self, member: Member, type_: str, payload: dict[str, Any], reason: str) -> None:
        root = self.state.root
        tx = member.tx(type_, payload)
        with pytest.raises(ValidationError, match=reason):
            self.ex.execute(self.state, [tx.to_bytes()], self.height + 1, 2000)
        member.nonce -= 1  # the refused transaction never used its nonce (nonces are sequential)
        assert self.state.root == root

    def setup(self) -> None:
        assert (
            self.run(self.c.supervisor, "zkp.auditor", auditor_payload(self.auditor, CHAIN))["status"]
            == "auditor_set"
        )
        assert self.run(self.c.media, "zkp.register", register_payload(WORK, self.owner, CHAIN))["seq"] == 0

    def record(self) -> OwnershipRecord:
        record = load_record(self.state, WORK)
        assert record is not None
        return record

    def transfer_payload(
        self, seller: OwnerKey, record: OwnershipRecord | None = None, **kw: Any
    ) -> tuple[OwnerKey, dict[str, Any]]:
        buyer = OwnerKey.generate()
        pop = prove_key_possession(buyer, kw.pop("chain", CHAIN), WORK)
        t = prove_transfer(
            CHAIN,
            record or self.record(),
            seller,
            buyer.public,
            pop,
            kw.pop("auditor", self.auditor.public),
            1000,
            [(b"author", 700), (b"center", 300)],
        )
        return buyer, t.to_payload()


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    led = Ledger()
    led.setup()
    return led


def test_register_transfer_and_audit_through_the_ledger() -> None:
    led = Ledger()
    led.setup()
    assert load_auditor(led.state) == led.auditor.public
    buyer, payload = led.transfer_payload(led.owner)
    result = led.run(led.c.media, "zkp.transfer", payload)
    assert result == {"status": "transferred", "work": WORK, "seq": 1}
    assert led.record() == OwnershipRecord(WORK, 1, buyer.public)
    assert led.state.get(NULL + payload["nullifier"]) is not None
    # The buyer sells on: a second transfer from the new record.
    second_buyer, payload2 = led.transfer_payload(buyer)
    led.run(led.c.media, "zkp.transfer", payload2)
    assert led.record().owner == second_buyer.public
    records = list(transfer_records(led.state, WORK))
    assert [r.record.seq for r in records] == [0, 1]
    for rec in records:
        report = audit(rec.transfer, led.auditor)
        assert report.price == 1000 and report.shares == ((b"author", 700), (b"center", 300))
    # Double transfer: the first seller tries again from the record they no longer hold.
    _, again = led.transfer_payload(led.owner, OwnershipRecord(WORK, 0, led.owner.public))
    led.refuse(led.c.media, "zkp.transfer", again, "nullifier is already spent")
    # Replay of the already applied transfer (by another sender, with a fresh nonce).
    led.refuse(led.c.media, "zkp.transfer", payload, "nullifier is already spent")


def test_double_transfer_in_one_block_is_refused() -> None:
    led = Ledger()
    led.setup()
    _, first = led.transfer_payload(led.owner)
    _, second = led.transfer_payload(led.owner)
    txs = [led.c.media.tx("zkp.transfer", p).to_bytes() for p in (first, second)]
    with pytest.raises(ValidationError, match=r"transaction 1 .*nullifier"):
        led.ex.execute(led.state, txs, 1, 2000)
    chosen, rejected = led.ex.select(led.state, txs, 1, 2000, 10, 1 << 20)
    assert chosen == txs[:1] and len(rejected) == 1 and "nullifier" in rejected[0][1]


def test_invalid_transfers_are_refused(ledger: Ledger) -> None:
    led = ledger
    _, good = led.transfer_payload(led.owner)
    thief = OwnerKey.generate()
    _, stolen = led.transfer_payload(thief, OwnershipRecord(WORK, 0, thief.public))
    other_auditor = AuditorKey.generate()
    _, wrong_auditor = led.transfer_payload(led.owner, auditor=other_auditor.public)
    _, wrong_chain_pop = led.transfer_payload(led.owner, chain="other-chain")
    cases = {
        "not the registered auditor key": wrong_auditor,
        "transfer proof refused": stolen,
        "key possession": wrong_chain_pop,
        "malformed transfer": good | {"range_proof": good["range_proof"][:-1]} | {"shares": []},
        "does not verify": good | {"range_proof": good["range_proof"][:-32] + bytes(31) + b"\x01"},
        "work is not registered": good | {"work": b"\x01" * 32},
    }
    for reason, payload in cases.items():
        led.refuse(led.c.media, "zkp.transfer", payload, reason)
    led.refuse(led.c.regulator, "zkp.transfer", good, "may not send")
    # The good one still goes through after all those refusals.
    assert led.run(led.c.media, "zkp.transfer", good)["status"] == "transferred"


def test_every_tampered_field_is_refused_by_the_ledger() -> None:
    deal = make_deal()
    led = Ledger()
    led.auditor, led.owner = deal.auditor, deal.seller
    led.run(led.c.supervisor, "zkp.auditor", auditor_payload(led.auditor, CHAIN))
    led.run(led.c.media, "zkp.register", register_payload(deal.record.work, led.owner, CHAIN))
    good = deal.transfer.to_payload()
    swaps = {"nullifier": "new_owner", "new_owner": "nullifier", "auditor": "new_owner"}
    for name, other in swaps.items():
        led.refuse(led.c.media, "zkp.transfer", good | {name: good[other]}, "refused")
    for name in ("new_owner_pop", "range_proof", "proof"):
        flipped = bytearray(good[name])
        flipped[-1] ^= 1
        led.refuse(led.c.media, "zkp.transfer", good | {name: bytes(flipped)}, "refused|malformed")
    shares = [dict(s) for s in good["shares"]]
    shares[0]["c"] = [shares[0]["c"][1], shares[0]["c"][0], *shares[0]["c"][2:]]
    led.refuse(led.c.media, "zkp.transfer", good | {"shares": shares}, "refused")
    led.refuse(
        led.c.media,
        "zkp.transfer",
        good | {"price": {"c": good["shares"][0]["c"], "d": good["shares"][0]["d"]}},
        "refused",
    )


def test_auditor_key_is_replaced_only_with_the_current_auditors_consent() -> None:
    led = Ledger()
    led.setup()
    thief = AuditorKey.generate()
    led.refuse(led.c.supervisor, "zkp.auditor", auditor_payload(thief, CHAIN), "consent")
    forged = auditor_payload(thief, CHAIN, previous=thief)  # consent by the wrong key
    led.refuse(led.c.supervisor, "zkp.auditor", forged, "consent")
    replay = auditor_payload(thief, CHAIN) | {
        "consent": auditor_payload(AuditorKey.generate(), CHAIN, previous=led.auditor)["consent"]
    }
    led.refuse(led.c.supervisor, "zkp.auditor", replay, "consent")  # consent for another key
    successor = AuditorKey.generate()
    led.run(led.c.supervisor, "zkp.auditor", auditor_payload(successor, CHAIN, previous=led.auditor))
    assert load_auditor(led.state) == successor.public


def test_preconditions_roles_and_registration() -> None:
    led = Ledger()
    _, payload = led.transfer_payload(led.owner, OwnershipRecord(WORK, 0, led.owner.public))
    led.refuse(led.c.media, "zkp.transfer", payload, "no auditor key")
    led.refuse(led.c.media, "zkp.auditor", auditor_payload(led.auditor, CHAIN), "may not send")
    led.refuse(led.c.regulator, "zkp.auditor", auditor_payload(led.auditor, CHAIN), "may not send")
    led.refuse(
        led.c.supervisor, "zkp.auditor", auditor_payload(led.auditor, "other-chain"), "auditor key refused"
    )
    bad_key = auditor_payload(led.auditor, CHAIN) | {"key": b"\x02" + bytes(32)}
    led.refuse(led.c.supervisor, "zkp.auditor", bad_key, "auditor key refused")
    led.refuse(led.c.supervisor, "zkp.auditor", {"key": b"x"}, "payload field")
    led.run(led.c.supervisor, "zkp.auditor", auditor_payload(led.auditor, CHAIN))
    led.refuse(led.c.media, "zkp.transfer", payload, "not registered")
    led.refuse(
        led.c.media, "zkp.register", register_payload(WORK, led.owner, "other-chain"), "owner key refused"
    )
    led.refuse(
        led.c.media, "zkp.register", register_payload(WORK, led.owner, CHAIN) | {"x": 1}, "unknown payload"
    )
    led.refuse(led.c.regulator, "zkp.register", register_payload(WORK, led.owner, CHAIN), "may not send")
    copyright_center = led.c.new_member("copyright", [Role.COPYRIGHT_CENTER])
    assert copyright_center.cert.roles == (Role.COPYRIGHT_CENTER,)
    led.run(led.c.media, "zkp.register", register_payload(WORK, led.owner, CHAIN))
    led.refuse(
        led.c.media, "zkp.register", register_payload(WORK, OwnerKey.generate(), CHAIN), "already registered"
    )
    assert led.run(led.c.media, "zkp.transfer", payload)["seq"] == 1


def test_each_error_has_one_root() -> None:
    """Refusals are the ledger's errors; a malformed record is zkp's; neither is both."""
    led = Ledger()
    with pytest.raises(ValidationError) as refused:
        led.ex.execute(led.state, [led.c.supervisor.tx("zkp.auditor", {"key": b"x"}).to_bytes()], 1, 10)
    assert not isinstance(refused.value, ZkpError)
    with pytest.raises(ZkpError) as malformed:
        TransferRecord.from_bytes(b"\xa0")
    assert not isinstance(malformed.value, ValidationError)


def test_verification_is_remembered_per_exact_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    import zkp.contract as zc

    calls: list[int] = []
    real = zc.verify_transfer

    def counting(*args: Any) -> None:
        calls.append(1)
        real(*args)

    monkeypatch.setattr(zc, "verify_transfer", counting)
    led = Ledger()
    led.setup()
    _, payload = led.transfer_payload(led.owner)
    raw = led.c.media.tx("zkp.transfer", payload).to_bytes()
    chosen, rejected = led.ex.select(led.state, [raw], 1, 2000, 10, 1 << 20)
    assert chosen == [raw] and not rejected
    led.ex.execute(led.state, [raw], 1, 2000)
    assert len(calls) == 1  # select() and execute() verified the proof once
    led.c.media.nonce -= 1  # that execution was not applied: its nonce is still free
    # A tampered payload is another cache key: it is verified (and refused).
    proof = bytearray(payload["proof"])
    proof[-1] ^= 1
    led.refuse(led.c.media, "zkp.transfer", payload | {"proof": bytes(proof)}, "refused")
    assert len(calls) == 2
    # The memory is bounded: the oldest entry goes first.
    contract = zc.TransferContract(cache_size=1)
    deals = [make_deal(), make_deal()]
    for deal in deals:
        p = deal.transfer.to_payload()
        # private on purpose: this test is about the contract's internal verification cache
        contract._verify(deal.transfer, p, "test-chain", deal.record, deal.auditor.public)
    assert len(contract._verified) == 1 and len(calls) == 4
    contract._verify(
        deals[1].transfer,
        deals[1].transfer.to_payload(),
        "test-chain",
        deals[1].record,
        deals[1].auditor.public,
    )
    assert len(calls) == 4


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.__setitem__("extra", 1),
        lambda d: d.pop("height"),
        lambda d: d.__setitem__("seq", "0"),
        lambda d: d.__setitem__("seq", True),
        lambda d: d.__setitem__("height", -1),
        lambda d: d.__setitem__("chain_id", b"test-chain"),
        lambda d: d.__setitem__("work", [1]),
    ],
)
def test_transfer_record_has_one_encoding(edit: Any) -> None:
    """Unknown fields were ignored and field types unchecked: several byte strings decoded
    to one record, or to a record whose fields had the wrong types."""
    deal = make_deal(seed=3)
    raw = TransferRecord(deal.record, deal.transfer, "test-chain", b"\x04" * 32, 9).to_bytes()
    assert TransferRecord.from_bytes(raw).to_bytes() == raw
    doc = codec.decode(raw)
    edit(doc)
    with pytest.raises(ZkpError):
        TransferRecord.from_bytes(codec.encode(doc))
