"""Node processes: start, SIGKILL, SIGSTOP/SIGCONT, SIGTERM, and the behaviour hook."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from chain.node.config import ApiSection, HostPort, NodeConfig, NodeSection, P2PSection
from rongxin.e2e import nodes
from rongxin.e2e.nodes import NodeProcess, NodeProcessError

SLEEPER = """
import os, signal, sys, time
if sys.argv[1] == "obeys":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
else:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
env = os.environ
print("offset", env["RONGXIN_CLOCK_OFFSET_MS"], "password", env["RONGXIN_KEY_PASSWORD"], flush=True)
while True:
    time.sleep(0.05)
    if os.path.exists("tick"):
        print("tick", flush=True)
        os.remove("tick")
"""


def config(tmp_path: Path) -> NodeConfig:
    d = tmp_path / "node-0"
    d.mkdir()
    section = NodeSection("node-0", d / "g", d / "k", d / "c", d / "data")
    return NodeConfig(
        d / "node.toml",
        section,
        P2PSection((HostPort("127.0.0.1", 1),)),
        ApiSection(HostPort("127.0.0.1", 9)),
    )


def stopped(node: NodeProcess) -> bool:
    """Whether the process is stopped (SIGSTOP), waiting a moment for the signal to land."""
    assert node.proc is not None
    deadline = time.monotonic() + 5
    while True:
        state = Path(f"/proc/{node.proc.pid}/stat").read_text().rpartition(")")[2].split()[0]
        if state == "T" or time.monotonic() > deadline:
            return state == "T"
        time.sleep(0.02)


def wait_for_log(node: NodeProcess, text: str, times: int = 1) -> None:
    deadline = time.monotonic() + 10
    while node.log_file.read_text().count(text) < times and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.log_file.read_text().count(text) == times


@pytest.mark.parametrize("mode", ["obeys", "ignores"])
def test_signals_of_a_node_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setitem(nodes.BEHAVIOURS, "sleeper", lambda path: [sys.executable, "-c", SLEEPER, mode])
    node = NodeProcess(config(tmp_path), "secret", "sleeper")
    node.clock_offset_ms = -2000
    node.start()
    wait_for_log(node, "offset -2000 password secret")
    with pytest.raises(NodeProcessError, match="already running"):
        node.start()
    node.pause()
    assert node.paused and stopped(node)
    (node.config.directory / "tick").touch()
    time.sleep(0.3)
    assert "tick" not in node.log_file.read_text()  # stopped: it does nothing
    node.resume()
    assert not node.paused
    wait_for_log(node, "tick", 1)
    node.kill()
    assert not node.alive() and node.exits == [-9]
    node.start()
    assert node.starts == 2
    wait_for_log(node, "offset -2000", times=2)
    node.pause()
    code = node.terminate(timeout=1.0)  # a paused node is resumed first
    if mode == "obeys":
        assert code == 0 and node.exits[-1] == 0
    else:
        assert code is None and node.exits[-1] == -9
    assert not node.alive()


def test_unknown_behaviour_names_the_hook(tmp_path: Path) -> None:
    with pytest.raises(NodeProcessError, match=r"register one in rongxin\.e2e\.nodes\.BEHAVIOURS"):
        NodeProcess(config(tmp_path), "pw", "equivocate")


def test_state_sync_mode_rewrites_the_config(tmp_path: Path) -> None:
    from chain.node.config import dump_config, load_config

    cfg = config(tmp_path)
    for name in ("g", "k", "c"):
        (cfg.directory / name).write_bytes(b"")
    cfg.path.write_text(dump_config(cfg))
    loaded = load_config(cfg.path)
    assert loaded.state_sync.enable is False
    nodes.SYNC_MODES["blocks"](loaded)
    assert load_config(cfg.path).state_sync.enable is False
    nodes.SYNC_MODES["state"](loaded)
    again = load_config(cfg.path)
    assert again.state_sync.enable is True and again.p2p == loaded.p2p and again.node == loaded.node
