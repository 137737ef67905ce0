"""Ledger contracts for confidential transfers, registered through :mod:`chain`'s interface.

Three transaction types (register them with :func:`register_contracts`):

``zkp.auditor`` — the supervisor: ``{"key": 33 B, "pop": 64 B}`` sets the auditor key
    (the regulator's) that every later transfer must encrypt to (``pop`` proves possession,
    bound to the chain id). Replacing a registered key also needs ``"consent": 64 B``, a
    possession proof of the *current* auditor key bound to the new key — so neither the
    supervisor's key nor a regulator alone can redirect what transfers disclose.
    State ``zkp/auditor``.
``zkp.register`` — media or copyright center: ``{"work": 32 B, "owner": 33 B, "pop": 64 B}``
    creates the first ownership record ``(work, 0, owner)``. State ``zkp/own/<work>``.
``zkp.transfer`` — media or copyright center: the payload of
    :meth:`zkp.transfer.Transfer.to_payload`. ``apply`` verifies every proof against the
    current record and auditor key, refuses a spent nullifier, then writes
    ``zkp/null/<nullifier>``, the new record ``(work, seq + 1, new owner)`` and the transfer
    record ``zkp/xfer/<work><seq>`` that the auditor reads (``rongxin transfer audit``).

Every refusal raises the ledger's :class:`chain.errors.ValidationError` with the reason
(the contract boundary turns a :class:`zkp.errors.ZkpError` into it), so the ledger refuses
the transaction; a malformed transfer record raises :class:`zkp.errors.EncodingError`.
Verification is deterministic: no clock, no randomness (the range proof's batching weight
comes from the transcript).

Size limit: :data:`MAX_TRANSFER_RECORD_BYTES` (128 KiB) bounds a transfer record read by
:meth:`TransferRecord.from_bytes` (an exported file or a state value), checked before
decoding: the record is a transfer payload — itself inside a transaction of at most
:data:`chain.types.MAX_TX_BYTES` (64 KiB) — plus a few fixed-size fields.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from chain import codec
from chain.contracts.base import ContractRegistry, TxContext, only_fields, require
from chain.crypto.sm3 import sm3
from chain.errors import ChainError, ValidationError
from chain.state import Overlay
from chain.types import Role
from zkp.auditor import AuditorKey
from zkp.errors import EncodingError, ZkpError
from zkp.group import Point
from zkp.transfer import (
    OwnerKey,
    OwnershipRecord,
    Transfer,
    prove_key_possession,
    verify_key_possession,
    verify_transfer,
)

AUDITOR_KEY = b"zkp/auditor"
OWN = b"zkp/own/"
NULL = b"zkp/null/"
XFER = b"zkp/xfer/"
_SENDERS = frozenset({Role.MEDIA_CENTER, Role.COPYRIGHT_CENTER})
_ROTATE = b"auditor-rotate/"
MAX_TRANSFER_RECORD_BYTES = 128 * 1024
"""Largest encoded transfer record accepted by :meth:`TransferRecord.from_bytes`."""


class StateReader(Protocol):
    """Anything with ``get(key)`` (``chain.state.State``/``Overlay``, or a store adapter)."""

    def get(self, key: bytes) -> bytes | None: ...


def load_auditor(state: StateReader) -> Point | None:
    """The registered auditor key, or ``None``."""
    raw = state.get(AUDITOR_KEY)
    return None if raw is None else Point.decode(codec.decode(raw)["key"])


def load_record(state: StateReader, work: bytes) -> OwnershipRecord | None:
    """The current ownership record of ``work``, or ``None`` if it is not registered."""
    raw = state.get(OWN + work)
    if raw is None:
        return None
    doc = codec.decode(raw)
    return OwnershipRecord(work, doc["seq"], Point.decode(doc["owner"]))


@dataclass(frozen=True)
class TransferRecord:
    """A recorded transfer as kept in state (what the auditor opens)."""

    record: OwnershipRecord
    transfer: Transfer
    chain_id: str
    tx_id: bytes
    height: int

    def to_bytes(self) -> bytes:
        """Canonical CBOR."""
        return codec.encode(
            {
                "work": self.record.work,
                "seq": self.record.seq,
                "owner": self.record.owner.encode(),
                "payload": self.transfer.to_payload(),
                "chain_id": self.chain_id,
                "tx_id": self.tx_id,
                "height": self.height,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> TransferRecord:
        """Parse a stored or exported record (raises :class:`ZkpError` subclasses if malformed)."""
        if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_TRANSFER_RECORD_BYTES:
            size = len(data) if isinstance(data, (bytes, bytearray)) else type(data).__name__
            raise EncodingError(f"a transfer record is at most {MAX_TRANSFER_RECORD_BYTES} bytes, got {size}")
        try:
            doc = codec.decode(data, max_size=MAX_TRANSFER_RECORD_BYTES)
        except ChainError as exc:
            raise EncodingError(f"not a transfer record: {exc}") from None
        # Exactly the fields to_bytes writes, each of its type: one record, one encoding.
        kinds: dict[str, type] = {
            "work": bytes,
            "seq": int,
            "owner": bytes,
            "payload": dict,
            "chain_id": str,
            "tx_id": bytes,
            "height": int,
        }
        if not isinstance(doc, dict) or set(doc) != set(kinds):
            raise EncodingError(f"not a transfer record: the fields must be exactly {sorted(kinds)}")
        for name, kind in kinds.items():
            value = doc[name]
            negative = isinstance(value, int) and value < 0
            if not isinstance(value, kind) or isinstance(value, bool) or negative:
                raise EncodingError(f"not a transfer record: field {name!r} must be {kind.__name__}")
        record = OwnershipRecord(doc["work"], doc["seq"], Point.decode(doc["owner"]))
        return cls(
            record, Transfer.from_payload(doc["payload"]), doc["chain_id"], doc["tx_id"], doc["height"]
        )


def transfer_records(state: StateReader, work: bytes) -> Iterator[TransferRecord]:
    """Every recorded transfer of ``work``, oldest first."""
    seq = 0
    while (raw := state.get(XFER + work + seq.to_bytes(8, "big"))) is not None:
        yield TransferRecord.from_bytes(raw)
        seq += 1


def _reject(exc: Exception, what: str) -> ValidationError:
    return ValidationError(f"{what}: {exc}")


class AuditorContract:
    """``zkp.auditor``: set the auditor (regulator) key; replacing it needs the current key's consent."""

    type_name: ClassVar[str] = "zkp.auditor"
    permitted_roles: ClassVar[frozenset[Role]] = frozenset({Role.SUPERVISOR})

    def check_payload(self, payload: dict[str, Any]) -> None:
        only_fields(payload, {"key", "pop", "consent"})
        require(payload, "key", bytes, size=33)
        require(payload, "pop", bytes, size=64)
        if "consent" in payload:
            require(payload, "consent", bytes, size=64)

    def authorize(self, ctx: TxContext, payload: dict[str, Any], state: Overlay) -> None:
        return None

    def apply(self, state: Overlay, ctx: TxContext, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            key = Point.decode(payload["key"])
            verify_key_possession(key, payload["pop"], ctx.chain_id, b"auditor", kind=AuditorKey)
        except ZkpError as exc:
            raise _reject(exc, "auditor key refused") from None
        current = load_auditor(state)
        if current is not None:
            if "consent" not in payload:
                raise ValidationError(
                    "an auditor key is registered: replacing it needs the consent of the current "
                    "auditor key (auditor_payload(new, chain_id, previous=current key))"
                )
            try:
                verify_key_possession(
                    current, payload["consent"], ctx.chain_id, _ROTATE + payload["key"], kind=AuditorKey
                )
            except ZkpError as exc:
                raise _reject(exc, "auditor key replacement refused (consent)") from None
        state.set(
            AUDITOR_KEY, codec.encode({"key": payload["key"], "height": ctx.height, "tx_id": ctx.tx_id})
        )
        return {"status": "auditor_set", "height": ctx.height}


class RegisterContract:
    """``zkp.register``: the first ownership record of a work."""

    type_name: ClassVar[str] = "zkp.register"
    permitted_roles: ClassVar[frozenset[Role]] = _SENDERS

    def check_payload(self, payload: dict[str, Any]) -> None:
        only_fields(payload, {"work", "owner", "pop"})
        require(payload, "work", bytes, size=32)
        require(payload, "owner", bytes, size=33)
        require(payload, "pop", bytes, size=64)

    def authorize(self, ctx: TxContext, payload: dict[str, Any], state: Overlay) -> None:
        return None

    def apply(self, state: Overlay, ctx: TxContext, payload: dict[str, Any]) -> dict[str, Any]:
        work = payload["work"]
        if state.get(OWN + work) is not None:
            raise ValidationError("work is already registered; transfer it instead")
        try:
            owner = Point.decode(payload["owner"])
            verify_key_possession(owner, payload["pop"], ctx.chain_id, work)
        except ZkpError as exc:
            raise _reject(exc, "owner key refused") from None
        state.set(OWN + work, codec.encode({"owner": payload["owner"], "seq": 0, "tx_id": ctx.tx_id}))
        return {"status": "registered", "work": work, "seq": 0}


class TransferContract:
    """``zkp.transfer``: verify a confidential transfer and move the ownership record."""

    type_name: ClassVar[str] = "zkp.transfer"
    permitted_roles: ClassVar[frozenset[Role]] = _SENDERS

    def __init__(self, cache_size: int = 4096) -> None:
        # Proofs already verified for exactly these inputs (a leader's select() and the
        # block's execute() see the same transaction): verification is a pure function of
        # (payload, chain id, record, auditor key), so remembering it stays deterministic.
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._cache_size = cache_size

    def _verify(
        self,
        transfer: Transfer,
        payload: dict[str, Any],
        chain_id: str,
        record: OwnershipRecord,
        auditor: Point,
    ) -> None:
        key = sm3(codec.encode([payload, chain_id, record.seq, record.owner.encode(), auditor.encode()]))
        if key in self._verified:
            self._verified.move_to_end(key)
            return
        try:
            verify_transfer(transfer, chain_id, record, auditor)
        except ZkpError as exc:
            raise _reject(exc, "transfer proof refused") from None
        self._verified[key] = None
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)

    def check_payload(self, payload: dict[str, Any]) -> None:
        try:
            Transfer.from_payload(payload)
        except ZkpError as exc:
            raise _reject(exc, "malformed transfer") from None

    def authorize(self, ctx: TxContext, payload: dict[str, Any], state: Overlay) -> None:
        return None

    def apply(self, state: Overlay, ctx: TxContext, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            transfer = Transfer.from_payload(payload)
        except ZkpError as exc:
            raise _reject(exc, "malformed transfer") from None
        auditor = load_auditor(state)
        if auditor is None:
            raise ValidationError("no auditor key is registered; a regulator must send zkp.auditor first")
        record = load_record(state, transfer.work)
        if record is None:
            raise ValidationError("work is not registered; send zkp.register first")
        null_key = NULL + transfer.nullifier.encode()
        if state.get(null_key) is not None:
            raise ValidationError("double transfer: this ownership record's nullifier is already spent")
        self._verify(transfer, payload, ctx.chain_id, record, auditor)
        seq = record.seq + 1
        state.set(null_key, ctx.tx_id)
        state.set(
            OWN + transfer.work, codec.encode({"owner": payload["new_owner"], "seq": seq, "tx_id": ctx.tx_id})
        )
        stored = TransferRecord(record, transfer, ctx.chain_id, ctx.tx_id, ctx.height)
        state.set(XFER + transfer.work + record.seq.to_bytes(8, "big"), stored.to_bytes())
        return {"status": "transferred", "work": transfer.work, "seq": seq}


def register_contracts(registry: ContractRegistry) -> None:
    """Add the three zkp contracts to ``registry``.

    Examples
    --------
    >>> reg = ContractRegistry(); register_contracts(reg)
    >>> [n for n in reg.names() if n.startswith("zkp.")]
    ['zkp.auditor', 'zkp.register', 'zkp.transfer']
    """
    for contract in (AuditorContract(), RegisterContract(), TransferContract()):
        registry.register(contract)


def auditor_payload(key: AuditorKey, chain_id: str, previous: AuditorKey | None = None) -> dict[str, Any]:
    """Payload of a ``zkp.auditor`` transaction for ``key`` (``previous``: the registered key,
    whose holder consents to the replacement)."""
    new = key.public.encode()
    payload = {"key": new, "pop": prove_key_possession(key, chain_id, b"auditor")}
    if previous is not None:
        payload["consent"] = prove_key_possession(previous, chain_id, _ROTATE + new)
    return payload


def register_payload(work: bytes, owner: OwnerKey, chain_id: str) -> dict[str, Any]:
    """Payload of a ``zkp.register`` transaction making ``owner`` the first owner of ``work``."""
    return {"work": work, "owner": owner.public.encode(), "pop": prove_key_possession(owner, chain_id, work)}
