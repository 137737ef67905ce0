"""Canonical encoding: deterministic bytes for hashing and signing.

Values are encoded as canonical CBOR (RFC 8949 §4.2.1 "core deterministic encoding":
shortest integer and length forms, map keys sorted by their encoded bytes, definite
lengths) with :mod:`cbor2`.  Only a small data model is allowed, so that two
implementations can agree byte for byte:

* ``None``, ``bool``, ``int`` (|x| < 2**64), ``bytes``, ``str``,
* ``list`` / ``tuple`` of allowed values, ``dict`` with ``str`` keys.

Floats, tags, sets and other types are refused.  :func:`decode` accepts only the
canonical encoding of a value (it re-encodes and compares), so one value has exactly one
byte string — a requirement for signatures and Merkle leaves that must not be malleable.
"""

from __future__ import annotations

from typing import Any

import cbor2

from chain.errors import ChainError

MAX_INT = 2**64 - 1
MAX_DEPTH = 32
MAX_ENCODED = 16 * 1024 * 1024


class CodecError(ChainError):
    """A value cannot be canonically encoded, or bytes are not a canonical encoding."""


def _check(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise CodecError(f"value nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, bytes, str)):
        return
    if isinstance(value, int):
        if not -MAX_INT - 1 <= value <= MAX_INT:
            raise CodecError("integers must fit in 64 bits")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CodecError(f"map keys must be str, got {type(key).__name__}")
            _check(item, depth + 1)
        return
    raise CodecError(f"type {type(value).__name__} is not allowed in canonical encoding")


def encode(value: Any) -> bytes:
    """Encode ``value`` canonically.

    Examples
    --------
    >>> encode({"b": 1, "a": [1, b"x"]}).hex()
    'a2616182014178616201'
    >>> encode({"a": [1, b"x"], "b": 1}) == encode({"b": 1, "a": [1, b"x"]})
    True
    """
    _check(value)
    return cbor2.dumps(value, canonical=True)


def decode(data: bytes, max_size: int = MAX_ENCODED) -> Any:
    """Decode canonical bytes; anything else (trailing bytes, non-canonical forms,
    disallowed types, oversized input) raises :class:`CodecError`.

    Examples
    --------
    >>> decode(bytes.fromhex("a2616182014178616201"))
    {'a': [1, b'x'], 'b': 1}
    """
    if not isinstance(data, (bytes, bytearray)):
        raise CodecError(f"canonical data is bytes, not {type(data).__name__}")
    if len(data) > max_size:
        raise CodecError(f"encoded value of {len(data)} bytes exceeds the limit of {max_size}")
    try:
        value = cbor2.loads(bytes(data))
    except Exception as exc:  # cbor2 raises several types for malformed input
        raise CodecError(f"malformed canonical encoding: {exc}") from None
    try:
        again = encode(value)
    except CodecError as exc:
        raise CodecError(f"encoded value uses a disallowed type: {exc}") from None
    if again != bytes(data):
        raise CodecError("bytes are not the canonical encoding of their value")
    return value
