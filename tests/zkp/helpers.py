"""Test-only helpers: a seeded scalar source for reproducible proofs and vectors."""

from __future__ import annotations

import random

from zkp.group import ORDER, ScalarSource


def seeded(seed: int) -> ScalarSource:
    """Deterministic scalars in [1, n) — for test vectors only, never for real secrets."""
    rng = random.Random(seed)
    return lambda: rng.randrange(1, ORDER)


def flip_byte(data: bytes, index: int) -> bytes:
    """``data`` with one bit of byte ``index`` flipped."""
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)
