"""Every role against every page and API route: allowed exactly when the role table says so."""

from __future__ import annotations

import re

import pytest

from rongxin.platform.roles import GRANTS, PERMISSIONS, ROLES, allowed
from tests.rongxin.platform.conftest import Stack, client_of, csrf_of

DIGEST = "ab" * 32
# (method, path, permission); POSTs are sent with the user's own valid CSRF token
ROUTES: list[tuple[str, str, str]] = [
    ("GET", "/", "explorer.view"),
    ("GET", "/explorer", "explorer.view"),
    ("GET", "/explorer/blocks/1", "explorer.view"),
    ("GET", "/explorer/validators", "explorer.view"),
    ("GET", "/explorer/nodes", "explorer.view"),
    ("GET", f"/explorer/search?q={DIGEST}", "explorer.view"),
    ("GET", f"/explorer/anchors/{DIGEST}", "explorer.view"),
    ("GET", f"/explorer/anchors/{DIGEST}/receipt", "explorer.view"),
    ("GET", f"/explorer/anchors/{DIGEST}/proof", "explorer.view"),
    ("GET", f"/explorer/txs/{DIGEST}", "explorer.view"),
    ("GET", "/explorer/receipts", "receipt.verify"),
    ("POST", "/explorer/receipts", "receipt.verify"),
    ("GET", "/works", "works.view"),
    ("GET", "/works/no-such-work", "works.view"),
    ("GET", "/works/new", "works.register"),
    ("GET", "/works/identify", "works.view"),
    ("POST", "/works/identify", "works.view"),
    ("POST", "/works", "works.register"),
    ("GET", "/cases", "cases.view"),
    ("POST", "/scans", "cases.manage"),
    ("GET", "/scans/20261205-00000000", "cases.view"),
    ("GET", "/scans/20261205-00000000/files/report.pdf", "cases.view"),
    ("GET", "/cases/20261205-00000000/1", "cases.view"),
    ("GET", "/cases/20261205-00000000/1/notice", "cases.view"),
    ("POST", "/cases/20261205-00000000/1/status", "cases.manage"),
    ("GET", "/regulator", "query.run"),
    ("POST", "/regulator", "query.run"),
    ("GET", "/regulator/receipts/" + "00" * 32, "query.run"),
    ("GET", "/transfers", "transfers.view"),
    ("GET", "/transfers?work=" + "00" * 32, "transfers.view"),
    ("GET", f"/transfers/receipts/{DIGEST}", "transfers.view"),
    ("POST", "/transfers/register", "transfers.make"),
    ("POST", "/transfers/receive", "transfers.make"),
    ("POST", "/transfers/make", "transfers.make"),
    ("POST", "/transfers/open", "transfers.open"),
    ("GET", "/ops", "ops.view"),
    ("GET", "/admin/users", "users.manage"),
    ("POST", "/admin/users", "users.manage"),
    ("POST", "/admin/users/editor", "users.manage"),
    ("GET", "/account", "account.manage"),
    ("POST", "/account/sm2-key", "account.manage"),
]


def _api_routes(app: object) -> list[object]:
    out: list[object] = []
    for r in app.routes:
        inner = getattr(r, "original_router", None)
        out.extend(inner.routes if inner is not None else [r])
    return [r for r in out if hasattr(r, "dependant")]


def _permission(route: object) -> str | None:
    for dep in route.dependant.dependencies:
        if hasattr(dep.call, "permission"):
            return str(dep.call.permission)
    return None


PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout"), ("POST", "/lang")}
PUBLIC |= {("GET", "/login/sm2"), ("POST", "/login/sm2/challenge"), ("POST", "/login/sm2")}


def test_the_table_covers_every_route_of_the_app(stack: Stack) -> None:
    """Every route but sign-in, sign-out and the language switch requires a permission,
    the one this table expects, and every route is in the table."""
    table = {(m, p.split("?")[0]) for m, p, _ in ROUTES}
    seen: set[tuple[str, str]] = set()
    static = {(m, r.path) for r in _api_routes(stack.app) for m in r.methods if "{" not in r.path}
    for route in _api_routes(stack.app):
        for method in route.methods:
            key = (method, route.path)
            perm = _permission(route)
            if key in PUBLIC:
                assert perm is None
                continue
            assert perm in PERMISSIONS, key
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", route.path) + "$"
            rows = [
                (m, p, q)
                for m, p, q in ROUTES
                if m == method
                and re.match(pattern, p.split("?")[0])
                and ("{" not in route.path or (m, p.split("?")[0]) not in static)
            ]
            assert rows, f"{key} is not in the role test table"
            assert all(q == perm for _, _, q in rows), key
            seen.update((m, p.split("?")[0]) for m, p, _ in rows)
    assert seen == table
    assert set(PERMISSIONS) == set(GRANTS)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_on_each_route(stack: Stack, role: str) -> None:
    c = client_of(stack, role.replace("_", "-"))
    token = csrf_of(c.get("/login", follow_redirects=True).text)
    for method, path, permission in ROUTES:
        if method == "GET":
            r = c.get(path, follow_redirects=False)
        else:
            # the role check runs before the body is used: an empty form with a valid token
            r = c.post(path, data={"csrf": token, "action": "none"}, follow_redirects=False)
        if allowed(role, permission):
            assert r.status_code != 403, (role, method, path, r.status_code)
        else:
            assert r.status_code == 403, (role, method, path, r.status_code)
            assert "您无权访问此页面" in r.text
    denied = [e for e in stack.app.state.platform.audit.read() if e["event"] == "authz.denied"]
    assert any(e["user"] == role.replace("_", "-") for e in denied) == any(
        not allowed(role, p) for _, _, p in ROUTES
    )


def test_signed_out_requests_go_to_the_login_page_or_get_401(stack: Stack) -> None:
    c = client_of(stack)
    for method, path, _ in ROUTES:
        if method == "GET":
            r = c.get(path, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
        else:
            token = csrf_of(c.get("/login").text)
            assert c.post(path, data={"csrf": token}, follow_redirects=False).status_code == 401, path


def test_every_post_route_refuses_a_missing_or_foreign_csrf_token(stack: Stack) -> None:
    """For a user the route allows: no token, an empty one, another session's token."""
    foreign = csrf_of(client_of(stack, "editor").get("/works").text)
    for method, path, permission in ROUTES:
        if method != "POST":
            continue
        role = next(r for r in ROLES if allowed(r, permission))
        c = client_of(stack, role.replace("_", "-"))
        for data in ({}, {"csrf": ""}, {"csrf": foreign}):
            r = c.post(path, data={"action": "disable", "name": "x", **data}, follow_redirects=False)
            assert r.status_code == 403, (path, data)
    assert stack.app.state.platform.store.user("editor").active
