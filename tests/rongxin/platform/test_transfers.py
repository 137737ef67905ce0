"""Transfers: the recorded confidential transfers of a work read through the node client
(proven state reads), their proofs checked again, what the auditor may open; a forged
record; bad work ids; roles."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from rongxin.platform.accounts import AccountStore
from rongxin.platform.app import close_app, create_app
from rongxin.platform.chainview import ChainView
from rongxin.platform.config import PlatformConfig
from rongxin.platform.roles import ROLES
from tests.rongxin.platform.conftest import FAST_HASHER, PASSWORD, login
from tests.zkp.test_contract import WORK, Ledger
from zkp.contract import XFER

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


class StateClient:
    """The node client's ``state`` read over a ledger's state (what LedgerStateReader uses)."""

    def __init__(self, led: Ledger) -> None:
        self.led = led
        self.forged: dict[bytes, bytes] = {}

    def state(self, key: bytes) -> bytes | None:
        if key in self.forged:
            return self.forged[key]
        value: bytes | None = self.led.state.get(key)
        return value

    def close(self) -> None:
        pass


def _app(tmp_path: Path, client: Any, genesis: Any) -> FastAPI:
    config = PlatformConfig(data_dir=tmp_path / "data", library=tmp_path / "library")
    store = AccountStore(config.data_dir / "accounts.sqlite", hasher=FAST_HASHER)
    for role in ROLES:
        store.create_user(role.replace("_", "-"), PASSWORD, {role})
    return create_app(config, chain=ChainView(client, genesis), store=store)


def test_transfers_of_a_work_verified_and_what_the_auditor_opens(tmp_path: Path) -> None:
    led = Ledger()
    led.setup()
    buyer, payload = led.transfer_payload(led.owner)
    led.run(led.c.media, "zkp.transfer", payload)
    _, payload2 = led.transfer_payload(buyer)
    led.run(led.c.media, "zkp.transfer", payload2)
    client = StateClient(led)
    app = _app(tmp_path, client, led.c.genesis)
    try:
        auditor = login(TestClient(app, base_url="http://127.0.0.1"), "auditor")
        page = auditor.get("/transfers", params={"work": WORK.hex().upper()})
        assert page.status_code == 200
        assert page.text.count("已验证") == 2 and "author, center" in page.text
        assert led.auditor.public.encode().hex() in page.text
        assert f"--work {WORK.hex()}" in page.text and 'id="auditor-opens"' in page.text
        assert "该作品没有转让记录" in auditor.get("/transfers", params={"work": "00" * 32}).text
        # a record stored under the wrong slot (the second transfer's bytes as the first)
        second = led.state.get(XFER + WORK + (1).to_bytes(8, "big"))
        assert second is not None
        client.forged[XFER + WORK + (0).to_bytes(8, "big")] = second
        text = auditor.get("/transfers", params={"work": WORK.hex()}).text
        assert text.count("已验证") == 1 and "✘" in text
        client.forged[XFER + WORK + (0).to_bytes(8, "big")] = b"\xa1not cbor"
        assert auditor.get("/transfers", params={"work": WORK.hex()}).status_code == 502
        for bad in ("xyz", "ab" * 31, "<script>alert(1)</script>", "gg" * 32):
            r = auditor.get("/transfers", params={"work": bad})
            assert r.status_code == 422 and "<script>alert(1)" not in r.text
        staff = login(TestClient(app, base_url="http://127.0.0.1"), "legal-staff")
        assert staff.get("/transfers", params={"work": "00" * 32}).status_code == 200
        regulator = login(TestClient(app, base_url="http://127.0.0.1"), "regulator")
        assert regulator.get("/transfers").status_code == 403
        events = [e for e in app.state.platform.audit.read() if e["event"] == "transfer.list"]
        assert [e["ok"] for e in events][:3] == [True, True, True] and events[-1]["user"] == "legal-staff"
    finally:
        close_app(app)


def test_without_a_node_the_page_says_so(tmp_path: Path) -> None:
    app = _app(tmp_path, None, None)
    try:
        c = login(TestClient(app, base_url="http://127.0.0.1"), "auditor")
        assert 'id="transfers-error"' not in c.get("/transfers").text
        r = c.get("/transfers", params={"work": "00" * 32})
        assert r.status_code == 503 and 'id="transfers-error"' in r.text
    finally:
        close_app(app)
