"""Scans and cases: a scan started from the platform finds a registered work on a loopback
site; the case page, its workflow (invalid moves refused, every move audited), the
takedown notice; bad scan requests; hostile seeds, URLs and notes escaped."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from rongxin.platform.casework import LABELS, STATUSES, TRANSITIONS, CaseStates, WorkflowError, can_move
from rongxin.platform.config import ConfigError, load_config
from rongxin.platform.i18n import ZH
from rongxin.platform.scanrunner import LABELS as SCAN_LABELS
from tests.chain.api.harness import TestClient
from tests.forensics.conftest import write_image
from tests.rongxin.platform.conftest import Stack, client_of, csrf_of
from tests.rongxin.platform.copysite import copy_site

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.websockets import WebSocketDisconnect

XSS = '"><script>alert(1)</script>'


def test_the_workflow_table(tmp_path: Path) -> None:
    assert set(TRANSITIONS) == set(STATUSES)
    assert all(t <= set(STATUSES) for t in TRANSITIONS.values())
    assert all(LABELS[s] in ZH for s in STATUSES) and all(v in ZH for v in SCAN_LABELS.values())
    states = CaseStates(tmp_path / "c.sqlite")
    for bad in ("resolved", "notice_sent", "new", "bogus", ""):
        with pytest.raises(WorkflowError):
            states.move("s", 1, bad, "u")
    assert states.move("s", 1, "confirmed", "u", "x" * 5000) == "new"
    assert len(states.history("s", 1)[0].note) == 2000
    assert states.status("s", 2) == "new" and states.statuses("s") == {1: "confirmed"}
    assert can_move("confirmed", "notice_sent") and not can_move("confirmed", "new")
    states.close()


def _cookie(c: TestClient) -> dict[str, str]:
    """The test client's WebSocket requests carry no cookies by themselves."""
    return {"cookie": f"rx_session={c.cookies['rx_session']}", "host": "testserver"}


def _wait_done(stack: Stack, scan_id: str, seconds: float = 60.0) -> None:
    runner = stack.app.state.platform.scans
    deadline = time.monotonic() + seconds
    while runner.state(scan_id).state == "running":
        assert time.monotonic() < deadline, runner.state(scan_id)
        time.sleep(0.2)


def test_scan_finds_a_work_and_the_case_goes_through_its_workflow(
    stack: Stack, photos: dict[str, NDArray[np.uint8]], tmp_path: Path
) -> None:
    name = sorted(photos)[2]
    photo = write_image(tmp_path / "orig.jpg", photos[name]).read_bytes()
    c = client_of(stack, "legal-staff")
    token = csrf_of(c.get("/works/new").text)
    r = c.post(
        "/works",
        files={"file": ("orig.jpg", photo)},
        data={"csrf": token, "title": "Case photo", "owner": "County media center"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:300]
    work_id = r.headers["location"].rsplit("/", 1)[1]
    copy = write_image(tmp_path / "copy.jpg", photos[name][::2, ::2].copy(), quality=50).read_bytes()
    hostile = '/img/c.jpg?q="><script>alert(1)</script>'
    page = f'<html><body><img src="{hostile.replace(chr(34), "&quot;").replace("<", "&lt;")}"></body></html>'
    files = {"/": ("text/html", page.encode()), "/img/c.jpg": ("image/jpeg", copy)}
    with copy_site(files) as base:
        token = csrf_of(c.get("/cases").text)
        r = c.post(
            "/scans",
            data={
                "csrf": token,
                "seeds": f"{base}/?x={XSS}",
                "scope": "host",
                "depth": "1",
                "max_pages": "5",
                "delay": "0",
                "allow": "127.0.0.1",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text[:500]
        scan_id = r.headers["location"].rsplit("/", 1)[1]
        _wait_done(stack, scan_id)
    assert stack.app.state.platform.scans.state(scan_id).state == "done", (
        stack.app.state.platform.scans.state(scan_id)
    )
    scan_page = c.get(f"/scans/{scan_id}").text
    assert "<script>alert" not in scan_page and "&lt;script&gt;alert" in scan_page  # the seed, as text
    with c.websocket_connect(f"/ws/scans/{scan_id}", headers=_cookie(c)) as ws:
        assert ws.receive_json()["state"] == "done"
    cases = stack.app.state.platform.scans.cases(scan_id)
    assert cases, stack.app.state.platform.scans.state(scan_id)
    assert [x.work_id for x in cases] == [work_id], cases
    case_url = f"/cases/{scan_id}/{cases[0].id}"
    listing = c.get("/cases", params={"status": "new", "work": work_id}).text
    assert case_url in listing
    assert case_url not in c.get("/cases", params={"kind": "audio"}).text
    assert case_url not in c.get("/cases", params={"status": "confirmed"}).text
    text = c.get(case_url).text
    assert work_id in text and cases[0].content_digest.hex() in text and "<script>alert" not in text

    def move(to: str, note: str = "") -> int:
        tok = csrf_of(c.get(case_url).text)
        r = c.post(f"{case_url}/status", data={"csrf": tok, "status": to, "note": note})
        return int(r.status_code)

    assert move("resolved") == 409 and move("bogus") == 409
    assert move("confirmed", f"seen {XSS}") == 200
    text = c.get(case_url).text
    assert "<script>alert" not in text and "已确认" in text
    assert move("new") == 409
    assert move("notice_sent") == 200
    for lang, word in (("zh", "侵权删除通知"), ("en", "Takedown notice")):
        notice = c.get(f"{case_url}/notice", params={"lang": lang}).text
        assert word in notice and cases[0].content_digest.hex() in notice and work_id in notice
        assert "<script>alert" not in notice
    assert move("resolved") == 200 and move("dismissed") == 409
    events = [e for e in stack.app.state.platform.audit.read() if e["event"] == "case.status"]
    assert [e["to"] for e in events if e.get("ok")] == ["confirmed", "notice_sent", "resolved"]
    assert sum(1 for e in events if not e.get("ok")) == 4
    # an editor reads the case but cannot move it; a regulator sees neither page nor socket
    editor = client_of(stack, "editor")
    assert editor.get(case_url).status_code == 200
    tok = csrf_of(editor.get(case_url).text)
    assert editor.post(f"{case_url}/status", data={"csrf": tok, "status": "dismissed"}).status_code == 403
    regulator = client_of(stack, "regulator")
    assert regulator.get(case_url).status_code == 403
    with (
        pytest.raises(WebSocketDisconnect),
        regulator.websocket_connect(f"/ws/scans/{scan_id}", headers=_cookie(regulator)) as ws,
    ):
        ws.receive_json()
    with (
        pytest.raises(WebSocketDisconnect),
        c.websocket_connect(
            f"/ws/scans/{scan_id}", headers={**_cookie(c), "origin": "http://evil.example"}
        ) as ws,
    ):
        ws.receive_json()


def test_bad_scan_requests_and_unknown_cases(stack: Stack) -> None:
    c = client_of(stack, "legal-staff")
    good = {"seeds": "http://127.0.0.1:9/", "scope": "host", "depth": "1", "max_pages": "5", "delay": "0"}
    for bad in (
        {"seeds": ""},
        {"seeds": "ftp://127.0.0.1/"},
        {"seeds": "javascript:alert(1)"},
        {"seeds": " ".join(f"http://127.0.0.1/{i}" for i in range(51))},
        {"scope": "world"},
        {"max_pages": "0"},
        {"max_pages": "many"},
        {"depth": "-1"},
        {"delay": "nan"},
        {"delay": "1e9"},
        {"allow": "169.254.169.254"},
        {"allow": "127.0.0.1 10.0.0.0/8"},
    ):
        token = csrf_of(c.get("/cases").text)
        r = c.post("/scans", data={"csrf": token, **good, **bad})
        assert r.status_code == 422, bad
        assert 'id="scan-error"' in r.text and "javascript:alert" not in r.text
    assert c.get("/scans/20261205-00000000").status_code == 404
    assert c.get("/scans/..%2F..%2Fetc").status_code == 404
    assert c.get("/cases/20261205-00000000/1").status_code == 404
    assert c.get("/cases/20261205-00000000/1/notice").status_code == 404
    assert c.get("/cases/20261205-00000000/x").status_code == 422
    token = csrf_of(c.get("/cases").text)
    assert (
        c.post("/cases/20261205-00000000/1/status", data={"csrf": token, "status": "confirmed"}).status_code
        == 404
    )


def test_scan_allow_in_the_configuration(tmp_path: Path) -> None:
    toml = tmp_path / "platform.toml"
    toml.write_text('[platform]\nscan_allow = ["10.1.2.3", "192.168.0.0/16"]\n', encoding="utf-8")
    assert load_config(toml).scan_allow == ("10.1.2.3", "192.168.0.0/16")
    for bad in ('"10.1.2.3"', "[1]", '[""]'):
        toml.write_text(f"[platform]\nscan_allow = {bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="scan_allow"):
            load_config(toml)
