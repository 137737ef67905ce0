"""Pieces of HLS segments checked and opened: byte ranges and AES-128 encryption (pure, no I/O).

An HLS playlist may name a segment as a byte range of a larger file
(``#EXT-X-BYTERANGE:<length>[@<offset>]``) and may encrypt segments with AES-128 (RFC 8216
§4.3.2.4, §5.2): the whole segment is AES-128-CBC with PKCS#7 padding, under a 16-byte key
fetched from the key URI, with the IV of the ``EXT-X-KEY`` tag or, without one, the
segment's media sequence number as a 16-byte big-endian number. The answers to range
requests and the ciphertexts are hostile input; every failure here is a
:class:`~crawlers.errors.PlaylistError`.

Examples
--------
>>> ByteRange.parse("1000@200"), ByteRange.parse("5", previous_end=10)
(ByteRange(offset=200, length=1000), ByteRange(offset=10, length=5))
>>> sequence_iv(7).hex()
'00000000000000000000000000000007'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from crawlers.errors import PlaylistError

KEY_BYTES = 16
#: Most digits of a byte-range length or offset (below 10**15 bytes).
_RANGE = re.compile(r"^\s*(\d{1,15})(?:@(\d{1,15}))?\s*$")
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d{1,15})-(\d{1,15})/(\d{1,15}|\*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ByteRange:
    """``length`` bytes from ``offset`` of a resource."""

    offset: int
    length: int

    @property
    def end(self) -> int:
        """The offset just past the range."""
        return self.offset + self.length

    @classmethod
    def parse(cls, value: str, previous_end: int | None = None) -> ByteRange:
        """A ``<length>[@<offset>]`` attribute; without an offset the range follows the previous
        sub-range of the same resource (``previous_end``).

        Raises
        ------
        PlaylistError
            Not two decimal numbers, a zero length, or no offset and no previous sub-range.
        """
        m = _RANGE.match(value or "")
        if m is None:
            raise PlaylistError(f"byte range {str(value)[:40]!r} is not <length>[@<offset>]")
        length = int(m.group(1))
        if length <= 0:
            raise PlaylistError("byte range of zero length")
        if m.group(2) is not None:
            return cls(int(m.group(2)), length)
        if previous_end is None:
            raise PlaylistError("byte range without an offset and no previous range of the same file")
        return cls(previous_end, length)

    def header(self) -> str:
        """The ``Range`` request header's value, e.g. ``bytes=200-1199``."""
        return f"bytes={self.offset}-{self.end - 1}"


@dataclass(frozen=True)
class Key:
    """An AES-128 segment key: where to fetch it and the IV of the segment it opens."""

    uri: str
    iv: bytes


def sequence_iv(media_sequence: int) -> bytes:
    """The IV of a segment without an ``IV`` attribute: its media sequence number, big-endian."""
    if not 0 <= media_sequence < 1 << 64:
        raise PlaylistError(f"media sequence number {media_sequence} out of range")
    return media_sequence.to_bytes(16, "big")


def parse_iv(value: str) -> bytes:
    """The 16 bytes of an ``IV=0x...`` attribute.

    Raises
    ------
    PlaylistError
        Not ``0x`` and 32 hex digits.
    """
    text = (value or "").strip()
    if not re.fullmatch(r"0[xX][0-9a-fA-F]{32}", text):
        raise PlaylistError(f"IV {text[:40]!r} is not 0x and 32 hex digits")
    return bytes.fromhex(text[2:])


def range_body(status: int, headers: Mapping[str, str], body: bytes, wanted: ByteRange, cap: int) -> bytes:
    """The bytes of ``wanted`` from the answer to a range request whose body was read up to ``cap``.

    A ``206`` must carry exactly the range asked for (``Content-Range`` and body length), not
    re-encoded. A ``200`` (a server that ignores ``Range``) is the whole resource from its
    start: the range is cut out of it, which needs ``wanted.end`` bytes read; the caller
    read at most ``cap`` of them (its byte budget), so a range past ``cap`` is refused.

    Raises
    ------
    PlaylistError
        ``416``, a ``206`` that is not the range asked for, a resource shorter than the
        range, or a ``200`` whose range lies beyond the byte budget.

    Examples
    --------
    >>> range_body(200, {}, b"0123456789", ByteRange(2, 3), cap=10)
    b'234'
    >>> range_body(206, {"content-range": "bytes 2-4/10"}, b"234", ByteRange(2, 3), cap=5)
    b'234'
    """
    if status == 416:
        raise PlaylistError(f"range {wanted.header()} lies beyond the end of the file (HTTP 416)")
    if status == 206:
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise PlaylistError(f"a range answered with Content-Encoding {encoding!r}; refused")
        m = _CONTENT_RANGE.match(headers.get("content-range", ""))
        if m is None or (int(m.group(1)), int(m.group(2))) != (wanted.offset, wanted.end - 1):
            got = headers.get("content-range", "none")[:60]
            raise PlaylistError(f"asked for {wanted.header()}, the server sent Content-Range {got!r}")
        if m.group(3) != "*" and int(m.group(3)) < wanted.end:
            raise PlaylistError(f"Content-Range {m.group(0).strip()!r} claims a range past its own end")
        if len(body) != wanted.length:
            raise PlaylistError(f"a 206 body of {len(body)} bytes for a range of {wanted.length}")
        return body
    if status == 200:
        if len(body) >= wanted.end:
            return body[wanted.offset : wanted.end]
        if len(body) >= cap:
            raise PlaylistError(
                f"the server ignored Range; {wanted.header()} ends past the stream's byte budget "
                f"({cap} bytes left); not read"
            )
        raise PlaylistError(f"range {wanted.header()} lies beyond the end of the file ({len(body)} bytes)")
    raise PlaylistError(f"range {wanted.header()}: HTTP {status}")


def decrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    """Open an AES-128 segment: AES-128-CBC, then PKCS#7 padding removed.

    Raises
    ------
    PlaylistError
        A key that is not 16 bytes, a ciphertext that is not whole blocks, or bad padding
        (a wrong key or IV, or a corrupt segment).

    Examples
    --------
    >>> decrypt(bytes.fromhex("a0bb1c2d64d1b4c87a0c2a1a7d1e9b8e"), bytes(16), bytes(16))[:3]
    Traceback (most recent call last):
        ...
    crawlers.errors.PlaylistError: AES-128 segment with bad padding: wrong key or IV, or corrupt
    """
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if len(key) != KEY_BYTES:
        raise PlaylistError(f"an AES-128 key must be {KEY_BYTES} bytes, got {len(key)}")
    if len(iv) != 16:
        raise PlaylistError(f"an AES-128 IV must be 16 bytes, got {len(iv)}")
    if not data or len(data) % 16:
        raise PlaylistError(f"AES-128 segment of {len(data)} bytes is not whole 16-byte blocks")
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    plain = dec.update(data) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(plain) + unpadder.finalize()
    except ValueError:
        raise PlaylistError("AES-128 segment with bad padding: wrong key or IV, or corrupt") from None
