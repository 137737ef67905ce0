"""The request plumbing every page shares: sessions, CSRF, authorization, rendering, audit.

* :func:`page_session` — the request's session from the ``rx_session`` cookie (an
  anonymous one is made when a page needs a CSRF token and there is none);
* :func:`require` — a dependency factory: the route's permission, checked against the
  table in :mod:`rongxin.platform.roles`; a refusal is a 403 page and an
  ``authz.denied`` audit event, no session a redirect to the login page (401 for
  non-page requests);
* :func:`check_csrf` — every ``POST`` carries the session's token (form field ``csrf`` or
  header ``X-CSRF-Token``), compared in constant time;
* :func:`render` — a Jinja2 template with autoescaping, the user's language and token.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from chain.node.logs import OpsAudit
from rongxin.platform.accounts import AccountStore, Session
from rongxin.platform.config import PlatformConfig
from rongxin.platform.i18n import LANGUAGES, translate
from rongxin.platform.roles import ROLES, allowed

if TYPE_CHECKING:
    from rongxin.platform.casework import CaseStates
    from rongxin.platform.chainview import ChainView
    from rongxin.platform.console import RegulatorConsole
    from rongxin.platform.monitor import OpsMonitor
    from rongxin.platform.ownerkeys import OwnerKeyStore
    from rongxin.platform.scanrunner import ScanRunner
    from rongxin.platform.workstore import WorkStore

COOKIE = "rx_session"
TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class Platform:
    """Everything a request handler reaches: configuration, accounts, audit, data sources."""

    config: PlatformConfig
    store: AccountStore
    audit: OpsAudit
    chain: ChainView
    works: WorkStore
    scans: ScanRunner
    cases: CaseStates
    console: RegulatorConsole
    monitor: OpsMonitor | None = None
    owner_keys: OwnerKeyStore | None = None
    env: Environment = field(init=False)

    def __post_init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )


class Denied(Exception):
    """Raised inside a handler to answer 403 (rendered by the app's handler)."""


class LoginNeeded(Exception):
    """No signed-in user: a page redirects to the login page, other requests get 401."""


def platform_of(request: Request) -> Platform:
    """The :class:`Platform` the app was created with."""
    p: Platform = request.app.state.platform
    return p


def secure_cookie(request: Request, config: PlatformConfig) -> bool:
    """Whether the session cookie gets the ``Secure`` flag for this request."""
    if config.secure_cookies == "always":
        return True
    if config.secure_cookies == "never":
        return False
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, sid: str, config: PlatformConfig) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, Secure over https, whole site."""
    response.set_cookie(
        COOKIE,
        sid,
        max_age=config.session_s,
        httponly=True,
        samesite="strict",
        secure=secure_cookie(request, config),
        path="/",
    )


def page_session(request: Request) -> Session | None:
    """The live session named by the request's cookie (cached on the request)."""
    if "rx_session" in request.scope.get("state", {}):
        cached: Session | None = request.state.rx_session
        return cached
    p = platform_of(request)
    session = p.store.session(request.cookies.get(COOKIE))
    request.state.rx_session = session
    return session


def ensure_session(request: Request) -> Session:
    """The request's session, or a new anonymous one (its cookie set by :func:`render`)."""
    session = page_session(request)
    if session is None:
        p = platform_of(request)
        sid, session = p.store.new_session(None, lang=None)
        request.state.rx_session = session
        request.state.rx_new_sid = sid
    return session


def lang_of(request: Request, session: Session | None) -> str:
    """The session's language, else the configuration's default."""
    if session is not None and session.lang in LANGUAGES:
        return session.lang
    return platform_of(request).config.language


def client_address(request: Request) -> str:
    """The peer's address (the platform is meant to sit on loopback or behind a proxy)."""
    return request.client.host if request.client else "unknown"


def audit(request: Request, event: str, **fields: Any) -> None:
    """Record ``event`` in the operations audit log with the acting user and address."""
    session = page_session(request)
    user = session.user.name if session is not None and session.user is not None else None
    platform_of(request).audit.record(event, user=user, addr=client_address(request), **fields)


def require(permission: str) -> Callable[[Request], Awaitable[Session]]:
    """A dependency: the signed-in session if its user holds ``permission`` (and, for a
    state-changing request, sent the session's CSRF token)."""

    async def dependency(request: Request) -> Session:
        session = page_session(request)
        if session is None or session.user is None:
            raise LoginNeeded()
        if not allowed(session.user.roles, permission):
            audit(
                request, "authz.denied", permission=permission, method=request.method, path=request.url.path
            )
            raise Denied()
        if request.method not in ("GET", "HEAD"):
            await check_csrf(request)  # after the role check: no body is read for a refused user
        request.state.permission = permission
        return session

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


async def check_csrf(request: Request) -> None:
    """Refuse (403) a ``POST`` whose CSRF token is missing or not the session's."""
    session = page_session(request)
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf")
            sent = value if isinstance(value, str) else None
    if session is None or not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        audit(request, "csrf.refused", method=request.method, path=request.url.path)
        raise HTTPException(
            status_code=403, detail="CSRF token missing or wrong; reload the page and try again"
        )


CSRF = Depends(check_csrf)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` for the request's user, in their language, with their CSRF token."""
    p = platform_of(request)
    session = ensure_session(request)
    lang = lang_of(request, session)
    user = session.user

    def t(text: str, **kw: Any) -> str:
        out = translate(text, lang)
        return out.format(**kw) if kw else out

    body = p.env.get_template(template).render(
        t=t,
        lang=lang,
        user=user,
        csrf=session.csrf,
        can=lambda perm: user is not None and allowed(user.roles, perm),
        roles=ROLES,
        path=request.url.path,
        platform_name=p.config.name,
        **context,
    )
    response = HTMLResponse(body, status_code=status)
    new_sid = getattr(request.state, "rx_new_sid", None)
    if new_sid is not None:
        set_session_cookie(response, request, new_sid, p.config)
    return response


def redirect(url: str) -> RedirectResponse:
    """A 303 redirect (after a POST, the browser GETs ``url``)."""
    return RedirectResponse(url, status_code=303)


def safe_next(target: str | None) -> str:
    """A post-login destination on this site only (``/`` for anything else)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
