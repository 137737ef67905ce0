"""Missed leader turns are counted per validator in O(n), identically to a per-round loop."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto import PrivateKey
from chain.epochs import EXCLUDED, MISSED, finalize_block
from chain.executor import genesis_state
from chain.state import Overlay
from chain.types import Certificate, ChainParams, Genesis, Role
from tests.chain.consensus.timing import deadline

ROOT = PrivateKey.generate()
CERTS = tuple(
    Certificate.issue(ROOT, f"n{i}", "o", [Role.CONSENSUS_NODE], PrivateKey.generate().public_key, 0)
    for i in range(7)
)


def _genesis(n: int, limit: int) -> Genesis:
    params = ChainParams(max_missed_turns=limit, empty_blocks=True)
    return Genesis("c", "c", ROOT.public_key.to_bytes(), CERTS[:n], params)


def _per_round_reference(state: Overlay, ids: list[str], parent_round: int, round: int, limit: int) -> None:
    """The original bookkeeping: one step per skipped round."""
    for r in range(parent_round + 1, round):
        leader = bytes.fromhex(ids[r % len(ids)])
        raw = state.get(MISSED + leader)
        missed = (int.from_bytes(raw, "big") if raw else 0) + 1
        state.set(MISSED + leader, missed.to_bytes(8, "big"))
        if missed >= limit and state.get(EXCLUDED + leader) is None:
            state.set(EXCLUDED + leader, f"missed {missed} consecutive leader turns".encode())


def _state(g: Genesis, prior: list[int], excluded: list[bool]) -> Overlay:
    ov = Overlay(genesis_state(g))
    for cert, count, gone in zip(g.certificates, prior, excluded, strict=False):
        if count:
            ov.set(MISSED + cert.cert_id, count.to_bytes(8, "big"))
        if gone:
            ov.set(EXCLUDED + cert.cert_id, b"earlier")
    return ov


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 7),
    limit=st.integers(1, 6),
    parent_round=st.integers(0, 40),
    gap=st.integers(0, 30),
    proposer=st.integers(0, 6),
    prior=st.lists(st.integers(0, 5), min_size=7, max_size=7),
    excluded=st.lists(st.booleans(), min_size=7, max_size=7),
)
def test_arithmetic_count_matches_the_per_round_loop(
    n: int, limit: int, parent_round: int, gap: int, proposer: int, prior: list[int], excluded: list[bool]
) -> None:
    g = _genesis(n, limit)
    ids = sorted(c.cert_id.hex() for c in g.certificates)
    round = parent_round + 1 + gap  # gaps up to 30 cover gap > n, gap % n == 0 and gap < n
    who = ids[proposer % n]
    fast = _state(g, prior, excluded)
    new_epoch = finalize_block(fast, g, 5, round, parent_round, who, [])
    slow = _state(g, prior, excluded)
    _per_round_reference(slow, ids, parent_round, round, limit)
    old_epoch = finalize_block(slow, g, 5, round, round - 1, who, [])  # no gap left: the rest only
    assert fast.changes() == slow.changes()
    assert new_epoch == old_epoch


def test_a_huge_round_gap_costs_microseconds() -> None:
    g = _genesis(4, 3)
    ids = sorted(c.cert_id.hex() for c in g.certificates)
    ov = Overlay(genesis_state(g))
    with deadline(5):  # the per-round loop took ~1 s per million rounds: it would never end
        t0 = time.perf_counter()
        record = finalize_block(ov, g, 1, 1 + (1 << 40), 0, ids[1], [])
    assert time.perf_counter() - t0 < 0.1
    # every validator (the proposer too) missed 2^38 turns in the gap: all excluded, and an
    # empty set never takes over
    assert record is None
    for i in ids:
        assert ov.get(EXCLUDED + bytes.fromhex(i)) == b"missed 3 consecutive leader turns"
    missed = {i: ov.get(MISSED + bytes.fromhex(i)) for i in ids}
    assert missed[ids[1]] is None  # the proposer's count restarts
    assert {int.from_bytes(missed[i] or b"", "big") for i in ids if i != ids[1]} == {1 << 38}
