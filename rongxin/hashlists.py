"""Hash lists from the shell's point of view: keys, files and limits around :mod:`forensics.exchange`.

``rongxin works export --format rxhl`` (in :mod:`rongxin.cli_works`) and ``rongxin works
import`` / ``rongxin works foreign`` (in :mod:`rongxin.cli_exchange`) share these steps:
finding the member's signing key (a key file, or the member's client profile, whose
certificate also names the member), reading the key a publisher is known by (its
certificate, a public-key PEM, a key file or the point in hex), and reading a list file
within a size limit before decoding it.

Examples
--------
>>> import tempfile, pathlib
>>> from chain.crypto.sm2 import PrivateKey
>>> key = PrivateKey.generate()
>>> p = pathlib.Path(tempfile.mkdtemp()) / "county-a.pem"
>>> _ = p.write_text(key.public_key.to_pem())
>>> read_signer(str(p)).key == key.public_key
True
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from chain.crypto.sm2 import PrivateKey, PublicKey
from chain.errors import ChainError
from forensics.exchange.errors import HashListTooLargeError
from forensics.exchange.hashlist import DEFAULT_LIMITS, HashList, Limits, decode_hash_list
from rongxin.errors import RongxinError


class ExchangeInputError(RongxinError):
    """A key, a certificate or a list file named on the command line cannot be read."""


@dataclass(frozen=True)
class Signer:
    """A publisher's key, and the member its certificate names (when read from one)."""

    key: PublicKey
    member: str | None = None


def read_signer(spec: str) -> Signer:
    """The key a publisher is known by, from ``spec``.

    ``spec`` is a member certificate (JSON, as ``rongxin member add`` writes it), an SM2
    ``PUBLIC KEY`` PEM file, a sealed key file (its public key is read without the
    password), or the public point as 130 hex digits.

    Raises
    ------
    ExchangeInputError
        None of these.
    """
    text = spec.strip()
    if len(text) in (66, 130) and all(c in "0123456789abcdefABCDEF" for c in text):
        try:
            return Signer(PublicKey.from_bytes(bytes.fromhex(text)))
        except ChainError as exc:
            raise ExchangeInputError(f"--signer {text[:16]}…: {exc}") from None
    path = Path(spec)
    try:
        data = path.read_bytes()[: 1 << 20]
    except OSError as exc:
        raise ExchangeInputError(
            f"--signer {spec}: cannot read it ({exc.strerror}); give the member's certificate, a public-key "
            "PEM file or the key in hex"
        ) from None
    if b"-----BEGIN PUBLIC KEY-----" in data:
        try:
            return Signer(PublicKey.from_pem(data))
        except ChainError as exc:
            raise ExchangeInputError(f"{spec}: not an SM2 public key ({exc})") from None
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        doc = None
    if isinstance(doc, dict) and "subject" in doc and "public_key" in doc:
        from chain.node.identity import certificate_from_json

        try:
            cert = certificate_from_json(data)
            return Signer(cert.key(), cert.subject)
        except (ChainError, ValueError) as exc:
            raise ExchangeInputError(f"{spec}: not a member certificate ({exc})") from None
    from chain.crypto.keyfile import read_public_key_hex

    try:
        return Signer(PublicKey.from_bytes(bytes.fromhex(read_public_key_hex(path))))
    except (ChainError, ValueError) as exc:
        raise ExchangeInputError(
            f"{spec}: not a certificate, a public-key PEM or a key file ({exc}); give the member's "
            "certificate"
        ) from None


def certificate_member(cert_file: Path) -> tuple[str, PublicKey]:
    """The member (certificate subject) and key a certificate file names.

    Raises
    ------
    ExchangeInputError
        The file cannot be read or is not a certificate.
    """
    from chain.node.identity import certificate_from_json

    try:
        cert = certificate_from_json(cert_file.read_bytes())
    except OSError as exc:
        raise ExchangeInputError(f"cannot read the certificate {cert_file}: {exc.strerror}") from None
    except (ChainError, ValueError) as exc:
        raise ExchangeInputError(f"{cert_file} is not a member certificate: {exc}") from None
    return cert.subject, cert.key()


def load_signing_key(key_file: Path, password: str) -> PrivateKey:
    """The member's SM2 key from its sealed key file.

    Raises
    ------
    ExchangeInputError
        The file cannot be read or the password is wrong.
    """
    from chain.crypto.keyfile import load_private_key

    try:
        return load_private_key(key_file, password)
    except (ChainError, OSError) as exc:
        raise ExchangeInputError(f"cannot open the key {key_file}: {exc}") from None


def read_hash_list(path: Path, limits: Limits = DEFAULT_LIMITS) -> HashList:
    """Read and decode the list file ``path``, refusing a file over ``limits.max_bytes`` unread.

    Raises
    ------
    ExchangeInputError
        The file cannot be read.
    HashListError
        See :func:`forensics.exchange.hashlist.decode_hash_list`.
    """
    try:
        size = os.stat(path).st_size
        if size > limits.max_bytes:
            raise HashListTooLargeError(
                f"{path} is {size:,} bytes, more than the limit of {limits.max_bytes:,}; not read"
            )
        with open(path, "rb") as fh:
            data = fh.read(limits.max_bytes + 1)
    except OSError as exc:
        raise ExchangeInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return decode_hash_list(data, limits=limits)
