"""The state and storage path bench commits real blocks and times every step at each size."""

from __future__ import annotations

import random

from bench.ledger_store import SENDERS, STEPS, block_of, run


def test_blocks_are_anchor_shaped() -> None:
    listed, changes, results = block_of(random.Random(1), 5)
    assert len(listed) == len(results) == 5 and all(len(i) == 32 for i, _ in listed)
    anchors = [k for k in changes if k.startswith(b"anchor/")]
    assert len(anchors) == 5 and len(changes) == 5 + SENDERS


def test_each_size_is_reached_and_every_step_timed() -> None:
    out = run([100, 300], txs=20, measured=3, seed=2)
    assert list(out) == [100, 300]
    for point, row in out.items():
        assert point <= row["first"] < row["last"] and row["last"] - row["first"] == 3 * 20
        assert all(row[s] >= 0 for s in STEPS) and row["root"] > 0 and row["write"] > 0
