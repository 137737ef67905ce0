import pytest

from tests.zkp.helpers import flip_byte, seeded
from zkp.errors import EncodingError, ParameterError, ProofError
from zkp.group import ORDER, hash_to_point
from zkp.pedersen import pedersen_gens
from zkp.sigma import (
    OrProof,
    SigmaProof,
    dleq,
    prove,
    prove_or,
    representation,
    schnorr,
    verify,
    verify_or,
)
from zkp.transcript import Transcript

G = hash_to_point(b"sigma-test", b"G")
H = hash_to_point(b"sigma-test", b"H")


def T() -> Transcript:
    return Transcript(b"sigma-test")


def test_schnorr_dleq_representation_complete_and_round_trip() -> None:
    x, v, r = 12345, 77, 991
    ped = pedersen_gens()
    cases = [
        (schnorr(G * x, G), {"x": x}),
        (dleq(G * x, G, H * x, H), {"x": x}),
        (representation(ped.commit(v, r), [("v", ped.g), ("r", ped.h)]), {"v": v, "r": r}),
        (
            schnorr(G * x, G).and_(representation(ped.commit(x, r), [("x", ped.g), ("r", ped.h)])),
            {"x": x, "r": r},
        ),
    ]
    for rel, wit in cases:
        proof = prove(rel, wit, T(), seeded(1))
        verify(rel, proof, T())
        data = proof.encode()
        assert len(data) == 32 * (1 + len(rel.witnesses()))
        assert SigmaProof.decode(data, len(rel.witnesses())) == proof


def test_every_byte_of_a_proof_matters() -> None:
    rel = dleq(G * 5, G, H * 5, H)
    data = prove(rel, {"x": 5}, T()).encode()
    for i in range(0, len(data), 7):
        tampered = flip_byte(data, i)
        try:
            bad = SigmaProof.decode(tampered, 2)
        except EncodingError:
            continue
        with pytest.raises(ProofError):
            verify(rel, bad, T())


def test_wrong_statement_witness_or_transcript_fails() -> None:
    x = 99
    proof = prove(dleq(G * x, G, H * x, H), {"x": x}, T())
    with pytest.raises(ProofError):
        verify(dleq(G * x, G, H * (x + 1), H), proof, T())  # other statement
    with pytest.raises(ProofError):
        verify(dleq(G * x, G, H * x, H), proof, Transcript(b"other protocol"))
    # A DLEQ with unequal logs cannot be proven (AND shares the witness by name).
    unequal = dleq(G * x, G, H * (x + 1), H)
    with pytest.raises(ProofError):
        verify(unequal, prove(unequal, {"x": x}, T()), T())
    # The same witness under two names is two witnesses: the relation is different.
    other_names = schnorr(G * x, G, "a").and_(schnorr(H * x, H, "b"))
    with pytest.raises(ProofError):
        verify(other_names, SigmaProof(proof.challenge, proof.responses * 2), T())


def test_malformed_and_missing() -> None:
    rel = schnorr(G * 3, G)
    with pytest.raises(ParameterError, match="no witness"):
        prove(rel, {}, T())
    with pytest.raises(EncodingError):
        SigmaProof.decode(bytes(63), 1)
    with pytest.raises(EncodingError):
        SigmaProof.decode(ORDER.to_bytes(32, "big") + bytes(32), 1)
    with pytest.raises(ProofError, match="responses"):
        verify(rel, SigmaProof(1, (1, 2)), T())


@pytest.mark.parametrize("known", [0, 1, 2])
def test_or_proof_hides_which_branch_and_verifies(known: int) -> None:
    secrets_ = [11, 22, 33]
    branches = [
        schnorr(G * s if i == known else hash_to_point(b"or", bytes([i])), G) for i, s in enumerate(secrets_)
    ]
    proof = prove_or(branches, known, {"x": secrets_[known]}, T(), seeded(known))
    verify_or(branches, proof, T())
    assert OrProof.decode(proof.encode(), branches) == proof
    assert sum(proof.challenges) % ORDER != 0


def test_or_proof_soundness() -> None:
    branches = [schnorr(hash_to_point(b"or", b"a"), G), schnorr(hash_to_point(b"or", b"b"), G)]
    # Knowing no branch's witness, a "proof" with a made-up witness fails.
    forged = prove_or(branches, 0, {"x": 5}, T())
    with pytest.raises(ProofError):
        verify_or(branches, forged, T())
    good_branches = [branches[0], schnorr(G * 7, G)]
    proof = prove_or(good_branches, 1, {"x": 7}, T())
    for i in range(len(proof.encode()) // 32):
        bad = OrProof.decode(flip_byte(proof.encode(), 32 * i + 31), good_branches)
        with pytest.raises(ProofError):
            verify_or(good_branches, bad, T())
    with pytest.raises(ProofError):
        verify_or(list(reversed(good_branches)), proof, T())
    with pytest.raises(ProofError, match="branches"):
        verify_or(good_branches[:1], proof, T())
    with pytest.raises(ParameterError):
        prove_or(good_branches, 2, {"x": 7}, T())
    with pytest.raises(EncodingError):
        OrProof.decode(proof.encode()[:-1], good_branches)
