"""Shared fixtures: one 2048-bit key per session, a consortium root with certified agencies and
regulator, and three agencies with seeded data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chain.crypto import PrivateKey
from chain.types import Role
from privacy import paillier
from privacy.agency import AgencyServer
from privacy.catalog import Catalog
from privacy.connectors import ArrayConnector
from privacy.demo_data import write_identity
from privacy.identity import Identity, PeerDirectory, Trust
from privacy.mpc import PartyJob
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
ROOT = PrivateKey.generate()
"""The test consortium's supervisory root key."""
AGENCY_IDS = {f"agency-{i}": Identity.issue(ROOT, f"agency-{i}", [Role.MEDIA_CENTER]) for i in range(5)}
REGULATOR = Identity.issue(ROOT, "Provincial regulator", [Role.REGULATOR])


def agency_tables(seed: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "county": np.asarray(COUNTIES, dtype=object)[rng.integers(0, 4, n)],
        "work": rng.integers(0, 40, n),
        "views": rng.integers(0, 5001, n),
        "fee": np.round(rng.uniform(-50, 500, n), 2),
    }


def make_servers(
    tables: list[dict[str, np.ndarray]], tmp_path: Path, policy: dict[str, Any] | None = None
) -> list[AgencyServer]:
    """One agency per table, each pinning all the others, trusting :data:`ROOT`."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    names = [f"agency-{i}" for i in range(len(tables))]
    peers = PeerDirectory({n: AGENCY_IDS[n].cert for n in names})
    return [
        AgencyServer(
            name,
            ArrayConnector({"plays": t}),
            CATALOG,
            Policy.from_dict(policy or POLICY),
            AGENCY_IDS[name],
            Trust(ROOT.public_key),
            peers,
            BudgetLedger(tmp_path / f"budget-{name}.db"),
        )
        for name, t in zip(names, tables, strict=True)
    ]


def identity_entries(base: Path, names: list[str]) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """Write the agencies' and the regulator's identities under ``base/keys``: the
    ``[consortium]`` table and each party's identity settings."""
    (base / "keys").mkdir(parents=True, exist_ok=True)
    (base / "keys" / "password").write_text("pw\n")
    entries = {n: write_identity(base / "keys", n, AGENCY_IDS[n], "pw") for n in names}
    entries["regulator"] = write_identity(base / "keys", "regulator", REGULATOR, "pw")
    return {"root_public_key": ROOT.public_key.to_bytes().hex()}, entries


@pytest.fixture(scope="session")
def keypair() -> tuple[paillier.PublicKey, paillier.PrivateKey]:
    return paillier.generate_keypair(2048)


@pytest.fixture
def tables() -> list[dict[str, np.ndarray]]:
    return [agency_tables(seed, 300 + 70 * seed) for seed in range(3)]


@pytest.fixture
def servers(tables: list[dict[str, np.ndarray]], tmp_path: Path) -> Iterator[list[AgencyServer]]:
    yield make_servers(tables, tmp_path)


class Direct:
    """An in-process link to an agency (no faults, no spying)."""

    def __init__(self, server: AgencyServer) -> None:
        self.server, self.name, self.certificate = server, server.name, server.certificate

    def call(self, raw: bytes) -> bytes:
        return self.server.handle(raw)

    def party_job(self) -> PartyJob:
        return self.server.party_job()
