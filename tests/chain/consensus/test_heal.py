"""After a partition that left no quorum heals, the next block comes within a few message
delays, not after the round timers, which backed off to their longest while no round
could end: each node sends its round's timeout (and vote) to a peer whose link reopens."""

from __future__ import annotations

import pytest

from chain.consensus.simulator import Scenario, Simulator

HEAL_MS = 6_000
ROUND_TIMEOUT_MS = 200  # the simulator caps the backoff at four times this: 800 ms


def _scenario(seed: int, groups: tuple[frozenset[str], ...], spread_ms: int) -> Scenario:
    return Scenario(
        seed=seed,
        n=5,
        twins=None,
        crashes=(),
        partitions=((groups, 500, HEAL_MS),),
        drop_rate=0.0,
        dup_rate=0.0,
        max_delay_ms=10,
        post_gst_delay_ms=10,
        gst_ms=HEAL_MS,
        end_ms=HEAL_MS + 3_000,
        block_interval_ms=50,
        empty_blocks=True,
        round_timeout_ms=ROUND_TIMEOUT_MS,
        txs=(),
        roles=(("m0", "writer"),),
        reconnect_spread_ms=spread_ms,
    )


SPLITS = [
    (frozenset({"v0", "v1", "v2"}), frozenset({"v3", "v4"})),
    (frozenset({"v0", "v3"}), frozenset({"v1", "v2", "v4"})),
    (frozenset({"v1", "v4"}), frozenset({"v0", "v2", "v3"})),
]


@pytest.mark.parametrize("spread_ms", [0, 400])
@pytest.mark.parametrize("seed", range(6))
def test_progress_resumes_within_message_delays_of_the_heal(seed: int, spread_ms: int) -> None:
    """``spread_ms``: the links reopen one by one over this long, so the next leader's
    proposal leaves before some of them are back (nodes pass it on when they reconnect)."""
    sim = Simulator(_scenario(seed, SPLITS[seed % len(SPLITS)], spread_ms))
    result = sim.run()
    assert result.ok, result.report()
    during = [t for log in sim.commit_log.values() for _, t in log if 1_500 <= t < HEAL_MS]
    assert during == [], "no side of the partition has a quorum: nothing may commit"
    after = sorted(t for log in sim.commit_log.values() for _, t in log if t >= HEAL_MS)
    assert after, "no block after the heal"
    # once the links are back: a timeout round and a proposal round, a handful of 10-ms
    # message delays, far below a backed-off round timer (800 ms)
    took = after[0] - HEAL_MS
    assert took < spread_ms + ROUND_TIMEOUT_MS, f"first block {took} ms after the heal"
    assert min(result.heights.values()) >= max(result.heights.values()) - 2
