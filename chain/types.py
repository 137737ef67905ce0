"""Ledger data model: roles, certificates, transactions and the genesis document.

Every object has a canonical byte form (:mod:`chain.codec`) from which its identifier
(SM3) and its signature are computed, so a value has exactly one encoding and one id.

* :class:`Certificate` — issued by the consortium's supervisory root key: binds a subject
  (organization, user or node) and its roles to an SM2 public key.
* :class:`Transaction` — ``type`` names a contract, ``payload`` is that contract's data; the
  sender is identified by certificate id, replay is prevented by a per-sender ``nonce``.
* :class:`Genesis` — consortium name, chain id, supervisory root public key, the initial
  certificates (nodes and members) and the chain parameters.

Size limits
-----------
Bytes from outside are checked against one limit per type *before* anything is decoded:

* :data:`MAX_TX_BYTES` (64 KiB) — a transaction (what clients submit and blocks carry);
* :data:`MAX_GENESIS_BYTES` (4 MiB) — the genesis document (a certificate is about 300
  bytes, so this leaves room for over ten thousand members).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from chain import codec
from chain.crypto import InvalidSignature, PrivateKey, PublicKey, verify_many
from chain.crypto.errors import CryptoError
from chain.crypto.sm3 import sm3
from chain.errors import ValidationError as ValidationError  # re-exported under its historical path

MAX_TX_BYTES = 64 * 1024
MAX_BLOCK_BYTES = 8 * 1024 * 1024
"""Upper bound of ``ChainParams.max_block_bytes``: a proposal (one block's transactions
plus its header and certificates) stays well under the 16 MiB consensus message limit."""
"""Largest encoded transaction accepted (checked before decoding)."""
MAX_GENESIS_BYTES = 4 * 1024 * 1024
"""Largest encoded genesis document accepted (checked before decoding)."""


_KEYS: dict[bytes, PublicKey] = {}
_KEY_CACHE = 10_000


class Role(enum.StrEnum):
    """What a certificate holder may do (a certificate may carry several roles)."""

    SUPERVISOR = "supervisor"
    CONSENSUS_NODE = "consensus_node"
    OBSERVER_NODE = "observer_node"
    MEDIA_CENTER = "media_center"
    COPYRIGHT_CENTER = "copyright_center"
    LEGAL_CENTER = "legal_center"
    REGULATOR = "regulator"
    AUDITOR = "auditor"


NODE_ROLES = frozenset({Role.CONSENSUS_NODE, Role.OBSERVER_NODE})


def _roles(values: Any) -> tuple[Role, ...]:
    try:
        roles = tuple(sorted({Role(v) for v in values}))
    except (ValueError, TypeError):
        raise ValidationError(f"unknown role in {values!r}; roles are {[r.value for r in Role]}") from None
    if not roles:
        raise ValidationError("a certificate needs at least one role")
    return roles


def _exact_fields(doc: dict[str, Any], names: set[str], what: str) -> None:
    if set(doc) != names:
        extra = sorted(set(doc) - names)
        missing = sorted(names - set(doc))
        raise ValidationError(f"{what} fields differ: unexpected {extra}, missing {missing}")


def _field(doc: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = doc.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ValidationError(f"field {name!r} is missing or not {kind}")
    return value


def _canonical_key(public_key: bytes) -> None:
    """Refuse a public key that is not in the 65-byte uncompressed form ``04 || X || Y``.

    One key, one encoding: a compressed form would give the same key a second certificate
    id (and a node would not recognize itself as the validator its certificate names).
    This is the cheap structural check every decode runs; :meth:`Certificate.verify` also
    checks that the point is on the curve.
    """
    if len(public_key) != 65 or public_key[0] != 0x04:
        raise ValidationError("certificate public key must be the uncompressed point 04 || X || Y (65 bytes)")


@dataclass(frozen=True)
class Certificate:
    """A member or node certificate signed by the supervisory root key.

    Examples
    --------
    >>> root = PrivateKey.generate(); member = PrivateKey.generate()
    >>> cert = Certificate.issue(root, "Example County Media Center", "org-1",
    ...                          [Role.MEDIA_CENTER], member.public_key, not_before_ms=0)
    >>> cert.verify(root.public_key)
    """

    subject: str
    organization: str
    roles: tuple[Role, ...]
    public_key: bytes
    not_before_ms: int
    not_after_ms: int | None = None
    signature: bytes = b""

    def body(self) -> dict[str, Any]:
        """The signed fields."""
        return {
            "subject": self.subject,
            "organization": self.organization,
            "roles": [r.value for r in self.roles],
            "public_key": self.public_key,
            "not_before_ms": self.not_before_ms,
            "not_after_ms": self.not_after_ms,
        }

    @cached_property
    def cert_id(self) -> bytes:
        """SM3 of the signed fields: the id transactions use to name their sender."""
        return sm3(codec.encode(self.body()))

    @classmethod
    def issue(
        cls,
        issuer: PrivateKey,
        subject: str,
        organization: str,
        roles: list[Role] | tuple[Role, ...],
        public_key: PublicKey,
        not_before_ms: int,
        not_after_ms: int | None = None,
    ) -> Certificate:
        """Create and sign a certificate with the supervisory root key ``issuer``."""
        unsigned = cls(
            subject, organization, _roles(roles), public_key.to_bytes(), not_before_ms, not_after_ms
        )
        return replace(unsigned, signature=issuer.sign(codec.encode(unsigned.body())))

    def verify(self, root: PublicKey) -> None:
        """Check the root's signature; raises :class:`ValidationError`."""
        try:
            root.verify(codec.encode(self.body()), self.signature)
            PublicKey.from_bytes(self.public_key)  # on the curve
        except (InvalidSignature, CryptoError) as exc:
            raise ValidationError(f"certificate for {self.subject!r} is not valid: {exc}") from None

    def valid_at(self, timestamp_ms: int) -> bool:
        """Whether ``timestamp_ms`` lies in the validity window ``[not_before, not_after]``."""
        return self.not_before_ms <= timestamp_ms and (
            self.not_after_ms is None or timestamp_ms <= self.not_after_ms
        )

    def key(self) -> PublicKey:
        """The certified public key (parsed once per process while the cache holds it:
        every transaction verification asks for its sender's)."""
        key = _KEYS.get(self.public_key)
        if key is None:
            key = PublicKey.from_bytes(self.public_key)
            if len(_KEYS) >= _KEY_CACHE:
                _KEYS.clear()
            _KEYS[self.public_key] = key
        return key

    def to_dict(self) -> dict[str, Any]:
        """Canonical-encodable form (signed fields and signature)."""
        return {**self.body(), "signature": self.signature}

    @classmethod
    def from_dict(cls, doc: Any) -> Certificate:
        """Inverse of :meth:`to_dict`, validating types."""
        if not isinstance(doc, dict):
            raise ValidationError("a certificate is a map")
        _exact_fields(
            doc,
            {"subject", "organization", "roles", "public_key", "not_before_ms", "not_after_ms", "signature"},
            "certificate",
        )
        nab = doc.get("not_after_ms")
        if nab is not None and (not isinstance(nab, int) or isinstance(nab, bool)):
            raise ValidationError("field 'not_after_ms' must be an integer or null")
        _canonical_key(_field(doc, "public_key", bytes))
        listed = _field(doc, "roles", list)
        roles = _roles(listed)
        if listed != [r.value for r in roles]:
            raise ValidationError("certificate roles must be listed once each, in sorted order")
        return cls(
            subject=_field(doc, "subject", str),
            organization=_field(doc, "organization", str),
            roles=roles,
            public_key=_field(doc, "public_key", bytes),
            not_before_ms=_field(doc, "not_before_ms", int),
            not_after_ms=nab,
            signature=_field(doc, "signature", bytes),
        )


@dataclass(frozen=True)
class Transaction:
    """A signed request to a contract.

    Examples
    --------
    >>> key = PrivateKey.generate()
    >>> payload = {"digest": b"\\x02" * 32}
    >>> tx = Transaction.create(key, b"\\x01" * 32, "anchor", payload, nonce=1, timestamp_ms=0)
    >>> tx.verify_signature(key.public_key)
    >>> Transaction.from_bytes(tx.to_bytes()) == tx
    True
    """

    type: str
    payload: dict[str, Any]
    sender: bytes
    nonce: int
    timestamp_ms: int
    signature: bytes = b""

    def body(self) -> dict[str, Any]:
        """The signed fields."""
        return {
            "type": self.type,
            "payload": self.payload,
            "sender": self.sender,
            "nonce": self.nonce,
            "timestamp_ms": self.timestamp_ms,
        }

    def signing_bytes(self, chain_id: str = "") -> bytes:
        """Bytes that are signed: the body, bound to the chain id against cross-chain replay.

        For a decoded transaction they are cut from its canonical bytes (the body is the
        transaction's map without its ``signature`` entry) instead of encoding it again;
        the result is the same bytes.
        """
        raw = self.__dict__.get("_raw")
        if raw is not None:
            body = _body_of(raw, self.signature, self.timestamp_ms)
            if body is not None:
                return _SIGNED_HEAD + body + _chain_id_entry(chain_id)
        return codec.encode({"chain_id": chain_id, "tx": self.body()})

    @classmethod
    def create(
        cls,
        key: PrivateKey,
        sender: bytes,
        type: str,
        payload: dict[str, Any],
        nonce: int,
        timestamp_ms: int,
        chain_id: str = "",
    ) -> Transaction:
        """Build and sign a transaction."""
        tx = cls(type, payload, sender, nonce, timestamp_ms)
        return replace(tx, signature=key.sign(tx.signing_bytes(chain_id)))

    def verify_signature(self, key: PublicKey, chain_id: str = "") -> None:
        """Check the sender's signature; raises :class:`ValidationError`."""
        try:
            key.verify(self.signing_bytes(chain_id), self.signature)
        except InvalidSignature as exc:
            raise ValidationError(_invalid_signature(exc)) from None

    @staticmethod
    def verify_signatures(
        jobs: Sequence[tuple[Transaction, PublicKey]], chain_id: str = ""
    ) -> list[str | None]:
        """Check many transactions' signatures at once (:func:`chain.crypto.verify_many`:
        one call into OpenSSL for all of them); for each, ``None`` or the reason
        :meth:`verify_signature` would give."""
        found = verify_many([(key, tx.signing_bytes(chain_id), tx.signature) for tx, key in jobs])
        return [None if exc is None else _reason(exc) for exc in found]

    def to_dict(self) -> dict[str, Any]:
        """Canonical-encodable form."""
        return {**self.body(), "signature": self.signature}

    def to_bytes(self) -> bytes:
        """Canonical bytes (what goes into blocks and Merkle leaves)."""
        raw = self.__dict__.get("_raw")
        return raw if raw is not None else codec.encode(self.to_dict())

    @cached_property
    def tx_id(self) -> bytes:
        """SM3 of the canonical bytes (computed once per object)."""
        return sm3(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> Transaction:
        """Decode canonical bytes, refusing oversized or malformed input."""
        if not isinstance(data, (bytes, bytearray)):
            raise ValidationError(f"a transaction is bytes, not {type(data).__name__}")
        if len(data) > MAX_TX_BYTES:
            raise ValidationError(f"transaction of {len(data)} bytes exceeds {MAX_TX_BYTES}")
        try:
            doc = codec.decode(data, max_size=MAX_TX_BYTES)
        except codec.CodecError as exc:
            raise ValidationError(f"transaction is not canonically encoded: {exc}") from None
        if type(doc) is not dict or doc.keys() != _TX_FIELDS:
            raise ValidationError("transaction has missing or unknown fields")
        fields = (
            _field(doc, "type", str),
            _field(doc, "payload", dict),
            _field(doc, "sender", bytes),
            _field(doc, "nonce", int),
            _field(doc, "timestamp_ms", int),
            _field(doc, "signature", bytes),
        )
        # codec.decode accepted only the canonical encoding, so ``data`` is ``to_bytes()``:
        # its hash is the id, and the signed bytes are cut from it, without encoding again.
        # The fields are checked above, so the instance is filled directly (a frozen
        # dataclass's __init__ sets each field through object.__setattr__, a third of the
        # cost of decoding a transaction).
        raw = bytes(data)
        tx = object.__new__(cls)
        tx.__dict__.update(zip(_TX_ORDER, fields, strict=True), _raw=raw, tx_id=sm3(raw))
        return tx


_TX_ORDER = ("type", "payload", "sender", "nonce", "timestamp_ms", "signature")
"""The fields of :class:`Transaction`, in their order."""
_TX_FIELDS = frozenset(_TX_ORDER)

_SIGNED_HEAD = b"\xa2" + codec.encode("tx")
"""Start of the signed map ``{"tx": body, "chain_id": …}`` (canonical key order: ``tx`` first)."""
_SIGNATURE_KEY = codec.encode("signature")
_TIMESTAMP_KEY = codec.encode("timestamp_ms")


def _invalid_signature(exc: InvalidSignature) -> str:
    return f"transaction signature is not valid: {exc}"


def _reason(exc: CryptoError) -> str:
    """Why a signature check failed, as :meth:`Transaction.verify_signature` says it: a
    mismatch in the transaction's words, a malformed signature in the crypto layer's."""
    return _invalid_signature(exc) if isinstance(exc, InvalidSignature) else str(exc)


def _chain_id_entry(chain_id: str) -> bytes:
    entry = _CHAIN_ID_ENTRIES.get(chain_id)
    if entry is None:
        entry = codec.encode("chain_id") + codec.encode(chain_id)
        if len(_CHAIN_ID_ENTRIES) < 64:
            _CHAIN_ID_ENTRIES[chain_id] = entry
    return entry


_CHAIN_ID_ENTRIES: dict[str, bytes] = {}


def _body_of(raw: bytes, signature: bytes, timestamp_ms: int) -> bytes | None:
    """The canonical bytes of a transaction's body (its map without ``signature``), cut from
    the transaction's canonical bytes ``raw``; ``None`` when they do not have the expected
    shape (the caller encodes the body instead).

    In canonical order the six keys are ``type, nonce, sender, payload, signature,
    timestamp_ms`` (shorter keys first), so the body is the map of five entries with the
    signature entry, second to last, left out.
    """
    if timestamp_ms < 0 or not raw or raw[0] != 0xA6:
        return None
    tail = _TIMESTAMP_KEY + codec.encode_head(0, timestamp_ms)
    sig = _SIGNATURE_KEY + codec.encode_head(2, len(signature)) + signature
    cut = len(raw) - len(tail) - len(sig)
    if cut < 1 or not raw.endswith(tail) or raw[cut : cut + len(sig)] != sig:
        return None
    return b"\xa5" + raw[1:cut] + tail


@dataclass(frozen=True)
class ChainParams:
    """Chain parameters fixed at genesis."""

    block_interval_ms: int = 0
    max_block_txs: int = 1000
    max_block_bytes: int = 4 * 1024 * 1024
    round_timeout_ms: int = 2000
    empty_blocks: bool = False
    membership_by_vote: bool = False
    max_missed_turns: int = 0
    """Consecutive missed leader turns after which a consensus node is excluded (0: never).

    Needs ``empty_blocks``: an honest leader then always proposes (a heartbeat block every
    ``block_interval_ms``), so a skipped round is a leader that failed, not an idle chain.
    """
    min_validators: int = 4
    """No change of the validator set leaves fewer validators than this (a chain that starts
    with fewer keeps at least its genesis count); production consortia run 5 or more."""

    def __post_init__(self) -> None:
        if self.max_missed_turns and not self.empty_blocks:
            raise ValidationError(
                "max_missed_turns needs empty_blocks (heartbeat blocks) to tell idle from absent"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "block_interval_ms": self.block_interval_ms,
            "max_block_txs": self.max_block_txs,
            "max_block_bytes": self.max_block_bytes,
            "round_timeout_ms": self.round_timeout_ms,
            "empty_blocks": self.empty_blocks,
            "membership_by_vote": self.membership_by_vote,
            "max_missed_turns": self.max_missed_turns,
            "min_validators": self.min_validators,
        }

    @classmethod
    def from_dict(cls, doc: Any) -> ChainParams:
        if not isinstance(doc, dict):
            raise ValidationError("params is a map")
        defaults = cls()
        for name, value in doc.items():
            default = getattr(defaults, name, None)
            if default is None:
                raise ValidationError(f"unknown chain parameter {name!r}")
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ValidationError(f"chain parameter {name!r} must be true or false")
            elif not isinstance(value, int) or isinstance(value, bool):
                raise ValidationError(f"chain parameter {name!r} must be an integer")
        try:
            params = cls(**doc)
        except TypeError as exc:
            raise ValidationError(f"bad chain parameters: {exc}") from None
        if params.block_interval_ms < 0 or params.max_block_txs < 1 or params.max_block_bytes < 1024:
            raise ValidationError("chain parameters out of range")
        if params.max_block_bytes > MAX_BLOCK_BYTES:
            raise ValidationError(
                f"max_block_bytes may be at most {MAX_BLOCK_BYTES}: a proposal must fit in one message"
            )
        if params.min_validators < 1:
            raise ValidationError("min_validators must be at least 1 (4 or more in production)")
        if params.max_missed_turns < 0:
            raise ValidationError("max_missed_turns must be 0 (off) or positive")
        if params.round_timeout_ms < 1:
            raise ValidationError("round_timeout_ms must be positive")
        return params


@dataclass(frozen=True)
class Genesis:
    """The consortium's founding document: everyone who verifies anything holds it.

    Examples
    --------
    >>> root = PrivateKey.generate()
    >>> g = Genesis("Demo consortium", "rongxin-demo", root.public_key.to_bytes(), ())
    >>> Genesis.from_bytes(g.to_bytes()) == g
    True
    """

    consortium: str
    chain_id: str
    root_public_key: bytes
    certificates: tuple[Certificate, ...]
    params: ChainParams = field(default_factory=ChainParams)
    timestamp_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "consortium": self.consortium,
            "chain_id": self.chain_id,
            "root_public_key": self.root_public_key,
            "certificates": [c.to_dict() for c in self.certificates],
            "params": self.params.to_dict(),
            "timestamp_ms": self.timestamp_ms,
        }

    def to_bytes(self) -> bytes:
        return codec.encode(self.to_dict())

    @cached_property
    def hash(self) -> bytes:
        """SM3 of the canonical genesis: the root of trust for receipts (computed once per
        object: every field is immutable, and the document carries every certificate)."""
        return sm3(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> Genesis:
        """Decode canonical bytes, refusing more than :data:`MAX_GENESIS_BYTES` or malformed input."""
        if not isinstance(data, (bytes, bytearray)):
            raise ValidationError(f"a genesis document is bytes, not {type(data).__name__}")
        if len(data) > MAX_GENESIS_BYTES:
            raise ValidationError(f"genesis document of {len(data)} bytes exceeds {MAX_GENESIS_BYTES}")
        try:
            doc = codec.decode(data, max_size=MAX_GENESIS_BYTES)
        except codec.CodecError as exc:
            raise ValidationError(f"genesis is not canonically encoded: {exc}") from None
        if not isinstance(doc, dict):
            raise ValidationError("genesis is a map")
        # Exactly the fields to_dict writes, so that one genesis has one encoding.
        _exact_fields(
            doc,
            {"consortium", "chain_id", "root_public_key", "certificates", "params", "timestamp_ms"},
            "genesis",
        )
        if isinstance(doc["params"], dict):
            _exact_fields(doc["params"], set(ChainParams().to_dict()), "chain parameters")
        return cls(
            consortium=_field(doc, "consortium", str),
            chain_id=_field(doc, "chain_id", str),
            root_public_key=_field(doc, "root_public_key", bytes),
            certificates=tuple(Certificate.from_dict(c) for c in _field(doc, "certificates", list)),
            params=ChainParams.from_dict(doc.get("params")),
            timestamp_ms=_field(doc, "timestamp_ms", int),
        )

    def root_key(self) -> PublicKey:
        """The supervisory root public key."""
        return PublicKey.from_bytes(self.root_public_key)

    def validate(self) -> None:
        """Check every certificate against the root and the consensus-node count."""
        root = self.root_key()
        for cert in self.certificates:
            cert.verify(root)
        ids = [c.cert_id for c in self.certificates]
        if len(set(ids)) != len(ids):
            raise ValidationError("genesis lists a certificate twice")

    def validators(self) -> list[bytes]:
        """Certificate ids of the initial voting nodes, sorted."""
        return sorted(c.cert_id for c in self.certificates if Role.CONSENSUS_NODE in c.roles)
