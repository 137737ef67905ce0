"""Privacy computing: regulators' aggregate queries across agencies without revealing rows.

A regulator (:class:`Regulator`) asks for an aggregate — count, sum, mean, variance,
histogram (under Paillier: each agency encrypts under the regulator's key, the
:class:`Aggregator` combines without decrypting) or min, max, median, quantiles, top-k,
intersection size (as MPC among the agencies, with ``mpyc``) — over the agencies' tables.
Each agency (:class:`AgencyServer`) enforces its :class:`Policy` (allowed columns, minimum
group size, differential-privacy budgets); every query, answered or refused, is recorded
in an :class:`AuditLog` and its digest anchored on the ledger through an
:class:`AuditAnchor`.

Modules, in dependency order: :mod:`privacy.errors`, :mod:`privacy.catalog` (shared schema),
:mod:`privacy.spec` (query specs, JSON and SQL-like), :mod:`privacy.connectors` (CSV,
SQLite), :mod:`privacy.local` (agency-side computation), :mod:`privacy.policy` (roles,
minimum group size, DP budgets), :mod:`privacy.paillier` (keys, packing), :mod:`privacy.mpc`
and :mod:`privacy.mpc_party` (mpyc parties over TCP), :mod:`privacy.agency`,
:mod:`privacy.audit` (anchored records), :mod:`privacy.query` (the regulator),
:mod:`privacy.config` (deployment files), :mod:`privacy.demo_data`. See ``docs/privacy.md``.

Agencies are reached in-process today (:class:`LocalAgencyClient`; the messages still
travel as bytes); any object with the :class:`AgencyClient` methods can replace it. The
names below are imported on first use, so ``import privacy`` loads neither numpy nor phe.

Examples
--------
>>> from privacy import parse_sql
>>> spec = parse_sql("SELECT MEAN(views) FROM plays GROUP BY county")
>>> spec.aggregate, spec.group_by
('mean', 'county')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chain.lazy import lazy_exports
from privacy.errors import (
    AgencyUnavailable,
    AuditError,
    BudgetExhausted,
    CatalogError,
    CiphertextError,
    ConnectorError,
    KeyValidationError,
    MPCError,
    OverflowRisk,
    PolicyRefusal,
    PrivacyError,
    SpecError,
)

if TYPE_CHECKING:
    from privacy.agency import AgencyServer
    from privacy.audit import (
        AnchorReceipt,
        AuditAnchor,
        AuditLog,
        AuditRecord,
        ConsortiumAnchor,
        ExecutorAnchor,
        LedgerAnchor,
    )
    from privacy.catalog import Catalog, Column
    from privacy.config import Deployment, LocalAgencyClient
    from privacy.connectors import ArrayConnector, Connector, CSVConnector, SQLiteConnector
    from privacy.paillier import generate_keypair
    from privacy.policy import BudgetLedger, Decision, Policy
    from privacy.query import AgencyClient, Aggregator, QueryResult, Regulator
    from privacy.spec import Filter, QuerySpec, parse, parse_sql

#: Public name -> the module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "AgencyServer": "privacy.agency",
    "AnchorReceipt": "privacy.audit",
    "AuditAnchor": "privacy.audit",
    "AuditLog": "privacy.audit",
    "AuditRecord": "privacy.audit",
    "ConsortiumAnchor": "privacy.audit",
    "ExecutorAnchor": "privacy.audit",
    "LedgerAnchor": "privacy.audit",
    "Catalog": "privacy.catalog",
    "Column": "privacy.catalog",
    "Deployment": "privacy.config",
    "LocalAgencyClient": "privacy.config",
    "ArrayConnector": "privacy.connectors",
    "CSVConnector": "privacy.connectors",
    "Connector": "privacy.connectors",
    "SQLiteConnector": "privacy.connectors",
    "generate_keypair": "privacy.paillier",
    "BudgetLedger": "privacy.policy",
    "Decision": "privacy.policy",
    "Policy": "privacy.policy",
    "AgencyClient": "privacy.query",
    "Aggregator": "privacy.query",
    "QueryResult": "privacy.query",
    "Regulator": "privacy.query",
    "Filter": "privacy.spec",
    "QuerySpec": "privacy.spec",
    "parse": "privacy.spec",
    "parse_sql": "privacy.spec",
}

__all__ = [
    "AgencyClient",
    "AgencyServer",
    "AgencyUnavailable",
    "Aggregator",
    "AnchorReceipt",
    "ArrayConnector",
    "AuditAnchor",
    "AuditError",
    "AuditLog",
    "AuditRecord",
    "BudgetExhausted",
    "BudgetLedger",
    "CSVConnector",
    "Catalog",
    "CatalogError",
    "CiphertextError",
    "Column",
    "Connector",
    "ConnectorError",
    "ConsortiumAnchor",
    "Decision",
    "Deployment",
    "ExecutorAnchor",
    "Filter",
    "KeyValidationError",
    "LedgerAnchor",
    "LocalAgencyClient",
    "MPCError",
    "OverflowRisk",
    "Policy",
    "PolicyRefusal",
    "PrivacyError",
    "QueryResult",
    "QuerySpec",
    "Regulator",
    "SQLiteConnector",
    "SpecError",
    "generate_keypair",
    "parse",
    "parse_sql",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
