"""The agency side: serve local data, apply policy, answer with encrypted local aggregates.

An :class:`AgencyServer` never returns a row or a plaintext value: a Paillier request is
answered with ciphertexts under the regulator's (validated) key, addressed to the
aggregator; an MPC request is answered by the agency's party process
(:mod:`privacy.mpc_party`). Refusals carry the policy's reason.

Messages are canonical CBOR (:mod:`chain.codec`); big integers travel as bytes.
:data:`MAX_MESSAGE` (64 MiB) bounds a protocol message, checked before decoding: an
aggregate of packed Paillier ciphertexts (a few hundred bytes each) for tens of thousands
of slots stays well under it.

Examples
--------
>>> msg = encode_message({"type": "refusal", "query_id": "q", "agency": "a", "reason": "no"})
>>> decode_message(msg, "refusal")["reason"]
'no'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain import codec
from privacy import paillier
from privacy.catalog import Catalog
from privacy.connectors import Connector
from privacy.errors import BudgetExhausted, CiphertextError, PolicyRefusal, PrivacyError, SpecError
from privacy.local import linear_vector, load, sensitivities, slot_kinds
from privacy.mpc import PartyJob
from privacy.policy import BudgetLedger, Decision, Policy, discrete_laplace
from privacy.spec import QuerySpec

MAX_MESSAGE = 64 * 1024 * 1024
"""Largest encoded protocol message accepted by :func:`decode_message`."""
_TYPES = {
    "paillier-request": {"type", "query_id", "spec", "n", "packed", "value_bits", "agencies", "n_values"},
    "contribution": {"type", "query_id", "agency", "key_fp", "ciphertexts", "decision"},
    "refusal": {"type", "query_id", "agency", "reason"},
    "aggregate": {"type", "query_id", "key_fp", "agencies", "ciphertexts", "decisions"},
}


def int_to_bytes(x: int) -> bytes:
    """Unsigned big-endian bytes."""
    return x.to_bytes(max(1, (x.bit_length() + 7) // 8), "big")


def encode_message(msg: dict[str, Any]) -> bytes:
    """Canonical bytes of a protocol message (fields checked against its type)."""
    expected = _TYPES.get(str(msg.get("type")))
    if expected is None or set(msg) != expected:
        raise CiphertextError(f"malformed protocol message of type {msg.get('type')!r}")
    return codec.encode(msg)


def decode_message(data: bytes, *types: str) -> dict[str, Any]:
    """Parse a message and check it is one of ``types`` with exactly its fields."""
    if not isinstance(data, (bytes, bytearray)):
        raise CiphertextError(f"a protocol message is bytes, not {type(data).__name__}")
    if len(data) > MAX_MESSAGE:
        raise CiphertextError(f"protocol message of {len(data)} bytes exceeds the limit of {MAX_MESSAGE}")
    try:
        msg = codec.decode(data, max_size=MAX_MESSAGE)
    except codec.CodecError as exc:
        raise CiphertextError(f"malformed protocol message: {exc}") from None
    if not isinstance(msg, dict) or msg.get("type") not in types or set(msg) != _TYPES[str(msg["type"])]:
        raise CiphertextError(f"unexpected protocol message (wanted {types})")
    return dict(msg)


@dataclass
class AgencyServer:
    """One agency: its data, its policy, its budget ledger."""

    name: str
    connector: Connector
    catalog: Catalog
    policy: Policy
    budget: BudgetLedger | None = None
    source: dict[str, Any] | None = None
    base: Path | None = None

    def decide(self, spec: QuerySpec) -> Decision:
        """Policy decision without charging (preflight, and the MPC path)."""
        try:
            spec.validate(self.catalog)
        except SpecError as exc:
            return Decision(False, f"invalid query: {exc}")
        return self.policy.decide(spec)

    def party_job(self) -> PartyJob:
        """Launch parameters of this agency's MPC party."""
        if self.source is None:
            raise PrivacyError(f"agency {self.name!r} has no file-backed data source for an MPC party")
        return PartyJob(self.name, self.source, str(self.base or "."), self.policy.min_group_size)

    def handle(self, raw: bytes) -> bytes:
        """Answer a Paillier request with a contribution (to the aggregator) or a refusal."""
        req = decode_message(raw, "paillier-request")
        qid = str(req["query_id"])
        try:
            return self._contribute(req)
        except (PolicyRefusal, SpecError) as exc:
            reason = exc.reason if isinstance(exc, PolicyRefusal) else str(exc)
            return encode_message({"type": "refusal", "query_id": qid, "agency": self.name, "reason": reason})

    def _contribute(self, req: dict[str, Any]) -> bytes:
        spec = QuerySpec.from_json(str(req["spec"]))
        decision = self.decide(spec)
        if not decision.accepted:
            raise PolicyRefusal(self.name, decision.reason)
        if not spec.is_linear:
            raise PolicyRefusal(self.name, f"{spec.aggregate!r} does not run on the Paillier path")
        pk = paillier.public_key_from_bytes(bytes(req["n"]))
        frame = load(self.connector, self.catalog, spec)
        values = [int(v) for v in linear_vector(spec, self.catalog, frame, self.policy.min_group_size)]
        if len(values) != int(req["n_values"]):
            raise SpecError(f"request expects {req['n_values']} slots, this query has {len(values)}")
        if spec.epsilon is not None:
            values = self._add_noise(spec, values)
        if req["packed"]:
            layout = paillier.SlotLayout.plan(
                int(req["value_bits"]), int(req["agencies"]), pk.n.bit_length(), len(values)
            )
            cts = paillier.encrypt_packed(pk, values, layout)
        else:
            bound = 1 << int(req["value_bits"])
            if any(not -bound < v < bound for v in values):
                raise PolicyRefusal(self.name, "a local value exceeds the query's declared bound")
            cts = paillier.encrypt_unpacked(pk, values)
        return encode_message(
            {
                "type": "contribution",
                "query_id": str(req["query_id"]),
                "agency": self.name,
                "key_fp": paillier.fingerprint(pk),
                "ciphertexts": [int_to_bytes(c) for c in cts],
                "decision": decision.to_dict(),
            }
        )

    def _add_noise(self, spec: QuerySpec, values: list[int]) -> list[int]:
        assert spec.epsilon is not None and self.policy.epsilon_budget is not None
        if self.budget is None:
            raise PolicyRefusal(self.name, "no budget ledger is configured for differential privacy")
        try:
            self.budget.charge(self.name, spec.requester, spec.epsilon, self.policy.epsilon_budget)
        except BudgetExhausted:
            raise
        kinds = slot_kinds(spec)
        unique = list(dict.fromkeys(kinds))
        eps_each = spec.epsilon / len(unique)
        scale = {k: s / eps_each for k, s in zip(unique, sensitivities(spec, self.catalog), strict=True)}
        per_group = len(kinds)
        return [v + discrete_laplace(scale[kinds[i % per_group]]) for i, v in enumerate(values)]
