"""Errors of the national-crypto layer.

Each failure mode has its own class so that callers (and tests) can tell a malformed
signature from a forged one, a truncated ciphertext from a wrong password.  Every class
derives from :class:`CryptoError`, itself a :class:`chain.errors.ChainError`.
"""

from __future__ import annotations

from chain.errors import ChainError


class CryptoError(ChainError):
    """Root of every error raised by :mod:`chain.crypto`."""


class BackendError(CryptoError):
    """The cryptographic backend (system OpenSSL 3) is missing or failed unexpectedly."""


class KeyFormatError(CryptoError):
    """A key could not be decoded: wrong length, bad encoding, or a point off the curve."""


class WrongKeyTypeError(CryptoError, TypeError):
    """An object of the wrong kind was passed where a specific key type is required."""


class InvalidSignature(CryptoError):
    """A signature does not verify for this message, key and user ID."""


class SignatureFormatError(InvalidSignature):
    """A signature is malformed: wrong length, or r or s outside ``[1, n-1]``."""


class DecryptionError(CryptoError):
    """A ciphertext could not be decrypted: it was modified, truncated or the key is wrong."""


class CiphertextFormatError(DecryptionError):
    """A ciphertext is structurally invalid (too short, bad header, bad point)."""


class WrongPasswordError(DecryptionError):
    """A password-protected key file could not be opened with the given password."""


class KeyFileError(CryptoError):
    """A key file is unreadable, of an unknown format, or uses unsupported parameters."""


class WrongKindError(KeyFileError):
    """A sealed file holds another kind of secret than the one asked for (e.g. an auditor
    key given where an SM2 private key is expected)."""
