"""Deployment configuration: catalog, agencies (data source, policy) and regulator (TOML or JSON).

Examples
--------
>>> d = Deployment.from_dict({
...     "catalog": {"t": {"v": {"type": "int", "min": 0, "max": 9}}},
...     "agencies": [{"name": "a", "source": {"kind": "csv", "path": "a"}}]})
>>> [a.name for a in d.agencies]
['a']
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privacy.agency import AgencyServer
from privacy.catalog import Catalog
from privacy.connectors import from_config
from privacy.errors import CatalogError
from privacy.policy import BudgetLedger, Decision, Policy
from privacy.spec import QuerySpec


@dataclass(frozen=True)
class AgencyConfig:
    """One agency's entry."""

    name: str
    source: dict[str, Any]
    policy: Policy
    state_dir: str | None = None


@dataclass(frozen=True)
class Deployment:
    """Everything ``rongxin query run`` needs."""

    catalog: Catalog
    agencies: list[AgencyConfig]
    regulator: dict[str, Any] = field(default_factory=dict)
    base: Path = Path(".")

    @classmethod
    def from_dict(cls, doc: Any, base: Path | None = None) -> Deployment:
        """Parse a configuration document."""
        if not isinstance(doc, dict) or "catalog" not in doc or "agencies" not in doc:
            raise CatalogError("a deployment needs 'catalog' and 'agencies'")
        agencies = []
        for i, a in enumerate(doc["agencies"]):
            if (
                not isinstance(a, dict)
                or not isinstance(a.get("name"), str)
                or not isinstance(a.get("source"), dict)
            ):
                raise CatalogError(f"agencies[{i}] needs a 'name' and a 'source' table")
            agencies.append(
                AgencyConfig(
                    a["name"], dict(a["source"]), Policy.from_dict(a.get("policy", {})), a.get("state_dir")
                )
            )
        names = [a.name for a in agencies]
        if len(set(names)) != len(names):
            raise CatalogError("agency names must be unique")
        return cls(
            Catalog.from_dict(doc["catalog"]), agencies, dict(doc.get("regulator", {})), base or Path(".")
        )

    @classmethod
    def from_file(cls, path: str | Path) -> Deployment:
        """Read a ``.toml`` or ``.json`` file (paths inside are relative to it)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogError(f"cannot read deployment file {p}: {exc.strerror}") from None
        try:
            doc = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise CatalogError(
                f"{p} is not valid {'JSON' if p.suffix == '.json' else 'TOML'}: {exc}"
            ) from None
        return cls.from_dict(doc, p.resolve().parent)

    def server(self, agency: AgencyConfig) -> AgencyServer:
        """The in-process server of ``agency``."""
        budget = None
        if agency.state_dir is not None:
            state = self.base / agency.state_dir
            state.mkdir(parents=True, exist_ok=True)
            budget = BudgetLedger(state / "budget.db")
        return AgencyServer(
            agency.name,
            from_config(agency.source, self.catalog, self.base),
            self.catalog,
            agency.policy,
            budget,
            agency.source,
            self.base,
        )

    def clients(self, names: list[str] | None = None) -> list[LocalAgencyClient]:
        """In-process clients for the named agencies (all by default)."""
        known = {a.name: a for a in self.agencies}
        chosen = names or list(known)
        missing = [n for n in chosen if n not in known]
        if missing:
            raise CatalogError(f"unknown agencies {missing}; the deployment has {sorted(known)}")
        return [LocalAgencyClient(self.server(known[n])) for n in chosen]


class LocalAgencyClient:
    """Reaches an in-process :class:`AgencyServer` (messages still travel as bytes)."""

    def __init__(self, server: AgencyServer) -> None:
        self.server = server
        self.name = server.name

    def call(self, request: bytes) -> bytes:
        """Send a request, get the answer bytes."""
        return self.server.handle(bytes(request))

    def decide(self, spec: QuerySpec) -> Decision:
        """Policy preflight."""
        return self.server.decide(spec)

    def party_job(self) -> Any:
        """MPC launch parameters."""
        return self.server.party_job()
