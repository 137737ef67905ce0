"""Hybrid ("envelope") file encryption to an SM2 public key.

A fresh SM4 key encrypts the file with the streaming SM4-GCM format of
:mod:`chain.crypto.sm4`; that key is SM2-encrypted to the recipient.  Layout::

    magic "RXE2" | version u8 = 1 | wrapped-key length u16 | SM2(C1||C3||C2 of the SM4 key)
    SM4 stream (see chain.crypto.sm4)

Only the holder of the recipient's private key can open the file; any change to the
wrapped key or the stream is detected, and :func:`open_file` writes its output only after
everything verified.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from chain.crypto import sm4
from chain.crypto.errors import CiphertextFormatError
from chain.crypto.sm2 import PrivateKey, PublicKey, _need

MAGIC = b"RXE2"
VERSION = 1
_WRAPPED_MAX = 512


def seal_stream(recipient: PublicKey, src: BinaryIO, dst: BinaryIO) -> int:
    """Encrypt ``src`` to ``recipient`` into ``dst``; returns plaintext bytes."""
    _need(recipient, PublicKey, "envelope encryption")
    key = sm4.generate_key()
    wrapped = recipient.encrypt(key)
    dst.write(MAGIC + bytes([VERSION]) + len(wrapped).to_bytes(2, "big") + wrapped)
    return sm4.encrypt_stream(key, src, dst)


def open_stream(private_key: PrivateKey, src: BinaryIO, dst: BinaryIO) -> int:
    """Decrypt an envelope stream with ``private_key``; returns plaintext bytes."""
    _need(private_key, PrivateKey, "envelope decryption")
    head = src.read(7)
    if len(head) < 7 or head[:4] != MAGIC:
        raise CiphertextFormatError("not a Rongxin envelope: the RXE2 header is missing")
    if head[4] != VERSION:
        raise CiphertextFormatError(f"unsupported envelope version {head[4]}")
    size = int.from_bytes(head[5:7], "big")
    if not 98 <= size <= _WRAPPED_MAX:
        raise CiphertextFormatError(f"envelope declares an invalid wrapped-key size {size}")
    wrapped = src.read(size)
    if len(wrapped) != size:
        raise CiphertextFormatError("envelope is truncated inside its wrapped key")
    key = private_key.decrypt(wrapped)
    if len(key) != sm4.KEY_SIZE:
        raise CiphertextFormatError("envelope's wrapped key has the wrong size")
    return sm4.decrypt_stream(key, src, dst)


def seal_file(recipient: PublicKey, src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> int:
    """Encrypt the file ``src`` to ``recipient``, writing ``dst`` atomically.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a").write_bytes(b"evidence")
    >>> k = PrivateKey.generate()
    >>> seal_file(k.public_key, d / "a", d / "a.rxe")
    8
    >>> open_file(k, d / "a.rxe", d / "b"); (d / "b").read_bytes()
    8
    b'evidence'
    """
    return sm4.transform_file(src, dst, lambda i, o: seal_stream(recipient, i, o))


def open_file(private_key: PrivateKey, src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> int:
    """Decrypt an envelope file; ``dst`` appears only if everything verified."""
    return sm4.transform_file(src, dst, lambda i, o: open_stream(private_key, i, o))
