"""Confidential transfers through the member's node: the recorded transfers of a work,
registering an ownership record, making a transfer, and opening recorded transfers with
the auditor key.

Each record is read with proven state reads (:class:`rongxin.contracts.LedgerStateReader`
over the platform's node client) and its proofs are checked again against the registered
auditor key. What the platform shows is what the ledger holds in clear: sequence, height,
transaction, the new owner's key, the royalty parties. The price and the share amounts
are encrypted to the auditor key; only the auditor opens them (:func:`open_transfers`,
with the key file the auditor brings for that one request, or
``rongxin transfer audit --key KEY --client PROFILE --work HEX``).

:func:`register_ownership` and :func:`make_transfer` build their payloads with
:mod:`zkp.contract` and :mod:`zkp.transfer` (the functions the command line and the demo
use), with this member's ownership keys (:mod:`rongxin.platform.ownerkeys`), and send them
through the member's node client; what they return is read back from the ledger (the
receipt verified against the genesis, the new record by a proven read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain import codec
from chain.client.common import hex_bytes
from chain.errors import ValidationError
from chain.types import Genesis
from rongxin.contracts import LedgerStateReader
from rongxin.platform.config import PlatformError
from rongxin.platform.ownerkeys import OwnerKeyStore
from rongxin.platform.transferform import TransferTerms
from zkp.auditor import AuditorKey
from zkp.contract import load_auditor, load_record, register_payload, transfer_records
from zkp.errors import ZkpError
from zkp.group import Point
from zkp.transfer import (
    OwnershipRecord,
    audit,
    prove_key_possession,
    prove_transfer,
    verify_key_possession,
    verify_transfer,
)

MAX_TRANSFERS = 500


@dataclass(frozen=True)
class TransferRow:
    """One recorded transfer as the platform shows it."""

    seq: int
    height: int
    tx_id: str
    new_owner: str
    parties: tuple[str, ...]
    verified: bool
    problem: str


def parse_work(text: str) -> bytes | None:
    """A work id of 64 hex digits as bytes, or ``None``.

    Examples
    --------
    >>> parse_work("ab" * 32) == bytes([0xAB]) * 32, parse_work("xyz"), parse_work("ab")
    (True, None, None)
    """
    text = text.strip().lower()
    if len(text) != 64:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def work_transfers(ledger: Any, work: bytes) -> tuple[list[TransferRow], str]:
    """The transfers of ``work`` (oldest first) and the registered auditor key (hex, or
    ``""`` when none is registered), each transfer's proofs checked again.

    Raises
    ------
    zkp.errors.ZkpError
        A stored record cannot be parsed.
    """
    reader = LedgerStateReader(ledger)
    auditor = load_auditor(reader)
    rows = []
    for i, rec in enumerate(transfer_records(reader, work)):
        if i >= MAX_TRANSFERS:
            break
        problem = ""
        if rec.record.seq != i or rec.transfer.work != work:
            problem = (
                f"stored as transfer {i} of this work but names transfer {rec.record.seq} of another record"
            )
        elif auditor is None:
            problem = "no auditor key is registered"
        else:
            try:
                verify_transfer(rec.transfer, rec.chain_id, rec.record, auditor)
            except ZkpError as exc:
                problem = str(exc)
        rows.append(
            TransferRow(
                seq=rec.record.seq,
                height=rec.height,
                tx_id=rec.tx_id.hex(),
                new_owner=rec.transfer.new_owner.encode().hex(),
                parties=tuple(s.party.decode("utf-8", errors="replace") for s in rec.transfer.shares),
                verified=not problem,
                problem=problem,
            )
        )
    return rows, "" if auditor is None else auditor.encode().hex()


class TransferRefused(PlatformError):
    """A registration, transfer or opening cannot be made as asked (the message says why)."""


@dataclass(frozen=True)
class Sent:
    """A committed ``zkp.register`` or ``zkp.transfer`` as the result page shows it."""

    kind: str
    work: str
    tx_id: str
    height: int
    block_hash: str
    sender: str
    receipt: bytes
    seq: int
    owner: str
    payload_bytes: int


@dataclass(frozen=True)
class Opened:
    """A recorded transfer opened with the auditor key."""

    seq: int
    height: int
    tx_id: str
    price: int
    shares: tuple[tuple[str, int], ...]
    problem: str


def current_record(ledger: Any, work: bytes) -> OwnershipRecord | None:
    """The work's current ownership record, by a proven state read (``None``: not registered)."""
    return load_record(LedgerStateReader(ledger), work)


def _committed(
    ledger: Any, genesis: Genesis, kind: str, work: bytes, answer: dict[str, Any], size: int
) -> Sent:
    """Read back what the ledger committed: the receipt (verified against the genesis) and
    the work's new ownership record (a proven read)."""
    tx_id = hex_bytes(answer.get("tx_id"), "transaction id", 32)
    receipt = ledger.receipt(tx_id)
    info = receipt.verify(genesis)
    record = current_record(ledger, work)
    if record is None:
        raise TransferRefused(
            "the ledger committed the transaction but holds no ownership record of the work"
        )
    return Sent(
        kind=kind,
        work=work.hex(),
        tx_id=tx_id.hex(),
        height=info.height,
        block_hash=info.block_hash.hex(),
        sender=info.sender.subject,
        receipt=receipt.to_bytes(),
        seq=record.seq,
        owner=record.owner.encode().hex(),
        payload_bytes=size,
    )


def register_ownership(ledger: Any, genesis: Genesis, keys: OwnerKeyStore, work: bytes) -> Sent:
    """Send ``zkp.register`` for ``work`` with a fresh ownership key kept in ``keys``.

    Raises
    ------
    TransferRefused
        The work already has an ownership record, or the ledger refused the transaction.
    chain.errors.ChainError
        The node could not be reached or answered something that does not verify.
    """
    existing = current_record(ledger, work)
    if existing is not None:
        mine = keys.get(work, existing.owner) is not None
        raise TransferRefused(
            "this organization already holds the ownership record of this work"
            if mine
            else "the work already has an ownership record held by another key; only its holder transfers it"
        )
    key = keys.new_key(work)  # on disk before the transaction names it
    payload = register_payload(work, key, genesis.chain_id)
    try:
        answer = ledger.send("zkp.register", payload)
    except ValidationError as exc:
        raise TransferRefused(f"the ledger refused the registration: {exc}") from None
    return _committed(ledger, genesis, "register", work, answer, len(codec.encode(payload)))


def receive_key(keys: OwnerKeyStore, chain_id: str, work: bytes) -> tuple[str, str]:
    """A fresh ownership key for receiving ``work``: its public key and proof of possession
    (hex), to hand to the seller. The secret stays in ``keys``."""
    key = keys.new_key(work)
    return key.public.encode().hex(), prove_key_possession(key, chain_id, work).hex()


def make_transfer(
    ledger: Any,
    genesis: Genesis,
    keys: OwnerKeyStore,
    work: bytes,
    record: OwnershipRecord,
    terms: TransferTerms,
) -> Sent:
    """Prove and send a confidential transfer of ``record`` (the record the form was made
    for, already checked to be current) to the buyer of ``terms``.

    Raises
    ------
    TransferRefused
        This member does not hold the record's key, no auditor key is registered, the
        buyer's key or proof is wrong, or the ledger refused the transfer.
    chain.errors.ChainError
        The node could not be reached or answered something that does not verify.
    """
    owner = keys.get(work, record.owner)
    if owner is None:
        raise TransferRefused(
            "this organization does not hold the current ownership record of this work "
            "(it belongs to another key); only its holder can transfer it"
        )
    auditor = load_auditor(LedgerStateReader(ledger))
    if auditor is None:
        raise TransferRefused("no auditor key is registered on the ledger; the regulator registers one first")
    try:
        buyer = Point.decode(terms.buyer_key)
    except ZkpError as exc:
        raise TransferRefused(f"the buyer's ownership key is not a valid key: {exc}") from None
    if buyer == record.owner:
        raise TransferRefused("the buyer's key is the current owner key; the buyer makes a fresh key")
    try:
        verify_key_possession(buyer, terms.buyer_pop, genesis.chain_id, work)
    except ZkpError:
        raise TransferRefused(
            "the buyer's proof of possession does not verify for this consortium and work; "
            "ask the buyer for the key and proof made for this work"
        ) from None
    try:
        transfer = prove_transfer(
            genesis.chain_id, record, owner, buyer, terms.buyer_pop, auditor, terms.price, list(terms.shares)
        )
    except ZkpError as exc:
        raise TransferRefused(f"the transfer cannot be proven: {exc}") from None
    payload = transfer.to_payload()
    try:
        answer = ledger.send("zkp.transfer", payload)
    except ValidationError as exc:
        raise TransferRefused(f"the ledger refused the transfer: {exc}") from None
    sent = _committed(ledger, genesis, "transfer", work, answer, len(codec.encode(payload)))
    if sent.seq != record.seq + 1 or sent.owner != terms.buyer_key.hex():
        raise TransferRefused(
            "the ledger committed the transfer but the ownership record does not name the buyer"
        )
    return sent


def open_transfers(ledger: Any, work: bytes, auditor: AuditorKey) -> list[Opened]:
    """Every recorded transfer of ``work`` verified again and opened with ``auditor``:
    price and shares, or why a record does not open."""
    out = []
    for i, rec in enumerate(transfer_records(LedgerStateReader(ledger), work)):
        if i >= MAX_TRANSFERS:
            break
        try:
            # against the key it names (the ledger checked that one was registered then)
            verify_transfer(rec.transfer, rec.chain_id, rec.record, rec.transfer.auditor)
            report = audit(rec.transfer, auditor)
            price, shares, problem = report.price, report.shares, ""
        except ZkpError as exc:
            price, shares, problem = 0, (), str(exc)
        out.append(
            Opened(
                seq=rec.record.seq,
                height=rec.height,
                tx_id=rec.tx_id.hex(),
                price=price,
                shares=tuple((p.decode("utf-8", errors="replace"), v) for p, v in shares),
                problem=problem,
            )
        )
    return out
