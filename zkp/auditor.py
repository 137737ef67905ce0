"""Encryption of amounts to the auditor (regulator): twisted ElGamal over 16-bit limbs.

The auditor's key pair is ``(a, A = a·h)`` with ``h`` the Pedersen blinding base. An amount
``v < 2⁶⁴`` is split into four 16-bit limbs ``lⱼ``; each limb gets a fresh ``rⱼ`` and

* ``Cⱼ = lⱼ·g + rⱼ·h`` — a Pedersen commitment (the ciphertext's first half), and
* ``Dⱼ = rⱼ·A`` — the decryption handle.

The amount's commitment is ``C = Σ 2¹⁶ʲ·Cⱼ`` (a Pedersen commitment to ``v`` with blinding
``Σ 2¹⁶ʲ·rⱼ``), so encryption and commitment agree by construction once a proof shows that
each ``Dⱼ`` uses the ``rⱼ`` of ``Cⱼ`` (:mod:`zkp.transfer` proves it, and that each limb is
16-bit). The auditor computes ``Cⱼ − a⁻¹·Dⱼ = lⱼ·g`` and recovers ``lⱼ`` by baby-step
giant-step over ``[0, 2¹⁶)`` (≤ 256 + 256 steps). Why limbs: a discrete log of a 64-bit
value is out of reach, of a 16-bit one is immediate. Without ``a`` the pair reveals
nothing (DDH in secp256k1).

Examples
--------
>>> key = AuditorKey.generate()
>>> enc = encrypt_amount(70_000, key.public)
>>> key.decrypt(enc.commitments, enc.handles)
70000
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

from chain.crypto import sealed, sm4
from chain.crypto.errors import CryptoError, KeyFileError
from zkp.errors import DecryptionError, ParameterError, ZkpError
from zkp.group import ORDER, Point, ScalarSource, SecretKey, random_scalar
from zkp.pedersen import pedersen_gens

LIMB_BITS = 16
LIMBS = 4
AMOUNT_BITS = LIMB_BITS * LIMBS
_STEP = 1 << (LIMB_BITS // 2)


@dataclass(frozen=True)
class EncryptedAmount:
    """Limb commitments, handles and (for the prover only) the limb openings."""

    commitments: tuple[Point, ...]
    handles: tuple[Point, ...]
    limbs: tuple[int, ...] = ()
    blindings: tuple[int, ...] = ()

    def commitment(self) -> Point:
        """The amount's Pedersen commitment ``Σ 2¹⁶ʲ·Cⱼ``."""
        return combine_limbs(self.commitments)

    def blinding(self) -> int:
        """The amount commitment's blinding (prover side)."""
        return sum(r << (LIMB_BITS * j) for j, r in enumerate(self.blindings)) % ORDER


def combine_limbs(limbs: Sequence[Point]) -> Point:
    """``Σ 2¹⁶ʲ·limbs[j]``."""
    acc = Point.identity()
    for limb in reversed(limbs):
        acc = acc * (1 << LIMB_BITS) + limb
    return acc


def split_limbs(value: int) -> list[int]:
    """The four 16-bit limbs of a 64-bit amount, least significant first.

    Examples
    --------
    >>> split_limbs(0x0001000200030004)
    [4, 3, 2, 1]
    """
    if not 0 <= value < 1 << AMOUNT_BITS:
        raise ParameterError(f"amount {value} is not in [0, 2^{AMOUNT_BITS})")
    return [(value >> (LIMB_BITS * j)) & ((1 << LIMB_BITS) - 1) for j in range(LIMBS)]


def encrypt_amount(value: int, auditor: Point, rng: ScalarSource = random_scalar) -> EncryptedAmount:
    """Commit to ``value`` limb by limb and encrypt each limb to ``auditor``."""
    if auditor.is_identity():
        raise ParameterError("the auditor key cannot be the identity")
    ped = pedersen_gens()
    limbs = split_limbs(value)
    blindings = [rng() for _ in limbs]
    commitments = tuple(ped.commit(v, r) for v, r in zip(limbs, blindings, strict=True))
    handles = tuple(auditor * r for r in blindings)
    return EncryptedAmount(commitments, handles, tuple(limbs), tuple(blindings))


@cache
def _baby_steps() -> dict[bytes, int]:
    g = pedersen_gens().g
    table, acc = {}, Point.identity()
    for i in range(_STEP):
        table[acc.encode()] = i
        acc = acc + g
    return table


def _small_log(target: Point) -> int:
    table = _baby_steps()
    giant = -(pedersen_gens().g * _STEP)
    acc = target
    for j in range(_STEP):
        found = table.get(acc.encode())
        if found is not None:
            return j * _STEP + found
        acc = acc + giant
    raise DecryptionError(
        "limb does not decrypt to a 16-bit value: wrong auditor key, or a ciphertext not made for it"
    )


class AuditorKey(SecretKey):
    """The auditor's secret ``a`` and public key ``A = a·h`` (``h``: the Pedersen blinding base)."""

    kind: ClassVar[bytes] = b"auditor"

    @classmethod
    def base(cls) -> Point:
        """``h``."""
        return pedersen_gens().h

    def decrypt(self, commitments: Sequence[Point], handles: Sequence[Point]) -> int:
        """Recover an amount from its limb ciphertexts; :class:`DecryptionError` if it fails."""
        if len(commitments) != LIMBS or len(handles) != LIMBS:
            raise DecryptionError(f"an encrypted amount has {LIMBS} limbs")
        inv = pow(self.secret, -1, ORDER)
        value = 0
        for j, (c, d) in enumerate(zip(commitments, handles, strict=True)):
            value += _small_log(c - d * inv) << (LIMB_BITS * j)
        return value


KEY_FILE_KIND = "rongxin-zkp-auditor-key"


def seal_auditor_key(key: AuditorKey, password: str, *, scrypt_n: int = sealed.DEFAULT_SCRYPT_N) -> bytes:
    """A password-protected key file: a sealed secret (:mod:`chain.crypto.sealed`, scrypt +
    SM4-GCM) of kind ``rongxin-zkp-auditor-key``, the public key in the clear.

    Examples
    --------
    >>> key = AuditorKey.generate()
    >>> open_auditor_key(seal_auditor_key(key, "pw", scrypt_n=1024), "pw") == key
    True
    """
    public = {"public_key": key.public.encode().hex()}
    try:
        return sealed.seal(key.to_bytes(), password, KEY_FILE_KIND, public=public, scrypt_n=scrypt_n)
    except CryptoError as exc:
        raise ParameterError(str(exc)) from None


def _open_hex_layout(doc: dict[str, Any], password: str) -> tuple[bytes, str]:
    """The secret and public key of a file in the layout written before the sealed format
    (``kind``, ``public``, ``salt``, ``n``, ``sealed``, hex; associated data ``kind:public``)."""
    try:
        public = str(doc["public"])
        box = bytes.fromhex(doc["sealed"])
        salt = bytes.fromhex(doc["salt"])
        n = int(doc["n"])
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyFileError(f"damaged {KEY_FILE_KIND} file: missing or invalid field ({exc})") from None
    secret = sealed.decrypt_with_password(
        password,
        kind=KEY_FILE_KIND,
        salt=salt,
        n=n,
        r=8,
        p=1,
        nonce=box[: sm4.NONCE_SIZE],
        body=box[sm4.NONCE_SIZE :],
        aad=f"{KEY_FILE_KIND}:{public}".encode(),
    )
    return secret, public


def open_auditor_key(blob: bytes, password: str) -> AuditorKey:
    """Open :func:`seal_auditor_key`'s output; :class:`DecryptionError` for a wrong password or file.

    Files in the layout written before the sealed format still open.
    """
    try:
        doc = sealed.load_document(blob, KEY_FILE_KIND)
        if "format" not in doc and doc.get("kind") == KEY_FILE_KIND:
            secret, public = _open_hex_layout(doc, password)
        else:
            secret = sealed.open_sealed(blob, password, KEY_FILE_KIND)
            public = sealed.read_header(blob, KEY_FILE_KIND).public.get("public_key", "")
        key = AuditorKey.from_bytes(secret)
    except CryptoError as exc:
        raise DecryptionError(f"cannot open auditor key file: {exc}") from None
    except ZkpError as exc:
        raise DecryptionError(f"cannot open auditor key file (damaged secret): {exc}") from None
    if key.public.encode().hex() != public:
        raise DecryptionError("auditor key file's public key does not match its secret")
    return key
