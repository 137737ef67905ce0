"""Sign-in, sessions, cookies, CSRF, throttling and the audit log of the platform."""

from __future__ import annotations

from pathlib import Path

import pytest

from rongxin.platform.accounts import THROTTLE_FAILURES, AccountError, AccountStore
from rongxin.platform.web import COOKIE
from tests.rongxin.platform.conftest import FAST_HASHER, PASSWORD, Stack, client_of, csrf_of


def test_login_rotates_the_session_id_and_sets_strict_cookie_flags(stack: Stack) -> None:
    c = client_of(stack)
    page = c.get("/login")
    assert page.status_code == 200 and "登录" in page.text  # Chinese by default
    planted = c.cookies.get(COOKIE)
    assert planted
    r = c.post(
        "/login",
        data={"username": "legal-staff", "password": PASSWORD, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Secure" not in cookie  # plain http on loopback; https gets Secure (below)
    fresh = c.cookies.get(COOKIE)
    assert fresh and fresh != planted
    # the planted pre-login id opens nothing now
    attacker = client_of(stack)
    attacker.cookies.set(COOKIE, planted)
    assert attacker.get("/works", follow_redirects=False).status_code == 303
    assert c.get("/works").status_code == 200
    assert r.headers["content-security-policy"].startswith("default-src 'self'")


def test_cookie_is_secure_over_https(stack: Stack) -> None:
    from fastapi.testclient import TestClient

    c = TestClient(stack.app, base_url="https://127.0.0.1")
    page = c.get("/login")
    assert "Secure" in page.headers["set-cookie"]
    r = c.post(
        "/login",
        data={"username": "editor", "password": PASSWORD, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


def test_csrf_refused_without_or_with_a_wrong_token(stack: Stack) -> None:
    c = client_of(stack, "admin")
    for data in ({}, {"csrf": "forged"}, {"csrf": ""}):
        r = c.post("/admin/users", data={"name": "mallory", "password": PASSWORD, "roles": "admin", **data})
        assert r.status_code == 403
    assert stack.app.state.platform.store.user("mallory") is None
    # another session's token does not work either
    other = client_of(stack, "editor")
    token = csrf_of(other.get("/works").text)
    r = c.post(
        "/admin/users", data={"name": "mallory", "password": PASSWORD, "roles": "admin", "csrf": token}
    )
    assert r.status_code == 403
    # and the login form itself needs its token
    fresh = client_of(stack)
    assert fresh.post("/login", data={"username": "admin", "password": PASSWORD}).status_code == 403
    events = [e["event"] for e in stack.app.state.platform.audit.read()]
    assert "csrf.refused" in events


def test_wrong_password_then_throttled_even_with_the_right_one(stack: Stack) -> None:
    stack.app.state.platform.store.create_user("victim", PASSWORD, {"editor"})
    c = client_of(stack)
    for _ in range(THROTTLE_FAILURES):
        page = c.get("/login")
        r = c.post(
            "/login", data={"username": "victim", "password": "not the password", "csrf": csrf_of(page.text)}
        )
        assert r.status_code == 401 and "用户名或密码错误" in r.text
    page = c.get("/login")
    r = c.post("/login", data={"username": "victim", "password": PASSWORD, "csrf": csrf_of(page.text)})
    assert r.status_code == 429
    events = [e for e in stack.app.state.platform.audit.read() if e.get("name") == "victim"]
    assert [e["event"] for e in events][-1] == "login.throttled"
    assert all(PASSWORD not in str(e) for e in events)


def test_logout_ends_the_session(stack: Stack) -> None:
    c = client_of(stack, "operator")
    token = csrf_of(c.get("/ops").text)
    sid = c.cookies.get(COOKIE)
    assert c.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    again = client_of(stack)
    again.cookies.set(COOKIE, sid)
    assert again.get("/ops", follow_redirects=False).status_code == 303


def test_language_switch(stack: Stack) -> None:
    c = client_of(stack, "auditor")
    home = c.get("/")
    assert "区块浏览器" in home.text
    c.post("/lang", data={"lang": "en", "csrf": csrf_of(home.text), "next": "/"})
    assert "Explorer" in c.get("/").text


def test_account_store_rules(tmp_path: Path) -> None:
    store = AccountStore(tmp_path / "a.sqlite", hasher=FAST_HASHER)
    with pytest.raises(AccountError, match="at least 12"):
        store.create_user("li", "short", {"editor"})
    with pytest.raises(AccountError, match="unknown role"):
        store.create_user("li", PASSWORD, {"root"})
    with pytest.raises(AccountError, match="user name"):
        store.create_user("../li", PASSWORD, {"editor"})
    store.create_user("li", PASSWORD, {"editor"})
    with pytest.raises(AccountError, match="already exists"):
        store.create_user("li", PASSWORD, {"editor"})
    row = store._db.execute("SELECT pw_hash FROM users").fetchone()[0]
    assert row.startswith("$argon2id$") and PASSWORD not in row
    sid, signed_in = store.new_session("li")
    assert store.session(sid) is not None
    _, anonymous = store.new_session(None)
    assert anonymous.expires_ms - signed_in.expires_ms < -3_000_000  # an hour, not the session's 12
    assert sid.encode() not in (tmp_path / "a.sqlite").read_bytes()
    store.set_active("li", False)
    assert store.session(sid) is None and store.authenticate("li", PASSWORD) is None
