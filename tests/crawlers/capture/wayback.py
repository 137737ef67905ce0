"""pywb's ``wayback`` server on a loopback port over a directory of WARC collections.

pywb pins packages that conflict with ``constraints.txt``, so it lives in its own venv,
``.venv-tools/pywb``, made by ``scripts/setup-tools.sh`` (run by ``make setup``); the
server runs as a subprocess of that venv. ``RONGXIN_PYWB_BIN`` names another ``bin``
directory holding ``wayback`` and ``wb-manager``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
PYWB_BIN = ROOT / ".venv-tools" / "pywb" / "bin"

#: Every request pywb might make to anything but itself goes to this dead proxy: a replay
#: must come from the WARC alone, and a test never reaches past loopback.
_DEAD_PROXY = "http://127.0.0.1:9"


def pywb_bin() -> Path:
    """The ``bin`` directory of pywb's venv; fails the test (not skips) when it is missing."""
    found = Path(os.environ.get("RONGXIN_PYWB_BIN", PYWB_BIN))
    if not (found / "wayback").is_file() or not (found / "wb-manager").is_file():
        pytest.fail(
            f"pywb is missing: no wayback or wb-manager in {found}. Run `make setup` "
            "(scripts/setup-tools.sh installs pywb 2.10.0 into .venv-tools/pywb).",
            pytrace=False,
        )
    return found


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env |= {"HTTP_PROXY": _DEAD_PROXY, "HTTPS_PROXY": _DEAD_PROXY, "NO_PROXY": "127.0.0.1,localhost"}
    return env


def add_collection(root: Path, name: str, warc: Path) -> None:
    """``wb-manager init NAME`` and ``wb-manager add NAME WARC`` in ``root``."""
    bin_dir = pywb_bin()
    for args in (["init", name], ["add", name, str(warc)]):
        done = subprocess.run(
            [str(bin_dir / "wb-manager"), *args],
            cwd=root,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"wb-manager {' '.join(args)}: {done.stderr[-2000:]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Wayback:
    """A running ``wayback``: ``base`` is ``http://127.0.0.1:PORT``; its output is in ``log``."""

    base: str
    log: Path

    def url(self, collection: str, timestamp: str, modifier: str, target: str) -> str:
        """The replay URL of ``target`` (``modifier``: ``mp_`` rewritten page, ``id_`` original bytes)."""
        return f"{self.base}/{collection}/{timestamp}{modifier}/{target}"


@contextmanager
def wayback(root: Path, *, start_s: float = 60.0) -> Iterator[Wayback]:
    """Serve the collections under ``root`` with pywb's ``wayback`` on a loopback port.

    Replay is unframed (``root/config.yaml``): the page is rewritten in the top window,
    not inside pywb's navigation frame.
    """
    bin_dir = pywb_bin()
    (root / "config.yaml").write_text("framed_replay: false\n", encoding="utf-8")
    port = _free_port()
    log = root / "wayback.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(bin_dir / "wayback"), "--bind", "127.0.0.1", "--port", str(port), "--threads", "4",
             "--directory", str(root)],
            cwd=root, env=_env(), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Wayback(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + start_s
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"wayback exited ({proc.returncode}): {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{server.base}/", timeout=2.0, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"wayback did not answer within {start_s} s: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
