"""Sign in, sign out, the language switch and the home page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from rongxin.platform.accounts import Session, User
from rongxin.platform.i18n import LANGUAGES
from rongxin.platform.web import (
    CSRF,
    audit,
    client_address,
    ensure_session,
    page_session,
    platform_of,
    redirect,
    render,
    require,
    safe_next,
    set_session_cookie,
)

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    """The sign-in form (an anonymous session carries its CSRF token)."""
    session = page_session(request)
    if session is not None and session.user is not None:
        return redirect(safe_next(next))
    return render(request, "login.html", next=safe_next(next), error=None)


@router.post("/login", dependencies=[CSRF])
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=512)] = "/",
) -> Response:
    """Check the password (throttled per user and address); a new session on success."""
    p = platform_of(request)
    keys = (f"user:{username.lower()}", f"ip:{client_address(request)}")
    wait = p.store.throttled(*keys)
    if wait:
        audit(request, "login.throttled", name=username[:64])
        return render(request, "login.html", status=429, next=safe_next(next), error=("throttled", wait))
    user = p.store.authenticate(username, password)
    if user is None:
        p.store.record_failure(*keys)
        audit(request, "login.failed", name=username[:64])
        return render(request, "login.html", status=401, next=safe_next(next), error=("wrong", 0))
    p.store.clear_failures(*keys)
    return start_session(request, user, next, "password")


def start_session(request: Request, user: User, next: str, method: str) -> Response:
    """Sign ``user`` in: a new session (the pre-login one deleted), audited, then ``next``."""
    p = platform_of(request)
    old = page_session(request)
    lang = old.lang if old is not None else None
    if old is not None:
        p.store.end_session(old)
    sid, session = p.store.new_session(user.name, lang=lang)
    request.state.rx_session = session
    audit(request, "login", roles=sorted(user.roles), method=method)
    response = redirect(safe_next(next))
    set_session_cookie(response, request, sid, p.config)
    return response


@router.post("/logout", dependencies=[CSRF])
def logout(request: Request) -> Response:
    """End the session."""
    session = page_session(request)
    if session is not None:
        audit(request, "logout")
        platform_of(request).store.end_session(session)
    response = redirect("/login")
    response.delete_cookie("rx_session", path="/")
    return response


@router.post("/lang", dependencies=[CSRF])
def set_lang(
    request: Request,
    lang: Annotated[str, Form(max_length=4)],
    next: Annotated[str, Form(max_length=512)] = "/",
) -> Response:
    """Switch the session's language (``zh`` or ``en``)."""
    session = ensure_session(request)
    if lang in LANGUAGES:
        platform_of(request).store.set_session_lang(session, lang)
    return redirect(safe_next(next))


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: Annotated[Session, Depends(require("explorer.view"))]) -> Response:
    """The user's start page: what their roles open."""
    p = platform_of(request)
    return render(request, "home.html", works=p.works.count() if p.works.library_dir.exists() else 0)
