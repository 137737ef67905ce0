"""MPC path: parties are real processes over TCP; results equal plaintext over the union."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import numpy as np
import pytest

from privacy import mpc
from privacy.config import Deployment
from privacy.errors import MPCError, PolicyRefusal, SpecError
from privacy.query import Regulator
from privacy.spec import parse_sql

from .conftest import CATALOG, COUNTIES, ROOT, agency_tables, identity_entries


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> tuple[Deployment, list[dict[str, np.ndarray]]]:
    base = tmp_path_factory.mktemp("mpc")
    tables = [agency_tables(10 + i, 250 + 40 * i) for i in range(3)]
    agencies = []
    consortium, ids = identity_entries(base, [f"agency-{i}" for i in range(3)])
    for i, t in enumerate(tables):
        d = base / f"a{i}"
        d.mkdir()
        with open(d / "plays.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(list(t))
            w.writerows(zip(*(t[c].tolist() for c in t), strict=True))
        agencies.append(
            {
                "name": f"agency-{i}",
                "source": {"kind": "csv", "path": f"a{i}"},
                "policy": {"roles": {"regulator": {"tables": {"plays": "*"}}}, "min_group_size": 2},
                **ids[f"agency-{i}"],
            }
        )
    doc = {
        "consortium": consortium,
        "regulator": ids["regulator"],
        "catalog": CATALOG.to_dict(),
        "agencies": agencies,
    }
    return Deployment.from_dict(doc, base), tables


def run(dep: Deployment, text: str, **kw: object) -> list[list[object]]:
    from privacy import paillier

    reg = Regulator(
        dep.catalog, dep.clients(), paillier.generate_keypair(2048), dep.regulator_identity(), timeout=60
    )
    return reg.run(parse_sql(text)).rows


def test_order_statistics_equal_plaintext(deployment: tuple[Deployment, list[dict[str, np.ndarray]]]) -> None:
    dep, tables = deployment
    u = {c: np.concatenate([t[c] for t in tables]) for c in tables[0]}
    rows = run(dep, "SELECT MEDIAN(views) FROM plays WHERE work < 30 GROUP BY county")
    for row, c in zip(rows, COUNTIES, strict=True):
        x = u["views"][(u["county"] == c) & (u["work"] < 30)]
        assert row == [c, statistics.median(x.tolist())]
    rows = run(dep, "SELECT QUANTILE(fee, 0.1, 0.5, 0.95) FROM plays")
    cents = np.rint(u["fee"] * 100).astype(np.int64)
    assert rows[0][1:] == [
        float(v) / 100 for v in np.quantile(cents, [0.1, 0.5, 0.95], method="inverted_cdf")
    ]
    assert run(dep, "SELECT MIN(views) FROM plays")[0][1] == int(u["views"].min())
    assert run(dep, "SELECT MAX(views) FROM plays WHERE county = 'c2'")[0][1] == int(
        u["views"][u["county"] == "c2"].max()
    )


def test_search_and_histogram_agree_with_plaintext_and_suppress_small_groups(
    deployment: tuple[Deployment, list[dict[str, np.ndarray]]],
) -> None:
    from privacy.query import decode_mpc

    dep, tables = deployment
    u = {c: np.concatenate([t[c] for t in tables]) for c in tables[0]}
    keep = u["views"] > 4000
    counts = [int((keep & (u["county"] == c)).sum()) for c in COUNTIES]
    k = sorted(counts)[1] + 1  # at least two counties fall below the minimum group size
    assert 2 <= k <= max(counts)
    spec = parse_sql("SELECT QUANTILE(views, 0.25, 0.5) FROM plays WHERE views > 4000 GROUP BY county")
    spec = spec.with_requester("r", "regulator")
    jobs = [c.party_job() for c in dep.clients()]
    expected = []
    for c, n in zip(COUNTIES, counts, strict=True):
        x = u["views"][keep & (u["county"] == c)]
        q = np.quantile(x, [0.25, 0.5], method="inverted_cdf").tolist() if n >= k else [None, None]
        expected.append([c, *q])
    for method in ("search", "histogram"):
        plan = mpc.plan(spec, CATALOG, 3, k, method)
        values, _ = mpc.run(spec, CATALOG, plan, jobs, timeout=120)
        assert decode_mpc(spec, CATALOG, plan, values)[1] == expected, method


def test_topk_and_intersection_equal_plaintext(
    deployment: tuple[Deployment, list[dict[str, np.ndarray]]],
) -> None:
    dep, tables = deployment
    u = {c: np.concatenate([t[c] for t in tables]) for c in tables[0]}
    totals = np.bincount(u["work"], weights=u["views"], minlength=40).astype(np.int64)
    order = sorted(range(40), key=lambda k: (-totals[k], k))[:4]
    rows = run(dep, "SELECT TOPK(views, 4, work) FROM plays")
    assert [r[1] for r in rows] == order and [r[2] for r in rows] == [int(totals[k]) for k in order]
    sets = [set(t["work"][t["views"] > 4000].tolist()) for t in tables]
    assert run(dep, "SELECT INTERSECTION(work) FROM plays WHERE views > 4000") == [
        [len(set.intersection(*sets))]
    ]


def test_a_party_that_fails_aborts_with_its_name(
    deployment: tuple[Deployment, list[dict[str, np.ndarray]]], tmp_path: Path
) -> None:
    dep, _ = deployment
    jobs = [c.party_job() for c in dep.clients()]
    jobs[1] = mpc.PartyJob("agency-1", {"kind": "csv", "path": str(tmp_path / "gone")}, str(tmp_path), 2)
    spec = parse_sql("SELECT MEDIAN(views) FROM plays").with_requester("r", "regulator")
    plan = mpc.plan(spec, CATALOG, 3, 2)
    with pytest.raises(MPCError, match=r"agency 'agency-1' \(MPC party 1\) failed: .*cannot read"):
        mpc.run(spec, CATALOG, plan, jobs, timeout=60)


def test_timeout_stops_all_parties(deployment: tuple[Deployment, list[dict[str, np.ndarray]]]) -> None:
    dep, _ = deployment
    jobs = [c.party_job() for c in dep.clients()]
    spec = parse_sql("SELECT MIN(views) FROM plays").with_requester("r", "regulator")
    plan = mpc.plan(spec, CATALOG, 3, 2)
    with pytest.raises(MPCError, match="timed out after 0 s waiting for"):
        mpc.run(spec, CATALOG, plan, jobs, timeout=0.3)


def test_tampered_share_is_detected() -> None:
    p = 2**61 - 1
    # shares of the secret 5 on the degree-1 polynomial 5 + 7x
    outputs = [{"pid": i, "modulus": p, "shares": [(5 + 7 * (i + 1)) % p]} for i in range(3)]
    assert mpc.recombine(outputs) == [5]
    outputs[2]["shares"][0] += 1
    with pytest.raises(MPCError, match="inconsistent"):
        mpc.recombine(outputs)


def test_mpc_needs_three_agencies_and_policy(
    deployment: tuple[Deployment, list[dict[str, np.ndarray]]],
) -> None:
    dep, _ = deployment
    with pytest.raises(SpecError, match="at least 3 agencies"):
        mpc.plan(parse_sql("SELECT MEDIAN(views) FROM plays"), CATALOG, 2, 1)
    with pytest.raises(SpecError, match="more than 3 decimals"):
        mpc.plan(parse_sql("SELECT QUANTILE(views, 0.12345) FROM plays"), CATALOG, 3, 1)
    from chain.types import Role
    from privacy import paillier
    from privacy.identity import Identity

    auditor = Identity.issue(ROOT, "auditor", [Role.AUDITOR])
    reg = Regulator(dep.catalog, dep.clients(), paillier.generate_keypair(2048), auditor, "auditor")
    with pytest.raises(PolicyRefusal, match="role 'auditor' has no grant"):
        reg.run(parse_sql("SELECT MEDIAN(views) FROM plays"))
    reg = Regulator(dep.catalog, dep.clients()[:2], paillier.generate_keypair(2048), dep.regulator_identity())
    with pytest.raises(
        PolicyRefusal, match="runs across 2 agencies; this agency answers only queries across at least 3"
    ):
        reg.run(parse_sql("SELECT MEDIAN(views) FROM plays"))


def test_agencies_check_the_mpc_run_they_are_asked_for(
    deployment: tuple[Deployment, list[dict[str, np.ndarray]]],
) -> None:
    import json as _json
    import os as _os

    from chain.types import Role
    from privacy.identity import Identity
    from privacy.protocol import open_signed, sign
    from privacy.replay import clock_ms

    from .conftest import AGENCY_IDS, REGULATOR

    dep, _ = deployment
    servers = [dep.server(a) for a in dep.agencies]
    names = [a.name for a in dep.agencies]
    spec = parse_sql("SELECT MEDIAN(views) FROM plays")

    def accepted() -> tuple[str, list[bytes]]:
        qid = _os.urandom(16).hex()
        q = {
            "type": "query",
            "query_id": qid,
            "time_ms": clock_ms(),
            "role": "regulator",
            "spec": spec.to_json(),
            "agencies": names,
            "path": "mpc",
            "n": b"",
            "packed": False,
            "value_bits": 0,
            "n_values": 0,
        }
        raws = [s.handle(sign(REGULATOR, q)) for s in servers]
        assert all(open_signed(r, "decision").msg["min_group"] == 2 for r in raws)
        return qid, raws

    def refusal(msg: dict[str, object], who: Identity = REGULATOR) -> str:
        return str(open_signed(servers[0].handle(sign(who, msg)), "refusal").msg["reason"])

    good = mpc.plan(spec, CATALOG, 3, 2)
    qid, raws = accepted()
    run = {
        "type": "mpc-run",
        "query_id": qid,
        "plan": _json.dumps(good.to_dict()),
        "decisions": [],
        "timeout_s": 60,
    }
    other = Identity.issue(ROOT, "another regulator", [Role.REGULATOR])
    assert "only the requester that signed the query" in refusal(run, other)
    assert "parties do not match the query's participants" in refusal(run)
    assert "already ran for this query" in refusal(run)  # one run per query, whatever happened
    qid, raws = accepted()
    mine = open_signed(raws[0], "decision").msg
    moved = sign(AGENCY_IDS["agency-0"], dict(mine, party="127.0.0.1:1"))
    assert "do not place this agency's party" in refusal(
        dict(run, query_id=qid, decisions=[moved, *raws[1:]])
    )
    qid, raws = accepted()
    theirs = open_signed(raws[1], "decision").msg
    forged = sign(REGULATOR, theirs)  # the regulator vouching for agency-1's party itself
    assert "not vouched for by agency 'agency-1'" in refusal(
        dict(run, query_id=qid, decisions=[raws[0], forged, raws[2]])
    )
    for plan, why in [
        (mpc.plan(spec, CATALOG, 3, 1), "minimum group size 1 is below this agency's 2"),
        (
            mpc.plan(parse_sql("SELECT MAX(views) FROM plays"), CATALOG, 3, 2),
            "not the one this query calls for",
        ),
    ]:
        qid, raws = accepted()
        assert why in refusal(dict(run, query_id=qid, plan=_json.dumps(plan.to_dict()), decisions=raws))
    assert "accepted no MPC query 'nope'" in refusal(dict(run, query_id="nope"))


def test_mpc_links_refuse_a_party_without_a_vouched_certificate(
    deployment: tuple[Deployment, list[dict[str, np.ndarray]]],
) -> None:
    """The links are TLS with exactly the certificates the agencies announced: a party that
    presents another certificate cannot join, and nothing is released."""
    from concurrent.futures import ThreadPoolExecutor

    from privacy.mpc_tls import party_credentials

    dep, tables = deployment
    jobs = [c.party_job() for c in dep.clients()]
    spec = parse_sql("SELECT MAX(views) FROM plays").with_requester("r", "regulator")
    plan = mpc.plan(spec, CATALOG, 3, 2)
    creds = [party_credentials(i) for i in range(3)]
    certs = [c for _, c in creds]

    def party(
        i: int, key: bytes, peers: list[str], timeout: float, trusted: list[bytes] = certs
    ) -> dict[str, object]:
        return mpc.run_party(spec, CATALOG, plan, jobs[i], i, peers, timeout=timeout, tls=(key, trusted))

    peers = [f"127.0.0.1:{p}" for p in mpc.free_ports(3)]
    with ThreadPoolExecutor(3) as pool:
        outs = list(pool.map(lambda i: party(i, creds[i][0], peers, 60), range(3)))
    u = np.concatenate([t["views"] for t in tables])
    assert mpc.recombine(outs)[1] == int(u.max())  # TLS links with the vouched certificates work
    # party 1 presents a well-formed certificate for its name that no agency vouched for
    impostor_key, impostor_cert = party_credentials(1)
    own_view = [certs[0], impostor_cert, certs[2]]
    peers = [f"127.0.0.1:{p}" for p in mpc.free_ports(3)]
    with ThreadPoolExecutor(3) as pool:
        futures = [
            pool.submit(
                party, i, *((impostor_key, peers, 5, own_view) if i == 1 else (creds[i][0], peers, 5))
            )
            for i in range(3)
        ]
        errors = [f.exception() for f in futures]
    assert all(isinstance(e, MPCError) for e in errors), errors


def test_party_tls_contexts_trust_only_what_they_load() -> None:
    import ssl

    from privacy.mpc_tls import party_credentials, pinned_context

    for purpose in (ssl.Purpose.SERVER_AUTH, ssl.Purpose.CLIENT_AUTH):
        ctx = pinned_context(purpose)
        assert ctx.cert_store_stats()["x509"] == 0  # no system CA
        assert ctx.verify_mode == ssl.CERT_REQUIRED
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_3
    assert pinned_context(ssl.Purpose.SERVER_AUTH).check_hostname
    _, cert = party_credentials(0)
    ctx = pinned_context(ssl.Purpose.CLIENT_AUTH, cadata=cert.decode())
    assert ctx.cert_store_stats()["x509"] == 1
