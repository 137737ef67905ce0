"""Consensus message parsing: every decoded value either parses or raises ConsensusError."""

from __future__ import annotations

from typing import Any

import pytest

from chain.codec import encode
from chain.consensus.messages import (
    ConsensusError,
    QuorumCertificate,
    decode_message,
    encode_message,
)
from tests.chain.consensus.message_samples import CONFUSERS, confused, sample_messages

SAMPLES = sample_messages()
TOP_LEVEL = ("vote", "timeout", "proposal", "sync_request", "sync_response", "evidence_msg")


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_from_obj_round_trip(name: str) -> None:
    msg = SAMPLES[name]
    assert type(msg).from_obj(msg.to_obj()) == msg


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_type_confusion_raises_only_consensus_error(name: str) -> None:
    msg = SAMPLES[name]
    cls = type(msg)
    tried = 0
    for path, mutant in confused(msg.to_obj()):
        tried += 1
        try:
            cls.from_obj(mutant)
        except ConsensusError:
            pass
        except Exception as exc:  # pragma: no cover - the failure message names the mutant
            raise AssertionError(f"{cls.__name__}.from_obj at {path}: {type(exc).__name__}: {exc}") from exc
    assert tried >= len(CONFUSERS)


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_type_confusion_through_decode_message(name: str) -> None:
    wire = encode_message(SAMPLES[name])
    assert decode_message(wire) == SAMPLES[name]
    tag = [name if name != "evidence_msg" else "evidence"]
    for path, mutant in confused(SAMPLES[name].to_obj()):
        try:
            decode_message(encode([*tag, mutant]))
        except ConsensusError:
            pass
        except Exception as exc:  # pragma: no cover
            raise AssertionError(f"{name} at {path}: {type(exc).__name__}: {exc}") from exc


@pytest.mark.parametrize("value", [v for v in CONFUSERS if v != []])
def test_qc_signature_list_confusion(value: Any) -> None:
    """A QC whose signature list is not a list (a receipt's ``0``, ``True`` or ``None``)."""
    with pytest.raises(ConsensusError, match="signatures must be a list"):
        QuorumCertificate.from_obj([1, b"\x00" * 32, value])


@pytest.mark.parametrize("tag", [[], {}, b"vote", 0, None])
def test_message_tag_must_be_text(tag: Any) -> None:
    with pytest.raises(ConsensusError):
        decode_message(encode([tag, []]))
