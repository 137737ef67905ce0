"""Compact proposals: wire forms, rebuilding from the mempool, fetching missing transactions."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from chain.codec import encode
from chain.consensus.messages import Block, ConsensusError, Proposal, encode_message
from chain.crypto.sm3 import sm3
from chain.net import Channel
from chain.node.compact import (
    CompactProposal,
    Rebuilds,
    TxRequest,
    TxResponse,
    decode_compact,
    decode_tx_request,
    decode_tx_response,
    serve,
    tag_of,
)
from chain.node.host import NodeHost
from chain.replica import tx_root
from tests.chain.node.host_fixtures import HostNet, StubPeer, anchor_tx, free_ports, same_chain, wait_for


def _proposal(raws: list[bytes], height: int = 1, round: int = 1) -> Proposal:
    block = Block(
        "rongxin-hosttest",
        height,
        round,
        b"\x07" * 32,
        tuple(raws),
        tx_root(raws),
        b"\x05" * 32,
        1_000,
        "leader",
        None,
    )
    return Proposal(block, b"signature")


def _nothing(tx_id: bytes) -> bytes | None:
    return None


def _compact(raws: list[bytes], **kw: int) -> CompactProposal:
    return CompactProposal.of(_proposal(raws, **kw), [sm3(r) for r in raws])


# --------------------------------------------------------------------------- wire forms
def test_compact_round_trip_keeps_the_block_hash() -> None:
    raws = [os.urandom(100 + i) for i in range(5)]
    p = _proposal(raws)
    cp = CompactProposal.of(p, [sm3(r) for r in raws])
    data = cp.to_bytes()
    assert tag_of(data) == "compact_proposal"
    assert tag_of(encode_message(p)) is None
    back = decode_compact(data)
    assert back == cp
    assert back.block_hash == p.block.hash
    assert back.rebuild(raws) == p
    # 34 bytes per transaction (an id and its head), whatever the transaction's size
    bigger = CompactProposal.of(_proposal([r * 10 for r in raws]), [sm3(r * 10) for r in raws])
    assert len(bigger.to_bytes()) == len(data)
    one_more = _compact([*raws, b"x"]).to_bytes()
    assert len(one_more) == len(data) + 34


def test_compact_of_an_empty_block() -> None:
    p = _proposal([])
    cp = CompactProposal.of(p, [])
    assert decode_compact(cp.to_bytes()).rebuild([]) == p


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d[:-1],  # truncated
        lambda d: d + b"\x00",  # trailing byte
        lambda d: b"\x00" + d,
    ],
)
def test_decode_compact_refuses_malformed_bytes(mangle: Any) -> None:
    data = _compact([b"a", b"b"]).to_bytes()
    with pytest.raises(ConsensusError):
        decode_compact(mangle(data))


def test_decode_compact_refuses_bad_ids_and_a_payload() -> None:
    cp = _compact([b"a", b"b"])
    obj = [cp.header.to_obj(), list(cp.tx_ids), cp.signature]

    def wire(o: list[Any]) -> bytes:
        return encode(["compact_proposal", o])

    assert decode_compact(wire(obj)) == cp
    with pytest.raises(ConsensusError, match="repeats"):
        decode_compact(wire([obj[0], [cp.tx_ids[0], cp.tx_ids[0]], obj[2]]))
    with pytest.raises(ConsensusError, match="32-byte"):
        decode_compact(wire([obj[0], [b"short"], obj[2]]))
    with pytest.raises(ConsensusError, match="more than 1"):
        decode_compact(wire(obj), max_txs=1)
    full = _proposal([b"a"]).block.to_obj()
    with pytest.raises(ConsensusError, match="carries no transactions"):
        decode_compact(wire([full, [sm3(b"a")], obj[2]]))
    with pytest.raises(ConsensusError, match="sig"):
        decode_compact(wire([obj[0], obj[1], "not bytes"]))
    with pytest.raises(ConsensusError):
        decode_compact(encode(["tx_request", obj]))
    with pytest.raises(ConsensusError, match="one transaction per id"):
        cp.rebuild([b"a"])
    with pytest.raises(ConsensusError, match="one id per transaction"):
        CompactProposal.of(_proposal([b"a"]), [])


def test_tx_request_and_response_round_trip_and_limits() -> None:
    req = TxRequest(b"\x01" * 32, (sm3(b"a"), sm3(b"b")))
    assert decode_tx_request(req.to_bytes()) == req
    assert tag_of(req.to_bytes()) == "tx_request"
    with pytest.raises(ConsensusError):
        decode_tx_request(req.to_bytes(), max_txs=1)
    with pytest.raises(ConsensusError, match="32 bytes"):
        decode_tx_request(encode(["tx_request", [b"x", []]]))
    resp = TxResponse(b"\x01" * 32, (b"a", b"b"))
    assert decode_tx_response(resp.to_bytes()) == resp
    assert tag_of(resp.to_bytes()) == "tx_response"
    with pytest.raises(ConsensusError):
        decode_tx_response(resp.to_bytes(), max_txs=1)
    with pytest.raises(ConsensusError):
        decode_tx_response(encode(["tx_response", [b"\x01" * 32, ["text"]]]))


# --------------------------------------------------------------------------- rebuilding
def test_rebuild_from_the_mempool_alone() -> None:
    raws = [os.urandom(50) for _ in range(4)]
    pool = {sm3(r): r for r in raws}
    rb = Rebuilds(pool.get)
    cp = _compact(raws)
    got = rb.start("leader", cp, deadline_ms=10)
    assert isinstance(got, Proposal) and got.block.payload == tuple(raws)
    assert got.block.hash == cp.block_hash
    assert not rb.pending


def test_missing_transactions_are_fetched_and_checked_against_their_ids() -> None:
    raws = [os.urandom(50) for _ in range(4)]
    pool = {sm3(r): r for r in raws[:2]}
    rb = Rebuilds(pool.get)
    cp = _compact(raws)
    missing = rb.start("leader", cp, deadline_ms=10)
    assert missing == [sm3(raws[2]), sm3(raws[3])]
    # a forged transaction (bytes whose id the block does not list) is refused
    assert rb.fill(TxResponse(cp.block_hash, (os.urandom(50),))) is None
    assert rb.refused == 1 and len(rb.pending[cp.block_hash].missing) == 2
    # a response for a block not being rebuilt is refused
    assert rb.fill(TxResponse(b"\x09" * 32, (raws[2],))) is None
    assert rb.refused == 2
    # one right, one forged: the right one is kept
    assert rb.fill(TxResponse(cp.block_hash, (raws[2], raws[0] + b"x"))) is None
    assert rb.fetched == 1 and rb.refused == 3
    # a copy of an already filled transaction is not needed any more: refused
    assert rb.fill(TxResponse(cp.block_hash, (raws[2],))) is None
    assert rb.refused == 4
    done = rb.fill(TxResponse(cp.block_hash, (raws[3],)))
    assert done is not None
    sender, proposal = done
    assert sender == "leader" and proposal.block.payload == tuple(raws)
    assert proposal.block.hash == cp.block_hash
    assert not rb.pending


def test_unknown_ids_never_complete_and_expire_at_the_deadline() -> None:
    rb = Rebuilds(_nothing)
    cp = _compact([os.urandom(40) for _ in range(3)])
    assert rb.start("byzantine", cp, deadline_ms=100) == list(cp.tx_ids)
    assert rb.expire(99) == 0 and cp.block_hash in rb.pending
    assert rb.expire(100) == 1 and not rb.pending and rb.expired == 1


def test_pending_rebuilds_are_bounded_per_sender_and_in_all() -> None:
    rb = Rebuilds(_nothing, max_pending=4, per_sender=2)
    honest = _compact([b"honest"], round=1)
    rb.start("honest", honest, 1_000)
    flood = [_compact([os.urandom(8)], round=r) for r in range(2, 12)]
    for cp in flood:
        rb.start("flooder", cp, 1_000)
    assert honest.block_hash in rb.pending  # the flood evicted only the flooder's own
    assert sum(1 for p in rb.pending.values() if p.sender == "flooder") == 2
    for i, cp in enumerate(flood[:5]):
        rb.start(f"peer-{i}", cp, 1_000)
    assert len(rb.pending) == 4


def test_serve_answers_from_the_block_then_the_lookup() -> None:
    raws = [os.urandom(30) for _ in range(3)]
    block = _proposal(raws).block
    extra = os.urandom(30)
    req = TxRequest(block.hash, (sm3(raws[2]), sm3(extra), sm3(b"unknown"), sm3(raws[0])))
    resp = serve(req, block, {sm3(extra): extra}.get, sm3)
    assert resp == TxResponse(block.hash, (raws[2], extra, raws[0]))
    assert serve(req, None, _nothing, sm3).txs == ()


# --------------------------------------------------------------------------- in the host
def _host(tmp_path: Path) -> tuple[HostNet, NodeHost, list[Any]]:
    net = HostNet.create(tmp_path, nodes=4)
    host = net.build(0, free_ports(1)[0], [])
    delivered: list[Any] = []

    def deliver(sender: str, msg: Proposal) -> None:
        delivered.append((sender, msg))

    host._deliver_proposal = deliver  # type: ignore[method-assign]
    return net, host, delivered


def test_host_rebuilds_from_its_mempool_without_fetching(tmp_path: Path) -> None:
    async def main() -> None:
        net, host, delivered = _host(tmp_path)
        try:
            raws = [anchor_tx(net, net.supervisor, os.urandom(32), host.now_ms()) for _ in range(3)]
            for raw in raws:
                host.replica.app.submit(raw)
            peer = StubPeer("leader")
            host._on_consensus(peer, Channel.CONSENSUS, _compact(raws).to_bytes())  # type: ignore[arg-type]
            assert [p.block.payload for _, p in delivered] == [tuple(raws)]
            assert peer.sent == [] and host.counters.tx_requests == 0
        finally:
            host.replica.close()

    asyncio.run(main())


def test_host_fetches_missing_refuses_forged_and_ignores_unknown(tmp_path: Path) -> None:
    async def main() -> None:
        net, host, delivered = _host(tmp_path)
        calls: list[Any] = []

        def on_message(*args: Any) -> list[Any]:
            calls.append(args)
            return []

        host.replica.core.on_message = on_message  # type: ignore[method-assign,assignment]
        try:
            raws = [anchor_tx(net, net.supervisor, os.urandom(32), host.now_ms()) for _ in range(3)]
            host.replica.app.submit(raws[0])
            peer = StubPeer("leader")
            cp = _compact(raws)
            host._on_consensus(peer, Channel.CONSENSUS, cp.to_bytes())  # type: ignore[arg-type]
            assert delivered == [] and len(peer.sent) == 1
            channel, payload = peer.sent[0]
            assert channel == Channel.BLOCK_SYNC
            assert decode_tx_request(payload) == TxRequest(cp.block_hash, (sm3(raws[1]), sm3(raws[2])))
            # a fetch on the wrong channel is refused outright
            bad = host.counters.bad_messages
            resp = TxResponse(cp.block_hash, (raws[1], raws[2]))
            host._on_consensus(peer, Channel.CONSENSUS, resp.to_bytes())  # type: ignore[arg-type]
            assert host.counters.bad_messages == bad + 1 and delivered == []
            # forged bytes in place of a listed transaction: refused, nothing delivered
            # (the last byte flipped: replacing it by a fixed one left it unchanged when it
            # was already that byte, one run in 256)
            forged = TxResponse(cp.block_hash, (raws[1][:-1] + bytes([raws[1][-1] ^ 1]),))
            host._on_consensus(peer, Channel.BLOCK_SYNC, forged.to_bytes())  # type: ignore[arg-type]
            assert host.counters.bad_messages == bad + 2 and delivered == []
            host._on_consensus(peer, Channel.BLOCK_SYNC, resp.to_bytes())  # type: ignore[arg-type]
            assert [p.block.payload for _, p in delivered] == [tuple(raws)]
            assert delivered[0][1].block.hash == cp.block_hash
            # a proposal listing ids nobody has: asked for, never delivered, dropped at the
            # round timeout; the core never sees it, so the node cannot vote for it
            unknown = _compact([os.urandom(60) for _ in range(2)], round=2)
            host._on_consensus(peer, Channel.CONSENSUS, unknown.to_bytes())  # type: ignore[arg-type]
            assert unknown.block_hash in host.rebuilds.pending
            host.rebuilds.expire(host.now_ms() + host.replica.core.config.round_timeout_ms)
            assert unknown.block_hash not in host.rebuilds.pending
            assert len(delivered) == 1 and calls == []
        finally:
            host.replica.close()

    asyncio.run(main())


def test_host_serves_a_fetch_from_its_mempool(tmp_path: Path) -> None:
    async def main() -> None:
        net, host, _ = _host(tmp_path)
        try:
            raw = anchor_tx(net, net.supervisor, os.urandom(32), host.now_ms())
            host.replica.app.submit(raw)
            peer = StubPeer("asker")
            req = TxRequest(b"\x03" * 32, (sm3(raw), sm3(b"nobody has this")))
            host._on_consensus(peer, Channel.BLOCK_SYNC, req.to_bytes())  # type: ignore[arg-type]
            assert [(c, decode_tx_response(p)) for c, p in peer.sent] == [
                (Channel.BLOCK_SYNC, TxResponse(req.block_hash, (raw,)))
            ]
        finally:
            host.replica.close()

    asyncio.run(main())


def test_a_node_without_the_gossip_fetches_and_commits_the_same_chain(tmp_path: Path) -> None:
    async def main() -> None:
        net = HostNet.create(tmp_path, nodes=4)
        await net.start(free_ports(4))
        deaf = net.hosts[3]
        deaf._on_gossip = lambda peer, payload: None  # type: ignore[method-assign]
        try:
            await wait_for(lambda: all(len(h.peers.peers) == 3 for h in net.hosts), 10, "a full mesh")
            ids = [
                net.hosts[0].submit(anchor_tx(net, net.supervisor, os.urandom(32), net.hosts[0].now_ms()))
                for _ in range(20)
            ]
            await wait_for(
                lambda: all(h.replica.store.tx_location(t) is not None for h in net.hosts for t in ids),
                20,
                "every transaction committed on every node",
            )
            top = min(h.replica.store.head_height() for h in net.hosts)
            same_chain(net, top, complete=True)
            assert all(h.counters.compact_in > 0 for h in net.hosts)
            assert deaf.rebuilds.fetched > 0 and deaf.counters.tx_requests > 0
            assert all(h.counters.bad_messages == 0 for h in net.hosts)
        finally:
            await net.stop_all()

    asyncio.run(main())
