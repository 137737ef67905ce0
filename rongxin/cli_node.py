"""``rongxin node …``: run a consortium node as a long-running process.

* ``run --config node.toml`` — open the node's ledger, connect to its peers over the
  secure channel, take part in consensus and serve the node API, until SIGTERM/SIGINT;
* ``add NAME --net DIR`` — certify a new node with the root key, write its directory and
  register it (it joins as an observer and syncs);
* ``promote NAME --net DIR`` — the caught-up node attests its head (``node.ready``) and
  the supervisor promotes it to vote (the hardening guards apply: one change at a time,
  at most ``f``);
* ``remove NAME --net DIR`` — revoke the node's certificate and stop it if it runs here.

Mounted by ``rongxin.cli`` as ``app.add_typer(cli_node.app, name="node")``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from chain.errors import ChainError
from rongxin.cli_common import console, fail

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

    await run_node(cfg, node_registry, tune_gc=True)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- membership of nodes
NetDir = Annotated[
    Path, typer.Option("--net", help="The network directory (rongxin chain init).", metavar="DIR")
]
PasswordFile = Annotated[
    Path | None,
    typer.Option("--password-file", help="Password of the root and supervisor keys.", metavar="FILE"),
]


def _supervisor(net: Path, password_file: Path | None) -> tuple[Any, Any, str]:
    """The supervisor's client (from ``net/supervisor/client.toml``), the genesis and its password."""
    from rongxin.cli_common import password
    from rongxin.client_profile import ProfileError, load_profile, open_client

    pw = password(password_file, prompt="Supervisor key password")
    try:
        cli, genesis = open_client(load_profile(net / "supervisor" / "client.toml"), pw)
    except ProfileError as exc:
        raise fail(str(exc)) from None
    return cli, genesis, pw


@app.command("add")
def add_cmd(
    name: Annotated[str, typer.Argument(help="The new node's name (its directory in the network).")],
    net: NetDir,
    host: Annotated[str, typer.Option(help="Address the node listens on.")] = "127.0.0.1",
    p2p_port: Annotated[int | None, typer.Option(help="Peer port (default: after the last node's).")] = None,
    observer: Annotated[bool, typer.Option(help="Certify an observer (never votes) instead.")] = False,
    state_sync: Annotated[
        bool, typer.Option("--state-sync", help="Join from a peer's snapshot instead of replaying the chain.")
    ] = False,
    password_file: PasswordFile = None,
) -> None:
    """Certify a new node, write its directory and register it on chain; it joins as an observer.

    Start it (``rongxin chain up NET --node NAME``); when it has caught up, make it a voter
    with ``rongxin node promote NAME --net NET``.
    """
    from chain.crypto.keyfile import load_private_key
    from chain.node.config import HostPort
    from chain.types import Role
    from rongxin.ops import procs
    from rongxin.ops.admission import certify_node, write_node_dir

    entries = procs.discover(net)
    if any(e.name == name for e in entries) or (net / name).exists():
        raise fail(f"{net / name} already exists")
    if not name.replace("-", "").replace("_", "").isalnum():
        raise fail(f"{name!r} is not a valid node name (letters, digits, - and _)")
    used = [p.port for e in entries for p in (*e.config.p2p.listen, e.config.api.listen)]
    port = p2p_port or (max(used) // 10 * 10 + 10 if used else 26656)
    if not 1 <= port <= 65534:
        raise fail(f"port {port} is out of range")
    cli, _, pw = _supervisor(net, password_file)
    try:
        root = load_private_key(net / "supervisor" / "root.key", pw)
        role = Role.OBSERVER_NODE if observer else Role.CONSENSUS_NODE
        key, cert = certify_node(root, name, role)
        shared = all(e.config.node.key_password_file is None for e in entries) and bool(entries)
        write_node_dir(
            net,
            name,
            key,
            cert,
            password=pw if shared else None,
            listen=HostPort(host, port),
            api=HostPort(host, port + 1),
            peers=[p for e in entries for p in e.config.p2p.listen],
            state_sync=state_sync,
        )
        done = cli.send("member.add", {"certificate": cert.to_dict()})
    except ChainError as exc:
        raise fail(f"node {name} not registered: {exc}") from None
    finally:
        cli.close()
    console.print(
        f"{name} certified ({role.value}, id {cert.cert_id.hex()[:16]}…) and registered at height "
        f"{done.get('height')}; p2p {host}:{port}, API {host}:{port + 1}. Start it with "
        f"`rongxin chain up {net} --node {name}`"
        + ("" if observer else f"; once it has caught up: `rongxin node promote {name} --net {net}`"),
        markup=False,
    )


@app.command("promote")
def promote_cmd(
    name: Annotated[str, typer.Argument(help="The node to make a voter.")],
    net: NetDir,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for it to vote.")] = 60.0,
    password_file: PasswordFile = None,
) -> None:
    """Make a caught-up node a voter: it attests its head (node.ready), the supervisor promotes it."""
    import time

    from chain.client import NodeClient
    from chain.node.identity import load_identity
    from rongxin.ops import procs
    from rongxin.ops.admission import promote_node

    entry = next((e for e in procs.discover(net) if e.name == name), None)
    if entry is None:
        raise fail(f"no node {name} in {net}")
    status = procs.probe([entry])[0]
    if not status.online:
        raise fail(f"{name} is not running (start it with `rongxin chain up {net} --node {name}`)")
    cli, genesis, _ = _supervisor(net, password_file)
    try:
        key, cert = load_identity(entry.config, genesis)
        with NodeClient(f"http://{entry.config.api.listen}", key, cert, genesis) as own:
            promote_node(own, cli, cert)
    except ChainError as exc:
        raise fail(f"{name} not promoted: {exc}") from None
    finally:
        cli.close()
    deadline = time.monotonic() + timeout
    voting = False
    while not voting and time.monotonic() < deadline:
        voting = bool(procs.probe([entry])[0].voting)
        if not voting:
            time.sleep(0.5)
    if not voting:
        raise fail(f"{name} was promoted on chain but does not vote yet after {timeout:.0f} s; see its log")
    console.print(f"{name} promoted: it votes in the new epoch", markup=False)


@app.command("remove")
def remove_cmd(
    name: Annotated[str, typer.Argument(help="The node to remove from the consortium.")],
    net: NetDir,
    reason: Annotated[str, typer.Option(help="Why (recorded on chain).")] = "removed by the operator",
    password_file: PasswordFile = None,
) -> None:
    """Revoke a node's certificate (peers drop it at the next height) and stop it if it runs here."""
    from chain.node.identity import read_certificate
    from rongxin.ops import procs

    entry = next((e for e in procs.discover(net) if e.name == name), None)
    if entry is None:
        raise fail(f"no node {name} in {net}")
    cert = read_certificate(entry.config)
    cli, _, _ = _supervisor(net, password_file)
    try:
        done = cli.send("member.revoke", {"cert_id": cert.cert_id, "reason": reason})
    except ChainError as exc:
        raise fail(f"{name} not removed: {exc}") from None
    finally:
        cli.close()
    stopped = procs.stop_nodes([entry], timeout_s=15)
    console.print(
        f"{name}'s certificate revoked at height {done.get('height')}; "
        f"local process: {stopped.get(name, 'not running')}",
        markup=False,
    )
