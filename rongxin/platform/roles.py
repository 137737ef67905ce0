"""Roles of a member organization's users and what each may do: one declarative table.

Every page and API route of the platform names one permission; :func:`allowed` answers
from :data:`GRANTS` alone, so the whole policy reads in one place and the tests walk it
role by role.

Examples
--------
>>> allowed("legal_staff", "works.register"), allowed("regulator", "works.register")
(True, False)
>>> sorted(r for r in ROLES if allowed(r, "users.manage"))
['admin']
"""

from __future__ import annotations

from typing import Final

ROLES: Final[tuple[str, ...]] = ("legal_staff", "regulator", "editor", "operator", "auditor", "admin")
"""Every role a platform user can hold (a user holds one or more)."""

PERMISSIONS: Final[dict[str, str]] = {
    "explorer.view": "browse blocks, transactions, validators and nodes; search",
    "receipt.verify": "check an uploaded receipt against the genesis",
    "works.view": "list, search and open registered works",
    "works.register": "upload and register a work (and anchor its fingerprint)",
    "cases.view": "scans and their progress, the case list, a case's page and takedown notice",
    "cases.manage": "start a scan; move a case along its status workflow",
    "query.run": "the regulator console: the catalogue, policy limits, run a query, the audit trail",
    "transfers.view": "a work's ownership record and recorded confidential transfers; their receipts",
    "transfers.make": "register a work's ownership record, make a confidential transfer, receive a work",
    "transfers.open": "open recorded transfers (price and royalty shares) with the auditor key",
    "ops.view": "node status, metrics and the operations audit log",
    "users.manage": "create users, change their roles, reset passwords, set SM2 keys, disable accounts",
    "account.manage": "the own account page: register or remove the own SM2 sign-in key",
}
"""Every permission a route can require, with what it allows."""

_ALL = frozenset(ROLES)

GRANTS: Final[dict[str, frozenset[str]]] = {
    "explorer.view": _ALL,
    "receipt.verify": _ALL,
    "works.view": frozenset({"legal_staff", "editor", "regulator", "auditor", "admin"}),
    "works.register": frozenset({"legal_staff", "editor"}),
    "cases.view": frozenset({"legal_staff", "editor"}),
    "cases.manage": frozenset({"legal_staff"}),
    "query.run": frozenset({"regulator"}),
    "transfers.view": frozenset({"legal_staff", "editor", "auditor"}),
    "transfers.make": frozenset({"legal_staff", "editor"}),
    "transfers.open": frozenset({"auditor"}),
    "ops.view": frozenset({"operator", "auditor", "admin"}),
    "users.manage": frozenset({"admin"}),
    "account.manage": _ALL,
}
"""Permission -> the roles that hold it. The only place the policy is written."""

assert set(GRANTS) == set(PERMISSIONS)


def allowed(roles: str | frozenset[str] | set[str] | tuple[str, ...], permission: str) -> bool:
    """Whether a user holding ``roles`` (one role or several) has ``permission``.

    An unknown permission is never granted (a route that names a misspelt permission is
    closed, not open).
    """
    held = {roles} if isinstance(roles, str) else set(roles)
    return bool(held & GRANTS.get(permission, frozenset()))


def permissions_of(roles: frozenset[str] | set[str] | tuple[str, ...]) -> frozenset[str]:
    """Every permission a user holding ``roles`` has."""
    return frozenset(p for p in GRANTS if allowed(roles, p))
