"""Runner helpers that need no network: port blocks, IPv6 loopback, the report."""

from __future__ import annotations

import random
import socket
from pathlib import Path

from rongxin.e2e.manifest import Step
from rongxin.e2e.runner import (
    PORT_RANGE,
    Report,
    StepRecord,
    free_port_block,
    ipv6_loopback,
    release_port_block,
    struck_again,
)


def test_port_blocks_are_free_below_the_ephemeral_range_and_not_handed_out_twice() -> None:
    rng = random.Random(5)
    first = free_port_block("127.0.0.1", 40, random.Random(5))
    second = free_port_block("127.0.0.1", 40, random.Random(5))  # same draws: must move on
    try:
        assert PORT_RANGE[0] <= first < first + 40 <= PORT_RANGE[1]
        assert not set(range(first, first + 40)) & set(range(second, second + 40))
        with socket.socket() as s:
            s.bind(("127.0.0.1", first + 39))
    finally:
        release_port_block(first, 40)
        release_port_block(second, 40)
    assert free_port_block("127.0.0.1", 40, rng) >= PORT_RANGE[0]


def test_ipv6_loopback_is_a_reason_or_none() -> None:
    reason = ipv6_loopback()
    if reason is None:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    else:
        assert "IPv6" in reason or "::1" in reason


def test_report_summary_lists_steps_and_problems(tmp_path: Path) -> None:
    report = Report("demo", tmp_path, heights={"node-0": 9}, checked_height=9, load={"sent": 3})
    rec = StepRecord(Step(2.0, "kill", node="random", duration_s=1.5), ("node-2",), 2.0, 3.5, 1.2)
    rec.caught_up_s["node-2"] = 2.25
    report.steps.append(rec)
    assert report.passed
    report.problems.append("fork at height 3")
    text = report.summary()
    assert "e2e demo: FAILED" in text and "PROBLEM: fork at height 3" in text
    assert (
        "kill -9 random, down 1.5 s, at 2 s (→ node-2); next block after 1.2 s; caught up: node-2 2.2 s"
        in text
    )


def test_a_node_struck_again_before_it_caught_up_is_held_to_the_later_step() -> None:
    kill = Step(2.0, "kill", node="random", duration_s=1.5)
    stop = Step(9.0, "stop", node="leader", duration_s=2.0)
    first = StepRecord(kill, ("node-3",), 1.7, 3.2)
    second = StepRecord(kill, ("node-3",), 5.8, 7.4)  # while node-3 was still starting
    other = StepRecord(kill, ("node-1",), 8.0, 9.5)
    third = StepRecord(stop, ("node-3",), 10.4, 12.4)
    records = [first, second, other, third]
    # node-3 had not caught up when the second kill came: the second's check covers it
    assert struck_again(records, first, "node-3", 18.2) is second
    # after the second: the next step striking node-3 is the third, if before it caught up
    assert struck_again(records, second, "node-3", 11.0) is third
    assert struck_again(records, second, "node-3", 10.0) is None
    # another node, and the last step: nothing later
    assert struck_again(records, other, "node-1", 30.0) is None
    assert struck_again(records, third, "node-3", 30.0) is None
    # a step is never its own successor, even with the same times
    assert struck_again([first], first, "node-3", 99.0) is None
