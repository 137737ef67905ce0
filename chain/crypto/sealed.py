"""One password-protected file format for every secret Rongxin keeps at rest.

SM2 private keys (:mod:`chain.crypto.keyfile`), the regulator's Paillier private key
(:mod:`privacy.paillier`) and the auditor key of confidential transfers
(:mod:`zkp.auditor`) are all stored as a *sealed secret* (JSON, UTF-8; documented in
``docs/crypto.md``)::

    {
      "format": "rongxin-sealed",
      "version": 1,
      "kind": "rongxin-sm2-private-key",          # what the secret is
      "public": {"public_key": "04…"},            # cleartext facts, to identify a file unopened
      "kdf": {"name": "scrypt", "n": 131072, "r": 8, "p": 1, "salt": "<base64 16 B>"},
      "cipher": "SM4-GCM",
      "nonce": "<base64 12 B>",
      "ciphertext": "<base64>"                    # SM4-GCM(key, secret) || tag
    }

The SM4 key is ``scrypt(password, salt, n, r, p)`` (16 bytes; memory-hard, OpenSSL through
``cryptography``). Every field but the ciphertext — the kind, the public facts, the KDF
parameters — is associated data, so a file of one kind never opens as another and an
edited header fails exactly like a wrong password. A reader refuses, before running
scrypt, files over :data:`MAX_FILE_BYTES` and KDF parameters costlier than the costliest
file this module writes (:data:`MAX_SCRYPT_COST`).

Every error is a :class:`~chain.crypto.errors.CryptoError`: :class:`WrongPasswordError`
for a wrong password or a modified file, :class:`KeyFileError` for anything else. Secrets
and passwords are never logged or put in a message.

:func:`open_json_v1` reads the JSON layout that SM2 and Paillier key files had before
this format; :func:`decrypt_with_password` is the scrypt + SM4-GCM step shared by every
reader.

Examples
--------
>>> blob = seal(b"secret", "pw", "example-secret", public={"id": "7"}, scrypt_n=1024)
>>> open_sealed(blob, "pw", "example-secret")
b'secret'
>>> read_header(blob, "example-secret").public
{'id': '7'}
>>> open_sealed(blob, "pw", "other-kind")
Traceback (most recent call last):
...
chain.errors.WrongKindError: this is a sealed example-secret file, not a other-kind file
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from chain.crypto import sm4
from chain.crypto.atomic import atomic_write
from chain.crypto.errors import DecryptionError, KeyFileError, WrongKindError, WrongPasswordError

FORMAT = "rongxin-sealed"
VERSION = 1
DEFAULT_SCRYPT_N = 1 << 17
"""Default scrypt cost: about 0.3 s and 128 MiB here."""
MIN_SCRYPT_N = 1 << 10
MAX_SCRYPT_N = 1 << 22
SCRYPT_R = 8
SCRYPT_P = 1
MAX_SCRYPT_COST = MAX_SCRYPT_N * SCRYPT_R
"""Largest ``n * r * p`` a file may ask for: the costliest file this module writes
(``n = MAX_SCRYPT_N``, ``r = 8``, ``p = 1``, 4 GiB and a few seconds). Without it, a 1 KB
file asking for ``r = 32, p = 16`` would cost 16 GiB and 64 times that time."""
MAX_FILE_BYTES = 64 * 1024
SALT_SIZE = 16
_KIND = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")


def _shown(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters: a field of a file named in an error,
    never the file's contents at length.

    Examples
    --------
    >>> _shown("scrypt")
    "'scrypt'"
    >>> len(_shown("x" * 1000))
    40
    """
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def derive_key(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    """The 16-byte SM4 key ``scrypt(password, salt, n, r, p)``.

    Examples
    --------
    >>> len(derive_key(b"pw", bytes(16), 1024, 8, 1))
    16
    """
    return Scrypt(salt=salt, length=sm4.KEY_SIZE, n=n, r=r, p=p).derive(password)


def password_bytes(password: str | bytes) -> bytes:
    """``password`` as UTF-8 bytes; :class:`KeyFileError` for any other type.

    Examples
    --------
    >>> password_bytes("密码")
    b'\\xe5\\xaf\\x86\\xe7\\xa0\\x81'
    """
    if isinstance(password, str):
        return password.encode("utf-8")
    if isinstance(password, (bytes, bytearray)):
        return bytes(password)
    raise KeyFileError(f"a password is str or bytes, not {type(password).__name__}")


def check_kdf(n: int, r: int, p: int) -> None:
    """Refuse scrypt parameters a reader must not run (each in range, and ``n·r·p`` capped).

    Examples
    --------
    >>> check_kdf(1 << 17, 8, 1)
    >>> check_kdf(1 << 22, 32, 16)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chain.errors.KeyFileError: the file asks for scrypt parameters ... (n·r·p = 2147483648, ...)
    """
    if not (MIN_SCRYPT_N <= n <= MAX_SCRYPT_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        raise KeyFileError("the file asks for scrypt parameters outside the supported range")
    if n * r * p > MAX_SCRYPT_COST:
        raise KeyFileError(
            f"the file asks for scrypt parameters outside the supported range (n·r·p = {n * r * p}, "
            f"at most {MAX_SCRYPT_COST})"
        )


def decrypt_with_password(
    password: str | bytes,
    *,
    kind: str,
    salt: bytes,
    n: int,
    r: int,
    p: int,
    nonce: bytes,
    body: bytes,
    aad: bytes,
) -> bytes:
    """Check the KDF parameters, derive the key and open SM4-GCM ``body`` (tag last).

    The one decryption step of every sealed-secret reader, old layouts included.

    Raises
    ------
    KeyFileError
        KDF parameters out of range, bad salt or nonce length.
    WrongPasswordError
        Wrong password, or the file was modified.
    """
    pw = password_bytes(password)
    check_kdf(n, r, p)
    if len(nonce) != sm4.NONCE_SIZE or len(salt) < SALT_SIZE:
        raise KeyFileError(f"damaged {kind} file: bad nonce or salt length")
    if len(body) < sm4.TAG_SIZE:
        raise KeyFileError(f"damaged {kind} file: the ciphertext is truncated")
    try:
        return sm4.gcm_decrypt(derive_key(pw, salt, n, r, p), nonce, body, aad)
    except DecryptionError:
        raise WrongPasswordError(f"wrong password for this {kind} file (or the file was modified)") from None


def _b64(text: Any) -> bytes:
    """Strict base64: the canonical encoding only, so no edit of a file goes unnoticed."""
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode() != text:
        raise ValueError("non-canonical base64")
    return raw


def _check_kind(kind: str) -> str:
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise KeyFileError(f"a sealed-secret kind is lowercase letters, digits, '.' and '-', not {kind!r}")
    return kind


def _aad(doc: Mapping[str, Any], separators: tuple[str, str] = (",", ":")) -> bytes:
    """The associated data: every field but the ciphertext, as sorted JSON."""
    header = {k: v for k, v in doc.items() if k != "ciphertext"}
    return json.dumps(header, sort_keys=True, separators=separators).encode()


def seal(
    secret: bytes,
    password: str | bytes,
    kind: str,
    *,
    public: Mapping[str, str] | None = None,
    scrypt_n: int = DEFAULT_SCRYPT_N,
) -> bytes:
    """Encrypt ``secret`` under ``password`` as a sealed file of ``kind``; returns its bytes.

    Parameters
    ----------
    secret : bytes
        What to protect (a DER key, a scalar, ...).
    password : str or bytes
        Non-empty password.
    kind : str
        What the secret is, e.g. ``"rongxin-sm2-private-key"``; bound into the file, so
        :func:`open_sealed` with another kind refuses it.
    public : mapping of str to str, optional
        Facts stored in the clear and authenticated (a public key, a fingerprint), so a
        file can be identified without its password.
    scrypt_n : int
        scrypt cost, a power of two in ``[2**10, 2**22]``; the default 2**17 takes about
        0.3 s and 128 MiB. Lower values are for tests only.

    Examples
    --------
    >>> blob = seal(b"k", "pw", "example-secret", scrypt_n=1024)
    >>> open_sealed(blob, "pw", "example-secret")
    b'k'
    """
    kind = _check_kind(kind)
    pw = password_bytes(password)
    if not pw:
        raise KeyFileError(f"refusing to protect a {kind} with an empty password")
    if not isinstance(secret, (bytes, bytearray)):
        raise KeyFileError(f"a sealed secret is bytes, not {type(secret).__name__}")
    if scrypt_n < MIN_SCRYPT_N or scrypt_n > MAX_SCRYPT_N or scrypt_n & (scrypt_n - 1):
        raise KeyFileError(f"scrypt n must be a power of two in [{MIN_SCRYPT_N}, {MAX_SCRYPT_N}]")
    facts = dict(public or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in facts.items()):
        raise KeyFileError("the public facts of a sealed file are strings")
    salt = secrets.token_bytes(SALT_SIZE)
    nonce = secrets.token_bytes(sm4.NONCE_SIZE)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "public": facts,
        "kdf": {
            "name": "scrypt",
            "n": scrypt_n,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": "SM4-GCM",
        "nonce": base64.b64encode(nonce).decode(),
    }
    key = derive_key(pw, salt, scrypt_n, SCRYPT_R, SCRYPT_P)
    doc["ciphertext"] = base64.b64encode(sm4.gcm_encrypt(key, nonce, bytes(secret), _aad(doc))).decode()
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def load_document(data: bytes | str, kind: str) -> dict[str, Any]:
    """Size-check and parse a key file's JSON object (any layout) without opening it.

    Raises :class:`KeyFileError` for a file over :data:`MAX_FILE_BYTES`, not JSON, or not
    a JSON object.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray)):
        raise KeyFileError(f"a {kind} file is bytes, not {type(data).__name__}")
    if len(data) > MAX_FILE_BYTES:
        raise KeyFileError(f"not a {kind} file: a key file is at most {MAX_FILE_BYTES} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise KeyFileError(f"not a {kind} file: it is not JSON (truncated or another kind of file)") from None
    if not isinstance(doc, dict):
        raise KeyFileError(f"not a {kind} file: 'format' is missing (the JSON is not an object)")
    return doc


@dataclass(frozen=True)
class SealedHeader:
    """What a sealed file says in the clear (all of it authenticated when it is opened)."""

    kind: str
    public: dict[str, str]
    n: int
    r: int
    p: int


@dataclass(frozen=True)
class _Box:
    """The encrypted part of a key file: KDF parameters, salt, nonce, ciphertext || tag."""

    n: int
    r: int
    p: int
    salt: bytes
    nonce: bytes
    body: bytes

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any], kind: str) -> _Box:
        try:
            kdf = doc["kdf"]
            if kdf["name"] != "scrypt" or doc["cipher"] != "SM4-GCM":
                raise KeyFileError(
                    f"unsupported KDF or cipher: {_shown(kdf['name'])} / {_shown(doc['cipher'])}"
                )
            box = cls(
                int(kdf["n"]),
                int(kdf["r"]),
                int(kdf["p"]),
                _b64(kdf["salt"]),
                _b64(doc["nonce"]),
                _b64(doc["ciphertext"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyFileError(f"damaged {kind} file: missing or invalid field ({exc})") from None
        check_kdf(box.n, box.r, box.p)
        return box

    def open(self, password: str | bytes, kind: str, aad: bytes) -> bytes:
        return decrypt_with_password(
            password,
            kind=kind,
            salt=self.salt,
            n=self.n,
            r=self.r,
            p=self.p,
            nonce=self.nonce,
            body=self.body,
            aad=aad,
        )


def _parse(data: bytes | str, kind: str) -> tuple[SealedHeader, _Box, bytes]:
    kind = _check_kind(kind)
    doc = load_document(data, kind)
    if doc.get("format") != FORMAT:
        raise KeyFileError(
            f"not a {kind} file: 'format' is {doc.get('format')!r}, not {FORMAT!r} "
            "(another kind of file, or one damaged)"
        )
    if doc.get("version") != VERSION:
        raise KeyFileError(
            f"unsupported sealed file version {_shown(doc.get('version'))} (this build reads {VERSION}); "
            "open it with the release that wrote it"
        )
    if doc.get("kind") != kind:
        raise WrongKindError(f"this is a sealed {str(doc.get('kind'))[:40]} file, not a {kind} file")
    box = _Box.from_doc(doc, kind)
    public = doc.get("public")
    if not isinstance(public, dict) or not all(isinstance(v, str) for v in public.values()):
        raise KeyFileError(f"damaged {kind} file: 'public' is not an object of strings")
    return SealedHeader(kind, dict(public), box.n, box.r, box.p), box, _aad(doc)


def read_header(data: bytes | str, kind: str) -> SealedHeader:
    """The kind, public facts and KDF parameters of a sealed file, without its password.

    Unauthenticated until :func:`open_sealed` succeeds: use it to identify a file, not
    to trust it.
    """
    return _parse(data, kind)[0]


def open_sealed(data: bytes | str, password: str | bytes, kind: str) -> bytes:
    """Verify and decrypt a file written by :func:`seal` with the same ``kind``.

    Raises
    ------
    WrongKindError
        The file holds another kind of secret.
    KeyFileError
        Not a sealed file, damaged or truncated, over :data:`MAX_FILE_BYTES`, or KDF
        parameters out of range.
    WrongPasswordError
        Wrong password, or the file was modified.

    Examples
    --------
    >>> open_sealed(seal(b"s", "pw", "example-secret", scrypt_n=1024), "pw", "example-secret")
    b's'
    """
    _, box, aad = _parse(data, kind)
    return box.open(password, kind, aad)


def open_json_v1(doc: Mapping[str, Any], password: str | bytes, kind: str, *, compact_aad: bool) -> bytes:
    """Open a key file in the JSON layout used before :func:`seal` (format = ``kind``, version 1).

    That layout had the fields of a sealed file minus ``kind`` and ``public`` (the public
    facts were top-level fields); SM2 key files bound the header as compact JSON
    (``compact_aad=True``), Paillier key files with ``json.dumps``' default separators.
    """
    if doc.get("version") != 1:
        raise KeyFileError(
            f"unsupported {kind} file version {_shown(doc.get('version'))} (this build reads 1)"
        )
    box = _Box.from_doc(doc, kind)
    return box.open(password, kind, _aad(doc, (",", ":") if compact_aad else (", ", ": ")))


def read_key_file(path: str | os.PathLike[str], kind: str) -> bytes:
    """A key file's bytes, at most ``MAX_FILE_BYTES + 1`` of them (the reader then refuses).

    Raises :class:`KeyFileError` if the file cannot be read.
    """
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read {kind} file {os.fspath(path)!r}: {exc.strerror}") from None


def write_key_file(path: str | os.PathLike[str], data: bytes, kind: str, *, overwrite: bool = True) -> None:
    """Write a sealed file atomically with mode 0600 (see :func:`chain.crypto.atomic.atomic_write`).

    Raises :class:`KeyFileError` if it cannot be written, or exists and ``overwrite`` is false.
    """
    try:
        atomic_write(path, data, 0o600, overwrite=overwrite)
    except OSError as exc:
        why = "it exists (overwrite was not asked for)" if isinstance(exc, FileExistsError) else exc.strerror
        raise KeyFileError(f"cannot write {kind} file {os.fspath(path)!r}: {why}") from None


__all__ = [
    "DEFAULT_SCRYPT_N",
    "FORMAT",
    "MAX_FILE_BYTES",
    "MAX_SCRYPT_COST",
    "MAX_SCRYPT_N",
    "MIN_SCRYPT_N",
    "VERSION",
    "SealedHeader",
    "check_kdf",
    "decrypt_with_password",
    "derive_key",
    "load_document",
    "open_json_v1",
    "open_sealed",
    "password_bytes",
    "read_header",
    "read_key_file",
    "seal",
    "write_key_file",
]
