import pytest

from chain import codec
from chain.crypto import PrivateKey
from chain.types import Certificate, ChainParams, Genesis, Role, Transaction, ValidationError

from .ledger_fixtures import consortium

C = consortium()


def test_certificate_round_trip_and_forgery() -> None:
    cert = C.media.cert
    assert Certificate.from_dict(codec.decode(codec.encode(cert.to_dict()))) == cert
    cert.verify(C.root.public_key)
    with pytest.raises(ValidationError):
        cert.verify(PrivateKey.generate().public_key)
    from dataclasses import replace

    with pytest.raises(ValidationError):
        replace(cert, roles=(Role.SUPERVISOR,)).verify(C.root.public_key)
    with pytest.raises(ValidationError, match="unknown role"):
        Certificate.from_dict({**cert.to_dict(), "roles": ["king"]})
    with pytest.raises(ValidationError):
        Certificate.from_dict({**cert.to_dict(), "not_before_ms": "0"})


def test_transaction_round_trip_signature_and_chain_binding() -> None:
    tx = C.media.tx("anchor", {"digest": b"\x01" * 32, "kind": "work"})
    assert Transaction.from_bytes(tx.to_bytes()) == tx
    tx.verify_signature(C.media.key.public_key, "test-chain")
    with pytest.raises(ValidationError):
        tx.verify_signature(C.media.key.public_key, "other-chain")
    with pytest.raises(ValidationError):
        tx.verify_signature(C.regulator.key.public_key, "test-chain")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: {**d, "extra": 1},
        lambda d: {k: v for k, v in d.items() if k != "nonce"},
        lambda d: {**d, "nonce": "1"},
        lambda d: {**d, "payload": [1]},
        lambda d: {**d, "nonce": True},
    ],
)
def test_transaction_decode_refuses_bad_shapes(mutate) -> None:
    tx = C.media.tx("anchor", {"digest": b"\x01" * 32, "kind": "work"})
    with pytest.raises(ValidationError):
        Transaction.from_bytes(codec.encode(mutate(tx.to_dict())))


def test_transaction_decode_refuses_garbage_and_oversize() -> None:
    with pytest.raises(ValidationError):
        Transaction.from_bytes(b"\xff\x00")
    with pytest.raises(ValidationError, match="exceeds"):
        Transaction.from_bytes(b"\x00" * 70_000)


def test_genesis_round_trip_validation_and_validators() -> None:
    g = C.genesis
    assert Genesis.from_bytes(g.to_bytes()) == g
    g.validate()
    assert g.validators() == sorted(n.cert.cert_id for n in C.nodes)
    forged = Certificate.issue(
        PrivateKey.generate(), "x", "x", [Role.CONSENSUS_NODE], PrivateKey.generate().public_key, 0
    )
    bad = Genesis(g.consortium, g.chain_id, g.root_public_key, (*g.certificates, forged))
    with pytest.raises(ValidationError):
        bad.validate()
    dup = Genesis(g.consortium, g.chain_id, g.root_public_key, (*g.certificates, g.certificates[0]))
    with pytest.raises(ValidationError, match="twice"):
        dup.validate()
    with pytest.raises(ValidationError):
        ChainParams.from_dict({"block_interval_ms": -1})
    with pytest.raises(ValidationError):
        ChainParams.from_dict({"unknown": 1})
