"""Run the nodes of a network directory on this machine: start, stop, ask their status.

* :func:`discover` — every ``<net>/<node>/node.toml``, loaded and checked;
* :func:`start_node` — ``<python> -m rongxin node run --config <node.toml>`` in the
  background, its output appended to ``data/node.log``, its pid in ``data/node.pid``;
  a pid file that names a live node process is a refusal (:class:`AlreadyRunning`);
* :func:`stop_nodes` — SIGTERM to every running node, a bounded wait, SIGKILL for the
  rest, pid files removed;
* :func:`probe` — ``GET http://<api>/status`` of every node at once (2 s timeout), with
  the lag of each behind the highest.

A pid file is trusted only when the process it names is alive (not a zombie) and, where
``/proc`` tells, runs with this node's ``--config``: a pid reused by another program after
a reboot is never signalled.

Examples
--------
>>> natural_key("node-10") > natural_key("node-9")
True
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from chain.crypto import atomic_write
from chain.errors import ChainError
from chain.node.config import NodeConfig, load_config
from chain.node.identity import read_certificate
from chain.types import Role
from rongxin.errors import RongxinError

STATUS_TIMEOUT_S = 2.0
STOP_TIMEOUT_S = 30.0
NODE_MODULE = "rongxin"
"""The module run as ``python -m <module> node run --config <file>``."""

_started: dict[int, subprocess.Popen[bytes]] = {}
"""Processes started by this process (polled, so an exited child is reaped, not a zombie)."""


class AlreadyRunning(RongxinError):
    """The node's pid file names a live node process."""


@dataclass(frozen=True)
class NodeEntry:
    """One node of a network directory."""

    name: str
    role: str
    """``"consensus"``, ``"observer"`` or ``"unknown"`` (from the node's certificate)."""
    config: NodeConfig


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key in which ``node-2`` comes before ``node-10``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def _role(cfg: NodeConfig) -> str:
    try:
        roles = read_certificate(cfg).roles
    except ChainError:
        return "unknown"
    if Role.CONSENSUS_NODE in roles:
        return "consensus"
    return "observer" if Role.OBSERVER_NODE in roles else "unknown"


def discover(net_dir: str | os.PathLike[str], only: Sequence[str] = ()) -> list[NodeEntry]:
    """The nodes of ``net_dir`` (every ``*/node.toml``), consensus nodes first, in natural order.

    Raises
    ------
    RongxinError
        No node in the directory, or a name in ``only`` that is not one of them.
    ConfigError
        A node's configuration does not load.
    """
    root = Path(net_dir)
    if not root.is_dir():
        raise RongxinError(f"{root} is not a directory")
    entries = []
    for path in sorted(root.glob("*/node.toml")):
        cfg = load_config(path)
        entries.append(NodeEntry(cfg.node.name, _role(cfg), cfg))
    if not entries:
        raise RongxinError(f"no node in {root} (no */node.toml); create one with `rongxin chain init`")
    entries.sort(key=lambda e: (e.role != "consensus", natural_key(e.name)))
    if only:
        known = {e.name for e in entries}
        missing = [n for n in only if n not in known]
        if missing:
            raise RongxinError(
                f"no node named {', '.join(missing)} in {root} (nodes: {', '.join(sorted(known))})"
            )
        entries = [e for e in entries if e.name in only]
    return entries


# --------------------------------------------------------------------------- processes
def read_pid(cfg: NodeConfig) -> int | None:
    """The pid in the node's pid file, or ``None`` (no file, or not a number)."""
    try:
        text = cfg.pid_file.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (an exited child of ours is reaped; a zombie is dead)."""
    child = _started.get(pid)
    if child is not None:
        if child.poll() is not None:
            del _started[pid]
            return False
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def is_node_process(pid: int, cfg: NodeConfig) -> bool:
    """Whether the live process ``pid`` runs with ``--config`` naming this node's file.

    Where ``/proc`` is not available, a live process is assumed to be the node.
    """
    if not process_alive(pid):
        return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True
    for flag, value in itertools.pairwise(args):
        if flag == b"--config":
            named = os.fsdecode(value)
            if not os.path.isabs(named):
                try:
                    named = os.path.join(os.readlink(f"/proc/{pid}/cwd"), named)
                except OSError:
                    return True  # cannot tell: trust the pid file
            return os.path.realpath(named) == os.path.realpath(cfg.path)
    return False


def running_pid(cfg: NodeConfig) -> int | None:
    """The pid of the node's running process according to its pid file, else ``None``."""
    pid = read_pid(cfg)
    return pid if pid is not None and is_node_process(pid, cfg) else None


def node_command(cfg: NodeConfig, module: str = NODE_MODULE) -> list[str]:
    """The command that runs the node: ``<this python> -m rongxin node run --config <file>``."""
    return [sys.executable, "-m", module, "node", "run", "--config", str(cfg.path)]


def start_node(entry: NodeEntry, module: str = NODE_MODULE) -> int:
    """Start one node in the background; its pid.

    Raises
    ------
    AlreadyRunning
        The pid file names a live process of this node.
    """
    cfg = entry.config
    pid = running_pid(cfg)
    if pid is not None:
        raise AlreadyRunning(f"{entry.name} is already running (pid {pid})")
    cfg.node.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(cfg.log_file, "ab") as log:
        proc = subprocess.Popen(
            node_command(cfg, module),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cfg.directory,
            start_new_session=True,
        )
    _started[proc.pid] = proc
    atomic_write(cfg.pid_file, f"{proc.pid}\n".encode(), 0o644, overwrite=True)
    return proc.pid


def log_tail(cfg: NodeConfig, lines: int = 5) -> list[str]:
    """The last ``lines`` lines of the node's log (what a node that died at start said)."""
    try:
        with open(cfg.log_file, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            tail = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    return tail[-lines:]


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        try:
            if os.getpgid(pid) == pid:  # started in its own session: reach its children too
                os.killpg(pid, sig)
                return
        except ProcessLookupError:
            return
        os.kill(pid, sig)


def stop_nodes(entries: Sequence[NodeEntry], timeout_s: float = STOP_TIMEOUT_S) -> dict[str, str]:
    """Stop the nodes: SIGTERM, wait up to ``timeout_s``, SIGKILL; pid files removed.

    Returns
    -------
    dict of str to str
        Per node: ``"stopped"``, ``"killed"`` (needed SIGKILL), ``"not running"`` (no pid
        file) or ``"stale pid file"`` (named a dead or foreign process).
    """
    outcome: dict[str, str] = {}
    pending: dict[str, tuple[int, NodeEntry]] = {}
    for e in entries:
        pid = read_pid(e.config)
        if pid is None:
            outcome[e.name] = "not running"
            e.config.pid_file.unlink(missing_ok=True)
        elif not is_node_process(pid, e.config):
            outcome[e.name] = "stale pid file"
            e.config.pid_file.unlink(missing_ok=True)
        else:
            _signal(pid, signal.SIGTERM)
            pending[e.name] = (pid, e)
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for name, (pid, _) in list(pending.items()):
            if not process_alive(pid):
                outcome[name] = "stopped"
                del pending[name]
        if pending:
            time.sleep(0.05)
    for name, (pid, _) in pending.items():
        _signal(pid, signal.SIGKILL)
        outcome[name] = "killed"
    kill_deadline = time.monotonic() + 5.0
    while any(process_alive(pid) for pid, _ in pending.values()) and time.monotonic() < kill_deadline:
        time.sleep(0.05)
    for e in entries:
        if outcome[e.name] in ("stopped", "killed"):
            e.config.pid_file.unlink(missing_ok=True)
    return {e.name: outcome[e.name] for e in entries}


# --------------------------------------------------------------------------- status
@dataclass
class NodeStatus:
    """What ``rongxin chain status`` shows for one node."""

    name: str
    role: str
    api: str
    pid: int | None
    alive: bool
    online: bool
    height: int | None = None
    peers: int | None = None
    lag: int | None = None
    voting: bool | None = None
    catching_up: bool | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


async def _fetch(client: httpx.AsyncClient, entry: NodeEntry) -> NodeStatus:
    cfg = entry.config
    pid = read_pid(cfg)
    alive = pid is not None and is_node_process(pid, cfg)
    api = cfg.api.listen.url_authority
    status = NodeStatus(entry.name, entry.role, api, pid, alive, online=False)
    try:
        response = await client.get(f"http://{api}/status")
        response.raise_for_status()
        doc = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        status.error = str(exc) or type(exc).__name__
        return status
    if not isinstance(doc, dict) or not isinstance(doc.get("height"), int):
        status.error = "the answer to /status has no height"
        return status
    status.online = True
    status.height = doc["height"]
    status.peers = doc.get("peers") if isinstance(doc.get("peers"), int) else None
    status.voting = doc.get("voting") if isinstance(doc.get("voting"), bool) else None
    status.catching_up = doc.get("catching_up") if isinstance(doc.get("catching_up"), bool) else None
    if doc.get("role") in ("consensus", "observer"):
        status.role = doc["role"]
    return status


async def probe_async(entries: Sequence[NodeEntry], timeout_s: float = STATUS_TIMEOUT_S) -> list[NodeStatus]:
    """:func:`probe` for a running event loop."""
    async with httpx.AsyncClient(timeout=timeout_s, trust_env=False) as client:
        statuses = list(await asyncio.gather(*(_fetch(client, e) for e in entries)))
    heights = [s.height for s in statuses if s.height is not None]
    top = max(heights, default=None)
    for s in statuses:
        if s.height is not None and top is not None:
            s.lag = top - s.height
    return statuses


def probe(entries: Sequence[NodeEntry], timeout_s: float = STATUS_TIMEOUT_S) -> list[NodeStatus]:
    """Every node's ``/status`` at once; a node that does not answer in ``timeout_s`` is offline."""
    return asyncio.run(probe_async(entries, timeout_s))


__all__ = [
    "NODE_MODULE",
    "AlreadyRunning",
    "NodeEntry",
    "NodeStatus",
    "discover",
    "is_node_process",
    "log_tail",
    "natural_key",
    "node_command",
    "probe",
    "probe_async",
    "read_pid",
    "running_pid",
    "start_node",
    "stop_nodes",
]
