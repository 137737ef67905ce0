"""Thin ctypes binding to the system OpenSSL 3 (``libcrypto.so.3``) for SM2.

Only what SM2 needs is bound: building an ``EVP_PKEY`` of type SM2 from raw key bytes,
scalar multiplication of the base point (public key from private key), point decoding
with on-curve checks, and the SM2 provider's raw sign/verify (on a precomputed
``e = SM3(Z || M)``) and encrypt/decrypt.  OpenSSL is Debian-maintained (``libssl3``);
we measured it faster at verification than the alternatives (``docs/crypto.md``).

Nothing here is public API: :mod:`chain.crypto.sm2` wraps it with validation and
clear errors.  Every OpenSSL object is freed by its Python owner; the OpenSSL error queue
is drained after each failed call so that errors never leak between calls.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import Callable, Iterator, Sequence
from ctypes import POINTER, byref, c_char_p, c_int, c_size_t, c_uint, c_ulong, c_void_p
from typing import cast

from chain.crypto.errors import BackendError

NID_SM2 = 1172
_POINT_CONVERSION_UNCOMPRESSED = 4
_OSSL_PARAM_UNSIGNED_INTEGER = 2
_OSSL_PARAM_UTF8_STRING = 4
_OSSL_PARAM_OCTET_STRING = 5
_EVP_PKEY_KEYPAIR = 0x87
_EVP_PKEY_PUBLIC_KEY = 0x86


class _OsslParam(ctypes.Structure):
    _fields_ = [
        ("key", c_char_p),
        ("data_type", c_uint),
        ("data", c_void_p),
        ("data_size", c_size_t),
        ("return_size", c_size_t),
    ]


def _load() -> ctypes.CDLL:
    names = ["libcrypto.so.3", ctypes.util.find_library("crypto") or ""]
    last: OSError | None = None
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            last = exc
            continue
        lib.OpenSSL_version_num.restype = c_ulong
        if lib.OpenSSL_version_num() >> 28 < 3:
            continue
        return lib
    raise BackendError(
        "OpenSSL 3 (libcrypto.so.3) is required for SM2 but was not found; on Debian run "
        f"'apt-get install libssl3' ({last})"
    )


_lib = _load()
# The same library through a handle whose calls keep Python's GIL: for the calls that take
# microseconds. Each call through ``_lib`` releases the GIL and takes it back afterwards,
# which, while another thread runs Python, waits for that thread's switch interval and
# costs a thread switch (docs/benchmarks.md); only the elliptic-curve work, hundreds of
# microseconds, is worth it.
_held = ctypes.PyDLL(_lib._name)


def _bind(name: str, restype: object, *argtypes: object) -> None:
    for lib in (_lib, _held):
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = list(argtypes)


_bind("ERR_get_error", c_ulong)
_bind("ERR_error_string_n", None, c_ulong, c_char_p, c_size_t)
_bind("ERR_clear_error", None)
_bind("BN_bin2bn", c_void_p, c_char_p, c_int, c_void_p)
_bind("BN_free", None, c_void_p)
_bind("BN_clear_free", None, c_void_p)
_bind("EC_GROUP_new_by_curve_name", c_void_p, c_int)
_bind("EC_POINT_new", c_void_p, c_void_p)
_bind("EC_POINT_free", None, c_void_p)
_bind("EC_POINT_mul", c_int, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p)
_bind("EC_POINT_oct2point", c_int, c_void_p, c_void_p, c_char_p, c_size_t, c_void_p)
_bind("EC_POINT_point2oct", c_size_t, c_void_p, c_void_p, c_int, c_char_p, c_size_t, c_void_p)
_bind("EC_POINT_is_at_infinity", c_int, c_void_p, c_void_p)
_bind("EC_POINT_is_on_curve", c_int, c_void_p, c_void_p, c_void_p)
_bind("EVP_PKEY_CTX_new_from_name", c_void_p, c_void_p, c_char_p, c_char_p)
_bind("EVP_PKEY_CTX_new_from_pkey", c_void_p, c_void_p, c_void_p, c_char_p)
_bind("EVP_PKEY_CTX_free", None, c_void_p)
_bind("EVP_PKEY_fromdata_init", c_int, c_void_p)
_bind("EVP_PKEY_fromdata", c_int, c_void_p, POINTER(c_void_p), c_int, POINTER(_OsslParam))
_bind("EVP_PKEY_free", None, c_void_p)
_bind("EVP_PKEY_sign_init", c_int, c_void_p)
_bind("EVP_PKEY_sign", c_int, c_void_p, c_char_p, POINTER(c_size_t), c_char_p, c_size_t)
_bind("EVP_PKEY_verify_init", c_int, c_void_p)
_bind("EVP_PKEY_verify", c_int, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t)
_bind("EVP_PKEY_encrypt_init", c_int, c_void_p)
_bind("EVP_PKEY_encrypt", c_int, c_void_p, c_char_p, POINTER(c_size_t), c_char_p, c_size_t)
_bind("EVP_PKEY_decrypt_init", c_int, c_void_p)
_bind("EVP_PKEY_decrypt", c_int, c_void_p, c_char_p, POINTER(c_size_t), c_char_p, c_size_t)

_POOL = 4
"""Idle operation contexts kept per key (one per thread that uses the key at a time)."""


def _load_many() -> Callable[..., int] | None:
    from chain import _native

    path = _native.library("chain.crypto._verify_many")
    if path is None:
        return None
    try:
        fn = ctypes.CDLL(str(path)).rx_sm2_verify_many
    except (OSError, AttributeError):
        return None
    fn.restype = c_int
    fn.argtypes = [c_void_p, c_void_p, c_int, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p]
    return cast(Callable[..., int], fn)


_MANY = _load_many()
"""``rx_sm2_verify_many`` of the project's C helper (:mod:`chain._native`), or ``None``."""
_VERIFY_FN = ctypes.cast(_lib.EVP_PKEY_verify, c_void_p)
_CLEAR_FN = ctypes.cast(_lib.ERR_clear_error, c_void_p)

_GROUP = _lib.EC_GROUP_new_by_curve_name(NID_SM2)
if not _GROUP:
    raise BackendError("the system OpenSSL was built without the SM2 curve")


def openssl_error() -> str:
    """Drain the OpenSSL error queue and return its messages joined by '; '."""
    msgs = []
    buf = ctypes.create_string_buffer(256)
    while True:
        code = _held.ERR_get_error()
        if not code:
            break
        _held.ERR_error_string_n(code, buf, len(buf))
        msgs.append(buf.value.decode(errors="replace"))
    return "; ".join(msgs) or "unknown OpenSSL error"


def clear_errors() -> None:
    """Discard pending OpenSSL errors."""
    _held.ERR_clear_error()


def verify_many(jobs: Sequence[tuple[PKey, bytes, bytes]]) -> list[bool]:
    """Verify each ``(key, e, der_sig)`` (``e`` 32 bytes) as :meth:`PKey.verify_digest`
    does, in one call into OpenSSL that releases the GIL once (the project's C helper),
    or one call each when the helper is not built."""
    n = len(jobs)
    if _MANY is None or n < 2:
        return [key.verify_digest(e, der) for key, e, der in jobs]
    taken: dict[int, tuple[PKey, int]] = {}
    ctxs = (c_void_p * n)()
    sigs = (c_char_p * n)()
    lengths = (c_size_t * n)()
    digests = (c_char_p * n)()
    ok = (ctypes.c_ubyte * n)()
    try:
        for i, (key, e, der) in enumerate(jobs):
            if len(e) != 32:
                raise BackendError("an SM2 digest e is 32 bytes")
            held = taken.get(id(key))
            if held is None:  # one context per key: the helper uses it for each of its jobs in turn
                held = taken[id(key)] = (
                    key,
                    key._take(key._verify_ctxs, _held.EVP_PKEY_verify_init, "verify"),
                )
            ctxs[i] = held[1]
            sigs[i] = der
            lengths[i] = len(der)
            digests[i] = e
        _MANY(_VERIFY_FN, _CLEAR_FN, n, ctxs, sigs, lengths, digests, ok)
    finally:
        for key, ctx in taken.values():
            key._give(key._verify_ctxs, ctx)
    return [bool(x) for x in ok]


def decode_point(encoded: bytes) -> bytes | None:
    """Decode an SM2 point (compressed or uncompressed) and return it uncompressed.

    Returns ``None`` when the bytes are not a valid point on the curve, or encode the
    point at infinity.
    """
    point = _lib.EC_POINT_new(_GROUP)
    try:
        if _lib.EC_POINT_oct2point(_GROUP, point, encoded, len(encoded), None) != 1:
            clear_errors()
            return None
        if _lib.EC_POINT_is_at_infinity(_GROUP, point) or not _lib.EC_POINT_is_on_curve(_GROUP, point, None):
            clear_errors()
            return None
        out = ctypes.create_string_buffer(65)
        n = _lib.EC_POINT_point2oct(_GROUP, point, _POINT_CONVERSION_UNCOMPRESSED, out, 65, None)
        if n != 65:
            raise BackendError(f"EC_POINT_point2oct failed: {openssl_error()}")
        return out.raw
    finally:
        _lib.EC_POINT_free(point)


def base_mul(scalar: bytes) -> bytes:
    """Return ``scalar * G`` on the SM2 curve, uncompressed (65 bytes)."""
    bn = _lib.BN_bin2bn(scalar, len(scalar), None)
    point = _lib.EC_POINT_new(_GROUP)
    try:
        if not bn or not point or _lib.EC_POINT_mul(_GROUP, point, bn, None, None, None) != 1:
            raise BackendError(f"EC_POINT_mul failed: {openssl_error()}")
        out = ctypes.create_string_buffer(65)
        n = _lib.EC_POINT_point2oct(_GROUP, point, _POINT_CONVERSION_UNCOMPRESSED, out, 65, None)
        if n != 65:
            raise BackendError(f"EC_POINT_point2oct failed: {openssl_error()}")
        return out.raw
    finally:
        _lib.BN_clear_free(bn)
        _lib.EC_POINT_free(point)


class PKey:
    """Owner of one OpenSSL ``EVP_PKEY`` of type SM2 (freed on garbage collection).

    Signing and verification contexts are initialised once and kept (a few per key, each
    used by one thread at a time: taken from and given back to a list, whose ``pop`` and
    ``append`` are atomic), so that an operation costs one call into OpenSSL.
    """

    __slots__ = ("__weakref__", "_ptr", "_sign_ctxs", "_verify_ctxs")

    def __init__(self, public: bytes, private: bytes | None = None) -> None:
        self._ptr = c_void_p()
        self._sign_ctxs: list[int] = []
        self._verify_ctxs: list[int] = []
        ctx = _lib.EVP_PKEY_CTX_new_from_name(None, b"SM2", None)
        if not ctx:
            raise BackendError(f"OpenSSL has no SM2 key manager: {openssl_error()}")
        group = ctypes.create_string_buffer(b"SM2")
        pub = ctypes.create_string_buffer(public, len(public))
        params = (_OsslParam * 4)()
        params[0] = _OsslParam(b"group", _OSSL_PARAM_UTF8_STRING, ctypes.cast(group, c_void_p), 3, 0)
        params[1] = _OsslParam(b"pub", _OSSL_PARAM_OCTET_STRING, ctypes.cast(pub, c_void_p), len(public), 0)
        selection = _EVP_PKEY_PUBLIC_KEY
        priv = None
        if private is not None:
            # OSSL_PARAM integers are native-endian (little-endian on every platform we run).
            priv = ctypes.create_string_buffer(private[::-1], len(private))
            params[2] = _OsslParam(
                b"priv", _OSSL_PARAM_UNSIGNED_INTEGER, ctypes.cast(priv, c_void_p), len(private), 0
            )
            selection = _EVP_PKEY_KEYPAIR
        try:
            if (
                _lib.EVP_PKEY_fromdata_init(ctx) != 1
                or _lib.EVP_PKEY_fromdata(ctx, byref(self._ptr), selection, params) != 1
            ):
                raise BackendError(f"EVP_PKEY_fromdata failed: {openssl_error()}")
        finally:
            if priv is not None:
                ctypes.memset(priv, 0, len(private or b""))
            _lib.EVP_PKEY_CTX_free(ctx)

    def __del__(self) -> None:
        for pool in (getattr(self, "_sign_ctxs", ()), getattr(self, "_verify_ctxs", ())):
            while pool:
                _held.EVP_PKEY_CTX_free(pool.pop())
        ptr = getattr(self, "_ptr", None)
        if ptr is not None and ptr.value:
            _held.EVP_PKEY_free(ptr)
            self._ptr = c_void_p()

    def _ctx(self) -> int:
        ctx = _held.EVP_PKEY_CTX_new_from_pkey(None, self._ptr, None)
        if not ctx:
            raise BackendError(f"EVP_PKEY_CTX_new_from_pkey failed: {openssl_error()}")
        return int(ctx)

    def _take(self, pool: list[int], init: Callable[[int], int], what: str) -> int:
        """An idle context of ``pool``, or a new one initialised by ``init``."""
        try:
            return pool.pop()
        except IndexError:
            pass
        ctx = self._ctx()
        if init(ctx) != 1:
            _held.EVP_PKEY_CTX_free(ctx)
            raise BackendError(f"SM2 {what} init failed: {openssl_error()}")
        return ctx

    @staticmethod
    def _give(pool: list[int], ctx: int) -> None:
        if len(pool) < _POOL:
            pool.append(ctx)
        else:
            _held.EVP_PKEY_CTX_free(ctx)

    @contextlib.contextmanager
    def _kept(self, pool: list[int], init: Callable[[int], int], what: str) -> Iterator[int]:
        """A context of ``pool`` for one operation: given back after it, freed if it raised
        (a context an operation failed in is not used again)."""
        ctx = self._take(pool, init, what)
        try:
            yield ctx
        except BaseException:
            _held.EVP_PKEY_CTX_free(ctx)
            raise
        self._give(pool, ctx)

    def sign_digest(self, e: bytes) -> bytes:
        """Sign the 32-byte ``e`` (already SM3(Z || M)); returns a DER signature."""
        out = ctypes.create_string_buffer(80)
        n = c_size_t(len(out))
        with self._kept(self._sign_ctxs, _held.EVP_PKEY_sign_init, "sign") as ctx:
            if _lib.EVP_PKEY_sign(ctx, out, byref(n), e, len(e)) != 1:
                raise BackendError(f"SM2 signing failed: {openssl_error()}")
        return out.raw[: n.value]

    def verify_digest(self, e: bytes, der_sig: bytes) -> bool:
        """Verify a DER signature over the 32-byte ``e``. Never raises on a bad signature."""
        with self._kept(self._verify_ctxs, _held.EVP_PKEY_verify_init, "verify") as ctx:
            ok = bool(_lib.EVP_PKEY_verify(ctx, der_sig, len(der_sig), e, len(e)) == 1)
        if not ok:
            clear_errors()
        return ok

    def encrypt(self, plaintext: bytes) -> bytes:
        """SM2-encrypt (SM3 digest); returns OpenSSL's ASN.1 ``SM2Cipher`` DER."""
        ctx = self._ctx()
        try:
            n = c_size_t(0)
            if (
                _lib.EVP_PKEY_encrypt_init(ctx) != 1
                or _lib.EVP_PKEY_encrypt(ctx, None, byref(n), plaintext, len(plaintext)) != 1
            ):
                raise BackendError(f"SM2 encryption failed: {openssl_error()}")
            out = ctypes.create_string_buffer(n.value)
            if _lib.EVP_PKEY_encrypt(ctx, out, byref(n), plaintext, len(plaintext)) != 1:
                raise BackendError(f"SM2 encryption failed: {openssl_error()}")
            return out.raw[: n.value]
        finally:
            _lib.EVP_PKEY_CTX_free(ctx)

    def decrypt(self, der_ciphertext: bytes) -> bytes | None:
        """Decrypt an ASN.1 ``SM2Cipher``; ``None`` when OpenSSL rejects it."""
        ctx = self._ctx()
        try:
            n = c_size_t(0)
            if _lib.EVP_PKEY_decrypt_init(ctx) != 1:
                raise BackendError(f"SM2 decrypt init failed: {openssl_error()}")
            if _lib.EVP_PKEY_decrypt(ctx, None, byref(n), der_ciphertext, len(der_ciphertext)) != 1:
                clear_errors()
                return None
            out = ctypes.create_string_buffer(max(n.value, 1))
            if _lib.EVP_PKEY_decrypt(ctx, out, byref(n), der_ciphertext, len(der_ciphertext)) != 1:
                clear_errors()
                return None
            return out.raw[: n.value]
        finally:
            _lib.EVP_PKEY_CTX_free(ctx)


def point_mul(point: bytes, scalar: bytes) -> bytes | None:
    """Return ``scalar * P`` for the SM2 point ``P`` (any encoding), uncompressed.

    OpenSSL multiplies a single point with its constant-time Montgomery ladder.  Returns
    ``None`` when ``point`` is not a valid point on the curve, is the point at infinity,
    or the product is the point at infinity.
    """
    p = _lib.EC_POINT_new(_GROUP)
    r = _lib.EC_POINT_new(_GROUP)
    bn = _lib.BN_bin2bn(scalar, len(scalar), None)
    try:
        if not p or not r or not bn:
            raise BackendError(f"OpenSSL allocation failed: {openssl_error()}")
        if _lib.EC_POINT_oct2point(_GROUP, p, point, len(point), None) != 1:
            clear_errors()
            return None
        if _lib.EC_POINT_is_at_infinity(_GROUP, p) or _lib.EC_POINT_is_on_curve(_GROUP, p, None) != 1:
            clear_errors()
            return None
        if _lib.EC_POINT_mul(_GROUP, r, None, p, bn, None) != 1:
            raise BackendError(f"EC_POINT_mul failed: {openssl_error()}")
        if _lib.EC_POINT_is_at_infinity(_GROUP, r):
            return None
        out = ctypes.create_string_buffer(65)
        n = _lib.EC_POINT_point2oct(_GROUP, r, _POINT_CONVERSION_UNCOMPRESSED, out, 65, None)
        if n != 65:
            raise BackendError(f"EC_POINT_point2oct failed: {openssl_error()}")
        return out.raw
    finally:
        _lib.BN_clear_free(bn)
        _lib.EC_POINT_free(p)
        _lib.EC_POINT_free(r)
