"""The regulator's side: plan a query, run it across agencies by secure aggregation, decode, audit.

Linear aggregates run on the Paillier path with secure aggregation (:mod:`privacy.secagg`):

1. the regulator signs the query (its certificate is its identity for policy and budgets)
   and sends it, with its Paillier public key, to every agency;
2. each agency answers the **aggregator** with its local aggregate, packed, masked and
   encrypted: decrypted alone it is a uniformly random number;
3. the aggregator asks the survivors to endorse the view of who contributed and who
   dropped out, collects every survivor's endorsement of that same view, and sends them
   back; each survivor then reveals its self-mask seed and its seeds shared with
   dropped agencies;
4. the aggregator multiplies the contributions (adding the plaintexts), removes the
   revealed masks homomorphically, re-randomizes and sends the regulator one aggregate,
   which decrypts to the exact sum over the survivors.

Neither the regulator (holding the Paillier key) nor the aggregator, nor both together,
learn one agency's value: the pairwise masks among survivors stay unknown to them. When an
agency drops out before contributing, the others reveal its pairwise seeds and the query
still completes if enough agencies remain (each survivor's ``min_agencies`` and a
majority of the participants); a survivor dropping out after contributing aborts the
query without a result.

The others run as MPC among the agencies (:mod:`privacy.mpc`): every agency accepts the
signed query and says where its party will listen; the regulator fixes the plan and sends
every agency the parties' addresses; each agency checks the plan and runs its own party
over its own data, and answers its shares of the outputs, which only the regulator
recombines. Every query, refused or not, is recorded in the audit trail with each
agency's signed decision.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Protocol

from chain.crypto import sm3
from chain.types import Certificate
from privacy import mpc, paillier, secagg
from privacy.audit import AuditLog, AuditRecord, result_digest, utc_now
from privacy.catalog import Catalog
from privacy.errors import AgencyUnavailable, CiphertextError, IdentityError, PolicyRefusal, SpecError
from privacy.identity import Identity, Trust
from privacy.local import n_groups, slot_kinds, value_bits
from privacy.protocol import Signed, decode_message, encode_message, int_to_bytes, open_signed, sign
from privacy.replay import clock_ms
from privacy.spec import QuerySpec

_SEALED_SHARE_BYTES = 80
"""Bound on one sealed share (a 521-bit field element with its encoding), per seed."""

Progress = Callable[[str], None]
DecisionRow = tuple[str, bool, str, str]


class AgencyClient(Protocol):
    """How the regulator reaches one agency (in-process, or over the network)."""

    name: str
    certificate: Certificate
    """The agency's pinned certificate: its answers must be signed by this key."""

    def call(self, request: bytes) -> bytes: ...


@dataclass
class QueryResult:
    """A decoded result with its audit record."""

    spec: QuerySpec
    columns: list[str]
    rows: list[list[Any]]
    path: str
    audit: AuditRecord | None = None
    anchor: Any = None
    notes: list[str] = field(default_factory=list)
    inbox: list[bytes] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly form."""
        doc: dict[str, Any] = {
            "query": self.spec.to_dict(),
            "path": self.path,
            "columns": self.columns,
            "rows": self.rows,
            "notes": self.notes,
            "stats": self.stats,
        }
        if self.audit is not None:
            doc["audit"] = self.audit.to_json()
        if self.anchor is not None:
            doc["anchor"] = {"tx_id": self.anchor.tx_id.hex(), "height": self.anchor.height}
        return doc


class Aggregator:
    """Combines masked contributions for one query and unmasks only their sum.

    It never holds a key that decrypts; it learns the survivors' self-mask seeds and the
    pairwise seeds of dropped agencies, which reveal nothing while the survivors' pairwise
    masks stay unknown.
    """

    def __init__(
        self, pk: paillier.PublicKey, query_id: str, n_ciphertexts: int, participants: list[str]
    ) -> None:
        self.pk = pk
        self.query_id = query_id
        self.n_ciphertexts = n_ciphertexts
        self.participants = sorted(participants)
        self.fp = paillier.fingerprint(pk)
        self.contributions: dict[str, list[int]] = {}
        self.shares: dict[str, dict[str, bytes]] = {}
        self.decisions: list[dict[str, Any]] = []

    def collect(self, msg: dict[str, Any]) -> None:
        """Check and keep one agency's (already authenticated) contribution."""
        agency = str(msg["agency"])
        if msg["query_id"] != self.query_id:
            raise CiphertextError(f"contribution from {agency!r} belongs to another query")
        if agency not in self.participants:
            raise CiphertextError(f"contribution from {agency!r}, which is not a participant")
        if bytes(msg["key_fp"]) != self.fp:
            raise CiphertextError(
                f"agency {agency!r} encrypted under another key "
                f"(fingerprint {bytes(msg['key_fp']).hex()[:16]}…); "
                "it must use the regulator's key sent with the request"
            )
        cts = [int.from_bytes(bytes(c), "big") for c in msg["ciphertexts"]]
        if len(cts) != self.n_ciphertexts:
            raise CiphertextError(
                f"agency {agency!r} sent {len(cts)} ciphertexts, expected {self.n_ciphertexts}"
            )
        for c in cts:
            paillier.check_ciphertext(self.pk, c)
        if agency in self.contributions:
            raise CiphertextError(f"agency {agency!r} contributed twice")
        shares, others = msg["shares"], [a for a in self.participants if a != agency]
        limit = _SEALED_SHARE_BYTES * len(self.participants) + 64
        if (
            not isinstance(shares, dict)
            or sorted(shares) != others
            or not all(isinstance(b, bytes) and len(b) <= limit for b in shares.values())
        ):
            raise CiphertextError(f"agency {agency!r} must seal one set of shares to each other participant")
        self.contributions[agency] = cts
        self.shares[agency] = dict(shares)
        d = msg["decision"]
        self.decisions.append({"agency": agency, **{k: d[k] for k in ("accepted", "reason", "epsilon")}})

    @property
    def survivors(self) -> list[str]:
        """Agencies whose contribution was collected."""
        return sorted(self.contributions)

    @property
    def dropped(self) -> list[str]:
        """Participants without a contribution."""
        return [a for a in self.participants if a not in self.contributions]

    def finish(
        self, unmasks: dict[str, dict[str, Any]], recovered: dict[str, dict[str, Any]] | None = None
    ) -> bytes:
        """The unmasked, re-randomized homomorphic sums, as the message for the regulator.

        ``unmasks`` maps each survivor that revealed to its ``unmask`` message; the seeds of
        a survivor that went silent after contributing are rebuilt from ``recovered``, the
        ``shares`` messages of at least :func:`privacy.secagg.threshold` other agencies.
        """
        survivors, dropped = self.survivors, self.dropped
        revealed = sorted(unmasks)
        if not set(revealed) <= set(survivors):
            raise CiphertextError("only survivors reveal seeds")
        late = [a for a in survivors if a not in unmasks]
        self_seeds, pairs = self._rebuild(late, recovered or {})
        for agency in revealed:
            msg = unmasks[agency]
            seeds = msg["pair_seeds"]
            if not isinstance(seeds, dict) or sorted(seeds) != dropped:
                raise CiphertextError(
                    f"agency {agency!r} revealed seeds for other agencies than the dropped ones"
                )
            self_seeds.append(bytes(msg["self_seed"]))
            pairs.extend((agency, d, bytes(seeds[d])) for d in dropped)
        n, nsq = self.pk.n, self.pk.nsquare
        total = secagg.correction(self.n_ciphertexts, n, self_seeds, pairs)
        sums = paillier.combine(self.pk, [self.contributions[a] for a in survivors])
        # subtracting a known plaintext m: multiply by g**(-m) = 1 + n * (n - m) mod n**2
        unmasked = [c * (1 + n * ((-m) % n)) % nsq for c, m in zip(sums, total, strict=True)]
        released = [paillier.rerandomize(self.pk, c) for c in unmasked]
        return encode_message(
            {
                "type": "aggregate",
                "query_id": self.query_id,
                "key_fp": self.fp,
                "agencies": survivors,
                "ciphertexts": [int_to_bytes(c) for c in released],
                "decisions": self.decisions,
            }
        )

    def _rebuild(
        self, late: list[str], recovered: dict[str, dict[str, Any]]
    ) -> tuple[list[bytes], list[tuple[str, str, bytes]]]:
        """Self seeds and seeds shared with dropped agencies of the late survivors, from shares."""
        self_seeds: list[bytes] = []
        pairs: list[tuple[str, str, bytes]] = []
        if not late:
            return self_seeds, pairs
        need = secagg.threshold(len(self.participants))
        for holder, msg in recovered.items():
            if holder not in self.participants or holder in late:
                raise CiphertextError(f"shares from {holder!r}, which cannot hold any")
            if msg["x"] != secagg.holder_index(self.participants, holder):
                raise CiphertextError(f"agency {holder!r} gave the shares another holder's index")
        for agency in late:
            own: dict[int, int] = {}
            theirs: dict[str, dict[int, int]] = {d: {} for d in self.dropped}
            for msg in recovered.values():
                got = msg["shares"].get(agency) if isinstance(msg["shares"], dict) else None
                if not isinstance(got, dict) or not isinstance(got.get("pairs"), dict):
                    continue
                if sorted(got["pairs"]) != self.dropped or not isinstance(got.get("self"), bytes):
                    raise CiphertextError(
                        f"shares of {agency!r}'s seeds for other agencies than the dropped ones"
                    )
                x = int(msg["x"])
                own[x] = int.from_bytes(got["self"], "big")
                for d in self.dropped:
                    theirs[d][x] = int.from_bytes(bytes(got["pairs"][d]), "big")
            if len(own) < need:
                raise CiphertextError(f"{len(own)} shares of {agency!r}'s seeds; {need} rebuild them")
            self_seeds.append(secagg.combine(own, need))
            pairs.extend((agency, d, secagg.combine(theirs[d], need)) for d in self.dropped)
        return self_seeds, pairs


class Regulator:
    """Runs queries for one authenticated requester over a set of agencies.

    Parameters
    ----------
    catalog : Catalog
        The shared catalog.
    agencies : sequence of AgencyClient
        The participating agencies.
    keypair : (PublicKey, PrivateKey)
        The regulator's Paillier keys.
    identity : Identity
        The requester's SM2 key and certificate: it signs every query, and agencies keep
        its ε budget under the certificate id.
    role : str
        The role the queries claim (the certificate must carry it).
    audit : AuditLog or None
        Where records are anchored.
    timeout : float
        Seconds an agency may take before it counts as dropped out.
    mpc_method : str
        How the MPC path finds order statistics: ``"search"`` (default; the agencies also
        learn the answer) or ``"histogram"`` (they learn nothing; far costlier), see
        :func:`privacy.mpc.plan`.
    trust : Trust or None
        Checked before every query for each agency's pinned certificate: the deny list and
        the consortium ledger's revocations (:meth:`privacy.identity.Trust.check_standing`);
        a revoked agency makes the query fail before anything is sent.
    """

    def __init__(
        self,
        catalog: Catalog,
        agencies: Sequence[AgencyClient],
        keypair: tuple[paillier.PublicKey, paillier.PrivateKey],
        identity: Identity,
        role: str = "regulator",
        audit: AuditLog | None = None,
        timeout: float = 120.0,
        mpc_method: str = "search",
        trust: Trust | None = None,
    ) -> None:
        names = [a.name for a in agencies]
        if not agencies or len(set(names)) != len(names):
            raise SpecError("select at least one agency, each once")
        self.catalog = catalog
        self.agencies = list(agencies)
        self.pk, self.sk = keypair
        paillier.validate_public_key(self.pk)
        self.identity = identity
        self.role = role
        self.audit = audit
        self.timeout = timeout
        if mpc_method not in mpc.METHODS:
            raise SpecError(f"unknown MPC method {mpc_method!r}; expected one of {list(mpc.METHODS)}")
        self.mpc_method = mpc_method
        self.trust = trust
        # per query: SM3 of the signed query, and of each agency's signed answer to it
        self._trail: dict[str, tuple[bytes, dict[str, bytes]]] = {}

    @property
    def requester(self) -> str:
        """The requester's identity as agencies see it: its certificate id (hex)."""
        return self.identity.cert_id.hex()

    def run(self, spec: QuerySpec, *, packed: bool = True, progress: Progress | None = None) -> QueryResult:
        """Run ``spec``; policy refusals raise :class:`PolicyRefusal` (and are audited)."""
        spec = spec.with_requester(self.requester, self.role)
        spec.validate(self.catalog)
        if self.trust is not None:
            for agency in self.agencies:
                try:
                    self.trust.check_standing(agency.certificate)
                except IdentityError as exc:
                    raise IdentityError(f"agency {agency.name!r} cannot take part: {exc}") from None
        qid = secrets.token_hex(16)
        say = progress or (lambda _m: None)
        decisions: list[DecisionRow] = []
        try:
            try:
                if spec.is_linear:
                    result = self._run_paillier(spec, qid, packed, say, decisions)
                else:
                    result = self._run_mpc(spec, qid, say, decisions)
            except PolicyRefusal as exc:
                self._record(qid, spec, decisions, {"refused": str(exc)}, "refused")
                raise
            result.audit, result.anchor = self._record(qid, spec, decisions, result.rows, result.path)
        finally:
            self._trail.pop(qid, None)
        return result

    def _record(
        self, qid: str, spec: QuerySpec, decisions: list[DecisionRow], outcome: Any, path: str
    ) -> tuple[AuditRecord, Any]:
        trail = self._trail.pop(qid, (b"", {}))
        rec = AuditRecord(
            qid,
            spec.digest(),
            self.requester,
            self.role,
            tuple(a.name for a in self.agencies),
            tuple(decisions),
            result_digest(outcome),
            path,
            utc_now(),
            self.identity.cert.subject,
            trail[0],
            tuple(sorted(trail[1].items())),
        )
        return rec, None if self.audit is None else self.audit.record(rec)

    def _query_message(self, qid: str, spec: QuerySpec, path: str, **paillier_fields: Any) -> bytes:
        msg = {
            "type": "query",
            "query_id": qid,
            "time_ms": clock_ms(),
            "role": self.role,
            "spec": spec.to_json(),
            "agencies": sorted(a.name for a in self.agencies),
            "path": path,
            "n": b"",
            "packed": False,
            "value_bits": 0,
            "n_values": 0,
            **paillier_fields,
        }
        raw = sign(self.identity, msg)
        self._trail[qid] = (sm3(raw), {})
        return raw

    def _call_all(
        self, clients: Sequence[AgencyClient], request: Callable[[AgencyClient], bytes], say: Progress
    ) -> tuple[list[tuple[AgencyClient, bytes]], dict[str, str]]:
        """Send to every client at once; answers, and the agencies that did not answer (why)."""
        pool = ThreadPoolExecutor(max_workers=len(clients))
        try:
            futures = [(a, pool.submit(a.call, request(a))) for a in clients]
            deadline = time.monotonic() + self.timeout
            answers, failed = [], {}
            for a, fut in futures:
                try:
                    answers.append((a, fut.result(timeout=max(0.0, deadline - time.monotonic()))))
                    say(f"agency {a.name} answered")
                except FutureTimeout:
                    failed[a.name] = f"no answer within {self.timeout:g} s"
                except AgencyUnavailable as exc:
                    failed[a.name] = exc.detail
                except (OSError, ConnectionError, EOFError) as exc:
                    failed[a.name] = f"{type(exc).__name__}: {exc}"
            return answers, failed
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def _open(client: AgencyClient, raw: bytes, qid: str, *types: str) -> Signed:
        """An agency's answer, checked to be signed by its pinned certificate, for this query."""
        signed = open_signed(raw, *types)
        if signed.cert.cert_id != client.certificate.cert_id or signed.msg["agency"] != client.name:
            raise IdentityError(f"an answer for agency {client.name!r} is not signed by that agency's key")
        if signed.msg["query_id"] != qid:
            raise CiphertextError(f"agency {client.name!r} answered another query")
        return signed

    def _collect(
        self,
        answers: list[tuple[AgencyClient, bytes]],
        qid: str,
        want: str,
        inbox: list[bytes],
        decisions: list[DecisionRow] | None = None,
    ) -> dict[str, Signed]:
        """The signed answers of one round by agency; the first refusal is raised (after all are read)."""
        out, refusals = {}, []
        for client, raw in answers:
            inbox.append(raw)
            signed = self._open(client, raw, qid, want, "refusal")
            if signed.msg["type"] == "refusal":
                if decisions is not None:
                    decisions.append((client.name, False, str(signed.msg["reason"]), "0.0"))
                refusals.append(PolicyRefusal(client.name, str(signed.msg["reason"])))
            else:
                out[client.name] = signed
        if refusals:
            raise refusals[0]
        return out

    def _round(
        self,
        clients: Sequence[AgencyClient],
        request: bytes,
        qid: str,
        want: str,
        say: Progress,
        decisions: list[DecisionRow],
        inbox: list[bytes],
        stage: str = "after contributing",
    ) -> dict[str, Signed]:
        """A round every listed agency must complete: any silence aborts, any refusal refuses."""
        answers, failed = self._call_all(clients, lambda _a: request, say)
        if failed:
            name, why = next(iter(failed.items()))
            raise AgencyUnavailable(name, f"{why} ({stage})")
        return self._collect(answers, qid, want, inbox, decisions)

    def _quorum_round(
        self,
        clients: Sequence[AgencyClient],
        request: Callable[[AgencyClient], bytes],
        qid: str,
        want: str,
        say: Progress,
        inbox: list[bytes],
        need: int,
        late: dict[str, str],
        blame: str | None = None,
    ) -> dict[str, Signed]:
        """A round after contributing that ``need`` answers complete.

        Silent agencies join ``late`` (unless the round is about an agency already late,
        ``blame``, which then takes the blame for a shortfall); any refusal refuses.
        """
        answers, failed = self._call_all(clients, request, say)
        if blame is None:
            late.update(failed)
        out = self._collect(answers, qid, want, inbox)
        if len(out) < need:
            name = blame or sorted(late)[0]
            raise AgencyUnavailable(
                name,
                f"{late[name]} (after contributing); {len(out)} agencies answered with {want} "
                f"and {need} must, to remove its masks",
            )
        return out

    def _recover(
        self,
        clients: Sequence[AgencyClient],
        aggregator: Aggregator,
        qid: str,
        names: list[str],
        say: Progress,
        inbox: list[bytes],
        need: int,
        late: dict[str, str],
    ) -> dict[str, dict[str, Any]]:
        """Ask the agencies that revealed for their shares of the late agencies' seeds."""

        def request(client: AgencyClient) -> bytes:
            shares = {a: aggregator.shares[a][client.name] for a in names}
            return sign(self.identity, {"type": "recover", "query_id": qid, "late": names, "shares": shares})

        got = self._quorum_round(clients, request, qid, "shares", say, inbox, need, late, blame=names[0])
        return {a: s.msg for a, s in got.items()}

    def _run_paillier(
        self, spec: QuerySpec, qid: str, packed: bool, say: Progress, decisions: list[DecisionRow]
    ) -> QueryResult:
        t0 = time.perf_counter()
        kinds = slot_kinds(spec)
        groups = n_groups(spec, self.catalog)
        n_values = groups * len(kinds)
        bits = value_bits(spec, self.catalog) + (8 if spec.epsilon is not None else 0)
        layout = paillier.SlotLayout.plan(bits, len(self.agencies), self.pk.n.bit_length(), n_values)
        request = self._query_message(
            qid,
            spec,
            "paillier",
            n=paillier.public_key_to_bytes(self.pk),
            packed=packed,
            value_bits=bits,
            n_values=n_values,
        )
        n_ct = layout.n_ciphertexts if packed else n_values
        say(f"query {qid[:8]}: {n_values} slots → {n_ct} ciphertext(s) per agency")
        aggregator = Aggregator(self.pk, qid, n_ct, [a.name for a in self.agencies])
        inbox: list[bytes] = []
        answers, failed = self._call_all(self.agencies, lambda _a: request, say)
        t_contributed = time.perf_counter()
        bytes_up = sum(len(a) for _, a in answers)
        refusals = []
        for client, raw in answers:
            inbox.append(raw)
            signed = self._open(client, raw, qid, "contribution", "refusal")
            self._trail[qid][1][client.name] = sm3(raw)
            if signed.msg["type"] == "refusal":
                decisions.append((client.name, False, str(signed.msg["reason"]), "0.0"))
                refusals.append(PolicyRefusal(client.name, str(signed.msg["reason"])))
                continue
            aggregator.collect(signed.msg)
        for name, why in failed.items():
            decisions.append((name, False, f"dropped out: {why}", "0.0"))
        if refusals:
            raise refusals[0]
        for d in aggregator.decisions:
            decisions.append((d["agency"], bool(d["accepted"]), str(d["reason"]), str(d["epsilon"])))
        survivors, dropped = aggregator.survivors, aggregator.dropped
        if not survivors or 2 * len(survivors) <= len(self.agencies):
            name = dropped[0]
            raise AgencyUnavailable(
                name,
                f"{failed[name]}; {len(survivors)} of {len(self.agencies)} agencies contributed, "
                "fewer than a majority",
            )
        if dropped:
            say(f"agencies {dropped} dropped out; the survivors reveal their shared seeds")
        live = [a for a in self.agencies if a.name in survivors]
        view = sign(
            self.identity, {"type": "view", "query_id": qid, "survivors": survivors, "dropped": dropped}
        )
        need = secagg.threshold(len(self.agencies))
        late: dict[str, str] = {}
        recovered: dict[str, dict[str, Any]] = {}
        try:
            endorsements = self._quorum_round(
                live, lambda _a: view, qid, "endorsement", say, inbox, need, late
            )
            reveal = sign(
                self.identity,
                {
                    "type": "reveal",
                    "query_id": qid,
                    "endorsements": [endorsements[a].raw for a in sorted(endorsements)],
                },
            )
            endorsed = [a for a in live if a.name in endorsements]
            unmasks = {
                a: s.msg
                for a, s in self._quorum_round(
                    endorsed, lambda _a: reveal, qid, "unmask", say, inbox, need, late
                ).items()
            }
            if late:
                say(f"agencies {sorted(late)} went silent after contributing; the others hand over shares")
                recovered = self._recover(
                    [a for a in live if a.name in unmasks],
                    aggregator,
                    qid,
                    sorted(late),
                    say,
                    inbox,
                    need,
                    late,
                )
        except PolicyRefusal as exc:
            if dropped:
                # a survivor's policy refused to finish without the dropped agencies
                raise AgencyUnavailable(dropped[0], f"{failed[dropped[0]]}; {exc.reason}") from None
            raise
        t_revealed = time.perf_counter()
        aggregate = aggregator.finish(unmasks, recovered)
        inbox.append(aggregate)
        say("aggregator combined, unmasked and re-randomized the ciphertexts")
        totals = self._decrypt(aggregate, layout, packed, len(survivors))
        columns, rows, notes = decode_linear(spec, self.catalog, totals)
        if dropped:
            notes.append(f"agencies {dropped} dropped out; the result covers {survivors}")
        if late:
            notes.append(
                f"agencies {sorted(late)} went silent after contributing; their masks were removed with "
                f"{need} of the other agencies' shares and the result includes their data"
            )
        stats = {
            "seconds": time.perf_counter() - t0,
            "seconds_contributions": t_contributed - t0,
            "seconds_endorse_reveal": t_revealed - t_contributed,
            "agencies": len(self.agencies),
            "survivors": survivors,
            "ciphertexts_per_agency": aggregator.n_ciphertexts,
            "bytes_request": len(request) * len(self.agencies),
            "bytes_agencies_to_aggregator": bytes_up,
            "bytes_ciphertexts": sum(
                (c.bit_length() + 7) // 8 for cts in aggregator.contributions.values() for c in cts
            ),
            "bytes_to_regulator": len(aggregate),
            "packed": packed,
        }
        return QueryResult(spec, columns, rows, "paillier", notes=notes, inbox=inbox, stats=stats)

    def _decrypt(
        self, aggregate: bytes, layout: paillier.SlotLayout, packed: bool, contributors: int
    ) -> list[int]:
        msg = decode_message(aggregate, "aggregate")
        if bytes(msg["key_fp"]) != paillier.fingerprint(self.pk):
            raise CiphertextError("the aggregate is under another key; refusing to decrypt")
        cts = [int.from_bytes(bytes(c), "big") for c in msg["ciphertexts"]]
        if packed:
            totals = paillier.decrypt_packed(self.sk, cts, layout)
            # the layout's offset assumes every participant contributed: remove the missing ones'
            missing = layout.agencies - contributors
            return [t + (missing << layout.value_bits) for t in totals]
        return paillier.decrypt_unpacked(self.sk, cts, len(self.agencies) << layout.value_bits)

    def _run_mpc(self, spec: QuerySpec, qid: str, say: Progress, decisions: list[DecisionRow]) -> QueryResult:
        t0 = time.perf_counter()
        request = self._query_message(qid, spec, "mpc")
        answers, failed = self._call_all(self.agencies, lambda _a: request, say)
        if failed:
            name, why = next(iter(failed.items()))
            raise AgencyUnavailable(name, why)
        refusal = None
        accepted: dict[str, Signed] = {}
        for client, raw in answers:
            signed = self._open(client, raw, qid, "decision", "refusal")
            self._trail[qid][1][client.name] = sm3(raw)
            if signed.msg["type"] == "refusal":
                decisions.append((client.name, False, str(signed.msg["reason"]), "0.0"))
                refusal = refusal or PolicyRefusal(client.name, str(signed.msg["reason"]))
            else:
                d = signed.msg["decision"]
                decisions.append((client.name, bool(d["accepted"]), str(d["reason"]), str(d["epsilon"])))
                accepted[client.name] = signed
        if refusal is not None:
            raise refusal
        # parties in the participants' sorted order; each agency takes every party's address
        # and TLS certificate from that party's own signed decision
        order = sorted(accepted)
        k = max(int(accepted[a].msg["min_group"]) for a in order)
        mpc_plan = mpc.plan(spec, self.catalog, len(order), k, self.mpc_method)
        say(f"MPC plan: {mpc_plan.kind} ({mpc_plan.method}), {len(order)} parties run by their agencies")
        run = sign(
            self.identity,
            {
                "type": "mpc-run",
                "query_id": qid,
                "plan": json.dumps(mpc_plan.to_dict()),
                "decisions": [accepted[a].raw for a in order],
                "timeout_s": int(self.timeout),
            },
        )
        outs = self._round(self.agencies, run, qid, "mpc-output", say, [], [], "while running its MPC party")
        outputs = []
        for a in order:
            try:
                out = json.loads(str(outs[a].msg["output"]))
            except ValueError:
                raise CiphertextError(f"agency {a!r} sent malformed MPC output") from None
            if not isinstance(out, dict) or out.get("pid") != order.index(a):
                raise CiphertextError(f"agency {a!r} sent the output of another party")
            outputs.append(out)
        values, stats = mpc.finish(mpc_plan, outputs, t0)
        columns, rows, notes = decode_mpc(spec, self.catalog, mpc_plan, values)
        return QueryResult(spec, columns, rows, "mpc", notes=notes, stats=stats)


def _group_labels(spec: QuerySpec, catalog: Catalog) -> list[Any]:
    if spec.group_by is None:
        return ["(all)"]
    domain = catalog.column(spec.table, spec.group_by).domain
    assert domain is not None
    return list(domain)


def decode_linear(
    spec: QuerySpec, catalog: Catalog, totals: list[int]
) -> tuple[list[str], list[list[Any]], list[str]]:
    """Turn summed slots into result rows."""
    labels = _group_labels(spec, catalog)
    per = len(slot_kinds(spec))
    scale = 1 if spec.column is None else catalog.column(spec.table, spec.column).scale
    gcol = spec.group_by or "group"
    notes = []
    if spec.epsilon is not None:
        notes.append(f"differential privacy: discrete Laplace noise, ε={spec.epsilon} per agency")
    rows: list[list[Any]] = []
    for i, label in enumerate(labels):
        s = totals[i * per : (i + 1) * per]
        if spec.aggregate == "count":
            rows.append([label, s[0]])
        elif spec.aggregate == "sum":
            rows.append([label, s[0] / scale if scale != 1 else s[0]])
        elif spec.aggregate == "mean":
            rows.append([label, s[0] / s[1] / scale if s[1] > 0 else None, s[1]])
        elif spec.aggregate == "variance":
            total, sq, n = s
            var = (n * sq - total * total) / (n * (n - 1)) / scale**2 if n > 1 else None
            rows.append([label, var, n])
        else:
            rows.append([label, *s])
    if spec.aggregate == "histogram":
        assert spec.bins is not None
        edges = spec.bins
        cols = [gcol] + [
            f"[{edges[j]:g}, {edges[j + 1]:g}{']' if j == len(edges) - 2 else ')'}"
            for j in range(len(edges) - 1)
        ]
    elif spec.aggregate in ("mean", "variance"):
        cols = [gcol, spec.aggregate, "count"]
    else:
        cols = [gcol, spec.aggregate]
    return cols, rows, notes


def decode_mpc(
    spec: QuerySpec, catalog: Catalog, p: mpc.MpcPlan, values: list[int]
) -> tuple[list[str], list[list[Any]], list[str]]:
    """Turn recombined MPC outputs into result rows."""
    notes: list[str] = []
    if p.kind == "intersection":
        flag, size = values
        return (
            ["intersection_size"],
            [[size if flag else None]],
            ([] if flag else ["suppressed: below the minimum group size"]),
        )
    key = catalog.column(spec.table, spec.key or spec.column or "")
    if p.kind == "topk":
        col = catalog.column(spec.table, spec.column or "")
        assert key.domain is not None
        rows = []
        for rank, (idx, val) in enumerate(zip(values[: p.k], values[p.k :], strict=True), start=1):
            if val < 0:
                notes.append(f"rank {rank}+: no further key meets the minimum group size")
                break
            rows.append([rank, key.domain[idx], val / col.scale if col.scale != 1 else val])
        return ["rank", key.name, f"sum({col.name})"], rows, notes
    col = catalog.column(spec.table, spec.column or "")
    lo, _ = col.scaled_bounds()
    labels = _group_labels(spec, catalog)
    flags = values[: p.groups]
    rest = values[p.groups :]
    if p.width > 1:
        notes.append(
            f"value range quantized into 2**{p.bits} bins: results are bin lower edges, "
            f"resolution {p.width / col.scale:g}"
        )
    names = [spec.aggregate] if p.n_outputs_per_group == 1 else [f"q{q:g}" for q in spec.quantiles or ()]
    rows = []
    for g, label in enumerate(labels):
        if not flags[g]:
            rows.append([label] + [None] * len(names))
            continue
        if spec.aggregate == "median":
            v = (2 * lo + rest[g] * p.width) / 2 / col.scale
            rows.append([label, int(v) if v == int(v) and col.kind == "int" and col.scale == 1 else v])
            continue
        out = []
        for t in range(len(names)):
            v = (lo + rest[t * p.groups + g] * p.width) / col.scale
            out.append(int(v) if col.scale == 1 else v)
        rows.append([label, *out])
    if any(not f for f in flags):
        notes.append("groups shown as null are suppressed (fewer rows than the minimum group size)")
    return [spec.group_by or "group", *names], rows, notes
