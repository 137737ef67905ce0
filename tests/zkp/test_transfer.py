import copy
import json
from pathlib import Path
from typing import Any

import pytest

import zkp.transfer as tr
from chain.crypto import keyfile
from chain.crypto.errors import KeyFileError
from chain.crypto.sm2 import PrivateKey
from tests.zkp.helpers import flip_byte
from tests.zkp.transfer_fixtures import CHAIN, PRICE, SHARES, WORK, make_deal
from zkp.auditor import AuditorKey, encrypt_amount, open_auditor_key, seal_auditor_key
from zkp.errors import DecryptionError, EncodingError, ParameterError, ProofError, ZkpError
from zkp.group import Point, hash_to_point
from zkp.transfer import MAX_SHARES, OwnerKey, OwnershipRecord, Transfer, audit, verify_transfer

DEAL = make_deal()
LEGACY = Path(__file__).parents[1] / "data" / "sealed"


def _verify(transfer: Transfer, chain: str = CHAIN) -> None:
    verify_transfer(transfer, chain, DEAL.record, DEAL.auditor.public)


def test_completeness_audit_and_round_trip() -> None:
    _verify(DEAL.transfer)
    again = Transfer.from_payload(DEAL.transfer.to_payload())
    _verify(again)
    report = audit(again, DEAL.auditor)
    assert report.price == PRICE
    assert list(report.shares) == SHARES
    assert DEAL.transfer.nullifier == DEAL.record.nullifier_base() * DEAL.seller.secret


def test_nothing_about_amounts_is_in_the_clear() -> None:
    payload = DEAL.transfer.to_payload()
    # Every leaf is a point, a proof or a party id: no amount is carried as a number.
    leaves = [_get(payload, p) for p in _paths(payload)]
    assert [leaf for leaf in leaves if not isinstance(leaf, bytes)] == [1]  # the version
    # Same amounts twice give unrelated ciphertexts.
    other = make_deal(seller=DEAL.seller, auditor=DEAL.auditor, record=DEAL.record)
    assert other.transfer.price.commitments != DEAL.transfer.price.commitments


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in _paths(v, (*prefix, k))]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in _paths(v, (*prefix, i))]
    return [prefix]


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def test_tampering_any_field_is_refused() -> None:
    payload = DEAL.transfer.to_payload()
    fields = [p for p in _paths(payload) if p != ("v",)]
    assert len(fields) > 40
    for path in fields:
        value = _get(payload, path)
        mutants = []
        if isinstance(value, bytes) and len(value) == 33:  # a point: swap for another valid point
            mutants.append(hash_to_point(b"tamper", repr(path).encode()).encode())
        elif isinstance(value, bytes):
            mutants += [flip_byte(value, len(value) // 2), flip_byte(value, len(value) - 1)]
        for mutant in mutants:
            bad = copy.deepcopy(payload)
            _set(bad, path, mutant)
            with pytest.raises(ZkpError):
                _verify(Transfer.from_payload(bad))


def test_swapping_or_reordering_shares_is_refused() -> None:
    payload = DEAL.transfer.to_payload()
    bad = copy.deepcopy(payload)
    bad["shares"][0]["party"], bad["shares"][1]["party"] = (
        bad["shares"][1]["party"],
        bad["shares"][0]["party"],
    )
    with pytest.raises(ProofError):
        _verify(Transfer.from_payload(bad))
    bad = copy.deepcopy(payload)
    bad["shares"] = bad["shares"][:2]
    with pytest.raises(ProofError):
        _verify(Transfer.from_payload(bad))
    other = make_deal(shares=[(b"author", 500_000), (b"studio", 400_000), (b"county-center", 100_000)])
    bad = copy.deepcopy(payload)
    bad["shares"][0] = other.transfer.to_payload()["shares"][0]
    with pytest.raises(ProofError):
        _verify(Transfer.from_payload(bad))


def test_wrong_context_is_refused() -> None:
    with pytest.raises(ProofError):
        _verify(DEAL.transfer, chain="other-chain")
    other_record = OwnershipRecord(WORK, 1, DEAL.record.owner)  # same owner, later record
    with pytest.raises(ProofError):
        verify_transfer(DEAL.transfer, CHAIN, other_record, DEAL.auditor.public)
    with pytest.raises(ProofError, match="another work"):
        verify_transfer(
            DEAL.transfer, CHAIN, OwnershipRecord(b"x" * 32, 0, DEAL.record.owner), DEAL.auditor.public
        )
    stranger = OwnershipRecord(WORK, 0, OwnerKey.generate().public)
    with pytest.raises(ProofError):
        verify_transfer(DEAL.transfer, CHAIN, stranger, DEAL.auditor.public)


def test_wrong_auditor_key() -> None:
    other = AuditorKey.generate()
    with pytest.raises(ProofError, match="auditor"):
        verify_transfer(DEAL.transfer, CHAIN, DEAL.record, other.public)
    with pytest.raises(ProofError, match="another auditor"):
        audit(DEAL.transfer, other)
    enc = DEAL.transfer.price
    with pytest.raises(DecryptionError):
        other.decrypt(enc.commitments, enc.handles)
    # Re-labelling the transfer with the other key does not make it verify either.
    relabelled = Transfer.from_payload(DEAL.transfer.to_payload() | {"auditor": other.public.encode()})
    with pytest.raises(ProofError):
        verify_transfer(relabelled, CHAIN, DEAL.record, other.public)


def test_prover_refuses_bad_deals() -> None:
    buyer = OwnerKey.generate()
    pop = tr.prove_key_possession(buyer, CHAIN, WORK)
    args: tuple[Any, ...] = (CHAIN, DEAL.record, DEAL.seller, buyer.public, pop, DEAL.auditor.public)
    with pytest.raises(ParameterError, match="sum"):
        tr.prove_transfer(*args, 100, [(b"a", 60), (b"b", 50)])
    with pytest.raises(ParameterError, match="shares"):
        tr.prove_transfer(*args, 0, [])
    with pytest.raises(ParameterError, match="shares"):
        tr.prove_transfer(*args, MAX_SHARES + 1, [(bytes([i + 1]), 1) for i in range(MAX_SHARES + 1)])
    with pytest.raises(ParameterError, match="not in"):
        tr.prove_transfer(*args, 2**64, [(b"a", 2**63), (b"b", 2**63)])
    with pytest.raises(ParameterError, match="control"):
        tr.prove_transfer(CHAIN, DEAL.record, buyer, buyer.public, pop, DEAL.auditor.public, 1, [(b"a", 1)])
    with pytest.raises(EncodingError, match="once"):
        tr.prove_transfer(*args, 2, [(b"a", 1), (b"a", 1)])


def test_cheating_prover_unbalanced_shares_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tr, "_check_balance", lambda price, shares: None)  # private on purpose: a cheater
    deal = make_deal(price=100, shares=[(b"a", 60), (b"b", 50)])
    with pytest.raises(ProofError, match="balance"):
        verify_transfer(deal.transfer, CHAIN, deal.record, deal.auditor.public)
    with pytest.raises(ProofError, match="sum"):
        audit(deal.transfer, deal.auditor)


def test_cheating_prover_with_inconsistent_auditor_ciphertext(monkeypatch: pytest.MonkeyPatch) -> None:
    real = tr.encrypt_amount

    def bad_encrypt(value: int, auditor: Point, rng: Any = tr.random_scalar) -> Any:
        enc = real(value, auditor, rng)
        return type(enc)(
            enc.commitments, (enc.handles[0] + auditor, *enc.handles[1:]), enc.limbs, enc.blindings
        )

    monkeypatch.setattr(tr, "encrypt_amount", bad_encrypt)
    deal = make_deal()
    with pytest.raises(ProofError, match="auditor-encryption"):
        verify_transfer(deal.transfer, CHAIN, deal.record, deal.auditor.public)


def test_payload_validation() -> None:
    good = DEAL.transfer.to_payload()
    cases: list[Any] = [
        [],
        {},
        good | {"extra": 1},
        {k: v for k, v in good.items() if k != "proof"},
        good | {"v": 2},
        good | {"v": True},
        good | {"work": b"short"},
        good | {"shares": []},
        good | {"shares": good["shares"] * 6},
        good | {"shares": [good["shares"][0] | {"party": b""}]},
        good | {"shares": [good["shares"][0] | {"party": b"x" * 65}]},
        good | {"shares": [good["shares"][0] | {"c": good["shares"][0]["c"][:3]}]},
        good | {"shares": [good["shares"][0], good["shares"][0]]},
        good | {"price": {"c": good["price"]["c"]}},
        good | {"price": good["price"] | {"d": [b"\x02" + (2**256 - 2**32 - 977).to_bytes(32, "big")] * 4}},
        good | {"nullifier": bytes(33)},
        good | {"new_owner": b"\x04" + bytes(32)},
        good | {"proof": "text"},
    ]
    for bad in cases:
        with pytest.raises(EncodingError):
            Transfer.from_payload(bad)


def test_truncated_proofs_are_refused() -> None:
    good = DEAL.transfer.to_payload()
    for name in ("range_proof", "proof", "new_owner_pop"):
        with pytest.raises(EncodingError):
            _verify(Transfer.from_payload(good | {name: good[name][:-1]}))


def test_auditor_encryption_round_trip() -> None:
    key = AuditorKey.generate()
    for value in (0, 1, 65535, 65536, 2**64 - 1, 123456789012345):
        enc = encrypt_amount(value, key.public)
        assert key.decrypt(enc.commitments, enc.handles) == value
    assert AuditorKey.from_bytes(key.to_bytes()) == key
    with pytest.raises(DecryptionError):
        key.decrypt(enc.commitments[:3], enc.handles[:3])
    with pytest.raises(ParameterError):
        encrypt_amount(2**64, key.public)
    with pytest.raises(ParameterError):
        encrypt_amount(1, Point.identity())
    with pytest.raises(ParameterError):
        AuditorKey(0)


def test_auditor_key_file() -> None:
    key = AuditorKey.generate()
    blob = seal_auditor_key(key, "pw", scrypt_n=1024)
    assert open_auditor_key(blob, "pw") == key
    assert key.to_bytes().hex() not in blob.decode()
    with pytest.raises(DecryptionError, match="wrong password"):
        open_auditor_key(blob, "other")
    doc = json.loads(blob)
    no_salt = doc | {"kdf": {k: v for k, v in doc["kdf"].items() if k != "salt"}}
    for bad in (
        b"not json",
        json.dumps(doc | {"kind": "x"}).encode(),
        json.dumps(doc | {"n": 3}).encode(),
        json.dumps(doc | {"public": AuditorKey.generate().public.encode().hex()}).encode(),
        json.dumps(no_salt).encode(),
    ):
        with pytest.raises(DecryptionError):
            open_auditor_key(bad, "pw")


def test_auditor_key_file_in_the_hex_layout_still_opens_and_is_checked() -> None:
    """A file written by the auditor key-file code before the sealed format."""
    expected = json.loads((LEGACY / "expected.json").read_text())
    blob = (LEGACY / "legacy-auditor.key").read_bytes()
    key = open_auditor_key(blob, expected["password"])
    assert key.public.encode().hex() == expected["auditor_public"]
    with pytest.raises(DecryptionError, match="wrong password"):
        open_auditor_key(blob, "other")
    doc = json.loads(blob)
    for bad in (
        json.dumps(doc | {"kind": "x"}).encode(),
        json.dumps(doc | {"n": 3}).encode(),
        json.dumps(doc | {"n": 1 << 30}).encode(),
        json.dumps(doc | {"public": AuditorKey.generate().public.encode().hex()}).encode(),
        json.dumps({k: v for k, v in doc.items() if k != "salt"}).encode(),
        json.dumps(doc | {"sealed": doc["sealed"][:40]}).encode(),
        blob[:-20],
    ):
        with pytest.raises(DecryptionError):
            open_auditor_key(bad, expected["password"])
    # Re-sealing converts it to the one sealed format.
    resealed = json.loads(seal_auditor_key(key, "pw", scrypt_n=1024))
    assert (resealed["format"], resealed["kind"]) == ("rongxin-sealed", "rongxin-zkp-auditor-key")


def test_auditor_key_file_is_not_another_kind_of_sealed_file() -> None:
    sm2_file = keyfile.encrypt_private_key(PrivateKey.generate(), "pw", scrypt_n=1024)
    with pytest.raises(DecryptionError, match="not a rongxin-zkp-auditor-key"):
        open_auditor_key(sm2_file, "pw")
    with pytest.raises(KeyFileError, match="not a rongxin-sm2-private-key"):
        keyfile.decrypt_private_key(seal_auditor_key(AuditorKey.generate(), "pw", scrypt_n=1024), "pw")
