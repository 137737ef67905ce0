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


def _genesis_doc() -> tuple[Genesis, dict]:
    root = PrivateKey.generate()
    member = PrivateKey.generate()
    cert = Certificate.issue(root, "m", "o", [Role.MEDIA_CENTER, Role.AUDITOR], member.public_key, 0)
    g = Genesis("c", "c", root.public_key.to_bytes(), (cert,))
    return g, g.to_dict()


def test_genesis_hash_is_computed_once_and_follows_the_document() -> None:
    from dataclasses import replace

    from chain.crypto.sm3 import sm3

    g = Genesis.from_bytes(C.genesis.to_bytes())
    first = g.hash
    assert first == sm3(g.to_bytes()) == C.genesis.hash
    assert g.hash is first  # kept: the document carries every certificate
    other = replace(g, chain_id=g.chain_id + "-2")
    assert other.hash == sm3(other.to_bytes()) != first  # a changed copy hashes itself
    assert other == Genesis.from_bytes(other.to_bytes())  # the kept hash is not a field


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.__setitem__("extra", 1),
        lambda d: d.pop("timestamp_ms"),
        lambda d: d["params"].pop("max_missed_turns"),
        lambda d: d["params"].__setitem__("extra", 1),
    ],
)
def test_genesis_has_one_encoding(edit) -> None:
    """Extra or missing fields were ignored or defaulted: two byte strings, one genesis."""
    _, doc = _genesis_doc()
    edit(doc)
    with pytest.raises(ValidationError, match="fields differ"):
        Genesis.from_bytes(codec.encode(doc))


@pytest.mark.parametrize(
    ("name", "value"),
    [("max_block_bytes", "4 MiB"), ("max_block_txs", None), ("empty_blocks", 1), ("round_timeout_ms", True)],
)
def test_chain_parameter_types_checked(name: str, value: object) -> None:
    """A string max_block_bytes raised TypeError from the range check."""
    _, doc = _genesis_doc()
    doc["params"][name] = value
    with pytest.raises(ValidationError, match="chain parameter"):
        Genesis.from_bytes(codec.encode(doc))


@pytest.mark.parametrize(
    "roles", [["media_center", "auditor"], ["auditor", "auditor", "media_center"], ["auditor"] * 2]
)
def test_certificate_roles_canonical(roles: list[str]) -> None:
    """Unsorted or repeated roles decoded to the same certificate as the sorted list."""
    _, doc = _genesis_doc()
    cert = doc["certificates"][0]
    assert cert["roles"] == ["auditor", "media_center"]
    cert["roles"] = roles
    with pytest.raises(ValidationError, match="sorted order"):
        Certificate.from_dict(cert)


def test_certificate_not_after_is_not_a_bool() -> None:
    _, doc = _genesis_doc()
    cert = doc["certificates"][0]
    cert["not_after_ms"] = True
    with pytest.raises(ValidationError, match="not_after_ms"):
        Certificate.from_dict(cert)


@pytest.mark.parametrize("timestamp_ms", [0, 23, 24, 65_536, 2**63])
def test_decoded_transaction_signs_the_bytes_an_encoding_gives(timestamp_ms: int) -> None:
    # a decoded transaction cuts its signed bytes from its own bytes: they must be exactly
    # those of encoding its body, even when the payload has keys named like the envelope's
    key = PrivateKey.generate()
    payload = {"digest": b"\x01" * 32, "kind": "work", "signature": b"s" * 300, "timestamp_ms": 7}
    tx = Transaction.create(key, b"\x02" * 32, "anchor", payload, 1, timestamp_ms, "c1")
    decoded = Transaction.from_bytes(tx.to_bytes())
    for chain_id in ("", "c1", "长" * 40):
        assert decoded.signing_bytes(chain_id) == codec.encode({"chain_id": chain_id, "tx": tx.body()})
    decoded.verify_signature(key.public_key, "c1")
    assert decoded.tx_id == tx.tx_id and decoded.to_bytes() == tx.to_bytes()
    with pytest.raises(ValidationError):
        decoded.verify_signature(key.public_key, "c2")
    forged = tx.to_bytes().replace(b"work", b"worm")
    with pytest.raises(ValidationError):
        Transaction.from_bytes(forged).verify_signature(key.public_key, "c1")
