"""Sign-in with an SM2 key (a signed one-time challenge) and the user's own account page,
where a user registers or removes their SM2 public key.

The challenge is bound to the browser's session and to the site's origin, answered once
(taken from the store before it is checked) and only for :data:`CHALLENGE_S` seconds.
Refusals say why without telling whether the user has a key; each is a
``login.sm2.failed`` audit event and counts against the sign-in throttle like a wrong
password.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from rongxin.platform.accounts import USER_RE, Session
from rongxin.platform.routes_auth import start_session
from rongxin.platform.sm2login import (
    CHALLENGE_S,
    Sm2LoginError,
    challenge_text,
    parse_public_key,
    signature_ok,
)
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
)

router = APIRouter()
ACCOUNT = require("account.manage")


def origin_of(request: Request) -> str:
    """The site's origin as the browser sees it (scheme, host and port)."""
    return f"{request.url.scheme}://{request.url.netloc}"


@router.get("/login/sm2", response_class=HTMLResponse)
def sm2_page(request: Request, next: str = "/") -> Response:
    """Step 1: the user name whose key will sign."""
    session = page_session(request)
    if session is not None and session.user is not None:
        return redirect(safe_next(next))
    return render(request, "login_sm2.html", next=safe_next(next), challenge=None, error="")


@router.post("/login/sm2/challenge", dependencies=[CSRF], response_class=HTMLResponse)
def sm2_challenge(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    next: Annotated[str, Form(max_length=512)] = "/",
) -> Response:
    """Step 2: a challenge for the user, bound to this session (issued for any well-formed
    name, so that the page does not tell who has a key)."""
    p = platform_of(request)
    name = username.strip().lower()
    if not USER_RE.fullmatch(name):
        return render(
            request, "login_sm2.html", status=422, next=safe_next(next), challenge=None,
            error="a user name is 2-32 lowercase letters, digits, '.', '_' or '-'",
        )  # fmt: skip
    session = ensure_session(request)
    expires = int(time.time() * 1000) + CHALLENGE_S * 1000
    text = challenge_text(p.config.name, origin_of(request), name, secrets.token_hex(32), expires)
    cid = p.store.new_challenge(name, session, text, expires)
    audit(request, "login.sm2.challenge", name=name)
    challenge = {"id": cid, "text": text, "user": name, "seconds": CHALLENGE_S}
    return render(request, "login_sm2.html", next=safe_next(next), challenge=challenge, error="")


@router.post("/login/sm2", dependencies=[CSRF], response_class=HTMLResponse)
def sm2_login(
    request: Request,
    challenge: Annotated[str, Form(max_length=128)],
    signature: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form(max_length=512)] = "/",
) -> Response:
    """Step 3: check the pasted signature of the challenge; a new session on success."""
    p = platform_of(request)
    taken = p.store.take_challenge(challenge)  # answered at most once, whatever follows
    name = taken[0] if taken is not None else ""
    keys = (f"user:{name}", f"ip:{client_address(request)}")

    def refuse(reason: str, status: int = 401) -> Response:
        if name:
            p.store.record_failure(*keys)
        else:
            p.store.record_failure(keys[1])
        audit(request, "login.sm2.failed", name=name, reason=reason)
        return render(
            request, "login_sm2.html", status=status, next=safe_next(next), challenge=None, error=reason
        )

    if taken is None:
        return refuse("this challenge is unknown or was already used; ask for a new one")
    _, session_digest, text, expires_ms = taken
    current = page_session(request)
    if current is None or not hmac.compare_digest(current.id_digest, session_digest):
        return refuse("this challenge was issued to another browser session; ask for a new one")
    if expires_ms < int(time.time() * 1000):
        return refuse("this challenge has expired; ask for a new one and sign it within two minutes")
    if f"\norigin: {origin_of(request)}\n" not in text:
        return refuse("this challenge was issued for another site address")
    wait = p.store.throttled(*keys)
    if wait:
        audit(request, "login.throttled", name=name)
        return render(
            request, "login_sm2.html", status=429, next=safe_next(next), challenge=None,
            error=f"too many failed sign-ins; try again in {wait} s",
        )  # fmt: skip
    registered = p.store.sm2_key(name)
    user = p.store.user(name)
    valid = False
    if registered is not None:
        try:
            valid = signature_ok(parse_public_key(registered), text, signature)
        except Sm2LoginError:
            valid = False
    if not valid or user is None or not user.active:
        return refuse("the signature does not verify with the SM2 key registered for this user")
    p.store.clear_failures(*keys)
    return start_session(request, user, next, "sm2")


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, session: Annotated[Session, Depends(ACCOUNT)], done: str = "") -> Response:
    """The signed-in user's account: roles and the SM2 key for signing in."""
    return _account(request, session, "", bool(done))


def _account(request: Request, session: Session, error: str, done: bool, status: int = 200) -> Response:
    assert session.user is not None
    registered = platform_of(request).store.sm2_key(session.user.name)
    key_id = parse_public_key(registered).key_id() if registered else ""
    return render(request, "account.html", status=status, key_id=key_id, error=error, done=done)


@router.post("/account/sm2-key", response_class=HTMLResponse)
async def account_key(request: Request, session: Annotated[Session, Depends(ACCOUNT)]) -> Response:
    """Register (or, with ``remove``, remove) the user's own SM2 public key."""
    assert session.user is not None
    form = await request.form()
    p = platform_of(request)
    if form.get("remove"):
        p.store.set_sm2_key(session.user.name, None)
        audit(request, "user.sm2_key", name=session.user.name, removed=True)
        return redirect("/account?done=1")
    try:
        key = parse_public_key(str(form.get("public_key", "")))
    except Sm2LoginError as exc:
        audit(request, "user.sm2_key", ok=False, name=session.user.name, reason=str(exc)[:200])
        return _account(request, session, str(exc), False, 422)
    p.store.set_sm2_key(session.user.name, key.to_bytes().hex())
    audit(request, "user.sm2_key", name=session.user.name, key_id=key.key_id())
    return redirect("/account?done=1")
