"""The admin's user management: create users, change roles, reset passwords, disable."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from rongxin.platform.accounts import AccountError, Session
from rongxin.platform.web import audit, platform_of, redirect, render, require

router = APIRouter(prefix="/admin")
MANAGE = require("users.manage")


@router.get("/users", response_class=HTMLResponse)
def users(request: Request, session: Annotated[Session, Depends(MANAGE)], done: str = "") -> Response:
    """Every user with their roles."""
    return render(
        request, "users.html", users=platform_of(request).store.users(), error=None, done=bool(done)
    )


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
        return render(request, "users.html", status=400, users=p.store.users(), error=str(exc), done=False)
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
        elif action in ("disable", "enable"):
            if action == "disable" and "admin" in target.roles and p.store.active_admins() <= 1:
                raise AccountError("the last active admin cannot be disabled")
            p.store.set_active(name, action == "enable")
            audit(request, f"user.{action}", name=name)
        else:
            raise AccountError("unknown action")
    except AccountError as exc:
        return render(request, "users.html", status=400, users=p.store.users(), error=str(exc), done=False)
    return redirect("/admin/users?done=1")
