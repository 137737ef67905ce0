"""SM3 hash (GB/T 32905-2016), HMAC-SM3 and the SM3 key-derivation function.

The backend is OpenSSL: :mod:`hashlib` when the interpreter's OpenSSL offers ``sm3``
(lowest per-call overhead, which matters for Merkle trees of small leaves), otherwise the
``cryptography`` package, which always ships SM3.  Both run at the same bulk speed
(≈390 MB/s on the reference machine, see ``docs/benchmarks.md``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from typing import BinaryIO, Protocol

from cryptography.hazmat.primitives import hashes

from chain.crypto.errors import CryptoError

DIGEST_SIZE = 32
BLOCK_SIZE = 64
_CHUNK = 1 << 20


class _HashObject(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...
    def digest(self) -> bytes: ...
    def copy(self) -> _HashObject: ...


def _hashlib_has_sm3() -> bool:
    try:
        return hashlib.new("sm3", b"abc").hexdigest().startswith("66c7f0f4")
    except (ValueError, TypeError):
        return False


HASHLIB_SM3 = _hashlib_has_sm3()


class _CryptographySM3:
    """Adapter giving ``cryptography``'s SM3 the hashlib interface."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: hashes.Hash | None = None) -> None:
        self._ctx = ctx if ctx is not None else hashes.Hash(hashes.SM3())

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        self._ctx.update(data)

    def digest(self) -> bytes:
        return self._ctx.copy().finalize()

    def copy(self) -> _CryptographySM3:
        return _CryptographySM3(self._ctx.copy())


def _new() -> _HashObject:
    if HASHLIB_SM3:
        return hashlib.new("sm3")
    return _CryptographySM3()


class SM3:
    """Incremental SM3 hasher with the familiar ``update``/``digest`` interface.

    Parameters
    ----------
    data : bytes, optional
        Initial data to hash.

    Examples
    --------
    >>> h = SM3(b"a").update(b"bc")
    >>> h.hexdigest()[:16]
    '66c7f0f462eeedd9'
    """

    digest_size = DIGEST_SIZE
    block_size = BLOCK_SIZE
    name = "sm3"

    __slots__ = ("_h",)

    def __init__(self, data: bytes | bytearray | memoryview = b"") -> None:
        self._h = _new()
        if data:
            self.update(data)

    def update(self, data: bytes | bytearray | memoryview) -> SM3:
        """Feed more bytes; returns ``self`` so calls can be chained."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CryptoError(f"SM3 hashes bytes, not {type(data).__name__}")
        self._h.update(data)
        return self

    def update_stream(self, stream: BinaryIO, chunk_size: int = _CHUNK) -> SM3:
        """Feed everything left in a binary stream, ``chunk_size`` bytes at a time."""
        view = memoryview(bytearray(chunk_size))
        while n := stream.readinto(view):  # type: ignore[attr-defined]
            self._h.update(view[:n])
        return self

    def digest(self) -> bytes:
        """Return the 32-byte digest of everything fed so far (the hasher stays usable)."""
        return self._h.digest()

    def hexdigest(self) -> str:
        """Return :meth:`digest` as lowercase hex."""
        return self.digest().hex()

    def copy(self) -> SM3:
        """Return an independent copy of the current state."""
        other = SM3.__new__(SM3)
        other._h = self._h.copy()
        return other


def sm3(data: bytes | bytearray | memoryview) -> bytes:
    """Hash ``data`` with SM3 in one call.

    Examples
    --------
    >>> sm3(b"abc").hex()[:16]
    '66c7f0f462eeedd9'
    """
    if _FRESH is not None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CryptoError(f"SM3 hashes bytes, not {type(data).__name__}")
        h = _FRESH.copy()  # copying a fresh context skips hashlib's lookup of the algorithm by name
        h.update(data)
        return h.digest()
    return SM3(data).digest()


_FRESH = hashlib.new("sm3") if HASHLIB_SM3 else None


def sm3_concat(parts: Iterable[bytes]) -> bytes:
    """Hash the concatenation of ``parts`` without building it in memory."""
    h = SM3()
    for part in parts:
        h.update(part)
    return h.digest()


def sm3_stream(stream: BinaryIO, chunk_size: int = _CHUNK) -> bytes:
    """Hash a binary stream in constant memory (``chunk_size`` bytes at a time)."""
    return SM3().update_stream(stream, chunk_size).digest()


def sm3_file(path: str | os.PathLike[str], chunk_size: int = _CHUNK) -> bytes:
    """Hash a file of any size in constant memory.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "f"; _ = p.write_bytes(b"abc")
    >>> sm3_file(p) == sm3(b"abc")
    True
    """
    try:
        with open(path, "rb") as fh:
            return sm3_stream(fh, chunk_size)
    except OSError as exc:
        raise CryptoError(f"cannot read {os.fspath(path)!r} to hash it: {exc.strerror}") from exc


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """HMAC (RFC 2104) with SM3.

    Examples
    --------
    >>> len(hmac_sm3(b"key", b"message"))
    32
    """
    if not isinstance(key, (bytes, bytearray)) or not isinstance(data, (bytes, bytearray, memoryview)):
        raise CryptoError("HMAC-SM3 takes a bytes key and bytes data")
    if HASHLIB_SM3:
        return hmac.new(key, data, "sm3").digest()
    return _hmac_generic(bytes(key), bytes(data))


def _hmac_generic(key: bytes, data: bytes) -> bytes:
    if len(key) > BLOCK_SIZE:
        key = sm3(key)
    key = key.ljust(BLOCK_SIZE, b"\0")
    inner = sm3(bytes(k ^ 0x36 for k in key) + data)
    return sm3(bytes(k ^ 0x5C for k in key) + inner)


def hmac_sm3_verify(key: bytes, data: bytes, tag: bytes) -> bool:
    """Check an HMAC-SM3 tag in constant time."""
    return hmac.compare_digest(hmac_sm3(key, data), tag)


def sm3_kdf(z: bytes, length: int) -> bytes:
    """The key-derivation function of GB/T 32918.4 §5.4.3 (counter mode over SM3).

    ``K = SM3(Z || ct=1) || SM3(Z || ct=2) || ...`` truncated to ``length`` bytes, with a
    32-bit big-endian counter.  This is the KDF used inside SM2 encryption; use it to
    derive keys from shared secrets (never directly from passwords — see
    :func:`chain.crypto.keyfile` for the password KDF).

    Parameters
    ----------
    z : bytes
        Shared secret input.
    length : int
        Output length in bytes, ``0 < length < 32 * 2**32``.

    Examples
    --------
    >>> sm3_kdf(b"secret", 48)[:32] == sm3(b"secret" + (1).to_bytes(4, "big"))
    True
    """
    if length <= 0 or length >= DIGEST_SIZE * (2**32 - 1):
        raise CryptoError(f"SM3-KDF output length must be positive and < 2^32 blocks, got {length}")
    out = bytearray()
    counter = 1
    while len(out) < length:
        out += sm3(z + counter.to_bytes(4, "big"))
        counter += 1
    return bytes(out[:length])
