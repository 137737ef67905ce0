"""Sign-in with an SM2 key: a registered key signs a one-time challenge (with the
``rongxin platform sign-challenge`` command and the user's encrypted key file) and signs
in; a wrong key, a replayed, expired or another session's challenge, another user's key
and malformed signatures are refused, counted and audited."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chain.crypto import PrivateKey, save_private_key
from chain.crypto.sealed import MIN_SCRYPT_N
from rongxin.cli import app as cli
from rongxin.platform import routes_sm2
from rongxin.platform.sm2login import sign_challenge
from tests.chain.api.harness import TestClient
from tests.rongxin.platform.conftest import Stack, client_of, csrf_of

KEY_PASSWORD = "key file password"


def _challenge(c: TestClient, user: str) -> tuple[str, str, str]:
    """Ask for a challenge as ``user``: (challenge id, text, CSRF token)."""
    token = csrf_of(c.get("/login/sm2").text)
    page = c.post("/login/sm2/challenge", data={"csrf": token, "username": user})
    assert page.status_code == 200, page.text[-1500:]
    cid = re.search(r'name="challenge" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    text = html.unescape(re.search(r'id="challenge-text">(.*?)</pre>', page.text, re.S).group(1))  # type: ignore[union-attr]
    return cid, text, csrf_of(page.text)


def _answer(c: TestClient, cid: str, signature: str, token: str) -> Any:
    data = {"csrf": token, "challenge": cid, "signature": signature, "next": "/works"}
    return c.post("/login/sm2", data=data, follow_redirects=False)


def _register(stack: Stack, user: str, key: PrivateKey) -> None:
    c = client_of(stack, user)
    token = csrf_of(c.get("/account").text)
    r = c.post(
        "/account/sm2-key",
        data={"csrf": token, "public_key": key.public_key.to_pem()},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert key.public_key.key_id() in c.get("/account").text


def _failures(stack: Stack) -> list[str]:
    return [e["reason"] for e in stack.app.state.platform.audit.read() if e["event"] == "login.sm2.failed"]


def test_a_signed_challenge_signs_in_once(stack: Stack, tmp_path: Path) -> None:
    key = PrivateKey.generate()
    _register(stack, "editor", key)
    key_file = tmp_path / "editor.key"
    save_private_key(key, key_file, KEY_PASSWORD, scrypt_n=MIN_SCRYPT_N)
    (tmp_path / "pw").write_text(KEY_PASSWORD + "\n")
    c = client_of(stack)
    cid, text, token = _challenge(c, "editor")
    assert "user: editor" in text and "origin: http://127.0.0.1" in text
    challenge_file = tmp_path / "challenge.txt"
    challenge_file.write_text(text + "\n")
    run = CliRunner().invoke(
        cli, ["platform", "sign-challenge", str(challenge_file), "--key", str(key_file),
              "--password-file", str(tmp_path / "pw")],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    signature = run.stdout.strip().splitlines()[-1]
    r = _answer(c, cid, signature, token)
    assert r.status_code == 303 and r.headers["location"] == "/works"
    assert c.get("/works").status_code == 200  # signed in, with a new session
    logins = [e for e in stack.app.state.platform.audit.read() if e["event"] == "login"]
    assert logins[-1]["user"] == "editor" and logins[-1]["method"] == "sm2"
    # the same challenge and signature again, from a fresh browser: used up
    other = client_of(stack)
    token2 = csrf_of(other.get("/login/sm2").text)
    r = _answer(other, cid, signature, token2)
    assert r.status_code == 401 and "unknown or was already used" in r.text
    assert other.get("/works", follow_redirects=False).status_code == 303
    # the command refuses what is not a challenge, and a wrong key password
    (tmp_path / "junk.txt").write_text("sign me\n")
    sign = ["platform", "sign-challenge", "--key", str(key_file), "--password-file"]
    junk = CliRunner().invoke(cli, [*sign, str(tmp_path / "pw"), str(tmp_path / "junk.txt")])
    assert junk.exit_code == 1 and "not a platform sign-in challenge" in junk.output
    (tmp_path / "bad").write_text("wrong password\n")
    wrong = CliRunner().invoke(cli, [*sign, str(tmp_path / "bad"), str(challenge_file)])
    assert wrong.exit_code == 1 and "cannot open the key file" in wrong.output


def test_wrong_key_other_session_expired_and_malformed_are_refused(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator, stranger = PrivateKey.generate(), PrivateKey.generate()
    _register(stack, "operator", operator)
    _register(stack, "regulator", PrivateKey.generate())
    _register(stack, "auditor", PrivateKey.generate())
    before = len(_failures(stack))
    # a key that is not the registered one
    c = client_of(stack)
    cid, text, token = _challenge(c, "operator")
    r = _answer(c, cid, sign_challenge(stranger, text), token)
    assert r.status_code == 401 and "does not verify with the SM2 key registered" in r.text
    # another user's challenge signed with the operator's own key
    cid, text, token = _challenge(c, "auditor")
    assert _answer(c, cid, sign_challenge(operator, text), token).status_code == 401
    # a user without a key gets a challenge too (the page does not tell), and is refused
    cid, text, token = _challenge(c, "legal-staff")
    assert _answer(c, cid, sign_challenge(operator, text), token).status_code == 401
    # a challenge issued to another browser session, signed correctly
    victim = client_of(stack)
    cid, text, _ = _challenge(victim, "operator")
    r = _answer(c, cid, sign_challenge(operator, text), csrf_of(c.get("/login/sm2").text))
    assert r.status_code == 401 and "another browser session" in r.text
    # malformed signatures: each a 401 with a reason, never a server error
    for bad in ("zz" * 64, "", "00" * 63, "30" + "ff" * 70, "00" * 64, "a" * 999):
        cid, text, token = _challenge(c, "regulator")
        r = _answer(c, cid, bad, token)
        assert r.status_code in (401, 422), (bad, r.status_code)
    # a challenge answered at another site address (the same browser session)
    cid, text, token = _challenge(c, "operator")
    elsewhere = TestClient(stack.app, base_url="http://localhost:8480")
    elsewhere.cookies.set("rx_session", str(c.cookies.get("rx_session")))
    r = _answer(elsewhere, cid, sign_challenge(operator, text), token)
    assert r.status_code == 401 and "another site address" in r.text
    # an expired challenge, correctly signed
    monkeypatch.setattr(routes_sm2, "CHALLENGE_S", -1)
    cid, text, token = _challenge(c, "operator")
    r = _answer(c, cid, sign_challenge(operator, text), token)
    assert r.status_code == 401 and "has expired" in r.text
    # no CSRF token, or another session's
    assert c.post("/login/sm2", data={"challenge": cid, "signature": "00"}).status_code == 403
    foreign = csrf_of(victim.get("/login/sm2").text)
    assert c.post("/login/sm2/challenge", data={"username": "operator"}).status_code == 403
    assert c.post("/login/sm2/challenge", data={"csrf": foreign, "username": "operator"}).status_code == 403
    assert c.get("/works", follow_redirects=False).status_code == 303  # never signed in
    reasons = _failures(stack)[before:]
    assert len(reasons) >= 9 and any("expired" in r for r in reasons)
    # past the throttle (5 failures of one user) even the right signature waits
    monkeypatch.setattr(routes_sm2, "CHALLENGE_S", 120)
    for _ in range(2):
        cid, text, token = _challenge(c, "operator")
        _answer(c, cid, "00" * 64, token)
    cid, text, token = _challenge(c, "operator")
    r = _answer(c, cid, sign_challenge(operator, text), token)
    assert r.status_code == 429 and "too many failed sign-ins" in r.text
    assert [e for e in stack.app.state.platform.audit.read() if e["event"] == "login.throttled"]
    users = ("auditor", "operator", "regulator", "legal-staff")
    stack.app.state.platform.store.clear_failures("ip:testclient", *(f"user:{u}" for u in users))


def test_keys_are_checked_and_the_admin_can_set_or_remove_them(stack: Stack) -> None:
    c = client_of(stack, "auditor")
    token = csrf_of(c.get("/account").text)
    for bad in (
        "",
        "04" + "00" * 64,
        "not a key",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    ):
        r = c.post("/account/sm2-key", data={"csrf": token, "public_key": bad})
        assert r.status_code in (422, 400), bad
    assert c.post("/account/sm2-key", data={"public_key": "x"}).status_code == 403  # no CSRF
    admin = client_of(stack, "admin")
    atoken = csrf_of(admin.get("/admin/users").text)
    key = PrivateKey.generate()
    data = {"csrf": atoken, "action": "sm2key", "public_key": key.public_key.to_bytes().hex()}
    r = admin.post("/admin/users/auditor", data=data, follow_redirects=False)
    assert r.status_code == 303
    assert key.public_key.key_id() in c.get("/account").text
    r = admin.post("/admin/users/auditor", data={"csrf": atoken, "action": "sm2key", "public_key": "zz"})
    assert r.status_code == 400 and 'id="user-error"' in r.text
    admin.post("/admin/users/auditor", data={"csrf": atoken, "action": "sm2key", "public_key": ""})
    assert stack.app.state.platform.store.sm2_key("auditor") is None
    events = [e for e in stack.app.state.platform.audit.read() if e["event"] == "user.sm2_key"]
    assert events and events[-1]["removed"] is True
