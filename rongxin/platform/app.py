"""The platform's FastAPI app: :func:`create_app` wires configuration, accounts, the audit
log, the node client and the library to the routes of each area."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chain.api.app import BodyLimit
from chain.crypto import PrivateKey
from chain.node.logs import OpsAudit
from rongxin.platform import (
    routes_admin,
    routes_auth,
    routes_cases,
    routes_explorer,
    routes_ops,
    routes_regulator,
    routes_sm2,
    routes_transfers,
    routes_works,
)
from rongxin.platform.accounts import AccountError, AccountStore
from rongxin.platform.casework import CaseStates
from rongxin.platform.chainview import ChainView
from rongxin.platform.config import ConfigError, PlatformConfig
from rongxin.platform.console import RegulatorConsole
from rongxin.platform.monitor import OpsMonitor, member_signer
from rongxin.platform.ownerkeys import store_for
from rongxin.platform.scanrunner import ScanRunner
from rongxin.platform.web import Denied, LoginNeeded, Platform, render
from rongxin.platform.workstore import WorkStore

STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


class _SecurityHeaders:
    """Content-Security-Policy (own scripts and styles only), no sniffing, no framing, no caching."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _HEADERS
            await send(message)

        await self.app(scope, receive, secured)


_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


def bootstrap_admin(store: AccountStore, password_file: Path | None) -> bool:
    """Create user ``admin`` from the first line of ``password_file`` when no admin exists.

    Returns whether a user was created.

    Raises
    ------
    ConfigError
        The file cannot be read or its password is too weak.
    """
    if password_file is None or store.active_admins() > 0:
        return False
    try:
        password = password_file.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the admin password file {password_file}: {exc}") from None
    try:
        store.create_user("admin", password, {"admin"}, "Administrator")
    except AccountError as exc:
        raise ConfigError(f"admin password file {password_file}: {exc}") from None
    return True


def open_chain(config: PlatformConfig) -> ChainView:
    """A :class:`ChainView` over the configured client profile (an empty one without)."""
    if config.client is None:
        return ChainView(None, None)
    from rongxin.client_profile import ProfileError, open_unattended

    try:
        client, genesis = open_unattended(config.client, "the platform")
    except ProfileError as exc:
        raise ConfigError(str(exc)) from None
    return ChainView(client, genesis)


def create_app(
    config: PlatformConfig,
    *,
    chain: ChainView | None = None,
    store: AccountStore | None = None,
    scans: ScanRunner | None = None,
    console: RegulatorConsole | None = None,
) -> FastAPI:
    """The platform app.

    Parameters
    ----------
    config : PlatformConfig
        From :func:`~rongxin.platform.config.load_config`.
    chain : ChainView, optional
        The explorer's node client (default: from ``config.client``).
    store : AccountStore, optional
        The accounts (default: ``data_dir/accounts.sqlite``).
    scans : ScanRunner, optional
        Runs the scans started from the platform (default: in ``data_dir/scans`` against
        ``config.library``, their databases on ``config.scan_db`` when it is set).
    console : RegulatorConsole, optional
        The regulator console (default: over ``config.agencies``).
    """
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = store or AccountStore(config.data_dir / "accounts.sqlite", config.session_s)
    bootstrap_admin(store, config.admin_password_file)
    audit = OpsAudit(config.data_dir / "ops-audit.jsonl", config.name)
    chain = chain if chain is not None else open_chain(config)
    member_key = getattr(chain.client, "key", None)
    platform = Platform(
        config=config,
        store=store,
        audit=audit,
        chain=chain,
        works=WorkStore(config.library, config.data_dir, config.max_upload_bytes),
        scans=scans
        or ScanRunner(config.data_dir / "scans", config.library, config.scan_allow, db=config.scan_db),
        cases=CaseStates(config.data_dir / "cases.sqlite"),
        console=console or RegulatorConsole(config.agencies),
        monitor=OpsMonitor(config.nodes, config.ops, audit, member_signer(chain.client)),
        owner_keys=store_for(
            config.data_dir, member_key.to_bytes() if isinstance(member_key, PrivateKey) else None
        ),
    )
    assert platform.monitor is not None
    platform.monitor.start()
    if platform.console.ledger is None and chain.client is not None and chain.genesis is not None:
        platform.console.ledger = (chain.client, chain.genesis)  # audit records anchored by the member's node
    app = FastAPI(title="Rongxin member platform", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.platform = platform
    for module in (
        routes_auth,
        routes_sm2,
        routes_explorer,
        routes_works,
        routes_cases,
        routes_regulator,
        routes_transfers,
        routes_ops,
        routes_admin,
    ):
        app.include_router(module.router)
    app.router.add_websocket_route("/ws/scans/{scan_id}", routes_cases.scan_socket)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(LoginNeeded)
    async def _login(request: Request, exc: Exception) -> Response:
        if request.method == "GET":
            from urllib.parse import quote

            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return Response(status_code=303, headers={"location": f"/login?next={quote(target)}"})
        return PlainTextResponse("sign in first", status_code=401)

    @app.exception_handler(Denied)
    async def _denied(request: Request, exc: Exception) -> Response:
        return render(
            request,
            "message.html",
            status=403,
            title="Denied",
            message="You do not have access to this page.",
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 413:
            return PlainTextResponse(str(exc.detail), status_code=413)
        return render(request, "message.html", status=exc.status_code, title="Error", message=str(exc.detail))

    app.add_middleware(BodyLimit, default=config.max_upload_bytes + 1024 * 1024, limits={})
    app.add_middleware(_SecurityHeaders)
    return app


def close_app(app: FastAPI) -> None:
    """Stop the metrics sampler; close the node client, the library and the accounts database of ``app``."""
    platform: Platform = app.state.platform
    if platform.monitor is not None:
        platform.monitor.stop()
    platform.chain.close()
    platform.works.close()
    platform.cases.close()
    platform.store.close()
