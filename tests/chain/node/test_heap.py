"""The node process's garbage-collector setting and its counters (chain.node.heap)."""

from __future__ import annotations

import gc

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from chain.node.heap import GC_THRESHOLDS, GcStats, gc_stats, tuned_collector


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_tuned_collector_freezes_sets_thresholds_and_undoes_both() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    kept = [_Cycle() for _ in range(100)]  # alive at the freeze
    with tuned_collector() as frozen:
        # frozen objects freed since (by reference counting) leave the count; none join it
        assert frozen >= 100 and 0 < gc.get_freeze_count() <= frozen
        assert gc.get_threshold() == GC_THRESHOLDS != before
        # a cycle made after the freeze is still collected
        _Cycle()
        assert gc.collect() >= 1
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert len(kept) == 100


def test_tuned_collector_undoes_its_setting_when_the_body_raises() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), tuned_collector((5_000, 5, 5)):
        assert gc.get_threshold() == (5_000, 5, 5)
        raise RuntimeError("the node failed")
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_stats_count_each_generation_and_keep_the_longest() -> None:
    stats = GcStats()
    stats.install()
    stats.install()  # a second install does not count twice
    try:
        assert gc.callbacks.count(stats._callback) == 1
        gc.collect(0)
        gc.collect(1)
        gc.collect(1)
        gc.collect(2)
        assert stats.collections[1] == 2 and stats.collections[2] == 1
        assert stats.collections[0] >= 1  # the interpreter may collect on its own too
        assert all(s > 0 for s in stats.seconds)
        assert 0 < stats.longest <= max(stats.seconds)
    finally:
        stats.uninstall()
    n = stats.collections[2]
    gc.collect()
    assert stats.collections[2] == n  # uninstalled: no longer counting
    stats.uninstall()  # twice is harmless


def test_stats_ignore_a_callback_without_a_generation() -> None:
    stats = GcStats()
    stats._callback("start", {})
    stats._callback("stop", {"generation": 7})
    stats._callback("stop", {})
    assert stats.collections == [0, 0, 0] and stats.longest == 0


def test_the_collector_metrics_count_collections_and_frozen_objects() -> None:
    from chain.node.metrics import _GcCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_GcCollector(gc_stats()))
    gc.collect()
    text = generate_latest(registry).decode()
    line = next(
        x for x in text.splitlines() if x.startswith('rongxin_process_gc_collections_total{generation="2"}')
    )
    assert float(line.split()[-1]) >= 1
    assert 'rongxin_process_gc_seconds_total{generation="0"}' in text
    assert "rongxin_process_gc_longest_seconds" in text
    with tuned_collector() as frozen:
        text = generate_latest(registry).decode()
        line = next(x for x in text.splitlines() if x.startswith("rongxin_process_gc_frozen_objects"))
        assert frozen / 2 < float(line.split()[-1]) <= frozen
