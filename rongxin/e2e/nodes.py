"""Node processes of an end-to-end run: start, SIGKILL, SIGTERM, SIGSTOP/SIGCONT, readiness.

Each node runs as ``python -m rongxin node run --config <node.toml>`` in its own session,
its output appended to ``data/node.log``. The child imports the same ``rongxin`` and
``chain`` packages as the runner (their source root is put first on ``PYTHONPATH``), so a
run from a working tree tests that tree's code.

Two hooks let other node kinds take part without changing the runner:

* :data:`BEHAVIOURS` — behaviour name → the command that runs such a node (``honest``:
  the real node; ``byzantine``: :mod:`chain.node.byzantine`, which equivocates, withholds
  votes, floods far-future rounds and forges certificates).
* :data:`SYNC_MODES` — sync mode name → what is done to a node's directory before its
  first start (``blocks``: nothing; it syncs block by block from its peers; ``state``: it
  restores a peer's snapshot first, :func:`enable_state_sync`).

Examples
--------
>>> node_command(Path("/net/node-0/node.toml"))[-4:]
['node', 'run', '--config', '/net/node-0/node.toml']
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

import rongxin
from chain.node.config import KEY_PASSWORD_ENV, NodeConfig, dump_config
from chain.node.run import CLOCK_OFFSET_ENV
from rongxin.errors import RongxinError

SOURCE_ROOT = Path(rongxin.__file__).resolve().parent.parent
"""The directory holding the ``rongxin`` and ``chain`` packages the runner imported."""


class NodeProcessError(RongxinError):
    """A node process could not be started or did not become ready."""


def node_command(config: Path) -> list[str]:
    """The honest node: ``<this python> -m rongxin node run --config <config>``."""
    return [sys.executable, "-m", "rongxin", "node", "run", "--config", str(config)]


def byzantine_command(config: Path) -> list[str]:
    """A Byzantine node (:mod:`chain.node.byzantine`): equivocates, floods, forges."""
    return [sys.executable, "-m", "chain.node.byzantine", "--config", str(config), "--seed", "7"]


BEHAVIOURS: dict[str, Callable[[Path], list[str]]] = {"honest": node_command, "byzantine": byzantine_command}
"""How a node of each behaviour is run (see the module docstring)."""


def enable_state_sync(cfg: NodeConfig) -> None:
    """Rewrite the node's ``node.toml`` with ``[state_sync] enable = true``: started with an
    empty ledger, it restores a peer's snapshot before it runs."""
    if cfg.state_sync.enable:
        return
    updated = replace(cfg, state_sync=replace(cfg.state_sync, enable=True))
    cfg.path.write_text(dump_config(updated, header=f"{cfg.node.name}: joins from a peer's snapshot"))


SYNC_MODES: dict[str, Callable[[NodeConfig], None]] = {
    "blocks": lambda cfg: None,
    "state": enable_state_sync,
}
"""What each sync mode does to a node's directory before its first start."""


class NodeProcess:
    """One node's process, restartable.

    Parameters
    ----------
    config : NodeConfig
        The node's loaded ``node.toml``.
    password : str
        Its key password (given as ``$RONGXIN_KEY_PASSWORD``).
    behaviour : str
        A key of :data:`BEHAVIOURS`.
    """

    def __init__(self, config: NodeConfig, password: str, behaviour: str = "honest") -> None:
        if behaviour not in BEHAVIOURS:
            raise NodeProcessError(
                f"no node process for behaviour {behaviour!r} (registered: {', '.join(sorted(BEHAVIOURS))}); "
                "register one in rongxin.e2e.nodes.BEHAVIOURS"
            )
        self.config = config
        self.name = config.node.name
        self.password = password
        self.behaviour = behaviour
        self.api_url = f"http://{config.api.listen.url_authority}"
        self.clock_offset_ms = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False
        self.starts = 0
        self.exits: list[int] = []
        """Exit codes of earlier runs (negative: killed by that signal)."""

    @property
    def log_file(self) -> Path:
        """Where the node's output goes."""
        return self.config.log_file

    def alive(self) -> bool:
        """Whether the process runs (a paused process counts as running)."""
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> int:
        """Start the node (it must not be running); its pid."""
        if self.alive():
            raise NodeProcessError(f"{self.name} is already running")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SOURCE_ROOT), env.get("PYTHONPATH", "")) if p)
        env[KEY_PASSWORD_ENV] = self.password
        env[CLOCK_OFFSET_ENV] = str(self.clock_offset_ms)
        self.config.node.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                BEHAVIOURS[self.behaviour](self.config.path),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.config.directory,
                env=env,
                start_new_session=True,
            )
        self.paused = False
        self.starts += 1
        return self.proc.pid

    def _reap(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self.exits.append(code)
        return code

    def kill(self) -> None:
        """SIGKILL and reap (a paused node dies too)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self._reap(10.0)
        self.paused = False

    def terminate(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, SIGKILL if needed; the exit code of a clean stop,
        ``None`` when it had to be killed (or was not running)."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        self.resume()
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        code = self._reap(timeout)
        if code is None:
            self.kill()
        return code

    def pause(self) -> None:
        """SIGSTOP: the process stays, its sockets stay open, it does nothing."""
        if self.alive() and not self.paused:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        if self.alive() and self.paused:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def status(self, client: httpx.Client, timeout: float = 1.0) -> dict[str, Any] | None:
        """The node's public ``/status``, or ``None`` when it does not answer in ``timeout``."""
        try:
            response = client.get(f"{self.api_url}/status", timeout=timeout)
            doc = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def wait_ready(self, client: httpx.Client, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the node answers ``/status``; that answer.

        Raises
        ------
        NodeProcessError
            It exited, or did not answer within ``timeout`` (with its log's last lines).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise NodeProcessError(f"{self.name} exited at start:\n{self.log_tail()}")
            doc = self.status(client, 0.5)
            if doc is not None:
                return doc
            time.sleep(0.1)
        raise NodeProcessError(f"{self.name} did not answer /status within {timeout:g} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 8) -> str:
        """The last lines of the node's log."""
        try:
            with open(self.log_file, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 16384))
                tail = fh.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(tail[-lines:])


__all__ = [
    "BEHAVIOURS",
    "SOURCE_ROOT",
    "SYNC_MODES",
    "NodeProcess",
    "NodeProcessError",
    "byzantine_command",
    "enable_state_sync",
    "node_command",
]
