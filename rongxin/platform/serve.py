"""``rongxin serve --config platform.toml``: run the member platform with uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rongxin.cli_common import fail


def serve(
    config: Annotated[Path, typer.Option("--config", "-c", help="The platform's platform.toml.")] = Path(
        "platform.toml"
    ),
) -> None:
    """Run the member platform (web pages and explorer) on the configured address."""
    import uvicorn

    from rongxin.platform.app import close_app, create_app
    from rongxin.platform.config import PlatformError, load_config

    try:
        cfg = load_config(config)
        app = create_app(cfg)
    except PlatformError as exc:
        raise fail(str(exc)) from None
    typer.echo(
        f"Rongxin member platform on http://{cfg.host}:{cfg.port}/ "
        f"(audit log {cfg.data_dir / 'ops-audit.jsonl'})"
    )
    try:
        uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning", proxy_headers=False)
    finally:
        close_app(app)
