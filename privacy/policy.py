"""Agency-side policy: who may query what, minimum group size, differential privacy budgets.

Each agency decides for itself. It answers only queries across at least
``min_agencies`` agencies (default 3: an aggregate over one agency is that agency's
value, over two it is the other's value to either of them). A :class:`Policy` lists,
per requester role, the tables and columns (filters, grouping, value and key columns
alike) and the aggregates allowed; groups with fewer than ``min_group_size`` rows are
suppressed; and when a query asks for differential privacy (or the policy demands it)
the agency adds discrete Laplace noise and charges the requester's ε budget — keyed by
the certificate id that signed the query, never a self-declared name — persisted in a
small SQLite ledger.

Examples
--------
>>> from privacy.spec import parse_sql
>>> p = Policy.from_dict({"roles": {"regulator": {"tables": {"plays": ["county", "views"]}}}})
>>> p.decide(parse_sql("SELECT SUM(views) FROM plays GROUP BY county").with_requester("r1", "regulator"), 3)
Decision(accepted=True, reason='allowed for role regulator', epsilon=0.0)
>>> p.decide(parse_sql("SELECT SUM(fee) FROM plays").with_requester("r1", "regulator"), 3).reason
"role 'regulator' may not read column(s) ['fee'] of table 'plays'"
>>> p.decide(parse_sql("SELECT SUM(views) FROM plays").with_requester("r1", "regulator"), 1).reason
'the query runs across 1 agency; this agency answers only queries across at least 3'

"""

from __future__ import annotations

import math
import os
import secrets
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privacy.errors import BudgetExhausted, CatalogError, PolicyRefusal
from privacy.spec import AGGREGATES, QuerySpec

DEFAULT_MIN_AGENCIES = 3
"""Fewest participating agencies an agency answers by default."""


@dataclass(frozen=True)
class RoleGrant:
    """What one requester role may use: table → allowed columns (``"*"`` for all)."""

    tables: dict[str, frozenset[str]]
    aggregates: frozenset[str] = AGGREGATES


@dataclass(frozen=True)
class Decision:
    """An agency's decision on one query (recorded in the audit trail)."""

    accepted: bool
    reason: str
    epsilon: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain form; ε as a string so the canonical encoding stays float-free."""
        return {"accepted": self.accepted, "reason": self.reason, "epsilon": repr(self.epsilon)}


@dataclass(frozen=True)
class Policy:
    """One agency's policy.

    Parameters
    ----------
    roles : dict
        Role name → :class:`RoleGrant`.
    min_group_size : int
        Groups with fewer rows are suppressed (k-anonymity style threshold).
    min_agencies : int
        Fewest agencies (this one included) a query must run across, and fewest that must
        remain when others drop out; below it the agency refuses (default 3).
    require_dp : bool
        Refuse linear queries that do not ask for differential privacy.
    epsilon_budget : float or None
        Total ε each requester may spend at this agency (``None``: no DP budget, so DP
        queries are refused).
    """

    roles: dict[str, RoleGrant] = field(default_factory=dict)
    min_group_size: int = 1
    min_agencies: int = DEFAULT_MIN_AGENCIES
    require_dp: bool = False
    epsilon_budget: float | None = None

    def __post_init__(self) -> None:
        if self.min_group_size < 1:
            raise CatalogError("min_group_size must be at least 1")
        if self.min_agencies < 2:
            raise CatalogError("min_agencies must be at least 2 (one agency's aggregate is its own value)")
        if self.epsilon_budget is not None and not (
            math.isfinite(self.epsilon_budget) and self.epsilon_budget >= 0
        ):
            raise CatalogError("epsilon_budget must be a non-negative number")

    @classmethod
    def from_dict(cls, doc: Any) -> Policy:
        """Parse ``{"roles": {role: {"tables": {t: [cols] | "*"}, "aggregates": [...]}}, ...}``."""
        if not isinstance(doc, dict):
            raise CatalogError("a policy is a table of settings")
        extra = set(doc) - {"roles", "min_group_size", "min_agencies", "require_dp", "epsilon_budget"}
        if extra:
            raise CatalogError(f"unknown policy settings {sorted(extra)}")
        roles: dict[str, RoleGrant] = {}
        for role, grant in (doc.get("roles") or {}).items():
            if not isinstance(grant, dict) or not isinstance(grant.get("tables"), dict):
                raise CatalogError(f"policy role {role!r}: expected {{'tables': {{table: [columns]}}}}")
            tables = {
                str(t): frozenset(["*"] if cols == "*" else [str(c) for c in cols])
                for t, cols in grant["tables"].items()
            }
            aggs = grant.get("aggregates")
            if aggs is not None and not set(aggs) <= AGGREGATES:
                raise CatalogError(
                    f"policy role {role!r}: unknown aggregates {sorted(set(aggs) - AGGREGATES)}"
                )
            roles[str(role)] = RoleGrant(tables, AGGREGATES if aggs is None else frozenset(aggs))
        budget = doc.get("epsilon_budget")
        try:
            return cls(
                roles,
                int(doc.get("min_group_size", 1)),
                int(doc.get("min_agencies", DEFAULT_MIN_AGENCIES)),
                bool(doc.get("require_dp", False)),
                None if budget is None else float(budget),
            )
        except (TypeError, ValueError) as exc:
            raise CatalogError(f"invalid policy setting: {exc}") from None

    def decide(self, spec: QuerySpec, participants: int) -> Decision:
        """Whether ``spec`` across ``participants`` agencies is allowed (without charging any budget).

        ``spec.requester`` must be the authenticated requester's certificate id: budgets
        are charged to it.
        """
        if participants < self.min_agencies:
            return Decision(
                False,
                f"the query runs across {participants} agenc{'y' if participants == 1 else 'ies'}; "
                f"this agency answers only queries across at least {self.min_agencies}",
            )
        grant = self.roles.get(spec.role)
        if grant is None:
            return Decision(False, f"role {spec.role!r} has no grant at this agency")
        if spec.aggregate not in grant.aggregates:
            return Decision(False, f"role {spec.role!r} may not run {spec.aggregate!r} queries")
        cols = grant.tables.get(spec.table)
        if cols is None:
            return Decision(False, f"role {spec.role!r} may not query table {spec.table!r}")
        denied = sorted(spec.columns_used() - cols) if "*" not in cols else []
        if denied:
            return Decision(
                False, f"role {spec.role!r} may not read column(s) {denied} of table {spec.table!r}"
            )
        if spec.epsilon is None:
            if self.require_dp and spec.is_linear:
                return Decision(False, "this agency requires differential privacy: add WITH EPSILON e")
            if self.require_dp:
                return Decision(
                    False,
                    f"this agency requires differential privacy, which {spec.aggregate!r} does not offer",
                )
            return Decision(True, f"allowed for role {spec.role}")
        if self.epsilon_budget is None:
            return Decision(False, "this agency offers no differential-privacy budget")
        if not spec.requester:
            return Decision(
                False, "a DP query needs an authenticated requester (budgets are per certificate)"
            )
        return Decision(True, f"allowed for role {spec.role} with ε={spec.epsilon}", spec.epsilon)


class BudgetLedger:
    """Persistent per-requester ε spending at one agency (SQLite, one row per requester)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        with self._connect() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS spent (requester TEXT PRIMARY KEY, epsilon REAL NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)

    def spent(self, requester: str) -> float:
        """ε spent so far by ``requester``."""
        with self._connect() as con:
            row = con.execute("SELECT epsilon FROM spent WHERE requester = ?", (requester,)).fetchone()
        return 0.0 if row is None else float(row[0])

    def charge(self, agency: str, requester: str, epsilon: float, budget: float) -> float:
        """Atomically add ``epsilon``; :class:`BudgetExhausted` (nothing charged) if over ``budget``."""
        with self._lock:
            con = self._connect()
            try:
                con.execute("BEGIN IMMEDIATE")
                row = con.execute("SELECT epsilon FROM spent WHERE requester = ?", (requester,)).fetchone()
                spent = 0.0 if row is None else float(row[0])
                if spent + epsilon > budget + 1e-12:
                    con.execute("ROLLBACK")
                    raise BudgetExhausted(
                        agency,
                        f"requester {requester!r} has spent ε={spent:g} of its budget {budget:g}; "
                        f"this query asks for ε={epsilon:g} more — ask for less or wait for a new budget",
                    )
                con.execute(
                    "INSERT INTO spent (requester, epsilon) VALUES (?, ?) "
                    "ON CONFLICT(requester) DO UPDATE SET epsilon = excluded.epsilon",
                    (requester, spent + epsilon),
                )
                con.execute("COMMIT")
                return spent + epsilon
            finally:
                con.close()


def refuse_unless(agency: str, decision: Decision) -> None:
    """Raise :class:`PolicyRefusal` for a refused decision."""
    if not decision.accepted:
        raise PolicyRefusal(agency, decision.reason)


def _geometric(p_continue: float) -> int:
    """P(k) = (1 - p) p**k, sampled from OS randomness by inversion."""
    u = (secrets.randbits(53) + 1) / float(1 << 53)  # in (0, 1]
    return math.floor(math.log(u) / math.log(p_continue))


def discrete_laplace(scale: float) -> int:
    """Two-sided geometric noise with P(k) ∝ exp(-|k| / scale) (the discrete Laplace mechanism).

    Examples
    --------
    >>> isinstance(discrete_laplace(2.0), int)
    True
    """
    if not scale > 0:
        raise ValueError("the noise scale must be positive")
    p = math.exp(-1.0 / scale)
    return _geometric(p) - _geometric(p)
