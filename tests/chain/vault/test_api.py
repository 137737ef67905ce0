"""The vault through a node's API: members store, grant and fetch; everyone else is refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chain.api.auth import BODY_SM3_HEADER, sign_request
from chain.crypto.sm3 import sm3, sm3_file
from chain.errors import ClientError, VaultError
from chain.receipt import Receipt
from chain.vault.contract import load_grant, load_object
from chain.vault.objects import seal_file
from chain.vault.store import LocalStore
from tests.chain.vault.harness import VaultNet, vault_nodes


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultNet]:
    with vault_nodes(tmp_path_factory.mktemp("vault"), count=2, max_object_bytes=1 << 20) as n:
        yield n


def _file(tmp: Path, name: str, size: int) -> Path:
    p = tmp / name
    p.write_bytes(os.urandom(size))
    return p


def _root(net: VaultNet) -> Path:
    store = net.vaults[0].store
    assert isinstance(store, LocalStore)
    return store.root


def _vault_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / "objects").rglob("*") if p.is_file())


def test_round_trip_grant_and_refusals(net: VaultNet, tmp_path: Path) -> None:
    src = _file(tmp_path, "evidence.wacz", 300_000)
    owner, court, stranger = net.client(net.owner), net.client(net.court), net.client(net.stranger)
    stored = owner.put(src)
    assert stored.header.content_sm3 == sm3_file(src)
    state = net.consortium.replicas[0].app.state
    record = load_object(state, stored.digest)
    assert record is not None and record["owner"] == net.owner.cert.cert_id
    # the owner reads it back
    owner.get(stored.digest, tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == src.read_bytes()
    # the court is refused by the node and holds no key
    with pytest.raises(ClientError) as refused:
        court.get(stored.digest, tmp_path / "court")
    assert refused.value.status == 403
    with pytest.raises(ClientError) as by_node:
        list(net.objects(net.court).fetch(stored.digest))
    assert by_node.value.status == 403
    # the owner grants the court: recorded on chain, proven by its receipt
    receipt = owner.grant(stored.digest, net.court.cert.cert_id)
    assert isinstance(receipt, Receipt)
    proven = receipt.verify(net.consortium.genesis)
    assert proven.height >= stored.height
    grant = load_grant(state, stored.digest, net.court.cert.cert_id)
    assert grant is not None and grant["by"] == net.owner.cert.cert_id and len(grant["wrapped"]) == 145
    court.get(stored.digest, tmp_path / "court")
    assert (tmp_path / "court").read_bytes() == src.read_bytes()
    # a stranger still cannot read it, and cannot unwrap the court's key either
    with pytest.raises(ClientError) as s:
        stranger.get(stored.digest, tmp_path / "stranger")
    assert s.value.status == 403
    from chain.vault.objects import unwrap_key

    with pytest.raises(VaultError):
        unwrap_key(net.stranger.key, stored.digest, grant["wrapped"])
    assert not (tmp_path / "stranger").exists()
    # revoked: the node stops serving the court
    owner.revoke(stored.digest, net.court.cert.cert_id)
    with pytest.raises(ClientError) as r:
        list(net.objects(net.court).fetch(stored.digest))
    assert r.value.status == 403


def test_a_member_cannot_store_another_members_object(net: VaultNet, tmp_path: Path) -> None:
    src = _file(tmp_path, "f", 1000)
    header, _ = seal_file(net.owner.cert.cert_id, src, tmp_path / "obj")
    with pytest.raises(ClientError) as info:
        net.objects(net.stranger).put_file(header.digest, tmp_path / "obj")
    assert info.value.status == 403
    assert not net.vaults[0].store.has(header.digest)


def _put(net: VaultNet, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.put(net.urls[0] + path, content=body, headers=headers, timeout=10)


def _signed_put(net: VaultNet, digest: bytes, body: bytes, **kw: object) -> tuple[str, dict[str, str]]:
    path = f"/vault/objects/{digest.hex()}"
    h = sign_request(
        net.owner.key,
        net.owner.cert.cert_id,
        "PUT",
        path,
        chain_id=net.consortium.genesis.chain_id,
        body_sm3=sm3(body),
        **kw,  # type: ignore[arg-type]
    )
    h[BODY_SM3_HEADER] = sm3(body).hex()
    return path, h


def test_forged_replayed_and_unsigned_requests_refused(net: VaultNet, tmp_path: Path) -> None:
    header, _ = seal_file(net.owner.cert.cert_id, _file(tmp_path, "f", 2000), tmp_path / "obj")
    body = (tmp_path / "obj").read_bytes()
    before = _vault_files(_root(net))
    # unsigned
    r = _put(net, f"/vault/objects/{header.digest.hex()}", body, {BODY_SM3_HEADER: sm3(body).hex()})
    assert r.status_code == 401
    # signed by the stranger's key under the owner's certificate (forged)
    path, h = _signed_put(net, header.digest, body)
    forged = sign_request(
        net.stranger.key, net.owner.cert.cert_id, "PUT", path, chain_id="rongxin-local", body_sm3=sm3(body)
    )
    r = _put(net, path, body, {**h, **forged})
    assert r.status_code == 401 and "signature" in r.json()["error"]
    # a signed body digest that the body does not match
    path, h = _signed_put(net, header.digest, body)
    r = _put(net, path, body[:-1] + bytes([body[-1] ^ 1]), h)
    assert r.status_code == 400
    # a valid request, then the same one replayed
    path, h = _signed_put(net, header.digest, body)
    assert _put(net, path, body, h).status_code == 201
    r = _put(net, path, body, h)
    assert r.status_code == 401 and "already used" in r.json()["error"]
    # a GET signed for another object cannot be replayed on this one
    other = f"/vault/objects/{'00' * 32}"
    g = sign_request(net.owner.key, net.owner.cert.cert_id, "GET", other, chain_id="rongxin-local")
    r = httpx.get(net.urls[0] + f"/vault/objects/{header.digest.hex()}", headers=g, timeout=10)
    assert r.status_code == 401
    assert len(_vault_files(_root(net))) == len(before) + 1


def test_oversized_and_truncated_uploads_leave_nothing(net: VaultNet, tmp_path: Path) -> None:
    root = _root(net)
    before = _vault_files(root)
    big, _ = seal_file(net.owner.cert.cert_id, _file(tmp_path, "big", 2 << 20), tmp_path / "big.obj")
    with pytest.raises(ClientError) as info:
        net.objects(net.owner).put_file(big.digest, tmp_path / "big.obj")
    assert info.value.status == 413
    # declared small (no Content-Length check possible): refused as the header arrives
    body = (tmp_path / "big.obj").read_bytes()
    path, h = _signed_put(net, big.digest, body)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    r = httpx.put(net.urls[0] + path, content=chunks(), headers=h, timeout=10)
    assert r.status_code == 413
    # truncated: the signed digest is of the truncated body, so only the object check fails
    small, _ = seal_file(net.owner.cert.cert_id, _file(tmp_path, "small", 100_000), tmp_path / "small.obj")
    cut = (tmp_path / "small.obj").read_bytes()[:50_000]
    path, h = _signed_put(net, small.digest, cut)
    r = _put(net, path, cut, h)
    assert r.status_code == 400 and "truncated" in r.json()["error"]
    assert _vault_files(root) == before
    assert list((root / "tmp").iterdir()) == []


def test_malformed_digests_and_unknown_objects(net: VaultNet) -> None:
    for bad in ("zz" * 32, "ab", "ab" * 33):
        path = f"/vault/objects/{bad}"
        g = sign_request(net.owner.key, net.owner.cert.cert_id, "GET", path, chain_id="rongxin-local")
        assert httpx.get(net.urls[0] + path, headers=g, timeout=10).status_code == 400
    with pytest.raises(ClientError) as info:
        list(net.objects(net.owner).fetch(b"\x01" * 32))
    assert info.value.status == 403  # nobody's object: not even its existence is told


def test_replication_and_scrub_repair(net: VaultNet, tmp_path: Path) -> None:
    a, regulator = net.vaults
    stored = net.client(net.owner).put(_file(tmp_path, "case.wacz", 150_000))
    assert stored.digest in a.outbox.pending(a.outbox.targets[0])  # type: ignore[union-attr]
    pushed, failed = a.replicate(net.push(0))
    assert pushed >= 1 and failed == 0
    assert a.outbox.backlog() == 0  # type: ignore[union-attr]
    assert regulator.store.verify(stored.digest) == stored.header
    # damage at rest on node 0 is found and repaired from the regulator's copy
    path = a.store.path(stored.digest)  # type: ignore[attr-defined]
    raw = bytearray(path.read_bytes())
    raw[1000] ^= 0x01
    path.write_bytes(bytes(raw))
    report = a.scrub()
    assert stored.digest in report.damaged and stored.digest in report.repaired and not report.lost
    assert a.store.verify(stored.digest) == stored.header
    # the regulator loses its copy; its scrub finds it missing (from the chain's registry)
    regulator.store.path(stored.digest).unlink()  # type: ignore[attr-defined]
    report = regulator.scrub()
    assert stored.digest in report.missing and stored.digest in report.repaired
    assert regulator.store.verify(stored.digest) == stored.header
    # the API's status and scrub
    objects = net.objects(net.owner)
    assert objects.status()["objects"] >= 1
    assert objects.scrub()["lost"] == []
