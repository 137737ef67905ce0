"""Seeded simulation tests: many random scenarios, zero invariant violations.

A failing seed prints its scenario and ``python -m chain.consensus.simulator --seed N``.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from chain.consensus.core import ConsensusCore
from chain.consensus.messages import Block
from chain.consensus.simulator import main, make_scenario, run_seed, sm2_pki

DEFAULT_SEEDS = 200  # the slow suite runs the seeds from here to 5,000
CHUNK = 100


def _report_of(seed: int, **kwargs: Any) -> str | None:
    """The failure report of ``seed``, or ``None`` when it holds every invariant."""
    res = run_seed(seed, **kwargs)
    return None if res.ok else res.report()


def _check(seeds: range, *, parallel: bool = False, **kwargs: Any) -> None:
    """Run ``seeds`` (independent of each other: with ``parallel``, one process per core)
    and fail with the report of every seed that broke an invariant."""
    run = functools.partial(_report_of, **kwargs)
    if parallel:
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            reports = list(pool.map(run, seeds, chunksize=50))
    else:
        reports = [run(s) for s in seeds]
    assert len(reports) == len(seeds)
    failures = [r for r in reports if r is not None]
    assert not failures, f"{len(failures)} failing seed(s):\n" + "\n".join(failures)


@pytest.mark.parametrize("start", range(0, DEFAULT_SEEDS, CHUNK))
def test_seeds(start: int) -> None:
    _check(range(start, start + CHUNK))


def test_twins_seeds() -> None:
    _check(range(10_000, 10_060), twins=True)


def test_twins_equivocation_reaches_the_chain() -> None:
    results = [run_seed(s, twins=True) for s in range(10_000, 10_020)]
    assert sum(r.evidence_on_chain > 0 for r in results) >= 10


def test_replay_is_deterministic() -> None:
    a, b = run_seed(4), run_seed(4)
    assert (a.heights, a.events, a.violations) == (b.heights, b.events, b.violations)
    assert make_scenario(4) == make_scenario(4)


def test_scenarios_cover_faults() -> None:
    scs = [make_scenario(s) for s in range(200)]
    assert {s.n for s in scs} == {4, 5, 7}
    assert any(s.twins for s in scs) and any(s.crashes for s in scs) and any(s.partitions for s in scs)
    for s in scs:
        faulty = len(s.crashes) + (1 if s.twins else 0)
        assert faulty <= (s.n - 1) // 3


class OneChainCommit(ConsensusCore):
    """Unsafe on purpose: commits a block as soon as it is certified (a 1-chain rule)."""

    def commit_rule(self, certified: Block) -> Block | None:
        return certified


class SkipVoteRules(ConsensusCore):
    """Skips the voting rules, and executes a leader's second block for a round (the core
    drops it, which alone already keeps honest nodes from voting twice in a round)."""

    def safe_to_vote(self, b: Block) -> bool:
        return True

    def _check_equivocation(self, *args: Any) -> bool:
        super()._check_equivocation(*args)  # a test subclass of the core extends its hook
        return True


def _first_violation(core: type[ConsensusCore], prefix: str, seeds: range) -> int | None:
    for s in seeds:
        res = run_seed(s, twins=True, core_class=core)
        if any(v.startswith(prefix) for v in res.violations):
            return s
    return None


def test_checker_catches_unsafe_commit_rule() -> None:
    """A 1-chain commit rule breaks agreement in some Twins scenario."""
    assert _first_violation(OneChainCommit, "agreement", range(100)) is not None


def test_checker_catches_skipped_vote_rules() -> None:
    """Dropping the highest-voted-round check makes honest nodes double-vote under Twins."""
    assert _first_violation(SkipVoteRules, "honest equivocation", range(20)) is not None


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seeds", "1..2"]) == 0
    out = capsys.readouterr().out
    assert "seed=1 " in out and "2 seed(s), 0 failing" in out


@pytest.mark.slow
def test_many_seeds() -> None:
    _check(range(DEFAULT_SEEDS, 5000), parallel=True)


@pytest.mark.slow
def test_seeds_with_real_sm2() -> None:
    _check(range(3), pki_factory=sm2_pki)
    _check(range(20_000, 20_002), twins=True, pki_factory=sm2_pki)
