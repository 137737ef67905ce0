"""Real-process fault tests: each manifest of ``tests/e2e/manifests`` run by
:mod:`rongxin.e2e.runner` (node processes, per-link proxies, signed load, perturbations,
black-box checks over the API).

The short forms (but ``SLOW_SHORT``) run in the default suite, two at a time (``RONGXIN_E2E_PARALLEL``; each
run is mostly waiting on timers, and the whole set must fit in three minutes of wall time
on two cores); the long forms are marked ``slow`` and run one at a time. A failing run's
report (heights, load, every perturbation's recovery, the problems with their evidence)
is the assertion message; its network directory, with every node's ``data/node.log``,
stays under pytest's temporary directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from rongxin.e2e.manifest import Manifest, load_manifest
from rongxin.e2e.runner import Report, ipv6_loopback, run_manifest

MANIFESTS = Path(__file__).parent / "manifests"
SHORT = [
    "kill",
    "pause-leader",
    "partition",
    "restart",
    "join",
    "state-join",
    "byzantine",
    "clock-skew",
    "ipv6",
]
LONG = [f"{name}-long" for name in SHORT]


def manifest(name: str) -> Manifest:
    return load_manifest(MANIFESTS / f"{name}.toml")


def skip_reason(m: Manifest) -> str | None:
    """An environment fact that makes the run impossible here (only IPv6 loopback)."""
    if m.ip == "v6":
        reason = ipv6_loopback()
        return None if reason is None else f"IPv6 loopback unavailable: {reason}"
    return None


class ShortRuns:
    """The short forms selected in this session, started together on a small pool."""

    def __init__(self, names: list[str], root: Path) -> None:
        workers = max(1, int(os.environ.get("RONGXIN_E2E_PARALLEL", "2")))
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="e2e")
        self.futures: dict[str, Future[Report]] = {}
        for name in names:
            m = manifest(name)
            if skip_reason(m) is None:
                self.futures[name] = self.pool.submit(run_manifest, m, root / name)

    def report(self, name: str) -> Report:
        return self.futures[name].result()


@pytest.fixture(scope="session")
def short_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ShortRuns]:
    selected = [
        str(item.callspec.params["name"])
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.originalname == "test_short_form"
    ]
    runs = ShortRuns(selected, tmp_path_factory.mktemp("e2e"))
    yield runs
    runs.pool.shutdown(wait=True, cancel_futures=True)


def check_scenario(name: str, report: Report) -> None:
    """What each scenario must show beyond the common checks."""
    kinds = [s.step.kind for s in report.steps]
    if name.startswith("kill"):
        assert kinds.count("kill") == len(manifest(name).schedule()), report.summary()
    if name.startswith("pause-leader"):
        assert all(s.targets for s in report.steps if s.step.kind == "pause"), report.summary()
    if name.startswith("partition"):
        assert all("links cut" in s.note and not s.note.startswith("0 ") for s in report.steps), (
            report.summary()
        )
    if name.startswith("restart"):
        assert report.load["conflict_pairs_decided"] > 10, report.summary()
    if name.startswith("join"):
        assert report.heights["observer-0"] >= report.checked_height > 0, report.summary()
        assert kinds[0] == "start", report.summary()
    if name.startswith("state-join"):
        # restored from a snapshot (not replayed), promoted; check_votes asserted its votes
        assert report.bases.get("joiner-0", 0) > 0, report.summary()
        assert kinds[0] == "start" and "promoted at height" in report.steps[0].note, report.summary()
    if name.startswith("byzantine"):
        # check_excluded asserted the evidence on chain and the exclusion: a new epoch began
        assert report.epochs >= 1, report.summary()
    assert report.load["committed"] > 0, report.summary()


#: Short forms run with the slow suite (beside their long forms) to keep the default suite
#: under ten minutes. The default suite keeps a crash (``kill``), a stalled leader, a
#: partition and a Byzantine node; joining, state sync, restarts, skewed clocks and IPv6
#: also have unit and node-level tests there.
SLOW_SHORT = {"join", "clock-skew", "restart", "state-join", "ipv6"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_SHORT else n for n in SHORT]
)
def test_short_form(name: str, short_runs: ShortRuns) -> None:
    reason = skip_reason(manifest(name))
    if reason is not None:
        pytest.skip(reason)
    report = short_runs.report(name)
    print(report.summary())
    assert report.passed, report.summary()
    check_scenario(name, report)


@pytest.mark.slow
@pytest.mark.parametrize("name", LONG)
def test_long_form(name: str, tmp_path: Path) -> None:
    m = manifest(name)
    reason = skip_reason(m)
    if reason is not None:
        pytest.skip(reason)
    report = run_manifest(m, tmp_path)
    print(report.summary())
    assert report.passed, report.summary()
    check_scenario(name, report)


def test_every_manifest_loads() -> None:
    names = sorted(p.stem for p in MANIFESTS.glob("*.toml"))
    assert names == sorted(SHORT + LONG)
    for name in names:
        assert manifest(name).schedule() or "join" in name or name == "byzantine"
