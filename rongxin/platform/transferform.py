"""The transfer form's fields, checked before any proof is made (pure; no I/O).

A confidential transfer names the buyer's ownership key and its proof of possession (hex,
as the buyer's platform shows them), the price and one to
:data:`zkp.transfer.MAX_SHARES` royalty shares (party and amount). Amounts are whole
numbers in ``[0, 2⁶⁴)`` (the range the proofs cover); the shares must sum to the price.
Every refusal is a :class:`FormError` whose message says what to correct.

Examples
--------
>>> parse_amount("1 000 000", "price")
1000000
>>> parse_shares(["author", "", "center"], ["600", "", "400"], 1000)
((b'author', 600), (b'center', 400))
>>> parse_amount("-5", "price")
Traceback (most recent call last):
...
rongxin.platform.transferform.FormError: price: an amount cannot be negative
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from rongxin.platform.config import PlatformError
from zkp.auditor import AMOUNT_BITS
from zkp.transfer import MAX_PARTY, MAX_SHARES

MAX_AMOUNT = (1 << AMOUNT_BITS) - 1
"""Largest price or share (2⁶⁴ − 1): what the range proofs cover."""
SHARE_ROWS = 6
"""Share rows the form offers (up to :data:`zkp.transfer.MAX_SHARES` are accepted)."""


class FormError(PlatformError):
    """A transfer form field is missing or wrong (the message names it)."""


@dataclass(frozen=True)
class TransferTerms:
    """What a checked form asks for."""

    buyer_key: bytes
    buyer_pop: bytes
    price: int
    shares: tuple[tuple[bytes, int], ...]


def parse_amount(text: str, what: str) -> int:
    """A whole amount in ``[0, 2⁶⁴)`` (spaces, ``,`` and ``_`` between digits allowed)."""
    raw = text.strip()
    if not raw:
        raise FormError(f"{what}: enter an amount")
    if raw.startswith("-"):
        raise FormError(f"{what}: an amount cannot be negative")
    cleaned = raw.replace(" ", "").replace(",", "").replace("_", "").lstrip("+")
    if len(cleaned) > 40 or not cleaned.isascii() or not cleaned.isdigit():
        raise FormError(f"{what}: a whole number of yuan (fen are not divided), not {raw[:40]!r}")
    value = int(cleaned)
    if value > MAX_AMOUNT:
        raise FormError(f"{what}: at most {MAX_AMOUNT:,} (amounts are proven below 2^64)")
    return value


def parse_party(text: str) -> bytes:
    """A royalty party's name: 1 to :data:`MAX_PARTY` UTF-8 bytes, no control characters."""
    name = unicodedata.normalize("NFC", text.strip())
    data = name.encode("utf-8")
    if not data:
        raise FormError("royalty share: name the party")
    if len(data) > MAX_PARTY:
        raise FormError(f"royalty party {name[:20]!r}…: at most {MAX_PARTY} bytes of UTF-8")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise FormError("royalty party: control or invisible characters are not allowed")
    return data


def parse_shares(parties: Sequence[str], amounts: Sequence[str], price: int) -> tuple[tuple[bytes, int], ...]:
    """The filled rows as ``(party, amount)``; they must be 1 to :data:`MAX_SHARES`, each
    party once, and sum to ``price``."""
    if len(parties) != len(amounts):
        raise FormError("royalty shares: each row has a party and an amount")
    rows: list[tuple[bytes, int]] = []
    for party, amount in zip(parties, amounts, strict=True):
        if not party.strip() and not amount.strip():
            continue
        name = parse_party(party)
        rows.append((name, parse_amount(amount, f"share of {name.decode()}")))
    if not rows:
        raise FormError("royalty shares: fill at least one row")
    if len(rows) > MAX_SHARES:
        raise FormError(f"royalty shares: at most {MAX_SHARES} rows")
    if len({p for p, _ in rows}) != len(rows):
        raise FormError("royalty shares: each party may appear once")
    total = sum(v for _, v in rows)
    if total != price:
        raise FormError(f"royalty shares sum to {total:,}, not the price {price:,}")
    return tuple(rows)


def parse_hex(text: str, size: int, what: str) -> bytes:
    """``size`` bytes from hex (spaces and line breaks ignored)."""
    cleaned = "".join(text.split()).lower()
    if len(cleaned) != 2 * size:
        raise FormError(f"{what}: {2 * size} hex digits expected, got {len(cleaned)}")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise FormError(f"{what}: only hex digits 0-9 a-f") from None


def parse_terms(
    buyer_key: str, buyer_pop: str, price: str, parties: Sequence[str], amounts: Sequence[str]
) -> TransferTerms:
    """Check every field of the transfer form.

    Raises
    ------
    FormError
        Naming the first field that is wrong.
    """
    key = parse_hex(buyer_key, 33, "buyer's ownership key")
    pop = parse_hex(buyer_pop, 64, "buyer's proof of possession")
    value = parse_amount(price, "price")
    return TransferTerms(key, pop, value, parse_shares(parties, amounts, value))
