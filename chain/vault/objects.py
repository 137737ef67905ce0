"""The vault's object format: an SM4-GCM ciphertext under a fresh key, named by SM3.

An object is a fixed-size header followed by its body::

    header (117 bytes, integers big-endian)
        magic "RXV1" | version u8 = 1 | owner certificate id (32) | content SM3 (32)
        | content size u64 | body size u64 | body SM3 (32)
    body
        the plaintext encrypted with a fresh 128-bit SM4 key in the chunked SM4-GCM
        stream of :mod:`chain.crypto.sm4` (every 64 KiB chunk authenticated)

The object's **digest** (its address) is ``SM3(header)``. The header commits to the
body's SM3, so anyone — a node, a replica, a scrub — checks a whole object against its
digest without any key, and an object's owner is bound into its address (nobody else can
register it on chain as theirs). The content SM3 is the digest of the plaintext (what an
evidence package or a registered work anchors); a reader checks it after decryption.

The object key is wrapped for each reader with SM2 encryption (as in
:mod:`chain.crypto.envelope`) over ``object digest || key``, so a wrapped key opens only
for its recipient and only names its own object.

Examples
--------
>>> import io
>>> from chain.crypto import PrivateKey
>>> owner = PrivateKey.generate()
>>> sealed = io.BytesIO()
>>> header, key = seal_stream(b"\\x01" * 32, io.BytesIO(b"evidence"), sealed)
>>> header.content_size, header.digest == ObjectHeader.parse(sealed.getvalue()[:HEADER_SIZE]).digest
(8, True)
>>> wrapped = wrap_key(owner.public_key, header.digest, key)
>>> out = io.BytesIO()
>>> _ = sealed.seek(0)
>>> open_stream(unwrap_key(owner, header.digest, wrapped), header.digest, sealed, out).content_size
8
>>> out.getvalue()
b'evidence'
"""

from __future__ import annotations

import hmac
import io
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from chain.crypto import sm4
from chain.crypto.errors import CryptoError
from chain.crypto.sm2 import PrivateKey, PublicKey
from chain.crypto.sm3 import SM3, sm3
from chain.errors import VaultError

MAGIC = b"RXV1"
VERSION = 1
DIGEST_SIZE = 32
_LAYOUT = struct.Struct(">4sB32s32sQQ32s")
HEADER_SIZE = _LAYOUT.size
"""117 bytes."""
CHUNK_SIZE = sm4.DEFAULT_CHUNK_SIZE
_WRAP_PLAIN = DIGEST_SIZE + sm4.KEY_SIZE
WRAPPED_MAX = 256
"""Largest wrapped key accepted (an SM2 ciphertext of 48 bytes is 145)."""
MAX_OBJECT_BYTES = 1 << 40
"""Largest body a header may declare at all (a node's cap is lower)."""


def body_size_for(content_size: int, chunk_size: int = CHUNK_SIZE) -> int:
    """The body size of ``content_size`` plaintext bytes in the chunked SM4-GCM stream.

    Examples
    --------
    >>> body_size_for(0), body_size_for(1), body_size_for(65536), body_size_for(65537)
    (41, 42, 65577, 65594)
    """
    chunks = max(1, -(-content_size // chunk_size))
    return sm4.STREAM_HEADER_SIZE + content_size + chunks * sm4.TAG_SIZE


@dataclass(frozen=True)
class ObjectHeader:
    """The clear, authenticated part of a vault object."""

    owner: bytes
    content_sm3: bytes
    content_size: int
    body_size: int
    body_sm3: bytes

    def to_bytes(self) -> bytes:
        """The 117-byte header."""
        return _LAYOUT.pack(
            MAGIC, VERSION, self.owner, self.content_sm3, self.content_size, self.body_size, self.body_sm3
        )

    @property
    def digest(self) -> bytes:
        """The object's address: SM3 of the header."""
        return sm3(self.to_bytes())

    @property
    def object_size(self) -> int:
        """Header and body, in bytes."""
        return HEADER_SIZE + self.body_size

    @classmethod
    def parse(cls, raw: bytes) -> ObjectHeader:
        """Parse and check a header (magic, version, sizes consistent with each other).

        Raises
        ------
        VaultError
            Not a vault object header, or one whose sizes cannot belong together.
        """
        if len(raw) != HEADER_SIZE:
            raise VaultError(f"a vault object header is {HEADER_SIZE} bytes, got {len(raw)} (truncated?)")
        magic, version, owner, content, csize, bsize, body = _LAYOUT.unpack(raw)
        if magic != MAGIC:
            raise VaultError("not a vault object: the RXV1 header is missing")
        if version != VERSION:
            raise VaultError(f"unsupported vault object version {version} (this build reads {VERSION})")
        if bsize > MAX_OBJECT_BYTES or bsize != body_size_for(csize):
            raise VaultError(f"the header's sizes do not belong together (content {csize} B, body {bsize} B)")
        return cls(owner, content, csize, bsize, body)

    def to_json(self) -> dict[str, object]:
        """The header's fields with bytes in hex."""
        return {
            "digest": self.digest.hex(),
            "owner": self.owner.hex(),
            "content_sm3": self.content_sm3.hex(),
            "content_size": self.content_size,
            "body_size": self.body_size,
            "body_sm3": self.body_sm3.hex(),
        }


class _Hashing(io.RawIOBase):
    """A reader that hashes what passes through it and counts it."""

    def __init__(self, inner: BinaryIO, limit: int | None = None) -> None:
        self.inner = inner
        self.hash = SM3()
        self.count = 0
        self.limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = len(buffer)
        if self.limit is not None:
            want = min(want, self.limit - self.count)
            if want <= 0:
                return 0
        data = self.inner.read(want)
        n = len(data)
        buffer[:n] = data
        self.hash.update(data)
        self.count += n
        return n


class _HashingWriter:
    """A writer that hashes what passes through it and counts it."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.hash = SM3()
        self.count = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.count += len(data)
        self.inner.write(data)
        return len(data)


def seal_stream(owner: bytes, src: BinaryIO, dst: BinaryIO) -> tuple[ObjectHeader, bytes]:
    """Encrypt ``src`` into a vault object written to the seekable ``dst``.

    The header is written last (over a placeholder), once the body's digest is known.

    Parameters
    ----------
    owner : bytes
        The owner's certificate id (32 bytes), bound into the object's digest.
    src : binary file
        The plaintext.
    dst : seekable binary file
        Where the object goes, from its current position.

    Returns
    -------
    (ObjectHeader, bytes)
        The header (``.digest`` is the object's address) and the fresh 16-byte object key.
    """
    if len(owner) != DIGEST_SIZE:
        raise VaultError("the owner is a 32-byte certificate id")
    start = dst.tell()
    dst.write(bytes(HEADER_SIZE))
    key = sm4.generate_key()
    plain = _Hashing(src)
    body = _HashingWriter(dst)
    sm4.encrypt_stream(key, plain, body, CHUNK_SIZE)  # type: ignore[arg-type]
    header = ObjectHeader(owner, plain.hash.digest(), plain.count, body.count, body.hash.digest())
    if header.body_size != body_size_for(header.content_size):  # pragma: no cover - format invariant
        raise VaultError("internal error: the body size does not match the format")
    end = dst.tell()
    dst.seek(start)
    dst.write(header.to_bytes())
    dst.seek(end)
    return header, key


def seal_file(
    owner: bytes, src: str | os.PathLike[str], dst: str | os.PathLike[str]
) -> tuple[ObjectHeader, bytes]:
    """:func:`seal_stream` from the file ``src`` into ``dst`` (written atomically, mode 0600)."""
    from chain.crypto.atomic import atomic_output

    try:
        with open(src, "rb") as fin, atomic_output(dst, 0o600, overwrite=True) as fout:
            return seal_stream(owner, fin, fout)
    except OSError as exc:
        raise VaultError(f"cannot seal {os.fspath(src)!r}: {exc.strerror or exc}") from None


class ObjectChecker:
    """Check an object against its digest as its bytes arrive, in any pieces.

    ``feed`` refuses as soon as the bytes cannot be the object (bad header, a header whose
    digest is not ``digest``, a body over ``max_bytes`` or longer than declared); ``finish``
    refuses a short body or a body whose SM3 is not the header's.

    Examples
    --------
    >>> import io
    >>> out = io.BytesIO(); header, _ = seal_stream(b"\\x02" * 32, io.BytesIO(b"x" * 10), out)
    >>> check = ObjectChecker(header.digest)
    >>> for i in range(0, len(out.getvalue()), 7):
    ...     check.feed(out.getvalue()[i:i + 7])
    >>> check.finish() == header
    True
    """

    def __init__(self, digest: bytes, max_bytes: int | None = None) -> None:
        self.digest = digest
        self.max_bytes = max_bytes
        self.header: ObjectHeader | None = None
        self._head = bytearray()
        self._hash = SM3()
        self.body_seen = 0

    @property
    def received(self) -> int:
        """Bytes fed so far."""
        return len(self._head) + self.body_seen

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Take the next bytes of the object."""
        view = memoryview(data)
        if self.header is None:
            need = HEADER_SIZE - len(self._head)
            self._head += view[:need]
            view = view[need:]
            if len(self._head) < HEADER_SIZE:
                return
            header = ObjectHeader.parse(bytes(self._head))
            if not hmac.compare_digest(header.digest, self.digest):
                raise VaultError(
                    "the object's header does not hash to its digest (another object, or altered)"
                )
            if self.max_bytes is not None and header.object_size > self.max_bytes:
                raise VaultError(
                    f"the object is {header.object_size} bytes; this vault takes at most {self.max_bytes}",
                    413,
                )
            self.header = header
        if not view:
            return
        if self.body_seen + len(view) > self.header.body_size:
            raise VaultError("the object is longer than its header declares")
        self._hash.update(view)
        self.body_seen += len(view)

    def finish(self) -> ObjectHeader:
        """The header, once every byte arrived and the body hashed to the header's SM3."""
        if self.header is None:
            raise VaultError(
                f"the object is truncated: {len(self._head)} of its {HEADER_SIZE} header bytes arrived"
            )
        if self.body_seen != self.header.body_size:
            raise VaultError(
                f"the object is truncated: {self.body_seen} of its {self.header.body_size} body bytes arrived"
            )
        if not hmac.compare_digest(self._hash.digest(), self.header.body_sm3):
            raise VaultError("the object's body does not hash to its header's SM3 (altered or damaged)")
        return self.header


def check_stream(
    digest: bytes, src: BinaryIO, sink: BinaryIO | None = None, max_bytes: int | None = None
) -> ObjectHeader:
    """Read a whole object from ``src``, checking it against ``digest``; copy it to ``sink``.

    Raises
    ------
    VaultError
        The bytes are not the object with this digest (altered, truncated, extended).
    """
    checker = ObjectChecker(digest, max_bytes)
    while piece := src.read(1 << 20):
        checker.feed(piece)
        if sink is not None:
            sink.write(piece)
    return checker.finish()


def open_stream(key: bytes, digest: bytes, src: BinaryIO, dst: BinaryIO) -> ObjectHeader:
    """Decrypt the object with ``digest`` from ``src`` into ``dst``, checking everything.

    The header must hash to ``digest``, the body to the header's SM3, every SM4-GCM chunk
    must authenticate under ``key``, and the plaintext must hash to the header's content
    SM3. Plaintext is written as chunks verify: write to a temporary file and keep it only
    if this returns (:func:`open_file` does).

    Raises
    ------
    VaultError
        Any check failed (the message says which).
    """
    head = src.read(HEADER_SIZE)
    header = ObjectHeader.parse(head)
    if not hmac.compare_digest(header.digest, digest):
        raise VaultError("the object's header does not hash to its digest (another object, or altered)")
    body = _Hashing(src, header.body_size)
    plain = _HashingWriter(dst)
    try:
        sm4.decrypt_stream(key, body, plain)  # type: ignore[arg-type]
    except CryptoError as exc:
        raise VaultError(f"the object does not decrypt: {exc}") from None
    if body.count != header.body_size or src.read(1):
        raise VaultError("the object's body is not as long as its header declares")
    if not hmac.compare_digest(body.hash.digest(), header.body_sm3):
        raise VaultError("the object's body does not hash to its header's SM3 (altered or damaged)")
    if plain.count != header.content_size or not hmac.compare_digest(plain.hash.digest(), header.content_sm3):
        raise VaultError("the decrypted content does not hash to the header's content SM3")
    return header


def open_file(
    key: bytes, digest: bytes, src: str | os.PathLike[str], dst: str | os.PathLike[str]
) -> ObjectHeader:
    """:func:`open_stream` from a file; ``dst`` appears (atomically) only if every check passed."""
    from chain.crypto.atomic import atomic_output

    try:
        with open(src, "rb") as fin, atomic_output(dst, 0o600, overwrite=True) as fout:
            return open_stream(key, digest, fin, fout)
    except OSError as exc:
        raise VaultError(
            f"cannot open {os.fspath(src)!r} into {os.fspath(dst)!r}: {exc.strerror or exc}"
        ) from None


def wrap_key(recipient: PublicKey, digest: bytes, key: bytes) -> bytes:
    """The object key SM2-encrypted to ``recipient``, bound to the object's digest.

    Examples
    --------
    >>> k = PrivateKey.generate(); wrapped = wrap_key(k.public_key, b"d" * 32, b"k" * 16)
    >>> len(wrapped), unwrap_key(k, b"d" * 32, wrapped)
    (145, b'kkkkkkkkkkkkkkkk')
    """
    if len(digest) != DIGEST_SIZE or len(key) != sm4.KEY_SIZE:
        raise VaultError("wrap a 16-byte key for a 32-byte object digest")
    return recipient.encrypt(digest + key)


def unwrap_key(private_key: PrivateKey, digest: bytes, wrapped: bytes) -> bytes:
    """The object key from a wrapped key addressed to ``private_key``.

    Raises
    ------
    VaultError
        The wrapped key is not for this key holder, or not for this object.
    """
    if not isinstance(wrapped, (bytes, bytearray)) or not 0 < len(wrapped) <= WRAPPED_MAX:
        raise VaultError(f"a wrapped key is 1..{WRAPPED_MAX} bytes")
    try:
        plain = private_key.decrypt(bytes(wrapped))
    except CryptoError:
        raise VaultError(
            "the wrapped key does not open with this member's key (it was wrapped for another)"
        ) from None
    if len(plain) != _WRAP_PLAIN or not hmac.compare_digest(plain[:DIGEST_SIZE], digest):
        raise VaultError("the wrapped key belongs to another object")
    return plain[DIGEST_SIZE:]


__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "WRAPPED_MAX",
    "ObjectChecker",
    "ObjectHeader",
    "body_size_for",
    "check_stream",
    "open_file",
    "open_stream",
    "seal_file",
    "seal_stream",
    "unwrap_key",
    "wrap_key",
]
