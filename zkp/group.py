"""The prime-order group: secp256k1 through libsecp256k1 (``coincurve``).

Why this backend (measured on the project machine, 2 shared cores, see ``docs/zkp.md``):
one variable-base scalar multiplication costs ≈20 µs with ``coincurve`` against ≈36 µs for
ristretto255 through libsodium, and libsecp256k1 adds *many* points in one call
(``secp256k1_ec_pubkey_combine``) at ≈0.17 µs per point, where every libsodium
ristretto255 addition decodes and re-encodes (≈12 µs). Multi-scalar multiplication is
therefore built on that n-ary addition:

* :class:`FixedBaseTable` precomputes ``d·16^k·P`` for every fixed generator ``P``
  (64 windows × 15 digits), so ``Σ sᵢ·Pᵢ`` over fixed generators is a single C call adding
  ≤ 64 table entries per term (≈11 µs a term instead of ≈20 µs);
* variable bases (commitments, prover messages) are multiplied once each and added in the
  same call (:class:`MultiExp`).

Encodings are validated on decode: a point is 33 bytes SEC1-compressed, parsed by
libsecp256k1 (which rejects ``x ≥ p`` and ``x`` off the curve); the identity is 33 zero
bytes and is refused unless the caller allows it; a scalar is 32 big-endian bytes and must
be ``< n``. Generators come from :func:`hash_to_point` (hash-and-increment onto the curve
with SM3): nobody knows a discrete-log relation between any two of them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from chain.crypto.sm3 import sm3
from zkp.errors import EncodingError, ParameterError

#: Order of the secp256k1 group (a prime).
ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: Encoded sizes in bytes.
POINT_BYTES = 33
SCALAR_BYTES = 32
_IDENTITY_ENCODING = bytes(POINT_BYTES)
_CTX = GLOBAL_CONTEXT.ctx
_COMPRESSED = lib.SECP256K1_EC_COMPRESSED
_WINDOW_BITS = 4
_WINDOWS = 256 // _WINDOW_BITS
_DIGITS = (1 << _WINDOW_BITS) - 1

#: A source of uniformly random non-zero scalars (the default draws from ``secrets``).
ScalarSource = Callable[[], int]


def random_scalar() -> int:
    """A uniformly random scalar in ``[1, n)`` from the operating system's CSPRNG.

    Examples
    --------
    >>> 0 < random_scalar() < ORDER
    True
    """
    return secrets.randbelow(ORDER - 1) + 1


def scalar_to_bytes(s: int) -> bytes:
    """Canonical 32-byte big-endian encoding of ``s mod n``.

    Examples
    --------
    >>> scalar_to_bytes(1).hex()[-4:]
    '0001'
    """
    return (s % ORDER).to_bytes(SCALAR_BYTES, "big")


def scalar_from_bytes(data: bytes) -> int:
    """Decode a canonical scalar; :class:`EncodingError` unless 32 bytes and ``< n``.

    Examples
    --------
    >>> scalar_from_bytes(scalar_to_bytes(7))
    7
    >>> scalar_from_bytes(ORDER.to_bytes(32, "big"))
    Traceback (most recent call last):
    ...
    zkp.errors.EncodingError: scalar is not canonical (≥ group order); re-encode it reduced mod n
    """
    if len(data) != SCALAR_BYTES:
        raise EncodingError(f"a scalar is {SCALAR_BYTES} bytes, got {len(data)}")
    value = int.from_bytes(data, "big")
    if value >= ORDER:
        raise EncodingError("scalar is not canonical (≥ group order); re-encode it reduced mod n")
    return value


def hash_to_scalar(domain: bytes, *parts: bytes) -> int:
    """A scalar derived from SM3 over length-framed ``parts`` (wide reduction, 512 bits).

    Examples
    --------
    >>> hash_to_scalar(b"d", b"x") == hash_to_scalar(b"d", b"x") != hash_to_scalar(b"d", b"y")
    True
    """
    framed = _frame(domain, parts)
    wide = sm3(b"\x00" + framed) + sm3(b"\x01" + framed)
    return int.from_bytes(wide, "big") % ORDER


def _frame(domain: bytes, parts: Iterable[bytes]) -> bytes:
    out = [len(domain).to_bytes(2, "big"), domain]
    for part in parts:
        out += [len(part).to_bytes(4, "big"), part]
    return b"".join(out)


class Point:
    """An element of the secp256k1 group (immutable); ``Point.identity()`` is the neutral element.

    Examples
    --------
    >>> g = hash_to_point(b"doc", b"g")
    >>> (g * 3 + g * 4) == g * 7
    True
    >>> Point.decode(g.encode()) == g
    True
    >>> (g - g).is_identity()
    True
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: Any) -> None:
        # ``raw`` is an owned ``secp256k1_pubkey *`` or ``None`` for the identity.
        self._raw = raw

    @staticmethod
    def identity() -> Point:
        """The neutral element."""
        return _IDENTITY

    def is_identity(self) -> bool:
        """True for the neutral element."""
        return self._raw is None

    @classmethod
    def decode(cls, data: bytes, *, allow_identity: bool = False) -> Point:
        """Parse 33 compressed bytes; :class:`EncodingError` for anything else.

        Off-curve points, ``x ≥ p``, uncompressed or hybrid forms, wrong lengths and (unless
        ``allow_identity``) the identity are refused.
        """
        if not isinstance(data, bytes | bytearray) or len(data) != POINT_BYTES:
            size = len(data) if isinstance(data, bytes | bytearray) else type(data).__name__
            raise EncodingError(f"a point is {POINT_BYTES} compressed bytes, got {size}")
        if data == _IDENTITY_ENCODING:
            if allow_identity:
                return _IDENTITY
            raise EncodingError("the identity point is not allowed here")
        if data[0] not in (2, 3):
            raise EncodingError("a point must be SEC1-compressed (prefix 0x02 or 0x03)")
        raw = ffi.new("secp256k1_pubkey *")
        if not lib.secp256k1_ec_pubkey_parse(_CTX, raw, bytes(data), POINT_BYTES):
            raise EncodingError("bytes are not a point on secp256k1 (x off the curve or ≥ p)")
        return cls(raw)

    def encode(self) -> bytes:
        """33 bytes: SEC1-compressed, or 33 zero bytes for the identity."""
        if self._raw is None:
            return _IDENTITY_ENCODING
        out = ffi.new("unsigned char[33]")
        size = ffi.new("size_t *", POINT_BYTES)
        lib.secp256k1_ec_pubkey_serialize(_CTX, out, size, self._raw, _COMPRESSED)
        return bytes(ffi.buffer(out, POINT_BYTES))

    def __add__(self, other: Point) -> Point:
        if self._raw is None:
            return other
        if other._raw is None:
            return self
        return _combine_raw([self._raw, other._raw])

    def __neg__(self) -> Point:
        if self._raw is None:
            return self
        raw = ffi.new("secp256k1_pubkey *")
        ffi.memmove(raw, self._raw, 64)
        lib.secp256k1_ec_pubkey_negate(_CTX, raw)
        return Point(raw)

    def __sub__(self, other: Point) -> Point:
        return self + (-other)

    def __mul__(self, scalar: int) -> Point:
        s = scalar % ORDER
        if s == 0 or self._raw is None:
            return _IDENTITY
        raw = ffi.new("secp256k1_pubkey *")
        ffi.memmove(raw, self._raw, 64)
        lib.secp256k1_ec_pubkey_tweak_mul(_CTX, raw, s.to_bytes(32, "big"))
        return Point(raw)

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Point):
            return NotImplemented
        if self._raw is None or other._raw is None:
            return self._raw is other._raw
        return bool(lib.secp256k1_ec_pubkey_cmp(_CTX, self._raw, other._raw) == 0)

    def __hash__(self) -> int:
        return hash(self.encode())

    def __repr__(self) -> str:
        return f"Point({self.encode().hex()})"


_IDENTITY = Point(None)


def _combine_raw(raws: Sequence[Any]) -> Point:
    out = ffi.new("secp256k1_pubkey *")
    ptrs = ffi.new("secp256k1_pubkey *[]", list(raws))
    if lib.secp256k1_ec_pubkey_combine(_CTX, out, ptrs, len(raws)):
        return Point(out)
    return _IDENTITY  # the only way combine fails on valid inputs: the sum is the identity


def hash_to_point(domain: bytes, message: bytes) -> Point:
    """A group element nobody knows the discrete log of (hash-and-increment with SM3).

    ``x = SM3(frame(domain, message, counter))`` for counter 0, 1, … until ``x`` is the
    abscissa of a curve point; the point with even ``y`` is returned. Used only on public
    inputs (generators, nullifier bases), so the variable running time leaks nothing.

    Examples
    --------
    >>> hash_to_point(b"d", b"m") == hash_to_point(b"d", b"m") != hash_to_point(b"d", b"n")
    True
    """
    for counter in range(1 << 16):
        x = sm3(_frame(domain, [message, counter.to_bytes(4, "big")]))
        try:
            return Point.decode(b"\x02" + x)
        except EncodingError:
            continue
    raise ParameterError("hash_to_point found no point in 65536 tries (cannot happen)")  # pragma: no cover


def sum_points(points: Iterable[Point]) -> Point:
    """Sum of ``points`` in one libsecp256k1 call.

    Examples
    --------
    >>> g = hash_to_point(b"doc", b"g")
    >>> sum_points([g, g, g]) == g * 3
    True
    """
    raws = [p._raw for p in points if p._raw is not None]
    return _combine_raw(raws) if raws else _IDENTITY


class FixedBaseTable:
    """Precomputed multiples of fixed generators for fast multi-scalar multiplication.

    Entry ``(i, k, d)`` holds ``d·16^k·Pᵢ`` (``k < 64``, ``1 ≤ d ≤ 15``); a product
    ``s·Pᵢ`` is the sum of the 64 entries selected by the hexadecimal digits of ``s``.
    Building costs ≈2 ms and 61 KiB per generator (measured on the project machine).

    Examples
    --------
    >>> gens = [hash_to_point(b"doc", bytes([i])) for i in range(3)]
    >>> table = FixedBaseTable(gens)
    >>> m = MultiExp(); m.add_fixed(table, [5, 0, 2**200 + 9])
    >>> m.result() == gens[0] * 5 + gens[2] * (2**200 + 9)
    True
    """

    def __init__(self, points: Sequence[Point]) -> None:
        if any(p.is_identity() for p in points):
            raise ParameterError("a fixed-base table cannot hold the identity")
        self.size = len(points)
        per = _WINDOWS * _DIGITS
        self._table = ffi.new("secp256k1_pubkey[]", max(1, self.size * per))
        self._base = int(ffi.cast("uintptr_t", self._table))
        pair = ffi.new("secp256k1_pubkey *[2]")
        for i, point in enumerate(points):
            row = self._table + i * per
            ffi.memmove(row, point._raw, 64)
            for k in range(_WINDOWS):
                win = row + k * _DIGITS
                if k:
                    pair[0] = pair[1] = win - _DIGITS + 7  # 8·16^(k-1)·P doubled
                    lib.secp256k1_ec_pubkey_combine(_CTX, win, pair, 2)
                for d in range(1, _DIGITS):
                    pair[0], pair[1] = win + d - 1, win
                    lib.secp256k1_ec_pubkey_combine(_CTX, win + d, pair, 2)

    def addresses(self, scalars: Sequence[int], offset: int = 0) -> np.ndarray[Any, np.dtype[np.uint64]]:
        """Addresses of the table entries that sum to ``Σ scalars[j]·P[offset + j]``."""
        count = len(scalars)
        if offset < 0 or offset + count > self.size:
            raise ParameterError(f"table holds {self.size} generators, asked for {offset}..{offset + count}")
        if count == 0:
            return np.empty(0, np.uint64)
        raw = b"".join((s % ORDER).to_bytes(32, "little") for s in scalars)
        octets = np.frombuffer(raw, np.uint8).reshape(count, 32)
        digits = np.empty((count, _WINDOWS), np.int64)
        digits[:, 0::2] = octets & 15
        digits[:, 1::2] = octets >> 4
        rows = np.arange(offset, offset + count, dtype=np.int64)[:, None] * _WINDOWS
        index = (rows + np.arange(_WINDOWS, dtype=np.int64)) * _DIGITS + digits - 1
        chosen = index[digits != 0].astype(np.uint64)
        out: np.ndarray[Any, np.dtype[np.uint64]] = np.uint64(self._base) + chosen * np.uint64(64)
        return out


class MultiExp:
    """Accumulates ``Σ sᵢ·Pᵢ`` and evaluates it with one n-ary addition.

    Fixed generators go through a :class:`FixedBaseTable`; variable points are multiplied
    once each (constant-time libsecp256k1 multiplication) and added in the same call.

    Examples
    --------
    >>> g, h = hash_to_point(b"doc", b"g"), hash_to_point(b"doc", b"h")
    >>> m = MultiExp(); m.add(2, g); m.add(3, h); m.add(-2, g); m.result() == h * 3
    True
    """

    def __init__(self) -> None:
        self._fixed: list[np.ndarray[Any, np.dtype[np.uint64]]] = []
        self._tables: list[FixedBaseTable] = []
        self._points: list[Any] = []

    def add(self, scalar: int, point: Point) -> None:
        """Add ``scalar·point`` for a variable ``point``."""
        product = point * scalar
        if product._raw is not None:
            self._points.append(product._raw)

    def add_fixed(self, table: FixedBaseTable, scalars: Sequence[int], offset: int = 0) -> None:
        """Add ``Σ scalars[j]·table[offset + j]``."""
        self._fixed.append(table.addresses(scalars, offset))
        self._tables.append(table)  # keep the table alive until result()

    def result(self) -> Point:
        """The accumulated sum."""
        parts = [*self._fixed]
        if self._points:
            parts.append(np.array([int(ffi.cast("uintptr_t", p)) for p in self._points], np.uint64))
        addrs = np.ascontiguousarray(np.concatenate(parts)) if parts else np.empty(0, np.uint64)
        if addrs.size == 0:
            return _IDENTITY
        out = ffi.new("secp256k1_pubkey *")
        ptrs = ffi.from_buffer("secp256k1_pubkey *[]", addrs)
        if lib.secp256k1_ec_pubkey_combine(_CTX, out, ptrs, int(addrs.size)):
            return Point(out)
        return _IDENTITY


def multiexp(scalars: Sequence[int], points: Sequence[Point]) -> Point:
    """``Σ scalars[i]·points[i]`` for variable points.

    Examples
    --------
    >>> g = hash_to_point(b"doc", b"g")
    >>> multiexp([1, 2], [g, g]) == g * 3
    True
    """
    if len(scalars) != len(points):
        raise ParameterError("multiexp needs as many scalars as points")
    acc = MultiExp()
    for s, p in zip(scalars, points, strict=True):
        acc.add(s, p)
    return acc.result()


@dataclass(frozen=True)
class SecretKey:
    """A secret scalar ``s`` and its public key ``s·base()``; subclasses choose the base.

    Examples
    --------
    >>> class DocKey(SecretKey):
    ...     @classmethod
    ...     def base(cls) -> Point:
    ...         return hash_to_point(b"doc", b"key-base")
    >>> key = DocKey.generate()
    >>> DocKey.from_bytes(key.to_bytes()) == key and key.public == DocKey.base() * key.secret
    True
    """

    secret: int
    #: Label bound into this kind of key's proofs of possession.
    kind: ClassVar[bytes] = b"key"

    def __post_init__(self) -> None:
        if not 0 < self.secret < ORDER:
            raise ParameterError(f"a {type(self).__name__} secret must be in [1, n)")

    @classmethod
    def base(cls) -> Point:
        """The generator the public key is a multiple of."""
        raise NotImplementedError

    @classmethod
    def generate(cls, rng: ScalarSource = random_scalar) -> Self:
        """A fresh key from the OS CSPRNG (``rng`` only for reproducible tests)."""
        return cls(rng())

    @property
    def public(self) -> Point:
        """``secret·base()``."""
        return self.base() * self.secret

    def to_bytes(self) -> bytes:
        """The 32-byte secret (keep it encrypted at rest)."""
        return scalar_to_bytes(self.secret)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Parse a 32-byte canonical secret."""
        return cls(scalar_from_bytes(data))
