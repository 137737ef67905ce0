"""SM4 (GB/T 32907-2016) authenticated encryption for data at rest.

Two interfaces, both SM4-GCM through the ``cryptography`` package (OpenSSL):

* :func:`seal` / :func:`open_sealed` — one message in memory:
  ``nonce(12) || ciphertext || tag(16)``, with optional associated data.
* :func:`encrypt_stream` / :func:`decrypt_stream` (and the ``*_file`` wrappers) — files of
  any size in constant memory, in the online "STREAM" construction (Hoang, Reyhanitabar,
  Rogaway, Vizár 2015): the input is cut into chunks; chunk *i* is sealed with nonce
  ``i (8 bytes) || last-flag (1 byte) || 0x000000`` under a per-file key derived from the
  caller's key and a random salt.  Reordered, dropped, duplicated or truncated chunks, a
  modified header and a wrong key are all detected; nothing unauthenticated is returned
  as plaintext (:func:`decrypt_file` writes to a temporary file and renames it only after
  the last chunk verified).

Stream layout (all integers big-endian)::

    magic "RXS4" | version u8 = 1 | chunk_size u32 | salt (16)
    chunk_0 ... chunk_k     each = ciphertext (chunk_size, or less for the last) || tag (16)
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from chain.crypto.atomic import atomic_output
from chain.crypto.errors import CiphertextFormatError, CryptoError, DecryptionError, KeyFormatError
from chain.crypto.sm3 import hmac_sm3

KEY_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16
BLOCK_SIZE = 16

STREAM_MAGIC = b"RXS4"
STREAM_VERSION = 1
STREAM_SALT_SIZE = 16
STREAM_HEADER_SIZE = len(STREAM_MAGIC) + 1 + 4 + STREAM_SALT_SIZE
DEFAULT_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024


def generate_key() -> bytes:
    """Return a fresh 128-bit SM4 key from the operating system's CSPRNG."""
    return secrets.token_bytes(KEY_SIZE)


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, (bytes, bytearray)):
        raise KeyFormatError(f"an SM4 key is {KEY_SIZE} bytes, not a {type(key).__name__}")
    if len(key) != KEY_SIZE:
        raise KeyFormatError(f"an SM4 key is {KEY_SIZE} bytes, got {len(key)}")
    return bytes(key)


def gcm_encrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
    """SM4-GCM with a caller-chosen 12-byte nonce; returns ``ciphertext || tag``.

    The caller must never reuse a nonce under one key (prefer :func:`seal`).
    """
    key = _check_key(key)
    if len(nonce) != NONCE_SIZE:
        raise CryptoError(f"an SM4-GCM nonce is {NONCE_SIZE} bytes, got {len(nonce)}")
    enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    if aad:
        enc.authenticate_additional_data(aad)
    body = enc.update(data) + enc.finalize()
    return body + enc.tag


def gcm_decrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
    """Verify and decrypt ``ciphertext || tag`` produced by :func:`gcm_encrypt`."""
    key = _check_key(key)
    if len(nonce) != NONCE_SIZE:
        raise CiphertextFormatError(f"an SM4-GCM nonce is {NONCE_SIZE} bytes, got {len(nonce)}")
    if len(data) < TAG_SIZE:
        raise CiphertextFormatError("SM4-GCM ciphertext is shorter than its 16-byte tag")
    body, tag = data[:-TAG_SIZE], data[-TAG_SIZE:]
    dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    if aad:
        dec.authenticate_additional_data(aad)
    out = dec.update(body)
    try:
        return out + dec.finalize()
    except InvalidTag:
        raise DecryptionError(
            "SM4-GCM authentication failed: the ciphertext or its associated data was "
            "modified, or the key is wrong"
        ) from None


def encrypt_block(key: bytes, block: bytes, rounds: int = 1) -> bytes:
    """Apply the raw SM4 block cipher ``rounds`` times to one 16-byte block.

    A primitive for standard test vectors (GB/T 32907 Appendix A) and protocol building
    blocks; never use it to encrypt data (use :func:`seal`).

    Examples
    --------
    >>> k = bytes.fromhex("0123456789abcdeffedcba9876543210")
    >>> encrypt_block(k, k).hex()
    '681edf34d206965e86b3e94f536e4246'
    """
    key = _check_key(key)
    if len(block) != BLOCK_SIZE:
        raise CryptoError(f"an SM4 block is {BLOCK_SIZE} bytes, got {len(block)}")
    if rounds < 1:
        raise CryptoError("rounds must be at least 1")
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    out = bytes(block)
    for _ in range(rounds):
        out = enc.update(out)
    return out


def seal(key: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """Encrypt and authenticate ``plaintext`` with SM4-GCM under a random nonce.

    Parameters
    ----------
    key : bytes
        16-byte SM4 key.
    plaintext : bytes
        Data to protect.
    aad : bytes, optional
        Associated data that is authenticated but not encrypted (it must be given again to
        :func:`open_sealed`).

    Returns
    -------
    bytes
        ``nonce(12) || ciphertext || tag(16)``.

    Examples
    --------
    >>> k = generate_key()
    >>> open_sealed(k, seal(k, b"secret", b"ctx"), b"ctx")
    b'secret'
    """
    key = _check_key(key)
    nonce = secrets.token_bytes(NONCE_SIZE)
    return nonce + gcm_encrypt(key, nonce, bytes(plaintext), bytes(aad))


def open_sealed(key: bytes, sealed: bytes, aad: bytes = b"") -> bytes:
    """Verify and decrypt the output of :func:`seal`.

    Raises
    ------
    CiphertextFormatError
        If ``sealed`` is too short to hold a nonce and a tag.
    DecryptionError
        If the ciphertext, the associated data or the key is wrong.
    """
    key = _check_key(key)
    if not isinstance(sealed, (bytes, bytearray)) or len(sealed) < NONCE_SIZE + TAG_SIZE:
        raise CiphertextFormatError(
            f"sealed SM4 data needs at least {NONCE_SIZE + TAG_SIZE} bytes (nonce and tag)"
        )
    return gcm_decrypt(key, bytes(sealed[:NONCE_SIZE]), bytes(sealed[NONCE_SIZE:]), bytes(aad))


def _stream_key(key: bytes, salt: bytes) -> bytes:
    return hmac_sm3(key, b"rongxin/sm4-stream/v1" + salt)[:KEY_SIZE]


def _chunk_nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(8, "big") + (b"\x01" if last else b"\x00") + b"\x00\x00\x00"


def _read_full(stream: BinaryIO, size: int) -> bytes:
    parts = []
    remaining = size
    while remaining:
        piece = stream.read(remaining)
        if not piece:
            break
        parts.append(piece)
        remaining -= len(piece)
    return b"".join(parts)


def encrypt_stream(key: bytes, src: BinaryIO, dst: BinaryIO, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """Encrypt ``src`` into ``dst`` chunk by chunk in constant memory.

    Returns
    -------
    int
        Number of plaintext bytes encrypted.

    Examples
    --------
    >>> import io
    >>> k = generate_key(); out = io.BytesIO()
    >>> encrypt_stream(k, io.BytesIO(b"data" * 10), out, chunk_size=16)
    40
    >>> back = io.BytesIO(); _ = out.seek(0); decrypt_stream(k, out, back); back.getvalue()[:8]
    40
    b'datadata'
    """
    key = _check_key(key)
    if not 16 <= chunk_size <= MAX_CHUNK_SIZE:
        raise CryptoError(f"chunk_size must be within [16, {MAX_CHUNK_SIZE}], got {chunk_size}")
    salt = secrets.token_bytes(STREAM_SALT_SIZE)
    header = STREAM_MAGIC + bytes([STREAM_VERSION]) + chunk_size.to_bytes(4, "big") + salt
    file_key = _stream_key(key, salt)
    dst.write(header)
    total = 0
    index = 0
    current = _read_full(src, chunk_size)
    while True:
        following = _read_full(src, chunk_size) if len(current) == chunk_size else b""
        last = not following
        dst.write(gcm_encrypt(file_key, _chunk_nonce(index, last), current, header))
        total += len(current)
        if last:
            return total
        current = following
        index += 1


def decrypt_stream(key: bytes, src: BinaryIO, dst: BinaryIO) -> int:
    """Decrypt the output of :func:`encrypt_stream`, verifying every chunk.

    Plaintext of a chunk is written only after that chunk verified; a stream that is
    truncated, extended, reordered or modified raises before its end is reached.  Use
    :func:`decrypt_file` to avoid leaving a partial output behind.

    Raises
    ------
    CiphertextFormatError
        Bad magic, version or chunk size, or a stream cut short.
    DecryptionError
        A chunk failed authentication (tampering or wrong key).
    """
    key = _check_key(key)
    header = _read_full(src, STREAM_HEADER_SIZE)
    if len(header) < STREAM_HEADER_SIZE or header[:4] != STREAM_MAGIC:
        raise CiphertextFormatError("not an SM4 stream: the RXS4 header is missing or truncated")
    if header[4] != STREAM_VERSION:
        raise CiphertextFormatError(f"unsupported SM4 stream version {header[4]}")
    chunk_size = int.from_bytes(header[5:9], "big")
    if not 16 <= chunk_size <= MAX_CHUNK_SIZE:
        raise CiphertextFormatError(f"SM4 stream declares an invalid chunk size {chunk_size}")
    file_key = _stream_key(key, header[9:])
    sealed_size = chunk_size + TAG_SIZE
    total = 0
    index = 0
    current = _read_full(src, sealed_size)
    while True:
        if len(current) < TAG_SIZE:
            raise CiphertextFormatError("SM4 stream is truncated: its final chunk is missing")
        following = _read_full(src, sealed_size) if len(current) == sealed_size else b""
        last = not following
        try:
            plain = gcm_decrypt(file_key, _chunk_nonce(index, last), current, header)
        except DecryptionError:
            if last and len(current) == sealed_size:
                # A full-size chunk that fails as "last" may be a stream cut at a chunk
                # boundary; say so rather than blaming the key.
                try:
                    gcm_decrypt(file_key, _chunk_nonce(index, False), current, header)
                except DecryptionError:
                    pass
                else:
                    raise CiphertextFormatError(
                        "SM4 stream is truncated: it ends before its final chunk"
                    ) from None
            raise DecryptionError(
                f"SM4 stream chunk {index} failed authentication: the data was modified, "
                "reordered or the key is wrong"
            ) from None
        dst.write(plain)
        total += len(plain)
        if last:
            return total
        current = following
        index += 1


def encrypt_file(
    key: bytes,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> int:
    """Encrypt the file ``src`` to ``dst`` (written atomically). Returns plaintext bytes."""
    return transform_file(src, dst, lambda i, o: encrypt_stream(key, i, o, chunk_size))


def decrypt_file(key: bytes, src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> int:
    """Decrypt ``src`` to ``dst``; ``dst`` appears only if the whole file verified."""
    return transform_file(src, dst, lambda i, o: decrypt_stream(key, i, o))


def transform_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    fn: Callable[[BinaryIO, BinaryIO], int],
) -> int:
    """Run ``fn(input, output)`` from ``src`` into ``dst`` atomically.

    The output goes to a temporary file in ``dst``'s directory that is fsynced and renamed
    over ``dst`` only when ``fn`` returns (:func:`chain.crypto.atomic.atomic_output`); on
    any error it is removed, so a failed decryption never leaves unauthenticated plaintext
    behind.
    """
    with _open_input(src) as fin:
        try:
            with atomic_output(dst, 0o600, overwrite=True) as fout:
                return int(fn(fin, fout))
        except OSError as exc:
            raise CryptoError(f"cannot write {os.fspath(dst)!r}: {exc.strerror}") from exc


def _open_input(src: str | os.PathLike[str]) -> BinaryIO:
    try:
        return open(src, "rb")
    except OSError as exc:
        raise CryptoError(f"cannot open {os.fspath(src)!r}: {exc.strerror}") from exc
