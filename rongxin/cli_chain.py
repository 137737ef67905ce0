"""``rongxin chain …``: create a consortium network and run its nodes on this machine.

* ``init --nodes 4 --observers 1 [--hosts h1,h2] --out net/`` — keys, certificates,
  genesis, one directory per node with ``node.toml``, scripts, a systemd unit and
  Prometheus files (:mod:`rongxin.ops.build`);
* ``up NET_DIR`` — start every node (or ``--node NAME``) in the background;
* ``down NET_DIR`` — stop them (SIGTERM, then SIGKILL after ``--timeout``);
* ``status NET_DIR [--json]`` — each node's process, height, peers and lag.

Mounted by ``rongxin.cli`` as ``app.add_typer(cli_chain.app, name="chain")``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from chain.crypto.keyfile import DEFAULT_SCRYPT_N
from chain.errors import ChainError
from chain.node.identity import key_password
from rongxin.cli_common import PasswordFile, console, err_console, fail, new_password
from rongxin.errors import RongxinError
from rongxin.ops import procs
from rongxin.ops.build import NetworkSpec, create_network
from rongxin.ops.layout import DEFAULT_BASE_PORT, parse_hosts, plan_network

app = typer.Typer(help="Create a consortium network and run its nodes.", no_args_is_help=True)

NetDir = Annotated[Path, typer.Argument(help="The network directory made by `rongxin chain init`.")]
Nodes = Annotated[
    list[str] | None,
    typer.Option("--node", help="Only this node (repeat for several); default: every node.", metavar="NAME"),
]


@app.command("init")
def init_cmd(
    out: Annotated[Path, typer.Option(help="Network directory to create.", metavar="DIR")],
    nodes: Annotated[int, typer.Option(help="Consensus (voting) nodes; 4 or more tolerate a fault.")] = 4,
    observers: Annotated[int, typer.Option(help="Observer nodes: certified, syncing, not voting.")] = 0,
    hosts: Annotated[
        str | None,
        typer.Option(help="Comma-separated machine addresses, assigned round robin (default: loopback)."),
    ] = None,
    base_port: Annotated[
        int, typer.Option(help="Peer port of node 0; node i uses base+10i (p2p) and base+10i+1 (API).")
    ] = DEFAULT_BASE_PORT,
    chain_id: Annotated[str, typer.Option(help="Chain id (bound into every signature).")] = "rongxin-net",
    consortium: Annotated[str, typer.Option(help="Consortium name in the genesis.")] = "Rongxin consortium",
    organizations: Annotated[
        str | None, typer.Option(help="Comma-separated organizations of the node certificates, round robin.")
    ] = None,
    block_interval_ms: Annotated[int, typer.Option(help="Target time between blocks.")] = 1000,
    round_timeout_ms: Annotated[int, typer.Option(help="Consensus round timeout.")] = 2000,
    empty_blocks: Annotated[
        bool, typer.Option(help="Heartbeat blocks every interval even without transactions.")
    ] = False,
    password_file: PasswordFile = None,
    force: Annotated[bool, typer.Option(help="Replace an existing network directory.")] = False,
    scrypt_n: Annotated[
        int, typer.Option(hidden=True, help="scrypt cost of the sealed keys.")
    ] = DEFAULT_SCRYPT_N,
) -> None:
    """Create a network: supervisor root, node keys and certificates, genesis, configs, scripts."""
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise fail(f"{out} exists; pass --force to replace the whole network directory")
    if force and out.is_dir():
        _refuse_if_running(out)
    try:
        spec = NetworkSpec(
            consensus=nodes,
            observers=observers,
            hosts=tuple(parse_hosts(hosts)) if hosts else (),
            base_port=base_port,
            chain_id=chain_id,
            consortium=consortium,
            organizations=tuple(o.strip() for o in organizations.split(",") if o.strip())
            if organizations
            else (),
            block_interval_ms=block_interval_ms,
            round_timeout_ms=round_timeout_ms,
            empty_blocks=empty_blocks,
        )
        spec.params()
        plan_network(spec.consensus, spec.observers, spec.hosts, spec.base_port)
    except (RongxinError, ChainError) as exc:
        raise fail(str(exc)) from None
    secret = new_password(password_file, prompt="Password of the supervisor's keys")
    try:
        summary = create_network(
            out,
            spec,
            secret,
            node_password=secret if password_file is not None else None,
            force=force,
            scrypt_n=scrypt_n,
        )
    except (RongxinError, ChainError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot write {exc.filename or out}: {exc.strerror}") from None
    table = Table(title=f"{summary.genesis.chain_id}: {len(summary.nodes)} nodes")
    for column in ("node", "role", "p2p", "api", "certificate"):
        table.add_column(column)
    for n in summary.nodes:
        cert_id = summary.certificates[n.name].cert_id.hex()[:16] + "…"
        table.add_row(n.name, n.role, str(n.p2p), str(n.api), cert_id)
    console.print(table)
    console.print(escape(f"genesis {summary.genesis.hash.hex()} written to {summary.directory}/genesis.cbor"))
    if nodes < 4:
        err_console.print(
            f"[yellow]warning:[/] {nodes} consensus node(s) tolerate no faulty node; use 4 or more "
            "(5 or more in production)"
        )
    where = "node.pass in each node's directory" if summary.node_passwords_stored else "$RONGXIN_KEY_PASSWORD"
    console.print(
        escape(
            f"node keys open with {where}; keep {summary.directory}/supervisor/ offline\n"
            f"start the nodes: rongxin chain up {out}   (or ./start-all.sh, or rongxin-node@.service)"
        )
    )


def _refuse_if_running(net_dir: Path) -> None:
    try:
        entries = procs.discover(net_dir)
    except (RongxinError, ChainError):
        return
    running = [e.name for e in entries if procs.running_pid(e.config) is not None]
    if running:
        raise fail(f"{', '.join(running)} of {net_dir} still running; stop them first (rongxin chain down)")


def _entries(net_dir: Path, only: list[str] | None) -> list[procs.NodeEntry]:
    try:
        return procs.discover(net_dir, only or ())
    except (RongxinError, ChainError) as exc:
        raise fail(str(exc)) from None


@app.command("up")
def up_cmd(
    net_dir: NetDir,
    node: Nodes = None,
    node_module: Annotated[
        str, typer.Option(hidden=True, help="Module run as the node.")
    ] = procs.NODE_MODULE,
    grace_s: Annotated[
        float, typer.Option(help="Seconds after which a node that exited is reported as failed.")
    ] = 2.0,
) -> None:
    """Start the nodes in the background (output in <node>/data/node.log, pid in data/node.pid)."""
    entries = _entries(net_dir, node)
    try:
        for e in entries:
            key_password(e.config)  # a node that cannot open its key would only fail later
    except ChainError as exc:
        raise fail(str(exc)) from None
    ok = True
    started: list[tuple[procs.NodeEntry, int]] = []
    for e in entries:
        try:
            pid = procs.start_node(e, node_module)
        except procs.AlreadyRunning as exc:
            err_console.print(f"[yellow]refused:[/] {escape(str(exc))}")
            ok = False
            continue
        except OSError as exc:
            err_console.print(f"[red]error:[/] cannot start {escape(e.name)}: {escape(str(exc))}")
            ok = False
            continue
        started.append((e, pid))
        console.print(f"started {escape(e.name)} ({e.role}) pid {pid}")
    deadline = time.monotonic() + grace_s
    while started and time.monotonic() < deadline:
        time.sleep(0.05)
    for e, pid in started:
        if not procs.process_alive(pid):
            ok = False
            e.config.pid_file.unlink(missing_ok=True)
            err_console.print(f"[red]error:[/] {escape(e.name)} exited at start; last lines of its log:")
            for line in procs.log_tail(e.config):
                err_console.print("  " + escape(line))
    if not ok:
        raise typer.Exit(1)


@app.command("down")
def down_cmd(
    net_dir: NetDir,
    node: Nodes = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait after SIGTERM before SIGKILL.")] = 30.0,
) -> None:
    """Stop the nodes: SIGTERM, a bounded wait, then SIGKILL; pid files removed."""
    entries = _entries(net_dir, node)
    for name, outcome in procs.stop_nodes(entries, timeout).items():
        console.print(f"{escape(name)}: {outcome}")


@app.command("status")
def status_cmd(
    net_dir: NetDir,
    node: Nodes = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the statuses as JSON.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each node's /status.")] = 2.0,
) -> None:
    """Show every node: role, process, height, peers, online, lag behind the highest node."""
    statuses = procs.probe(_entries(net_dir, node), timeout)
    if json_out:
        typer.echo(json.dumps([s.to_dict() for s in statuses], indent=2))
        return
    table = Table(title=f"{net_dir}")
    for column in ("node", "role", "pid", "height", "peers", "online", "lag"):
        table.add_column(column, justify="right" if column in ("pid", "height", "peers", "lag") else "left")

    def cell(value: int | None) -> str:
        return "-" if value is None else str(value)

    for s in statuses:
        pid = "-" if s.pid is None else f"{s.pid}{'' if s.alive else ' (dead)'}"
        online = "[green]yes[/]" if s.online else "[red]down[/]"
        table.add_row(escape(s.name), s.role, pid, cell(s.height), cell(s.peers), online, cell(s.lag))
    console.print(table)
