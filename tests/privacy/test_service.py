"""Agencies as network services: HTTP authentication of the endpoint, and queries across
agency processes on loopback."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chain.api.auth import sign_request
from privacy import paillier
from privacy.config import Deployment
from privacy.demo_data import write_demo, write_service_configs
from privacy.errors import AgencyUnavailable, PolicyRefusal
from privacy.processes import AgencyProcesses
from privacy.protocol import SERVICE_PATH, open_signed, sign
from privacy.query import Regulator
from privacy.replay import clock_ms
from privacy.service import create_app
from privacy.spec import parse_sql
from rongxin.ops.layout import PORT_STRIDE, free_base_port

from .conftest import REGULATOR, ROOT

ROOT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from privacy.identity import Identity

    return write_demo(
        tmp_path_factory.mktemp("svc"), rows=400, root=ROOT, regulator=Identity(REGULATOR.key, REGULATOR.cert)
    )


def _query(agencies: list[str]) -> dict[str, object]:
    return {
        "type": "query",
        "query_id": os.urandom(16).hex(),
        "time_ms": clock_ms(),
        "role": "regulator",
        "spec": parse_sql("SELECT COUNT(*) FROM cases").to_json(),
        "agencies": agencies,
        "path": "mpc",
        "n": b"",
        "packed": False,
        "value_bits": 0,
        "n_values": 0,
    }


def test_the_endpoint_authenticates_every_request(demo: Path) -> None:
    dep = Deployment.from_file(demo)
    server = dep.server(dep.agencies[0])
    client = TestClient(create_app(server, dep.chain_id))
    assert client.get("/health").json()["agency"] == server.name
    body = sign(REGULATOR, _query([a.name for a in dep.agencies]))
    headers = sign_request(
        REGULATOR.key, REGULATOR.cert_id, "POST", SERVICE_PATH, body, chain_id=dep.chain_id
    )
    ok = client.post(SERVICE_PATH, content=body, headers=headers)
    assert (
        ok.status_code == 200 and open_signed(ok.content, "refusal", "decision").msg["agency"] == server.name
    )
    again = client.post(SERVICE_PATH, content=body, headers=headers)
    assert again.status_code == 401 and "nonce was already used" in again.json()["error"]
    assert "missing X-Rongxin-Cert" in client.post(SERVICE_PATH, content=body).json()["error"]
    other_chain = sign_request(REGULATOR.key, REGULATOR.cert_id, "POST", SERVICE_PATH, body, chain_id="other")
    assert client.post(SERVICE_PATH, content=body, headers=other_chain).status_code == 401
    # a transport signature by another certificate than the message's signer
    from privacy.identity import Identity

    other = Identity.issue(ROOT, "other", ["regulator"])
    h = sign_request(other.key, other.cert_id, "POST", SERVICE_PATH, body, chain_id=dep.chain_id)
    assert (
        "another certificate than its message"
        in client.post(SERVICE_PATH, content=body, headers=h).json()["error"]
    )
    junk = b"\xa1\x00"
    h = sign_request(REGULATOR.key, REGULATOR.cert_id, "POST", SERVICE_PATH, junk, chain_id=dep.chain_id)
    assert client.post(SERVICE_PATH, content=junk, headers=h).status_code == 400
    big = {"Content-Length": str(64 * 1024 * 1024 + 1)}
    assert client.post(SERVICE_PATH, content=b"x", headers=big).status_code in (400, 413)


@pytest.fixture(scope="module")
def services(demo: Path) -> Iterator[tuple[Path, AgencyProcesses]]:
    regulator, configs = write_service_configs(demo, "127.0.0.1", free_base_port(5), PORT_STRIDE)
    with AgencyProcesses(configs) as procs:
        yield regulator, procs


def test_a_query_across_agency_processes_is_exact(services: tuple[Path, AgencyProcesses], demo: Path) -> None:
    regulator, procs = services
    net = Deployment.from_file(regulator)
    local = Deployment.from_file(demo)
    keys = paillier.generate_keypair(2048)
    text = "SELECT COUNT(*) FROM cases WHERE status = 'confirmed' GROUP BY county"
    identity = net.regulator_identity()
    remote = Regulator(net.catalog, net.clients(None, identity), keys, identity, timeout=60).run(
        parse_sql(text)
    )
    # the same query in-process (the agencies' replay state is separate: fresh query ids)
    inproc = Regulator(local.catalog, local.clients(None), keys, identity).run(parse_sql(text))
    assert remote.rows == inproc.rows and remote.path == "paillier"
    # each agency logged its own decision
    logs = sorted((demo.parent / "state").glob("*/decisions.jsonl"))
    assert len(logs) == 5
    assert all(json.loads(f.read_text().splitlines()[-1])["accepted"] for f in logs)
    # one agency down: the others recover its masks (5 participants, 4 left)
    procs.terminate(4)
    res = Regulator(net.catalog, net.clients(None, identity), keys, identity, timeout=60).run(parse_sql(text))
    survivors = res.stats["survivors"]
    assert len(survivors) == 4 and net.agencies[4].name not in survivors
    four = Regulator(local.catalog, local.clients(survivors), keys, identity).run(parse_sql(text))
    assert res.rows == four.rows
    # two agencies only: refused by every agency's minimum
    two = net.clients(None, identity)[:2]
    with pytest.raises(PolicyRefusal, match="at least 3"):
        Regulator(net.catalog, two, keys, identity, timeout=60).run(parse_sql(text))
    gone = [c for c in net.clients(None, identity) if c.name == net.agencies[4].name]
    with pytest.raises(AgencyUnavailable, match="ConnectError"):
        gone[0].call(b"x")


def test_query_run_reaches_the_agencies_over_the_network(
    services: tuple[Path, AgencyProcesses],
) -> None:
    from typer.testing import CliRunner

    from rongxin.cli_query import app

    regulator, _ = services
    text = "SELECT COUNT(*) FROM plays GROUP BY county"
    res = CliRunner().invoke(app, ["run", text, "--agencies", str(regulator), "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["path"] == "paillier" and len(doc["rows"]) == 10 and all(r[1] > 0 for r in doc["rows"])
    assert len(doc["stats"]["survivors"]) >= 4


def test_agency_serve_refuses_a_bad_configuration_in_one_line(
    tmp_path: Path, services: tuple[Path, AgencyProcesses]
) -> None:
    from typer.testing import CliRunner

    from rongxin.cli_agency import app

    runner = CliRunner()
    res = runner.invoke(app, ["serve", "--config", str(tmp_path / "none.toml")])
    assert res.exit_code == 1 and "cannot read deployment file" in " ".join(res.output.split())
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"agency": {"name": "x", "source": {"kind": "csv", "path": "x"}}, "catalog": {}})
    )
    res = runner.invoke(app, ["serve", "--config", str(bad)])
    assert res.exit_code == 1 and "needs [consortium]" in " ".join(res.output.split())
    doc = json.loads((services[0].parent / "huaxian.agency.json").read_text())
    doc["agency"]["listen"] = "nowhere"
    (tmp_path / "x.json").write_text(json.dumps(doc))
    res = runner.invoke(app, ["serve", "--config", str(tmp_path / "x.json")])
    assert res.exit_code == 1 and "listen must be HOST:PORT" in " ".join(res.output.split())


def test_mpc_runs_among_the_agency_processes(services: tuple[Path, AgencyProcesses]) -> None:
    """Each agency process runs its own mpyc party over its own data; the regulator only
    fixes the plan and recombines the output shares."""
    from privacy.demo_data import AGENCIES, generate_tables

    regulator, procs = services
    net = Deployment.from_file(regulator)
    identity = net.regulator_identity()
    alive = [c for c in net.clients(None, identity) if procs.procs[AGENCIES.index(c.name)].poll() is None]
    assert len(alive) >= 3
    res = Regulator(net.catalog, alive, paillier.generate_keypair(2048), identity, timeout=120).run(
        parse_sql("SELECT MAX(day) FROM plays WHERE category = 'drama'")
    )
    days = []
    for c in alive:
        plays = generate_tables(2026, AGENCIES.index(c.name), 400)["plays"]
        days.extend(plays["day"][plays["category"] == "drama"].tolist())
    assert res.path == "mpc" and res.rows[0][1] == max(days)


def test_https_trusts_only_the_pinned_certificate(services: tuple[Path, AgencyProcesses]) -> None:
    from privacy.http_client import HttpAgencyClient

    regulator, procs = services
    net = Deployment.from_file(regulator)
    a0, a1 = net.agencies[0], net.agencies[1]
    assert procs.urls[0].startswith("https://") and a0.url == procs.urls[0]
    cert0 = a0.identity.certificate_at(net.base, "a0")
    body = sign(REGULATOR, _query([a.name for a in net.agencies]))
    ok = HttpAgencyClient(
        a0.name,
        procs.urls[0],
        cert0,
        REGULATOR,
        net.chain_id,
        tls_certificate=net.base / str(a0.tls_certificate),
    )
    assert open_signed(ok.call(body), "decision", "refusal").msg["agency"] == a0.name
    wrong = HttpAgencyClient(
        a0.name,
        procs.urls[0],
        cert0,
        REGULATOR,
        net.chain_id,
        tls_certificate=net.base / str(a1.tls_certificate),
    )
    with pytest.raises(AgencyUnavailable, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        wrong.call(body)
    plain = HttpAgencyClient(
        a0.name, procs.urls[0].replace("https://", "http://"), cert0, REGULATOR, net.chain_id
    )
    with pytest.raises(AgencyUnavailable):
        plain.call(body)


def test_an_agency_process_killed_after_contributing_is_recovered(
    services: tuple[Path, AgencyProcesses], demo: Path
) -> None:
    """kill -9 of an agency process right after its contribution reached the aggregator: the
    others hand over their shares of its seeds and the answer is exact, its data included.
    (Last in this module: it leaves two of the five agencies down.)"""
    from privacy.demo_data import AGENCIES

    regulator, procs = services
    net = Deployment.from_file(regulator)
    local = Deployment.from_file(demo)
    identity = net.regulator_identity()
    keys = paillier.generate_keypair(2048)
    text = "SELECT SUM(views) FROM plays GROUP BY county"
    alive = [c for c in net.clients(None, identity) if procs.procs[AGENCIES.index(c.name)].poll() is None]
    victim = alive[0]

    class KilledAfterContributing:
        name, certificate = victim.name, victim.certificate

        def call(self, request: bytes) -> bytes:
            answer: bytes = victim.call(request)
            if open_signed(request, "query", "view", "reveal", "recover").msg["type"] == "query":
                procs.kill(AGENCIES.index(victim.name))
            return answer

    clients = [KilledAfterContributing() if c.name == victim.name else c for c in net.clients(None, identity)]
    res = Regulator(net.catalog, clients, keys, identity, timeout=60).run(parse_sql(text))
    assert procs.procs[AGENCIES.index(victim.name)].poll() is not None
    survivors = res.stats["survivors"]
    assert victim.name in survivors and any("went silent after contributing" in n for n in res.notes)
    expect = Regulator(local.catalog, local.clients(survivors), keys, identity).run(parse_sql(text))
    assert res.rows == expect.rows
