"""Canonical codec: decode bombs, structural refusals and the encode/decode round trip."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import codec
from chain.codec import MAX_DEPTH, CodecError, decode, encode
from chain.consensus.messages import ConsensusError, decode_message
from chain.epochs import EpochRecord
from chain.receipt import Receipt, ReceiptError
from chain.types import Genesis, Transaction, ValidationError
from privacy.agency import decode_message as agency_decode_message
from privacy.errors import PrivacyError


def _share_ref(index: int) -> bytes:
    return b"\xd8\x1d" + (bytes([index]) if index < 24 else b"\x18" + bytes([index]))


def shared_reference_bomb(levels: int) -> bytes:
    """``x_1 = [0, 0]``, ``x_k = [x_(k-1), ref(x_(k-1))]`` marked shareable (tag 28) and
    referenced (tag 29): ``2**levels`` leaves once expanded, about 6 bytes per level."""
    out = b"\xd8\x1c\x82" * levels + b"\x00\x00"
    for k in range(2, levels + 1):
        out += _share_ref(levels - k + 1)
    return out


def bomb_148() -> bytes:
    """A 148-byte input that expands to 2**24 leaves (tens of seconds on a cbor2-first decoder)."""
    data = b"\x82" + shared_reference_bomb(24) + b"\x63abc"
    assert len(data) == 148
    return data


def string_reference_bomb(size: int = 60_000) -> bytes:
    """Stringref namespace (tag 256) holding one 15 KB string, then references (tag 25) to it:
    ``size`` bytes that expand to about 300 MB."""
    body = b"\x59" + (15_000).to_bytes(2, "big") + b"s" * 15_000
    refs = (size - 3 - 5 - len(body)) // 3
    return b"\xd9\x01\x00\x9a" + (refs + 1).to_bytes(4, "big") + body + b"\xd8\x19\x00" * refs


BOMBS = {
    "shared-reference": bomb_148(),
    "string-reference": string_reference_bomb(),
    "huge-array": b"\x9b" + (2**32).to_bytes(8, "big") + b"\x00" * 8,
}


def _refused(data: bytes, match: str | None = None) -> str:
    start = time.perf_counter()
    with pytest.raises(CodecError, match=match) as info:
        decode(data)
    assert time.perf_counter() - start < 0.1
    return str(info.value)


def test_shared_reference_bomb_refused_fast() -> None:
    assert "tag 28" in _refused(bomb_148())


def test_string_reference_bomb_refused_fast() -> None:
    data = string_reference_bomb()
    assert 59_000 < len(data) < 64 * 1024
    assert "tag 256" in _refused(data)


@pytest.mark.parametrize(
    "data",
    [
        b"\x9f\x01\x02\xff",  # indefinite array
        b"\xbf\x61a\x01\xff",  # indefinite map
        b"\x5f\x41a\xff",  # indefinite byte string
        b"\x7f\x61a\xff",  # indefinite text string
        b"\x81\x9f\xff",  # nested
    ],
)
def test_indefinite_lengths_refused(data: bytes) -> None:
    _refused(data, "indefinite length")


@pytest.mark.parametrize("tag", [0, 1, 2, 23, 24, 25, 28, 29, 55799, 256, 2**32, 2**64 - 1])
def test_every_tag_refused(tag: int) -> None:
    head = encode(tag)  # shortest head of the tag number, as an unsigned integer
    data = bytes([0xC0 | head[0] & 0x1F]) + head[1:] + b"\x00"
    _refused(data, f"tag {tag} ")


@pytest.mark.parametrize(
    "data", [b"\xf7", b"\xf8\x20", b"\xf9\x3c\x00", b"\xfa\x3f\x80\x00\x00", b"\xfb" + b"\x00" * 8, b"\xff"]
)
def test_floats_and_simple_values_refused(data: bytes) -> None:
    _refused(data, "only false, true and null")


@pytest.mark.parametrize(
    "data",
    [
        b"\x18\x17",  # 23 in a 1-byte argument
        b"\x19\x00\xff",  # 255 in 2 bytes
        b"\x1a\x00\x00\xff\xff",  # 65535 in 4 bytes
        b"\x1b\x00\x00\x00\x00\xff\xff\xff\xff",  # 2**32-1 in 8 bytes
        b"\x38\x00",  # -1 in a 1-byte argument
        b"\x58\x01a",  # byte-string length 1 in a 1-byte argument
        b"\x98\x01\x00",  # array length
        b"\xb8\x01\x61a\x00",  # map length
    ],
)
def test_non_shortest_heads_refused(data: bytes) -> None:
    _refused(data, "shortest form")


@pytest.mark.parametrize(
    "data",
    [
        b"\x5b" + (2**62).to_bytes(8, "big"),
        b"\x7a\xff\xff\xff\xff" + b"a" * 10,
        b"\x9b" + (2**64 - 1).to_bytes(8, "big"),
        b"\xbb" + (2**63).to_bytes(8, "big") + b"\x00" * 16,
        b"\x9a\x00\x01\x00\x00" + b"\x00" * 1000,
    ],
)
def test_declared_length_beyond_input_refused(data: bytes) -> None:
    _refused(data, "bytes are left")


def test_depth_limit() -> None:
    ok: Any = []
    for _ in range(MAX_DEPTH):
        ok = [ok]
    assert decode(encode(ok)) == ok
    too_deep = b"\x81" * (MAX_DEPTH + 1) + b"\x00"
    _refused(too_deep, "nested deeper")
    _refused(b"\x81" * 100_000 + b"\x00", "nested deeper")  # no recursion anywhere


@pytest.mark.parametrize("key", [b"\x01", b"\x41a", b"\x80", b"\xa0", b"\xf6", b"\xf5", b"\x20"])
def test_map_keys_must_be_text(key: bytes) -> None:
    _refused(b"\xa1" + key + b"\x00", "map key is not a text string")


@pytest.mark.parametrize("data", [b"", b"\x82\x01", b"\x19\x01", b"\x62a", b"\xa1\x61a", b"\x82\x80"])
def test_truncated_refused(data: bytes) -> None:
    _refused(data, "truncated|bytes are left")


def test_trailing_bytes_refused() -> None:
    _refused(b"\x01\x02", "trailing")
    _refused(encode({"a": [1, 2]}) + b"\x00", "trailing")


def test_canonical_checks_still_run() -> None:
    with pytest.raises(CodecError, match="canonical"):
        decode(b"\xa2\x61b\x01\x61a\x02")  # keys out of order
    with pytest.raises(CodecError, match="canonical"):
        decode(b"\xa2\x61a\x01\x61a\x02")  # duplicate key
    with pytest.raises(CodecError, match="malformed"):
        decode(b"\x62\xff\xfe")  # invalid UTF-8


_KEYS = st.sampled_from(["", "a", "b", "aa", "ab", "ba", "zz", "é", "中", "a" * 23, "b" * 24])
_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.binary(max_size=30)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


def _by_reencoding(data: bytes) -> Any:
    """The definition decode implements: the bytes that re-encode to themselves."""
    import cbor2

    codec.scan(data)
    try:
        value = cbor2.loads(data)
    except Exception as exc:
        raise CodecError(str(exc)) from None
    if cbor2.dumps(value, canonical=True) != data:
        raise CodecError("not canonical")
    return value


@settings(max_examples=400, deadline=None)
@given(
    _VALUES, st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1 << 16), st.integers(0, 255)), max_size=3)
)
def test_decode_agrees_with_the_reencoding_definition(value: Any, edits: list[tuple[int, int, int]]) -> None:
    """``decode`` checks key order in ``scan`` instead of re-encoding: same verdicts."""
    import cbor2

    data = bytearray(cbor2.dumps(value, canonical=True))
    if isinstance(value, dict) and len(value) > 1 and edits and edits[0][0] == 0:
        data = bytearray(cbor2.dumps(dict(reversed(value.items()))))  # keys out of order
    for op, where, byte in edits:
        i = where % (len(data) + 1)
        if op == 1 and i < len(data):
            data[i] = byte
        elif op == 2:
            data.insert(i, byte)
        elif op == 3 and i < len(data):
            del data[i]
    raw = bytes(data)
    try:
        expected = ("ok", _by_reencoding(raw))
    except CodecError:
        expected = ("refused", None)
    try:
        got = ("ok", decode(raw))
    except CodecError:
        got = ("refused", None)
    assert got == expected


def test_size_limit_checked_before_scanning() -> None:
    with pytest.raises(CodecError, match="exceeds the limit"):
        decode(b"\xc0" * 100, max_size=10)


def test_scan_is_linear() -> None:
    """A 1 MiB array of small integers scans in well under a second."""
    data = b"\x9a" + (2**20).to_bytes(4, "big") + b"\x01" * 2**20
    start = time.perf_counter()
    codec.scan(data)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_outside_decoders_raise_their_own_error(name: str) -> None:
    data = BOMBS[name]
    decoders: list[tuple[Any, type[Exception]]] = [
        (Transaction.from_bytes, ValidationError),
        (decode_message, ConsensusError),
        (Receipt.from_bytes, ReceiptError),
        (Genesis.from_bytes, ValidationError),
        (EpochRecord.from_bytes, ValidationError),
        (lambda b: agency_decode_message(b, "refusal"), PrivacyError),
    ]
    for fn, error in decoders:
        start = time.perf_counter()
        with pytest.raises(error):
            fn(data)
        assert time.perf_counter() - start < 0.1, fn


def test_per_type_limits_checked_before_decoding() -> None:
    from chain.consensus.messages import MAX_MESSAGE_BYTES
    from chain.receipt import MAX_RECEIPT_BYTES
    from chain.types import MAX_GENESIS_BYTES, MAX_TX_BYTES

    with pytest.raises(ValidationError, match="exceeds"):
        Transaction.from_bytes(b"\xc0" * (MAX_TX_BYTES + 1))
    with pytest.raises(ValidationError, match="exceeds"):
        Genesis.from_bytes(b"\xc0" * (MAX_GENESIS_BYTES + 1))
    with pytest.raises(ReceiptError, match="exceeds"):
        Receipt.from_bytes(b"\xc0" * (MAX_RECEIPT_BYTES + 1))
    with pytest.raises(ConsensusError, match="exceeds"):
        decode_message(b"\xc0" * (MAX_MESSAGE_BYTES + 1))


def test_codec_module_refuses_non_bytes() -> None:
    with pytest.raises(CodecError):
        codec.decode("text")  # type: ignore[arg-type]


def values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Values of the canonical data model, nested a few levels."""
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**64), max_value=2**64 - 1)
        | st.binary(max_size=40)
        | st.text(max_size=20)
    )
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
        max_leaves=max_leaves,
    )


@settings(max_examples=200, deadline=None)
@given(values())
def test_round_trip(value: Any) -> None:
    data = encode(value)
    assert decode(data) == value
    assert encode(decode(data)) == data
