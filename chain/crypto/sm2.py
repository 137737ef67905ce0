"""SM2 public-key cryptography (GB/T 32918-2016) on the recommended 256-bit curve.

* Keys: :class:`PrivateKey` (scalar ``d`` drawn from :mod:`secrets`, ``1 <= d <= n-2``)
  and :class:`PublicKey` (a validated curve point).  Raw formats: 32-byte big-endian
  scalar; 65-byte uncompressed point ``04 || X || Y`` (33-byte compressed accepted on
  input).  Standard formats: PKCS#8 / SubjectPublicKeyInfo DER and PEM (as written by
  ``openssl genpkey -algorithm SM2``).
* Signatures: ``e = SM3(Z_A || M)`` with ``Z_A = SM3(ENTL || ID || a || b || xG || yG ||
  xA || yA)`` and the default user ID ``1234567812345678`` (GM/T 0009); any other ID can
  be passed.  Signatures are 64 bytes, ``r || s`` big-endian.
* Encryption: output in the current standard order ``C1 || C3 || C2`` with
  ``C1 = 04 || x1 || y1`` (65 bytes), ``C3`` the 32-byte SM3 check value, ``C2`` the
  masked message.

The arithmetic runs in the system OpenSSL 3 (see :mod:`chain.crypto._openssl`).  This
module validates every input and turns every failure into a :class:`CryptoError`
subclass; a bad signature never verifies and never crashes the process.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from chain.crypto import _der, _openssl
from chain.crypto.errors import (
    CiphertextFormatError,
    CryptoError,
    DecryptionError,
    InvalidSignature,
    KeyFormatError,
    SignatureFormatError,
    WrongKeyTypeError,
)
from chain.crypto.sm3 import SM3, sm3

DEFAULT_USER_ID: Final = b"1234567812345678"
SIGNATURE_SIZE: Final = 64
PUBLIC_KEY_SIZE: Final = 65
PRIVATE_KEY_SIZE: Final = 32
C1_SIZE: Final = 65
C3_SIZE: Final = 32
MAX_USER_ID_BYTES: Final = 8191  # ENTL is a 16-bit count of *bits*


@dataclass(frozen=True)
class Curve:
    """Short-Weierstrass curve ``y^2 = x^3 + a x + b`` over ``F_p`` with base point of order n."""

    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int

    @property
    def size(self) -> int:
        """Byte length of field elements and scalars."""
        return (self.p.bit_length() + 7) // 8

    def contains(self, x: int, y: int) -> bool:
        """Whether the affine point ``(x, y)`` is on the curve."""
        if not (0 <= x < self.p and 0 <= y < self.p):
            return False
        return (y * y - (x * x * x + self.a * x + self.b)) % self.p == 0


SM2_CURVE: Final = Curve(
    p=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF,
    a=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC,
    b=0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93,
    gx=0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    gy=0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
    n=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123,
)
N: Final = SM2_CURVE.n

# DER object identifiers: id-ecPublicKey (1.2.840.10045.2.1) and sm2 (1.2.156.10197.1.301).
_OID_EC_PUBLIC_KEY: Final = _der.tlv(_der.OID, bytes.fromhex("2a8648ce3d0201"))
_OID_SM2: Final = _der.tlv(_der.OID, bytes.fromhex("2a811ccf5501822d"))
_ALGORITHM: Final = _der.sequence(_OID_EC_PUBLIC_KEY, _OID_SM2)

_VERIFICATIONS = [0]
_MISMATCH: Final = "SM2 signature does not match this message, key and user ID"


def verifications() -> int:
    """SM2 signature verifications done by this process (a metric; not thread-exact)."""
    return _VERIFICATIONS[0]


def _check_user_id(user_id: bytes) -> bytes:
    if isinstance(user_id, str):
        user_id = user_id.encode()
    if not isinstance(user_id, (bytes, bytearray)):
        raise CryptoError(f"an SM2 user ID is bytes, not {type(user_id).__name__}")
    if len(user_id) > MAX_USER_ID_BYTES:
        raise CryptoError(f"an SM2 user ID is at most {MAX_USER_ID_BYTES} bytes")
    return bytes(user_id)


def z_value(public_point: bytes, user_id: bytes = DEFAULT_USER_ID, curve: Curve = SM2_CURVE) -> bytes:
    """Compute ``Z_A = SM3(ENTL || ID || a || b || xG || yG || xA || yA)`` (GB/T 32918.2 §5.5).

    Parameters
    ----------
    public_point : bytes
        Uncompressed public point ``04 || X || Y`` on ``curve``.
    user_id : bytes
        Distinguishing identifier of the signer.
    curve : Curve
        Curve parameters; the recommended SM2 curve unless testing the standard's
        examples on its test curve.

    Examples
    --------
    >>> k = PrivateKey.generate()
    >>> len(z_value(k.public_key.to_bytes()))
    32
    """
    user_id = _check_user_id(user_id)
    size = curve.size
    if len(public_point) != 1 + 2 * size or public_point[0] != 4:
        raise KeyFormatError("Z is computed over an uncompressed point 04 || X || Y")
    entl = (len(user_id) * 8).to_bytes(2, "big")
    return sm3(
        entl
        + user_id
        + curve.a.to_bytes(size, "big")
        + curve.b.to_bytes(size, "big")
        + curve.gx.to_bytes(size, "big")
        + curve.gy.to_bytes(size, "big")
        + public_point[1:]
    )


def _decode_signature(signature: bytes) -> tuple[int, int]:
    if not isinstance(signature, (bytes, bytearray)):
        raise SignatureFormatError(f"an SM2 signature is 64 bytes, not a {type(signature).__name__}")
    if len(signature) != SIGNATURE_SIZE:
        raise SignatureFormatError(
            f"an SM2 signature is {SIGNATURE_SIZE} bytes (r || s), got {len(signature)}"
        )
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not 1 <= r < N:
        raise SignatureFormatError("SM2 signature component r is outside [1, n-1]")
    if not 1 <= s < N:
        raise SignatureFormatError("SM2 signature component s is outside [1, n-1]")
    return r, s


def signature_to_der(signature: bytes) -> bytes:
    """Convert a 64-byte ``r || s`` signature to ASN.1 DER ``SEQUENCE {r, s}``."""
    r, s = _decode_signature(signature)
    return _der.sequence(_der.integer(r), _der.integer(s))


def signature_from_der(der: bytes) -> bytes:
    """Convert an ASN.1 DER signature to the 64-byte ``r || s`` form."""
    try:
        items = _der.read_all(_der.read_single(bytes(der), _der.SEQUENCE))
        if len(items) != 2 or any(tag != _der.INTEGER for tag, _ in items):
            raise ValueError("expected two INTEGERs")
        r, s = (_der.parse_integer(v) for _, v in items)
    except ValueError as exc:
        raise SignatureFormatError(f"malformed DER SM2 signature: {exc}") from None
    if r >= N or s >= N:
        raise SignatureFormatError("SM2 signature component outside [1, n-1]")
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    _decode_signature(sig)
    return sig


def _pem(label: str, der: bytes) -> str:
    b64 = base64.encodebytes(der).decode().replace("\n", "")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def _unpem(label: str, text: str | bytes) -> bytes:
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise KeyFormatError(f"not a PEM {label}: non-ASCII bytes") from None
    begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
    start = text.find(begin)
    stop = text.find(end)
    if start < 0 or stop < start:
        raise KeyFormatError(f"not a PEM {label}: missing '{begin}' or '{end}'")
    body = "".join(text[start + len(begin) : stop].split())
    try:
        return base64.b64decode(body, validate=True)
    except ValueError:
        raise KeyFormatError(f"PEM {label} has invalid base64") from None


class PublicKey:
    """A validated SM2 public key.

    Examples
    --------
    >>> key = PrivateKey.generate()
    >>> pub = PublicKey.from_bytes(key.public_key.to_bytes())
    >>> pub.verify(b"hello", key.sign(b"hello"))
    """

    __slots__ = ("_pkey", "_point", "_z_cache")

    def __init__(self, point: bytes, *, _pkey: _openssl.PKey | None = None) -> None:
        self._point = point
        self._pkey = _pkey if _pkey is not None else _openssl.PKey(point)
        self._z_cache: dict[bytes, bytes] = {}

    # -- encoding ---------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes) -> PublicKey:
        """Decode a point: 65 bytes ``04||X||Y`` or 33 bytes compressed ``02/03||X``.

        Raises
        ------
        KeyFormatError
            Wrong length or prefix, coordinates out of range, or a point not on the curve.
        """
        if isinstance(data, (PublicKey, PrivateKey)):
            raise WrongKeyTypeError("PublicKey.from_bytes takes bytes, not a key object")
        if not isinstance(data, (bytes, bytearray)):
            raise KeyFormatError(f"an SM2 public key is bytes, not {type(data).__name__}")
        data = bytes(data)
        if len(data) == PUBLIC_KEY_SIZE and data[0] == 4:
            x = int.from_bytes(data[1:33], "big")
            y = int.from_bytes(data[33:], "big")
            if not SM2_CURVE.contains(x, y):
                raise KeyFormatError("SM2 public key: the point is not on the SM2 curve")
        elif len(data) == 33 and data[0] in (2, 3):
            if int.from_bytes(data[1:], "big") >= SM2_CURVE.p:
                raise KeyFormatError("SM2 public key: x coordinate is not below p")
        else:
            raise KeyFormatError(
                "an SM2 public key is 65 bytes starting 04 (or 33 bytes starting 02/03), "
                f"got {len(data)} bytes starting {data[:1].hex() or 'nothing'}"
            )
        point = _openssl.decode_point(data)
        if point is None:
            raise KeyFormatError("SM2 public key: the point is not on the SM2 curve")
        return cls(point)

    def to_bytes(self, compressed: bool = False) -> bytes:
        """Encode as 65 bytes ``04||X||Y`` (or 33 bytes when ``compressed``)."""
        if compressed:
            return bytes([2 + (self._point[-1] & 1)]) + self._point[1:33]
        return self._point

    def to_der(self) -> bytes:
        """SubjectPublicKeyInfo DER (``openssl pkey -pubin -inform DER`` reads it)."""
        return _der.sequence(_ALGORITHM, _der.tlv(_der.BIT_STRING, b"\x00" + self._point))

    def to_pem(self) -> str:
        """SubjectPublicKeyInfo PEM (``-----BEGIN PUBLIC KEY-----``)."""
        return _pem("PUBLIC KEY", self.to_der())

    @classmethod
    def from_der(cls, der: bytes) -> PublicKey:
        """Decode SubjectPublicKeyInfo DER with the SM2 curve OID."""
        try:
            items = _der.read_all(_der.read_single(bytes(der), _der.SEQUENCE))
            if len(items) != 2 or items[0][0] != _der.SEQUENCE or items[1][0] != _der.BIT_STRING:
                raise ValueError("expected AlgorithmIdentifier and BIT STRING")
            if _der.tlv(_der.SEQUENCE, items[0][1]) != _ALGORITHM:
                raise ValueError("the key is not on the SM2 curve (OID 1.2.156.10197.1.301)")
            bits = items[1][1]
            if not bits or bits[0] != 0:
                raise ValueError("BIT STRING with unused bits")
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"not an SM2 SubjectPublicKeyInfo: {exc}") from None
        return cls.from_bytes(bits[1:])

    @classmethod
    def from_pem(cls, pem: str | bytes) -> PublicKey:
        """Decode a ``PUBLIC KEY`` PEM block."""
        return cls.from_der(_unpem("PUBLIC KEY", pem))

    def key_id(self) -> str:
        """Hex SM3 digest of the uncompressed point: a stable identifier for this key."""
        return sm3(self._point).hex()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other._point == self._point

    def __hash__(self) -> int:
        return hash(self._point)

    def __repr__(self) -> str:
        return f"PublicKey({self.key_id()[:16]}…)"

    # -- signatures -------------------------------------------------------------------
    def z(self, user_id: bytes = DEFAULT_USER_ID) -> bytes:
        """``Z_A`` for this key and ``user_id`` (cached)."""
        user_id = _check_user_id(user_id)
        z = self._z_cache.get(user_id)
        if z is None:
            z = z_value(self._point, user_id)
            if len(self._z_cache) < 64:
                self._z_cache[user_id] = z
        return z

    def message_digest(self, message: bytes, user_id: bytes = DEFAULT_USER_ID) -> bytes:
        """``e = SM3(Z_A || M)``, the value that is actually signed."""
        if not isinstance(message, (bytes, bytearray, memoryview)):
            raise CryptoError(f"SM2 signs bytes, not {type(message).__name__}")
        return SM3(self.z(user_id)).update(bytes(message)).digest()

    def hasher(self, user_id: bytes = DEFAULT_USER_ID) -> SM3:
        """An SM3 hasher pre-fed with ``Z_A``: feed a large message, then pass
        ``digest()`` to :meth:`PrivateKey.sign_digest` / :meth:`verify_digest`."""
        return SM3(self.z(user_id))

    def verify(self, message: bytes, signature: bytes, user_id: bytes = DEFAULT_USER_ID) -> None:
        """Verify ``signature`` over ``message``.

        Raises
        ------
        SignatureFormatError
            The signature is not 64 bytes, or r or s is outside ``[1, n-1]``.
        InvalidSignature
            The signature is well-formed but does not match.
        """
        self.verify_digest(self.message_digest(message, user_id), signature)

    def verify_digest(self, e: bytes, signature: bytes) -> None:
        """Verify ``signature`` over a precomputed ``e = SM3(Z_A || M)``."""
        if not isinstance(e, (bytes, bytearray)) or len(e) != 32:
            raise CryptoError("the SM2 digest e is 32 bytes")
        der = signature_to_der(signature)
        _VERIFICATIONS[0] += 1
        if not self._pkey.verify_digest(bytes(e), der):
            raise InvalidSignature(_MISMATCH)

    def is_valid_signature(self, message: bytes, signature: bytes, user_id: bytes = DEFAULT_USER_ID) -> bool:
        """Like :meth:`verify` but returns ``False`` for any invalid or malformed signature."""
        try:
            self.verify(message, signature, user_id)
        except InvalidSignature:
            return False
        return True

    # -- encryption -------------------------------------------------------------------
    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt to this key; returns ``C1 || C3 || C2`` (97 + len(plaintext) bytes)."""
        if not isinstance(plaintext, (bytes, bytearray)):
            raise CryptoError(f"SM2 encrypts bytes, not {type(plaintext).__name__}")
        if not plaintext:
            raise CryptoError("SM2 cannot encrypt an empty message")
        der = self._pkey.encrypt(bytes(plaintext))
        try:
            items = _der.read_all(_der.read_single(der, _der.SEQUENCE))
            x = _der.parse_integer(items[0][1])
            y = _der.parse_integer(items[1][1])
            c3, c2 = items[2][1], items[3][1]
        except (ValueError, IndexError) as exc:  # pragma: no cover - OpenSSL output
            raise CryptoError(f"unexpected SM2 ciphertext from OpenSSL: {exc}") from None
        return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big") + c3 + c2


class PrivateKey:
    """An SM2 private key (scalar ``d`` with ``1 <= d <= n-2``) and its public key.

    The scalar is never logged or shown by ``repr``.

    Examples
    --------
    >>> key = PrivateKey.generate()
    >>> sig = key.sign(b"message")
    >>> key.public_key.is_valid_signature(b"message", sig)
    True
    >>> key.decrypt(key.public_key.encrypt(b"secret"))
    b'secret'
    """

    __slots__ = ("_d", "_pkey", "public_key")

    def __init__(self, d: int) -> None:
        if not isinstance(d, int) or not 1 <= d <= N - 2:
            raise KeyFormatError("an SM2 private key is an integer in [1, n-2]")
        self._d = d
        scalar = d.to_bytes(32, "big")
        point = _openssl.base_mul(scalar)
        self._pkey = _openssl.PKey(point, scalar)
        self.public_key = PublicKey(point)

    @classmethod
    def generate(cls) -> PrivateKey:
        """Draw a new key from the operating system's CSPRNG (:mod:`secrets`)."""
        return cls(secrets.randbelow(N - 2) + 1)

    @classmethod
    def from_bytes(cls, data: bytes) -> PrivateKey:
        """Decode a 32-byte big-endian scalar."""
        if isinstance(data, (PublicKey, PrivateKey)):
            raise WrongKeyTypeError("PrivateKey.from_bytes takes bytes, not a key object")
        if not isinstance(data, (bytes, bytearray)) or len(data) != PRIVATE_KEY_SIZE:
            raise KeyFormatError(f"an SM2 private key is {PRIVATE_KEY_SIZE} bytes")
        return cls(int.from_bytes(data, "big"))

    def to_bytes(self) -> bytes:
        """The 32-byte big-endian scalar. Handle with care: this is the secret."""
        return self._d.to_bytes(32, "big")

    def to_der(self) -> bytes:
        """Unencrypted PKCS#8 DER (as ``openssl genpkey -algorithm SM2 -outform DER``)."""
        inner = _der.sequence(
            _der.integer(1),
            _der.tlv(_der.OCTET_STRING, self.to_bytes()),
            _der.tlv(0xA1, _der.tlv(_der.BIT_STRING, b"\x00" + self.public_key.to_bytes())),
        )
        return _der.sequence(_der.integer(0), _ALGORITHM, _der.tlv(_der.OCTET_STRING, inner))

    def to_pem(self) -> str:
        """Unencrypted PKCS#8 PEM. Prefer :func:`chain.crypto.keyfile.save_private_key`."""
        return _pem("PRIVATE KEY", self.to_der())

    @classmethod
    def from_der(cls, der: bytes) -> PrivateKey:
        """Decode unencrypted PKCS#8 DER of an SM2 key; the embedded public key, if any,
        must match the scalar."""
        try:
            items = _der.read_all(_der.read_single(bytes(der), _der.SEQUENCE))
            if len(items) < 3 or items[0] != (_der.INTEGER, b"\x00"):
                raise ValueError("expected PKCS#8 version 0")
            if _der.tlv(items[1][0], items[1][1]) != _ALGORITHM:
                raise ValueError("the key is not on the SM2 curve (OID 1.2.156.10197.1.301)")
            if items[2][0] != _der.OCTET_STRING:
                raise ValueError("expected the ECPrivateKey OCTET STRING")
            inner = _der.read_all(_der.read_single(items[2][1], _der.SEQUENCE))
            if len(inner) < 2 or inner[0] != (_der.INTEGER, b"\x01") or inner[1][0] != _der.OCTET_STRING:
                raise ValueError("expected ECPrivateKey version 1 and the scalar")
            scalar = inner[1][1]
            embedded = None
            for tag, value in inner[2:]:
                if tag == 0xA0:
                    if value != _OID_SM2:
                        raise ValueError("ECPrivateKey parameters name another curve")
                elif tag == 0xA1:
                    bits = _der.read_single(value, _der.BIT_STRING)
                    if not bits or bits[0] != 0:
                        raise ValueError("public key BIT STRING with unused bits")
                    embedded = bits[1:]
                else:
                    raise ValueError(f"unexpected ECPrivateKey field {tag:#x}")
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"not an SM2 PKCS#8 private key: {exc}") from None
        if len(scalar) > 32:
            raise KeyFormatError("SM2 private scalar longer than 32 bytes")
        key = cls.from_bytes(scalar.rjust(32, b"\0"))
        if embedded is not None and PublicKey.from_bytes(embedded) != key.public_key:
            raise KeyFormatError("the public key embedded in the PKCS#8 file does not match the scalar")
        return key

    @classmethod
    def from_pem(cls, pem: str | bytes) -> PrivateKey:
        """Decode an unencrypted ``PRIVATE KEY`` PEM block."""
        return cls.from_der(_unpem("PRIVATE KEY", pem))

    def __repr__(self) -> str:
        return f"PrivateKey(public={self.public_key.key_id()[:16]}…)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PrivateKey) and secrets.compare_digest(other.to_bytes(), self.to_bytes())

    def __hash__(self) -> int:
        return hash(self.public_key)

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("SM2 private keys are not picklable; save them with chain.crypto.keyfile")

    def sign(self, message: bytes, user_id: bytes = DEFAULT_USER_ID) -> bytes:
        """Sign ``message`` (with ``Z_A`` for ``user_id``); returns 64 bytes ``r || s``."""
        return self.sign_digest(self.public_key.message_digest(message, user_id))

    def sign_digest(self, e: bytes) -> bytes:
        """Sign a precomputed ``e = SM3(Z_A || M)`` (see :meth:`PublicKey.hasher`)."""
        if not isinstance(e, (bytes, bytearray)) or len(e) != 32:
            raise CryptoError("the SM2 digest e is 32 bytes")
        return signature_from_der(self._pkey.sign_digest(bytes(e)))

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Decrypt ``C1 || C3 || C2``.

        Raises
        ------
        CiphertextFormatError
            Too short, C1 not an uncompressed point on the curve.
        DecryptionError
            The check value C3 does not match: modified ciphertext or wrong key.
        """
        if not isinstance(ciphertext, (bytes, bytearray)):
            raise CiphertextFormatError(f"an SM2 ciphertext is bytes, not {type(ciphertext).__name__}")
        ct = bytes(ciphertext)
        if len(ct) < C1_SIZE + C3_SIZE + 1:
            raise CiphertextFormatError(
                f"an SM2 ciphertext is at least {C1_SIZE + C3_SIZE + 1} bytes (C1 || C3 || C2), got {len(ct)}"
            )
        if ct[0] != 4:
            raise CiphertextFormatError(
                "SM2 ciphertext must start with an uncompressed C1 (byte 04); "
                "gmssl-style ciphertexts omit it and need b'\\x04' prepended"
            )
        x = int.from_bytes(ct[1:33], "big")
        y = int.from_bytes(ct[33:65], "big")
        if not SM2_CURVE.contains(x, y):
            raise CiphertextFormatError("SM2 ciphertext: C1 is not a point on the SM2 curve")
        c3, c2 = ct[65:97], ct[97:]
        der = _der.sequence(
            _der.integer(x),
            _der.integer(y),
            _der.tlv(_der.OCTET_STRING, c3),
            _der.tlv(_der.OCTET_STRING, c2),
        )
        plain = self._pkey.decrypt(der)
        if plain is None:
            raise DecryptionError("SM2 decryption failed: the ciphertext was modified or is for another key")
        return plain


def _need(key: object, cls: type, what: str) -> None:
    if not isinstance(key, cls):
        raise WrongKeyTypeError(f"{what} needs an SM2 {cls.__name__}, got {type(key).__name__}")


def sign(private_key: PrivateKey, message: bytes, user_id: bytes = DEFAULT_USER_ID) -> bytes:
    """Sign ``message``; see :meth:`PrivateKey.sign`."""
    _need(private_key, PrivateKey, "signing")
    return private_key.sign(message, user_id)


def verify(public_key: PublicKey, message: bytes, signature: bytes, user_id: bytes = DEFAULT_USER_ID) -> None:
    """Verify or raise :class:`InvalidSignature`; see :meth:`PublicKey.verify`."""
    _need(public_key, PublicKey, "verification")
    public_key.verify(message, signature, user_id)


def verify_many(
    jobs: Sequence[tuple[PublicKey, bytes, bytes]], user_id: bytes = DEFAULT_USER_ID
) -> list[CryptoError | None]:
    """Verify many ``(public_key, message, signature)`` at once; for each, ``None`` when
    the signature is valid, else the error :func:`verify` would raise
    (:class:`SignatureFormatError` or :class:`InvalidSignature`).

    The elliptic-curve work of the whole list runs in one call into OpenSSL that lets
    other Python threads run meanwhile, instead of one such call per signature: what a
    thread that verifies beside a busy event loop wants (``docs/benchmarks.md``).

    Raises
    ------
    WrongKeyTypeError
        A key is not a :class:`PublicKey`.

    Examples
    --------
    >>> key = PrivateKey.generate()
    >>> sig = key.sign(b"a")
    >>> [type(r).__name__ for r in verify_many([(key.public_key, b"a", sig), (key.public_key, b"b", sig)])]
    ['NoneType', 'InvalidSignature']
    """
    out: list[CryptoError | None] = [None] * len(jobs)
    checked: list[int] = []
    calls: list[tuple[_openssl.PKey, bytes, bytes]] = []
    for i, (key, message, signature) in enumerate(jobs):
        _need(key, PublicKey, "verification")
        try:
            der = signature_to_der(signature)
        except SignatureFormatError as exc:
            out[i] = exc
            continue
        checked.append(i)
        calls.append((key._pkey, key.message_digest(message, user_id), der))
    _VERIFICATIONS[0] += len(calls)
    for i, ok in zip(checked, _openssl.verify_many(calls), strict=True):
        if not ok:
            out[i] = InvalidSignature(_MISMATCH)
    return out


def encrypt(public_key: PublicKey, plaintext: bytes) -> bytes:
    """Encrypt to ``public_key``; see :meth:`PublicKey.encrypt`."""
    _need(public_key, PublicKey, "encryption")
    return public_key.encrypt(plaintext)


def decrypt(private_key: PrivateKey, ciphertext: bytes) -> bytes:
    """Decrypt with ``private_key``; see :meth:`PrivateKey.decrypt`."""
    _need(private_key, PrivateKey, "decryption")
    return private_key.decrypt(ciphertext)
