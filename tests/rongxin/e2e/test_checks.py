"""Black-box checks: forks, acknowledged transactions, conflicting pairs, drained load."""

from __future__ import annotations

from typing import Any

from rongxin.e2e.checks import (
    check_acknowledged,
    check_conflicts,
    check_drained,
    check_excluded,
    check_votes,
    compare_chains,
    compare_restored,
)
from rongxin.e2e.load import Acks, SignedTx


def tx(n: int) -> SignedTx:
    return SignedTx(n, b"raw%d" % n, bytes([n]) * 32)


def block(height: int, digest: str, *txs: SignedTx, parent: str | None = None) -> dict[str, Any]:
    return {
        "height": height,
        "hash": digest,
        "parent_hash": parent,
        "txs": [{"tx_id": t.tx_id.hex()} for t in txs],
    }


def test_compare_chains_finds_forks_bad_links_and_wrong_heights() -> None:
    a = [block(1, "h1"), block(2, "h2", parent="h1"), block(3, "h3", parent="h2")]
    assert compare_chains({"n0": a, "n1": a[:2]}) == []
    b = [block(1, "h1"), block(2, "x2", parent="h1")]
    assert compare_chains({"n0": a, "n1": b}) == ["fork at height 2: n0 has h2, n1 has x2"]
    broken = [block(1, "h1"), block(2, "h2", parent="zz")]
    assert compare_chains({"n0": broken}) == ["n0: block 2 does not link to block 1 (parent hash)"]
    assert compare_chains({"n0": [block(2, "h2")]}) == ["n0: /blocks/1 answered height 2"]


def test_acknowledged_transactions_must_be_everywhere_at_their_height() -> None:
    t1, t2, t3 = tx(1), tx(2), tx(3)
    good = [block(1, "h1", t1), block(2, "h2", t2)]
    acks = Acks()
    acks.record(t1, "c", {"status": "committed", "height": 1}, None)
    acks.record(t2, "c", {"status": "accepted"}, None)
    acks.record(t3, "c", {"status": "accepted"}, None)  # admitted, never committed: allowed
    assert check_acknowledged({"n0": good, "n1": good}, acks) == []
    moved = [block(1, "h1"), block(2, "h2", t1)]
    problems = check_acknowledged({"n0": good, "n1": moved}, acks)
    assert any("acknowledged committed at height 1 is at 2 on n1" in p for p in problems)
    assert any("not alike on every node" in p for p in problems)


def test_acks_sort_answers() -> None:
    acks = Acks()
    acks.record(tx(1), "c", None, "nonce 4 already used (replayed transaction; next is 5)")
    acks.record(tx(2), "c", {"status": "committed", "height": 7}, None)
    acks.record(tx(3), "c", {"tx_id": "ab", "status": "accepted"}, None)
    assert acks.committed == {tx(2).tx_id: 7} and acks.accepted == {tx(3).tx_id}
    assert dict(acks.refused) == {"nonce N already used (replayed transaction": 1}
    assert set(acks.sent) == {tx(1).tx_id, tx(2).tx_id, tx(3).tx_id}


def test_exactly_one_of_each_conflicting_pair() -> None:
    a = [tx(1), tx(2), tx(3)]
    b = [SignedTx(n, b"other", bytes([100 + n]) * 32) for n in (1, 2, 3)]
    pairs = list(zip(a, b, strict=True))
    fine = [block(1, "h1", a[0], b[1]), block(2, "h2", a[2])]
    assert check_conflicts({"n0": fine}, pairs) == []
    both = [block(1, "h1", a[0], b[0])]
    assert check_conflicts({"n0": both}, pairs) == [
        "both transactions with nonce 1 committed (heights 1 and 1)"
    ]
    gap = [block(1, "h1", a[0], a[2])]
    assert check_conflicts({"n0": gap}, pairs) == [
        "neither transaction with nonce 2 committed, yet nonce 3 is"
    ]


def test_drained_load_is_all_committed() -> None:
    sent = [tx(1), tx(2), tx(3)]
    assert check_drained({"n0": [block(1, "h1", *sent)]}, sent) == []
    assert check_drained({"n0": [block(1, "h1", sent[0])]}, sent) == [
        "2 sent transaction(s) never committed (nonces [2, 3])"
    ]


def test_restored_node_must_match_from_its_snapshot_on() -> None:
    ref = [block(1, "h1"), block(2, "h2", parent="h1"), block(3, "h3", parent="h2")]
    assert compare_restored(ref, "j", [block(2, "h2"), block(3, "h3")]) == []
    assert compare_restored(ref, "j", [block(2, "h2"), block(3, "x3")]) == [
        "fork at height 3: j (restored from a snapshot) has x3, the others h3"
    ]
    assert compare_restored(ref, "j", []) == ["j (restored from a snapshot) holds no block to compare"]


def test_promoted_node_must_sign_a_certificate_after_its_promotion() -> None:
    chain = [
        dict(block(h, f"h{h}"), qc={"signers": ["a", "b", "c"] + (["j"] if h == 5 else [])})
        for h in range(1, 7)
    ]
    assert check_votes(chain, "joiner", "j", 3) == []
    assert check_votes(chain, "joiner", "j", 5) == [
        "joiner, promoted at height 5, signed no quorum certificate in blocks 6..6"
    ]
    assert check_votes(chain, "joiner", "zz", 0) != []


def test_byzantine_node_must_be_caught_and_excluded() -> None:
    chain = [dict(block(1, "h1"), evidence=0), dict(block(2, "h2"), evidence=1)]
    out = {"epoch": 1, "current": {"validators": [{"id": "a"}, {"id": "b"}]}}
    assert check_excluded(chain, out, "node-4", "z") == []
    assert check_excluded(chain, out, "node-4", "a") == ["node-4 is still a validator in epoch 1"]
    assert check_excluded(chain[:1], out, "node-4", "z") == [
        "no block carries evidence against node-4 (it equivocated)"
    ]
