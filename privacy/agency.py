"""The agency side: authenticate the requester, apply policy, answer with masked ciphertexts.

An :class:`AgencyServer` never returns a row or a value anyone else can read. A query
reaches it as a message signed by the requester (:mod:`privacy.protocol`); the agency

1. checks the requester's certificate against the consortium root it trusts, in the role
   the query claims (:class:`privacy.identity.Trust`), and the query's timestamp and
   nonce (:class:`privacy.replay.ReplayGuard`);
2. checks every participant is an agency it has pinned, and decides by its own
   :class:`Policy` — at least ``min_agencies`` participants, allowed columns and
   aggregates, minimum group size, the requester's ε budget keyed by its certificate id —
   and logs its decision (:meth:`AgencyServer.decisions`, and ``decisions.jsonl`` in its
   state directory);
3. answers a linear query with its local aggregate, packed and **masked**
   (:mod:`privacy.secagg`) and encrypted under the regulator's validated Paillier key:
   decrypting it gives a uniformly random number;
4. endorses exactly one view of who contributed and who dropped out, and — once a
   majority of the participants endorsed that same view — reveals its self-mask seed and
   its seeds shared with dropped agencies, so that the aggregator can unmask the sum and
   nothing else; with its contribution it deals threshold shares of its own seeds to the
   other participants (sealed to each), and, asked after the reveal, hands over its
   shares of the seeds of a contributor that dropped out since — the self seed and the
   seeds shared with the view's dropped agencies only, never a seed shared with another
   contributor;
5. for an accepted MPC query, announces where its party will listen and, asked by the
   same requester with the plan and every party's address, checks the plan is the one the
   query calls for and runs its own party over its own data (:func:`privacy.mpc.run_party`),
   its links TLS with certificates vouched for by the other agencies' signed decisions,
   answering only its shares of the outputs.

Every answer, refusals included, is signed with the agency's SM2 key. Refusals say why.

Examples
--------
>>> msg = encode_message({"type": "refusal", "query_id": "q", "agency": "a", "reason": "no"})
>>> decode_message(msg, "refusal")["reason"]
'no'
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain import codec
from chain.crypto import sm3, sm4
from chain.crypto.errors import CryptoError
from chain.types import Certificate
from privacy import paillier, secagg
from privacy.catalog import Catalog
from privacy.connectors import Connector
from privacy.errors import (
    CiphertextError,
    IdentityError,
    KeyValidationError,
    MPCError,
    PolicyRefusal,
    PrivacyError,
    SpecError,
)
from privacy.identity import Identity, PeerDirectory, Trust, pairwise_secret
from privacy.local import local_linear, sensitivities, slot_kinds
from privacy.mpc import MpcPlan, PartyJob, free_ports, run_party
from privacy.mpc import plan as mpc_plan
from privacy.mpc_tls import check_certificate, party_credentials
from privacy.policy import BudgetLedger, Decision, Policy, discrete_laplace
from privacy.protocol import (
    MAX_MESSAGE,
    Signed,
    decode_message,
    encode_message,
    int_to_bytes,
    open_signed,
    sign,
)
from privacy.replay import ReplayGuard, clock_ms
from privacy.spec import QuerySpec

__all__ = ["MAX_MESSAGE", "AgencyServer", "decode_message", "encode_message", "int_to_bytes"]

MAX_AGENCIES = 256
"""Most participants a query may list."""
MAX_MPC_SECONDS = 3600.0
"""Longest an agency lets its MPC party run."""


@dataclass
class _Pending:
    """What an agency keeps about a query it contributed to, until the query is unmasked."""

    requester: bytes
    participants: list[str]
    self_seed: bytes
    expiry_ms: int
    view: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    revealed: bool = False


@dataclass
class _MpcPending:
    """An accepted MPC query: who asked, the participants, and where this agency's party listens."""

    requester: bytes
    participants: list[str]
    spec: QuerySpec
    address: str
    tls_key: bytes
    tls_cert: bytes
    expiry_ms: int
    ran: bool = False


@dataclass
class AgencyServer:
    """One agency: its data, identity, trust, pinned peers, policy and budget ledger.

    Parameters
    ----------
    name : str
        The agency's name (as its peers pin it).
    connector, catalog
        Its data and the shared catalog.
    policy : Policy
        Its policy.
    identity : Identity
        Its SM2 key and certificate (signs every answer; agrees pairwise mask keys).
    trust : Trust
        The consortium root it checks requesters against.
    peers : PeerDirectory
        The agencies it accepts as fellow participants (itself included or not).
    budget : BudgetLedger or None
        Where ε spending is kept (DP queries are refused without one).
    replay : ReplayGuard
        Seen query ids.
    state_dir : Path or None
        Where ``decisions.jsonl`` is appended.
    """

    name: str
    connector: Connector
    catalog: Catalog
    policy: Policy
    identity: Identity
    trust: Trust
    peers: PeerDirectory
    budget: BudgetLedger | None = None
    replay: ReplayGuard = field(default_factory=ReplayGuard)
    state_dir: Path | None = None
    source: dict[str, Any] | None = None
    base: Path | None = None
    mpc_host: str = "127.0.0.1"
    _pending: dict[str, _Pending] = field(default_factory=dict, repr=False)
    _mpc: dict[str, _MpcPending] = field(default_factory=dict, repr=False)
    _secrets: dict[str, bytes] = field(default_factory=dict, repr=False)
    _log: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def certificate(self) -> Certificate:
        """The agency's certificate (what peers and regulators pin)."""
        return self.identity.cert

    def decisions(self) -> list[dict[str, Any]]:
        """This agency's own log of its decisions (oldest first)."""
        with self._lock:
            return [dict(d) for d in self._log]

    def party_job(self) -> PartyJob:
        """Launch parameters of this agency's MPC party."""
        if self.source is None:
            raise PrivacyError(f"agency {self.name!r} has no file-backed data source for an MPC party")
        return PartyJob(self.name, self.source, str(self.base or "."), self.policy.min_group_size)

    # --- dispatch ------------------------------------------------------------------------

    def handle(self, raw: bytes) -> bytes:
        """Answer one signed message (a query, a view or a reveal) with a signed message.

        Malformed or oversized input raises :class:`CiphertextError`; every other problem
        — an unacceptable requester, a replay, a policy refusal — is answered with a
        signed refusal that says why.
        """
        signed = open_signed(raw, "query", "view", "reveal", "recover", "mpc-run")
        qid = str(signed.msg["query_id"])
        try:
            if signed.msg["type"] == "query":
                return self._query(signed)
            if signed.msg["type"] == "view":
                return self._endorse(signed)
            if signed.msg["type"] == "mpc-run":
                return self._run_party(signed)
            if signed.msg["type"] == "recover":
                return self._recover(signed)
            return self._reveal(signed)
        except (PolicyRefusal, SpecError, IdentityError, KeyValidationError, MPCError) as exc:
            reason = exc.reason if isinstance(exc, PolicyRefusal) else str(exc)
            return self._sign({"type": "refusal", "query_id": qid, "agency": self.name, "reason": reason})

    def _sign(self, msg: dict[str, Any]) -> bytes:
        return sign(self.identity, msg)

    def _record(
        self,
        qid: str,
        signed: Signed,
        cert: Certificate | None,
        spec: QuerySpec | None,
        decision: Decision,
        answer: bytes,
    ) -> None:
        entry = {
            "query_id": qid,
            "time_ms": clock_ms(),
            "requester": None if cert is None else cert.cert_id.hex(),
            "requester_subject": signed.cert.subject,
            "authenticated": cert is not None,
            "role": None if spec is None else spec.role,
            "spec_digest": None if spec is None else spec.digest().hex(),
            "query_digest": sm3(signed.raw).hex(),
            "answer_digest": sm3(answer).hex(),
            **decision.to_dict(),
        }
        with self._lock:
            self._log.append(entry)
            if self.state_dir is not None:
                self.state_dir.mkdir(parents=True, exist_ok=True)
                with open(self.state_dir / "decisions.jsonl", "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")

    # --- round 1: the query ----------------------------------------------------------------

    def _query(self, signed: Signed) -> bytes:
        msg, qid = signed.msg, str(signed.msg["query_id"])
        cert: Certificate | None = None
        spec: QuerySpec | None = None
        try:
            cert = self.trust.check(signed.cert, str(msg["role"]))
            time_ms = msg["time_ms"]
            if not isinstance(time_ms, int) or isinstance(time_ms, bool):
                raise CiphertextError("a query's time_ms is an integer")
            self.replay.check(qid, time_ms)
            # the requester is who signed, never a name written into the query
            spec = QuerySpec.from_json(str(msg["spec"])).with_requester(cert.cert_id.hex(), str(msg["role"]))
            participants = self._participants(msg["agencies"])
            try:
                spec.validate(self.catalog)
            except SpecError as exc:
                raise PolicyRefusal(self.name, f"invalid query: {exc}") from None
            decision = self.policy.decide(spec, len(participants))
            if not decision.accepted:
                raise PolicyRefusal(self.name, decision.reason)
            if msg["path"] == "mpc":
                answer = self._accept_mpc(qid, spec, cert, participants, decision)
            elif msg["path"] == "paillier":
                answer = self._contribute(msg, spec, cert, participants, decision)
            else:
                raise CiphertextError(f"unknown query path {msg['path']!r}")
        except (PolicyRefusal, IdentityError, SpecError, KeyValidationError) as exc:
            reason = exc.reason if isinstance(exc, PolicyRefusal) else str(exc)
            decision = Decision(False, reason)
            answer = self._sign({"type": "refusal", "query_id": qid, "agency": self.name, "reason": reason})
        self._record(qid, signed, cert, spec, decision, answer)
        return answer

    def _accept_mpc(
        self, qid: str, spec: QuerySpec, cert: Certificate, participants: list[str], decision: Decision
    ) -> bytes:
        if spec.is_linear:
            raise PolicyRefusal(self.name, f"{spec.aggregate!r} runs on the Paillier path")
        if self.source is None:
            raise PolicyRefusal(self.name, "this agency has no data source an MPC party can read")
        address = f"{self.mpc_host}:{free_ports(1)[0]}"
        tls_key, tls_cert = party_credentials(participants.index(self.name))
        now = clock_ms()
        with self._lock:
            for key in [k for k, p in self._mpc.items() if p.expiry_ms <= now]:
                del self._mpc[key]
            self._mpc[qid] = _MpcPending(
                cert.cert_id, participants, spec, address, tls_key, tls_cert, now + 600_000
            )
        return self._sign(
            {
                "type": "decision",
                "query_id": qid,
                "agency": self.name,
                "decision": decision.to_dict(),
                "party": address,
                "min_group": self.policy.min_group_size,
                "tls_cert": tls_cert,
            }
        )

    def _run_party(self, signed: Signed) -> bytes:
        """Run this agency's own MPC party for an accepted query (once), then answer its shares."""
        qid = str(signed.msg["query_id"])
        with self._lock:
            pending = self._mpc.get(qid)
            if pending is None:
                raise PolicyRefusal(self.name, f"this agency accepted no MPC query {qid!r}")
            if signed.cert.cert_id != pending.requester:
                raise IdentityError("only the requester that signed the query may continue it")
            if pending.ran:
                raise PolicyRefusal(self.name, "this agency's party already ran for this query")
            pending.ran = True
        try:
            plan = MpcPlan.from_dict(json.loads(str(signed.msg["plan"])))
        except (ValueError, TypeError, KeyError) as exc:
            raise CiphertextError(f"malformed MPC plan: {exc}") from None
        peers, certs = self._mpc_parties(pending, signed.msg["decisions"], qid)
        index = pending.participants.index(self.name)
        if plan.min_group < self.policy.min_group_size:
            raise PolicyRefusal(
                self.name,
                f"the plan's minimum group size {plan.min_group} is below this agency's "
                f"{self.policy.min_group_size}",
            )
        if plan != mpc_plan(pending.spec, self.catalog, len(peers), plan.min_group, plan.method):
            raise PolicyRefusal(self.name, "the MPC plan is not the one this query calls for")
        timeout = min(float(signed.msg["timeout_s"]), MAX_MPC_SECONDS)
        output = run_party(
            pending.spec,
            self.catalog,
            plan,
            self.party_job(),
            index,
            peers,
            timeout=timeout,
            tls=(pending.tls_key, certs),
        )
        return self._sign(
            {"type": "mpc-output", "query_id": qid, "agency": self.name, "output": json.dumps(output)}
        )

    def _mpc_parties(self, pending: _MpcPending, decisions: Any, qid: str) -> tuple[list[str], list[bytes]]:
        """Every party's address and TLS certificate, from the participants' own signed decisions."""
        if not isinstance(decisions, list) or len(decisions) != len(pending.participants):
            raise PolicyRefusal(self.name, "the MPC parties do not match the query's participants")
        peers, certs = [], []
        for pid, (agency, raw) in enumerate(zip(pending.participants, decisions, strict=True)):
            d = open_signed(raw, "decision")
            pinned = self.identity.cert if agency == self.name else self.peers.get(agency)
            if d.cert.cert_id != pinned.cert_id or d.msg["agency"] != agency or d.msg["query_id"] != qid:
                raise IdentityError(
                    f"MPC party {pid} is not vouched for by agency {agency!r}'s signed decision"
                )
            if agency == self.name and (
                d.msg["party"] != pending.address or d.msg["tls_cert"] != pending.tls_cert
            ):
                raise PolicyRefusal(
                    self.name, "the MPC parties do not place this agency's party where it listens"
                )
            peers.append(str(d.msg["party"]))
            certs.append(check_certificate(d.msg["tls_cert"], pid))
        return peers, certs

    def _participants(self, agencies: Any) -> list[str]:
        if (
            not isinstance(agencies, list)
            or not 0 < len(agencies) <= MAX_AGENCIES
            or not all(isinstance(a, str) for a in agencies)
            or len(set(agencies)) != len(agencies)
        ):
            raise CiphertextError("a query lists its participating agencies, each once")
        if self.name not in agencies:
            raise PolicyRefusal(self.name, "the query does not list this agency as a participant")
        unknown = [a for a in agencies if a != self.name and a not in self.peers]
        if unknown:
            raise PolicyRefusal(
                self.name,
                f"agencies {unknown} are not pinned peers of this agency; "
                "it answers only alongside agencies it knows",
            )
        return sorted(agencies)

    def _secret(self, peer: str) -> bytes:
        """The static ECDH secret shared with a pinned peer (computed once)."""
        secret = self._secrets.get(peer)
        if secret is None:
            secret = self._secrets[peer] = pairwise_secret(self.identity, self.peers.get(peer))
        return secret

    def _pair_seeds(self, qid: str, others: list[str]) -> dict[str, bytes]:
        return {peer: secagg.pair_seed(self._secret(peer), qid, self.name, peer) for peer in others}

    def _deal(self, qid: str, self_seed: bytes, participants: list[str]) -> dict[str, bytes]:
        """This agency's threshold shares of its seeds, sealed to each other participant."""
        others = [a for a in participants if a != self.name]
        dealt = secagg.deal(self_seed, self._pair_seeds(qid, others), participants, self.name)
        return {
            holder: sm4.seal(
                secagg.share_key(self._secret(holder), qid, self.name, holder),
                codec.encode([int_to_bytes(y) for y in shares]),
                secagg.share_aad(qid, self.name, holder),
            )
            for holder, shares in dealt.items()
        }

    def _contribute(
        self,
        msg: dict[str, Any],
        spec: QuerySpec,
        cert: Certificate,
        participants: list[str],
        decision: Decision,
    ) -> bytes:
        if not spec.is_linear:
            raise PolicyRefusal(self.name, f"{spec.aggregate!r} does not run on the Paillier path")
        qid = str(msg["query_id"])
        n_raw = msg["n"]
        if not isinstance(n_raw, bytes):
            raise CiphertextError("a query's Paillier key is bytes")
        pk = paillier.public_key_from_bytes(n_raw)
        local = local_linear(self.connector, self.catalog, spec, self.policy.min_group_size)
        values = [int(v) for v in local]
        if len(values) != int(msg["n_values"]):
            raise SpecError(f"request expects {msg['n_values']} slots, this query has {len(values)}")
        if spec.epsilon is not None:
            values = self._add_noise(spec, values)
        bound = 1 << int(msg["value_bits"])
        if msg["packed"]:
            layout = paillier.SlotLayout.plan(
                int(msg["value_bits"]), len(participants), pk.n.bit_length(), len(values)
            )
            plaintexts = layout.pack(values)
        else:
            if any(not -bound < v < bound for v in values):
                raise PolicyRefusal(self.name, "a local value exceeds the query's declared bound")
            plaintexts = values
        self_seed = secagg.fresh_seed()
        others = [a for a in participants if a != self.name]
        masked = secagg.mask(plaintexts, pk.n, self_seed, self._pair_seeds(qid, others), self.name)
        cts = [int(pk.raw_encrypt(m)) for m in masked]
        now = clock_ms()
        with self._lock:
            for key in [k for k, p in self._pending.items() if p.expiry_ms <= now]:
                del self._pending[key]
            self._pending[qid] = _Pending(
                cert.cert_id, participants, self_seed, now + 2 * self.replay.window_ms + 600_000
            )
        return self._sign(
            {
                "type": "contribution",
                "query_id": qid,
                "agency": self.name,
                "key_fp": paillier.fingerprint(pk),
                "ciphertexts": [int_to_bytes(c) for c in cts],
                "decision": decision.to_dict(),
                "shares": self._deal(qid, self_seed, participants),
            }
        )

    def _add_noise(self, spec: QuerySpec, values: list[int]) -> list[int]:
        assert spec.epsilon is not None and self.policy.epsilon_budget is not None
        if self.budget is None:
            raise PolicyRefusal(self.name, "no budget ledger is configured for differential privacy")
        self.budget.charge(self.name, spec.requester, spec.epsilon, self.policy.epsilon_budget)
        kinds = slot_kinds(spec)
        unique = list(dict.fromkeys(kinds))
        eps_each = spec.epsilon / len(unique)
        scale = {k: s / eps_each for k, s in zip(unique, sensitivities(spec, self.catalog), strict=True)}
        per_group = len(kinds)
        return [v + discrete_laplace(scale[kinds[i % per_group]]) for i, v in enumerate(values)]

    # --- rounds 2 and 3: the view, then the reveal ------------------------------------------

    def _pending_for(self, signed: Signed) -> _Pending:
        qid = str(signed.msg["query_id"])
        with self._lock:
            pending = self._pending.get(qid)
        if pending is None:
            raise PolicyRefusal(self.name, f"this agency holds no contribution to query {qid!r}")
        if signed.cert.cert_id != pending.requester:
            raise IdentityError("only the requester that signed the query may continue it")
        return pending

    @staticmethod
    def _names(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise CiphertextError("a view lists agency names")
        return tuple(sorted(value))

    def _endorse(self, signed: Signed) -> bytes:
        pending = self._pending_for(signed)
        view = (self._names(signed.msg["survivors"]), self._names(signed.msg["dropped"]))
        why = secagg.view_is_acceptable(pending.participants, *view, self.name, self.policy.min_agencies)
        if why is not None:
            raise PolicyRefusal(self.name, why)
        with self._lock:
            if pending.view is not None and pending.view != view:
                raise PolicyRefusal(
                    self.name, "this agency already endorsed another view of the query; it endorses one"
                )
            pending.view = view
        return self._sign(
            {
                "type": "endorsement",
                "query_id": signed.msg["query_id"],
                "agency": self.name,
                "survivors": list(view[0]),
                "dropped": list(view[1]),
            }
        )

    def _reveal(self, signed: Signed) -> bytes:
        pending = self._pending_for(signed)
        qid = str(signed.msg["query_id"])
        if pending.view is None:
            raise PolicyRefusal(self.name, "this agency has endorsed no view of the query yet")
        survivors, dropped = pending.view
        endorsements = signed.msg["endorsements"]
        if not isinstance(endorsements, list) or len(endorsements) > MAX_AGENCIES:
            raise CiphertextError("a reveal carries a list of endorsements")
        endorsed = set()
        for raw in endorsements:
            e = open_signed(raw, "endorsement")
            agency = str(e.msg["agency"])
            if agency not in survivors:
                raise PolicyRefusal(
                    self.name, f"an endorsement from {agency!r}, which the view lists as dropped"
                )
            pinned = self.identity.cert if agency == self.name else self.peers.get(agency)
            if e.cert.cert_id != pinned.cert_id:
                raise IdentityError(f"an endorsement for {agency!r} is not signed by that agency")
            if (
                e.msg["query_id"] != qid
                or (self._names(e.msg["survivors"]), self._names(e.msg["dropped"])) != pending.view
            ):
                raise PolicyRefusal(self.name, f"agency {agency!r} endorsed another view of the query")
            endorsed.add(agency)
        # a majority of the participants: no other view can gather one, so what this agency
        # reveals now and hands over in a recovery belongs to this view alone
        needed = secagg.threshold(len(pending.participants))
        if len(endorsed) < needed:
            raise PolicyRefusal(
                self.name,
                f"only {len(endorsed)} agencies endorsed the view and {needed} must; nothing is revealed",
            )
        seeds = self._pair_seeds(qid, list(dropped))
        with self._lock:
            pending.revealed = True
        return self._sign(
            {
                "type": "unmask",
                "query_id": qid,
                "agency": self.name,
                "self_seed": pending.self_seed,
                "pair_seeds": seeds,
            }
        )

    def _recover(self, signed: Signed) -> bytes:
        """Hand over this agency's shares of the seeds of contributors that dropped out since."""
        pending = self._pending_for(signed)
        qid = str(signed.msg["query_id"])
        if not pending.revealed or pending.view is None:
            raise PolicyRefusal(
                self.name, "this agency recovers seeds only after revealing its own for the view"
            )
        survivors, dropped = pending.view
        late = self._names(signed.msg["late"])
        sealed = signed.msg["shares"]
        if not late or not isinstance(sealed, dict) or sorted(sealed) != list(late):
            raise CiphertextError(
                "a recovery names the late agencies and carries their sealed shares for this agency"
            )
        if self.name in late:
            raise PolicyRefusal(self.name, "this agency is not late: it answers for itself")
        strangers = sorted(set(late) - set(survivors))
        if strangers:
            # the seeds of an agency the view lists as dropped stay hidden: its pairwise
            # seeds were revealed, and its self seed would then unmask it
            raise PolicyRefusal(self.name, f"agencies {strangers} did not contribute in the endorsed view")
        order = sorted(a for a in pending.participants)
        out: dict[str, Any] = {}
        for agency in late:
            box = sealed[agency]
            if not isinstance(box, bytes):
                raise CiphertextError(f"the sealed shares from {agency!r} are bytes")
            try:
                plain = sm4.open_sealed(
                    secagg.share_key(self._secret(agency), qid, agency, self.name),
                    box,
                    secagg.share_aad(qid, agency, self.name),
                )
                shares = codec.decode(plain, max_size=len(plain))
            except (CryptoError, codec.CodecError):
                raise CiphertextError(
                    f"the shares sealed by {agency!r} for this agency do not open: altered or misaddressed"
                ) from None
            if (
                not isinstance(shares, list)
                or len(shares) != len(order)
                or not all(isinstance(y, bytes) for y in shares)
            ):
                raise CiphertextError(f"the shares sealed by {agency!r} are not one per seed")
            values = [int.from_bytes(y, "big") for y in shares]
            others = [a for a in order if a != agency]
            out[agency] = {
                "self": int_to_bytes(values[0]),
                "pairs": {w: int_to_bytes(values[1 + others.index(w)]) for w in dropped},
            }
        return self._sign(
            {
                "type": "shares",
                "query_id": qid,
                "agency": self.name,
                "x": secagg.holder_index(pending.participants, self.name),
                "shares": out,
            }
        )
