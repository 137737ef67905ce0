"""The regulator console over the five-agency demo deployment (in-process agencies): the
catalogue and limits shown before running, an answer with every agency's decision, a
refusal with its reason, the audit trail; malformed and hostile queries."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from chain.api import create_app as node_app
from chain.client import NodeClient
from chain.receipt import Receipt
from privacy import paillier
from privacy.demo_data import write_demo
from rongxin.platform.accounts import AccountStore
from rongxin.platform.app import close_app, create_app
from rongxin.platform.chainview import ChainView
from rongxin.platform.config import PlatformConfig
from rongxin.platform.console import RegulatorConsole
from rongxin.platform.roles import ROLES
from tests.chain.api.harness import serve, start_node
from tests.rongxin.platform.conftest import FAST_HASHER, PASSWORD, csrf_of, login

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

XSS = "<script>alert(1)</script>"


@functools.cache
def _keypair() -> tuple[paillier.PublicKey, paillier.PrivateKey]:
    """One Paillier key pair for the module's consoles (2048 bits take seconds to make)."""
    return paillier.generate_keypair(2048)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    root = tmp_path_factory.mktemp("console")
    deployment = write_demo(root / "agencies", rows=300, seed=7)
    config = PlatformConfig(data_dir=root / "data", library=root / "library", agencies=deployment)
    store = AccountStore(config.data_dir / "accounts.sqlite", hasher=FAST_HASHER)
    for role in ROLES:
        store.create_user(role.replace("_", "-"), PASSWORD, {role})
    console = RegulatorConsole(deployment, keypair=_keypair())
    application = create_app(config, store=store, console=console)
    yield application
    close_app(application)


def _client(app: FastAPI, user: str) -> TestClient:
    return login(TestClient(app, base_url="http://127.0.0.1"), user)


def _run(c: TestClient, query: str) -> tuple[int, str]:
    token = csrf_of(c.get("/regulator").text)
    r = c.post("/regulator", data={"csrf": token, "query": query})
    return r.status_code, r.text


def test_limits_answer_refusal_and_audit_trail(app: FastAPI) -> None:
    c = _client(app, "regulator")
    page = c.get("/regulator").text
    # the limits are shown before anything runs: five agencies, groups of 3, ε budget 10
    assert page.count("<td>10.0</td>") == 5 and "cases: *; plays: *; revenue: *" in page
    assert "最小分组" in page and 'id="catalogue"' in page
    status, text = _run(c, "SELECT COUNT(*) FROM cases WHERE status = 'confirmed' GROUP BY county")
    assert status == 200, text[:2000]
    assert 'id="answer"' in text and "<td>county-01</td>" in text and 'id="refusal"' not in text
    assert text.count("allowed for role regulator") == 5
    assert 'id="record-anchor" class="muted"' in text  # no ledger node: said, nothing claimed
    # a hostile filter value is shown as text
    status, text = _run(c, f"SELECT COUNT(*) FROM cases WHERE county = '{XSS}'")
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text
    # differential privacy: the first query spends ε 6 of 10, the second is refused, with reasons
    assert _run(c, "SELECT SUM(amount) FROM revenue WITH EPSILON 6")[0] == 200
    status, text = _run(c, "SELECT SUM(amount) FROM revenue WITH EPSILON 6")
    assert status == 422 and 'id="refusal"' in text and 'id="decisions"' in text, text[-3000:]
    assert "拒绝" in text
    trail = app.state.platform.console.trail()
    assert len(trail) == 4 and trail[0]["path"] == "refused"
    assert 'id="trail"' in text and trail[0]["record_digest"][:16] in text
    events = [e for e in app.state.platform.audit.read() if e["event"] == "query.run"]
    assert [e["ok"] for e in events] == [True, True, True, False] and events[-1]["refused_by"]


def test_malformed_queries_and_roles(app: FastAPI) -> None:
    c = _client(app, "regulator")
    for bad in ("", "DROP TABLE cases", "SELECT COUNT(*) FROM nowhere", "{", "x" * 10000):
        status, text = _run(c, bad)
        assert status == 422, (bad[:40], status)
        assert 'class="error"' in text
    other = _client(app, "legal-staff")
    assert other.get("/regulator").status_code == 403
    token = csrf_of(other.get("/works").text)
    assert other.post("/regulator", data={"csrf": token, "query": "x"}).status_code == 403
    assert c.post("/regulator", data={"query": "SELECT COUNT(*) FROM cases"}).status_code == 403


def test_without_a_deployment_the_console_says_so(tmp_path: Path) -> None:
    config = PlatformConfig(data_dir=tmp_path / "data", library=tmp_path / "library")
    store = AccountStore(config.data_dir / "accounts.sqlite", hasher=FAST_HASHER)
    store.create_user("regulator", PASSWORD, {"regulator"})
    application = create_app(config, store=store)
    try:
        c = _client(application, "regulator")
        assert 'id="console-error"' in c.get("/regulator").text
        assert _run(c, "SELECT COUNT(*) FROM cases")[0] == 503
    finally:
        close_app(application)


def test_the_audit_record_is_anchored_by_the_members_node(tmp_path: Path) -> None:
    """With a node client the console anchors each audit record as ``rongxin query run
    --client`` does; the page links the receipt, the download verifies against the genesis,
    and the explorer finds the record's digest."""
    node = start_node(tmp_path / "chain", nodes=1)
    deployment = write_demo(tmp_path / "agencies", rows=200, seed=11)
    with serve(node_app(node.service)) as url:
        chain = ChainView(NodeClient(url, node.member.key, node.member.cert, node.genesis), node.genesis)
        config = PlatformConfig(
            data_dir=tmp_path / "data", library=tmp_path / "library", agencies=deployment, nodes=(url,)
        )
        store = AccountStore(config.data_dir / "accounts.sqlite", hasher=FAST_HASHER)
        for role in ("regulator", "legal_staff"):
            store.create_user(role.replace("_", "-"), PASSWORD, {role})
        console = RegulatorConsole(deployment, keypair=_keypair())
        application = create_app(config, store=store, console=console, chain=chain)
        try:
            c = _client(application, "regulator")
            status, text = _run(c, "SELECT COUNT(*) FROM cases GROUP BY county")
            assert status == 200 and 'id="record-anchor" class="ok"' in text, text[-3000:]
            digest = console.trail(1)[0]["record_digest"]
            assert f'href="/regulator/receipts/{digest}"' in text
            assert f'href="/explorer/anchors/{digest}"' in text
            raw = c.get(f"/regulator/receipts/{digest}")
            assert raw.status_code == 200
            info = Receipt.from_bytes(raw.content).verify(node.genesis)
            assert f"#{info.height}" in text and info.tx_id.hex()[:16] in text
            assert console.trail(1)[0]["anchor"]["height"] == info.height
            assert (deployment.parent / "audit-receipts" / f"{digest}.receipt.cbor").is_file()
            # the explorer's anchored-digest page finds the record and verifies its receipt
            page = c.get(f"/explorer/anchors/{digest}")
            assert page.status_code == 200 and info.tx_id.hex() in page.text
            # hostile or unknown digests, and other roles, get no file
            for bad in ("../agencies", "0" * 64, digest.upper(), digest + "00"):
                assert c.get(f"/regulator/receipts/{bad}").status_code == 404, bad
            other = _client(application, "legal-staff")
            assert other.get(f"/regulator/receipts/{digest}").status_code == 403
        finally:
            close_app(application)
    node.consortium.close()
