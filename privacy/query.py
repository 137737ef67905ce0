"""The regulator's side: plan a query, run it across agencies, decode, audit.

Linear aggregates run on the Paillier path: the regulator sends the request (with its
validated public key) to every agency; each agency answers the **aggregator** with
ciphertexts; the aggregator multiplies them (never decrypting), re-randomizes the sums and
sends the regulator one aggregate message. The others run as MPC among the agencies
(:mod:`privacy.mpc`), whose output shares only the regulator recombines. Either way the
regulator's inbox (:attr:`QueryResult.inbox`) holds only aggregates, refusals and shares
of the final result — never a row or a per-agency value. Every query, refused or not, is
recorded in the audit trail.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Protocol

from privacy import mpc, paillier
from privacy.agency import decode_message, encode_message, int_to_bytes
from privacy.audit import AuditLog, AuditRecord, result_digest, utc_now
from privacy.catalog import Catalog
from privacy.errors import AgencyUnavailable, CiphertextError, PolicyRefusal, SpecError
from privacy.local import n_groups, slot_kinds, value_bits
from privacy.mpc import PartyJob
from privacy.policy import Decision
from privacy.spec import QuerySpec

Progress = Callable[[str], None]


class AgencyClient(Protocol):
    """How the regulator reaches one agency."""

    name: str

    def call(self, request: bytes) -> bytes: ...

    def decide(self, spec: QuerySpec) -> Decision: ...

    def party_job(self) -> PartyJob: ...


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
    """Combines contributions for one query without decrypting (the provincial platform)."""

    def __init__(self, pk: paillier.PublicKey, query_id: str, n_ciphertexts: int) -> None:
        self.pk = pk
        self.query_id = query_id
        self.n_ciphertexts = n_ciphertexts
        self.fp = paillier.fingerprint(pk)
        self.contributions: dict[str, list[int]] = {}
        self.decisions: list[dict[str, Any]] = []

    def collect(self, raw: bytes) -> None:
        """Check and keep one agency's contribution."""
        msg = decode_message(raw, "contribution")
        agency = str(msg["agency"])
        if msg["query_id"] != self.query_id:
            raise CiphertextError(f"contribution from {agency!r} belongs to another query")
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
        self.contributions[agency] = cts
        d = msg["decision"]
        self.decisions.append({"agency": agency, **{k: d[k] for k in ("accepted", "reason", "epsilon")}})

    def finish(self) -> bytes:
        """The re-randomized homomorphic sums, as the message for the regulator."""
        agencies = sorted(self.contributions)
        sums = paillier.combine(self.pk, [self.contributions[a] for a in agencies])
        released = [paillier.rerandomize(self.pk, c) for c in sums]
        return encode_message(
            {
                "type": "aggregate",
                "query_id": self.query_id,
                "key_fp": self.fp,
                "agencies": agencies,
                "ciphertexts": [int_to_bytes(c) for c in released],
                "decisions": self.decisions,
            }
        )


class Regulator:
    """Runs queries for one requester over a set of agencies.

    Parameters
    ----------
    catalog : Catalog
        The shared catalog.
    agencies : sequence of AgencyClient
        The participating agencies.
    keypair : (PublicKey, PrivateKey)
        The regulator's Paillier keys.
    requester, role : str
        Identity used for policy and budgets.
    audit : AuditLog or None
        Where records are anchored.
    timeout : float
        Seconds an agency may take before it counts as dropped out.
    """

    def __init__(
        self,
        catalog: Catalog,
        agencies: Sequence[AgencyClient],
        keypair: tuple[paillier.PublicKey, paillier.PrivateKey],
        requester: str,
        role: str,
        audit: AuditLog | None = None,
        timeout: float = 120.0,
    ) -> None:
        names = [a.name for a in agencies]
        if not agencies or len(set(names)) != len(names):
            raise SpecError("select at least one agency, each once")
        self.catalog = catalog
        self.agencies = list(agencies)
        self.pk, self.sk = keypair
        paillier.validate_public_key(self.pk)
        self.requester = requester
        self.role = role
        self.audit = audit
        self.timeout = timeout

    def run(self, spec: QuerySpec, *, packed: bool = True, progress: Progress | None = None) -> QueryResult:
        """Run ``spec``; policy refusals raise :class:`PolicyRefusal` (and are audited)."""
        spec = spec.with_requester(self.requester, self.role)
        spec.validate(self.catalog)
        qid = uuid.uuid4().hex
        say = progress or (lambda _m: None)
        decisions: list[tuple[str, bool, str, str]] = []
        try:
            if spec.is_linear:
                result = self._run_paillier(spec, qid, packed, say, decisions)
            else:
                result = self._run_mpc(spec, say, decisions)
        except PolicyRefusal as exc:
            self._record(qid, spec, decisions, {"refused": str(exc)}, "refused")
            raise
        result.audit, result.anchor = self._record(qid, spec, decisions, result.rows, result.path)
        return result

    def _record(
        self,
        qid: str,
        spec: QuerySpec,
        decisions: list[tuple[str, bool, str, str]],
        outcome: Any,
        path: str,
    ) -> tuple[AuditRecord, Any]:
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
        )
        return rec, None if self.audit is None else self.audit.record(rec)

    def _call_all(self, request: bytes, say: Progress) -> list[tuple[str, bytes]]:
        pool = ThreadPoolExecutor(max_workers=len(self.agencies))
        try:
            futures = [(a.name, pool.submit(a.call, request)) for a in self.agencies]
            deadline = time.monotonic() + self.timeout
            answers = []
            for name, fut in futures:
                try:
                    answers.append((name, fut.result(timeout=max(0.0, deadline - time.monotonic()))))
                except FutureTimeout:
                    raise AgencyUnavailable(name, f"no answer within {self.timeout:g} s") from None
                except (OSError, ConnectionError, EOFError) as exc:
                    raise AgencyUnavailable(name, f"{type(exc).__name__}: {exc}") from None
                say(f"agency {name} answered")
            return answers
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _run_paillier(
        self,
        spec: QuerySpec,
        qid: str,
        packed: bool,
        say: Progress,
        decisions: list[tuple[str, bool, str, str]],
    ) -> QueryResult:
        t0 = time.perf_counter()
        kinds = slot_kinds(spec)
        groups = n_groups(spec, self.catalog)
        n_values = groups * len(kinds)
        bits = value_bits(spec, self.catalog) + (8 if spec.epsilon is not None else 0)
        layout = paillier.SlotLayout.plan(bits, len(self.agencies), self.pk.n.bit_length(), n_values)
        request = encode_message(
            {
                "type": "paillier-request",
                "query_id": qid,
                "spec": spec.to_json(),
                "n": paillier.public_key_to_bytes(self.pk),
                "packed": packed,
                "value_bits": bits,
                "agencies": len(self.agencies),
                "n_values": n_values,
            }
        )
        say(
            f"query {qid[:8]}: {n_values} slots → "
            f"{layout.n_ciphertexts if packed else n_values} ciphertext(s) per agency"
        )
        aggregator = Aggregator(self.pk, qid, layout.n_ciphertexts if packed else n_values)
        inbox: list[bytes] = []
        answers = self._call_all(request, say)
        bytes_up = sum(len(a) for _, a in answers)
        refusals = []
        for name, raw in answers:
            msg = decode_message(raw, "contribution", "refusal")
            if msg["type"] == "refusal":
                inbox.append(raw)  # refusals go to the regulator too: they carry no values
                decisions.append((name, False, str(msg["reason"]), "0.0"))
                refusals.append(PolicyRefusal(name, str(msg["reason"])))
                continue
            aggregator.collect(raw)
        if refusals:
            raise refusals[0]
        for d in aggregator.decisions:
            decisions.append((d["agency"], bool(d["accepted"]), str(d["reason"]), str(d["epsilon"])))
        aggregate = aggregator.finish()
        inbox.append(aggregate)
        say("aggregator combined and re-randomized the ciphertexts")
        totals = self._decrypt(aggregate, layout, packed)
        columns, rows, notes = decode_linear(spec, self.catalog, totals)
        stats = {
            "seconds": time.perf_counter() - t0,
            "agencies": len(self.agencies),
            "ciphertexts_per_agency": aggregator.n_ciphertexts,
            "bytes_request": len(request) * len(self.agencies),
            "bytes_agencies_to_aggregator": bytes_up,
            "bytes_to_regulator": len(aggregate),
            "packed": packed,
        }
        return QueryResult(spec, columns, rows, "paillier", notes=notes, inbox=inbox, stats=stats)

    def _decrypt(self, aggregate: bytes, layout: paillier.SlotLayout, packed: bool) -> list[int]:
        msg = decode_message(aggregate, "aggregate")
        if bytes(msg["key_fp"]) != paillier.fingerprint(self.pk):
            raise CiphertextError("the aggregate is under another key; refusing to decrypt")
        cts = [int.from_bytes(bytes(c), "big") for c in msg["ciphertexts"]]
        if packed:
            return paillier.decrypt_packed(self.sk, cts, layout)
        return paillier.decrypt_unpacked(self.sk, cts, len(self.agencies) << layout.value_bits)

    def _run_mpc(
        self, spec: QuerySpec, say: Progress, decisions: list[tuple[str, bool, str, str]]
    ) -> QueryResult:
        for a in self.agencies:
            d = a.decide(spec)
            decisions.append((a.name, d.accepted, d.reason, repr(d.epsilon)))
            if not d.accepted:
                raise PolicyRefusal(a.name, d.reason)
        jobs = [a.party_job() for a in self.agencies]
        k = max(j.min_group_size for j in jobs)
        mpc_plan = mpc.plan(spec, self.catalog, len(jobs), k)
        say(f"MPC plan: {mpc_plan.kind}, {len(jobs)} parties")
        values, stats = mpc.run(spec, self.catalog, mpc_plan, jobs, timeout=self.timeout, progress=say)
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
