"""Membership by a vote of the consensus nodes (when the genesis enables it).

With ``ChainParams.membership_by_vote``, admitting or revoking a member or node does not
need the supervisor: each consensus node of the current epoch sends a ``member.vote``
transaction naming the same action (``{"action": "add", "certificate": ...}`` or
``{"action": "revoke", "cert_id": ..., "reason": ...}``); the vote that reaches the
consensus quorum of the epoch (``floor((n + f) / 2) + 1``) applies the action, exactly as
``member.add`` / ``member.revoke`` would. A node votes once per action; votes for an
applied action are refused. The supervisor's own transactions keep working.
"""

from __future__ import annotations

from typing import Any, ClassVar

from chain import codec
from chain.consensus.core import quorum_size
from chain.contracts.base import TxContext, only_fields, require
from chain.contracts.membership import AddMember, RevokeMember
from chain.crypto import PublicKey
from chain.crypto.sm3 import sm3
from chain.epochs import current_epoch
from chain.state import Overlay
from chain.types import Genesis, Role, ValidationError

VOTE_PREFIX = b"gov/vote/"
DONE_PREFIX = b"gov/done/"


def proposal_id(payload: dict[str, Any]) -> bytes:
    """The id of the action a vote is for (the same for every voter)."""
    return sm3(codec.encode(payload))


class MemberVote:
    """``member.vote``: consensus nodes admit or revoke members by quorum."""

    type_name: ClassVar[str] = "member.vote"
    permitted_roles: ClassVar[frozenset[Role]] = frozenset({Role.CONSENSUS_NODE})

    def __init__(self, genesis: Genesis, root: PublicKey) -> None:
        self._genesis = genesis
        self._add = AddMember(root)
        self._revoke = RevokeMember()

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
        else:
            raise ValidationError("member.vote action must be 'add' or 'revoke'")

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
        contract = self._add if payload["action"] == "add" else self._revoke
        result = contract.apply(state, ctx, self._action(payload))
        return {**result, "proposal": pid, "votes": votes}
