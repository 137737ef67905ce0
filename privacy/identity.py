"""Who takes part in a query: SM2 identities, the consortium's trust root, pinned peers.

Every party of a privacy query holds an SM2 key and a certificate issued by the
consortium's supervisory root (:class:`chain.types.Certificate`), as ledger members do:

* a **requester** (a regulator) is accepted by an agency when its certificate verifies
  under the root the agency trusts (:class:`Trust`), is valid now, is not on the
  agency's revocation list and carries the role the query claims. The requester's
  identity for policy and differential-privacy budgets is the certificate id (SM3 of the
  certificate) — never a name the requester writes itself;
* **agencies** know each other by certificates pinned in their configuration
  (:class:`PeerDirectory`): a regulator cannot add agencies of its own making to a query,
  because an agency refuses any participant it has not pinned. Two agencies agree on a
  static pairwise secret from their certified keys (:func:`pairwise_secret`, ECDH on the
  SM2 curve, :mod:`chain.crypto.ecdh`); per-query mask seeds are derived from it
  (:mod:`privacy.secagg`).

Examples
--------
>>> from chain.crypto import PrivateKey
>>> from chain.types import Role
>>> root = PrivateKey.generate()
>>> a = Identity.issue(root, "agency-a", [Role.MEDIA_CENTER])
>>> b = Identity.issue(root, "agency-b", [Role.LEGAL_CENTER])
>>> pairwise_secret(a, b.cert) == pairwise_secret(b, a.cert)
True
>>> Trust(root.public_key).check(a.cert, "media_center", now_ms=1) is a.cert
True
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from chain.crypto import CryptoError, PrivateKey, PublicKey
from chain.crypto.ecdh import EphemeralKey
from chain.crypto.keyfile import load_private_key
from chain.errors import ChainError
from chain.node.identity import certificate_from_json, certificate_to_json
from chain.types import Certificate, Role
from privacy.errors import CatalogError, IdentityError

if TYPE_CHECKING:
    from privacy.membership import Membership

__all__ = [
    "Identity",
    "PeerDirectory",
    "Trust",
    "certificate_from_json",
    "certificate_to_json",
    "load_certificate",
    "load_identity",
    "pairwise_secret",
]


@dataclass(frozen=True)
class Identity:
    """An SM2 key with its certificate (a requester's or an agency's)."""

    key: PrivateKey
    cert: Certificate

    def __post_init__(self) -> None:
        if self.key.public_key.to_bytes() != self.cert.key().to_bytes():
            raise IdentityError(f"the key does not belong to the certificate of {self.cert.subject!r}")

    @property
    def cert_id(self) -> bytes:
        """The certificate id (SM3 of its signed fields)."""
        return self.cert.cert_id

    @classmethod
    def issue(
        cls,
        root: PrivateKey,
        subject: str,
        roles: Iterable[Role | str],
        organization: str | None = None,
        not_before_ms: int = 0,
        not_after_ms: int | None = None,
    ) -> Identity:
        """A fresh key certified by ``root`` (consortium set-up, demos and tests)."""
        key = PrivateKey.generate()
        cert = Certificate.issue(
            root,
            subject,
            organization or subject,
            [Role(r) for r in roles],
            key.public_key,
            not_before_ms,
            not_after_ms,
        )
        return cls(key, cert)


def load_certificate(path: str | os.PathLike[str]) -> Certificate:
    """A certificate from its JSON file (the form of ``member.cert.json``)."""
    p = Path(path)
    try:
        return certificate_from_json(p.read_bytes())
    except OSError as exc:
        raise CatalogError(f"cannot read certificate {p}: {exc.strerror}") from None
    except (ValueError, ChainError) as exc:
        raise CatalogError(f"{p} is not a certificate: {exc}") from None


def load_identity(
    key_file: str | os.PathLike[str], cert_file: str | os.PathLike[str], password: str
) -> Identity:
    """Open an encrypted SM2 key file (:mod:`chain.crypto.keyfile`) and its certificate."""
    cert = load_certificate(cert_file)
    try:
        key = load_private_key(key_file, password)
    except OSError as exc:
        raise CatalogError(f"cannot read key file {key_file}: {exc.strerror}") from None
    except CryptoError as exc:
        raise CatalogError(f"cannot open key file {key_file}: {exc}") from None
    return Identity(key, cert)


def pairwise_secret(own: Identity, peer: Certificate) -> bytes:
    """The static ECDH secret of ``own`` and ``peer`` (32 bytes; both sides get the same).

    It never leaves the agency: only per-query seeds derived from it are ever revealed
    (:func:`privacy.secagg.pair_seed`).
    """
    scalar = int.from_bytes(own.key.to_bytes(), "big")
    try:
        return EphemeralKey(scalar).exchange(peer.key().to_bytes())
    except CryptoError as exc:
        raise IdentityError(f"cannot agree a key with {peer.subject!r}: {exc}") from None


@dataclass(frozen=True)
class Trust:
    """What an agency trusts: the consortium's root key, minus revoked certificates.

    Parameters
    ----------
    root : PublicKey
        The supervisory root public key (from the consortium's genesis).
    revoked : frozenset of bytes
        Certificate ids refused even though the root signed them (a local deny list, on
        top of the ledger's).
    membership : Membership or None
        The consortium ledger's membership and revocations
        (:class:`privacy.membership.LedgerMembership`); ``None``: the deny list only.
    """

    root: PublicKey
    revoked: frozenset[bytes] = field(default_factory=frozenset)
    membership: Membership | None = field(default=None, compare=False)

    def check_standing(self, cert: Certificate) -> Certificate:
        """``cert`` if neither the local deny list nor the ledger revoked it (nor, when the
        ledger requires it, is it unregistered); :class:`IdentityError` saying why not."""
        if cert.cert_id in self.revoked:
            raise IdentityError(f"the certificate of {cert.subject!r} has been revoked")
        if self.membership is not None:
            self.membership.check(cert)
        return cert

    def check(self, cert: Certificate, role: str, now_ms: int | None = None) -> Certificate:
        """``cert`` if it may act in ``role`` now; :class:`IdentityError` saying why not."""
        try:
            cert.verify(self.root)
        except ChainError as exc:
            raise IdentityError(
                f"the requester's certificate is not signed by the consortium's root: {exc}"
            ) from None
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        if not cert.valid_at(now):
            raise IdentityError(f"the certificate of {cert.subject!r} is not valid now (expired or not yet)")
        if role not in {r.value for r in cert.roles}:
            raise IdentityError(
                f"the certificate of {cert.subject!r} does not carry the role {role!r} "
                f"(it has {[r.value for r in cert.roles]})"
            )
        return self.check_standing(cert)


class PeerDirectory:
    """The agencies one party knows, by name, each pinned to its certificate."""

    def __init__(self, peers: Mapping[str, Certificate]) -> None:
        self._peers = dict(peers)

    def __contains__(self, name: object) -> bool:
        return name in self._peers

    def names(self) -> list[str]:
        """Pinned agency names, sorted."""
        return sorted(self._peers)

    def get(self, name: str) -> Certificate:
        """The pinned certificate of ``name``; :class:`IdentityError` for an unknown agency."""
        cert = self._peers.get(name)
        if cert is None:
            raise IdentityError(f"agency {name!r} is not a pinned peer here")
        return cert
