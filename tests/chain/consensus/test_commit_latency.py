"""Without heartbeat blocks, a transaction commits on every node within a few block
intervals: the leader that forms the committing QC still proposes the (empty) block that
carries it, instead of leaving the other nodes to learn it at the next round timeout."""

from __future__ import annotations

import os
from pathlib import Path

from chain.localnet import LocalConsortium
from chain.types import ChainParams


def test_commit_reaches_every_node_before_a_round_timeout(tmp_path: Path) -> None:
    params = ChainParams(round_timeout_ms=5000, block_interval_ms=100, empty_blocks=False)
    c = LocalConsortium.create(tmp_path, nodes=5, params=params)
    try:
        for _ in range(3):
            tx = c.supervisor.sign(
                c.genesis.chain_id, "anchor", {"digest": os.urandom(32), "kind": "work"}, c.net.now
            )
            start = c.net.now
            tx_id = c.net.submit(tx.to_bytes())
            c.net.wait(tx_id, max_virtual_ms=10_000)
            assert c.net.now - start < 1000, f"commit took {c.net.now - start} ms of virtual time"
    finally:
        c.close()
