"""Long-range forgeries: revoked validators' leaked keys sign backdated blocks; a pinned
checkpoint taken after the revocation refuses them, while honest receipts still verify."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.consensus.messages import Block, QuorumCertificate, genesis_qc, vote_signing_bytes
from chain.crypto import PrivateKey
from chain.epochs import current_epoch
from chain.localnet import Identity, LocalConsortium
from chain.receipt import (
    Checkpoint,
    Receipt,
    ReceiptError,
    build_checkpoint,
    build_receipt,
    verify_anchored_digest,
    verify_checkpoint,
    verify_receipt,
)
from chain.replica import chain_genesis_block, node_id, tx_root
from chain.types import Genesis, Role, Transaction


@dataclasses.dataclass
class Scene:
    c: LocalConsortium
    old_tx: Transaction
    old_receipt: Receipt
    leaked: dict[str, PrivateKey]
    revoked_node: Identity
    checkpoint: Checkpoint


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """Four genesis validators; three are replaced one per epoch (a node admitted, then
    one revoked); their keys then leak."""
    c = LocalConsortium.create(tmp_path_factory.mktemp("longrange"), nodes=4)
    m = c.add_member("County media center", [Role.MEDIA_CENTER])
    old_tx = m.sign(c.genesis.chain_id, "anchor", {"digest": b"w" * 32, "kind": "work"}, 5)
    c.net.wait(c.net.submit(old_tx.to_bytes()))
    old_receipt = c.receipt(old_tx.tx_id)
    genesis_nodes = list(c.nodes)
    for i, leaving in enumerate(genesis_nodes[:3]):
        c.add_node(f"node-new-{i}")
        c.submit(c.supervisor, "member.revoke", {"cert_id": leaving.cert.cert_id, "reason": "key leaked"})
        c.net.run_until(lambda n=leaving: all(not r.voting for r in c.replicas if r.key is n.key))
    record = current_epoch(c.replicas[0].app.state, c.genesis)
    assert record.epoch == 6 and len(record.validators) == 4
    assert {v.cert_id for v in record.validators}.isdisjoint(n.cert.cert_id for n in genesis_nodes[:3])
    c.submit(m, "anchor", {"digest": b"after" + bytes(27), "kind": "work"})
    checkpoint = build_checkpoint(c.replicas[0].store, c.genesis)
    leaked = {node_id(n.cert.cert_id): n.key for n in genesis_nodes[:3]}
    yield Scene(c, old_tx, old_receipt, leaked, genesis_nodes[0], checkpoint)
    c.close()


def _qc(genesis: Genesis, block: Block, keys: dict[str, PrivateKey]) -> QuorumCertificate:
    msg = vote_signing_bytes(genesis.chain_id, genesis.hash, block.round, block.hash, block.epoch)
    return QuorumCertificate(
        block.round, block.hash, tuple(sorted((a, k.sign(msg)) for a, k in keys.items()))
    )


def _forge(
    genesis: Genesis, keys: dict[str, PrivateKey], tx: Transaction, sender: dict, height: int = 1
) -> Receipt:
    """A receipt for ``tx`` in a made-up epoch-0 block at ``height``, signed by ``keys``."""
    proposer = sorted(keys)[0]
    parent = chain_genesis_block(genesis)
    raw = tx.to_bytes()
    block = Block(
        genesis.chain_id,
        height,
        height,
        parent.hash if height == 1 else b"\x05" * 32,
        (raw,),
        tx_root([raw]),
        b"\x11" * 32,
        1000 + height,
        proposer,
        genesis_qc(parent),
    )
    child = Block(
        genesis.chain_id,
        height + 1,
        height + 1,
        block.hash,
        (),
        tx_root([]),
        b"\x12" * 32,
        1001 + height,
        proposer,
        _qc(genesis, block, keys),
    )
    top = _qc(genesis, child, keys)
    headers = (block.header_obj(), child.header_obj())
    return Receipt(genesis.chain_id, raw, 0, 1, (), headers, top.to_obj(), sender)


def test_backdated_receipt_is_refused_with_a_checkpoint(scene: Scene) -> None:
    g = scene.c.genesis
    forged = _forge(g, scene.leaked, scene.old_tx, scene.old_receipt.sender_certificate)
    # what a receipt alone proves: a quorum of epoch 0 signed it — the leaked keys did
    assert verify_receipt(forged, g).height == 1
    with pytest.raises(ReceiptError) as e:
        verify_receipt(Receipt.from_bytes(forged.to_bytes()), g, scene.checkpoint)
    assert e.value.reason == "checkpoint"  # its epoch chain stops at 0; the checkpoint is at 6
    # with the real epoch proofs copied in, it still is not in the chain's history
    honest = build_receipt(scene.c.replicas[0].store, scene.old_tx.tx_id)
    padded = dataclasses.replace(forged, epochs=honest.epochs)
    assert verify_receipt(padded, g).height == 1
    with pytest.raises(ReceiptError) as e:
        verify_receipt(padded, g, scene.checkpoint)
    assert e.value.reason == "history"
    # a forged history, signed by the same leaked keys, does not help
    fake_history = dict(honest.history)
    fake_history["headers"], fake_history["qc"] = forged.headers, forged.qc
    with pytest.raises(ReceiptError):
        verify_receipt(dataclasses.replace(padded, history=fake_history), g, scene.checkpoint)


def test_revoked_node_cannot_anchor_a_digest_with_a_checkpoint(scene: Scene) -> None:
    g = scene.c.genesis
    node = scene.revoked_node
    digest = b"\xee" * 32
    tx = Transaction.create(
        node.key, node.cert.cert_id, "anchor", {"digest": digest, "kind": "x"}, 1, 5, g.chain_id
    )
    forged = _forge(g, scene.leaked, tx, node.cert.to_dict())
    assert verify_anchored_digest(forged, g, digest, 0, []).transaction.payload["digest"] == digest
    with pytest.raises(ReceiptError):
        verify_anchored_digest(forged, g, digest, 0, [], scene.checkpoint)


def test_a_block_after_the_end_of_its_epoch_is_refused_without_checkpoint(scene: Scene) -> None:
    g = scene.c.genesis
    honest = build_receipt(scene.c.replicas[0].store, scene.old_tx.tx_id)
    end_of_epoch_0 = Receipt.from_bytes(honest.to_bytes()).epochs[0]["headers"][0][1]
    late = _forge(g, scene.leaked, scene.old_tx, honest.sender_certificate, height=end_of_epoch_0 + 3)
    with pytest.raises(ReceiptError) as e:
        verify_receipt(dataclasses.replace(late, epochs=honest.epochs), g)
    assert e.value.reason == "epoch" and "after the end of epoch 0" in str(e.value)


def test_honest_receipts_verify_with_the_checkpoint(scene: Scene) -> None:
    g = scene.c.genesis
    cp = Checkpoint.from_bytes(scene.checkpoint.to_bytes())
    info = verify_checkpoint(cp, g)
    assert info.epoch == 6 and info.height == scene.c.replicas[0].store.head_height()
    # the receipt made at anchoring time predates the checkpoint: rebuilt, it verifies
    assert verify_receipt(scene.old_receipt, g).tx_id == scene.old_tx.tx_id
    with pytest.raises(ReceiptError) as e:
        verify_receipt(scene.old_receipt, g, cp)
    assert e.value.reason in ("history", "checkpoint") and "rebuild" in str(e.value)
    for replica in scene.c.replicas:
        rebuilt = Receipt.from_bytes(build_receipt(replica.store, scene.old_tx.tx_id).to_bytes())
        assert rebuilt.history is not None
        assert verify_receipt(rebuilt, g, cp).block_hash == verify_receipt(scene.old_receipt, g).block_hash
    # a transaction after the checkpoint is signed by the checkpoint's validators
    m = scene.c.members["County media center"]
    later = scene.c.anchor(m, b"later".ljust(32, b"."), "work")
    assert verify_receipt(later, g, cp).height > info.height


def test_tampered_checkpoints_are_refused(scene: Scene) -> None:
    g = scene.c.genesis
    cp = scene.checkpoint
    bad = {
        "other genesis": dataclasses.replace(cp, genesis_hash=b"\x00" * 32),
        "qc short of quorum": dataclasses.replace(cp, qc=[cp.qc[0], cp.qc[1], cp.qc[2][:1]]),
        "record of another epoch": dataclasses.replace(cp, record=build_checkpoint_record_of(scene, 1)),
        "state path": dataclasses.replace(
            cp, proof={**cp.proof, "bucket_path": [b"\x00" * 32, *cp.proof["bucket_path"][1:]]}
        ),
        "no state proof": dataclasses.replace(cp, proof=None),
    }
    for name, checkpoint in bad.items():
        with pytest.raises(ReceiptError):
            verify_checkpoint(checkpoint, g)
        assert name
    for garbage in (b"", b"\xa0", Receipt.from_bytes(scene.old_receipt.to_bytes()).to_bytes()):
        with pytest.raises(ReceiptError) as e:
            Checkpoint.from_bytes(garbage)
        assert e.value.reason == "malformed"
    other = LocalConsortium.create(Path(scene.c.directory) / "other", nodes=4, chain_id=g.chain_id)
    try:
        with pytest.raises(ReceiptError) as e:
            build_checkpoint(scene.c.replicas[0].store, other.genesis)
        assert e.value.reason == "wrong-chain"
    finally:
        other.close()


def build_checkpoint_record_of(scene: Scene, epoch: int) -> bytes:
    from chain.epochs import epoch_key

    raw = scene.c.replicas[0].store.get_state(epoch_key(epoch))
    assert raw is not None
    return raw
