"""The replica CPU bench runs every stage on real blocks, in both roles."""

from __future__ import annotations

import time

from bench.ledger_cpu import STAGES, consortium, presign, run


def test_both_roles_commit_everything_and_time_every_stage() -> None:
    genesis, node_keys, clients = consortium(3)
    txs = presign(clients, 4, int(time.time() * 1000), genesis.chain_id)
    assert len(txs) == 12
    proposer = run(genesis, node_keys[1], txs, 5, proposer=True)
    other = run(genesis, node_keys[1], txs, 5, proposer=False)
    assert set(proposer) == set(other) == set(STAGES)
    assert all(proposer[s] > 0 for s in ("admit", "build", "execute", "store"))
    assert other["build"] == 0.0 and other["execute"] > 0
