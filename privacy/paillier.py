"""Paillier (``phe`` + ``gmpy2``) for linear aggregates: keys, key files, slot packing.

* Keys: the regulator's key is 3072 bits by default, never below 2048. Foreign public
  keys are validated (:func:`validate_public_key`) before anyone encrypts under them.
* Key files: the private key is stored encrypted at rest as a sealed secret of kind
  ``rongxin-paillier-private-key`` (:mod:`chain.crypto.sealed`: scrypt + SM4-GCM, the
  modulus in the clear, the header bound as associated data).
* Packing (:class:`SlotLayout`): many slot values share one plaintext. Each agency encodes
  a slot value ``v`` with ``|v| < 2**b`` as ``v + 2**b`` (so it is positive), in a slot of
  ``w = b + 1 + ceil(log2 A) + 8`` bits for ``A`` agencies; the sum of ``A`` encodings is
  below ``2**(b + 1 + ceil(log2 A))``, so slots never carry into each other, and the top
  8 bits of every slot and the top 40 bits of every plaintext must decrypt to zero — a
  tampered or wrong-key ciphertext fails that check except with probability < 2**-40.
* Release: the aggregator multiplies ciphertexts (adds plaintexts) without decrypting and
  re-randomizes the result (``c * r**n mod n**2``) before it leaves.

Examples
--------
>>> pk, sk = generate_keypair(2048)
>>> layout = SlotLayout.plan(value_bits=30, agencies=3, modulus_bits=2048, n_values=4)
>>> cts = [encrypt_packed(pk, [5, -2, 0, 7], layout) for _ in range(3)]
>>> decrypt_packed(sk, [rerandomize(pk, c) for c in combine(pk, cts)], layout)
[15, -6, 0, 21]
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gmpy2
import phe
from phe import PaillierPrivateKey as PrivateKey
from phe import PaillierPublicKey as PublicKey
from phe import util as phe_util

from chain.crypto import sealed, sm3
from chain.crypto.errors import CryptoError
from chain.crypto.sealed import DEFAULT_SCRYPT_N
from privacy.errors import CiphertextError, KeyValidationError, OverflowRisk

MIN_BITS = 2048
DEFAULT_BITS = 3072
MAX_BITS = 8192
SLOT_GUARD = 8
TOP_GUARD = 40
KEY_FORMAT = "rongxin-paillier-private-key"
_SMALL_PRIMES = [p for p in range(3, 20000, 2) if all(p % d for d in range(3, int(p**0.5) + 1, 2))]
_SMALL_PRODUCT = math.prod(_SMALL_PRIMES)


def generate_keypair(bits: int = DEFAULT_BITS) -> tuple[PublicKey, PrivateKey]:
    """A fresh Paillier key pair with a ``bits``-bit modulus (≥ 2048)."""
    if not MIN_BITS <= bits <= MAX_BITS:
        raise KeyValidationError(f"a Paillier modulus has {MIN_BITS}..{MAX_BITS} bits; {bits} asked")
    pk, sk = phe.generate_paillier_keypair(n_length=bits)
    return pk, sk


def validate_public_key(pk: Any, min_bits: int = MIN_BITS) -> PublicKey:
    """Check a foreign public key: size, g = n + 1, odd, not a perfect square, no small factors."""
    if not isinstance(pk, PublicKey):
        raise KeyValidationError(f"expected a Paillier public key, got {type(pk).__name__}")
    n = pk.n
    if not isinstance(n, int) or n.bit_length() < min_bits:
        raise KeyValidationError(
            f"Paillier modulus has {getattr(n, 'bit_length', lambda: 0)()} bits; "
            f"at least {min_bits} are required"
        )
    if n.bit_length() > MAX_BITS:
        raise KeyValidationError(f"Paillier modulus has more than {MAX_BITS} bits")
    if pk.g != n + 1:
        raise KeyValidationError("Paillier generator must be g = n + 1 (other generators are refused)")
    if n % 2 == 0:
        raise KeyValidationError("Paillier modulus is even; it must be a product of two large odd primes")
    if math.gcd(n, _SMALL_PRODUCT) != 1:
        raise KeyValidationError("Paillier modulus has a small prime factor; refusing the key")
    if gmpy2.is_square(n) or gmpy2.is_prime(n):
        raise KeyValidationError(
            "Paillier modulus is a square or a prime; it must be a product of two primes"
        )
    return pk


def public_key_to_bytes(pk: PublicKey) -> bytes:
    """Big-endian modulus."""
    return int(pk.n).to_bytes((int(pk.n).bit_length() + 7) // 8, "big")


def public_key_from_bytes(data: bytes) -> PublicKey:
    """Parse and validate a modulus."""
    if not isinstance(data, bytes) or not MIN_BITS // 8 <= len(data) <= MAX_BITS // 8:
        raise KeyValidationError("a Paillier public key is a 256..1024-byte modulus")
    return validate_public_key(PublicKey(int.from_bytes(data, "big")))


def fingerprint(pk: PublicKey) -> bytes:
    """SM3 of the modulus: names the key in messages and the audit trail."""
    return sm3(public_key_to_bytes(pk))


# --- key files ---------------------------------------------------------------------------------


def _key_file_error(exc: CryptoError) -> KeyValidationError:
    return KeyValidationError(str(exc))


def encrypt_private_key(sk: PrivateKey, password: str, *, scrypt_n: int = DEFAULT_SCRYPT_N) -> bytes:
    """Serialize ``sk`` as a sealed file (:mod:`chain.crypto.sealed`: scrypt + SM4-GCM, JSON).

    Examples
    --------
    >>> _, sk = generate_keypair(2048)
    >>> back = decrypt_private_key(encrypt_private_key(sk, "pw", scrypt_n=1024), "pw")
    >>> (back.p, back.q) == (sk.p, sk.q)
    True
    """
    secret = json.dumps({"p": format(sk.p, "x"), "q": format(sk.q, "x")}).encode()
    try:
        public = {"n": format(sk.public_key.n, "x")}
        return sealed.seal(secret, password, KEY_FORMAT, public=public, scrypt_n=scrypt_n)
    except CryptoError as exc:
        raise _key_file_error(exc) from None


def decrypt_private_key(blob: bytes, password: str) -> PrivateKey:
    """Open a Paillier key file; :class:`KeyValidationError` on a wrong password or damage.

    Files in the layout written before the sealed format (``"format":
    "rongxin-paillier-private-key"``, version 1) still open.
    """
    try:
        doc = sealed.load_document(blob, KEY_FORMAT)
        if doc.get("format") == KEY_FORMAT:
            secret = sealed.open_json_v1(doc, password, KEY_FORMAT, compact_aad=False)
            n_hex = doc.get("n")
        else:
            secret = sealed.open_sealed(blob, password, KEY_FORMAT)
            n_hex = sealed.read_header(blob, KEY_FORMAT).public.get("n")
    except CryptoError as exc:
        raise _key_file_error(exc) from None
    try:
        factors = json.loads(secret)
        n, p, q = int(str(n_hex), 16), int(factors["p"], 16), int(factors["q"], 16)
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyValidationError(f"damaged Paillier key file: {exc}") from None
    if p * q != n:
        raise KeyValidationError("Paillier key file is inconsistent: p * q does not equal n")
    pk = validate_public_key(PublicKey(n))
    return PrivateKey(pk, p, q)


def save_private_key(
    sk: PrivateKey, path: str | os.PathLike[str], password: str, *, overwrite: bool = True, **kw: int
) -> None:
    """Write an encrypted key file atomically with mode 0600 (``overwrite=False``: refuse an existing one)."""
    try:
        sealed.write_key_file(path, encrypt_private_key(sk, password, **kw), KEY_FORMAT, overwrite=overwrite)
    except CryptoError as exc:
        raise _key_file_error(exc) from None


def load_private_key(path: str | os.PathLike[str], password: str) -> PrivateKey:
    """Read and open a key file written by :func:`save_private_key`."""
    try:
        blob = sealed.read_key_file(path, "Paillier key")
    except CryptoError as exc:
        raise _key_file_error(exc) from None
    return decrypt_private_key(blob, password)


# --- packing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotLayout:
    """How ``n_values`` slot values are packed into ciphertexts (see the module docstring)."""

    value_bits: int
    agencies: int
    slot_bits: int
    slots_per_ciphertext: int
    n_values: int

    @classmethod
    def plan(cls, value_bits: int, agencies: int, modulus_bits: int, n_values: int) -> SlotLayout:
        """Choose slot widths; :class:`OverflowRisk` if one slot cannot fit in a plaintext."""
        if agencies < 1 or n_values < 1 or value_bits < 1:
            raise OverflowRisk("a layout needs at least one agency, one value and one bit")
        slot_bits = value_bits + 1 + max(1, (agencies - 1).bit_length()) + SLOT_GUARD
        per = (modulus_bits - 1 - TOP_GUARD) // slot_bits
        if per < 1:
            raise OverflowRisk(
                f"a slot needs {slot_bits} bits but a {modulus_bits}-bit plaintext has room for "
                f"{modulus_bits - 1 - TOP_GUARD}; narrow the declared bounds or use a larger key"
            )
        return cls(value_bits, agencies, slot_bits, per, n_values)

    @property
    def n_ciphertexts(self) -> int:
        """Ciphertexts needed for all values."""
        return -(-self.n_values // self.slots_per_ciphertext)

    def pack(self, values: Sequence[int]) -> list[int]:
        """Encode one agency's values (|v| < 2**value_bits) into plaintext integers."""
        if len(values) != self.n_values:
            raise OverflowRisk(f"expected {self.n_values} slot values, got {len(values)}")
        bound = 1 << self.value_bits
        out = []
        for start in range(0, self.n_values, self.slots_per_ciphertext):
            acc = 0
            chunk = values[start : start + self.slots_per_ciphertext]
            for i, v in enumerate(chunk):
                v = int(v)
                if not -bound < v < bound:
                    raise OverflowRisk(
                        f"slot value of {v.bit_length()} bits exceeds the query's {self.value_bits}-bit "
                        "bound (declared bounds or row limit violated); the query is refused"
                    )
                acc |= (v + bound) << (i * self.slot_bits)
            out.append(acc)
        return out

    def unpack(self, plaintexts: Sequence[int]) -> list[int]:
        """Decode summed plaintexts into the summed values, checking every guard bit."""
        if len(plaintexts) != self.n_ciphertexts:
            raise CiphertextError(f"expected {self.n_ciphertexts} ciphertexts, got {len(plaintexts)}")
        mask = (1 << self.slot_bits) - 1
        offset = self.agencies << self.value_bits
        limit = 1 << (self.slot_bits - SLOT_GUARD)
        out: list[int] = []
        for j, m in enumerate(plaintexts):
            count = min(self.slots_per_ciphertext, self.n_values - j * self.slots_per_ciphertext)
            if m >> (count * self.slot_bits):
                raise CiphertextError(
                    f"ciphertext {j} decrypts outside the slot layout (guard bits set): it was "
                    "tampered with or encrypted under another key; discard the result and re-run"
                )
            for i in range(count):
                s = (m >> (i * self.slot_bits)) & mask
                if s >= limit:
                    raise CiphertextError(
                        f"slot {i} of ciphertext {j} overflowed its guard bits: tampered ciphertext "
                        "or wrong key; discard the result and re-run"
                    )
                out.append(s - offset)
        return out


def check_ciphertext(pk: PublicKey, c: int) -> int:
    """Range and unit check: 0 < c < n**2 and gcd(c, n) = 1."""
    if not isinstance(c, int) or not 0 < c < pk.nsquare or gmpy2.gcd(c, pk.n) != 1:
        raise CiphertextError("ciphertext is not an element of Z*_{n^2}: malformed or tampered")
    return c


def encrypt_packed(pk: PublicKey, values: Sequence[int], layout: SlotLayout) -> list[int]:
    """Pack and encrypt one agency's values (fresh randomness per ciphertext)."""
    return [int(pk.raw_encrypt(m)) for m in layout.pack(values)]


def encrypt_unpacked(pk: PublicKey, values: Sequence[int]) -> list[int]:
    """Plain ``phe``: one ciphertext per value (exponent 0, integers only)."""
    return [int(pk.encrypt(int(v)).ciphertext(be_secure=False)) for v in values]


def combine(pk: PublicKey, contributions: Sequence[Sequence[int]]) -> list[int]:
    """Homomorphic sum of each position across contributions (never decrypts)."""
    if not contributions:
        raise CiphertextError("nothing to combine")
    width = len(contributions[0])
    if any(len(c) != width for c in contributions):
        raise CiphertextError("contributions have different numbers of ciphertexts")
    out = []
    for j in range(width):
        acc = gmpy2.mpz(1)
        for contrib in contributions:
            acc = gmpy2.mpz(phe_util.mulmod(acc, check_ciphertext(pk, contrib[j]), pk.nsquare))
        out.append(int(acc))
    return out


def rerandomize(pk: PublicKey, c: int) -> int:
    """``c * r**n mod n**2`` for a fresh random unit ``r``: same plaintext, unlinkable ciphertext."""
    r = secrets.randbelow(pk.n - 2) + 2
    return int(phe_util.mulmod(check_ciphertext(pk, c), phe_util.powmod(r, pk.n, pk.nsquare), pk.nsquare))


def decrypt_packed(sk: PrivateKey, cts: Sequence[int], layout: SlotLayout) -> list[int]:
    """Decrypt and unpack summed ciphertexts."""
    return layout.unpack([int(sk.raw_decrypt(check_ciphertext(sk.public_key, c))) for c in cts])


def decrypt_unpacked(sk: PrivateKey, cts: Sequence[int], bound: int) -> list[int]:
    """Decrypt plain-phe ciphertexts; values outside ``(-bound, bound)`` mean tampering or a wrong key."""
    out = []
    for c in cts:
        v = int(sk.decrypt(phe.EncryptedNumber(sk.public_key, check_ciphertext(sk.public_key, c), 0)))
        if not -bound < v < bound:
            raise CiphertextError(
                "a ciphertext decrypts to a value outside the query's bound: it was tampered with or "
                "encrypted under another key; discard the result and re-run"
            )
        out.append(v)
    return out


__all__ = [
    "DEFAULT_BITS",
    "MIN_BITS",
    "PrivateKey",
    "PublicKey",
    "SlotLayout",
    "check_ciphertext",
    "combine",
    "decrypt_packed",
    "decrypt_private_key",
    "decrypt_unpacked",
    "encrypt_packed",
    "encrypt_private_key",
    "encrypt_unpacked",
    "fingerprint",
    "generate_keypair",
    "load_private_key",
    "public_key_from_bytes",
    "public_key_to_bytes",
    "rerandomize",
    "save_private_key",
    "validate_public_key",
]
