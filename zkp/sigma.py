"""Sigma protocols for linear relations, made non-interactive with :class:`Transcript`.

A :class:`Relation` is a set of equations ``Tⱼ = Σ xₖ·Bⱼₖ`` over named secret witnesses
``xₖ`` and public bases. Every classic proof is one:

* Schnorr (knowledge of a discrete log): ``P = x·G`` — :func:`schnorr`;
* Chaum–Pedersen (equality of discrete logs, DLEQ): ``P = x·G``, ``Q = x·H`` — :func:`dleq`;
* representation: ``C = v·g + r·h`` — :func:`representation`;
* AND composition: the union of equations, witnesses shared by name — :meth:`Relation.and_`;
* OR composition (Cramer–Damgård–Schoenmakers): :func:`prove_or` / :func:`verify_or`.

A proof is the challenge and one response per witness, ``(c, s₁…sₖ)``; the verifier
recomputes each prover commitment as ``Σ sₖ·Bⱼₖ − c·Tⱼ`` and re-derives ``c`` from the
transcript, which has absorbed the label, every base and target of every equation and
every commitment (special soundness, honest-verifier zero knowledge; Fiat–Shamir in the
random-oracle model).

Examples
--------
>>> from zkp.group import hash_to_point
>>> G = hash_to_point(b"doc", b"G"); x = 42
>>> rel = schnorr(G * x, G)
>>> proof = prove(rel, {"x": x}, Transcript(b"doc"))
>>> verify(rel, proof, Transcript(b"doc"))
>>> SigmaProof.decode(proof.encode(), 1) == proof
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from zkp.errors import EncodingError, ParameterError, ProofError
from zkp.group import (
    ORDER,
    SCALAR_BYTES,
    Point,
    ScalarSource,
    multiexp,
    random_scalar,
    scalar_from_bytes,
    scalar_to_bytes,
)
from zkp.transcript import Transcript


@dataclass(frozen=True)
class Equation:
    """``target = Σ witness·base`` over the ``terms`` ``(witness name, base)``."""

    target: Point
    terms: tuple[tuple[str, Point], ...]


@dataclass(frozen=True)
class Relation:
    """A conjunction of linear equations over named witnesses."""

    equations: tuple[Equation, ...]

    def witnesses(self) -> list[str]:
        """Witness names in order of first appearance (the order of the responses)."""
        seen: dict[str, None] = {}
        for eq in self.equations:
            for name, _ in eq.terms:
                seen.setdefault(name, None)
        return list(seen)

    def and_(self, other: Relation) -> Relation:
        """AND composition: both relations hold, witnesses with one name are equal."""
        return Relation(self.equations + other.equations)

    def bind(self, transcript: Transcript) -> None:
        """Absorb the whole statement: every equation's target, witness names and bases."""
        transcript.append_u64(b"sigma.equations", len(self.equations))
        for eq in self.equations:
            transcript.append_point(b"sigma.target", eq.target)
            transcript.append_u64(b"sigma.terms", len(eq.terms))
            for name, base in eq.terms:
                transcript.append_message(b"sigma.witness", name.encode())
                transcript.append_point(b"sigma.base", base)

    def _commitments(self, values: Mapping[str, int], challenge: int) -> list[Point]:
        out = []
        for eq in self.equations:
            scalars = [values[name] for name, _ in eq.terms] + [-challenge]
            out.append(multiexp(scalars, [base for _, base in eq.terms] + [eq.target]))
        return out


def schnorr(public: Point, base: Point, witness: str = "x") -> Relation:
    """Knowledge of ``x`` with ``public = x·base``."""
    return Relation((Equation(public, ((witness, base),)),))


def dleq(p: Point, g: Point, q: Point, h: Point, witness: str = "x") -> Relation:
    """Chaum–Pedersen: one ``x`` with ``p = x·g`` and ``q = x·h``."""
    return schnorr(p, g, witness).and_(schnorr(q, h, witness))


def representation(target: Point, terms: Sequence[tuple[str, Point]]) -> Relation:
    """Knowledge of an opening ``target = Σ xᵢ·Gᵢ``."""
    return Relation((Equation(target, tuple(terms)),))


@dataclass(frozen=True)
class SigmaProof:
    """``(challenge, responses)`` in the relation's witness order."""

    challenge: int
    responses: tuple[int, ...]

    def encode(self) -> bytes:
        """``32 × (1 + #witnesses)`` bytes."""
        return b"".join(scalar_to_bytes(s) for s in (self.challenge, *self.responses))

    @classmethod
    def decode(cls, data: bytes, witnesses: int) -> SigmaProof:
        """Parse a proof for a relation with ``witnesses`` witnesses (strict length)."""
        if len(data) != SCALAR_BYTES * (1 + witnesses):
            raise EncodingError(
                f"sigma proof must be {SCALAR_BYTES * (1 + witnesses)} bytes for {witnesses} witnesses, "
                f"got {len(data)}"
            )
        values = [scalar_from_bytes(data[i : i + 32]) for i in range(0, len(data), 32)]
        return cls(values[0], tuple(values[1:]))


def _challenge(relations: Sequence[Relation], commitments: Sequence[Point], transcript: Transcript) -> int:
    transcript.append_message(b"sigma", b"linear-relation")
    transcript.append_u64(b"sigma.branches", len(relations))
    for rel in relations:
        rel.bind(transcript)
    transcript.append_points(b"sigma.commitment", list(commitments))
    return transcript.challenge_scalar(b"sigma.challenge")


def prove(
    relation: Relation,
    witness: Mapping[str, int],
    transcript: Transcript,
    rng: ScalarSource = random_scalar,
) -> SigmaProof:
    """Prove ``relation`` for ``witness`` (a value for every witness name)."""
    names = relation.witnesses()
    missing = [n for n in names if n not in witness]
    if missing:
        raise ParameterError(f"no witness value for {missing}")
    nonces = {name: rng() for name in names}
    commitments = relation._commitments(nonces, 0)
    c = _challenge([relation], commitments, transcript)
    return SigmaProof(c, tuple((nonces[n] + c * witness[n]) % ORDER for n in names))


def verify(relation: Relation, proof: SigmaProof, transcript: Transcript) -> None:
    """Raise :class:`ProofError` unless ``proof`` proves ``relation`` on ``transcript``."""
    names = relation.witnesses()
    if len(proof.responses) != len(names):
        raise ProofError(f"sigma proof has {len(proof.responses)} responses for {len(names)} witnesses")
    commitments = relation._commitments(dict(zip(names, proof.responses, strict=True)), proof.challenge)
    if _challenge([relation], commitments, transcript) != proof.challenge:
        raise ProofError("sigma proof does not verify (challenge mismatch)")


@dataclass(frozen=True)
class OrProof:
    """One challenge share and one response vector per branch."""

    challenges: tuple[int, ...]
    responses: tuple[tuple[int, ...], ...]

    def encode(self) -> bytes:
        """All challenge shares, then every branch's responses."""
        flat = [*self.challenges, *(s for branch in self.responses for s in branch)]
        return b"".join(scalar_to_bytes(s) for s in flat)

    @classmethod
    def decode(cls, data: bytes, relations: Sequence[Relation]) -> OrProof:
        """Parse a proof for ``relations`` (their witness counts fix the length)."""
        counts = [len(r.witnesses()) for r in relations]
        expected = SCALAR_BYTES * (len(relations) + sum(counts))
        if len(data) != expected:
            raise EncodingError(f"OR proof must be {expected} bytes for these branches, got {len(data)}")
        values = [scalar_from_bytes(data[i : i + 32]) for i in range(0, len(data), 32)]
        challenges, rest = values[: len(relations)], values[len(relations) :]
        responses = []
        for count in counts:
            responses.append(tuple(rest[:count]))
            rest = rest[count:]
        return cls(tuple(challenges), tuple(responses))


def prove_or(
    relations: Sequence[Relation],
    known: int,
    witness: Mapping[str, int],
    transcript: Transcript,
    rng: ScalarSource = random_scalar,
) -> OrProof:
    """Prove that at least one of ``relations`` holds, knowing ``witness`` for branch ``known``.

    Examples
    --------
    >>> from zkp.group import hash_to_point
    >>> G = hash_to_point(b"doc", b"G"); P = G * 9; Q = hash_to_point(b"doc", b"Q")
    >>> branches = [schnorr(Q, G), schnorr(P, G)]
    >>> proof = prove_or(branches, 1, {"x": 9}, Transcript(b"or"))
    >>> verify_or(branches, proof, Transcript(b"or"))
    """
    if not 0 <= known < len(relations):
        raise ParameterError(f"known branch {known} is not one of {len(relations)} branches")
    challenges: list[int] = []
    responses: list[tuple[int, ...]] = []
    commitments: list[Point] = []
    nonces: dict[str, int] = {}
    for i, rel in enumerate(relations):
        names = rel.witnesses()
        if i == known:
            nonces = {n: rng() for n in names}
            commitments += rel._commitments(nonces, 0)
            challenges.append(0)
            responses.append(())
        else:
            c_i, s_i = rng(), tuple(rng() for _ in names)
            commitments += rel._commitments(dict(zip(names, s_i, strict=True)), c_i)
            challenges.append(c_i)
            responses.append(s_i)
    c = _challenge(relations, commitments, transcript)
    c_known = (c - sum(challenges)) % ORDER
    challenges[known] = c_known
    names = relations[known].witnesses()
    missing = [n for n in names if n not in witness]
    if missing:
        raise ParameterError(f"no witness value for {missing}")
    responses[known] = tuple((nonces[n] + c_known * witness[n]) % ORDER for n in names)
    return OrProof(tuple(challenges), tuple(responses))


def verify_or(relations: Sequence[Relation], proof: OrProof, transcript: Transcript) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows that one of ``relations`` holds."""
    if len(proof.challenges) != len(relations) or len(proof.responses) != len(relations):
        raise ProofError("OR proof has the wrong number of branches")
    commitments: list[Point] = []
    for rel, c_i, s_i in zip(relations, proof.challenges, proof.responses, strict=True):
        names = rel.witnesses()
        if len(s_i) != len(names):
            raise ProofError("OR proof branch has the wrong number of responses")
        commitments += rel._commitments(dict(zip(names, s_i, strict=True)), c_i)
    if _challenge(relations, commitments, transcript) != sum(proof.challenges) % ORDER:
        raise ProofError("OR proof does not verify (challenge shares do not sum to the challenge)")
