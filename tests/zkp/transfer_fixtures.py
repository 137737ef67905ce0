"""A seller, a buyer, an auditor and one transfer, reused by the zkp tests."""

from __future__ import annotations

from dataclasses import dataclass

from tests.zkp.helpers import seeded
from zkp.auditor import AuditorKey
from zkp.group import ScalarSource, random_scalar
from zkp.transfer import OwnerKey, OwnershipRecord, Transfer, prove_key_possession, prove_transfer

CHAIN = "test-chain"
WORK = bytes(range(32))
SHARES = [(b"author", 600_000), (b"studio", 300_000), (b"county-center", 100_000)]
PRICE = 1_000_000


@dataclass
class Deal:
    auditor: AuditorKey
    seller: OwnerKey
    buyer: OwnerKey
    record: OwnershipRecord
    transfer: Transfer


def make_deal(
    seed: int | None = None,
    price: int = PRICE,
    shares: list[tuple[bytes, int]] | None = None,
    record: OwnershipRecord | None = None,
    seller: OwnerKey | None = None,
    auditor: AuditorKey | None = None,
) -> Deal:
    rng: ScalarSource = seeded(seed) if seed is not None else random_scalar
    auditor = auditor or AuditorKey.generate(rng)
    seller = seller or OwnerKey.generate(rng)
    buyer = OwnerKey.generate(rng)
    record = record or OwnershipRecord(WORK, 0, seller.public)
    pop = prove_key_possession(buyer, CHAIN, record.work, rng)
    transfer = prove_transfer(
        CHAIN, record, seller, buyer.public, pop, auditor.public, price, shares or SHARES, rng
    )
    return Deal(auditor, seller, buyer, record, transfer)
