"""``rongxin node …``: run a consortium node as a long-running process.

* ``run --config node.toml`` — open the node's ledger, connect to its peers over the
  secure channel, take part in consensus and serve the node API, until SIGTERM/SIGINT.

Mounted by ``rongxin.cli`` as ``app.add_typer(cli_node.app, name="node")``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from chain.errors import ChainError
from rongxin.cli_common import fail

app = typer.Typer(help="Run and manage a consortium node.", no_args_is_help=True)


@app.command("run")
def run_cmd(
    config: Annotated[Path, typer.Option(help="The node's configuration (node.toml).", metavar="FILE")],
) -> None:
    """Run the node described by ``node.toml`` until SIGTERM or Ctrl-C."""
    from chain.node.config import load_config

    try:
        cfg = load_config(config)
    except ChainError as exc:
        raise fail(str(exc)) from None
    try:
        asyncio.run(_run(cfg))
    except ChainError as exc:
        raise fail(f"node {cfg.node.name}: {exc}") from None
    except OSError as exc:
        raise fail(f"node {cfg.node.name}: {exc.strerror or exc} ({exc.filename or 'network'})") from None


async def _run(cfg: object) -> None:
    from chain.node.run import run_node
    from rongxin.contracts import node_registry

    await run_node(cfg, node_registry)  # type: ignore[arg-type]
