"""Shared fixtures: one 2048-bit key per session, and three agencies with seeded data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from privacy import paillier
from privacy.agency import AgencyServer
from privacy.catalog import Catalog
from privacy.connectors import ArrayConnector
from privacy.policy import BudgetLedger, Policy

COUNTIES = ["c1", "c2", "c3", "c4"]
CATALOG = Catalog.from_dict(
    {
        "plays": {
            "county": {"type": "str", "domain": COUNTIES},
            "work": {"type": "int", "domain": list(range(40))},
            "views": {"type": "int", "min": 0, "max": 5000},
            "fee": {"type": "float", "min": -50, "max": 500, "scale": 100},
        }
    }
)
POLICY = {"roles": {"regulator": {"tables": {"plays": "*"}}}, "epsilon_budget": 2.0}


def agency_tables(seed: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "county": np.asarray(COUNTIES, dtype=object)[rng.integers(0, 4, n)],
        "work": rng.integers(0, 40, n),
        "views": rng.integers(0, 5001, n),
        "fee": np.round(rng.uniform(-50, 500, n), 2),
    }


@pytest.fixture(scope="session")
def keypair() -> tuple[paillier.PublicKey, paillier.PrivateKey]:
    return paillier.generate_keypair(2048)


@pytest.fixture
def tables() -> list[dict[str, np.ndarray]]:
    return [agency_tables(seed, 300 + 70 * seed) for seed in range(3)]


@pytest.fixture
def servers(tables: list[dict[str, np.ndarray]], tmp_path: Path) -> Iterator[list[AgencyServer]]:
    yield [
        AgencyServer(
            f"agency-{i}",
            ArrayConnector({"plays": t}),
            CATALOG,
            Policy.from_dict(POLICY),
            BudgetLedger(tmp_path / f"budget-{i}.db"),
        )
        for i, t in enumerate(tables)
    ]
