"""Pedersen commitments ``C = v·g + r·h`` over independent hash-derived generators.

``g`` and ``h`` come from :func:`zkp.group.hash_to_point` under distinct labels, so nobody
knows ``log_g h``: a commitment is perfectly hiding (``r`` uniform) and computationally
binding (opening one ``C`` two ways yields ``log_g h``). Commitments are additively
homomorphic: ``C(v₁, r₁) + C(v₂, r₂) = C(v₁ + v₂, r₁ + r₂)``.

Examples
--------
>>> gens = pedersen_gens()
>>> c = gens.commit(5, 11) + gens.commit(7, 13)
>>> c == gens.commit(12, 24)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from chain.crypto.sm3 import sm3
from zkp.group import FixedBaseTable, MultiExp, Point, hash_to_point

_LABEL = b"rongxin/zkp/pedersen"


@dataclass(frozen=True)
class PedersenGens:
    """The value base ``g``, the blinding base ``h`` and a table for fast products."""

    g: Point
    h: Point
    table: FixedBaseTable

    def commit(self, value: int, blinding: int) -> Point:
        """``value·g + blinding·h``."""
        m = MultiExp()
        m.add_fixed(self.table, [value, blinding])
        return m.result()

    def digest(self) -> bytes:
        """SM3 over the encodings of ``g`` and ``h`` (bound into every transcript)."""
        return sm3(self.g.encode() + self.h.encode())


@cache
def pedersen_gens() -> PedersenGens:
    """The package's Pedersen generators (derived once per process).

    Examples
    --------
    >>> pedersen_gens().g != pedersen_gens().h
    True
    """
    g = hash_to_point(_LABEL, b"g")
    h = hash_to_point(_LABEL, b"h")
    return PedersenGens(g, h, FixedBaseTable([g, h]))
