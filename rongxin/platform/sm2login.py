"""Sign-in with an SM2 key: the one-time challenge text, public keys and signatures (pure).

A user who registered an SM2 public key may sign in by signing a challenge the platform
issues: a short text naming the platform, the site's origin, the user, a 32-byte nonce
from the OS and an expiry. The platform keeps the challenge bound to the browser's
session, accepts it once (a second use, successful or not, is refused) and only until it
expires (:data:`CHALLENGE_S`). The browser has no SM2, so the user signs the text with
their encrypted key file (``rongxin platform sign-challenge --key me.key``) and pastes
the signature. Signatures are SM2 with SM3 and the standard user id
``1234567812345678`` over the UTF-8 text, given as 64-byte ``r‖s`` hex or DER hex.

Examples
--------
>>> from chain.crypto import PrivateKey
>>> key = PrivateKey.generate()
>>> text = challenge_text("county", "http://127.0.0.1:8480", "li", "ab" * 32, 0)
>>> text.splitlines()[0], text.splitlines()[3]
('rongxin-platform-sign-in v1', 'user: li')
>>> signature_ok(key.public_key, text, sign_challenge(key, text))
True
>>> signature_ok(key.public_key, text.replace("li", "wu"), sign_challenge(key, text))
False
"""

from __future__ import annotations

import time

from chain.crypto import PrivateKey, PublicKey
from chain.crypto.errors import CryptoError
from chain.crypto.sm2 import signature_from_der
from rongxin.platform.config import PlatformError

CHALLENGE_S = 120
"""How long a challenge can be answered."""
HEADER = "rongxin-platform-sign-in v1"
MAX_SIGNATURE_TEXT = 400
MAX_KEY_TEXT = 2000


class Sm2LoginError(PlatformError):
    """A public key or signature given for SM2 sign-in is malformed (the message says how)."""


def _rfc3339(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def challenge_text(platform: str, origin: str, user: str, nonce_hex: str, expires_ms: int) -> str:
    """The text the user signs (no trailing newline)."""
    return "\n".join(
        (
            HEADER,
            f"platform: {platform}",
            f"origin: {origin}",
            f"user: {user}",
            f"nonce: {nonce_hex}",
            f"expires: {_rfc3339(expires_ms)}",
        )
    )


def parse_public_key(text: str) -> PublicKey:
    """An SM2 public key from PEM or hex (65-byte uncompressed or 33-byte compressed point).

    Raises
    ------
    Sm2LoginError
        Not a valid SM2 public key.
    """
    text = text.strip()
    if not text or len(text) > MAX_KEY_TEXT:
        raise Sm2LoginError("an SM2 public key is a PEM block or 66/130 hex digits")
    try:
        if text.startswith("-----BEGIN"):
            return PublicKey.from_pem(text)
        return PublicKey.from_bytes(bytes.fromhex("".join(text.split())))
    except (CryptoError, ValueError) as exc:
        raise Sm2LoginError(f"not an SM2 public key: {exc}") from None


def parse_signature(text: str) -> bytes:
    """A 64-byte ``r‖s`` signature from hex of ``r‖s`` or of DER.

    Raises
    ------
    Sm2LoginError
        Not hex, or neither form.
    """
    cleaned = "".join(text.split()).lower()
    if not cleaned or len(cleaned) > MAX_SIGNATURE_TEXT:
        raise Sm2LoginError("a signature is 128 hex digits (r‖s) or hex DER")
    try:
        raw = bytes.fromhex(cleaned)
    except ValueError:
        raise Sm2LoginError("a signature is hex digits only") from None
    if len(raw) == 64:
        return raw
    try:
        return signature_from_der(raw)
    except CryptoError as exc:
        raise Sm2LoginError(f"not an SM2 signature: {exc}") from None


def sign_challenge(key: PrivateKey, text: str) -> str:
    """The hex ``r‖s`` signature of a challenge text (what the command prints)."""
    return key.sign(text.encode("utf-8")).hex()


def signature_ok(public: PublicKey, text: str, signature_hex: str) -> bool:
    """Whether ``signature_hex`` is ``public``'s signature of ``text`` (malformed: ``False``)."""
    try:
        public.verify(text.encode("utf-8"), parse_signature(signature_hex))
    except (Sm2LoginError, CryptoError):
        return False
    return True
