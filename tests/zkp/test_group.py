import random

import pytest

from zkp.errors import EncodingError, ParameterError
from zkp.group import (
    ORDER,
    FixedBaseTable,
    MultiExp,
    Point,
    hash_to_point,
    hash_to_scalar,
    multiexp,
    random_scalar,
    scalar_from_bytes,
    scalar_to_bytes,
    sum_points,
)

P_FIELD = 2**256 - 2**32 - 977
G = hash_to_point(b"test", b"G")
H = hash_to_point(b"test", b"H")


def test_point_round_trip_and_group_laws() -> None:
    rng = random.Random(1)
    for _ in range(20):
        a, b = rng.randrange(ORDER), rng.randrange(ORDER)
        p = G * a
        assert Point.decode(p.encode(), allow_identity=True) == p
        assert G * a + G * b == G * ((a + b) % ORDER)
        assert (G * a) * b == G * (a * b % ORDER)
        assert -(G * a) == G * (ORDER - a) if a else (G * a).is_identity()
    assert (G * ORDER).is_identity()
    assert (G - G).is_identity()
    assert G + Point.identity() == G == Point.identity() + G
    assert G * -1 == -G
    assert len({G, G * 1, H}) == 2


def test_identity_is_refused_unless_allowed() -> None:
    enc = Point.identity().encode()
    assert enc == bytes(33)
    with pytest.raises(EncodingError, match="identity"):
        Point.decode(enc)
    assert Point.decode(enc, allow_identity=True).is_identity()


def _off_curve_x() -> bytes:
    for x in range(1, 100):
        try:
            Point.decode(b"\x02" + x.to_bytes(32, "big"))
        except EncodingError:
            return x.to_bytes(32, "big")
    raise AssertionError("no off-curve x below 100")


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"\x02" + b"\x00" * 31, "33 compressed bytes"),
        (b"\x02" + b"\x00" * 33, "33 compressed bytes"),
        (b"", "33 compressed bytes"),
        (b"\x04" + bytes(32), "compressed"),
        (b"\x05" + hash_to_point(b"t", b"x").encode()[1:], "compressed"),
        (b"\x02" + P_FIELD.to_bytes(32, "big"), "curve"),  # x = p: non-canonical
        (b"\x02" + (2**256 - 1).to_bytes(32, "big"), "curve"),
        (b"\x02" + _off_curve_x(), "curve"),
    ],
)
def test_malformed_points_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(EncodingError, match=reason):
        Point.decode(data)


def test_uncompressed_encoding_of_a_valid_point_is_refused() -> None:
    with pytest.raises(EncodingError):
        Point.decode(b"\x04" + G.encode()[1:] + bytes(32))


def test_scalars_are_canonical() -> None:
    assert scalar_from_bytes(scalar_to_bytes(ORDER - 1)) == ORDER - 1
    assert scalar_to_bytes(ORDER + 5) == scalar_to_bytes(5)
    for bad in (ORDER, ORDER + 1, 2**256 - 1):
        with pytest.raises(EncodingError, match="canonical"):
            scalar_from_bytes(bad.to_bytes(32, "big"))
    for size in (0, 31, 33):
        with pytest.raises(EncodingError, match="32 bytes"):
            scalar_from_bytes(bytes(size))
    assert all(0 < random_scalar() < ORDER for _ in range(50))


def test_hash_to_point_and_scalar_are_deterministic_and_separated() -> None:
    assert hash_to_point(b"a", b"b") == hash_to_point(b"a", b"b")
    assert hash_to_point(b"a", b"b") != hash_to_point(b"ab", b"")  # framing separates
    assert hash_to_point(b"a", b"b").encode()[0] == 2  # even y
    assert hash_to_scalar(b"a", b"b", b"c") != hash_to_scalar(b"a", b"bc")
    assert 0 <= hash_to_scalar(b"x") < ORDER


@pytest.mark.parametrize("count", [0, 1, 2, 7, 64, 65])
def test_fixed_base_msm_matches_naive(count: int) -> None:
    rng = random.Random(count)
    gens = [hash_to_point(b"msm", i.to_bytes(2, "big")) for i in range(max(count, 1))]
    table = FixedBaseTable(gens)
    scalars = [
        rng.choice([0, 1, ORDER - 1, rng.randrange(ORDER), rng.randrange(2**64)]) for _ in range(count)
    ]
    acc = MultiExp()
    acc.add_fixed(table, scalars)
    naive = Point.identity()
    for s, p in zip(scalars, gens, strict=False):
        naive = naive + p * s
    assert acc.result() == naive == multiexp(scalars, gens[:count])


def test_msm_mixes_fixed_and_variable_and_reaches_identity() -> None:
    table = FixedBaseTable([G, H])
    acc = MultiExp()
    acc.add_fixed(table, [3, 5])
    acc.add(-3, G)
    acc.add(-5, H)
    assert acc.result().is_identity()
    acc = MultiExp()
    acc.add_fixed(table, [7], offset=1)
    assert acc.result() == H * 7
    assert MultiExp().result().is_identity()
    assert sum_points([]).is_identity()
    assert sum_points([G, -G, H]) == H


def test_table_refuses_bad_use() -> None:
    table = FixedBaseTable([G])
    with pytest.raises(ParameterError):
        table.addresses([1, 2])
    with pytest.raises(ParameterError):
        table.addresses([1], offset=1)
    with pytest.raises(ParameterError):
        FixedBaseTable([G, Point.identity()])
    with pytest.raises(ParameterError):
        multiexp([1, 2], [G])
