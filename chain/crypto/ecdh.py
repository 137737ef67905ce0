"""Ephemeral elliptic-curve Diffie–Hellman on the SM2 curve.

The secure peer channel (:mod:`chain.net`) agrees on fresh traffic keys for every
connection: each side draws an ephemeral scalar ``d`` in ``[1, n-1]``, sends ``d·G`` and
computes ``d·Q`` from the peer's point ``Q``.  The shared secret is the 32-byte
x-coordinate of that product (as in SEC 1 ECDH).  The SM2 curve has cofactor 1, so a
point that decodes, lies on the curve and is not the point at infinity has full order
``n``: there are no small-subgroup points to refuse beyond those checks, which
:meth:`EphemeralKey.exchange` makes before multiplying.

The arithmetic is OpenSSL's (``EC_POINT_mul`` with one point uses a constant-time ladder);
OpenSSL 3.0 offers no ``EVP_PKEY_derive`` for SM2 keys (measured in ``docs/protocol.md``).

Examples
--------
>>> a, b = EphemeralKey.generate(), EphemeralKey.generate()
>>> a.exchange(b.public_bytes) == b.exchange(a.public_bytes)
True
"""

from __future__ import annotations

import secrets
from typing import Final

from chain.crypto import _openssl
from chain.crypto.errors import KeyFormatError
from chain.crypto.sm2 import N

PUBLIC_SIZE: Final = 65
SECRET_SIZE: Final = 32


class EphemeralKey:
    """A one-use SM2-curve key pair for key agreement (never for signatures).

    Parameters
    ----------
    scalar : int
        The secret, ``1 <= scalar <= n-1``.  Use :meth:`generate`; a fixed scalar is
        only for reproducing test vectors.

    Examples
    --------
    >>> key = EphemeralKey(1)
    >>> key.public_bytes.hex()[:10]
    '0432c4ae2c'
    """

    __slots__ = ("_scalar", "public_bytes")

    def __init__(self, scalar: int) -> None:
        if not isinstance(scalar, int) or isinstance(scalar, bool) or not 1 <= scalar < N:
            raise KeyFormatError("an ephemeral SM2 scalar is an integer in [1, n-1]")
        self._scalar = scalar.to_bytes(32, "big")
        self.public_bytes: bytes = _openssl.base_mul(self._scalar)

    @classmethod
    def generate(cls) -> EphemeralKey:
        """Draw a fresh key from the operating system's CSPRNG (:mod:`secrets`).

        Examples
        --------
        >>> len(EphemeralKey.generate().public_bytes)
        65
        """
        return cls(secrets.randbelow(N - 1) + 1)

    def exchange(self, peer_public: bytes) -> bytes:
        """Return the 32-byte shared secret with the peer's uncompressed point.

        Raises
        ------
        KeyFormatError
            ``peer_public`` is not 65 bytes ``04 || X || Y``, is not on the curve, or is
            the point at infinity.

        Examples
        --------
        >>> EphemeralKey(2).exchange(EphemeralKey(3).public_bytes) == \\
        ...     EphemeralKey(6).public_bytes[1:33]
        True
        """
        if not isinstance(peer_public, (bytes, bytearray)) or len(peer_public) != PUBLIC_SIZE:
            raise KeyFormatError(f"an ephemeral SM2 public key is {PUBLIC_SIZE} bytes 04 || X || Y")
        if peer_public[0] != 4:
            raise KeyFormatError("an ephemeral SM2 public key must be uncompressed (first byte 04)")
        product = _openssl.point_mul(bytes(peer_public), self._scalar)
        if product is None:
            raise KeyFormatError("the peer's ephemeral key is not a point on the SM2 curve")
        return product[1 : 1 + SECRET_SIZE]

    def __repr__(self) -> str:
        return f"EphemeralKey(public={self.public_bytes[:9].hex()}…)"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("ephemeral keys are not picklable")
