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


_RECORD_HEAD = b"\xa7"  # a map of seven entries
_KEYS = {
    name: codec.encode(name)
    for name in ("kind", "meta", "count", "tx_id", "height", "sender", "timestamp_ms")
}
_UINT_MAX = 2**64 - 1


def encode_record(
    tx_id: bytes, height: int, kind: str, meta: bytes, count: int, sender: bytes, timestamp_ms: int
) -> bytes:
    """The state record of an anchored digest: exactly ``codec.encode`` of the map
    ``{"tx_id", "height", "kind", "meta", "count", "sender", "timestamp_ms"}``, written
    directly (the keys in canonical order, shorter first: ``kind, meta, count, tx_id,
    height, sender, timestamp_ms``) instead of through a dict and a type walk; values
    outside the shapes written here (a negative or oversized integer, another type) go
    through :func:`chain.codec.encode`.

    Examples
    --------
    >>> rec = {"tx_id": b"t" * 32, "height": 7, "kind": "work", "meta": b"", "count": 1,
    ...        "sender": b"s" * 32, "timestamp_ms": 1_700_000_000_000}
    >>> encode_record(*rec.values()) == codec.encode(rec)
    True
    """
    if (
        type(tx_id) is bytes
        and type(meta) is bytes
        and type(sender) is bytes
        and type(kind) is str
        and type(height) is int
        and type(count) is int
        and type(timestamp_ms) is int
        and 0 <= height <= _UINT_MAX
        and 0 <= count <= _UINT_MAX
        and 0 <= timestamp_ms <= _UINT_MAX
    ):
        head = codec.encode_head
        text = kind.encode("utf-8")
        keys = _KEYS
        return b"".join(
            (
                _RECORD_HEAD,
                keys["kind"],
                head(3, len(text)),
                text,
                keys["meta"],
                head(2, len(meta)),
                meta,
                keys["count"],
                head(0, count),
                keys["tx_id"],
                head(2, len(tx_id)),
                tx_id,
                keys["height"],
                head(0, height),
                keys["sender"],
                head(2, len(sender)),
                sender,
                keys["timestamp_ms"],
                head(0, timestamp_ms),
            )
        )
    return codec.encode(
        {
            "tx_id": tx_id,
            "height": height,
            "kind": kind,
            "meta": meta,
            "count": count,
            "sender": sender,
            "timestamp_ms": timestamp_ms,
        }
    )


class AnchorContract:
    """Anchor digests; every certified organization may anchor."""

    type_name: ClassVar[str] = "anchor"
    permitted_roles: ClassVar[frozenset[Role]] = frozenset(Role) - {Role.OBSERVER_NODE}
    apply_never_refuses: ClassVar[bool] = True
    """``apply`` records a new digest or answers with the existing anchor: it never refuses."""

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

    def reads(self, payload: dict[str, Any]) -> list[bytes]:
        """The key of the digest ``apply`` looks up (the one key it reads)."""
        digest = payload.get("digest")
        return [anchor_key(digest)] if type(digest) is bytes else []

    def authorize(self, ctx: TxContext, payload: dict[str, Any], state: Overlay) -> None:
        return None

    def apply(self, state: Overlay, ctx: TxContext, payload: dict[str, Any]) -> dict[str, Any]:
        key = anchor_key(payload["digest"])
        existing = state.get(key)
        if existing is not None:
            original = codec.decode(existing)
            return {"status": "already_anchored", "tx_id": original["tx_id"], "height": original["height"]}
        record = encode_record(
            ctx.tx_id,
            ctx.height,
            payload["kind"],
            payload.get("meta", b""),
            payload.get("count", 1),
            ctx.sender.cert_id,
            ctx.block_timestamp_ms,
        )
        state.set(key, record)
        return {"status": "anchored", "tx_id": ctx.tx_id, "height": ctx.height}
