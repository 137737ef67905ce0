"""Errors of the privacy package: one root, :class:`PrivacyError`, and specific subclasses.

Every message says what was wrong and what to do about it.
"""

from __future__ import annotations


class PrivacyError(Exception):
    """Root of every error raised by :mod:`privacy`."""


class SpecError(PrivacyError):
    """A query specification is malformed or does not fit the catalog."""


class CatalogError(PrivacyError):
    """The shared table catalog or a deployment configuration is invalid."""


class ConnectorError(PrivacyError):
    """An agency's data source cannot be read, or holds values the catalog does not allow."""


class PolicyRefusal(PrivacyError):
    """An agency's policy refuses a query (the reason says which rule)."""

    def __init__(self, agency: str, reason: str) -> None:
        super().__init__(f"agency {agency!r} refused the query: {reason}")
        self.agency = agency
        self.reason = reason


class BudgetExhausted(PolicyRefusal):
    """A requester's differential-privacy budget at an agency would be exceeded."""


class IdentityError(PrivacyError):
    """A party's certificate or signature is not acceptable: unknown, forged, expired, revoked,
    without the claimed role, or a request outside its time window or replayed."""


class KeyValidationError(PrivacyError):
    """A Paillier public key is unsafe or malformed, or a key file cannot be opened."""


class CiphertextError(PrivacyError):
    """A ciphertext is malformed, out of range, under the wrong key, or was tampered with."""


class OverflowRisk(PrivacyError):
    """The packed slots could overflow for this query; the query is refused before running."""


class AgencyUnavailable(PrivacyError):
    """An agency did not answer (dropped out, timed out or crashed); the query is aborted."""

    def __init__(self, agency: str, detail: str) -> None:
        super().__init__(
            f"agency {agency!r} dropped out of the query: {detail}; the query was aborted and no "
            "partial result was released — check the agency's service and run the query again"
        )
        self.agency = agency
        self.detail = detail


class MPCError(PrivacyError):
    """The multiparty computation failed (a party crashed, timed out or sent inconsistent shares)."""


class AuditError(PrivacyError):
    """An audit record could not be encoded or anchored."""
