"""The contract interface: how a package adds a transaction type to the ledger.

A contract declares

* ``type_name`` — the transaction ``type`` it handles;
* ``check_payload(payload)`` — the payload schema (raise :class:`ValidationError`);
* ``permitted_roles`` — roles allowed to send it (the permission rule); contracts may
  refine it in ``authorize(ctx, payload)``;
* ``apply(state, ctx, payload) -> dict`` — the deterministic state transition. It may read
  and write only through ``state`` and use only ``ctx`` and ``payload``: no clock, no
  randomness, no I/O — every node must compute the same result.

Membership and anchoring are contracts like any other; the confidential-transfer
contract of ``zkp`` registers itself the same way when ``rongxin`` starts a node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from chain.state import Overlay
from chain.types import Certificate, ChainParams, Role, ValidationError


@dataclass(frozen=True)
class TxContext:
    """What a contract may know about the transaction being applied."""

    sender: Certificate
    tx_id: bytes
    height: int
    block_timestamp_ms: int
    params: ChainParams
    chain_id: str


class Contract(Protocol):
    """A deterministic transaction handler.

    A contract may also set the class attribute ``apply_never_refuses = True`` when its
    ``apply`` never raises for a transaction whose ``check_payload`` and ``authorize``
    passed: admission to the mempool then stops after ``authorize`` instead of applying the
    transaction once more (:meth:`chain.executor.Executor.apply_one`, ``check_only``).

    It may also define ``reads(payload) -> list[bytes]``: state keys its ``apply`` will
    read, which the executor has the state read ahead for a whole block at once. It must
    not raise, whatever the payload (it runs before ``check_payload``); the keys are only a
    hint, so leaving one out or naming an extra one changes no result.
    """

    type_name: ClassVar[str]
    permitted_roles: ClassVar[frozenset[Role]]

    def check_payload(self, payload: dict[str, Any]) -> None: ...

    def authorize(self, ctx: TxContext, payload: dict[str, Any], state: Overlay) -> None: ...

    def apply(self, state: Overlay, ctx: TxContext, payload: dict[str, Any]) -> dict[str, Any]: ...


class ContractRegistry:
    """Maps transaction types to contracts.

    Examples
    --------
    >>> from chain.contracts.anchor import AnchorContract
    >>> reg = ContractRegistry(); reg.register(AnchorContract())
    >>> reg.get("anchor").type_name
    'anchor'
    """

    def __init__(self) -> None:
        self._contracts: dict[str, Contract] = {}

    def register(self, contract: Contract) -> None:
        """Add a contract; a type name can be registered once."""
        name = contract.type_name
        if not name or not name.replace("_", "").replace(".", "").isalnum():
            raise ValidationError(f"invalid contract type name {name!r}")
        if name in self._contracts:
            raise ValidationError(f"a contract for {name!r} is already registered")
        self._contracts[name] = contract

    def get(self, type_name: str) -> Contract:
        """The contract for ``type_name``; :class:`ValidationError` if none."""
        try:
            return self._contracts[type_name]
        except KeyError:
            raise ValidationError(f"no contract handles transactions of type {type_name!r}") from None

    def names(self) -> list[str]:
        """Registered type names, sorted."""
        return sorted(self._contracts)


def require(payload: dict[str, Any], name: str, kind: type, *, size: int | None = None) -> Any:
    """Payload helper: ``payload[name]`` of type ``kind`` (and byte length ``size``)."""
    value = payload.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValidationError(f"payload field {name!r} is missing or not {kind.__name__}")
    if size is not None and isinstance(value, (bytes, str, list)) and len(value) != size:
        raise ValidationError(f"payload field {name!r} must be {size} bytes")
    return value


def only_fields(payload: dict[str, Any], allowed: set[str]) -> None:
    """Refuse unknown payload fields (so two encodings cannot mean the same thing)."""
    extra = set(payload) - allowed
    if extra:
        raise ValidationError(f"unknown payload fields: {sorted(extra)}")
