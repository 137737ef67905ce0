"""Heights over time: progress after a moment, catch-up, stalls."""

from __future__ import annotations

from rongxin.e2e.monitor import HeightMonitor


def test_queries_over_observed_heights() -> None:
    m = HeightMonitor({}, lambda: 0.0)
    for name, t, h in [
        ("a", 0.5, 1),
        ("b", 0.6, 1),
        ("a", 1.0, 2),
        ("b", 1.2, 2),
        ("a", 4.0, 3),
        ("b", 9.0, 3),
    ]:
        m.observe(name, t, h)
    m.observe("a", 4.5, 3)
    assert m.seen["a"] == [(0.5, 1), (1.0, 2), (4.0, 3), (4.5, 3)]
    assert m.advances == [(0.5, 1), (1.0, 2), (4.0, 3)]
    assert m.height("b") == 3 and m.height("c") is None and m.best() == 3
    assert m.best_at(0.0) == 0 and m.best_at(1.1) == 2
    assert m.advanced_after(1.0) == 4.0 and m.advanced_after(4.0) is None
    assert m.reached("b", 3, 2.0) == 9.0
    assert m.reached("a", 2, 2.0) == 4.0  # the first answer after the moment counts
    assert m.reached("a", 3, 4.2) == 4.5
    assert m.reached("c", 1, 0.0) is None
    assert m.max_stall(0.0, 5.0) == (3.0, 1.0)
