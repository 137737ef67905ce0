"""Structure-aware mutations of valid inputs: byte flips, truncation, insertion, splicing
and (for canonical CBOR) type confusion of one part of the decoded value.

The mutator draws every choice from a :class:`Chooser`, so the same code runs under
hypothesis (choices are drawn from the strategy, so failures shrink) and in a seeded loop
(:class:`RandomChooser`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol

from chain import codec

CONFUSERS: tuple[Any, ...] = (0, True, False, None, b"", "", [], {}, -1, 2**64 - 1, -(2**64), [[[]]], {"": 0})

TOKENS: tuple[bytes, ...] = (
    b"\xd8\x1c",  # tag 28 (shareable)
    b"\xd8\x1d\x00",  # tag 29 (shared reference 0)
    b"\xd9\x01\x00",  # tag 256 (string-reference namespace)
    b"\xd8\x19\x00",  # tag 25 (string reference 0)
    b"\xc2\x41\x01",  # bignum
    b"\x9f",  # indefinite array
    b"\xbf",  # indefinite map
    b"\x5f",  # indefinite byte string
    b"\xff",  # break
    b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff",  # array of 2**64-1 items
    b"\x5a\xff\xff\xff\xff",  # byte string of 4 GiB
    b"\xbb\x00\x00\x00\x01\x00\x00\x00\x00",  # map of 2**32 entries
    b"\xf9\x7e\x00",  # half-float NaN
    b"\xfb\x7f\xf0\x00\x00\x00\x00\x00\x00",  # double infinity
    b"\xf7",  # undefined
    b"\x18\x01",  # non-shortest integer
    b"\x81" * 40,  # deep nesting
    b'"',
    b"{",
    b"}",
    b"[",
    b"\\u0000",
    b"99999999999999999999",
    b"-----END PUBLIC KEY-----",
    b"\x00" * 33,
    b"\xff" * 32,
)
INTERESTING = (0x00, 0x01, 0x17, 0x18, 0x1B, 0x1F, 0x3F, 0x7F, 0x80, 0x9F, 0xBF, 0xC0, 0xD8, 0xF6, 0xFB, 0xFF)


class Chooser(Protocol):
    def choose(self, n: int) -> int:
        """An integer in ``[0, n)``."""
        ...


class RandomChooser:
    """Choices from a seeded :class:`random.Random`."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def choose(self, n: int) -> int:
        return self.rng.randrange(n)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            out += _paths(item, (*prefix, i))
    elif isinstance(obj, dict):
        for key, item in obj.items():
            out += _paths(item, (*prefix, key))
    return out


def _replace(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    out: Any = list(obj) if isinstance(obj, list) else dict(obj)
    out[path[0]] = _replace(obj[path[0]], path[1:], value)
    return out


def _get(obj: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        obj = obj[p]
    return obj


def confuse(c: Chooser, data: bytes) -> bytes:
    """Replace one part of the canonical value in ``data`` by a value of another type, a
    sibling-sized variant, or drop/duplicate a list item / map entry; re-encode canonically."""
    try:
        value = codec.decode(data)
    except codec.CodecError:
        return data
    paths = _paths(value)
    path = paths[c.choose(len(paths))]
    part = _get(value, path)
    op = c.choose(4)
    if op == 0 or not isinstance(part, (list, dict)) or not part:
        new: Any = CONFUSERS[c.choose(len(CONFUSERS))]
        if op == 1 and isinstance(part, (bytes, str)):
            new = part * (1 + c.choose(300))  # the same type, longer
        elif op == 2 and isinstance(part, int) and not isinstance(part, bool):
            new = [part + 1, part - 1, -part, 2**64 - 1][c.choose(4)]
    elif isinstance(part, list):
        i = c.choose(len(part))
        new = part[:i] + part[i + 1 :] if op == 1 else [*part, part[i]] if op == 2 else [part]
    else:
        keys = list(part)
        k = keys[c.choose(len(keys))]
        new = {key: v for key, v in part.items() if key != k} if op == 1 else {**part, k + "x": part[k]}
    try:
        return codec.encode(_replace(value, path, new))
    except codec.CodecError:
        return data


def mutate(c: Chooser, seeds: Sequence[bytes], cbor: bool, max_steps: int = 4) -> bytes:
    """A mutant of one of ``seeds`` after up to ``max_steps`` stacked mutations."""
    data = seeds[c.choose(len(seeds))]
    if cbor and c.choose(2):
        data = confuse(c, data)
    for _ in range(c.choose(max_steps + 1)):
        n = len(data)
        op = c.choose(8)
        pos = c.choose(n + 1)
        if op == 0 and n:  # flip a bit
            i = min(pos, n - 1)
            data = data[:i] + bytes([data[i] ^ (1 << c.choose(8))]) + data[i + 1 :]
        elif op == 1 and n:  # set an interesting byte
            i = min(pos, n - 1)
            data = data[:i] + bytes([INTERESTING[c.choose(len(INTERESTING))]]) + data[i + 1 :]
        elif op == 2:  # truncate
            data = data[:pos]
        elif op == 3:  # insert a token
            data = data[:pos] + TOKENS[c.choose(len(TOKENS))] + data[pos:]
        elif op == 4:  # insert random bytes
            data = data[:pos] + bytes(c.choose(256) for _ in range(1 + c.choose(8))) + data[pos:]
        elif op == 5:  # delete a range
            data = data[:pos] + data[pos + 1 + c.choose(16) :]
        elif op == 6:  # splice with another seed
            other = seeds[c.choose(len(seeds))]
            data = data[:pos] + other[c.choose(len(other) + 1) :]
        else:  # duplicate a range
            end = min(n, pos + 1 + c.choose(64))
            data = data[:end] + data[pos:end] + data[end:]
        if cbor and c.choose(6) == 0:
            data = confuse(c, data)
    return data
