"""Privacy computing: regulators' aggregate queries across agencies without revealing rows.

A regulator (:class:`Regulator`), identified by its SM2 certificate (:class:`Identity`),
signs a query for an aggregate — count, sum, mean, variance, histogram (secure aggregation
under Paillier: each agency masks its contribution so that only the sum can be recovered,
and encrypts it under the regulator's key; the :class:`Aggregator` combines and unmasks
the sum without decrypting) or min, max, median, quantiles, top-k, intersection size (as
MPC among the agencies' own parties, with ``mpyc``) — over the agencies' tables. Each
agency (:class:`AgencyServer`, in-process or as a service reached with
:class:`HttpAgencyClient`) checks the requester against the consortium root it trusts
(:class:`Trust`; with :func:`with_ledger`, also the consortium ledger's revocations,
:class:`LedgerMembership`) and its pinned peers, and enforces its :class:`Policy` (minimum
participating agencies, allowed columns, minimum group size, differential-privacy budgets
per certificate); every query, answered or refused, is recorded in an :class:`AuditLog`
and its digest anchored on the ledger through an :class:`AuditAnchor`
(:func:`check_record` verifies a record against its receipt).

Modules, in dependency order: :mod:`privacy.errors`, :mod:`privacy.catalog` (shared schema),
:mod:`privacy.spec` (query specs, JSON and SQL-like), :mod:`privacy.connectors` (CSV,
SQLite) and :mod:`privacy.pg` (PostgreSQL, with push-down), :mod:`privacy.local`
(agency-side computation), :mod:`privacy.policy` (roles, minimum agencies and group size,
DP budgets), :mod:`privacy.membership` (membership and revocations from the ledger),
:mod:`privacy.identity` (SM2 identities, trust, pinned peers, pairwise keys),
:mod:`privacy.protocol` (signed messages), :mod:`privacy.replay`, :mod:`privacy.secagg`
(masks), :mod:`privacy.paillier` (keys, packing), :mod:`privacy.mpc` and
:mod:`privacy.mpc_party` (mpyc parties over TCP), :mod:`privacy.agency`,
:mod:`privacy.service` and :mod:`privacy.http_client` (agencies over HTTP),
:mod:`privacy.audit` (anchored records), :mod:`privacy.query` (the regulator),
:mod:`privacy.config` (deployment and service files), :mod:`privacy.processes`,
:mod:`privacy.pg_cluster`, :mod:`privacy.demo_data`. See ``docs/privacy.md``.

The names below are imported on first use, so ``import privacy`` loads neither numpy nor phe.

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
    IdentityError,
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
        check_record,
    )
    from privacy.catalog import Catalog, Column
    from privacy.config import AgencyService, Deployment, LocalAgencyClient
    from privacy.connectors import ArrayConnector, Connector, CSVConnector, SQLiteConnector
    from privacy.http_client import HttpAgencyClient
    from privacy.identity import Identity, PeerDirectory, Trust
    from privacy.membership import LedgerMembership, with_ledger
    from privacy.paillier import generate_keypair
    from privacy.pg import PostgreSQLConnector
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
    "check_record": "privacy.audit",
    "Catalog": "privacy.catalog",
    "Column": "privacy.catalog",
    "AgencyService": "privacy.config",
    "Deployment": "privacy.config",
    "LocalAgencyClient": "privacy.config",
    "HttpAgencyClient": "privacy.http_client",
    "Identity": "privacy.identity",
    "PeerDirectory": "privacy.identity",
    "Trust": "privacy.identity",
    "LedgerMembership": "privacy.membership",
    "with_ledger": "privacy.membership",
    "PostgreSQLConnector": "privacy.pg",
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
    "AgencyService",
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
    "HttpAgencyClient",
    "Identity",
    "IdentityError",
    "KeyValidationError",
    "LedgerAnchor",
    "LedgerMembership",
    "LocalAgencyClient",
    "MPCError",
    "OverflowRisk",
    "PeerDirectory",
    "Policy",
    "PolicyRefusal",
    "PostgreSQLConnector",
    "PrivacyError",
    "QueryResult",
    "QuerySpec",
    "Regulator",
    "SQLiteConnector",
    "SpecError",
    "Trust",
    "check_record",
    "generate_keypair",
    "parse",
    "parse_sql",
    "with_ledger",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
