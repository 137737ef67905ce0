"""The video benchmark's result log: a stopped run keeps what it measured, a rerun skips it."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.video_results import ResultLog, config_key, current_code, parse_lines, upper_bound
from bench.video_robustness import FAMILIES, Corpus, QueryPlan, measure_queries, plan_query

CONFIG = {"works": {"prog-00": 1234}, "seed": 2026, "lengths": [10.0]}


def corpus() -> Corpus:
    progs = {f"prog-{i:02d}": Path(f"/m/prog-{i:02d}.mp4") for i in range(5)}
    return Corpus(
        progs,
        [Path("/m/null-0-00.mp4")],
        [Path(f"/m/null-1-{j:02d}.mp4") for j in range(3)],
        [Path(f"/m/music-{j}.ogg") for j in range(3)],
    )


def seconds(path: Path) -> float:
    return 60.0 if "prog" in path.name else 120.0


def plans(n: int, seed: int = 2026) -> list[QueryPlan]:
    rng = random.Random(seed)
    return [
        plan_query(f, L, i, corpus(), rng, seconds) for f in FAMILIES for L in (10.0, 30.0) for i in range(n)
    ]


def test_log_round_trip_and_other_configs(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "q.jsonl"
    log = ResultLog(path, CONFIG)
    assert not log.done and "a" not in log
    log.append("a", {"row": {"ours": [True], "latency": [0.5]}})
    log.append("b", {"row": {"ours": [False]}})
    other = ResultLog(path, {**CONFIG, "seed": 1})  # another run's arguments: nothing of this one
    assert not other.done
    other.append("a", {"row": {"ours": [False]}})
    again = ResultLog(path, CONFIG)
    assert sorted(again.done) == ["a", "b"]
    record = again.get("a")
    assert record is not None and record["row"] == {"ours": [True], "latency": [0.5]}
    kept = ResultLog(path, {**CONFIG, "seed": 1}).get("a")
    assert kept == {"row": {"ours": [False]}, "config": other.config, "key": "a"}


def test_a_line_cut_short_by_a_kill_is_dropped_and_the_next_append_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    log = ResultLog(path, CONFIG)
    log.append("a", {"row": {"ours": [True]}})
    whole = path.read_bytes()
    path.write_bytes(whole + whole[: len(whole) // 2])  # the process killed mid-line
    log = ResultLog(path, CONFIG)
    assert sorted(log.done) == ["a"]
    log.append("b", {"row": {"ours": [False]}})
    assert sorted(ResultLog(path, CONFIG).done) == ["a", "b"]
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["key"] == "b"  # not glued to the torn line


def test_parse_skips_what_is_not_a_record() -> None:
    key = config_key(CONFIG)
    good = json.dumps({"config": key, "key": "q", "row": {}})
    junk = ["", "   ", "not json", "[1, 2]", "null", json.dumps({"config": key}),
            json.dumps({"config": key, "key": 5}), json.dumps({"key": "x"}), "\x00\xff{"]  # fmt: skip
    assert list(parse_lines([*junk, good], key)) == ["q"]
    later = json.dumps({"config": key, "key": "q", "row": {"ours": [True]}})
    assert parse_lines([good, later], key)["q"]["row"] == {"ours": [True]}  # the last one wins


def test_config_key_ignores_order_and_sees_values() -> None:
    assert config_key({"a": 1, "b": [1, 2]}) == config_key({"b": [1, 2], "a": 1})
    assert config_key({"a": 1}) != config_key({"a": 2})
    assert config_key({"p": Path("/x")}) == config_key({"p": "/x"})


def test_upper_bound() -> None:
    assert upper_bound(0, 30_000) == pytest.approx(1e-4)
    assert upper_bound(0, 6_000) == pytest.approx(5e-4)
    assert upper_bound(1, 1000) == pytest.approx(4.744 / 1000, rel=1e-3)  # exact Poisson
    assert upper_bound(0, 0) == 1.0
    assert upper_bound(3, 3) == 1.0
    assert upper_bound(2, 1000) > upper_bound(1, 1000) > upper_bound(0, 1000)
    for false, pairs in ((-1, 10), (11, 10)):
        with pytest.raises(ValueError):
            upper_bound(false, pairs)


def test_plans_are_reproducible_and_named() -> None:
    a, b = plans(3), plans(3)
    assert a == b
    assert a != plans(3, seed=1)
    assert len({p.key for p in a}) == len(a) == len(FAMILIES) * 2 * 3
    two = next(p for p in a if p.family == "two_works")
    assert two.other not in (None, two.name)
    assert [w for w, _, _ in two.truth(10.0)] == [two.name, two.other]
    assert two.truth(10.0)[0][2] - two.truth(10.0)[0][1] == pytest.approx(5.0)
    pip = next(p for p in a if p.family == "pip_quarter")
    assert pip.host is not None and pip.replacement is not None
    plain = next(p for p in a if p.family == "flip_h")
    assert plain.host is None and plain.replacement is None and plain.other is None
    for p in a:
        assert 0 <= p.start <= 60.0 - min(p.length, 59.0)


def counting(fail_at: int | None = None) -> tuple[Callable[[QueryPlan], dict[str, list[Any]]], list[str]]:
    done: list[str] = []

    def measure(plan: QueryPlan) -> dict[str, list[Any]]:
        if fail_at is not None and len(done) == fail_at:
            raise KeyboardInterrupt  # the run stopped
        done.append(plan.key)
        return {"ours": [plan.i % 2 == 0], "latency": [float(plan.i)]}

    return measure, done


def test_a_stopped_run_resumes_where_it_was(tmp_path: Path) -> None:
    todo = [p for p in plans(5) if p.family == "camcorder" and p.length == 10.0]
    measure, first = counting(fail_at=3)
    log = ResultLog(tmp_path / "q.jsonl", CONFIG)
    with pytest.raises(KeyboardInterrupt):
        measure_queries(todo, log, measure)
    assert first == [p.key for p in todo[:3]]
    measure, second = counting()
    merged = measure_queries(todo, ResultLog(tmp_path / "q.jsonl", CONFIG), measure)
    assert second == [p.key for p in todo[3:]]  # the measured three not run again
    whole, _ = counting()
    assert merged == measure_queries(todo, ResultLog(tmp_path / "fresh.jsonl", CONFIG), whole)
    assert merged["latency"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    measure, third = counting()
    measure_queries(todo, ResultLog(tmp_path / "q.jsonl", CONFIG), measure)
    assert third == []


def test_records_name_the_code_that_measured_them(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    ResultLog(path, CONFIG, code="aaa").append("a", {"row": {"ours": [True]}})
    ResultLog(path, CONFIG).append("b", {"row": {"ours": [True]}})  # code not recorded
    resumed = ResultLog(path, CONFIG, code="bbb")
    resumed.append("c", {"row": {"ours": [False]}})
    assert resumed.codes() == {"aaa": 1, "": 1, "bbb": 1}
    assert ResultLog(path, CONFIG).get("c") == {
        "row": {"ours": [False]},
        "config": resumed.config,
        "key": "c",
        "code": "bbb",
    }


def test_current_code_names_a_commit_and_changes(tmp_path: Path) -> None:
    import subprocess

    assert current_code(tmp_path) == ""  # not a git tree
    run = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (tmp_path / "f").write_text("1")
    run("add", "f")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    head = current_code(tmp_path)
    assert len(head) == 12 and all(c in "0123456789abcdef" for c in head)
    (tmp_path / "f").write_text("2")
    assert current_code(tmp_path) == head + "+changes"
