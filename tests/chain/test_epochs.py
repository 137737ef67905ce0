"""Validator-set changes at epoch boundaries: revocation, admission, equivocation, missed turns."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from chain import codec
from chain.consensus.messages import Evidence, EvidenceMsg, Vote, encode_message, vote_signing_bytes
from chain.crypto import PrivateKey
from chain.epochs import EVIDENCE, EXCLUDED, current_epoch
from chain.localnet import Identity, LocalConsortium, LocalNet
from chain.receipt import Receipt, ReceiptError
from chain.replica import Replica, node_id
from chain.types import Certificate, ChainParams, Role, ValidationError


def _anchor(c: LocalConsortium, who: Identity, tag: bytes) -> bytes:
    tx = who.sign(c.genesis.chain_id, "anchor", {"digest": tag.ljust(32, b"."), "kind": "t"}, c.net.now)
    tx_id = c.net.submit(tx.to_bytes())
    c.net.wait(tx_id)
    return tx_id


def _epochs(c: LocalConsortium) -> set[int]:
    return {current_epoch(r.app.state, c.genesis).epoch for r in c.replicas}


def test_revoking_a_consensus_node_starts_a_smaller_epoch(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=5)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    leaving = c.nodes[4].cert.cert_id
    c.submit(c.supervisor, "member.revoke", {"cert_id": leaving, "reason": "left the consortium"})
    c.net.run_until(lambda: _epochs(c) == {1})
    record = current_epoch(c.replicas[0].app.state, c.genesis)
    assert record.node_ids() == sorted(node_id(n.cert.cert_id) for n in c.nodes[:4])
    tx_id = _anchor(c, m, b"after the change")
    gone = next(r for r in c.replicas if r.key == c.nodes[4].key)
    assert not gone.voting  # the revoked node follows as an observer
    receipt = c.receipt(tx_id)
    assert len(receipt.epochs) == 1
    info = Receipt.from_bytes(receipt.to_bytes()).verify(c.genesis)
    assert info.height > record.height
    # the QC of a block of epoch 1 carries no signature of the revoked node
    assert all(a != node_id(leaving) for a, _ in receipt.qc[2])
    # and every node still agrees on the state
    c.net.run_until(lambda: len({r.store.head_hash() for r in c.replicas}) == 1)
    assert len({r.store.load_state().root for r in c.replicas}) == 1
    c.close()


def test_epoch_proofs_in_receipts_resist_tampering(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=5)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    c.submit(c.supervisor, "member.revoke", {"cert_id": c.nodes[0].cert.cert_id, "reason": "x"})
    c.net.run_until(lambda: _epochs(c) == {1})
    receipt = c.receipt(_anchor(c, m, b"t"))
    doc = receipt.to_dict()
    edits = {
        "drop the epoch proof": lambda d: d["epochs"].clear(),
        "record of another epoch": lambda d: d["epochs"][0].__setitem__(
            "record", _reepoch(d["epochs"][0]["record"])
        ),
        "bad bucket path": lambda d: d["epochs"][0]["proof"]["bucket_path"].__setitem__(0, bytes(32)),
        "bad state index": lambda d: d["epochs"][0]["proof"].__setitem__(
            "index", d["epochs"][0]["proof"]["index"] + 1
        ),
        "bucket path cut short": lambda d: d["epochs"][0]["proof"]["bucket_path"].pop(),
        "proof missing": lambda d: d["epochs"][0].__setitem__("proof", None),
        "forged QC": lambda d: d["epochs"][0]["qc"][2].pop(),
        "header edited": lambda d: d["epochs"][0]["headers"][0].__setitem__(6, 12345),
        "extra field": lambda d: d["epochs"][0].__setitem__("x", 1),
    }
    for name, edit in edits.items():
        bad = copy.deepcopy(doc)
        edit(bad)
        with pytest.raises(ReceiptError):
            Receipt.from_bytes(codec.encode(bad)).verify(c.genesis)
        assert name
    c.close()


def _reepoch(raw: bytes) -> bytes:
    rec = codec.decode(raw)
    rec["epoch"] += 1
    return codec.encode(rec)


def test_admitting_a_new_node_that_caught_up_as_observer(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=4)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    _anchor(c, m, b"before")
    key = PrivateKey.generate()
    cert = Certificate.issue(c.root, "node-new", "New county", [Role.CONSENSUS_NODE], key.public_key, 0)
    newcomer = Replica(c.genesis, tmp_path / "new.db", key)
    assert not newcomer.voting
    c.net.add(newcomer)
    c.submit(c.supervisor, "member.add", {"certificate": cert.to_dict()})
    node = Identity(key, cert)
    # registered, it is an observer: it does not vote until it proves it caught up
    with pytest.raises(ValidationError, match=r"node\.ready"):
        c.submit(c.supervisor, "member.promote", {"cert_id": cert.cert_id})
    c.net.run_until(lambda: newcomer.store.head_height() >= c.replicas[0].store.head_height())
    assert _epochs(c) == {0} and not newcomer.voting
    height = newcomer.store.head_height()
    with pytest.raises(ValidationError, match="not this chain's block"):
        c.submit(node, "node.ready", {"height": height, "block_hash": bytes(32)})
    with pytest.raises(ValidationError, match="may not"):  # only the node itself attests
        c.submit(m, "node.ready", {"height": height, "block_hash": newcomer.app.head_hash})
    c.submit(node, "node.ready", {"height": height, "block_hash": newcomer.app.head_hash})
    c.submit(c.supervisor, "member.promote", {"cert_id": cert.cert_id})
    c.net.run_until(lambda: _epochs(c) == {1} and newcomer.voting)
    assert newcomer.node_id == node_id(cert.cert_id)
    signed_by_newcomer = []
    c.net.on_commit.append(
        lambda name, ev: signed_by_newcomer.append(
            any(a == newcomer.node_id for a, _ in (ev.proof.qc.signatures if ev.proof else ()))
        )
    )
    for i in range(6):
        _anchor(c, m, b"after %d" % i)
    assert any(signed_by_newcomer)  # the new node's votes count
    assert newcomer.store.load_state().root == c.replicas[0].store.load_state().root
    with pytest.raises(ValidationError, match="already votes"):
        c.submit(c.supervisor, "member.promote", {"cert_id": cert.cert_id})
    c.close()


def test_equivocation_evidence_goes_on_chain_and_excludes_the_author(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=5)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    _anchor(c, m, b"x")
    liar = c.nodes[3]
    liar_id = node_id(liar.cert.cert_id)
    r = 10_000
    votes = sorted(
        encode_message(
            Vote(liar_id, r, h, liar.key.sign(vote_signing_bytes(c.genesis.chain_id, c.genesis.hash, r, h)))
        )
        for h in (b"a" * 32, b"b" * 32)
    )
    ev = Evidence("vote", liar_id, r, votes[0], votes[1])
    wire = encode_message(EvidenceMsg((ev,)))
    reporter = c.net.name_of(c.replicas[0])
    for name in c.net.replicas:  # gossip to every node, whoever leads next
        c.net.inject(name, reporter, c.replicas[0].node_id, wire)
    _anchor(c, m, b"y")
    c.net.run_until(lambda: _epochs(c) == {1}, 60_000)
    state = c.replicas[0].app.state
    assert state.get(EXCLUDED + liar.cert.cert_id) is not None
    assert any(True for _ in state.items_with_prefix(EVIDENCE))
    assert liar_id not in current_epoch(state, c.genesis).node_ids()
    _anchor(c, m, b"z")  # 4 honest nodes go on
    c.close()


def test_forged_evidence_is_ignored(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=4)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    victim = node_id(c.nodes[1].cert.cert_id)
    forged = sorted(encode_message(Vote(victim, 9, h, bytes(64))) for h in (b"a" * 32, b"b" * 32))
    wire = encode_message(EvidenceMsg((Evidence("vote", victim, 9, forged[0], forged[1]),)))
    for name in c.net.replicas:
        c.net.inject(name, "node-0", c.replicas[0].node_id, wire)
    _anchor(c, m, b"a")
    _anchor(c, m, b"b")
    assert _epochs(c) == {0}
    assert c.replicas[0].app.state.get(EXCLUDED + c.nodes[1].cert.cert_id) is None
    c.close()


def test_a_node_that_misses_its_turns_is_excluded(tmp_path: Path) -> None:
    c = LocalConsortium.create(
        tmp_path,
        nodes=5,
        params=ChainParams(
            round_timeout_ms=500, max_missed_turns=2, empty_blocks=True, block_interval_ms=100
        ),
    )
    m = c.add_member("m", [Role.MEDIA_CENTER])
    silent = c.replicas[2]
    c.net.down.add(c.net.name_of(silent))
    silent_cert = next(n.cert for n in c.nodes if n.key == silent.key)
    for i in range(12):
        _anchor(c, m, b"turn %d" % i)
        if c.replicas[0].app.state.get(EXCLUDED + silent_cert.cert_id) is not None:
            break
    reason = c.replicas[0].app.state.get(EXCLUDED + silent_cert.cert_id)
    assert reason is not None and b"missed" in reason
    live = [r for r in c.replicas if r is not silent]
    c.net.run_until(lambda: {current_epoch(r.app.state, c.genesis).epoch for r in live} == {1})
    _anchor(c, m, b"after exclusion")
    c.close()


def test_restart_after_an_epoch_change(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=5)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    c.submit(c.supervisor, "member.revoke", {"cert_id": c.nodes[4].cert.cert_id, "reason": "x"})
    c.net.run_until(lambda: _epochs(c) == {1})
    _anchor(c, m, b"one")
    keys = [n.key for n in c.nodes]
    now = c.net.now
    c.close()
    replicas = [Replica(c.genesis, tmp_path / f"node-{i}.db", k) for i, k in enumerate(keys)]
    assert {r.core.epoch for r in replicas} == {1}
    assert sum(r.voting for r in replicas) == 4
    net = LocalNet(replicas, start_ms=now)
    net.start()
    tx = m.sign(c.genesis.chain_id, "anchor", {"digest": b"two".ljust(32, b"."), "kind": "t"}, now)
    net.wait(net.submit(tx.to_bytes()))
    for r in replicas:
        r.close()


def test_missed_turns_need_heartbeat_blocks() -> None:
    from chain.types import ValidationError

    with pytest.raises(ValidationError, match="empty_blocks"):
        ChainParams(max_missed_turns=3)
    with pytest.raises(ValidationError, match="max_missed_turns"):
        ChainParams.from_dict({**ChainParams().to_dict(), "max_missed_turns": -1})


def test_membership_by_consensus_node_vote(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=5, params=ChainParams(membership_by_vote=True))
    key = PrivateKey.generate()
    cert = Certificate.issue(c.root, "Legal center", "Legal", [Role.LEGAL_CENTER], key.public_key, 0)
    action = {"action": "add", "certificate": cert.to_dict()}
    need = 4  # quorum of 5
    for i in range(need - 1):
        c.submit(c.nodes[i], "member.vote", action)
    member = Identity(key, cert)
    with pytest.raises(ValidationError, match="not registered"):
        c.net.submit(
            member.sign(c.genesis.chain_id, "anchor", {"digest": b"q" * 32, "kind": "t"}, 1).to_bytes()
        )
    member.nonce -= 1
    with pytest.raises(ValidationError, match="already voted"):
        c.net.submit(c.nodes[0].sign(c.genesis.chain_id, "member.vote", action, 1).to_bytes())
    c.nodes[0].nonce -= 1  # refused: its nonce is still free (nonces are sequential)
    with pytest.raises(ValidationError, match="may not"):  # members who are not nodes do not vote
        c.net.submit(c.supervisor.sign(c.genesis.chain_id, "member.vote", action, 1).to_bytes())
    c.supervisor.nonce -= 1
    c.submit(c.nodes[need - 1], "member.vote", action)
    _anchor(c, member, b"now a member")
    with pytest.raises(ValidationError, match="already decided"):
        c.net.submit(c.nodes[4].sign(c.genesis.chain_id, "member.vote", action, 1).to_bytes())
    c.nodes[4].nonce -= 1
    # revoking a consensus node by vote changes the epoch
    revoke = {"action": "revoke", "cert_id": c.nodes[4].cert.cert_id, "reason": "vote"}
    for i in range(need):
        c.submit(c.nodes[i], "member.vote", revoke)
    c.net.run_until(lambda: _epochs(c) == {1})
    c.close()


def test_membership_vote_needs_the_genesis_switch(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=4)
    key = PrivateKey.generate()
    cert = Certificate.issue(c.root, "x", "x", [Role.AUDITOR], key.public_key, 0)
    tx = c.nodes[0].sign(
        c.genesis.chain_id, "member.vote", {"action": "add", "certificate": cert.to_dict()}, 1
    )
    with pytest.raises(ValidationError, match="does not allow"):
        c.net.submit(tx.to_bytes())
    bad = c.nodes[0].sign(c.genesis.chain_id, "member.vote", {"action": "demote", "cert_id": b"x" * 32}, 1)
    with pytest.raises(ValidationError, match="'add', 'revoke' or 'promote'"):
        c.net.submit(bad.to_bytes())
    c.close()
