"""Changes of the validator set: revocation, readiness, promotion, and the vote.

Every change of who votes is guarded (:func:`chain.epochs.check_set_change`): a change
that would leave fewer validators than the genesis minimum (``ChainParams.min_validators``),
or change more than ``max(1, f)`` validators of the epoch in force at once, is refused —
so no single key can halt the chain by adding validators that never vote, nor capture it
by revoking the honest ones.

* ``member.revoke`` ``{"cert_id": 32 B, "reason": str}`` (supervisor) — revocation takes
  effect from the *next* height: the revoked certificate's transactions in later blocks
  are refused and, for a consensus node, it leaves the validator set at that height
  boundary. With ``ChainParams.membership_by_vote``, revoking a *validator* needs the
  consensus nodes' vote (``member.vote``); other members the supervisor revokes alone.
* ``node.ready`` ``{"height": int, "block_hash": 32 B}`` (a consensus node, signed with its
  own key) — the node attests that it holds the chain up to ``height``: the hash must be
  the chain's block at that height, at most :data:`READY_LAG` blocks old. It proves the
  node runs and has caught up.
* ``member.promote`` ``{"cert_id": 32 B}`` (supervisor; by vote under
  ``membership_by_vote``) — an observer consensus node becomes a validator from the next
  height, only after a ``node.ready`` within the last :data:`READY_TTL` blocks (as FISCO
  BCOS adds a node as an observer, then as a sealer once it has synced).
* ``member.vote`` — with ``ChainParams.membership_by_vote``, each consensus node of the
  current epoch sends a ``member.vote`` naming the same action (``{"action": "add",
  "certificate": ...}``, ``{"action": "revoke", "cert_id": ..., "reason": ...}`` or
  ``{"action": "promote", "cert_id": ...}``); the vote that reaches the consensus quorum of
  the epoch (``floor((n + f) / 2) + 1``) applies the action. A node votes once per action;
  votes for an applied action are refused.
"""

from __future__ import annotations

from typing import Any, ClassVar

from chain import codec
from chain.consensus.core import quorum_size
from chain.contracts.base import TxContext, only_fields, require
from chain.contracts.membership import (
    AddMember,
    cert_key,
    history_key,
    is_validator,
    load_certificate,
    ready_key,
    revoked_from,
    revoked_key,
    validator_key,
    validator_set,
)
from chain.crypto import PublicKey
from chain.crypto.sm3 import sm3
from chain.epochs import check_set_change, current_epoch
from chain.state import Overlay
from chain.types import Genesis, Role, ValidationError

VOTE_PREFIX = b"gov/vote/"
DONE_PREFIX = b"gov/done/"
READY_LAG = 64
"""A ``node.ready`` must name a block at most this many heights below its own block."""
READY_TTL = 1024
"""A promotion needs a ``node.ready`` of the node within this many blocks."""


def proposal_id(payload: dict[str, Any]) -> bytes:
    """The id of the action a vote is for (the same for every voter)."""
    return sm3(codec.encode(payload))


def _votes_needed(ctx: TxContext, state: Overlay, target: bytes) -> bool:
    """Whether changing ``target`` changes the voting set and the genesis asks for a vote."""
    return ctx.params.membership_by_vote and is_validator(state, target)


class RevokeMember:
    """``member.revoke``: revoke a certificate from the next height."""

    type_name: ClassVar[str] = "member.revoke"
    permitted_roles: ClassVar[frozenset[Role]] = frozenset({Role.SUPERVISOR})

    def __init__(self, genesis: Genesis) -> None:
        self._genesis = genesis

    def check_payload(self, payload: dict[str, Any]) -> None:
        only_fields(payload, {"cert_id", "reason"})
        require(payload, "cert_id", bytes, size=32)
        reason = require(payload, "reason", str)
        if len(reason) > 500:
            raise ValidationError("revocation reason is at most 500 characters")

    def authorize(self, ctx: TxContext, payload: dict[str, Any], state: Overlay) -> None:
        if _votes_needed(ctx, state, payload["cert_id"]):
            raise ValidationError(
                "this chain admits and removes validators by the consensus nodes' vote: "
                "revoking a consensus node needs member.vote transactions"
            )

    def apply(self, state: Overlay, ctx: TxContext, payload: dict[str, Any]) -> dict[str, Any]:
        target = payload["cert_id"]
        if state.get(cert_key(target)) is None:
            raise ValidationError("cannot revoke an unknown certificate")
        if state.get(revoked_key(target)) is not None:
            raise ValidationError("certificate is already revoked")
        from_height = ctx.height + 1
        votes = target in validator_set(state, from_height)
        state.set(
            revoked_key(target), codec.encode({"from_height": from_height, "reason": payload["reason"]})
        )
        if votes:  # revoking a member that does not vote changes no validator set
            check_set_change(state, self._genesis, ctx.height, ctx.block_timestamp_ms)
        return {"status": "revoked", "cert_id": target, "from_height": from_height}


class NodeReady:
    """``node.ready``: a consensus node attests, with its own key, that it has caught up."""

    type_name: ClassVar[str] = "node.ready"
    permitted_roles: ClassVar[frozenset[Role]] = frozenset({Role.CONSENSUS_NODE})

    def check_payload(self, payload: dict[str, Any]) -> None:
        only_fields(payload, {"height", "block_hash"})
        if require(payload, "height", int) < 0:
            raise ValidationError("payload field 'height' must not be negative")
        require(payload, "block_hash", bytes, size=32)

    def authorize(self, ctx: TxContext, payload: dict[str, Any], state: Overlay) -> None:
        return None

    def apply(self, state: Overlay, ctx: TxContext, payload: dict[str, Any]) -> dict[str, Any]:
        seen = payload["height"]
        if seen >= ctx.height or ctx.height - seen > READY_LAG:
            raise ValidationError(
                f"node.ready names height {seen}; it must be one of the last {READY_LAG} blocks "
                f"before {ctx.height} — send the node's current committed head"
            )
        if state.get(history_key(seen)) != payload["block_hash"]:
            raise ValidationError(f"node.ready names a block that is not this chain's block {seen}")
        cert_id = ctx.sender.cert_id
        state.set(ready_key(cert_id), codec.encode({"height": ctx.height, "seen": seen}))
        return {"status": "ready", "cert_id": cert_id, "height": ctx.height}


def _promote(state: Overlay, genesis: Genesis, ctx: TxContext, target: bytes) -> dict[str, Any]:
    cert = load_certificate(state, target)
    if cert is None or Role.CONSENSUS_NODE not in cert.roles:
        raise ValidationError("only a registered consensus-node certificate can be promoted")
    if revoked_from(state, target) is not None:
        raise ValidationError("a revoked certificate cannot be promoted")
    if is_validator(state, target):
        raise ValidationError("this node already votes")
    raw = state.get(ready_key(target))
    if raw is None or ctx.height - int(codec.decode(raw)["height"]) > READY_TTL:
        raise ValidationError(
            f"the node has not attested that it caught up (node.ready) in the last {READY_TTL} "
            "blocks: start it, let it sync as an observer, then promote it"
        )
    state.set(validator_key(target), codec.encode({"from_height": ctx.height + 1}))
    check_set_change(state, genesis, ctx.height, ctx.block_timestamp_ms)
    return {"status": "promoted", "cert_id": target, "from_height": ctx.height + 1}


class PromoteNode:
    """``member.promote``: an observer consensus node that caught up starts to vote."""

    type_name: ClassVar[str] = "member.promote"
    permitted_roles: ClassVar[frozenset[Role]] = frozenset({Role.SUPERVISOR})

    def __init__(self, genesis: Genesis) -> None:
        self._genesis = genesis

    def check_payload(self, payload: dict[str, Any]) -> None:
        only_fields(payload, {"cert_id"})
        require(payload, "cert_id", bytes, size=32)

    def authorize(self, ctx: TxContext, payload: dict[str, Any], state: Overlay) -> None:
        if ctx.params.membership_by_vote:
            raise ValidationError(
                "this chain admits validators by the consensus nodes' vote: promoting a node "
                "needs member.vote transactions"
            )

    def apply(self, state: Overlay, ctx: TxContext, payload: dict[str, Any]) -> dict[str, Any]:
        return _promote(state, self._genesis, ctx, payload["cert_id"])


class MemberVote:
    """``member.vote``: consensus nodes admit, promote or revoke members by quorum."""

    type_name: ClassVar[str] = "member.vote"
    permitted_roles: ClassVar[frozenset[Role]] = frozenset({Role.CONSENSUS_NODE})

    def __init__(self, genesis: Genesis, root: PublicKey) -> None:
        self._genesis = genesis
        self._add = AddMember(root)
        self._revoke = RevokeMember(genesis)

    def _action(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in payload.items() if k != "action"}

    def check_payload(self, payload: dict[str, Any]) -> None:
        action = require(payload, "action", str)
        if action == "add":
            only_fields(payload, {"action", "certificate"})
            self._add.check_payload(self._action(payload))
        elif action == "revoke":
            only_fields(payload, {"action", "cert_id", "reason"})
            self._revoke.check_payload(self._action(payload))
        elif action == "promote":
            only_fields(payload, {"action", "cert_id"})
            require(payload, "cert_id", bytes, size=32)
        else:
            raise ValidationError("member.vote action must be 'add', 'revoke' or 'promote'")

    def authorize(self, ctx: TxContext, payload: dict[str, Any], state: Overlay) -> None:
        if not ctx.params.membership_by_vote:
            raise ValidationError("this chain's genesis does not allow membership by vote")
        voters = {c.cert_id for c in current_epoch(state, self._genesis).validators}
        if ctx.sender.cert_id not in voters:
            raise ValidationError("only consensus nodes of the current epoch vote on membership")

    def apply(self, state: Overlay, ctx: TxContext, payload: dict[str, Any]) -> dict[str, Any]:
        pid = proposal_id(payload)
        if state.get(DONE_PREFIX + pid) is not None:
            raise ValidationError("this membership action was already decided")
        key = VOTE_PREFIX + pid + ctx.sender.cert_id
        if state.get(key) is not None:
            raise ValidationError("this node already voted for this action")
        state.set(key, ctx.height.to_bytes(8, "big"))
        record = current_epoch(state, self._genesis)
        voters = {c.cert_id for c in record.validators}
        votes = sum(1 for k, _ in state.items_with_prefix(VOTE_PREFIX + pid) if k[-32:] in voters)
        need = quorum_size(len(voters))
        if votes < need:
            return {"status": "voted", "proposal": pid, "votes": votes, "needed": need}
        for k, _ in list(state.items_with_prefix(VOTE_PREFIX + pid)):
            state.delete(k)
        state.set(DONE_PREFIX + pid, ctx.height.to_bytes(8, "big"))
        action = self._action(payload)
        if payload["action"] == "add":
            result = self._add.apply(state, ctx, action)
        elif payload["action"] == "revoke":
            result = self._revoke.apply(state, ctx, action)
        else:
            result = _promote(state, self._genesis, ctx, action["cert_id"])
        return {**result, "proposal": pid, "votes": votes}
