import pytest

import zkp.rangeproof as rp
from tests.zkp.helpers import flip_byte, seeded
from zkp.errors import EncodingError, ParameterError, ProofError
from zkp.group import Point
from zkp.pedersen import pedersen_gens
from zkp.rangeproof import RangeProof, prove_range, verify_range
from zkp.transcript import Transcript


def T() -> Transcript:
    return Transcript(b"rp-test")


@pytest.mark.parametrize(
    "n, values",
    [
        (8, [0]),
        (8, [255, 1]),
        (16, [65535, 0, 7]),
        (32, [2**32 - 1]),
        (64, [0]),
        (64, [2**64 - 1, 2**63, 1, 0]),
    ],
)
def test_completeness_and_round_trip(n: int, values: list[int]) -> None:
    blinds = list(range(3, 3 + len(values)))
    proof, commitments = prove_range(values, blinds, n, T(), seeded(n))
    ped = pedersen_gens()
    assert commitments == [ped.commit(v, b) for v, b in zip(values, blinds, strict=True)]
    data = proof.encode()
    assert len(data) == RangeProof.size(n, len(values))
    decoded = RangeProof.decode(data, n, len(values))
    assert decoded == proof
    verify_range(commitments, n, decoded, T())


def test_single_64_bit_proof_is_688_bytes() -> None:
    assert RangeProof.size(64, 1) == 688 <= 700
    assert RangeProof.size(64, 16) == (4 + 2 * 10) * 33 + 5 * 32


def test_every_field_is_checked() -> None:
    proof, commitments = prove_range([42, 2**64 - 1], [5, 6], 64, T())
    data = proof.encode()
    # Flip a bit in every 32-byte stretch: each point, scalar and L/R is covered.
    for i in range(5, len(data), 16):
        try:
            bad = RangeProof.decode(flip_byte(data, i), 64, 2)
        except EncodingError:
            continue  # a flipped point that is off the curve is refused at decoding
        with pytest.raises(ProofError):
            verify_range(commitments, 64, bad, T())


def test_proof_for_one_statement_fails_for_others() -> None:
    proof, commitments = prove_range([1000, 2000], [1, 2], 32, T())
    ped = pedersen_gens()
    others = [
        [commitments[1], commitments[0]],
        [commitments[0], ped.commit(2001, 2)],
        [commitments[0], commitments[1] + ped.g],
    ]
    for other in others:
        with pytest.raises(ProofError):
            verify_range(other, 32, proof, T())
    with pytest.raises(ProofError):
        verify_range(commitments, 32, proof, Transcript(b"other"))
    # Another n with the same number of rounds is another statement.
    with pytest.raises(ProofError):
        verify_range(commitments[:1], 64, proof, T())


def test_out_of_range_value_cannot_be_proven(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ParameterError, match="not in"):
        prove_range([256], [1], 8, T())
    with pytest.raises(ParameterError, match="not in"):
        prove_range([-1], [1], 8, T())
    # A cheating prover that skips the check produces a proof the verifier refuses.
    monkeypatch.setattr(rp, "_check_values", lambda values, n: None)  # private on purpose: a cheater
    for value in (256, 2**8 + 5, -1):
        proof, commitments = prove_range([value], [9], 8, T())
        with pytest.raises(ProofError):
            verify_range(commitments, 8, proof, T())


def test_shapes_and_malformed_encodings() -> None:
    with pytest.raises(ParameterError):
        prove_range([1], [1], 12, T())
    with pytest.raises(ParameterError):
        prove_range([1] * 17, [1] * 17, 64, T())
    with pytest.raises(ParameterError):
        prove_range([1, 2], [1], 64, T())
    with pytest.raises(ParameterError):
        prove_range([], [], 64, T())
    proof, commitments = prove_range([3], [4], 8, T())
    data = proof.encode()
    for bad in (data[:-1], data + b"\x00", b""):
        with pytest.raises(EncodingError, match="bytes"):
            RangeProof.decode(bad, 8, 1)
    with pytest.raises(EncodingError, match="identity"):
        RangeProof.decode(bytes(33) + data[33:], 8, 1)
    with pytest.raises(EncodingError, match="canonical"):
        RangeProof.decode(data[: 4 * 33] + b"\xff" * 32 + data[4 * 33 + 32 :], 8, 1)
    short = RangeProof(
        *(getattr(proof, f) for f in ("A", "S", "T1", "T2", "taux", "mu", "t_hat")), (), (), 1, 1
    )
    with pytest.raises(ProofError, match="rounds"):
        verify_range(commitments, 8, short, T())
    with pytest.raises(ProofError):
        verify_range([Point.identity()], 8, proof, T())


def test_aggregation_pads_to_power_of_two() -> None:
    values = [1, 2, 3, 4, 5]
    proof, commitments = prove_range(values, [1] * 5, 8, T())
    assert len(proof.L) == 6  # 8 values × 8 bits = 64 = 2^6
    verify_range(commitments, 8, proof, T())


@pytest.mark.slow
@pytest.mark.parametrize("m", [8, 16])
def test_large_aggregates(m: int) -> None:
    values = [(2**64 - 1) // (i + 1) for i in range(m)]
    proof, commitments = prove_range(values, list(range(1, m + 1)), 64, T())
    verify_range(commitments, 64, RangeProof.decode(proof.encode(), 64, m), T())
