"""Membership: certified members and nodes in the ledger state, and admitting them.

* ``member.add`` ``{"certificate": {...}}`` — a certificate signed by the supervisory
  root; the sender must hold the ``supervisor`` role. A certificate with the
  ``consensus_node`` role is registered as an **observer**: it syncs and may send
  ``node.ready``, but it does not vote until it is promoted (``member.promote``, see
  :mod:`chain.contracts.governance`) — a node that is not running can never be made a
  validator by a certificate alone.

Revocation, promotion and readiness change the validator set, so they live in
:mod:`chain.contracts.governance`, next to the rules that guard every change of the set.

State keys: ``cert/<id>`` → certificate, ``revoked/<id>`` → ``{"from_height", "reason"}``,
``validator/<id>`` → ``{"from_height"}`` for a consensus node that votes (the genesis
consensus nodes from height 0), ``ready/<id>`` → ``{"height", "seen"}`` for the last
``node.ready`` of a consensus node, ``sys/block/<height>`` → the hash of the block at
``height`` (written at the start of the next block: the chain's history, which a
checkpoint's state root commits to).
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
VALIDATOR = b"validator/"
READY = b"ready/"
HISTORY = b"sys/block/"


def cert_key(cert_id: bytes) -> bytes:
    """State key of a registered certificate."""
    return CERT + cert_id


def revoked_key(cert_id: bytes) -> bytes:
    """State key of a certificate's revocation record."""
    return REVOKED + cert_id


def validator_key(cert_id: bytes) -> bytes:
    """State key marking a consensus node that votes (promoted, or named in the genesis)."""
    return VALIDATOR + cert_id


def ready_key(cert_id: bytes) -> bytes:
    """State key of a consensus node's last readiness attestation."""
    return READY + cert_id


def history_key(height: int) -> bytes:
    """State key of the hash of the block at ``height``."""
    return HISTORY + height.to_bytes(8, "big")


_DECODED: dict[bytes, Certificate] = {}
_DECODED_LIMIT = 10_000


def load_certificate(state: State | Overlay, cert_id: bytes) -> Certificate | None:
    """The certificate with ``cert_id`` in ``state``, or ``None``.

    Decoded certificates are remembered by their stored bytes (every transaction loads
    its sender's), so each is parsed once per process while the cache holds it.
    """
    raw = state.get(cert_key(cert_id))
    if raw is None:
        return None
    cert = _DECODED.get(raw)
    if cert is None:
        cert = Certificate.from_dict(codec.decode(raw))
        if len(_DECODED) >= _DECODED_LIMIT:
            _DECODED.clear()
        _DECODED[raw] = cert
    return cert


def revoked_from(state: State | Overlay, cert_id: bytes) -> int | None:
    """Height from which ``cert_id`` is revoked, or ``None``."""
    raw = state.get(revoked_key(cert_id))
    return None if raw is None else int(codec.decode(raw)["from_height"])


def is_validator(state: State | Overlay, cert_id: bytes) -> bool:
    """Whether ``cert_id`` was promoted to vote (revocation and expiry aside)."""
    return state.get(validator_key(cert_id)) is not None


def validator_set(state: State | Overlay, height: int, timestamp_ms: int | None = None) -> list[bytes]:
    """Ids of the consensus nodes that vote at ``height``, sorted.

    A node votes when it was promoted (or named in the genesis), is not revoked at
    ``height`` and, when ``timestamp_ms`` is given, its certificate is valid at that time
    (``not_before_ms <= timestamp_ms <= not_after_ms``).
    """
    out = []
    for key, _ in state.items_with_prefix(VALIDATOR):
        cert_id = key[len(VALIDATOR) :]
        cert = load_certificate(state, cert_id)
        if cert is None or Role.CONSENSUS_NODE not in cert.roles:
            continue
        rev = revoked_from(state, cert_id)
        if rev is not None and height >= rev:
            continue
        if timestamp_ms is not None and not cert.valid_at(timestamp_ms):
            continue
        out.append(cert_id)
    return sorted(out)


class AddMember:
    """``member.add``: register a root-signed certificate (consensus nodes as observers)."""

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
        result: dict[str, Any] = {"status": "added", "cert_id": cert.cert_id}
        if Role.CONSENSUS_NODE in cert.roles:
            result["status"] = "added_observer"
        return result
