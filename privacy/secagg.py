"""Secure aggregation: masks that hide each agency's plaintext and cancel in the sum.

Each agency ``u`` of a query with participants ``P`` adds to each of its plaintexts
(packed slot values or single values, all modulo the Paillier modulus ``N``)

* a **self mask** ``PRG(b_u)`` from a fresh random seed ``b_u``, and
* for every other participant ``v``, a **pairwise mask** ``±PRG(s_uv)``: ``+`` when
  ``u`` sorts before ``v``, ``−`` otherwise, so that the pairwise masks of all
  participants sum to zero.

The pairwise seed ``s_uv`` (:func:`pair_seed`) is derived, with SM3-KDF, from the static
ECDH secret of the two agencies' certified SM2 keys, the query id and both names: fresh
for each query, so revealing it affects only that query.

After the contributions, the aggregator learns who contributed (survivors ``S``) and
who dropped out (``D``). Every survivor endorses that one view — it endorses no other
view for the query — and, once all of ``S`` endorsed the same view, reveals ``b_u`` and
``s_uv`` for each dropped ``v``. The aggregator subtracts (:func:`correction`)
``Σ_{u∈S} PRG(b_u) + Σ_{u∈S, v∈D} ±PRG(s_uv)`` from the homomorphic sum: what is left is
exactly the sum of the survivors' plaintexts. This is the double masking of Bonawitz et
al. (CCS 2017) without the secret sharing of ``b_u``: a survivor that drops out *after*
contributing aborts the query (no result), instead of being recovered.

Why the self mask: an aggregator that kept ``u``'s contribution but declared ``u``
dropped would learn all of ``u``'s pairwise seeds; ``b_u`` is then never revealed (``u``
endorses only views that list it as a survivor, and a view needs every survivor's
endorsement and a majority of the participants), so ``u``'s plaintext stays masked.

Every value an agency sends is uniform modulo ``N`` to anyone without the other
agencies' secrets — including the regulator, who holds the Paillier key.

Examples
--------
>>> n = 2**61 - 1
>>> seeds = {("a", "b"): b"1" * 32, ("a", "c"): b"2" * 32, ("b", "c"): b"3" * 32}
>>> def pair(u, v): return seeds[tuple(sorted((u, v)))]
>>> own = {u: bytes([i]) * 32 for i, u in enumerate("abc")}
>>> masked = {u: mask([10 * (i + 1)], n, own[u], {v: pair(u, v) for v in "abc" if v != u}, u)
...           for i, u in enumerate("abc")}
>>> total = sum(m[0] for m in masked.values()) % n
>>> (total - correction(1, n, own.values(), [])[0]) % n
60
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence

from chain import codec
from chain.crypto.sm3 import sm3_kdf
from privacy.errors import CiphertextError

SEED_SIZE = 32
"""Bytes of a self-mask or pairwise seed."""
_PAIR_LABEL = "rongxin-secagg-pair-v1"
_MASK_LABEL = b"rongxin-secagg-mask-v1"
_EXTRA_BYTES = 16
"""Extra PRG bytes beyond the modulus: the reduction's bias is below 2**-128."""


def fresh_seed() -> bytes:
    """A self-mask seed from the operating system's CSPRNG."""
    return secrets.token_bytes(SEED_SIZE)


def pair_seed(secret: bytes, query_id: str, a: str, b: str) -> bytes:
    """The pairwise seed of agencies ``a`` and ``b`` for one query (order-independent).

    Examples
    --------
    >>> pair_seed(b"k" * 32, "q", "a", "b") == pair_seed(b"k" * 32, "q", "b", "a")
    True
    >>> pair_seed(b"k" * 32, "q", "a", "b") == pair_seed(b"k" * 32, "q2", "a", "b")
    False
    """
    lo, hi = sorted((a, b))
    return sm3_kdf(codec.encode([_PAIR_LABEL, secret, query_id, lo, hi]), SEED_SIZE)


def expand(seed: bytes, count: int, modulus: int) -> list[int]:
    """``count`` pseudo-random integers modulo ``modulus`` from ``seed`` (SM3-KDF in counter mode)."""
    if len(seed) != SEED_SIZE:
        raise CiphertextError(f"a mask seed is {SEED_SIZE} bytes, not {len(seed)}")
    width = (modulus.bit_length() + 7) // 8 + _EXTRA_BYTES
    return [
        int.from_bytes(sm3_kdf(_MASK_LABEL + seed + j.to_bytes(4, "big"), width), "big") % modulus
        for j in range(count)
    ]


def mask(
    values: Sequence[int], modulus: int, self_seed: bytes, pair_seeds: Mapping[str, bytes], own: str
) -> list[int]:
    """Agency ``own``'s plaintexts plus its self mask and signed pairwise masks, modulo ``modulus``."""
    out = [v % modulus for v in values]
    for peer, seed in [(None, self_seed), *sorted(pair_seeds.items())]:
        sign = 1 if peer is None or own < peer else -1
        for j, m in enumerate(expand(seed, len(out), modulus)):
            out[j] = (out[j] + sign * m) % modulus
    return out


def correction(
    count: int,
    modulus: int,
    self_seeds: Iterable[bytes],
    dropped_pairs: Iterable[tuple[str, str, bytes]],
) -> list[int]:
    """What the aggregator subtracts from the survivors' sum.

    Parameters
    ----------
    count, modulus
        Plaintexts per agency and the modulus.
    self_seeds
        ``b_u`` of every survivor.
    dropped_pairs
        ``(survivor, dropped, s_uv)`` for every survivor and every dropped agency.
    """
    total = [0] * count
    for seed in self_seeds:
        for j, m in enumerate(expand(seed, count, modulus)):
            total[j] += m
    for survivor, dropped, seed in dropped_pairs:
        sign = 1 if survivor < dropped else -1
        for j, m in enumerate(expand(seed, count, modulus)):
            total[j] += sign * m
    return [t % modulus for t in total]


def view_is_acceptable(
    participants: Sequence[str], survivors: Sequence[str], dropped: Sequence[str], own: str, minimum: int
) -> str | None:
    """Why an agency must not endorse a view, or ``None`` when it may.

    The view must split the participants into survivors and dropped agencies, list
    ``own`` as a survivor, keep at least ``minimum`` survivors and a strict majority of
    the participants (two disjoint views cannot both be endorsed).

    Examples
    --------
    >>> view_is_acceptable(["a", "b", "c"], ["a", "b", "c"], [], "a", 3) is None
    True
    >>> view_is_acceptable(["a", "b", "c", "d"], ["a", "b"], ["c", "d"], "a", 2)
    '2 of 4 agencies are left; a result needs a majority of the participants'
    """
    s, d, p = set(survivors), set(dropped), set(participants)
    if len(s) != len(survivors) or len(d) != len(dropped) or s & d or s | d != p:
        return "the view does not split the query's participants into survivors and dropped agencies"
    if own not in s:
        return "the view lists this agency as dropped out"
    if len(s) < minimum:
        return f"only {len(s)} agencies are left; this agency's policy needs at least {minimum}"
    if 2 * len(s) <= len(p):
        return f"{len(s)} of {len(p)} agencies are left; a result needs a majority of the participants"
    return None


# --- threshold shares: recovering an agency that drops out after contributing -----------------

SHARE_PRIME = (1 << 521) - 1
"""The field of the Shamir shares (a Mersenne prime above every 32-byte seed)."""
_SHARE_LABEL = "rongxin-secagg-share-v1"


def threshold(participants: int) -> int:
    """Shares needed to rebuild a seed: a strict majority of the participants.

    Fewer than this many agencies (with the aggregator) learn nothing about a seed, and
    two disjoint majorities cannot exist, so a seed is rebuilt for at most one view.

    Examples
    --------
    >>> [threshold(n) for n in (3, 4, 5, 10)]
    [2, 3, 3, 6]
    """
    return participants // 2 + 1


def holder_index(participants: Sequence[str], holder: str) -> int:
    """The Shamir x-coordinate of ``holder``: its 1-based position among the sorted participants."""
    return sorted(participants).index(holder) + 1


def split(secret: bytes, xs: Sequence[int], t: int) -> dict[int, int]:
    """Shamir shares of ``secret`` at the points ``xs``: any ``t`` of them rebuild it.

    Examples
    --------
    >>> shares = split(b"s" * 32, [1, 2, 3, 4], 3)
    >>> combine({x: shares[x] for x in (1, 3, 4)}, 3) == b"s" * 32
    True
    """
    if len(secret) != SEED_SIZE:
        raise CiphertextError(f"a shared seed is {SEED_SIZE} bytes, not {len(secret)}")
    if not 1 <= t <= len(xs) or len(set(xs)) != len(xs) or any(not 0 < x < SHARE_PRIME for x in xs):
        raise CiphertextError(f"cannot split a seed {t}-of-{len(xs)} at these points")
    coeffs = [int.from_bytes(secret, "big")] + [secrets.randbelow(SHARE_PRIME) for _ in range(t - 1)]
    out = {}
    for x in xs:
        y = 0
        for c in reversed(coeffs):
            y = (y * x + c) % SHARE_PRIME
        out[x] = y
    return out


def combine(shares: Mapping[int, int], t: int) -> bytes:
    """Rebuild a seed from at least ``t`` Shamir shares (Lagrange interpolation at 0).

    Raises
    ------
    CiphertextError
        Fewer than ``t`` shares, a share outside the field, or shares that do not
        interpolate to a seed (some share was altered).
    """
    if len(shares) < t:
        raise CiphertextError(f"{len(shares)} shares cannot rebuild a seed shared {t}-of-n")
    points = sorted(shares.items())
    if any(not 0 < x < SHARE_PRIME or not 0 <= y < SHARE_PRIME for x, y in points):
        raise CiphertextError("a share lies outside the share field")
    # interpolate from the first t shares, then check every other share lies on the same polynomial
    base, rest = points[:t], points[t:]

    def at(z: int) -> int:
        total = 0
        for i, (xi, yi) in enumerate(base):
            num, den = 1, 1
            for j, (xj, _) in enumerate(base):
                if i != j:
                    num = num * (z - xj) % SHARE_PRIME
                    den = den * (xi - xj) % SHARE_PRIME
            total = (total + yi * num * pow(den, -1, SHARE_PRIME)) % SHARE_PRIME
        return total

    if any(at(x) != y for x, y in rest):
        raise CiphertextError("the shares disagree: at least one was altered")
    value = at(0)
    if value >> (8 * SEED_SIZE):
        raise CiphertextError("the shares do not rebuild a seed: at least one was altered")
    return value.to_bytes(SEED_SIZE, "big")


def share_key(secret: bytes, query_id: str, sender: str, holder: str) -> bytes:
    """The SM4 key under which ``sender`` seals its shares for ``holder`` in one query."""
    return sm3_kdf(codec.encode([_SHARE_LABEL, secret, query_id, sender, holder]), 16)


def share_aad(query_id: str, sender: str, holder: str) -> bytes:
    """Associated data binding sealed shares to their query, sender and holder."""
    return codec.encode([_SHARE_LABEL, query_id, sender, holder])


def deal(
    self_seed: bytes, pair_seeds: Mapping[str, bytes], participants: Sequence[str], own: str
) -> dict[str, list[int]]:
    """Shares of ``own``'s self seed and of every pairwise seed, one list per other participant.

    Each list holds, for its holder, the share of ``b_own`` followed by the shares of
    ``s_own,w`` for every other participant ``w`` in sorted order; any
    :func:`threshold` holders rebuild each seed. With fewer other participants than the
    threshold (two agencies) no recovery is possible and the lists are empty.
    """
    others = sorted(a for a in participants if a != own)
    if sorted(pair_seeds) != others:
        raise CiphertextError("pairwise seeds must cover every other participant")
    xs = {h: holder_index(participants, h) for h in others}
    t = threshold(len(participants))
    if len(others) < t:
        return {h: [] for h in others}
    dealt = [split(seed, list(xs.values()), t) for seed in [self_seed, *(pair_seeds[w] for w in others)]]
    return {h: [shares[x] for shares in dealt] for h, x in xs.items()}
