"""Validator-set changes are guarded: no single key halts or captures the chain."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from chain import codec
from chain.crypto import PrivateKey
from chain.epochs import EXCLUDED, current_epoch, finalize_block
from chain.executor import Executor, genesis_state
from chain.localnet import LocalConsortium
from chain.state import Overlay
from chain.types import Certificate, ChainParams, Genesis, Role, ValidationError
from tests.chain.ledger_fixtures import consortium


def _epoch(c: LocalConsortium) -> int:
    return current_epoch(c.replicas[0].app.state, c.genesis).epoch


def _anchor(c: LocalConsortium, tag: bytes) -> None:
    m = c.members.get("m") or c.add_member("m", [Role.MEDIA_CENTER])
    c.submit(m, "anchor", {"digest": tag.ljust(32, b"."), "kind": "t"})


def test_supervisor_key_alone_cannot_halt_a_voting_chain(tmp_path: Path) -> None:
    """The supervisor adds three consensus-node certificates for nodes that do not run:
    they are observers; promoting them needs the nodes' vote; the chain keeps committing."""
    c = LocalConsortium.create(tmp_path, nodes=4, params=ChainParams(membership_by_vote=True))
    ghosts = []
    for i in range(3):
        key = PrivateKey.generate()
        cert = Certificate.issue(c.root, f"ghost-{i}", "ghost", [Role.CONSENSUS_NODE], key.public_key, 0)
        c.submit(c.supervisor, "member.add", {"certificate": cert.to_dict()})
        ghosts.append(cert)
    assert _epoch(c) == 0 and len(c.replicas[0].epoch.validators) == 4
    for cert in ghosts:
        with pytest.raises(ValidationError, match="vote"):
            c.submit(c.supervisor, "member.promote", {"cert_id": cert.cert_id})
    with pytest.raises(ValidationError, match="vote"):
        c.submit(c.supervisor, "member.revoke", {"cert_id": c.nodes[0].cert.cert_id, "reason": "x"})
    _anchor(c, b"still committing")
    # even by vote, a node that never attested it caught up is not promoted
    promote = {"action": "promote", "cert_id": ghosts[0].cert_id}
    for voter in c.nodes[:2]:
        c.submit(voter, "member.vote", promote)
    with pytest.raises(ValidationError, match=r"node\.ready"):  # the deciding vote is refused
        c.submit(c.nodes[2], "member.vote", promote)
    assert _epoch(c) == 0
    c.close()


def test_a_running_node_is_promoted_by_vote(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=4, params=ChainParams(membership_by_vote=True))
    _, replica = c.add_node("county-node", by_vote=True)
    assert replica.voting and _epoch(c) == 1 and len(c.replicas[0].epoch.validators) == 5
    _anchor(c, b"five validators")
    c.close()


def test_supervisor_cannot_shrink_below_the_minimum(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=4)
    with pytest.raises(ValidationError, match="at least 4"):
        c.submit(c.supervisor, "member.revoke", {"cert_id": c.nodes[1].cert.cert_id, "reason": "x"})
    assert _epoch(c) == 0
    _anchor(c, b"four still vote")
    c.close()


def test_at_most_f_validators_change_per_epoch() -> None:
    c = consortium(7)  # f = 2
    ex, state = Executor(c.genesis), genesis_state(c.genesis)
    revokes = [
        c.supervisor.tx("member.revoke", {"cert_id": n.cert.cert_id, "reason": "x"}).to_bytes()
        for n in c.nodes[:3]
    ]
    with pytest.raises(ValidationError, match="at most 2 of the 7"):
        ex.execute(state, revokes, 1, 10)
    chosen, rejected = ex.select(state, revokes, 1, 10, 10, 1 << 20)
    assert chosen == revokes[:2] and "at most 2" in rejected[0][1]


def _nodes_genesis(n: int, not_after: dict[int, int] | None = None) -> tuple[Genesis, list[Certificate]]:
    root = PrivateKey.generate()
    certs = [
        Certificate.issue(
            root,
            f"n{i}",
            "o",
            [Role.CONSENSUS_NODE],
            PrivateKey.generate().public_key,
            0,
            (not_after or {}).get(i),
        )
        for i in range(n)
    ]
    return Genesis("c", "c", root.public_key.to_bytes(), tuple(certs)), certs


def test_an_expired_validator_certificate_leaves_at_the_next_block() -> None:
    g, certs = _nodes_genesis(5, {2: 1_000})
    ov = Overlay(genesis_state(g))
    assert finalize_block(ov, g, 1, 1, 0, certs[0].cert_id.hex(), [], 900) is None
    new = finalize_block(ov, g, 2, 2, 1, certs[0].cert_id.hex(), [], 1_001)
    assert new is not None and certs[2].cert_id not in {v.cert_id for v in new.validators}
    # all four certificates of a four-node chain expire together: the set is kept
    g4, certs4 = _nodes_genesis(4, dict.fromkeys(range(4), 1_000))
    assert finalize_block(Overlay(genesis_state(g4)), g4, 1, 1, 0, certs4[0].cert_id.hex(), [], 5_000) is None


def test_passive_exits_are_capped_per_epoch() -> None:
    g, certs = _nodes_genesis(5)
    ov = Overlay(genesis_state(g))
    for cert in certs[:2]:  # two validators excluded in one block (e.g. two equivocations)
        ov.set(EXCLUDED + cert.cert_id, b"equivocation")
    new = finalize_block(ov, g, 1, 1, 0, certs[4].cert_id.hex(), [], 10)
    assert new is not None and len(new.validators) == 4  # one leaves (f = 1), not two
    assert finalize_block(ov, g, 2, 2, 1, certs[4].cert_id.hex(), [], 20) is None  # minimum 4


def test_compressed_public_key_certificates_are_refused() -> None:
    root, key = PrivateKey.generate(), PrivateKey.generate()
    cert = Certificate.issue(root, "n", "o", [Role.CONSENSUS_NODE], key.public_key, 0)
    compressed = dataclasses.replace(cert, public_key=key.public_key.to_bytes(compressed=True), signature=b"")
    signed = dataclasses.replace(compressed, signature=root.sign(codec.encode(compressed.body())))
    assert signed.cert_id != cert.cert_id  # the same key would have two ids
    with pytest.raises(ValidationError, match="uncompressed"):
        Certificate.from_dict(signed.to_dict())


def test_chain_parameters_are_type_checked() -> None:
    for bad in (
        {"min_validators": 0},
        {"min_validators": True},
        {"empty_blocks": 1},
        {"max_block_txs": "9"},
        {"max_block_bytes": 64 << 20},
    ):
        with pytest.raises(ValidationError):
            ChainParams.from_dict({**ChainParams().to_dict(), **bad})
