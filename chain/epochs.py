"""Validator-set epochs, equivocation evidence and passive exit: end-of-block bookkeeping.

After a block's transactions, :func:`finalize_block` runs on the same state overlay and

1. records each piece of equivocation evidence the block carries and **excludes** its
   author from the validator set;
2. counts **missed leader turns** (rounds skipped between the parent's round and this
   block's round, charged to their leaders) and excludes a node after
   ``ChainParams.max_missed_turns`` consecutive misses (0 disables this);
3. computes the validator set in force from the next height — promoted consensus-node
   certificates that are not revoked, not excluded and valid at the block's time — and,
   when it differs from the current epoch's, writes the record of the **next epoch**
   (``sys/epoch/<n>``). A change never removes more than ``max(1, f)`` validators of the
   epoch in force at once, nor shrinks the set below ``ChainParams.min_validators``: passive
   exits beyond that wait for the following epochs (revoked first, then excluded, then
   expired, each in id order), so the chain never halts itself.

Before a block's transactions, :func:`begin_block` writes the hash of its parent under
``sys/block/<parent height>``: the state root of every block commits to the whole history,
which lets a verifier holding a recent checkpoint prove that an old block is the chain's
(:mod:`chain.receipt`).

A block that writes an epoch record *ends its epoch* (see
:meth:`chain.consensus.core.Application.ends_epoch`): the next epoch's consensus starts on
top of it with the new set. Epoch records are part of the state, so the state root of the
epoch-ending block commits to the new set, and a receipt proves a validator-set change with
a state inclusion proof (:mod:`chain.receipt`).

Size limit: :data:`MAX_EPOCH_RECORD_BYTES` (1 MiB, about three thousand validator
certificates) bounds an epoch record read from a receipt or the state, checked before
decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chain import codec
from chain.consensus.messages import Evidence
from chain.contracts.membership import (
    history_key,
    load_certificate,
    revoked_from,
    validator_set,
)
from chain.crypto.sm3 import sm3
from chain.state import Overlay, State
from chain.types import Certificate, Genesis, Role, ValidationError

EPOCH_PREFIX = b"sys/epoch/"
CURRENT_EPOCH = b"sys/epoch-current"
EXCLUDED = b"sys/excluded/"
MISSED = b"sys/missed/"
EVIDENCE = b"sys/evidence/"
MAX_EPOCH_RECORD_BYTES = 1024 * 1024
"""Largest encoded epoch record accepted by :meth:`EpochRecord.from_bytes`."""
EPOCH_PROOF_META = "epoch-proof/"
"""Store meta key prefix of the state inclusion proof of each epoch record."""
EPOCH_COMMIT_META = "epoch-commit/"
"""Store meta key prefix of the commit headers and QC of the block that ended each epoch,
kept by a store restored from a snapshot (it lacks those blocks)."""


def epoch_key(epoch: int) -> bytes:
    """State key of epoch ``epoch``'s record."""
    return EPOCH_PREFIX + epoch.to_bytes(8, "big")


@dataclass(frozen=True)
class EpochRecord:
    """An epoch: its number, the height of the block that started it, its validators."""

    epoch: int
    height: int
    validators: tuple[Certificate, ...]

    def node_ids(self) -> list[str]:
        """Sorted consensus ids (certificate id hex) of the validators."""
        return sorted(c.cert_id.hex() for c in self.validators)

    def to_bytes(self) -> bytes:
        return codec.encode(
            {"epoch": self.epoch, "height": self.height, "validators": [c.to_dict() for c in self.validators]}
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> EpochRecord:
        """Decode a record; :class:`ValidationError` if over the limit or malformed."""
        if not isinstance(raw, (bytes, bytearray)):
            raise ValidationError(f"an epoch record is bytes, not {type(raw).__name__}")
        if len(raw) > MAX_EPOCH_RECORD_BYTES:
            raise ValidationError(f"epoch record of {len(raw)} bytes exceeds {MAX_EPOCH_RECORD_BYTES}")
        try:
            doc = codec.decode(raw, max_size=MAX_EPOCH_RECORD_BYTES)
            if not isinstance(doc, dict) or set(doc) != {"epoch", "height", "validators"}:
                raise ValidationError("an epoch record has fields epoch, height, validators")
            epoch, height, certs = doc["epoch"], doc["height"], doc["validators"]
            if not isinstance(epoch, int) or not isinstance(height, int) or not isinstance(certs, list):
                raise ValidationError("malformed epoch record")
            return cls(epoch, height, tuple(Certificate.from_dict(c) for c in certs))
        except codec.CodecError as exc:
            raise ValidationError(f"epoch record is not canonical CBOR: {exc}") from None


def genesis_epoch(genesis: Genesis) -> EpochRecord:
    """Epoch 0: the genesis consensus nodes."""
    certs = sorted(
        (c for c in genesis.certificates if Role.CONSENSUS_NODE in c.roles), key=lambda c: c.cert_id
    )
    return EpochRecord(0, 0, tuple(certs))


def current_epoch(state: State | Overlay, genesis: Genesis) -> EpochRecord:
    """The epoch in force in ``state``."""
    raw = state.get(CURRENT_EPOCH)
    if raw is None:
        return genesis_epoch(genesis)
    record = state.get(epoch_key(int.from_bytes(raw, "big")))
    if record is None:
        raise ValidationError("state names a current epoch without its record")
    return EpochRecord.from_bytes(record)


def begin_block(state: Overlay, height: int, parent_hash: bytes) -> None:
    """Start-of-block bookkeeping: record the parent's hash in the chain's history."""
    if height > 0:
        state.set(history_key(height - 1), parent_hash)


def change_limit(n: int) -> int:
    """Validators that may join or leave at one epoch change among ``n``: ``max(1, f)``."""
    return max(1, (n - 1) // 3)


def next_validators(state: State | Overlay, height: int, timestamp_ms: int | None) -> list[bytes]:
    """Validators the state asks for at ``height`` (promoted, not revoked, not excluded, valid)."""
    return [c for c in validator_set(state, height, timestamp_ms) if state.get(EXCLUDED + c) is None]


def check_set_change(state: State | Overlay, genesis: Genesis, height: int, timestamp_ms: int) -> None:
    """Refuse a transaction of block ``height`` that would change the validator set too much.

    Raises
    ------
    ValidationError
        When the set asked for from ``height + 1`` differs from the epoch in force by more
        than :func:`change_limit` validators, or shrinks below the genesis minimum.

    Examples
    --------
    >>> from chain.crypto import PrivateKey
    >>> from chain.executor import genesis_state
    >>> from chain.contracts.membership import revoked_key
    >>> root = PrivateKey.generate()
    >>> certs = tuple(Certificate.issue(root, f"n{i}", "o", [Role.CONSENSUS_NODE],
    ...               PrivateKey.generate().public_key, 0) for i in range(4))
    >>> g = Genesis("c", "c", root.public_key.to_bytes(), certs)
    >>> ov = Overlay(genesis_state(g))
    >>> ov.set(revoked_key(certs[0].cert_id), codec.encode({"from_height": 2, "reason": ""}))
    >>> check_set_change(ov, g, 1, 0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chain.errors.ValidationError: this would leave 3 validators; the chain keeps at least 4 ...
    """
    current = {c.cert_id for c in current_epoch(state, genesis).validators}
    new = set(next_validators(state, height + 1, timestamp_ms))
    changed = len(current ^ new)
    if not changed:
        return
    floor = min(genesis.params.min_validators, len(current))
    if len(new) < floor:
        raise ValidationError(
            f"this would leave {len(new)} validators; the chain keeps at least "
            f"{genesis.params.min_validators} (ChainParams.min_validators) — add a node first"
        )
    limit = change_limit(len(current))
    if changed > limit:
        raise ValidationError(
            f"this would change {changed} validators in one epoch; at most {limit} of the "
            f"{len(current)} in force may change at once — spread the change over several epochs"
        )


def _exclude(state: Overlay, cert_id: bytes, reason: str) -> None:
    if state.get(EXCLUDED + cert_id) is None:
        state.set(EXCLUDED + cert_id, reason.encode())


def finalize_block(
    state: Overlay,
    genesis: Genesis,
    height: int,
    round: int,
    parent_round: int,
    proposer: str,
    evidence: Sequence[Evidence],
    timestamp_ms: int | None = None,
) -> EpochRecord | None:
    """End-of-block bookkeeping (see module docstring); returns the new epoch, if any.

    Examples
    --------
    >>> from chain.crypto import PrivateKey
    >>> root = PrivateKey.generate()
    >>> certs = tuple(Certificate.issue(root, f"n{i}", "o", [Role.CONSENSUS_NODE],
    ...               PrivateKey.generate().public_key, 0) for i in range(4))
    >>> g = Genesis("c", "c", root.public_key.to_bytes(), certs)
    >>> from chain.executor import genesis_state
    >>> ov = Overlay(genesis_state(g))
    >>> finalize_block(ov, g, 1, 1, 0, certs[0].cert_id.hex(), []) is None
    True
    """
    record = current_epoch(state, genesis)
    ids = record.node_ids()
    for ev in evidence:
        state.set(EVIDENCE + sm3(codec.encode(list(ev.key))), ev.to_bytes())
        try:
            author = bytes.fromhex(ev.author)
        except ValueError:
            continue
        _exclude(state, author, f"equivocation: two {ev.kind}s in round {ev.round}")
    limit = genesis.params.max_missed_turns
    if limit and ids:
        # the leaders of rounds parent_round+1 .. round-1, round-robin over ids: O(n), not O(gap)
        n, first, gap = len(ids), parent_round + 1, max(round - parent_round - 1, 0)
        for i in range(min(gap, n)):
            leader = bytes.fromhex(ids[(first + i) % n])
            turns = gap // n + (1 if i < gap % n else 0)
            raw = state.get(MISSED + leader)
            before = int.from_bytes(raw, "big") if raw else 0
            missed = min(before + turns, (1 << 64) - 1)
            state.set(MISSED + leader, missed.to_bytes(8, "big"))
            if missed >= limit:  # the reason names the count at the turn that reached the limit
                _exclude(state, leader, f"missed {max(before + 1, limit)} consecutive leader turns")
        try:
            if state.get(MISSED + bytes.fromhex(proposer)) is not None:
                state.delete(MISSED + bytes.fromhex(proposer))
        except ValueError:
            pass
    new_ids = _capped_change(state, genesis, record, height, timestamp_ms)
    if new_ids is None:
        return None
    certs: list[Certificate] = []
    for cid in new_ids:
        cert = load_certificate(state, cid)
        if cert is None:  # pragma: no cover - validator_set reads the same keys
            raise ValidationError("validator certificate vanished")
        certs.append(cert)
    new = EpochRecord(record.epoch + 1, height, tuple(certs))
    state.set(epoch_key(new.epoch), new.to_bytes())
    state.set(CURRENT_EPOCH, new.epoch.to_bytes(8, "big"))
    return new


def _capped_change(
    state: Overlay, genesis: Genesis, record: EpochRecord, height: int, timestamp_ms: int | None
) -> list[bytes] | None:
    """The next epoch's validator ids within the change limits, or ``None`` for no change."""
    current = {c.cert_id for c in record.validators}
    target = set(next_validators(state, height + 1, timestamp_ms))
    if target == current:
        return None
    limit = change_limit(len(current))
    added = sorted(target - current)[:limit]

    def priority(cert_id: bytes) -> tuple[int, bytes]:
        rev = revoked_from(state, cert_id)
        if rev is not None and rev <= height + 1:
            return (0, cert_id)
        return (1 if state.get(EXCLUDED + cert_id) is not None else 2, cert_id)

    floor = min(genesis.params.min_validators, len(current))
    room = min(limit - len(added), len(current) + len(added) - floor)
    removed = sorted(current - target, key=priority)[: max(0, room)]
    new = (current | set(added)) - set(removed)
    if new == current or not new:
        return None
    return sorted(new)


def epoch_info(record: EpochRecord) -> dict[str, Any]:
    """A JSON-friendly summary of an epoch."""
    return {
        "epoch": record.epoch,
        "height": record.height,
        "validators": [{"id": c.cert_id.hex(), "subject": c.subject} for c in record.validators],
    }
