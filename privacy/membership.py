"""Who is still a member: revocations and registrations read from the consortium ledger.

``rongxin member revoke`` writes a revocation on chain (state ``revoked/<cert id>``, see
:mod:`chain.contracts.membership`) and ``rongxin member add`` registers a certificate
(``cert/<cert id>``). An agency checks every requester, and the query client every agency,
against that state through a member's node client (any :class:`chain.client.Ledger`:
:class:`~chain.client.NodeClient` proves each state read against the genesis, so the node
itself is not trusted for the answer).

Answers are cached for ``ttl_s`` seconds: a revocation takes effect at the first check
after the cached answer expires. When the ledger cannot be reached, an expired answer is
still used for ``grace_s`` seconds more; after that — or when there was never an answer —
the check **fails closed** with an :class:`~privacy.errors.IdentityError` that says so.

Examples
--------
>>> import time
>>> from chain.crypto import PrivateKey
>>> from chain.types import Certificate, Role
>>> root = PrivateKey.generate()
>>> cert = Certificate.issue(root, "Regulator", "Gov", [Role.REGULATOR], PrivateKey.generate().public_key,
...                          int(time.time() * 1000) - 1000)
>>> class Chain:  # a ledger where the certificate is registered and not revoked
...     def state(self, key):
...         return b"registered" if key.startswith(b"cert/") else None
>>> LedgerMembership(Chain()).check(cert)
>>> LedgerMembership(Chain()).status(cert).revoked_from is None
True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from chain import codec
from chain.contracts.membership import cert_key, revoked_key
from chain.errors import ChainError
from chain.types import Certificate, Genesis
from privacy.errors import CatalogError, IdentityError

if TYPE_CHECKING:
    from privacy.identity import Trust

DEFAULT_TTL_S = 10.0
DEFAULT_GRACE_S = 60.0
MAX_CACHED = 10_000


class StateReader(Protocol):
    """The part of :class:`chain.client.Ledger` used here."""

    def state(self, key: bytes) -> bytes | None:
        """The committed value at ``key`` (``None``: no entry)."""
        ...


class Membership(Protocol):
    """Anything that can refuse a certificate that is no longer a member."""

    def check(self, cert: Certificate) -> None:
        """Return if ``cert`` is in good standing; :class:`IdentityError` saying why not."""
        ...


@dataclass(frozen=True)
class MemberStatus:
    """What the ledger said about one certificate, and when (``clock`` seconds)."""

    registered: bool
    revoked_from: int | None
    reason: str
    fetched_at: float


class LedgerMembership:
    """Membership and revocations from the consortium ledger, cached, failing closed.

    Parameters
    ----------
    ledger : StateReader
        The member's node client (:class:`chain.client.NodeClient` or
        :class:`chain.client.InProcessLedger`).
    ttl_s : float
        How long an answer is used before the ledger is asked again.
    grace_s : float
        How long past ``ttl_s`` an answer is still used while the ledger cannot be reached.
    require_registered : bool
        Refuse certificates that were never registered on the chain (``member add``), not
        only revoked ones. ``genesis_ids`` (the genesis' certificates) count as registered.
    genesis_ids : frozenset of bytes
        Certificate ids of the genesis document.
    clock : callable
        Monotonic seconds (tests).
    """

    def __init__(
        self,
        ledger: StateReader,
        ttl_s: float = DEFAULT_TTL_S,
        grace_s: float = DEFAULT_GRACE_S,
        *,
        require_registered: bool = True,
        genesis_ids: frozenset[bytes] = frozenset(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s < 0 or grace_s < 0:
            raise ValueError("ttl_s and grace_s must not be negative")
        self.ledger = ledger
        self.ttl_s = ttl_s
        self.grace_s = grace_s
        self.require_registered = require_registered
        self.genesis_ids = genesis_ids
        self.clock = clock
        self._cache: dict[bytes, MemberStatus] = {}
        self._lock = threading.Lock()

    def _fetch(self, cert_id: bytes) -> MemberStatus:
        raw = self.ledger.state(revoked_key(cert_id))
        revoked_from, reason = None, ""
        if raw is not None:
            try:
                doc = codec.decode(raw)
                revoked_from, reason = int(doc["from_height"]), str(doc.get("reason", ""))
            except (ChainError, ValueError, TypeError, KeyError):  # unreadable: still "revoked"
                revoked_from, reason = 0, "unreadable revocation record"
        registered = cert_id in self.genesis_ids
        if not registered and self.require_registered and revoked_from is None:
            registered = self.ledger.state(cert_key(cert_id)) is not None
        return MemberStatus(registered, revoked_from, reason, self.clock())

    def status(self, cert: Certificate) -> MemberStatus:
        """The ledger's answer for ``cert`` (cached; within the grace period if unreachable).

        Raises
        ------
        IdentityError
            The ledger cannot be reached and no answer younger than ``ttl_s + grace_s`` is
            at hand.
        """
        cert_id = cert.cert_id
        now = self.clock()
        with self._lock:
            cached = self._cache.get(cert_id)
        if cached is not None and now - cached.fetched_at <= self.ttl_s:
            return cached
        try:
            fresh = self._fetch(cert_id)
        except (ChainError, OSError, ValueError) as exc:  # unreachable, refused, a bad proof: fail closed
            if cached is not None and now - cached.fetched_at <= self.ttl_s + self.grace_s:
                return cached
            age = "never answered" if cached is None else f"last answered {now - cached.fetched_at:.0f} s ago"
            raise IdentityError(
                f"cannot check {cert.subject!r} against the consortium ledger ({exc}); {age}, "
                f"grace {self.grace_s:g} s after the {self.ttl_s:g} s cache: refusing"
            ) from None
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[cert_id] = fresh
        return fresh

    def check(self, cert: Certificate) -> None:
        """Return if ``cert`` is registered (when required) and not revoked on the ledger.

        Raises
        ------
        IdentityError
            Revoked, not registered, or the ledger unreachable past the grace period.
        """
        st = self.status(cert)
        if st.revoked_from is not None:
            why = f" ({st.reason})" if st.reason else ""
            raise IdentityError(
                f"the certificate of {cert.subject!r} is revoked on the consortium ledger "
                f"from height {st.revoked_from}{why}"
            )
        if self.require_registered and not st.registered:
            raise IdentityError(
                f"the certificate of {cert.subject!r} is not registered on the consortium ledger "
                "(rongxin member add)"
            )


def with_ledger(
    trust: Trust,
    ledger: StateReader,
    genesis: Genesis,
    ttl_s: float = DEFAULT_TTL_S,
    grace_s: float = DEFAULT_GRACE_S,
    *,
    require_registered: bool = True,
) -> Trust:
    """``trust`` that also consults ``ledger`` (the member's node client on ``genesis``).

    Raises
    ------
    CatalogError
        The ledger's genesis names another root than ``trust`` (the wrong chain).
    """
    from dataclasses import replace

    if genesis.root_public_key != trust.root.to_bytes():
        raise CatalogError(
            "the ledger's genesis names another supervisory root than [consortium] root_public_key; "
            "point [consortium.ledger] client at this consortium's chain"
        )
    membership = LedgerMembership(
        ledger,
        ttl_s,
        grace_s,
        require_registered=require_registered,
        genesis_ids=frozenset(c.cert_id for c in genesis.certificates),
    )
    return replace(trust, membership=membership)
