"""Canonical encoding: deterministic bytes for hashing and signing.

Values are encoded as canonical CBOR (RFC 8949 §4.2.1 "core deterministic encoding":
shortest integer and length forms, map keys sorted by their encoded bytes, definite
lengths) with :mod:`cbor2`.  Only a small data model is allowed, so that two
implementations can agree byte for byte:

* ``None``, ``bool``, ``int`` (|x| < 2**64), ``bytes``, ``str``,
* ``list`` / ``tuple`` of allowed values, ``dict`` with ``str`` keys.

Floats, tags, sets and other types are refused.  :func:`decode` accepts only the
canonical encoding of a value (:func:`scan` checks every head and the order of every
map's keys before anything is built), so one value has exactly one byte string — a
requirement for signatures and Merkle leaves that must not be malleable.
"""

from __future__ import annotations

from typing import Any

import cbor2

from chain.errors import CodecError as CodecError  # re-exported under its historical path

MAX_INT = 2**64 - 1
MAX_DEPTH = 32
MAX_ENCODED = 16 * 1024 * 1024


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


def encode_head(major: int, n: int) -> bytes:
    """The shortest (canonical) head of a CBOR item of ``major`` type with argument ``n``.

    Examples
    --------
    >>> encode_head(2, 300).hex()  # a byte string of 300 bytes follows
    '59012c'
    """
    m = major << 5
    if n < 24:
        return bytes([m | n])
    if n < 0x100:
        return bytes([m | 24, n])
    if n < 0x10000:
        return bytes([m | 25]) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes([m | 26]) + n.to_bytes(4, "big")
    return bytes([m | 27]) + n.to_bytes(8, "big")


_SIMPLE = {
    23: "undefined",
    25: "a half-precision float",
    26: "a single-precision float",
    27: "a double-precision float",
    31: 'a "break" (indefinite length)',
}
_ONLY_SIMPLE = "(only false, true and null are in the data model)"


def _head_error(offset: int, message: str) -> CodecError:
    return CodecError(f"{message} at byte {offset}")


# One loop over the bytes with its state in locals, for speed: complexity 21, kept whole.
def scan(data: bytes, max_depth: int = MAX_DEPTH) -> None:  # noqa: C901
    """Check the structure of ``data`` in one pass over its bytes, expanding nothing.

    Runs before any value is built, in time linear in ``len(data)`` and constant memory
    per nesting level, so no input can make decoding expensive. Refuses (with
    :class:`CodecError`) everything outside the data model or the canonical form that can
    be seen from the heads alone:

    * tags (major type 6), whatever their number — the data model has none, and shared or
      string references (tags 28/29, 256/25) would expand exponentially;
    * indefinite lengths (additional information 31) and reserved heads (28-30);
    * major type 7 other than ``false``, ``true`` and ``null`` (floats, ``undefined``,
      other simple values, a stray "break");
    * integer and length heads not in their shortest form;
    * a declared length (bytes, text, array items, map entries) larger than what is left
      of the input — every item needs at least one byte, so an array declaring 2**32 items
      in a few bytes is refused before anything is allocated;
    * nesting deeper than ``max_depth`` (the top-level value is at depth 0);
    * map keys that are not text strings, or not in strictly increasing order of their
      encodings (which for text keys is the deterministic order: shorter first, then
      bytewise) — a repeated key included;
    * truncated input and trailing bytes.

    UTF-8 validity is left to :func:`decode`, which builds the value (now bounded by the
    input size).

    Examples
    --------
    >>> scan(bytes.fromhex("a2616182014178616201"))
    >>> scan(bytes.fromhex("d81c80"))
    Traceback (most recent call last):
    ...
    chain.errors.CodecError: tag 28 (CBOR tags are not in the data model) at byte 0
    """
    n = len(data)
    pos = 0
    # The innermost open container: items it still expects (-1: none open) and whether it
    # is a map (its keys and values are counted; an even count left means a key is next).
    # Outer containers wait on ``stack``.
    left = -1
    in_map = False
    prev_key = b""  # the encoded previous key of the innermost open map
    stack: list[tuple[int, bool, bytes]] = []
    from_bytes = int.from_bytes
    while True:
        if pos >= n:
            raise CodecError(f"truncated input: {n} bytes end inside a value")
        start = pos
        initial = data[pos]
        pos += 1
        major = initial >> 5
        info = initial & 0x1F
        if in_map and not left & 1 and major != 3:
            raise _head_error(start, "map key is not a text string")
        if major == 7:
            if info < 20 or info > 22:
                raise _head_error(start, f"{_SIMPLE.get(info, 'a simple value')} {_ONLY_SIMPLE}")
        else:
            if info < 24:
                value = info
            elif info < 28:
                size = 1 << (info - 24)
                if pos + size > n:
                    raise _head_error(start, f"truncated input: a {size}-byte head argument")
                value = from_bytes(data[pos : pos + size], "big")
                pos += size
                if value < (24 if size == 1 else 1 << (4 * size)):
                    raise _head_error(start, f"head argument {value} not in its shortest form")
            elif info == 31:
                raise _head_error(start, "indefinite length (only definite lengths are canonical)")
            else:
                raise _head_error(start, f"reserved additional information {info}")
            if major == 2 or major == 3:
                if value > n - pos:
                    raise _head_error(
                        start, f"string of {value} bytes declared, only {n - pos} bytes are left"
                    )
                pos += value
                if in_map and not left & 1:  # a key: encoded keys strictly increase
                    key = data[start:pos]
                    if key <= prev_key:
                        raise _head_error(start, "map key out of canonical order or repeated")
                    prev_key = key
            elif major == 4 or major == 5:
                items = value if major == 4 else 2 * value
                if items > n - pos:
                    kind = "array" if major == 4 else "map"
                    raise _head_error(
                        start, f"{kind} of {value} items declared, only {n - pos} bytes are left"
                    )
                if items:
                    if len(stack) >= max_depth:
                        raise _head_error(start, f"value nested deeper than {max_depth} levels")
                    stack.append((left - 1, in_map, prev_key))
                    left = items
                    in_map = major == 5
                    prev_key = b""
                    continue
            elif major == 6:
                raise _head_error(start, f"tag {value} (CBOR tags are not in the data model)")
        # One item is complete: close every container it completes.
        left -= 1
        while left == 0:
            left, in_map, prev_key = stack.pop()
        if left < 0:
            break
    if pos != n:
        raise _head_error(pos, f"{n - pos} trailing bytes after the value")


def decode(data: object, max_size: int = MAX_ENCODED) -> Any:
    """Decode canonical bytes; anything else (trailing bytes, non-canonical forms,
    disallowed types, oversized input) raises :class:`CodecError`.

    The size limit is checked first, then :func:`scan` checks the structure and the
    canonical form without expanding anything, and only then is the value built (its
    text decoded as strict UTF-8): time and memory are linear in ``len(data)`` whatever
    it holds.
    Callers that take bytes from outside pass their own ``max_size`` (one limit per
    message type, e.g. :data:`chain.types.MAX_TX_BYTES`).

    Examples
    --------
    >>> decode(bytes.fromhex("a2616182014178616201"))
    {'a': [1, b'x'], 'b': 1}
    >>> decode(bytes.fromhex("9bffffffffffffffff"))
    Traceback (most recent call last):
    ...
    chain.errors.CodecError: array of 18446744073709551615 items declared, only 0 bytes are left at byte 0
    """
    # ``data`` is typed ``object``: the compiled module (scripts/native.py) checks argument
    # types itself, and input from outside must get a CodecError whatever its type
    if not isinstance(data, (bytes, bytearray)):
        raise CodecError(f"canonical data is bytes, not {type(data).__name__}")
    if len(data) > max_size:
        raise CodecError(f"encoded value of {len(data)} bytes exceeds the limit of {max_size}")
    raw = bytes(data)
    scan(raw)
    try:
        # scan() admitted only the canonical form of the data model (shortest heads,
        # definite lengths, no tags, floats or other simple values, text map keys in strictly
        # increasing order), so once the text decodes as UTF-8 the bytes are the value's one
        # encoding: no re-encoding to compare (tests/chain/test_codec.py checks the two agree)
        return cbor2.loads(raw)
    except Exception as exc:  # cbor2 raises several types for malformed input
        raise CodecError(f"malformed canonical encoding: {exc}") from None
