"""Password-protected SM2 private-key files.

Format (JSON, UTF-8; documented in ``docs/crypto.md``)::

    {
      "format": "rongxin-sm2-private-key",
      "version": 1,
      "public_key": "04…",                       # hex, so a file can be identified unopened
      "kdf": {"name": "scrypt", "n": 131072, "r": 8, "p": 1, "salt": "<base64 16 B>"},
      "cipher": "SM4-GCM",
      "nonce": "<base64 12 B>",
      "ciphertext": "<base64>"                    # SM4-GCM(key, PKCS#8 DER) || tag
    }

The SM4 key is the first 16 bytes of ``scrypt(password, salt, n, r, p)``; scrypt is a
memory-hard slow KDF from OpenSSL through ``cryptography``.  Every field but the
ciphertext is bound as associated data, so a file whose public key, KDF parameters or
cipher were edited fails exactly like a wrong password.  Files are written atomically
with mode 0600.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
from typing import Any

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from chain.crypto import sm4
from chain.crypto.errors import DecryptionError, KeyFileError, WrongKeyTypeError, WrongPasswordError
from chain.crypto.sm2 import PrivateKey

FORMAT = "rongxin-sm2-private-key"
VERSION = 1
DEFAULT_SCRYPT_N = 1 << 17
MIN_SCRYPT_N = 1 << 10
MAX_SCRYPT_N = 1 << 22
MAX_SCRYPT_COST = MAX_SCRYPT_N * 8
"""Largest ``n * r * p`` a key file may ask for: the costliest file this module writes
(``n = MAX_SCRYPT_N``, ``r = 8``, ``p = 1``, 4 GiB and a few seconds). Without it, a 1 KB
file asking for ``r = 32, p = 16`` would cost 16 GiB and 64 times that time."""
MAX_FILE_BYTES = 64 * 1024


def _derive(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=sm4.KEY_SIZE, n=n, r=r, p=p).derive(password)


def _password_bytes(password: str | bytes) -> bytes:
    if isinstance(password, str):
        return password.encode("utf-8")
    if isinstance(password, (bytes, bytearray)):
        return bytes(password)
    raise KeyFileError(f"a password is str or bytes, not {type(password).__name__}")


def _aad(doc: dict[str, Any]) -> bytes:
    header = {k: v for k, v in doc.items() if k != "ciphertext"}
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


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
    pw = _password_bytes(password)
    if not pw:
        raise KeyFileError("refusing to protect a private key with an empty password")
    if scrypt_n < MIN_SCRYPT_N or scrypt_n > MAX_SCRYPT_N or scrypt_n & (scrypt_n - 1):
        raise KeyFileError(f"scrypt n must be a power of two in [{MIN_SCRYPT_N}, {MAX_SCRYPT_N}]")
    salt = secrets.token_bytes(16)
    nonce = secrets.token_bytes(sm4.NONCE_SIZE)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "public_key": key.public_key.to_bytes().hex(),
        "kdf": {"name": "scrypt", "n": scrypt_n, "r": 8, "p": 1, "salt": base64.b64encode(salt).decode()},
        "cipher": "SM4-GCM",
        "nonce": base64.b64encode(nonce).decode(),
    }
    body = sm4.gcm_encrypt(_derive(pw, salt, scrypt_n, 8, 1), nonce, key.to_der(), _aad(doc))
    doc["ciphertext"] = base64.b64encode(body).decode()
    return (json.dumps(doc, indent=2) + "\n").encode()


def decrypt_private_key(blob: bytes | str, password: str | bytes) -> PrivateKey:
    """Open a key file's contents with ``password``.

    Raises
    ------
    KeyFileError
        Not a Rongxin key file, unsupported version or parameters.
    WrongPasswordError
        Wrong password, or the file was modified.
    """
    pw = _password_bytes(password)
    if isinstance(blob, (bytes, bytearray)) and len(blob) > MAX_FILE_BYTES:
        raise KeyFileError(f"a key file is at most {MAX_FILE_BYTES} bytes")
    try:
        doc = json.loads(blob)
    except (ValueError, UnicodeDecodeError):
        raise KeyFileError("not a Rongxin key file: it is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KeyFileError(f"not a Rongxin key file: 'format' is not {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise KeyFileError(
            f"unsupported key file version {doc.get('version')!r} (this build reads {VERSION})"
        )
    try:
        kdf = doc["kdf"]
        if kdf["name"] != "scrypt" or doc["cipher"] != "SM4-GCM":
            raise KeyFileError(f"unsupported KDF or cipher: {kdf['name']!r} / {doc['cipher']!r}")
        n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(doc["nonce"], validate=True)
        body = base64.b64decode(doc["ciphertext"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyFileError(f"damaged key file: missing or invalid field ({exc})") from None
    if not (MIN_SCRYPT_N <= n <= MAX_SCRYPT_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        raise KeyFileError("key file asks for scrypt parameters outside the supported range")
    if n * r * p > MAX_SCRYPT_COST:
        raise KeyFileError(
            f"key file asks for scrypt parameters outside the supported range (n·r·p = {n * r * p}, "
            f"at most {MAX_SCRYPT_COST})"
        )
    if len(nonce) != sm4.NONCE_SIZE or len(salt) < 16:
        raise KeyFileError("damaged key file: bad nonce or salt length")
    try:
        der = sm4.gcm_decrypt(_derive(pw, salt, n, r, p), nonce, body, _aad(doc))
    except DecryptionError:
        raise WrongPasswordError("wrong password for this key file (or the file was modified)") from None
    key = PrivateKey.from_der(der)
    if key.public_key.to_bytes().hex() != doc.get("public_key"):
        raise KeyFileError("key file is inconsistent: its public key does not match the private key")
    return key


def save_private_key(
    key: PrivateKey, path: str | os.PathLike[str], password: str | bytes, *, scrypt_n: int = DEFAULT_SCRYPT_N
) -> None:
    """Write ``key`` encrypted to ``path`` atomically, readable by the owner only (0600)."""
    blob = encrypt_private_key(key, password, scrypt_n=scrypt_n)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".rx-key-", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_private_key(path: str | os.PathLike[str], password: str | bytes) -> PrivateKey:
    """Read and decrypt a key file written by :func:`save_private_key`."""
    try:
        with open(path, "rb") as fh:
            blob = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {os.fspath(path)!r}: {exc.strerror}") from exc
    return decrypt_private_key(blob, password)


def read_public_key_hex(path: str | os.PathLike[str]) -> str:
    """Return the public key recorded in a key file without asking for the password."""
    try:
        with open(path, "rb") as fh:
            doc = json.loads(fh.read(MAX_FILE_BYTES + 1))
        return str(doc["public_key"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"cannot read the public key of {os.fspath(path)!r}: {exc}") from None
