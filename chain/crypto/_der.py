"""Minimal strict DER (X.690) encoding for the few structures SM2 needs.

Only definite, minimal lengths are accepted; anything else is a :class:`ValueError` that
the callers turn into a format error of their own.
"""

from __future__ import annotations

INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
OID = 0x06
SEQUENCE = 0x30
MAX_LENGTH = 1 << 20


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, value: bytes) -> bytes:
    """Encode one tag-length-value element."""
    return bytes([tag]) + _length(len(value)) + value


def integer(value: int) -> bytes:
    """Encode a non-negative INTEGER."""
    if value < 0:
        raise ValueError("negative INTEGER")
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return tlv(INTEGER, body)


def sequence(*items: bytes) -> bytes:
    """Encode a SEQUENCE of already-encoded items."""
    return tlv(SEQUENCE, b"".join(items))


def read(data: bytes, offset: int = 0) -> tuple[int, bytes, int]:
    """Read one element at ``offset``: returns ``(tag, value, next_offset)``."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER element")
    tag = data[offset]
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 3 or pos + count > len(data):
            raise ValueError("unsupported or truncated DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise ValueError("non-minimal DER length")
        pos += count
    if length > MAX_LENGTH or pos + length > len(data):
        raise ValueError("DER element longer than its container")
    return tag, data[pos : pos + length], pos + length


def read_all(data: bytes) -> list[tuple[int, bytes]]:
    """Split a run of elements that must exactly fill ``data``."""
    out = []
    pos = 0
    while pos < len(data):
        tag, value, pos = read(data, pos)
        out.append((tag, value))
    return out


def read_single(data: bytes, tag: int) -> bytes:
    """Read exactly one element of ``tag`` that spans all of ``data``."""
    got, value, end = read(data)
    if got != tag or end != len(data):
        raise ValueError(f"expected a single DER element of tag {tag:#x}")
    return value


def parse_integer(value: bytes) -> int:
    """Decode the body of a non-negative minimal INTEGER."""
    if not value:
        raise ValueError("empty INTEGER")
    if value[0] & 0x80:
        raise ValueError("negative INTEGER")
    if len(value) > 1 and value[0] == 0 and not value[1] & 0x80:
        raise ValueError("non-minimal INTEGER")
    return int.from_bytes(value, "big")
