"""Membership contract: admit and revoke certified members and nodes.

* ``member.add`` ``{"certificate": {...}}`` — a certificate signed by the supervisory
  root; the sender must hold the ``supervisor`` role.
* ``member.revoke`` ``{"cert_id": 32 B, "reason": str}`` — revocation takes effect from
  the *next* height: the revoked certificate's transactions in later blocks are refused,
  and if it is a consensus node, it leaves the validator set at that height boundary.
  A node may be removed for missing its turns or for equivocation evidence (passive exit)
  by the same transaction.

State keys: ``cert/<id>`` → certificate, ``revoked/<id>`` → ``{"from_height", "reason"}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from chain import codec
from chain.contracts.base import TxContext, only_fields, require
from chain.crypto import PublicKey
from chain.state import Overlay, State
from chain.types import Certificate, Role, ValidationError

CERT = b"cert/"
REVOKED = b"revoked/"


def cert_key(cert_id: bytes) -> bytes:
    return CERT + cert_id


def revoked_key(cert_id: bytes) -> bytes:
    return REVOKED + cert_id


def load_certificate(state: State | Overlay, cert_id: bytes) -> Certificate | None:
    """The certificate with ``cert_id`` in ``state``, or ``None``."""
    raw = state.get(cert_key(cert_id))
    return None if raw is None else Certificate.from_dict(codec.decode(raw))


def revoked_from(state: State | Overlay, cert_id: bytes) -> int | None:
    """Height from which ``cert_id`` is revoked, or ``None``."""
    raw = state.get(revoked_key(cert_id))
    return None if raw is None else int(codec.decode(raw)["from_height"])


def validator_set(state: State | Overlay, height: int) -> list[bytes]:
    """Consensus-node certificate ids in force at ``height``, sorted."""
    out = []
    for key, raw in state.items_with_prefix(CERT):
        cert = Certificate.from_dict(codec.decode(raw))
        if Role.CONSENSUS_NODE not in cert.roles:
            continue
        rev = revoked_from(state, key[len(CERT) :])
        if rev is None or height < rev:
            out.append(key[len(CERT) :])
    return sorted(out)


class AddMember:
    type_name: ClassVar[str] = "member.add"
    permitted_roles: ClassVar[frozenset[Role]] = frozenset({Role.SUPERVISOR})

    def __init__(self, root: PublicKey) -> None:
        self._root = root

    def check_payload(self, payload: dict[str, Any]) -> None:
        only_fields(payload, {"certificate"})
        Certificate.from_dict(require(payload, "certificate", dict)).verify(self._root)

    def authorize(self, ctx: TxContext, payload: dict[str, Any], state: Overlay) -> None:
        return None

    def apply(self, state: Overlay, ctx: TxContext, payload: dict[str, Any]) -> dict[str, Any]:
        cert = Certificate.from_dict(payload["certificate"])
        if state.get(cert_key(cert.cert_id)) is not None:
            raise ValidationError("this certificate is already registered")
        state.set(cert_key(cert.cert_id), codec.encode(cert.to_dict()))
        return {"status": "added", "cert_id": cert.cert_id}


class RevokeMember:
    type_name: ClassVar[str] = "member.revoke"
    permitted_roles: ClassVar[frozenset[Role]] = frozenset({Role.SUPERVISOR})

    def check_payload(self, payload: dict[str, Any]) -> None:
        only_fields(payload, {"cert_id", "reason"})
        require(payload, "cert_id", bytes, size=32)
        reason = require(payload, "reason", str)
        if len(reason) > 500:
            raise ValidationError("revocation reason is at most 500 characters")

    def authorize(self, ctx: TxContext, payload: dict[str, Any], state: Overlay) -> None:
        return None

    def apply(self, state: Overlay, ctx: TxContext, payload: dict[str, Any]) -> dict[str, Any]:
        target = payload["cert_id"]
        if state.get(cert_key(target)) is None:
            raise ValidationError("cannot revoke an unknown certificate")
        if state.get(revoked_key(target)) is not None:
            raise ValidationError("certificate is already revoked")
        from_height = ctx.height + 1
        state.set(
            revoked_key(target), codec.encode({"from_height": from_height, "reason": payload["reason"]})
        )
        return {"status": "revoked", "cert_id": target, "from_height": from_height}
