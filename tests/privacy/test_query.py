"""End to end on the Paillier path: results equal plaintext over the union; policy, dropouts,
tampering and audit. (Secure aggregation and authentication: ``test_secagg.py``.)"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from chain import codec
from chain.types import Role
from privacy import paillier
from privacy.agency import AgencyServer
from privacy.audit import AuditLog, ExecutorAnchor
from privacy.errors import AgencyUnavailable, CiphertextError, IdentityError, PolicyRefusal
from privacy.identity import Identity
from privacy.mpc import PartyJob
from privacy.policy import Policy
from privacy.protocol import int_to_bytes, open_signed, sign
from privacy.query import Regulator
from privacy.replay import clock_ms
from privacy.spec import parse_sql

from .conftest import AGENCY_IDS, CATALOG, COUNTIES, REGULATOR, ROOT

ANSWERS = ("contribution", "refusal", "decision", "endorsement", "unmask")
KeyPair = tuple[paillier.PublicKey, paillier.PrivateKey]


class Client:
    """In-process client with optional faults."""

    def __init__(self, server: AgencyServer, fault: str | None = None) -> None:
        self.server, self.name, self.fault = server, server.name, fault
        self.certificate = server.certificate

    def call(self, request: bytes) -> bytes:
        if self.fault == "drop":
            raise ConnectionResetError("connection reset by peer")
        if self.fault == "hang":
            time.sleep(3)
        answer = self.server.handle(request)
        msg = open_signed(answer, *ANSWERS).msg
        if self.fault in ("tamper", "tamper-in-transit") and msg["type"] == "contribution":
            c = int.from_bytes(msg["ciphertexts"][0], "big") ^ (1 << 777)
            msg["ciphertexts"][0] = int_to_bytes(c)
            if self.fault == "tamper":  # the agency itself sends garbage, signed
                return sign(AGENCY_IDS[self.name], msg)
            env = codec.decode(answer)
            env["body"] = codec.encode(msg)
            return codec.encode(env)
        return answer

    def party_job(self) -> PartyJob:
        return self.server.party_job()


def regulator(servers: list[AgencyServer], keypair: KeyPair, **kw: Any) -> Regulator:
    faults = kw.pop("faults", {})
    clients = [Client(s, faults.get(s.name)) for s in servers]
    return Regulator(CATALOG, clients, keypair, kw.pop("identity", REGULATOR), "regulator", **kw)


def union(tables: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {c: np.concatenate([t[c] for t in tables]) for c in tables[0]}


def by_county(u: dict[str, np.ndarray], mask: np.ndarray) -> list[np.ndarray]:
    return [mask & (u["county"] == c) for c in COUNTIES]


@pytest.mark.parametrize("packed", [True, False])
def test_linear_aggregates_equal_plaintext(
    servers: list[AgencyServer], keypair: KeyPair, tables: Any, packed: bool
) -> None:
    reg = regulator(servers, keypair)
    u = union(tables)
    m = (u["views"] >= 100) & np.isin(u["work"], list(range(30)))
    where = "WHERE views >= 100 AND work IN (" + ", ".join(map(str, range(30))) + ")"
    groups = by_county(u, m)

    res = reg.run(parse_sql(f"SELECT COUNT(*) FROM plays {where} GROUP BY county"), packed=packed)
    assert [r[1] for r in res.rows] == [int(g.sum()) for g in groups]
    res = reg.run(parse_sql(f"SELECT SUM(views) FROM plays {where} GROUP BY county"), packed=packed)
    assert [r[1] for r in res.rows] == [int(u["views"][g].sum()) for g in groups]
    res = reg.run(parse_sql(f"SELECT MEAN(fee) FROM plays {where} GROUP BY county"), packed=packed)
    fee_cents = np.rint(u["fee"] * 100).astype(np.int64)
    for row, g in zip(res.rows, groups, strict=True):
        assert row[1] == pytest.approx(fee_cents[g].sum() / g.sum() / 100, rel=1e-12)
        assert row[2] == int(g.sum())
    res = reg.run(parse_sql(f"SELECT VARIANCE(views) FROM plays {where}"), packed=packed)
    assert res.rows[0][1] == pytest.approx(float(np.var(u["views"][m], ddof=1)), rel=1e-9)
    edges = [0, 10, 500, 2500, 5000]
    res = reg.run(
        parse_sql(f"SELECT HISTOGRAM(views, {', '.join(map(str, edges))}) FROM plays GROUP BY county"),
        packed=packed,
    )
    for row, c in zip(res.rows, COUNTIES, strict=True):
        assert row[1:] == np.histogram(u["views"][u["county"] == c], bins=edges)[0].tolist()
    assert res.stats["packed"] is packed


def test_packing_cuts_ciphertexts_and_bytes(servers: list[AgencyServer], keypair: KeyPair) -> None:
    reg = regulator(servers, keypair)
    spec = parse_sql("SELECT MEAN(views) FROM plays GROUP BY county")
    packed, plain = reg.run(spec), reg.run(spec, packed=False)
    assert packed.rows == plain.rows
    assert packed.stats["ciphertexts_per_agency"] == 1 < plain.stats["ciphertexts_per_agency"] == 8
    assert packed.stats["bytes_ciphertexts"] < plain.stats["bytes_ciphertexts"] / 4
    assert packed.stats["bytes_agencies_to_aggregator"] < plain.stats["bytes_agencies_to_aggregator"] / 3


def test_dropout_mid_query_aborts_clearly(servers: list[AgencyServer], keypair: KeyPair) -> None:
    reg = regulator(servers, keypair, faults={"agency-1": "drop"})
    with pytest.raises(
        AgencyUnavailable, match=r"agency 'agency-1' dropped out.*connection reset.*no partial result"
    ):
        reg.run(parse_sql("SELECT COUNT(*) FROM plays"))
    reg = regulator(servers, keypair, faults={"agency-2": "hang"}, timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(AgencyUnavailable, match=r"no answer within 0\.5 s"):
        reg.run(parse_sql("SELECT COUNT(*) FROM plays"))
    assert time.monotonic() - t0 < 2.5


def test_tampered_contribution_is_detected(servers: list[AgencyServer], keypair: KeyPair) -> None:
    reg = regulator(servers, keypair, faults={"agency-0": "tamper"})
    with pytest.raises(CiphertextError, match="tampered"):
        reg.run(parse_sql("SELECT SUM(views) FROM plays GROUP BY county"))
    reg = regulator(servers, keypair, faults={"agency-1": "tamper-in-transit"})
    with pytest.raises(IdentityError, match="signature of a message from 'agency-1' does not verify"):
        reg.run(parse_sql("SELECT SUM(views) FROM plays GROUP BY county"))


def test_answer_signed_by_another_agency_is_refused(servers: list[AgencyServer], keypair: KeyPair) -> None:
    class Impostor(Client):
        def call(self, request: bytes) -> bytes:
            msg = open_signed(self.server.handle(request), *ANSWERS).msg
            return sign(AGENCY_IDS["agency-4"], msg)  # a certified agency, but not this one

    clients = [Client(s) for s in servers[:2]] + [Impostor(servers[2])]
    reg = Regulator(CATALOG, clients, keypair, REGULATOR)
    with pytest.raises(IdentityError, match="answer for agency 'agency-2' is not signed by that agency"):
        reg.run(parse_sql("SELECT COUNT(*) FROM plays"))


def test_weak_regulator_key_is_refused_by_agencies(servers: list[AgencyServer], keypair: KeyPair) -> None:
    pk, _ = keypair
    msg = {
        "type": "query",
        "query_id": "q-weak",
        "time_ms": clock_ms(),
        "role": "regulator",
        "spec": parse_sql("SELECT COUNT(*) FROM plays").to_json(),
        "agencies": ["agency-0", "agency-1", "agency-2"],
        "path": "paillier",
        "n": (pk.n + 1).to_bytes(256, "big"),
        "packed": True,
        "value_bits": 30,
        "n_values": 1,
    }
    answer = open_signed(servers[0].handle(sign(REGULATOR, msg)), "refusal")
    assert "even" in answer.msg["reason"]
    assert servers[0].decisions()[-1]["accepted"] is False


def test_policy_refusals_are_explicit_and_audited(servers: list[AgencyServer], keypair: KeyPair) -> None:
    anchor = ExecutorAnchor.ephemeral()
    servers[1].policy = Policy.from_dict({"roles": {"regulator": {"tables": {"plays": ["county", "work"]}}}})
    reg = regulator(servers, keypair, audit=AuditLog(anchor))
    with pytest.raises(
        PolicyRefusal,
        match=r"agency 'agency-1' refused the query: role 'regulator' may not read column\(s\) \['views'\]",
    ):
        reg.run(parse_sql("SELECT SUM(views) FROM plays"))
    assert anchor.height == 1
    ok = reg.run(parse_sql("SELECT COUNT(*) FROM plays GROUP BY county"))
    assert ok.anchor is not None and ok.anchor.height == 2
    entry = anchor.lookup(ok.audit.digest())
    assert entry is not None and entry["kind"] == "privacy-query" and entry["meta"] == ok.audit.result_digest
    assert [d[0] for d in ok.audit.decisions] == ["agency-0", "agency-1", "agency-2"]
    auditor = Identity.issue(ROOT, "auditor", [Role.AUDITOR])
    other_role = Regulator(CATALOG, [Client(s) for s in servers], keypair, auditor, "auditor")
    with pytest.raises(PolicyRefusal, match="role 'auditor' has no grant"):
        other_role.run(parse_sql("SELECT COUNT(*) FROM plays"))
    claims = Regulator(CATALOG, [Client(s) for s in servers], keypair, auditor, "regulator")
    with pytest.raises(PolicyRefusal, match="'auditor' does not carry the role 'regulator'"):
        claims.run(parse_sql("SELECT COUNT(*) FROM plays"))


def test_min_group_size_suppresses_small_local_groups(
    servers: list[AgencyServer], keypair: KeyPair, tables: Any
) -> None:
    for s in servers:
        s.policy = Policy.from_dict(
            {"roles": {"regulator": {"tables": {"plays": "*"}}}, "min_group_size": 10}
        )
    res = regulator(servers, keypair).run(
        parse_sql("SELECT COUNT(*) FROM plays WHERE views < 300 GROUP BY county")
    )
    expected = []
    for c in COUNTIES:
        local = [int(((t["county"] == c) & (t["views"] < 300)).sum()) for t in tables]
        expected.append(sum(n for n in local if n >= 10))
    assert [r[1] for r in res.rows] == expected
    local_counts = [int(((t["county"] == c) & (t["views"] < 300)).sum()) for t in tables for c in COUNTIES]
    assert any(0 < n < 10 for n in local_counts), "fixture must exercise suppression"


def test_dp_noise_and_persistent_budget(servers: list[AgencyServer], keypair: KeyPair, tables: Any) -> None:
    reg = regulator(servers, keypair)
    exact = reg.run(parse_sql("SELECT COUNT(*) FROM plays GROUP BY county")).rows
    noisy = reg.run(parse_sql("SELECT COUNT(*) FROM plays GROUP BY county WITH EPSILON 1.5")).rows
    assert all(abs(a[1] - b[1]) < 60 for a, b in zip(exact, noisy, strict=True))
    assert servers[0].budget is not None and servers[0].budget.spent(reg.requester) == pytest.approx(1.5)
    with pytest.raises(PolicyRefusal, match=r"has spent ε=1.5 of its budget 2; this query asks for ε=1 more"):
        reg.run(parse_sql("SELECT COUNT(*) FROM plays WITH EPSILON 1"))
    # persisted: a new ledger object on the same file sees the spending
    from privacy.policy import BudgetLedger

    assert BudgetLedger(servers[0].budget.path).spent(REGULATOR.cert_id.hex()) == pytest.approx(1.5)
    servers[2].policy = Policy.from_dict(
        {"roles": {"regulator": {"tables": {"plays": "*"}}}, "require_dp": True}
    )
    with pytest.raises(PolicyRefusal, match="requires differential privacy: add WITH EPSILON"):
        reg.run(parse_sql("SELECT COUNT(*) FROM plays"))


def test_noise_is_not_constant(servers: list[AgencyServer], keypair: KeyPair) -> None:
    for s in servers:
        s.policy = Policy.from_dict(
            {"roles": {"regulator": {"tables": {"plays": "*"}}}, "epsilon_budget": 100}
        )
    reg = regulator(servers, keypair)
    runs = {
        tuple(
            r[1]
            for r in reg.run(parse_sql("SELECT SUM(views) FROM plays GROUP BY county WITH EPSILON 1")).rows
        )
        for _ in range(3)
    }
    assert len(runs) == 3
