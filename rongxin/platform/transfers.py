"""The recorded confidential transfers of a work, read through the member's node.

Each record is read with proven state reads (:class:`rongxin.contracts.LedgerStateReader`
over the platform's node client) and its proofs are checked again against the registered
auditor key. What the platform shows is what the ledger holds in clear: sequence, height,
transaction, the new owner's key, the royalty parties. The price and the share amounts
are encrypted to the auditor key; only the auditor opens them, with
``rongxin transfer audit --key KEY --client PROFILE --work HEX`` (the platform never holds
that key).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rongxin.contracts import LedgerStateReader
from zkp.contract import load_auditor, transfer_records
from zkp.errors import ZkpError
from zkp.transfer import verify_transfer

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
