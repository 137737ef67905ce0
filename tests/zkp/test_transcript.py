"""Fiat–Shamir binding: every public input and prover message feeds the challenges."""

from typing import Any

import pytest

import zkp.transfer as tr
from tests.zkp.helpers import seeded
from tests.zkp.transfer_fixtures import CHAIN, make_deal
from zkp.errors import ProofError
from zkp.group import ORDER, hash_to_point, scalar_to_bytes
from zkp.rangeproof import prove_range, verify_range
from zkp.sigma import dleq, prove, verify
from zkp.transcript import Transcript


class Omitting(Transcript):
    """A transcript that silently drops every message under one label (a Frozen-Heart bug)."""

    def __init__(self, protocol: bytes, omit: bytes) -> None:
        self.omit = omit
        self.omitted = 0
        super().__init__(protocol)

    def append_message(self, label: bytes, message: bytes) -> None:
        if label == self.omit:
            self.omitted += 1
            return
        super().append_message(label, message)


class Recording(Transcript):
    """A transcript that remembers what was absorbed before the last challenge."""

    def __init__(self, protocol: bytes) -> None:
        self.log: list[tuple[bytes, bytes]] = []
        super().__init__(protocol)

    def append_message(self, label: bytes, message: bytes) -> None:
        self.log.append((label, message))
        super().append_message(label, message)


def test_challenges_depend_on_everything() -> None:
    def run(*msgs: tuple[bytes, bytes], protocol: bytes = b"p") -> int:
        t = Transcript(protocol)
        for label, msg in msgs:
            t.append_message(label, msg)
        return t.challenge_scalar(b"c")

    base = run((b"a", b"1"), (b"b", b"2"))
    assert base == run((b"a", b"1"), (b"b", b"2"))
    assert 0 < base < ORDER
    for other in [
        run((b"a", b"1"), (b"b", b"3")),
        run((b"a", b"1"), (b"c", b"2")),
        run((b"a", b"12"), (b"b", b"")),  # framing: no ambiguity in where a message ends
        run((b"b", b"2"), (b"a", b"1")),  # order
        run((b"a", b"1")),
        run((b"a", b"1"), (b"b", b"2"), protocol=b"q"),
    ]:
        assert other != base
    t = Transcript(b"p")
    first, second = t.challenge_scalar(b"c"), t.challenge_scalar(b"c")
    assert first != second  # each challenge is absorbed before the next
    with pytest.raises(ValueError):
        t.append_u64(b"n", 2**64)


RANGE_LABELS = [b"bp", b"bp.n", b"bp.m", b"bp.pedersen", b"bp.gens", b"bp.V", b"bp.V.count", b"bp.A", b"bp.S"]
RANGE_LABELS += [b"bp.T1", b"bp.T2", b"bp.taux", b"bp.mu", b"bp.t_hat", b"bp.L", b"bp.R"]


@pytest.mark.parametrize("label", RANGE_LABELS)
def test_range_proof_prover_omitting_an_input_is_caught(label: bytes) -> None:
    t = Omitting(b"rp", label)
    proof, commitments = prove_range([7, 9], [1, 2], 8, t, seeded(3))
    assert t.omitted > 0
    with pytest.raises(ProofError):
        verify_range(commitments, 8, proof, Transcript(b"rp"))


def test_range_verifier_absorbs_the_whole_statement_and_proof() -> None:
    proof, commitments = prove_range([7, 9], [1, 2], 8, Transcript(b"rp"))
    t = Recording(b"rp")
    verify_range(commitments, 8, proof, t)
    absorbed = b"".join(msg for _, msg in t.log)
    for v in commitments:
        assert v.encode() in absorbed
    data = proof.encode()
    chunks = [data[i : i + 33] for i in range(0, 4 * 33, 33)]
    assert all(chunk in absorbed for chunk in chunks)
    for value in (proof.taux, proof.mu, proof.t_hat, proof.a, proof.b):
        assert scalar_to_bytes(value) in absorbed
    assert all(p.encode() in absorbed for p in proof.L + proof.R)
    # a and b are absorbed before the batching weight, the last challenge.
    labels = [label for label, _ in t.log]
    assert labels.index(b"bp.b") < labels.index(b"challenge:bp.batch")


@pytest.mark.parametrize("label", [b"sigma.target", b"sigma.base", b"sigma.witness", b"sigma.commitment"])
def test_sigma_prover_omitting_an_input_is_caught(label: bytes) -> None:
    G, H = hash_to_point(b"t", b"G"), hash_to_point(b"t", b"H")
    rel = dleq(G * 5, G, H * 5, H)
    proof = prove(rel, {"x": 5}, Omitting(b"s", label))
    with pytest.raises(ProofError):
        verify(rel, proof, Transcript(b"s"))


TRANSFER_LABELS = [b"chain", b"work", b"seq", b"owner", b"nullifier", b"new_owner", b"new_owner_pop"]
TRANSFER_LABELS += [b"auditor", b"shares", b"party", b"amount.c", b"amount.d"]


@pytest.mark.parametrize("label", TRANSFER_LABELS)
def test_transfer_prover_omitting_a_statement_input_is_caught(
    label: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Omitting] = []

    def factory(protocol: bytes) -> Any:
        t = Omitting(protocol, label) if protocol == tr._LABEL else Transcript(protocol)
        if isinstance(t, Omitting):
            made.append(t)
        return t

    monkeypatch.setattr(tr, "Transcript", factory)
    deal = make_deal(seed=5)
    monkeypatch.undo()
    assert made and made[0].omitted > 0
    with pytest.raises(ProofError):
        tr.verify_transfer(deal.transfer, CHAIN, deal.record, deal.auditor.public)
