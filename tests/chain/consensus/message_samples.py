"""Well-formed consensus messages of every kind (unsigned: for codec and parsing tests)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chain.consensus.messages import (
    Block,
    CommitProof,
    Evidence,
    EvidenceMsg,
    Proposal,
    QuorumCertificate,
    SyncRequest,
    SyncResponse,
    Timeout,
    TimeoutCertificate,
    Vote,
    genesis_block,
)

CONFUSERS: tuple[Any, ...] = (0, True, None, b"", "", [], {})
"""Values of every type of the data model that replace one part of a message's object."""


def sample_qc(round: int = 3) -> QuorumCertificate:
    return QuorumCertificate(round, b"\x11" * 32, (("a" * 64, b"\x01" * 64), ("b" * 64, b"\x02" * 64)))


def sample_tc() -> TimeoutCertificate:
    return TimeoutCertificate(4, (("a" * 64, 2, b"\x03" * 64), ("c" * 64, 3, b"\x04" * 64)))


def sample_evidence() -> Evidence:
    return Evidence("vote", "a" * 64, 5, b"\x05" * 40, b"\x06" * 40)


def sample_block(height: int = 2) -> Block:
    parent = genesis_block("demo", b"\x22" * 32)
    return Block(
        "demo",
        height,
        height + 3,
        parent.hash,
        (b"tx-1", b"tx-2"),
        b"\x33" * 32,
        b"\x44" * 32,
        1_700_000_000_000,
        "a" * 64,
        sample_qc(),
        sample_tc(),
        (sample_evidence(),),
        1,
    )


def sample_messages() -> dict[str, Any]:
    """One instance of every message class (top-level messages and their parts)."""
    block = sample_block()
    proof = CommitProof(sample_block(3), sample_qc(6), (sample_block(4),))
    return {
        "qc": sample_qc(),
        "tc": sample_tc(),
        "evidence": sample_evidence(),
        "block": block,
        "vote": Vote("a" * 64, 7, b"\x55" * 32, b"\x07" * 64),
        "timeout": Timeout("a" * 64, 8, sample_qc(), b"\x08" * 64, sample_tc()),
        "proposal": Proposal(block, b"\x09" * 64),
        "commit_proof": proof,
        "sync_request": SyncRequest(5, b"\x66" * 32),
        "sync_response": SyncResponse((block,), proof, b"\x77" * 32),
        "evidence_msg": EvidenceMsg((sample_evidence(), sample_evidence())),
    }


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every position in a nested list/dict object, containers included (root first)."""
    yield prefix
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from paths(item, (*prefix, i))
    elif isinstance(obj, dict):
        for key, item in obj.items():
            yield from paths(item, (*prefix, key))


def replace_at(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of ``obj`` with the part at ``path`` replaced by ``value``."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    out: Any = list(obj) if isinstance(obj, list) else dict(obj)
    out[head] = replace_at(obj[head], rest, value)
    return out


def confused(obj: Any) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every single-position type confusion of ``obj``: ``(path, mutated object)``."""
    for path in paths(obj):
        for value in CONFUSERS:
            yield path, replace_at(obj, path, value)
