"""Anchoring contract: put a digest (or the Merkle root of a batch of digests) on chain.

Payload ``{"digest": 32 B, "kind": str, "meta": 32 B}`` anchors one digest; with
``"count": n`` the digest is the RFC 6962 root over ``n`` digests
(:func:`chain.merkle.batch_proofs`), each of which is proven by its own path off chain.
Anchoring a digest that is already anchored changes nothing and returns the original
anchor (transaction id and height), so a client gets the original receipt back.
"""

from __future__ import annotations

from typing import Any, ClassVar

from chain import codec
from chain.contracts.base import TxContext, only_fields, require
from chain.state import Overlay
from chain.types import Role, ValidationError

PREFIX = b"anchor/"
MAX_KIND = 64
MAX_BATCH = 1 << 20


def anchor_key(digest: bytes) -> bytes:
    """State key of an anchored digest."""
    return PREFIX + digest


class AnchorContract:
    """Anchor digests; every certified organization may anchor."""

    type_name: ClassVar[str] = "anchor"
    permitted_roles: ClassVar[frozenset[Role]] = frozenset(Role) - {Role.OBSERVER_NODE}

    def check_payload(self, payload: dict[str, Any]) -> None:
        only_fields(payload, {"digest", "kind", "meta", "count"})
        require(payload, "digest", bytes, size=32)
        kind = require(payload, "kind", str)
        if not 0 < len(kind) <= MAX_KIND:
            raise ValidationError(f"anchor kind must be 1..{MAX_KIND} characters")
        if "meta" in payload:
            require(payload, "meta", bytes, size=32)
        if "count" in payload:
            count = require(payload, "count", int)
            if not 1 <= count <= MAX_BATCH:
                raise ValidationError(f"batch count must be 1..{MAX_BATCH}")

    def authorize(self, ctx: TxContext, payload: dict[str, Any], state: Overlay) -> None:
        return None

    def apply(self, state: Overlay, ctx: TxContext, payload: dict[str, Any]) -> dict[str, Any]:
        key = anchor_key(payload["digest"])
        existing = state.get(key)
        if existing is not None:
            original = codec.decode(existing)
            return {"status": "already_anchored", "tx_id": original["tx_id"], "height": original["height"]}
        record = {
            "tx_id": ctx.tx_id,
            "height": ctx.height,
            "kind": payload["kind"],
            "meta": payload.get("meta", b""),
            "count": payload.get("count", 1),
            "sender": ctx.sender.cert_id,
            "timestamp_ms": ctx.block_timestamp_ms,
        }
        state.set(key, codec.encode(record))
        return {"status": "anchored", "tx_id": ctx.tx_id, "height": ctx.height}
