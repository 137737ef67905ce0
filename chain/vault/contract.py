"""The vault's on-chain registry: which objects exist, who owns them, who may read them.

Only digests, certificate ids, sizes and wrapped keys go on chain — never a byte of an
object. Three transaction types, sent by members (not by node certificates):

* ``vault.put`` ``{"header": 117 B, "wrapped": bytes}`` — register an object: its header
  (:class:`~chain.vault.objects.ObjectHeader`, whose SM3 is the object's digest) must name
  the sender as owner, so nobody registers another member's object as theirs;
  ``wrapped`` is the object key wrapped to the owner's own key (the chain is the owner's
  durable keyring). Registering an object twice is refused.
* ``vault.grant`` ``{"object": 32 B, "member": 32 B, "wrapped": bytes}`` — the owner lets a
  registered, unrevoked member (a court, the regulator, another center) read the object:
  ``wrapped`` is the object key wrapped to that member's key. Granting again replaces the
  wrapped key.
* ``vault.revoke`` ``{"object": 32 B, "member": 32 B}`` — the owner withdraws a grant: the
  nodes stop serving the object to that member (a key already unwrapped cannot be
  forgotten; see ``docs/vault.md``).

State keys: ``vault/obj/<digest>`` → ``{owner, content_sm3, content_size, object_size,
tx_id, height, time_ms}``; ``vault/key/<digest><cert id>`` → ``{wrapped, by, tx_id,
height, time_ms}`` (the owner's own entry included). A grant's receipt proves it offline.

Examples
--------
>>> obj, key = object_key(b"\\x01" * 32), grant_key(b"\\x01" * 32, b"\\x02" * 32)
>>> obj[:8], len(key)
(b'vault/ob', 74)
"""

from __future__ import annotations

from typing import Any, ClassVar

from chain import codec
from chain.contracts.base import TxContext, only_fields, require
from chain.contracts.membership import load_certificate, revoked_from
from chain.errors import VaultError
from chain.state import Overlay, State
from chain.types import NODE_ROLES, Role, ValidationError
from chain.vault.objects import HEADER_SIZE, WRAPPED_MAX, ObjectHeader

OBJECT = b"vault/obj/"
GRANT = b"vault/key/"
MEMBER_ROLES: frozenset[Role] = frozenset(Role) - NODE_ROLES
"""Roles that may send vault transactions (members, not node certificates)."""


def object_key(digest: bytes) -> bytes:
    """State key of a registered object."""
    return OBJECT + digest


def grant_key(digest: bytes, cert_id: bytes) -> bytes:
    """State key of the wrapped key of ``digest`` for ``cert_id``."""
    return GRANT + digest + cert_id


def load_object(state: Any, digest: bytes) -> dict[str, Any] | None:
    """The registry record of an object (``state`` is anything with ``get``), or ``None``."""
    raw = state.get(object_key(digest))
    if raw is None:
        return None
    record: dict[str, Any] = codec.decode(raw)
    return record


def load_grant(state: Any, digest: bytes, cert_id: bytes) -> dict[str, Any] | None:
    """The grant of ``digest`` to ``cert_id`` (``wrapped``, ``by``, ``height`` …), or ``None``."""
    raw = state.get(grant_key(digest, cert_id))
    if raw is None:
        return None
    record: dict[str, Any] = codec.decode(raw)
    return record


def _wrapped(payload: dict[str, Any]) -> bytes:
    wrapped = require(payload, "wrapped", bytes)
    if not 0 < len(wrapped) <= WRAPPED_MAX:
        raise ValidationError(f"payload field 'wrapped' must be 1..{WRAPPED_MAX} bytes")
    return bytes(wrapped)


def _owned(state: Overlay, ctx: TxContext, digest: bytes) -> dict[str, Any]:
    record = load_object(state, digest)
    if record is None:
        raise ValidationError("this object is not registered in the vault (send vault.put first)")
    if record["owner"] != ctx.sender.cert_id:
        raise ValidationError("only the object's owner may grant or revoke access to it")
    return record


class VaultPut:
    """``vault.put``: register an object and its owner's wrapped key."""

    type_name: ClassVar[str] = "vault.put"
    permitted_roles: ClassVar[frozenset[Role]] = MEMBER_ROLES

    def check_payload(self, payload: dict[str, Any]) -> None:
        only_fields(payload, {"header", "wrapped"})
        header = require(payload, "header", bytes, size=HEADER_SIZE)
        try:
            ObjectHeader.parse(header)
        except VaultError as exc:
            raise ValidationError(f"payload field 'header': {exc}") from None
        _wrapped(payload)

    def authorize(self, ctx: TxContext, payload: dict[str, Any], state: Overlay) -> None:
        if ObjectHeader.parse(payload["header"]).owner != ctx.sender.cert_id:
            raise ValidationError("the object's header names another owner: register only your own objects")

    def apply(self, state: Overlay, ctx: TxContext, payload: dict[str, Any]) -> dict[str, Any]:
        header = ObjectHeader.parse(payload["header"])
        digest = header.digest
        if state.get(object_key(digest)) is not None:
            raise ValidationError("this object is already registered")
        record = {
            "owner": header.owner,
            "content_sm3": header.content_sm3,
            "content_size": header.content_size,
            "object_size": header.object_size,
            "tx_id": ctx.tx_id,
            "height": ctx.height,
            "time_ms": ctx.block_timestamp_ms,
        }
        state.set(object_key(digest), codec.encode(record))
        state.set(grant_key(digest, header.owner), codec.encode(_grant_record(ctx, payload["wrapped"])))
        return {"status": "registered", "object": digest, "content_sm3": header.content_sm3}


def _grant_record(ctx: TxContext, wrapped: bytes) -> dict[str, Any]:
    return {
        "wrapped": wrapped,
        "by": ctx.sender.cert_id,
        "tx_id": ctx.tx_id,
        "height": ctx.height,
        "time_ms": ctx.block_timestamp_ms,
    }


class VaultGrant:
    """``vault.grant``: the owner lets another member read an object."""

    type_name: ClassVar[str] = "vault.grant"
    permitted_roles: ClassVar[frozenset[Role]] = MEMBER_ROLES

    def check_payload(self, payload: dict[str, Any]) -> None:
        only_fields(payload, {"object", "member", "wrapped"})
        require(payload, "object", bytes, size=32)
        require(payload, "member", bytes, size=32)
        _wrapped(payload)

    def authorize(self, ctx: TxContext, payload: dict[str, Any], state: Overlay) -> None:
        _owned(state, ctx, payload["object"])
        member = payload["member"]
        cert = load_certificate(state, member)
        if cert is None:
            raise ValidationError("the grantee's certificate is not registered on this chain")
        rev = revoked_from(state, member)
        if rev is not None and ctx.height >= rev:
            raise ValidationError(f"the grantee's certificate is revoked from height {rev}")
        if not set(cert.roles) & MEMBER_ROLES:
            raise ValidationError("grants go to members, not to node certificates")

    def apply(self, state: Overlay, ctx: TxContext, payload: dict[str, Any]) -> dict[str, Any]:
        digest, member = payload["object"], payload["member"]
        state.set(grant_key(digest, member), codec.encode(_grant_record(ctx, payload["wrapped"])))
        return {"status": "granted", "object": digest, "member": member}


class VaultRevoke:
    """``vault.revoke``: the owner withdraws another member's grant."""

    type_name: ClassVar[str] = "vault.revoke"
    permitted_roles: ClassVar[frozenset[Role]] = MEMBER_ROLES

    def check_payload(self, payload: dict[str, Any]) -> None:
        only_fields(payload, {"object", "member"})
        require(payload, "object", bytes, size=32)
        require(payload, "member", bytes, size=32)

    def authorize(self, ctx: TxContext, payload: dict[str, Any], state: Overlay) -> None:
        _owned(state, ctx, payload["object"])
        if payload["member"] == ctx.sender.cert_id:
            raise ValidationError("an owner cannot revoke its own access")

    def apply(self, state: Overlay, ctx: TxContext, payload: dict[str, Any]) -> dict[str, Any]:
        key = grant_key(payload["object"], payload["member"])
        if state.get(key) is None:
            raise ValidationError("this member holds no grant for this object")
        state.delete(key)
        return {"status": "revoked", "object": payload["object"], "member": payload["member"]}


def register_contracts(registry: Any) -> None:
    """Add the vault's transaction types to a :class:`~chain.contracts.ContractRegistry`."""
    for contract in (VaultPut(), VaultGrant(), VaultRevoke()):
        registry.register(contract)


def may_read(
    state: State | Overlay | Any, digest: bytes, cert_id: bytes, roles: frozenset[Role] | set[Role]
) -> bool:
    """Whether a node serves the object's ciphertext to ``cert_id``: its owner, a member
    holding a grant, or a node certificate (replication and repair between nodes).

    A node certificate gets the ciphertext only; reading the content needs a wrapped key.
    """
    if set(roles) & NODE_ROLES:
        return True
    record = load_object(state, digest)
    if record is not None and record["owner"] == cert_id:
        return True
    return state.get(grant_key(digest, cert_id)) is not None


def registered_objects(state: State | Overlay) -> list[bytes]:
    """Digests of every registered object (what a full replica should hold)."""
    return [key[len(OBJECT) :] for key, _ in state.items_with_prefix(OBJECT)]


__all__ = [
    "GRANT",
    "MEMBER_ROLES",
    "OBJECT",
    "VaultGrant",
    "VaultPut",
    "VaultRevoke",
    "grant_key",
    "load_grant",
    "load_object",
    "may_read",
    "object_key",
    "register_contracts",
    "registered_objects",
]
