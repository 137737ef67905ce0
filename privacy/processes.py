"""Run agencies as local processes (``rongxin agency serve``), for the demo, tests and benchmarks.

Examples
--------
>>> AgencyProcesses([]).urls
[]
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from types import TracebackType

import httpx

from privacy.errors import AgencyUnavailable

_ROOT = Path(__file__).resolve().parents[1]


def _agency(config: Path) -> dict[str, object]:
    text = config.read_text(encoding="utf-8")
    doc = json.loads(text) if config.suffix == ".json" else tomllib.loads(text)
    return dict(doc["agency"])


def listen_url(config: Path) -> str:
    """``http(s)://HOST:PORT`` of an agency's service file (``[agency] listen``)."""
    agency = _agency(config)
    host, _, port = str(agency["listen"]).rpartition(":")
    return f"{'https' if agency.get('tls_certificate') else 'http'}://{host}:{port}"


def _verify(config: Path) -> ssl.SSLContext | bool:
    cert = _agency(config).get("tls_certificate")
    return True if cert is None else ssl.create_default_context(cafile=str(config.parent / str(cert)))


class AgencyProcesses:
    """One ``rongxin agency serve`` process per service file (output in ``<file>.log``);
    :meth:`start` waits until every ``/health`` answers, :meth:`stop` terminates them (then
    kills stragglers)."""

    def __init__(self, configs: list[Path]) -> None:
        self.configs = list(configs)
        self.urls = [listen_url(c) for c in self.configs]
        self.procs: list[subprocess.Popen[bytes]] = []

    @staticmethod
    def log(config: Path) -> Path:
        """Where the agency's output goes (next to its service file)."""
        return config.with_suffix(".log")

    def start(self, timeout: float = 120.0) -> AgencyProcesses:
        """Launch and wait; :class:`AgencyUnavailable` names an agency that exits or stays silent."""
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")])),
        }
        for c in self.configs:
            with open(self.log(c), "wb") as log:
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "rongxin", "agency", "serve", "--config", str(c)],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + timeout
        try:
            for config, url, p in zip(self.configs, self.urls, self.procs, strict=True):
                while True:
                    if p.poll() is not None:
                        err = self.log(config).read_text(errors="replace").strip()
                        raise AgencyUnavailable(config.stem, f"its process exited: {err[-300:]}")
                    try:
                        if httpx.get(f"{url}/health", timeout=1, verify=_verify(config)).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise AgencyUnavailable(
                            config.stem, f"its service did not answer within {timeout:g} s"
                        )
                    time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def terminate(self, i: int) -> None:
        """Stop agency ``i`` (to play a dropout)."""
        p = self.procs[i]
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def kill(self, i: int) -> None:
        """Kill agency ``i`` with SIGKILL (to play a crash mid-query)."""
        p = self.procs[i]
        p.kill()
        p.wait()

    def stop(self) -> None:
        """Terminate every process and wait for it."""
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self) -> AgencyProcesses:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
