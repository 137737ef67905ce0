"""Privacy computing: regulators' aggregate queries across agencies without revealing rows.

Modules, in dependency order: :mod:`privacy.errors`, :mod:`privacy.catalog` (shared schema),
:mod:`privacy.spec` (query specs, JSON and SQL-like), :mod:`privacy.connectors` (CSV,
SQLite), :mod:`privacy.local` (agency-side computation), :mod:`privacy.policy` (roles,
minimum group size, DP budgets), :mod:`privacy.paillier` (keys, packing), :mod:`privacy.mpc`
and :mod:`privacy.mpc_party` (mpyc parties over TCP), :mod:`privacy.agency`,
:mod:`privacy.audit` (anchored records), :mod:`privacy.query` (the regulator),
:mod:`privacy.config` (deployment files), :mod:`privacy.demo_data`. See ``docs/privacy.md``.
"""
