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
