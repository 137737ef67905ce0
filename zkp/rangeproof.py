"""Bulletproofs range proofs (Bünz et al., S&P 2018), aggregated, with one-MSM verification.

Statement: commitments ``Vⱼ = vⱼ·g + γⱼ·h`` (``j < m``) with every ``vⱼ ∈ [0, 2ⁿ)``,
``n ∈ {8, 16, 32, 64}``, ``1 ≤ m`` and ``n·m' ≤ 1024`` (``m'`` is ``m`` rounded up to a power of
two; the prover pads with commitments to zero that the verifier knows to be the identity).

Proof (33-byte points, 32-byte scalars): ``A, S, T₁, T₂, τₓ, μ, t̂``, then ``log₂(n·m')``
pairs ``(Lᵢ, Rᵢ)`` of the inner-product argument, then ``a, b`` —
``4·33 + 3·32 + 2·log₂(n·m')·33 + 2·32`` bytes: 688 bytes for one 64-bit value
(dalek's ristretto255 proof is 672 bytes; a secp256k1 point is one byte longer).

Transcript order: label, ``n``, ``m``, the Pedersen and vector-generator digests, every
``Vⱼ``; ``A, S`` → ``y, z``; ``T₁, T₂`` → ``x``; ``τₓ, μ, t̂`` → ``w`` (``Q = w·g``);
each ``(Lᵢ, Rᵢ)`` → ``uᵢ``; ``a, b`` → the batching weight ``c``. The verifier checks the
polynomial identity and the inner-product argument as one equation
``Σ scalarᵢ·pointᵢ = 0`` (with weight ``c`` on the first), evaluated by a single
:class:`~zkp.group.MultiExp` in which the ``2·n·m' + 2`` generators use fixed-base tables.

Examples
--------
>>> proof, commitments = prove_range([5, 2**64 - 1], [11, 12], 64, Transcript(b"doc"))
>>> verify_range(commitments, 64, proof, Transcript(b"doc"))
>>> len(proof.encode())
754
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from chain.crypto.sm3 import SM3
from zkp.errors import EncodingError, ParameterError, ProofError
from zkp.group import (
    ORDER,
    POINT_BYTES,
    SCALAR_BYTES,
    FixedBaseTable,
    MultiExp,
    Point,
    ScalarSource,
    hash_to_point,
    random_scalar,
    scalar_from_bytes,
    scalar_to_bytes,
    sum_points,
)
from zkp.pedersen import pedersen_gens
from zkp.transcript import Transcript

SUPPORTED_BITS = (8, 16, 32, 64)
#: Largest ``n·m'`` (bits proven by one aggregated proof).
MAX_BITS = 1024
_BLOCK = 64
_LABEL = b"rongxin/zkp/bulletproofs"


class BulletproofGens:
    """The vector generators ``Gᵢ``, ``Hᵢ`` (hash-derived), with lazily built tables."""

    def __init__(self) -> None:
        self._g: list[Point] = []
        self._h: list[Point] = []
        self._tables: list[tuple[FixedBaseTable, FixedBaseTable]] = []
        self._lock = threading.Lock()

    def ensure(self, count: int) -> None:
        """Derive generators and tables for the first ``count`` indices."""
        if count > MAX_BITS:
            raise ParameterError(f"at most {MAX_BITS} generators, asked for {count}")
        with self._lock:
            while len(self._g) < count:
                start = len(self._g)
                idx = [i.to_bytes(4, "big") for i in range(start, start + _BLOCK)]
                g = [hash_to_point(_LABEL + b"/G", i) for i in idx]
                h = [hash_to_point(_LABEL + b"/H", i) for i in idx]
                self._tables.append((FixedBaseTable(g), FixedBaseTable(h)))
                self._g += g
                self._h += h

    def points(self, count: int) -> tuple[list[Point], list[Point]]:
        """``(G[:count], H[:count])``."""
        self.ensure(count)
        return self._g[:count], self._h[:count]

    def add_to(self, acc: MultiExp, g_scalars: Sequence[int], h_scalars: Sequence[int]) -> None:
        """Add ``Σ g_scalars[i]·Gᵢ + Σ h_scalars[i]·Hᵢ`` to ``acc`` through the tables."""
        self.ensure(max(len(g_scalars), len(h_scalars)))
        for which, scalars in ((0, g_scalars), (1, h_scalars)):
            for block, start in enumerate(range(0, len(scalars), _BLOCK)):
                acc.add_fixed(self._tables[block][which], scalars[start : start + _BLOCK])

    @cache  # noqa: B019 - one instance per process (bulletproof_gens)
    def digest(self, count: int) -> bytes:
        """SM3 over the encodings of ``G[:count]`` and ``H[:count]``."""
        g, h = self.points(count)
        state = SM3()
        for point in g + h:
            state.update(point.encode())
        return state.digest()


@cache
def bulletproof_gens() -> BulletproofGens:
    """The package's vector generators (one instance per process)."""
    return BulletproofGens()


def _padded(m: int) -> int:
    return 1 << (m - 1).bit_length()


def _check_shape(n: int, m: int) -> int:
    if n not in SUPPORTED_BITS:
        raise ParameterError(f"range proofs support n in {SUPPORTED_BITS} bits, got {n}")
    if m < 1 or n * _padded(m) > MAX_BITS:
        raise ParameterError(f"{m} values of {n} bits exceed the {MAX_BITS}-bit aggregation limit")
    return n * _padded(m)


@dataclass(frozen=True)
class RangeProof:
    """An aggregated Bulletproofs range proof (see the module docstring for the layout)."""

    A: Point
    S: Point
    T1: Point
    T2: Point
    taux: int
    mu: int
    t_hat: int
    L: tuple[Point, ...]
    R: tuple[Point, ...]
    a: int
    b: int

    def encode(self) -> bytes:
        """Canonical bytes."""
        parts = [p.encode() for p in (self.A, self.S, self.T1, self.T2)]
        parts += [scalar_to_bytes(s) for s in (self.taux, self.mu, self.t_hat)]
        for left, right in zip(self.L, self.R, strict=True):
            parts += [left.encode(), right.encode()]
        parts += [scalar_to_bytes(self.a), scalar_to_bytes(self.b)]
        return b"".join(parts)

    @staticmethod
    def size(n: int, m: int) -> int:
        """Encoded size of a proof for ``m`` values of ``n`` bits."""
        rounds = _check_shape(n, m).bit_length() - 1
        return (4 + 2 * rounds) * POINT_BYTES + 5 * SCALAR_BYTES

    @classmethod
    def decode(cls, data: bytes, n: int, m: int) -> RangeProof:
        """Parse a proof for ``m`` values of ``n`` bits; :class:`EncodingError` if malformed."""
        expected = cls.size(n, m)
        if len(data) != expected:
            raise EncodingError(f"range proof for m={m}, n={n} must be {expected} bytes, got {len(data)}")
        pos = 0

        def point() -> Point:
            nonlocal pos
            pos += POINT_BYTES
            return Point.decode(data[pos - POINT_BYTES : pos])

        def scalar() -> int:
            nonlocal pos
            pos += SCALAR_BYTES
            return scalar_from_bytes(data[pos - SCALAR_BYTES : pos])

        A, S, T1, T2 = point(), point(), point(), point()
        taux, mu, t_hat = scalar(), scalar(), scalar()
        rounds = (expected - 4 * POINT_BYTES - 5 * SCALAR_BYTES) // (2 * POINT_BYTES)
        L, R = [], []
        for _ in range(rounds):
            L.append(point())
            R.append(point())
        a, b = scalar(), scalar()
        return cls(A, S, T1, T2, taux, mu, t_hat, tuple(L), tuple(R), a, b)


def _bind_statement(transcript: Transcript, n: int, commitments: Sequence[Point]) -> None:
    total = _check_shape(n, len(commitments))
    transcript.append_message(b"bp", b"range-proof")
    transcript.append_u64(b"bp.n", n)
    transcript.append_u64(b"bp.m", len(commitments))
    transcript.append_message(b"bp.pedersen", pedersen_gens().digest())
    transcript.append_message(b"bp.gens", bulletproof_gens().digest(total))
    transcript.append_points(b"bp.V", list(commitments))


def _inner(a: Sequence[int], b: Sequence[int]) -> int:
    return sum(x * y for x, y in zip(a, b, strict=True)) % ORDER


def _powers(base: int, count: int) -> list[int]:
    out, acc = [], 1
    for _ in range(count):
        out.append(acc)
        acc = acc * base % ORDER
    return out


def _check_values(values: Sequence[int], n: int) -> None:
    for v in values:
        if not 0 <= v < 1 << n:
            raise ParameterError(f"value {v} is not in [0, 2^{n}); it cannot be proven in range")


def prove_range(
    values: Sequence[int],
    blindings: Sequence[int],
    n: int,
    transcript: Transcript,
    rng: ScalarSource = random_scalar,
) -> tuple[RangeProof, list[Point]]:
    """Prove every ``values[j] ∈ [0, 2ⁿ)``; returns the proof and the commitments ``Vⱼ``.

    Raises
    ------
    ParameterError
        If a value is out of range, the shapes differ, or ``n``/``m`` are unsupported.
    """
    m = len(values)
    if m != len(blindings):
        raise ParameterError("range proof needs one blinding per value")
    total = _check_shape(n, m)
    _check_values(values, n)
    ped, gens = pedersen_gens(), bulletproof_gens()
    commitments = [ped.commit(v, gamma) for v, gamma in zip(values, blindings, strict=True)]
    _bind_statement(transcript, n, commitments)
    padded_values = [*values, *([0] * (total // n - m))]
    padded_blind = [*blindings, *([0] * (total // n - m))]
    G, H = gens.points(total)
    a_l = [(v >> i) & 1 for v in padded_values for i in range(n)]
    a_r = [(bit - 1) % ORDER for bit in a_l]
    alpha, rho = rng(), rng()
    A = (
        sum_points([G[i] for i in range(total) if a_l[i]])
        - sum_points([H[i] for i in range(total) if not a_l[i]])
        + ped.h * alpha
    )
    s_l = [rng() for _ in range(total)]
    s_r = [rng() for _ in range(total)]
    acc = MultiExp()
    gens.add_to(acc, s_l, s_r)
    acc.add_fixed(ped.table, [0, rho])
    S = acc.result()
    transcript.append_point(b"bp.A", A)
    transcript.append_point(b"bp.S", S)
    y = transcript.challenge_scalar(b"bp.y")
    z = transcript.challenge_scalar(b"bp.z")
    y_pow = _powers(y, total)
    two_pow = _powers(2, n)
    z_pow = _powers(z, total // n + 2)
    l0 = [(bit - z) % ORDER for bit in a_l]
    r0 = [(y_pow[i] * (a_r[i] + z) + z_pow[2 + i // n] * two_pow[i % n]) % ORDER for i in range(total)]
    r1 = [y_pow[i] * s_r[i] % ORDER for i in range(total)]
    t1 = (_inner(l0, r1) + _inner(s_l, r0)) % ORDER
    t2 = _inner(s_l, r1)
    tau1, tau2 = rng(), rng()
    T1, T2 = ped.commit(t1, tau1), ped.commit(t2, tau2)
    transcript.append_point(b"bp.T1", T1)
    transcript.append_point(b"bp.T2", T2)
    x = transcript.challenge_scalar(b"bp.x")
    taux = (tau2 * x * x + tau1 * x + sum(z_pow[2 + j] * g for j, g in enumerate(padded_blind))) % ORDER
    mu = (alpha + rho * x) % ORDER
    lv = [(l0[i] + s_l[i] * x) % ORDER for i in range(total)]
    rv = [(r0[i] + r1[i] * x) % ORDER for i in range(total)]
    t_hat = _inner(lv, rv)
    transcript.append_scalar(b"bp.taux", taux)
    transcript.append_scalar(b"bp.mu", mu)
    transcript.append_scalar(b"bp.t_hat", t_hat)
    w = transcript.challenge_scalar(b"bp.w")
    y_inv = pow(y, -1, ORDER)
    L, R, a, b = _ipa_prove(transcript, G, H, _powers(y_inv, total), ped.g * w, lv, rv)
    transcript.append_scalar(b"bp.a", a)
    transcript.append_scalar(b"bp.b", b)
    transcript.challenge_scalar(b"bp.batch")  # keep the transcript in step with the verifier's
    return RangeProof(A, S, T1, T2, taux, mu, t_hat, tuple(L), tuple(R), a, b), commitments


def _ipa_prove(
    transcript: Transcript,
    G: list[Point],
    H: list[Point],
    h_factors: list[int],
    Q: Point,
    a: list[int],
    b: list[int],
) -> tuple[list[Point], list[Point], int, int]:
    """Inner-product argument for ``<a,G> + <b∘h_factors,H> + <a,b>·Q`` (explicit folding)."""
    L_out: list[Point] = []
    R_out: list[Point] = []
    # Round one uses the fixed-base tables with the y⁻ⁱ factors folded into the H scalars.
    gens = bulletproof_gens()
    size = len(a)
    while size > 1:
        half = size // 2
        a_lo, a_hi, b_lo, b_hi = a[:half], a[half:], b[:half], b[half:]
        c_l, c_r = _inner(a_lo, b_hi), _inner(a_hi, b_lo)
        if h_factors:
            zeros = [0] * half
            left, right = MultiExp(), MultiExp()
            gens.add_to(left, zeros + a_lo, [x * f % ORDER for x, f in zip(b_hi, h_factors, strict=False)])
            gens.add_to(
                right, a_hi, zeros + [x * f % ORDER for x, f in zip(b_lo, h_factors[half:], strict=True)]
            )
            left.add(c_l, Q)
            right.add(c_r, Q)
        else:
            left, right = MultiExp(), MultiExp()
            for s, p in [*zip(a_lo, G[half:], strict=True), *zip(b_hi, H[:half], strict=True), (c_l, Q)]:
                left.add(s, p)
            for s, p in [*zip(a_hi, G[:half], strict=True), *zip(b_lo, H[half:], strict=True), (c_r, Q)]:
                right.add(s, p)
        L_pt, R_pt = left.result(), right.result()
        L_out.append(L_pt)
        R_out.append(R_pt)
        transcript.append_point(b"bp.L", L_pt)
        transcript.append_point(b"bp.R", R_pt)
        u = transcript.challenge_scalar(b"bp.u")
        u_inv = pow(u, -1, ORDER)
        a = [(a_lo[i] * u + a_hi[i] * u_inv) % ORDER for i in range(half)]
        b = [(b_lo[i] * u_inv + b_hi[i] * u) % ORDER for i in range(half)]
        hf = h_factors or [1] * size
        G = [G[i] * u_inv + G[half + i] * u for i in range(half)]
        H = [H[i] * (u * hf[i]) + H[half + i] * (u_inv * hf[half + i]) for i in range(half)]
        h_factors = []
        size = half
    return L_out, R_out, a[0], b[0]


def verify_range(commitments: Sequence[Point], n: int, proof: RangeProof, transcript: Transcript) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows every commitment opens to ``[0, 2ⁿ)``."""
    m = len(commitments)
    total = _check_shape(n, m)
    rounds = total.bit_length() - 1
    if len(proof.L) != rounds or len(proof.R) != rounds:
        raise ProofError(f"range proof has {len(proof.L)} inner-product rounds, expected {rounds}")
    _bind_statement(transcript, n, commitments)
    transcript.append_point(b"bp.A", proof.A)
    transcript.append_point(b"bp.S", proof.S)
    y = transcript.challenge_scalar(b"bp.y")
    z = transcript.challenge_scalar(b"bp.z")
    transcript.append_point(b"bp.T1", proof.T1)
    transcript.append_point(b"bp.T2", proof.T2)
    x = transcript.challenge_scalar(b"bp.x")
    transcript.append_scalar(b"bp.taux", proof.taux)
    transcript.append_scalar(b"bp.mu", proof.mu)
    transcript.append_scalar(b"bp.t_hat", proof.t_hat)
    w = transcript.challenge_scalar(b"bp.w")
    us = []
    for left, right in zip(proof.L, proof.R, strict=True):
        transcript.append_point(b"bp.L", left)
        transcript.append_point(b"bp.R", right)
        us.append(transcript.challenge_scalar(b"bp.u"))
    transcript.append_scalar(b"bp.a", proof.a)
    transcript.append_scalar(b"bp.b", proof.b)
    c = transcript.challenge_scalar(b"bp.batch")

    values = total // n
    u_inv = [pow(u, -1, ORDER) for u in us]
    u_sq = [u * u % ORDER for u in us]
    s = [1] * total
    acc = 1
    for ui in u_inv:
        acc = acc * ui % ORDER
    s[0] = acc
    for i in range(1, total):
        top = i.bit_length() - 1
        s[i] = s[i - (1 << top)] * u_sq[rounds - 1 - top] % ORDER
    y_inv = pow(y, -1, ORDER)
    y_inv_pow = _powers(y_inv, total)
    z_pow = _powers(z, values + 3)
    two_pow = _powers(2, n)
    sum_y = sum(_powers(y, total)) % ORDER
    delta = ((z - z * z) * sum_y - sum(z_pow[3 + j] for j in range(values)) * ((1 << n) - 1)) % ORDER
    a, b = proof.a, proof.b
    g_scalars = [(-z - a * s[i]) % ORDER for i in range(total)]
    h_scalars = [
        (z + (z_pow[2 + i // n] * two_pow[i % n] - b * s[total - 1 - i]) * y_inv_pow[i]) % ORDER
        for i in range(total)
    ]
    msm = MultiExp()
    bulletproof_gens().add_to(msm, g_scalars, h_scalars)
    ped = pedersen_gens()
    g_coeff = (w * (proof.t_hat - a * b) + c * (proof.t_hat - delta)) % ORDER
    msm.add_fixed(ped.table, [g_coeff, (c * proof.taux - proof.mu) % ORDER])
    for j, V in enumerate(commitments):
        msm.add(-c * z_pow[2 + j], V)
    msm.add(-c * x, proof.T1)
    msm.add(-c * x * x, proof.T2)
    msm.add(1, proof.A)
    msm.add(x, proof.S)
    for j in range(rounds):
        msm.add(u_sq[j], proof.L[j])
        msm.add(pow(u_sq[j], -1, ORDER), proof.R[j])
    if not msm.result().is_identity():
        raise ProofError("range proof does not verify")
