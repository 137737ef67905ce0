"""``rongxin agency serve``: run one agency's privacy-query endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from privacy.errors import PrivacyError
from rongxin.cli_common import console, fail

app = typer.Typer(
    help="An agency's endpoint for regulators' privacy-preserving queries.", no_args_is_help=True
)


@app.callback()
def agency() -> None:
    """Run an agency's endpoint for privacy queries."""


@app.command("serve")
def serve(
    config: Annotated[
        Path, typer.Option("--config", help="The agency's configuration (agency.toml).", metavar="FILE")
    ],
    listen: Annotated[
        str | None,
        typer.Option(help="HOST:PORT to listen on (overrides [agency] listen).", metavar="HOST:PORT"),
    ] = None,
) -> None:
    """Serve the agency's endpoint until interrupted (HTTPS with [agency] tls_key and tls_certificate).

    The agency answers signed queries from requesters its consortium root certified, with
    masked, encrypted aggregates; it logs each decision in ``decisions.jsonl`` in its state
    directory. With ``[consortium.ledger]`` it refuses requesters revoked (or never
    registered) on the consortium ledger, read through the member's node client.
    """
    import uvicorn

    from privacy.config import AgencyService
    from privacy.service import create_app
    from rongxin.client_profile import ProfileError
    from rongxin.privacy_ledger import attach_ledger

    try:
        svc = AgencyService.from_file(config)
        if svc.ledger is not None:  # membership and revocations from the consortium ledger
            svc.server.trust, _client = attach_ledger(svc.server.trust, svc.ledger)
    except (PrivacyError, ProfileError) as exc:
        raise fail(str(exc)) from None
    host, port = svc.host, svc.port
    if listen is not None:
        h, _, p = listen.rpartition(":")
        if not h or not p.isdigit():
            raise fail(f"--listen must be HOST:PORT, not {listen!r}")
        host, port = h.strip("[]"), int(p)
    app_ = create_app(svc.server, svc.chain_id)
    console.print(
        escape(
            f"agency {svc.server.name} (certificate {svc.server.certificate.cert_id.hex()[:16]}…) "
            f"listening on {'https' if svc.tls_key is not None else 'http'}://{host}:{port}"
        )
    )
    tls: dict[str, str] = {}
    if svc.tls_key is not None and svc.tls_certificate is not None:
        tls = {"ssl_keyfile": str(svc.tls_key), "ssl_certfile": str(svc.tls_certificate)}
    uvicorn.run(app_, host=host, port=port, log_level="warning", access_log=False, **tls)  # type: ignore[arg-type]
