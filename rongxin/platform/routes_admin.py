"""The admin's user management: create users, change roles, reset passwords, disable."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from rongxin.platform.accounts import AccountError, Session
from rongxin.platform.sm2login import Sm2LoginError, parse_public_key
from rongxin.platform.web import audit, platform_of, redirect, render, require

router = APIRouter(prefix="/admin")


def _users_page(request: Request, error: str | None, status: int, done: bool = False) -> Response:
    """The users page (with who has an SM2 sign-in key)."""
    store = platform_of(request).store
    users = store.users()
    sm2_users = {u.name for u in users if store.sm2_key(u.name) is not None}
    return render(
        request, "users.html", status=status, users=users, error=error, done=done, sm2_users=sm2_users
    )


MANAGE = require("users.manage")


@router.get("/users", response_class=HTMLResponse)
def users(request: Request, session: Annotated[Session, Depends(MANAGE)], done: str = "") -> Response:
    """Every user with their roles."""
    return _users_page(request, None, 200, bool(done))


@router.post("/users")
async def create_user(request: Request, session: Annotated[Session, Depends(MANAGE)]) -> Response:
    """Create a user from the form (name, display name, password, roles)."""
    form = await request.form()
    name = str(form.get("name", ""))[:64]
    roles = {str(r) for r in form.getlist("roles")}
    p = platform_of(request)
    try:
        p.store.create_user(name, str(form.get("password", "")), roles, str(form.get("display", "")))
    except AccountError as exc:
        return _users_page(request, str(exc), 400)
    audit(request, "user.create", name=name, roles=sorted(roles))
    return redirect("/admin/users?done=1")


@router.post("/users/{name}")
async def change_user(request: Request, name: str, session: Annotated[Session, Depends(MANAGE)]) -> Response:
    """``action`` = ``roles`` (with ``roles``), ``password`` (with ``password``), ``disable``, ``enable``."""
    form = await request.form()
    action = str(form.get("action", ""))
    p = platform_of(request)
    try:
        target = p.store.user(name)
        if target is None:
            raise AccountError(f"no user {name!r}")
        if action == "roles":
            roles = {str(r) for r in form.getlist("roles")}
            if "admin" in target.roles and "admin" not in roles and p.store.active_admins() <= 1:
                raise AccountError("the last active admin keeps the admin role")
            p.store.set_roles(name, roles)
            audit(request, "user.roles", name=name, roles=sorted(roles))
        elif action == "password":
            p.store.set_password(name, str(form.get("password", "")))
            audit(request, "user.password", name=name)
        elif action == "sm2key":
            text = str(form.get("public_key", "")).strip()
            try:
                public = parse_public_key(text).to_bytes().hex() if text else None
            except Sm2LoginError as exc:
                raise AccountError(str(exc)) from None
            p.store.set_sm2_key(name, public)
            audit(request, "user.sm2_key", name=name, removed=public is None)
        elif action in ("disable", "enable"):
            if action == "disable" and "admin" in target.roles and p.store.active_admins() <= 1:
                raise AccountError("the last active admin cannot be disabled")
            p.store.set_active(name, action == "enable")
            audit(request, f"user.{action}", name=name)
        else:
            raise AccountError("unknown action")
    except AccountError as exc:
        return _users_page(request, str(exc), 400)
    return redirect("/admin/users?done=1")
