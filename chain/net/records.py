"""The record layer: length-prefixed SM4-GCM records with counter nonces.

Wire format of one record (integers big-endian)::

    length u32 | SM4-GCM(key, nonce, plaintext = channel u8 || payload, aad = length u32)

``length`` counts the sealed bytes that follow (``1 + len(payload) + 16``: channel byte,
payload, GCM tag).  It is checked against ``max_frame`` *before* the body is read, and it
is authenticated as the associated data, so a changed length fails like a changed body.
The 96-bit nonce is the record's sequence number in its direction, ``counter`` as 12
bytes big-endian (four zero bytes, then a u64); each direction has its own key, both
counters start at 0, and a direction stops at ``2**64`` records rather than wrap.  A
replayed, reordered or dropped record is therefore opened with the wrong nonce and fails
authentication.

:class:`RecordSealer` and :class:`RecordOpener` are pure (no I/O); :class:`RecordReader`
reads records from an :class:`asyncio.StreamReader`.

Examples
--------
>>> key = bytes(16)
>>> wire = RecordSealer(key).seal(0x20, b"vote")
>>> wire[:4].hex(), len(wire)
('00000015', 25)
>>> opener = RecordOpener(key)
>>> opener.open(wire[:4], wire[4:])
(32, b'vote')
"""

from __future__ import annotations

import asyncio
from typing import Final

from chain.crypto import sm4
from chain.crypto.errors import CryptoError
from chain.errors import ConnectionClosed, NetError, RecordError

LENGTH_SIZE: Final = 4
TAG_SIZE: Final = sm4.TAG_SIZE
OVERHEAD: Final = 1 + TAG_SIZE
"""Sealed bytes beyond the payload: the channel byte and the GCM tag."""
MIN_RECORD: Final = OVERHEAD
DEFAULT_MAX_FRAME: Final = 16 * 1024 * 1024 + 64
"""Default largest ``length`` accepted: a 16 MiB consensus message plus room to spare."""
MIN_MAX_FRAME: Final = 64
MAX_RECORDS: Final = 2**64
"""Records per direction (counters ``0 .. 2**64 - 1``); then the direction refuses to go
on, so no nonce is ever used twice."""


def record_nonce(counter: int) -> bytes:
    """The 12-byte SM4-GCM nonce of record number ``counter``.

    Examples
    --------
    >>> record_nonce(1).hex()
    '000000000000000000000001'
    """
    if not 0 <= counter < MAX_RECORDS:
        raise RecordError(f"record counter {counter} is outside [0, 2**64)")
    return counter.to_bytes(12, "big")


def check_max_frame(max_frame: int) -> int:
    """Validate a ``max_frame`` setting and return it.

    Examples
    --------
    >>> check_max_frame(DEFAULT_MAX_FRAME)
    16777280
    """
    if not isinstance(max_frame, int) or isinstance(max_frame, bool):
        raise NetError(f"max_frame is an integer, not {type(max_frame).__name__}")
    if not MIN_MAX_FRAME <= max_frame < 2**32:
        raise NetError(f"max_frame must be within [{MIN_MAX_FRAME}, 2**32), got {max_frame}")
    return max_frame


class RecordSealer:
    """Seals the records of one direction under one key.

    Parameters
    ----------
    key : bytes
        16-byte SM4 key of this direction.
    max_frame : int
        Largest ``length`` to produce (the peer refuses larger ones).
    counter : int
        Number of the next record (records already sent in this direction).

    Examples
    --------
    >>> s = RecordSealer(bytes(16)); _ = s.seal(0x10, b""); s.counter
    1
    """

    __slots__ = ("_key", "counter", "max_frame")

    def __init__(self, key: bytes, max_frame: int = DEFAULT_MAX_FRAME, counter: int = 0) -> None:
        self._key = bytes(key)
        self.max_frame = check_max_frame(max_frame)
        self.counter = counter

    def seal(self, channel: int, payload: bytes) -> bytes:
        """Return the wire bytes (length and sealed body) of the next record.

        Raises
        ------
        RecordError
            The record would exceed ``max_frame``, the channel id is not a byte, or the
            direction has used all ``2**64`` nonces (reconnect).
        """
        if not isinstance(channel, int) or not 0 <= channel <= 0xFF:
            raise RecordError(f"a channel id is one byte, got {channel!r}")
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise RecordError(f"a record payload is bytes, not {type(payload).__name__}")
        length = OVERHEAD + len(payload)
        if length > self.max_frame:
            raise RecordError(
                f"a payload of {len(payload)} bytes does not fit in a record of at most "
                f"{self.max_frame} bytes (max_frame); split it or raise max_frame on every node"
            )
        if self.counter >= MAX_RECORDS:
            raise RecordError("this direction has used all 2**64 record nonces; reconnect for fresh keys")
        header = length.to_bytes(LENGTH_SIZE, "big")
        body = sm4.gcm_encrypt(self._key, record_nonce(self.counter), bytes([channel]) + payload, header)
        self.counter += 1
        return header + body


class RecordOpener:
    """Opens the records of one direction, in order, under one key.

    Parameters
    ----------
    key : bytes
        16-byte SM4 key of this direction.
    max_frame : int
        Largest ``length`` accepted (checked before the body is read).
    counter : int
        Number of the next record expected.
    """

    __slots__ = ("_key", "counter", "max_frame")

    def __init__(self, key: bytes, max_frame: int = DEFAULT_MAX_FRAME, counter: int = 0) -> None:
        self._key = bytes(key)
        self.max_frame = check_max_frame(max_frame)
        self.counter = counter

    def body_length(self, header: bytes) -> int:
        """Decode and check the 4-byte length prefix; return how many bytes to read next.

        Examples
        --------
        >>> RecordOpener(bytes(16), max_frame=64).body_length(bytes.fromhex("00000041"))
        Traceback (most recent call last):
        ...
        chain.errors.RecordError: record of 65 bytes exceeds max_frame 64; refusing to read it
        """
        length = int.from_bytes(header, "big")
        if length > self.max_frame:
            raise RecordError(
                f"record of {length} bytes exceeds max_frame {self.max_frame}; refusing to read it"
            )
        if length < MIN_RECORD:
            raise RecordError(f"record of {length} bytes is shorter than the {MIN_RECORD}-byte minimum")
        return length

    def open(self, header: bytes, body: bytes) -> tuple[int, bytes]:
        """Verify and decrypt the next record; return ``(channel id, payload)``.

        Raises
        ------
        RecordError
            Bad length, or the record fails authentication (modified, replayed,
            reordered, or sealed under another key).
        """
        if self.body_length(header) != len(body):
            raise RecordError("record body length differs from its length prefix")
        if self.counter >= MAX_RECORDS:
            raise RecordError("this direction has used all 2**64 record nonces; reconnect for fresh keys")
        try:
            plain = sm4.gcm_decrypt(self._key, record_nonce(self.counter), body, header)
        except CryptoError:
            raise RecordError(
                f"record {self.counter} failed authentication: it was modified, replayed, "
                "reordered or dropped in transit"
            ) from None
        self.counter += 1
        return plain[0], plain[1:]


class RecordReader:
    """Reads the records of one direction from an :class:`asyncio.StreamReader`.

    Cancelling :meth:`read` loses nothing: a length prefix already consumed is kept and
    the body is read by the next call (:meth:`asyncio.StreamReader.readexactly` consumes
    nothing until it has all the bytes it waits for).

    Parameters
    ----------
    reader : asyncio.StreamReader
        The connection's input.
    opener : RecordOpener
        Key, counter and size limit of this direction.
    """

    __slots__ = ("_header", "_reader", "opener")

    def __init__(self, reader: asyncio.StreamReader, opener: RecordOpener) -> None:
        self._reader = reader
        self.opener = opener
        self._header: bytes | None = None

    async def read(self) -> tuple[int, bytes]:
        """Read and open one record; return ``(channel id, payload)``.

        Raises
        ------
        ConnectionClosed
            The peer closed the stream at a record boundary.
        RecordError
            The stream ended inside a record, or the record is invalid (see
            :meth:`RecordOpener.open`).
        """
        if self._header is None:
            try:
                header = await self._reader.readexactly(LENGTH_SIZE)
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise ConnectionClosed("the peer closed the connection") from None
                raise RecordError(
                    f"connection closed mid-record (after {len(exc.partial)} length bytes)"
                ) from None
            self.opener.body_length(header)
            self._header = header
        length = self.opener.body_length(self._header)
        try:
            body = await self._reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise RecordError(
                f"connection closed mid-record ({len(exc.partial)} of {length} bytes received)"
            ) from None
        header, self._header = self._header, None
        return self.opener.open(header, body)
