"""The anchor record's direct encoding is byte for byte ``codec.encode`` of its map."""

from __future__ import annotations

import random

import pytest

from chain import codec
from chain.contracts.anchor import encode_record

_INTS = [0, 1, 23, 24, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**64 - 1]


def _record(rng: random.Random) -> dict[str, object]:
    return {
        "tx_id": rng.randbytes(rng.choice([0, 23, 24, 32, 300])),
        "height": rng.choice([*_INTS, rng.randrange(2**40)]),
        "kind": "".join(rng.choice("kwé中") for _ in range(rng.choice([1, 5, 23, 24, 64]))),
        "meta": rng.choice([b"", rng.randbytes(32)]),
        "count": rng.choice(_INTS),
        "sender": rng.randbytes(32),
        "timestamp_ms": rng.choice([*_INTS, 1_764_000_000_000]),
    }


def test_record_bytes_equal_the_canonical_encoding_of_the_map() -> None:
    rng = random.Random(5)
    for _ in range(3_000):
        rec = _record(rng)
        assert encode_record(**rec) == codec.encode(rec)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [("height", -1), ("count", -(2**64)), ("timestamp_ms", True), ("meta", None), ("kind", b"k")],
)
def test_values_outside_the_direct_shapes_go_through_the_codec(field: str, value: object) -> None:
    rec = _record(random.Random(1))
    rec[field] = value
    assert encode_record(**rec) == codec.encode(rec)  # type: ignore[arg-type]


@pytest.mark.parametrize(("field", "value"), [("height", 2**64), ("count", -(2**64) - 1), ("meta", 1.5)])
def test_values_the_codec_refuses_are_refused(field: str, value: object) -> None:
    rec = _record(random.Random(2))
    rec[field] = value
    with pytest.raises(codec.CodecError):
        encode_record(**rec)  # type: ignore[arg-type]


def test_reads_names_the_digest_key_and_never_raises() -> None:
    from chain.contracts.anchor import AnchorContract, anchor_key

    contract = AnchorContract()
    assert contract.reads({"digest": b"\x01" * 32, "kind": "w"}) == [anchor_key(b"\x01" * 32)]
    for payload in ({}, {"digest": "text"}, {"digest": 5}, {"digest": None}, {"digest": [b"x"]}):
        assert contract.reads(payload) == []
