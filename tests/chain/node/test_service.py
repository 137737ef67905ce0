"""NodeService over a replica of an in-process consortium: status, members, reads, waits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chain.errors import AuthError, CommitTimeout, ValidationError
from chain.merkle import batch_proofs
from chain.node.events import EventHub
from chain.receipt import Receipt, ReceiptError, verify_anchored_digest, verify_checkpoint
from chain.types import Certificate, Role
from tests.chain.api.harness import Node, start_node


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = start_node(tmp_path)
    yield n
    n.consortium.close()


def test_status_says_who_the_node_is_and_where_its_chain_stands(node: Node) -> None:
    node.consortium.anchor(node.member, b"\x01" * 32, "work")
    status = node.service.status()
    replica = node.consortium.replicas[0]
    assert status["node"] == "node-0"
    assert status["chain_id"] == node.genesis.chain_id
    assert status["genesis_hash"] == node.genesis.hash.hex()
    assert status["node_id"] == replica.node_id
    assert (status["role"], status["voting"]) == ("consensus", True)
    assert status["height"] == replica.store.head_height() >= 2
    assert status["head_hash"] == replica.store.head_hash().hex()
    assert status["round"] == replica.core.round
    assert (status["epoch"], status["validators"], status["mempool"]) == (0, 4, 0)
    assert (status["peers"], status["catching_up"]) == (2, False)


def test_status_extra_from_the_host(node: Node) -> None:
    node.extra.update({"catching_up": 1, "peers": 7, "uptime_s": 12, "height": -1})
    status = node.service.status()
    assert status["catching_up"] is True and status["peers"] == 7 and status["uptime_s"] == 12
    assert status["height"] >= 1  # the host cannot overwrite what the replica says
    assert node.service.status_extra()["uptime_s"] == 12


def test_an_observer_says_so(node: Node, tmp_path: Path) -> None:
    from chain.node.service import NodeService
    from chain.replica import Replica

    observer = Replica(node.genesis, tmp_path / "observer.db")
    service = NodeService("observer", observer, submit=node._submit)
    assert service.status()["role"] == "observer" and service.status()["voting"] is False
    observer.close()


def test_account_counts_the_mempool(node: Node) -> None:
    cert_id = node.member.cert.cert_id
    assert node.service.account(cert_id)["next_nonce"] == 1
    node.consortium.net.submit(node.anchor_tx(b"\x02" * 32).to_bytes())
    node.consortium.net.submit(node.anchor_tx(b"\x03" * 32).to_bytes())
    account = node.service.account(cert_id)
    assert (account["next_nonce"], account["pending_nonce"]) == (1, 3)
    assert account["registered"] and account["roles"] == ["media_center"]
    unknown = node.service.account(b"\x09" * 32)
    assert not unknown["registered"] and unknown["next_nonce"] == 1


def test_authorized_member_checks_registration_revocation_and_validity(node: Node) -> None:
    service, c = node.service, node.consortium
    assert service.authorized_member(node.member.cert.cert_id, 0) == node.member.cert
    assert service.authorized_member(c.nodes[0].cert.cert_id, 0) == c.nodes[0].cert  # a genesis node
    with pytest.raises(AuthError, match="not registered") as e:
        service.authorized_member(b"\x05" * 32, 0)
    assert e.value.status == 403
    key = c.key_factory()
    short = Certificate.issue(c.root, "Short-lived", "s", [Role.AUDITOR], key.public_key, 0, 1000)
    c.submit(c.supervisor, "member.add", {"certificate": short.to_dict()})
    assert service.authorized_member(short.cert_id, 500) == short
    with pytest.raises(AuthError, match="not valid"):
        service.authorized_member(short.cert_id, 2000)
    c.submit(c.supervisor, "member.revoke", {"cert_id": node.member.cert.cert_id, "reason": "left"})
    with pytest.raises(AuthError, match="revoked from height"):
        service.authorized_member(node.member.cert.cert_id, 0)


def test_reads_of_blocks_transactions_receipts(node: Node) -> None:
    receipt = node.consortium.anchor(node.member, b"\x04" * 32, "work")
    info = receipt.verify(node.genesis)
    service = node.service
    block = service.block(info.height)
    assert block is not None and block["hash"] == info.block_hash.hex()
    assert service.block_by_hash(info.block_hash) == block
    assert info.tx_id.hex() in [t["tx_id"] for t in block["txs"]]
    assert block["qc"]["signers"]
    assert service.block(0)["height"] == 0  # type: ignore[index]
    assert service.block(10_000) is None and service.block_by_hash(b"\x00" * 32) is None
    tx = service.transaction(info.tx_id)
    assert tx is not None and tx["status"] == "committed" and tx["height"] == info.height
    assert tx["tx"]["payload"]["digest"] == "04" * 32 and tx["result"]["status"] == "anchored"
    assert service.transaction(b"\x00" * 32) is None
    assert service.receipt(info.tx_id).verify(node.genesis).tx_id == info.tx_id
    assert service.receipt(info.tx_id) is service.receipt(info.tx_id)  # cached per head
    with pytest.raises(ReceiptError, match="not-committed"):
        service.receipt(b"\x00" * 32)
    verify_checkpoint(service.checkpoint(), node.genesis)


def test_pending_transaction(node: Node) -> None:
    tx = node.anchor_tx(b"\x06" * 32)
    node.consortium.net.submit(tx.to_bytes())
    found = node.service.transaction(tx.tx_id)
    assert found is not None and found["status"] == "pending" and found["tx"]["nonce"] == 1


def test_anchor_lookup_direct_and_in_a_published_batch(node: Node) -> None:
    c, service = node.consortium, node.service
    assert service.anchor(b"\x08" * 32) is None
    first = c.anchor(node.member, b"\x08" * 32, "work")
    found = service.anchor(b"\x08" * 32)
    assert found is not None and found["anchor"]["kind"] == "work" and found["batch"] is None
    assert bytes.fromhex(found["receipt"]) == first.to_bytes()
    leaves = [bytes([i]) * 32 for i in range(10, 15)]
    root, proofs = batch_proofs(leaves)
    with pytest.raises(ValidationError, match="no committed anchor"):
        service.publish_batch(root, leaves)
    c.submit(node.member, "anchor", {"digest": root, "kind": "batch", "count": len(leaves)})
    with pytest.raises(ValidationError, match="batch of 5 digests, not 4"):
        service.publish_batch(root, leaves[:4])
    with pytest.raises(ValidationError, match="not the batch root"):
        service.publish_batch(root, leaves[::-1])
    assert service.publish_batch(root, leaves)["count"] == 5
    leaf = service.anchor(leaves[3])
    assert leaf is not None and leaf["batch"]["root"] == root.hex() and leaf["batch"]["index"] == 3
    path = [bytes.fromhex(p) for p in leaf["batch"]["path"]]
    assert path == proofs[3]
    receipt = Receipt.from_bytes(bytes.fromhex(leaf["receipt"]))
    assert verify_anchored_digest(receipt, node.genesis, leaves[3], 3, path).height >= 1


def test_validators_and_their_history(node: Node) -> None:
    v = node.service.validators()
    assert v["epoch"] == 0 and len(v["current"]["validators"]) == 4 and len(v["history"]) == 1
    node.consortium.add_node("node-4")
    v = node.service.validators()
    assert v["epoch"] == 1 and [e["epoch"] for e in v["history"]] == [0, 1]
    assert len(v["current"]["validators"]) == 5


def test_wait_committed_woken_by_events_or_the_store(node: Node) -> None:
    c, service = node.consortium, node.service

    async def scenario() -> tuple[int, int]:
        tx = node.anchor_tx(b"\x0a" * 32)
        c.net.submit(tx.to_bytes())
        waiter = asyncio.create_task(service.wait_committed(tx.tx_id, 5))
        await asyncio.sleep(0)
        assert service.waiting() == 1
        c.net.wait(tx.tx_id)  # commits and publishes: the event wakes the waiter
        by_event = await asyncio.wait_for(waiter, 1)
        assert service.waiting() == 0
        tx2 = node.anchor_tx(b"\x0b" * 32)
        c.net.submit(tx2.to_bytes())
        c.net.on_commit.remove(node._on_commit)  # no events: the store is polled
        waiter = asyncio.create_task(service.wait_committed(tx2.tx_id, 5))
        await asyncio.sleep(0)
        c.net.wait(tx2.tx_id)
        return by_event, await asyncio.wait_for(waiter, 2)

    first, second = asyncio.run(scenario())
    assert 1 <= first < second


def test_wait_committed_times_out(node: Node) -> None:
    with pytest.raises(CommitTimeout, match="not committed within") as e:
        asyncio.run(node.service.wait_committed(b"\x0c" * 32, 0.05))
    assert e.value.tx_id == b"\x0c" * 32 and node.service.waiting() == 0


def test_wait_committed_woken_by_a_block_event_with_transaction_ids(node: Node) -> None:
    service = node.service
    unknown = b"\x0d" * 32  # not in the store: only the event can wake the waiter

    async def scenario() -> int:
        waiter = asyncio.create_task(service.wait_committed(unknown, 5))
        await asyncio.sleep(0)
        service.hub.publish({"type": "block", "height": 41, "tx_ids": ["0e" * 32]})
        service.hub.publish({"type": "block", "height": 42})  # no ids: nothing to wake
        await asyncio.sleep(0.01)
        assert not waiter.done() and service.waiting() == 1
        service.hub.publish({"type": "block", "height": 43, "tx_ids": ["0e" * 32, unknown.hex()]})
        return await asyncio.wait_for(waiter, 1)

    assert asyncio.run(scenario()) == 43
    assert service.waiting() == 0


def test_a_node_publishes_transaction_events_only_while_someone_wants_them(node: Node) -> None:
    from chain.node.run import _publish

    c = node.consortium
    tx = node.anchor_tx(b"\x0f" * 32)
    c.net.wait(c.net.submit(tx.to_bytes()))
    replica = c.replicas[0]
    height, _ = replica.store.tx_location(tx.tx_id) or (0, 0)
    block = replica.block_store.get_by_height(height)
    assert block is not None
    host, committed = SimpleNamespace(replica=replica), SimpleNamespace(block=block)
    hub = EventHub()
    seen: list[dict[str, Any]] = []
    hub.add_listener(seen.append)
    blocks = hub.subscribe(["block"], block_tx_ids=True)
    _publish(host, hub, committed)  # type: ignore[arg-type]
    assert [e["type"] for e in seen] == ["block"] and tx.tx_id.hex() in seen[0]["tx_ids"]
    assert blocks.get_nowait() == seen[0]
    txs = hub.subscribe(["tx"], {"tx_type": "anchor"})
    _publish(host, hub, committed)  # type: ignore[arg-type]
    assert [e["type"] for e in seen[1:]] == ["block"] + ["tx"] * len(block.payload)
    event = txs.get_nowait()
    assert event is not None and event["tx_id"] == tx.tx_id.hex() and event["result"]["status"] == "anchored"
