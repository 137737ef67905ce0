"""Confidential copyright transfers: hidden price and royalty shares, proven ownership.

Keys and records
    An *owner key* is ``(x, P = x·B)`` with ``B`` a hash-derived base; a buyer makes a fresh
    one per record and hands the seller ``P`` with a proof of possession bound to the chain
    and the work (:func:`prove_key_possession`). The ledger keeps one *ownership record*
    per work: ``(work, seq, P)``. Its *nullifier* is ``nf = x·Hₙ(work, seq, P)`` — unique to
    the record, computable only by the owner, and unlinkable to ``P`` without ``x``.

Statement (public)
    chain id, work id, the current record ``(seq, P)``, ``nf``, the buyer's key ``P'`` and its
    possession proof, the auditor key ``A``, the price as four limb commitments and handles
    (:mod:`zkp.auditor`) and ``k`` royalty shares, each a party id with four limb
    commitments and handles.

Proof — one transcript, two parts
    1. an aggregated Bulletproofs range proof that every limb is in ``[0, 2¹⁶)`` (so price
       and each share are in ``[0, 2⁶⁴)``);
    2. one AND-composed sigma proof of: ``P = x·B`` and ``nf = x·Hₙ`` (Chaum–Pedersen:
       the seller controls the record and the nullifier is the right one); for every limb
       ``Cⱼ = lⱼ·g + rⱼ·h`` and ``Dⱼ = rⱼ·A`` (the auditor's ciphertext matches the
       commitment); and ``Σᵢ Cₛᵢ − C_price = δ·h`` (the shares sum to the price: both sides
       are < 2⁶⁸ ≪ n, so the sum holds over the integers).

Examples
--------
>>> from zkp.auditor import AuditorKey
>>> auditor = AuditorKey.generate(); seller = OwnerKey.generate(); buyer = OwnerKey.generate()
>>> work = b"w" * 32; record = OwnershipRecord(work, 0, seller.public)
>>> pop = prove_key_possession(buyer, "demo", work)
>>> shares = [(b"a", 60), (b"b", 40)]
>>> t = prove_transfer("demo", record, seller, buyer.public, pop, auditor.public, 100, shares)
>>> verify_transfer(t, "demo", record, auditor.public)
>>> audit(t, auditor).price
100
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

from zkp.auditor import LIMB_BITS, LIMBS, AuditorKey, EncryptedAmount, combine_limbs, encrypt_amount
from zkp.errors import EncodingError, ParameterError, ProofError
from zkp.group import (
    ORDER,
    Point,
    ScalarSource,
    SecretKey,
    hash_to_point,
    random_scalar,
)
from zkp.pedersen import pedersen_gens
from zkp.rangeproof import RangeProof, prove_range, verify_range
from zkp.sigma import Equation, Relation, SigmaProof, prove, schnorr, verify
from zkp.transcript import Transcript

#: Payload format version.
PAYLOAD_VERSION = 1
#: Most royalty shares in one transfer (4·(k+1) limbs of 16 bits ≤ 1024 proven bits).
MAX_SHARES = 15
MAX_PARTY = 64
WORK_BYTES = 32
_LABEL = b"rongxin/zkp/transfer"


@cache
def owner_base() -> Point:
    """``B``, the base of owner keys."""
    return hash_to_point(_LABEL, b"owner-base")


def nullifier_base(work: bytes, seq: int, owner: Point) -> Point:
    """``Hₙ(work, seq, P)``: the record-specific base of its nullifier."""
    return hash_to_point(_LABEL + b"/nullifier", work + seq.to_bytes(8, "big") + owner.encode())


class OwnerKey(SecretKey):
    """An owner's secret ``x`` and public key ``P = x·B`` (make a fresh one per record)."""

    kind: ClassVar[bytes] = b"owner"

    @classmethod
    def base(cls) -> Point:
        """``B``."""
        return owner_base()


@dataclass(frozen=True)
class OwnershipRecord:
    """The ledger's current record of a work: ``(work, seq, owner key)``."""

    work: bytes
    seq: int
    owner: Point

    def nullifier_base(self) -> Point:
        """This record's nullifier base."""
        return nullifier_base(self.work, self.seq, self.owner)


def _pop_transcript(kind: bytes, chain_id: str, context: bytes, key: Point) -> Transcript:
    t = Transcript(_LABEL + b"/pop/" + kind)
    t.append_message(b"chain", chain_id.encode())
    t.append_message(b"context", context)
    t.append_point(b"key", key)
    return t


def prove_key_possession(
    key: SecretKey, chain_id: str, context: bytes, rng: ScalarSource = random_scalar
) -> bytes:
    """A Schnorr proof (64 bytes) that the holder of ``key`` knows its secret, bound to
    ``chain_id``, the key's kind and ``context`` (the work id for an owner key,
    ``b"auditor"`` for the auditor).
    """
    transcript = _pop_transcript(key.kind, chain_id, context, key.public)
    return prove(schnorr(key.public, key.base()), {"x": key.secret}, transcript, rng).encode()


def verify_key_possession(
    public: Point, proof: bytes, chain_id: str, context: bytes, *, kind: type[SecretKey] = OwnerKey
) -> None:
    """Raise :class:`ProofError` (or :class:`EncodingError`) unless ``proof`` is a possession proof."""
    transcript = _pop_transcript(kind.kind, chain_id, context, public)
    verify(schnorr(public, kind.base()), SigmaProof.decode(proof, 1), transcript)


@dataclass(frozen=True)
class Share:
    """A royalty share: the party's id and its encrypted amount."""

    party: bytes
    amount: EncryptedAmount


@dataclass(frozen=True)
class Transfer:
    """A confidential transfer: the public statement and its proofs (see the module docstring)."""

    work: bytes
    nullifier: Point
    new_owner: Point
    new_owner_pop: bytes
    auditor: Point
    price: EncryptedAmount
    shares: tuple[Share, ...]
    range_proof: bytes
    proof: bytes

    def amounts(self) -> list[EncryptedAmount]:
        """Price first, then each share."""
        return [self.price, *(s.amount for s in self.shares)]

    def to_payload(self) -> dict[str, Any]:
        """The transaction payload (CBOR-encodable; no secrets)."""

        def amount(e: EncryptedAmount) -> dict[str, Any]:
            return {"c": [p.encode() for p in e.commitments], "d": [p.encode() for p in e.handles]}

        return {
            "v": PAYLOAD_VERSION,
            "work": self.work,
            "nullifier": self.nullifier.encode(),
            "new_owner": self.new_owner.encode(),
            "new_owner_pop": self.new_owner_pop,
            "auditor": self.auditor.encode(),
            "price": amount(self.price),
            "shares": [{"party": s.party, **amount(s.amount)} for s in self.shares],
            "range_proof": self.range_proof,
            "proof": self.proof,
        }

    @classmethod
    def from_payload(cls, payload: Any) -> Transfer:
        """Parse and validate a payload; :class:`EncodingError` says what is wrong."""
        fields = {"v", "work", "nullifier", "new_owner", "new_owner_pop", "auditor", "price", "shares"}
        fields |= {"range_proof", "proof"}
        _exact_fields(payload, fields, "transfer payload")
        if payload["v"] != PAYLOAD_VERSION or isinstance(payload["v"], bool):
            raise EncodingError(f"transfer payload version must be {PAYLOAD_VERSION}")
        work = _bytes(payload, "work", WORK_BYTES)
        shares_raw = payload["shares"]
        if not isinstance(shares_raw, list) or not 1 <= len(shares_raw) <= MAX_SHARES:
            raise EncodingError(f"a transfer has 1..{MAX_SHARES} royalty shares")
        shares = []
        for raw in shares_raw:
            _exact_fields(raw, {"party", "c", "d"}, "share")
            party = raw["party"]
            if not isinstance(party, bytes) or not 0 < len(party) <= MAX_PARTY:
                raise EncodingError(f"share party must be 1..{MAX_PARTY} bytes")
            shares.append(Share(party, _amount(raw)))
        if len({s.party for s in shares}) != len(shares):
            raise EncodingError("each royalty party may appear once")
        _exact_fields(payload["price"], {"c", "d"}, "price")
        for name in ("range_proof", "proof"):
            _bytes(payload, name)
        return cls(
            work,
            Point.decode(_bytes(payload, "nullifier")),
            Point.decode(_bytes(payload, "new_owner")),
            _bytes(payload, "new_owner_pop"),
            Point.decode(_bytes(payload, "auditor")),
            _amount(payload["price"]),
            tuple(shares),
            payload["range_proof"],
            payload["proof"],
        )


def _exact_fields(doc: Any, allowed: set[str], what: str) -> None:
    if not isinstance(doc, dict) or set(doc) != allowed:
        have = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise EncodingError(f"{what} must have exactly the fields {sorted(allowed)}, got {have}")


def _bytes(doc: dict[str, Any], name: str, size: int | None = None) -> bytes:
    value = doc[name]
    if not isinstance(value, bytes) or (size is not None and len(value) != size):
        raise EncodingError(f"field {name!r} must be {size if size else 'some'} bytes")
    return value


def _amount(doc: dict[str, Any]) -> EncryptedAmount:
    lists = []
    for name in ("c", "d"):
        items = doc[name]
        if not isinstance(items, list) or len(items) != LIMBS or not all(isinstance(i, bytes) for i in items):
            raise EncodingError(f"encrypted amount field {name!r} must be {LIMBS} points")
        lists.append(tuple(Point.decode(i) for i in items))
    return EncryptedAmount(lists[0], lists[1])


def _bind(t: Transcript, chain_id: str, record: OwnershipRecord, transfer: Transfer) -> None:
    t.append_message(b"chain", chain_id.encode())
    t.append_message(b"work", record.work)
    t.append_u64(b"seq", record.seq)
    t.append_point(b"owner", record.owner)
    t.append_point(b"nullifier", transfer.nullifier)
    t.append_point(b"new_owner", transfer.new_owner)
    t.append_message(b"new_owner_pop", transfer.new_owner_pop)
    t.append_point(b"auditor", transfer.auditor)
    t.append_u64(b"shares", len(transfer.shares))
    for share in transfer.shares:
        t.append_message(b"party", share.party)
    for amount in transfer.amounts():
        t.append_points(b"amount.c", list(amount.commitments))
        t.append_points(b"amount.d", list(amount.handles))


def _relation(record: OwnershipRecord, transfer: Transfer) -> Relation:
    ped = pedersen_gens()
    eqs = [
        Equation(record.owner, (("x", owner_base()),)),
        Equation(transfer.nullifier, (("x", record.nullifier_base()),)),
    ]
    for i, amount in enumerate(transfer.amounts()):
        for j, (c, d) in enumerate(zip(amount.commitments, amount.handles, strict=True)):
            eqs.append(Equation(c, ((f"l{i}.{j}", ped.g), (f"r{i}.{j}", ped.h))))
            eqs.append(Equation(d, ((f"r{i}.{j}", transfer.auditor),)))
    balance = combine_limbs(_share_limb_sums(transfer)) - transfer.price.commitment()
    eqs.append(Equation(balance, (("delta", ped.h),)))
    return Relation(tuple(eqs))


def _share_limb_sums(transfer: Transfer) -> list[Point]:
    sums = [Point.identity()] * LIMBS
    for share in transfer.shares:
        sums = [a + b for a, b in zip(sums, share.amount.commitments, strict=True)]
    return sums


def _limb_commitments(transfer: Transfer) -> list[Point]:
    return [c for amount in transfer.amounts() for c in amount.commitments]


def _check_balance(price: int, shares: Sequence[tuple[bytes, int]]) -> None:
    total = sum(amount for _, amount in shares)
    if total != price:
        raise ParameterError(f"royalty shares sum to {total}, not the price {price}")


def prove_transfer(
    chain_id: str,
    record: OwnershipRecord,
    owner: OwnerKey,
    new_owner: Point,
    new_owner_pop: bytes,
    auditor: Point,
    price: int,
    shares: Sequence[tuple[bytes, int]],
    rng: ScalarSource = random_scalar,
) -> Transfer:
    """Make a transfer of ``record`` to ``new_owner`` at ``price`` split into ``shares``.

    Raises
    ------
    ParameterError
        If the seller's key does not own the record, the shares do not sum to the price, an
        amount is outside ``[0, 2⁶⁴)``, or there are 0 or more than ``MAX_SHARES`` shares.
    EncodingError
        If the transfer would not pass the ledger's payload checks (a party id empty, longer
        than ``MAX_PARTY`` bytes or repeated; a work id that is not 32 bytes).
    """
    if owner.public != record.owner:
        raise ParameterError("this owner key does not control the record (its public key differs)")
    if not 1 <= len(shares) <= MAX_SHARES:
        raise ParameterError(f"a transfer has 1..{MAX_SHARES} royalty shares, got {len(shares)}")
    _check_balance(price, shares)
    enc_price = encrypt_amount(price, auditor, rng)
    enc_shares = tuple(Share(party, encrypt_amount(amount, auditor, rng)) for party, amount in shares)
    nullifier = record.nullifier_base() * owner.secret
    draft = Transfer(
        record.work, nullifier, new_owner, new_owner_pop, auditor, enc_price, enc_shares, b"", b""
    )
    Transfer.from_payload(
        draft.to_payload() | {"range_proof": b"", "proof": b""}
    )  # same checks as the ledger
    transcript = Transcript(_LABEL)
    _bind(transcript, chain_id, record, draft)
    amounts = draft.amounts()
    limbs = [v for a in amounts for v in a.limbs]
    blinds = [r for a in amounts for r in a.blindings]
    range_proof, _ = prove_range(limbs, blinds, LIMB_BITS, transcript, rng)
    witness = {"x": owner.secret}
    for i, amount in enumerate(amounts):
        for j in range(LIMBS):
            witness[f"l{i}.{j}"] = amount.limbs[j]
            witness[f"r{i}.{j}"] = amount.blindings[j]
    witness["delta"] = (sum(s.amount.blinding() for s in enc_shares) - enc_price.blinding()) % ORDER
    sigma = prove(_relation(record, draft), witness, transcript, rng)
    return Transfer(
        record.work,
        nullifier,
        new_owner,
        new_owner_pop,
        auditor,
        enc_price,
        enc_shares,
        range_proof.encode(),
        sigma.encode(),
    )


def verify_transfer(transfer: Transfer, chain_id: str, record: OwnershipRecord, auditor: Point) -> None:
    """Check every part of ``transfer`` against the ledger's ``record`` and ``auditor`` key.

    Deterministic; raises :class:`ProofError` or :class:`EncodingError` with the reason.
    """
    if transfer.work != record.work:
        raise ProofError("transfer names another work than the record")
    if transfer.auditor != auditor:
        raise ProofError("amounts are encrypted to a key that is not the registered auditor key")
    if transfer.new_owner == record.owner:
        raise ProofError("the new owner key must differ from the current one (use a fresh key)")
    try:
        verify_key_possession(transfer.new_owner, transfer.new_owner_pop, chain_id, record.work)
    except ProofError:
        raise ProofError(
            "the new owner's proof of key possession does not verify for this chain and work"
        ) from None
    transcript = Transcript(_LABEL)
    _bind(transcript, chain_id, record, transfer)
    limbs = _limb_commitments(transfer)
    verify_range(limbs, LIMB_BITS, RangeProof.decode(transfer.range_proof, LIMB_BITS, len(limbs)), transcript)
    relation = _relation(record, transfer)
    try:
        verify(relation, SigmaProof.decode(transfer.proof, len(relation.witnesses())), transcript)
    except ProofError:
        raise ProofError(
            "ownership, nullifier, auditor-encryption or balance proof does not verify"
        ) from None


@dataclass(frozen=True)
class AuditReport:
    """What the auditor reads from a transfer."""

    price: int
    shares: tuple[tuple[bytes, int], ...]


def audit(transfer: Transfer, key: AuditorKey) -> AuditReport:
    """Decrypt price and shares and check that they balance and match the commitments.

    Raises
    ------
    DecryptionError
        If a limb does not decrypt under ``key`` (wrong key, or not made for it); a limb that
        decrypts opens its commitment by construction (``C − a⁻¹·D = l·g``).
    ProofError
        If the transfer is for another auditor key or the decrypted amounts do not balance.
    """
    if transfer.auditor != key.public:
        raise ProofError("this transfer is encrypted to another auditor key")
    amounts = [key.decrypt(enc.commitments, enc.handles) for enc in transfer.amounts()]
    price, rest = amounts[0], amounts[1:]
    if sum(rest) != price:
        raise ProofError(f"decrypted shares sum to {sum(rest)}, not the price {price}")
    return AuditReport(price, tuple((s.party, v) for s, v in zip(transfer.shares, rest, strict=True)))
