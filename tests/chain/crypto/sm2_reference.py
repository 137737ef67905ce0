"""Test-only SM2 verifier over any short-Weierstrass curve, in plain Python.

It exists to check the GB/T 32918.2 Annex A example, which uses a *test* curve that the
production backend (OpenSSL, fixed to the recommended curve) cannot load.  Affine
arithmetic, no side-channel care: never use outside tests.
"""

from __future__ import annotations

from chain.crypto.sm2 import Curve

Point = tuple[int, int] | None


def add(curve: Curve, p1: Point, p2: Point) -> Point:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    p = curve.p
    if x1 == x2 and (y1 + y2) % p == 0:
        return None
    if p1 == p2:
        lam = (3 * x1 * x1 + curve.a) * pow(2 * y1, -1, p) % p
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, p) % p
    x3 = (lam * lam - x1 - x2) % p
    return x3, (lam * (x1 - x3) - y1) % p


def mul(curve: Curve, k: int, point: Point) -> Point:
    result: Point = None
    addend = point
    while k:
        if k & 1:
            result = add(curve, result, addend)
        addend = add(curve, addend, addend)
        k >>= 1
    return result


def verify(curve: Curve, public: tuple[int, int], e: int, r: int, s: int) -> bool:
    n = curve.n
    if not (1 <= r < n and 1 <= s < n):
        return False
    t = (r + s) % n
    if t == 0:
        return False
    point = add(curve, mul(curve, s, (curve.gx, curve.gy)), mul(curve, t, public))
    if point is None:
        return False
    return (e + point[0]) % n == r
