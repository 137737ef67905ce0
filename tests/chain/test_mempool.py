"""The bounded mempool: de-duplication, limits, eviction, commit clean-up, proposal order,
and its use by a replica (verify once, never decode the pool, O(block) commits)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.localnet import LocalConsortium
from chain.mempool import COMMITTED, Mempool, MempoolConfig, MempoolEntry
from chain.types import Role, Transaction, ValidationError


def entry(sender: bytes, nonce: int, size: int = 10, tag: bytes = b"") -> MempoolEntry:
    raw = (sender + b"/%d/" % nonce + tag).ljust(size, b".")
    return MempoolEntry(
        sender.ljust(16, b"_") + nonce.to_bytes(8, "big") + tag.ljust(8, b"_"), raw, sender, nonce
    )


def pool(max_txs: int = 100, max_bytes: int = 1 << 20, max_per_sender: int = 100, seen: int = 100) -> Mempool:
    return Mempool(MempoolConfig(max_txs, max_bytes, max_per_sender, seen))


def fixed(nonces: dict[bytes, int]) -> Callable[[bytes], int]:
    return lambda sender: nonces.get(sender, 1)


# --------------------------------------------------------------------------- admission
def test_the_same_transaction_is_one_entry() -> None:
    p = pool()
    e = entry(b"a", 1)
    assert p.add(e) == [] and p.add(e) == []
    assert len(p) == 1 and p.total_bytes == e.size and e.tx_id in p and p.get(e.tx_id) == e


def test_one_pending_transaction_per_sender_and_nonce() -> None:
    p = pool()
    p.add(entry(b"a", 1))
    with pytest.raises(ValidationError, match="nonce 1 of this sender is pending"):
        p.add(entry(b"a", 1, tag=b"other"))


def test_per_sender_limit() -> None:
    p = pool(max_per_sender=2)
    p.add(entry(b"a", 1))
    p.add(entry(b"a", 2))
    with pytest.raises(ValidationError, match="limit per sender"):
        p.check(b"a", 3, 10)
    p.add(entry(b"b", 1))  # others are not affected


def test_full_pool_evicts_the_newest_of_the_heaviest_other_sender() -> None:
    p = pool(max_txs=4)
    for n in range(1, 4):
        p.add(entry(b"heavy", n))
    p.add(entry(b"light", 1))
    evicted = p.add(entry(b"new", 1))
    assert [(e.sender, e.nonce) for e in evicted] == [(b"heavy", 3)]
    assert p.pending(b"heavy") == 2 and p.pending(b"new") == 1 and len(p) == 4
    assert p.stats().evicted == 1


def test_full_pool_never_evicts_a_sender_for_its_own_later_transaction() -> None:
    p = pool(max_txs=3)
    for n in range(1, 4):
        p.add(entry(b"a", n))
    with pytest.raises(ValidationError, match="mempool is full"):
        p.add(entry(b"a", 4))
    assert [e.nonce for e in p] == [1, 2, 3]
    assert p.stats().refused_full == 1


def test_full_pool_refuses_when_eviction_would_be_unfair() -> None:
    p = pool(max_txs=4)
    for n in range(1, 3):
        p.add(entry(b"a", n))
        p.add(entry(b"b", n))
    # b would end with 3 while a keeps 1: refused, and a and b cannot evict each other back and forth
    with pytest.raises(ValidationError, match="mempool is full"):
        p.add(entry(b"b", 3))
    assert p.add(entry(b"c", 1))[0].sender in {b"a", b"b"}


def test_byte_limit_evicts_as_many_as_needed_or_none() -> None:
    p = pool(max_bytes=100)
    for n in range(1, 6):
        p.add(entry(b"heavy", n, size=20))
    evicted = p.add(entry(b"big", 1, size=45))
    assert [e.nonce for e in evicted] == [5, 4, 3]
    assert p.total_bytes == 2 * 20 + 45
    with pytest.raises(ValidationError, match="mempool is full"):
        p.add(entry(b"huge", 1, size=101))  # never fits: nothing is evicted for it
    assert p.total_bytes == 85


# --------------------------------------------------------------------------- commit
def test_commit_drops_the_block_and_stale_nonces_of_its_senders_only() -> None:
    p = pool()
    for n in range(1, 6):
        p.add(entry(b"a", n))
    p.add(entry(b"b", 1))
    asked: list[bytes] = []

    def next_nonce(sender: bytes) -> int:
        asked.append(sender)
        return 4

    committed = [(entry(b"a", 1).tx_id, b"a", 1), (b"x" * 32, b"a", 3)]  # a's nonce 3 came from elsewhere
    assert p.remove_committed(committed, next_nonce) == 3
    assert asked == [b"a"]  # b's queue is not looked at
    assert [(e.sender, e.nonce) for e in p] == [(b"b", 1), (b"a", 4), (b"a", 5)]  # a rotated to the back
    assert p.refusal(entry(b"a", 1).tx_id) == COMMITTED and p.refusal(b"x" * 32) == COMMITTED
    assert p.refusal(entry(b"a", 2).tx_id) is None  # dropped, not committed


def test_seen_cache_is_bounded_least_recent_first() -> None:
    p = pool(seen=2)
    for i in range(3):
        p.remember(bytes([i]) * 32)
    assert p.refusal(b"\x00" * 32) is None and p.refusal(b"\x02" * 32) == COMMITTED
    assert p.stats().seen == 2


# --------------------------------------------------------------------------- proposals
def test_cursor_is_round_robin_from_the_next_nonce_and_stops_at_gaps() -> None:
    p = pool()
    for sender, nonces in [(b"a", [1, 2, 3]), (b"b", [5, 6, 8]), (b"c", [2, 3]), (b"d", [1])]:
        for n in nonces:
            p.add(entry(sender, n))
    order = [(e.sender, e.nonce) for e in p.cursor(fixed({b"b": 5, b"c": 1}))]
    # c waits for nonce 1; b stops before its gap at 7
    assert order == [(b"a", 1), (b"b", 5), (b"d", 1), (b"a", 2), (b"b", 6), (b"a", 3)]
    assert p.reap(3, 1 << 20) == [e.raw for e in (entry(b"a", 1), entry(b"b", 5), entry(b"c", 2))]
    assert len(p.reap(100, 25)) == 2  # bytes bound


def test_cursor_skip_sender_drops_the_rest_of_its_run() -> None:
    p = pool()
    for sender in (b"a", b"b"):
        for n in (1, 2, 3):
            p.add(entry(sender, n))
    cursor = p.cursor(fixed({}))
    seen = []
    for e in cursor:
        seen.append((e.sender, e.nonce))
        if e.sender == b"a":
            cursor.skip_sender()
    assert seen == [(b"a", 1), (b"b", 1), (b"b", 2), (b"b", 3)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["add", "commit", "remove"]), st.integers(0, 4), st.integers(1, 8)),
        max_size=80,
    )
)
def test_indexes_stay_consistent(ops: list[tuple[str, int, int]]) -> None:
    p = pool(max_txs=12, max_bytes=400, max_per_sender=5)
    committed: dict[bytes, int] = {}
    for op, s, n in ops:
        sender = b"s%d" % s
        if op == "add":
            if n < committed.get(sender, 1):
                continue  # the replica refuses a used nonce before the pool sees it
            e = entry(sender, n, size=10 + 7 * n)
            before = p.pending(sender)
            try:
                evicted = p.add(e)
            except ValidationError:
                continue
            assert all(v.sender != sender for v in evicted)
            assert p.pending(sender) in (before, before + 1)
        elif op == "commit":
            committed[sender] = max(committed.get(sender, 1), n + 1)
            p.remove_committed([(b"c" * 32, sender, n)], fixed(committed))
        else:
            victims = [e for e in p if e.sender == sender]
            if victims:
                p.remove(victims[0].tx_id)
        entries = list(p)
        assert len(entries) == len(p) <= 12
        assert sum(e.size for e in entries) == p.total_bytes <= 400
        per: dict[bytes, list[int]] = {}
        for e in entries:
            per.setdefault(e.sender, []).append(e.nonce)
            assert e.nonce >= committed.get(e.sender, 1)
        assert all(v == sorted(set(v)) and len(v) <= 5 for v in per.values())
        assert p.stats().senders == len(per)
        assert all(p.pending(s) == len(v) for s, v in per.items())


# --------------------------------------------------------------------------- in a replica
def _signed(c: LocalConsortium, who: object, i: int) -> bytes:
    tx = who.sign(c.genesis.chain_id, "anchor", {"digest": i.to_bytes(32, "big"), "kind": "t"}, c.net.now)  # type: ignore[attr-defined]
    return tx.to_bytes()  # type: ignore[no-any-return]


def test_replica_verifies_each_transaction_once_and_refuses_late_copies(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=4)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    raws = [_signed(c, m, i) for i in range(30)]
    before = [r.app.executor.verifications for r in c.replicas]
    ids = [c.net.submit(raw) for raw in raws]
    assert [c.net.submit(raw) for raw in raws] == ids  # gossip copies: same ids, nothing re-verified
    c.net.wait(ids[-1])
    c.net.run_until(lambda: all(c.net.committed_everywhere(t) for t in ids))
    assert [r.app.executor.verifications - b for r, b in zip(c.replicas, before, strict=True)] == [30] * 4
    app = c.replicas[0].app

    def no_lookup(tx_id: bytes) -> None:
        raise AssertionError("the seen cache should answer")

    app.store.tx_location = no_lookup  # type: ignore[method-assign]
    with pytest.raises(ValidationError, match="already committed"):
        app.submit(raws[0])
    c.close()


def test_replica_mempool_limits_and_full_refusal(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=1)
    a = c.add_member("a", [Role.MEDIA_CENTER])
    app = c.replicas[0].app
    app.mempool = Mempool(MempoolConfig(max_txs=3, max_per_sender=2))
    app.submit(_signed(c, a, 1))
    app.submit(_signed(c, a, 2))
    with pytest.raises(ValidationError, match="limit per sender"):
        app.submit(_signed(c, a, 3))
    c.close()


def test_build_payload_and_commit_do_not_scan_the_pool(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=1)
    members = [c.add_member(f"m{i}", [Role.MEDIA_CENTER]) for i in range(3)]
    replica = c.replicas[0]
    app = replica.app
    raws = [_signed(c, members[i % 3], i) for i in range(300)]
    for raw in raws:
        app.submit(raw)
    calls = 0
    executor = app.executor

    class Counting:
        """The executor, counting the entries it decodes or applies (a compiled class's
        methods cannot be replaced on the instance, so the app gets this stand-in)."""

        def __getattr__(self, name: str) -> object:
            return getattr(executor, name)

        def decode(self, raw: bytes) -> Transaction:
            nonlocal calls
            calls += 1
            return executor.decode(raw)

        def apply_one(self, *args: Any) -> Any:  # decodes the entry it applies
            nonlocal calls
            calls += 1
            return executor.apply_one(*args)

    app.executor = Counting()  # type: ignore[assignment]
    payload = app.build_payload(app.head_block, c.net.now, 10, 1 << 20)
    app.executor = executor
    assert len(payload) == 10 and 1 <= calls <= 10  # only the chosen entries were looked at
    assert payload[:3] == raws[:3]  # one per sender, round-robin
    c.close()


def test_invalid_pending_transaction_is_dropped_when_building_on_the_head(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=1)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    app = c.replicas[0].app
    raw = _signed(c, m, 1)
    app.submit(raw)  # only this node has it; the revocation then commits first
    c.submit(c.supervisor, "member.revoke", {"cert_id": m.cert.cert_id, "reason": "left"})
    assert app.build_payload(app.head_block, c.net.now, 10, 1 << 20) == []
    assert len(app.mempool) == 0
    c.close()


def test_a_forged_signature_is_checked_once(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=1)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    good = Transaction.from_bytes(_signed(c, m, 1))
    forged = replace(good, signature=bytes(64)).to_bytes()
    app = c.replicas[0].app
    before = app.executor.verifications
    for _ in range(3):  # gossip brings the same bad bytes again
        with pytest.raises(ValidationError, match="signature"):
            app.submit(forged)
    assert app.executor.verifications == before + 1
    c.close()
