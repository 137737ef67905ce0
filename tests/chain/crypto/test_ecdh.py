"""Ephemeral ECDH on the SM2 curve: agreement, a plain-Python cross-check, and refusal of
every point that is not a valid curve point."""

from __future__ import annotations

import pickle

import pytest

from chain.crypto import KeyFormatError
from chain.crypto.ecdh import EphemeralKey
from chain.crypto.sm2 import SM2_CURVE, N
from tests.chain.crypto import sm2_reference as ref


def _point(data: bytes) -> tuple[int, int]:
    return int.from_bytes(data[1:33], "big"), int.from_bytes(data[33:], "big")


def test_both_sides_agree_and_match_the_reference_arithmetic() -> None:
    a, b = EphemeralKey.generate(), EphemeralKey.generate()
    secret = a.exchange(b.public_bytes)
    assert secret == b.exchange(a.public_bytes) and len(secret) == 32
    expected = ref.mul(SM2_CURVE, int.from_bytes(a._scalar, "big"), _point(b.public_bytes))
    assert expected is not None and secret == expected[0].to_bytes(32, "big")


def test_public_point_is_scalar_times_generator() -> None:
    key = EphemeralKey(N - 1)  # -G: same x as G
    assert _point(key.public_bytes) == (SM2_CURVE.gx, SM2_CURVE.p - SM2_CURVE.gy)


@pytest.mark.parametrize("scalar", [0, N, -1, True, 1.0])
def test_scalar_outside_range_is_refused(scalar: object) -> None:
    with pytest.raises(KeyFormatError):
        EphemeralKey(scalar)  # type: ignore[arg-type]


def _off_curve() -> bytes:
    good = bytearray(EphemeralKey.generate().public_bytes)
    good[-1] ^= 1
    return bytes(good)


@pytest.mark.parametrize(
    "peer",
    [
        b"",
        b"\x00",  # the point at infinity
        b"\x04" + bytes(64),  # (0, 0) is not on the curve
        b"\x04" + SM2_CURVE.p.to_bytes(32, "big") + bytes(32),  # x not below p
        b"\x02" + EphemeralKey(5).public_bytes[1:],  # not uncompressed
        EphemeralKey(5).public_bytes[:33],  # compressed form: refused
        _off_curve(),
        EphemeralKey(5).public_bytes + b"\x00",
    ],
    ids=["empty", "infinity", "zero", "x>=p", "bad-prefix", "compressed", "off-curve", "long"],
)
def test_invalid_peer_points_are_refused(peer: bytes) -> None:
    with pytest.raises(KeyFormatError):
        EphemeralKey.generate().exchange(peer)


def test_not_picklable_and_repr_hides_the_scalar() -> None:
    key = EphemeralKey(123456789)
    with pytest.raises(TypeError):
        pickle.dumps(key)
    assert "123456789" not in repr(key) and hex(123456789)[2:] not in repr(key)
