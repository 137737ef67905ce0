"""Replicas: consensus + executor + SQLite, restarts, crashes, catch-up, refusals."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from chain import codec
from chain.consensus.core import SafetyData
from chain.consensus.messages import ConsensusError, QuorumCertificate, Vote
from chain.crypto import PrivateKey
from chain.localnet import LocalConsortium, LocalNet
from chain.merkle import merkle_root
from chain.replica import Replica, decode_safety, encode_safety
from chain.store import StoreError
from chain.types import Certificate, Role, Transaction, ValidationError


def _anchor(c: LocalConsortium, who: object, i: int) -> bytes:
    tx = who.sign(c.genesis.chain_id, "anchor", {"digest": i.to_bytes(32, "big"), "kind": "t"}, c.net.now)  # type: ignore[attr-defined]
    return c.net.submit(tx.to_bytes())


def test_every_node_commits_the_same_chain_with_merkle_and_state_roots(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=5)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    ids = [_anchor(c, m, i) for i in range(20)]
    c.net.wait(ids[-1])
    heads = {r.store.head_height() for r in c.replicas}
    c.net.run_until(lambda: all(r.store.head_height() >= max(heads) for r in c.replicas))
    top = min(r.store.head_height() for r in c.replicas)
    for h in range(1, top + 1):
        rows = [r.store.block(h) for r in c.replicas]
        assert len({row.hash for row in rows if row}) == 1, f"disagreement at height {h}"
        row = rows[0]
        assert row is not None
        header = codec.decode(row.block)
        assert header[4] == merkle_root(c.replicas[0].store.transactions(h))
    for r in c.replicas:
        head = r.store.block(r.store.head_height())
        assert head is not None and r.store.load_state().root == head.state_root
        assert all(r.store.tx_location(t) is not None for t in ids)
    c.close()


def test_restart_from_disk_keeps_chain_and_safety_data(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=4)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    c.net.wait(_anchor(c, m, 1))
    before = {r.node_id: (r.store.head_height(), r.store.head_hash()) for r in c.replicas}
    voted = {r.node_id: r.core.safety.highest_voted_round for r in c.replicas if r.core}
    keys = [n.key for n in c.nodes]
    c.close()
    replicas = [Replica(c.genesis, tmp_path / f"node-{i}.db", k) for i, k in enumerate(keys)]
    for r in replicas:
        h, hh = before[r.node_id]
        assert (r.store.head_height(), r.store.head_hash()) == (h, hh)
        loaded = r.core.safety_store.load() if r.core else None
        assert loaded is not None and loaded.highest_voted_round == voted[r.node_id]
    net = LocalNet(replicas, start_ms=c.net.now)
    net.start()
    for r in replicas:  # a restarted node enters a round after every round it voted in
        assert r.core is not None and r.core.round > voted[r.node_id] - 1
    tx = m.sign(c.genesis.chain_id, "anchor", {"digest": b"n" * 32, "kind": "t"}, net.now)
    net.wait(net.submit(tx.to_bytes()))
    assert all(r.store.head_height() > before[r.node_id][0] for r in replicas)
    for r in replicas:
        r.close()


def test_progress_with_f_crashed_and_catch_up_after_restart(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=5)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    victim = c.replicas[2]
    c.net.down.add(c.net.name_of(victim))
    ids = [_anchor(c, m, i) for i in range(5)]
    c.net.wait(ids[-1])
    assert victim.store.tx_location(ids[-1]) is None
    c.net.down.clear()
    c.net.handle(c.net.name_of(victim), victim.core.start(c.net.now))  # the node comes back
    c.net.wait(_anchor(c, m, 99))
    assert all(victim.store.tx_location(t) is not None for t in ids)
    assert victim.store.load_state().root == c.replicas[0].store.load_state().root
    c.close()


def test_submit_refuses_bad_transactions_with_reasons(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=4)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    chain_id = c.genesis.chain_id
    good = m.sign(chain_id, "anchor", {"digest": b"a" * 32, "kind": "t"}, 1)
    forged = replace(good, signature=bytes(64))
    with pytest.raises(ValidationError, match="signature"):
        c.net.submit(forged.to_bytes())
    stranger_key = PrivateKey.generate()
    stranger = Certificate.issue(c.root, "s", "s", [Role.MEDIA_CENTER], stranger_key.public_key, 0)
    tx = Transaction.create(
        stranger_key, stranger.cert_id, "anchor", {"digest": b"b" * 32, "kind": "t"}, 1, 1, chain_id
    )
    with pytest.raises(ValidationError, match="not registered"):
        c.net.submit(tx.to_bytes())
    other_chain = m.sign("other-chain", "anchor", {"digest": b"c" * 32, "kind": "t"}, 1)
    with pytest.raises(ValidationError):
        c.net.submit(other_chain.to_bytes())
    with pytest.raises(ValidationError):
        c.net.submit(b"\x00garbage")
    observer = c.add_member("obs", [Role.AUDITOR])
    with pytest.raises(ValidationError, match="may not"):
        c.net.submit(observer.sign(chain_id, "member.add", {"certificate": stranger.to_dict()}, 1).to_bytes())
    c.net.wait(c.net.submit(good.to_bytes()))
    with pytest.raises(ValidationError, match="already committed"):
        c.net.submit(good.to_bytes())
    c.close()


def test_revocation_takes_effect_from_the_next_height(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=4)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    c.net.wait(_anchor(c, m, 1))
    c.submit(c.supervisor, "member.revoke", {"cert_id": m.cert.cert_id, "reason": "left the consortium"})
    with pytest.raises(ValidationError, match="revoked"):
        _anchor(c, m, 2)
    c.close()


def test_damaged_state_is_detected_on_open(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=1)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    c.net.wait(_anchor(c, m, 1))
    key = c.nodes[0].key
    c.close()
    pristine = (tmp_path / "node-0.db").read_bytes()
    for damage in (
        "UPDATE state SET value = x'00' WHERE key = (SELECT MIN(key) FROM state)",
        "UPDATE state SET leaf = zeroblob(32) WHERE key = (SELECT MAX(key) FROM state)",
        "DELETE FROM state WHERE key = (SELECT MIN(key) FROM state)",
    ):
        (tmp_path / "node-0.db").write_bytes(pristine)
        db = sqlite3.connect(tmp_path / "node-0.db")
        db.execute(damage)
        db.commit()
        db.close()
        with pytest.raises(StoreError, match="damaged"):
            Replica(c.genesis, tmp_path / "node-0.db", key)


def test_key_of_a_non_validator_runs_an_observer(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=4)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    observer = Replica(c.genesis, tmp_path / "x.db", PrivateKey.generate())
    assert not observer.voting and observer.node_id.startswith("observer-")
    with pytest.raises(ConsensusError, match="observer"):
        _ = observer.core.signer
    c.net.add(observer)
    tx_id = _anchor(c, m, 7)
    c.net.run_until(lambda: observer.store.tx_location(tx_id) is not None)
    assert observer.store.load_state().root == c.replicas[0].store.load_state().root
    assert observer.core.safety_store.load() is None  # it never voted
    c.close()


def test_safety_data_round_trip_and_corruption() -> None:
    qc = QuorumCertificate(3, b"h" * 32, (("a", b"s"),))
    data = SafetyData(5, 3, 4, qc, None, Vote("a", 5, b"b" * 32, b"sig"), None)
    assert decode_safety(encode_safety(data)) == data
    with pytest.raises(ConsensusError):
        decode_safety(b"\x00")
    with pytest.raises(ConsensusError):
        decode_safety(codec.encode([1, 2]))


def test_every_node_restarted_with_an_uncommitted_certified_block(tmp_path: Path) -> None:
    """All nodes stop while their high QC certifies blocks nobody committed (so no store
    has them); after the restart they still extend that chain and commit."""
    c = LocalConsortium.create(tmp_path, nodes=4)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    tx = m.sign(c.genesis.chain_id, "anchor", {"digest": b"u" * 32, "kind": "t"}, c.net.now)
    c.net.submit(tx.to_bytes())

    def uncommitted_qc() -> bool:
        return any(
            r.core.high_qc.round > 0 and r.store.block_by_hash(r.core.high_qc.block_hash) is None
            for r in c.replicas
        )

    c.net.run_until(uncommitted_qc)
    keys = [n.key for n in c.nodes]
    now = c.net.now
    c.close()
    replicas = [Replica(c.genesis, tmp_path / f"node-{i}.db", k) for i, k in enumerate(keys)]
    net = LocalNet(replicas, start_ms=now)
    net.start()
    assert all(r.core.get_block(r.core.high_qc.block_hash) is not None for r in replicas)
    net.submit(tx.to_bytes())  # mempools are volatile: the client sends its transaction again
    tx2 = m.sign(c.genesis.chain_id, "anchor", {"digest": b"v" * 32, "kind": "t"}, net.now)
    net.wait(net.submit(tx2.to_bytes()), max_virtual_ms=60_000)
    assert all(r.store.tx_location(tx.tx_id) is not None for r in replicas)
    assert (
        len(
            {
                r.store.head_hash()
                for r in replicas
                if r.store.head_height() == replicas[0].store.head_height()
            }
        )
        == 1
    )
    for r in replicas:
        r.close()


def test_a_known_copy_is_answered_from_its_id_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = LocalConsortium.create(tmp_path, nodes=4)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    app = c.replicas[0].app
    chain_id = c.genesis.chain_id
    first = m.sign(chain_id, "anchor", {"digest": b"a" * 32, "kind": "t"}, 1).to_bytes()
    c.net.wait(c.net.submit(first))
    pending = m.sign(chain_id, "anchor", {"digest": b"b" * 32, "kind": "t"}, 1).to_bytes()
    pending_id = app.submit(pending)
    decoded: list[bytes] = []
    real = Transaction.from_bytes

    def counting(data: bytes) -> Transaction:
        decoded.append(bytes(data))
        return real(data)

    monkeypatch.setattr(Transaction, "from_bytes", staticmethod(counting))
    assert app.is_known(pending_id) and app.is_known(real(first).tx_id)
    app.executor.forget([first, pending])  # as after a commit: neither is in the decode cache
    assert app.submit(pending) == pending_id  # a second copy of a pending transaction
    with pytest.raises(ValidationError, match="already committed"):
        app.submit(first)  # a late copy of a committed one
    assert decoded == []
    # bytes that are not a transaction still go through the decoder and are refused by it
    with pytest.raises(ValidationError, match="canonically"):
        app.submit(first[:-1])
    with pytest.raises(ValidationError, match="exceeds"):
        app.submit(first + bytes(70_000))
    assert not app.is_known(b"\x00" * 32)
    # once the mempool no longer remembers it, a replay is still refused, from the store's index
    app.mempool._seen.clear()
    with pytest.raises(ValidationError, match="already committed"):
        app.submit(first)
    assert app.is_known(real(first).tx_id)  # and remembered again
    c.close()
