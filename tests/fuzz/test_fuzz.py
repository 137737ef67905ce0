"""Structure-aware fuzzing of every decoder that takes outside bytes (see ``targets.py``).

The default suite runs a few dozen mutants per decoder (seconds in total); the ``slow``
variants run many more (minutes). ``bench/fuzz.py`` runs the same targets under a
coverage-guided engine.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.mutate import mutate
from tests.fuzz.targets import Target, check, targets

TARGETS = targets()
SLOW_TO_RUN = {"forensics.audio": 8, "forensics.image": 40, "receipt.verify": 40, "crypto.keyfile": 40}
"""Decoders whose single call is expensive (a process, a proof check): fewer examples."""


class _DrawChooser:
    def __init__(self, draw: Any) -> None:
        self.draw = draw

    def choose(self, n: int) -> int:
        return int(self.draw(st.integers(min_value=0, max_value=n - 1))) if n > 1 else 0


@st.composite
def mutants(draw: Any, seeds: list[bytes], cbor: bool) -> bytes:
    return mutate(_DrawChooser(draw), seeds, cbor)


def _fuzz(target: Target, examples: int) -> None:
    seeds = target.seeds()
    for seed in seeds:  # every seed is valid and round-trips
        assert check(target, seed).accepted, target.name

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=examples < 200,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(mutants(seeds, target.cbor))
    def run(data: bytes) -> None:
        check(target, data)

    run()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_quick(name: str) -> None:
    _fuzz(TARGETS[name], SLOW_TO_RUN.get(name, 60))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_long(name: str) -> None:
    _fuzz(TARGETS[name], 50 * SLOW_TO_RUN.get(name, 100))
