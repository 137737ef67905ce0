"""Password-protected SM2 private-key files.

A key file is a sealed secret (:mod:`chain.crypto.sealed`, documented in
``docs/crypto.md``) of kind ``rongxin-sm2-private-key``: the PKCS#8 DER of the key under
scrypt + SM4-GCM, the public key in the clear (``"public": {"public_key": "04…"}``) so a
file can be identified unopened. Files are written atomically with mode 0600.

Key files written before the sealed format (``"format": "rongxin-sm2-private-key"``,
version 1) still open; saving the key again writes the sealed format.
"""

from __future__ import annotations

import logging
import os

from chain.crypto import sealed
from chain.crypto.errors import KeyFileError, WrongKeyTypeError
from chain.crypto.sealed import DEFAULT_SCRYPT_N, MAX_FILE_BYTES, MAX_SCRYPT_COST, MAX_SCRYPT_N, MIN_SCRYPT_N
from chain.crypto.sm2 import PrivateKey

KIND = "rongxin-sm2-private-key"
FORMAT = KIND
"""The ``format`` of key files written before the sealed format (now the sealed ``kind``)."""

_log = logging.getLogger(__name__)


def encrypt_private_key(key: PrivateKey, password: str | bytes, *, scrypt_n: int = DEFAULT_SCRYPT_N) -> bytes:
    """Serialize ``key`` encrypted under ``password``; returns the file's bytes.

    Parameters
    ----------
    key : PrivateKey
        Key to protect.
    password : str or bytes
        Non-empty password.
    scrypt_n : int
        scrypt cost (a power of two, at least 1024). The default, 2**17, takes about
        0.3 s and 128 MiB; lower values are only for tests.

    Examples
    --------
    >>> k = PrivateKey.generate()
    >>> blob = encrypt_private_key(k, "pw", scrypt_n=1024)
    >>> decrypt_private_key(blob, "pw") == k
    True
    """
    if not isinstance(key, PrivateKey):
        raise WrongKeyTypeError(f"only an SM2 PrivateKey can be saved here, not {type(key).__name__}")
    public = {"public_key": key.public_key.to_bytes().hex()}
    return sealed.seal(key.to_der(), password, KIND, public=public, scrypt_n=scrypt_n)


def decrypt_private_key(blob: bytes | str, password: str | bytes) -> PrivateKey:
    """Open a key file's contents with ``password``.

    Raises
    ------
    KeyFileError
        Not a Rongxin SM2 key file (another kind of sealed file included), unsupported
        version or parameters, damaged.
    WrongPasswordError
        Wrong password, or the file was modified.
    """
    doc = sealed.load_document(blob, KIND)
    if doc.get("format") == FORMAT:
        _log.info("opening an SM2 key file in the layout before the sealed format; save it again to convert")
        der = sealed.open_json_v1(doc, password, KIND, compact_aad=True)
        public_hex = doc.get("public_key")
    else:
        der = sealed.open_sealed(blob, password, KIND)
        public_hex = sealed.read_header(blob, KIND).public.get("public_key")
    key = PrivateKey.from_der(der)
    if key.public_key.to_bytes().hex() != public_hex:
        raise KeyFileError("key file is inconsistent: its public key does not match the private key")
    return key


def save_private_key(
    key: PrivateKey,
    path: str | os.PathLike[str],
    password: str | bytes,
    *,
    scrypt_n: int = DEFAULT_SCRYPT_N,
    overwrite: bool = True,
) -> None:
    """Write ``key`` encrypted to ``path`` atomically, readable by the owner only (0600).

    With ``overwrite=False`` an existing ``path`` is refused (:class:`KeyFileError`)."""
    sealed.write_key_file(
        path, encrypt_private_key(key, password, scrypt_n=scrypt_n), KIND, overwrite=overwrite
    )


def load_private_key(path: str | os.PathLike[str], password: str | bytes) -> PrivateKey:
    """Read and decrypt a key file written by :func:`save_private_key`."""
    return decrypt_private_key(sealed.read_key_file(path, KIND), password)


def read_public_key_hex(path: str | os.PathLike[str]) -> str:
    """Return the public key recorded in a key file without asking for the password."""
    data = sealed.read_key_file(path, KIND)
    doc = sealed.load_document(data, KIND)
    if doc.get("format") == FORMAT and isinstance(doc.get("public_key"), str):
        return str(doc["public_key"])
    try:
        return sealed.read_header(data, KIND).public["public_key"]
    except KeyError:
        raise KeyFileError(f"cannot read the public key of {os.fspath(path)!r}: none recorded") from None


__all__ = [
    "DEFAULT_SCRYPT_N",
    "KIND",
    "MAX_FILE_BYTES",
    "MAX_SCRYPT_COST",
    "MAX_SCRYPT_N",
    "MIN_SCRYPT_N",
    "decrypt_private_key",
    "encrypt_private_key",
    "load_private_key",
    "read_public_key_hex",
    "save_private_key",
]
