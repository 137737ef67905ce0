"""The vault's on-chain registry: only owners register and grant; only hashes go on chain."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from chain.errors import ValidationError
from chain.localnet import Identity, LocalConsortium
from chain.types import Role
from chain.vault.contract import grant_key, load_grant, load_object, may_read, registered_objects
from chain.vault.objects import ObjectHeader, seal_stream, wrap_key


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    c = LocalConsortium.create(tmp_path_factory.mktemp("vault-contract"), nodes=4)
    c.add_member("Owner", [Role.LEGAL_CENTER])
    c.add_member("Court", [Role.AUDITOR])
    c.add_member("Other", [Role.MEDIA_CENTER])
    yield c
    c.close()


def _object(who: Identity, data: bytes = b"evidence") -> tuple[ObjectHeader, bytes]:
    header, key = seal_stream(who.cert.cert_id, io.BytesIO(data), io.BytesIO())
    return header, key


def _put(c: LocalConsortium, who: Identity, header: ObjectHeader, key: bytes) -> bytes:
    wrapped = wrap_key(who.key.public_key, header.digest, key)
    return c.submit(who, "vault.put", {"header": header.to_bytes(), "wrapped": wrapped})


def _refused(c: LocalConsortium, who: Identity, type: str, payload: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        c.submit(who, type, payload)


def test_register_grant_revoke(chain: LocalConsortium) -> None:
    owner, court = chain.members["Owner"], chain.members["Court"]
    header, key = _object(owner)
    tx_id = _put(chain, owner, header, key)
    state = chain.replicas[0].app.state
    record = load_object(state, header.digest)
    assert record is not None
    assert (record["owner"], record["content_sm3"], record["tx_id"]) == (
        owner.cert.cert_id,
        header.content_sm3,
        tx_id,
    )
    assert header.digest in registered_objects(state)
    assert may_read(state, header.digest, owner.cert.cert_id, {Role.LEGAL_CENTER})
    assert not may_read(state, header.digest, court.cert.cert_id, {Role.AUDITOR})
    assert may_read(state, header.digest, chain.nodes[0].cert.cert_id, {Role.CONSENSUS_NODE})
    wrapped = wrap_key(court.key.public_key, header.digest, key)
    grant_tx = chain.submit(
        owner, "vault.grant", {"object": header.digest, "member": court.cert.cert_id, "wrapped": wrapped}
    )
    grant = load_grant(state, header.digest, court.cert.cert_id)
    assert grant is not None and grant["wrapped"] == wrapped and grant["tx_id"] == grant_tx
    receipt = chain.receipt(grant_tx)
    assert receipt.verify(chain.genesis).height == grant["height"]
    # every value the vault writes on chain is small: digests, ids, sizes, a wrapped key
    for k, v in state.items_with_prefix(b"vault/"):
        assert len(v) < 400, k
    chain.submit(owner, "vault.revoke", {"object": header.digest, "member": court.cert.cert_id})
    assert state.get(grant_key(header.digest, court.cert.cert_id)) is None
    assert not may_read(state, header.digest, court.cert.cert_id, {Role.AUDITOR})


def test_refusals(chain: LocalConsortium) -> None:
    owner, court, other = chain.members["Owner"], chain.members["Court"], chain.members["Other"]
    header, key = _object(owner, b"refusals")
    wrapped = wrap_key(owner.key.public_key, header.digest, key)
    # another member cannot register the owner's object as theirs
    _refused(chain, other, "vault.put", {"header": header.to_bytes(), "wrapped": wrapped}, "another owner")
    # nor can a node certificate send vault transactions at all
    _refused(
        chain, chain.nodes[1], "vault.put", {"header": header.to_bytes(), "wrapped": wrapped}, "may not send"
    )
    # grants need a registered object
    grant = {"object": header.digest, "member": court.cert.cert_id, "wrapped": wrapped}
    _refused(chain, owner, "vault.grant", grant, "not registered")
    _put(chain, owner, header, key)
    _refused(
        chain, owner, "vault.put", {"header": header.to_bytes(), "wrapped": wrapped}, "already registered"
    )
    # only the owner grants and revokes
    _refused(chain, other, "vault.grant", grant, "owner")
    _refused(chain, other, "vault.revoke", {"object": header.digest, "member": court.cert.cert_id}, "owner")
    # grantees are registered members, not nodes, not strangers
    _refused(chain, owner, "vault.grant", {**grant, "member": b"\x09" * 32}, "not registered")
    _refused(chain, owner, "vault.grant", {**grant, "member": chain.nodes[0].cert.cert_id}, "node")
    _refused(
        chain, owner, "vault.revoke", {"object": header.digest, "member": owner.cert.cert_id}, "own access"
    )
    _refused(
        chain, owner, "vault.revoke", {"object": header.digest, "member": court.cert.cert_id}, "no grant"
    )


@pytest.mark.parametrize(
    ("type", "payload", "match"),
    [
        ("vault.put", {"header": b"x" * 117, "wrapped": b"w"}, "RXV1"),
        ("vault.put", {"header": b"x" * 116, "wrapped": b"w"}, "117 bytes"),
        ("vault.put", {"header": None, "wrapped": b"w"}, "header"),
        ("vault.grant", {"object": b"o" * 32, "member": b"m" * 32, "wrapped": b"w" * 257}, "wrapped"),
        ("vault.grant", {"object": b"o" * 31, "member": b"m" * 32, "wrapped": b"w"}, "object"),
        ("vault.grant", {"object": b"o" * 32, "member": b"m" * 32, "wrapped": b""}, "wrapped"),
        ("vault.grant", {"object": b"o" * 32, "member": b"m" * 32, "wrapped": b"w", "x": 1}, "unknown"),
        ("vault.revoke", {"object": b"o" * 32}, "member"),
    ],
)
def test_malformed_payloads(chain: LocalConsortium, type: str, payload: dict[str, Any], match: str) -> None:
    _refused(chain, chain.members["Other"], type, payload, match)


def test_registry_survives_as_state(chain: LocalConsortium) -> None:
    # every replica holds the same registry (it is ledger state, so it is in the state root)
    owner = chain.members["Owner"]
    header, key = _object(owner, b"replicated")
    _put(chain, owner, header, key)
    roots = {r.app.state.root for r in chain.replicas}
    assert len(roots) == 1
    assert all(load_object(r.app.state, header.digest) is not None for r in chain.replicas)
