"""``rongxin chain init|up|down|status``: a network directory that loads, decrypts and verifies,
and nodes started, probed and stopped (with a stub node process serving /status)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from chain.crypto.keyfile import load_private_key
from chain.node import load_config, load_genesis, load_identity
from chain.node.identity import certificate_from_json
from chain.replica import Replica
from chain.types import Role
from rongxin.cli import app
from rongxin.ops import procs
from rongxin.ops.layout import free_base_port

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
PASSWORD = "root password 123"
FAST = ["--scrypt-n", "1024"]
STUB = ["--node-module", "tests.rongxin.stub_node"]


def _flat(text: str) -> str:
    """``text`` with Rich's line wrapping undone."""
    return " ".join(text.split())


def _free_base_port(nodes: int) -> int:
    return free_base_port(nodes)


def _init(out: Path, *args: str, password: str = PASSWORD) -> Result:
    env = {"RONGXIN_KEY_PASSWORD": password}
    return runner.invoke(app, ["chain", "init", "--out", str(out), *FAST, *args], env=env)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chain") / "net"
    result = _init(
        out, "--nodes", "4", "--observers", "1", "--chain-id", "rx-ops", "--block-interval-ms", "500"
    )
    assert result.exit_code == 0, result.output
    return out


def test_init_writes_a_loadable_network(net: Path) -> None:
    names = ["node-0", "node-1", "node-2", "node-3", "observer-0"]
    assert sorted(p.name for p in net.iterdir() if (p / "node.toml").exists()) == names
    genesis = None
    for i, name in enumerate(names):
        cfg = load_config(net / name / "node.toml")
        genesis = load_genesis(cfg)
        assert cfg.node.name == name and cfg.node.genesis == net / "genesis.cbor"
        assert str(cfg.p2p.listen[0]) == f"127.0.0.1:{26656 + 10 * i}"
        assert str(cfg.api.listen) == f"127.0.0.1:{26657 + 10 * i}"
        others = {f"127.0.0.1:{26656 + 10 * j}" for j in range(5) if j != i}
        assert {str(p) for p in cfg.p2p.persistent_peers} == others
        _, cert = load_identity(cfg, genesis)  # the key opens with node.pass and matches
        assert cert.subject == name
        assert cert.roles == ((Role.CONSENSUS_NODE,) if name.startswith("node") else (Role.OBSERVER_NODE,))
        for secret in ("node.key", "node.pass"):
            assert stat.S_IMODE((net / name / secret).stat().st_mode) == 0o600
        assert (net / name / "data").is_dir()
    assert genesis is not None
    assert genesis.chain_id == "rx-ops" and genesis.params.block_interval_ms == 500
    genesis.validate()  # every certificate verifies against the root
    consensus = [certificate_from_json((net / f"node-{i}" / "node.cert.json").read_text()) for i in range(4)]
    observer = certificate_from_json((net / "observer-0" / "node.cert.json").read_text())
    assert genesis.validators() == sorted(c.cert_id for c in consensus)
    assert observer in genesis.certificates and observer.cert_id not in genesis.validators()


def test_supervisor_keys_open_with_the_password(net: Path) -> None:
    genesis = load_genesis(load_config(net / "node-0" / "node.toml"))
    root = load_private_key(net / "supervisor" / "root.key", PASSWORD)
    assert root.public_key.to_bytes() == genesis.root_public_key
    supervisor = load_private_key(net / "supervisor" / "supervisor.key", PASSWORD)
    cert = certificate_from_json((net / "supervisor" / "supervisor.cert.json").read_text())
    assert cert.public_key == supervisor.public_key.to_bytes() and cert.roles == (Role.SUPERVISOR,)
    assert cert in genesis.certificates
    cert.verify(genesis.root_key())
    assert stat.S_IMODE((net / "supervisor").stat().st_mode) == 0o700


def test_replicas_start_from_the_generated_files(net: Path, tmp_path: Path) -> None:
    cfg = load_config(net / "node-0" / "node.toml")
    genesis = load_genesis(cfg)
    key, _ = load_identity(cfg, genesis)
    voter = Replica(genesis, tmp_path / "voter.db", key)
    obs_cfg = load_config(net / "observer-0" / "node.toml")
    observer = Replica(genesis, tmp_path / "observer.db", load_identity(obs_cfg, genesis)[0])
    try:
        assert not voter.node_id.startswith("observer-")
        assert observer.node_id.startswith("observer-")
    finally:
        voter.close()
        observer.close()


def test_network_summary_and_operator_files(net: Path) -> None:
    summary = json.loads((net / "network.json").read_text())
    assert summary["chain_id"] == "rx-ops" and summary["validators"] == 4
    assert [n["role"] for n in summary["nodes"]] == ["consensus"] * 4 + ["observer"]
    assert "key" not in json.dumps(summary).replace("public", "")
    for script in ["start-all.sh", "stop-all.sh", "node-0/start.sh", "node-0/stop.sh"]:
        assert os.access(net / script, os.X_OK)
        subprocess.run(["sh", "-n", str(net / script)], check=True)
    start = (net / "node-0" / "start.sh").read_text()
    assert "-m rongxin node run --config" in start and "data/node.pid" in start
    unit = (net / "rongxin-node@.service").read_text()
    assert "ExecStart=" in unit and "%i/node.toml" in unit and "[Install]" in unit
    prom = (net / "monitoring" / "prometheus.yml").read_text()
    assert prom.count("targets:") == 5 and "'127.0.0.1:26697'" in prom and "alerts.yml" in prom
    alerts = (net / "monitoring" / "alerts.yml").read_text()
    for name in ("RongxinNodeDown", "RongxinHeightStalled", "RongxinPeersBelowQuorum", "RongxinMempoolFull"):
        assert f"alert: {name}" in alerts
    assert "RongxinSyncLag" in alerts
    assert "rate(rongxin_crypto_tx_signature_check_cpu_seconds_total{" in alerts
    assert 'role="consensus"} < 2' in alerts  # quorum of 4 is 3: two peers besides itself


def _system_yaml(path: Path) -> object:
    """Parse YAML with the system Python's PyYAML (Debian python3-yaml), if present."""
    python = shutil.which("python3", path="/usr/bin")
    if python is None:
        pytest.skip("no system python3")
    code = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"
    done = subprocess.run([python, "-c", code, str(path)], capture_output=True, text=True)
    if "No module named 'yaml'" in done.stderr:
        pytest.skip("PyYAML is not installed for the system python3")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_yaml_files_parse(net: Path) -> None:
    prom = _system_yaml(net / "monitoring" / "prometheus.yml")
    assert isinstance(prom, dict)
    targets = [c["targets"][0] for c in prom["scrape_configs"][0]["static_configs"]]
    assert targets == [f"127.0.0.1:{26657 + 10 * i}" for i in range(5)]
    alerts = _system_yaml(net / "monitoring" / "alerts.yml")
    assert isinstance(alerts, dict)
    rules = alerts["groups"][0]["rules"]
    assert len(rules) == 7 and rules[0]["expr"] == 'up{job="rongxin"} == 0'
    saturated = next(r for r in rules if r["alert"] == "RongxinSignatureCheckingSaturated")
    assert saturated["expr"].endswith("[5m]) > 0.9") and "90%" in saturated["annotations"]["description"]
    assert all({"alert", "expr", "for", "labels", "annotations"} <= set(r) for r in rules)


def test_systemd_unit_verifies(net: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze")
    unit = (net / "rongxin-node@.service").read_text().replace("/opt/rongxin/venv/bin/python", sys.executable)
    (tmp_path / "rongxin-node@.service").write_text(unit)
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / "rongxin-node@.service")], capture_output=True, text=True
    )
    problems = [line for line in done.stderr.splitlines() if "rongxin-node@" in line]
    assert not problems, done.stderr


def test_init_with_hosts_and_a_shared_password(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("shared password 1\n")
    out = tmp_path / "net"
    result = runner.invoke(
        app,
        [
            "chain", "init", "--out", str(out), "--nodes", "1", "--observers", "1", *FAST,
            "--hosts", "10.0.0.1,::1", "--base-port", "30000", "--password-file", str(pw),
            "--organizations", "Org A, Org B", "--empty-blocks",
        ],
        env={"RONGXIN_KEY_PASSWORD": ""},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "tolerate no faulty node" in _flat(result.stderr)
    cfg = load_config(out / "observer-0" / "node.toml")
    assert str(cfg.p2p.listen[0]) == "[::1]:30010" and str(cfg.api.listen) == "[::1]:30011"
    assert [str(p) for p in cfg.p2p.persistent_peers] == ["10.0.0.1:30000"]
    assert cfg.node.key_password_file is None and not (out / "observer-0" / "node.pass").exists()
    assert "key_password_file" not in (out / "observer-0" / "node.toml").read_text()
    assert load_private_key(cfg.node.key_file, "shared password 1")
    assert load_private_key(out / "supervisor" / "root.key", "shared password 1")
    g = load_genesis(cfg)
    assert g.params.empty_blocks is True
    assert sorted(c.organization for c in g.certificates if c.subject != "supervisor") == ["Org A", "Org B"]
    alerts = (out / "monitoring" / "alerts.yml").read_text()
    assert "and rongxin_mempool_txs" not in alerts  # heartbeat blocks: the height must always grow


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "net"
    assert _init(out, "--nodes", "1").exit_code == 0
    first = (out / "genesis.cbor").read_bytes()
    again = _init(out, "--nodes", "1")
    assert again.exit_code == 1 and "pass --force" in _flat(again.stderr)
    assert (out / "genesis.cbor").read_bytes() == first
    forced = _init(out, "--nodes", "2", "--force")
    assert forced.exit_code == 0, forced.output
    assert (out / "genesis.cbor").read_bytes() != first and (out / "node-1").is_dir()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".net.")]  # no work directory left
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _init(empty, "--nodes", "1").exit_code == 0


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["--nodes", "0"], PASSWORD, "at least one consensus node"),
        (["--observers", "-1"], PASSWORD, "cannot be negative"),
        (["--base-port", "65530"], PASSWORD, "do not fit in 1-65535"),
        (["--hosts", "10.0.0.1,300.1.1.1"], PASSWORD, "--hosts: '300.1.1.1' is not a valid IPv4"),
        (["--round-timeout-ms", "0"], PASSWORD, "round_timeout_ms must be positive"),
        ([], "short", "at least 8 characters"),
    ],
)
def test_init_refuses_bad_arguments(tmp_path: Path, args: list[str], password: str, message: str) -> None:
    result = _init(tmp_path / "net", *args, password=password)
    assert result.exit_code == 1, result.output
    assert message in _flat(result.stderr)
    assert not (tmp_path / "net").exists()


# --------------------------------------------------------------------------- up / down / status
@pytest.fixture
def live_net(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    out = tmp_path / "net"
    base = _free_base_port(3)
    result = _init(out, "--nodes", "2", "--observers", "1", "--base-port", str(base))
    assert result.exit_code == 0, result.output
    yield out
    runner.invoke(app, ["chain", "down", str(out), "--timeout", "2"])


def _status(net: Path) -> list[dict[str, object]]:
    result = runner.invoke(app, ["chain", "status", str(net), "--json"])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


def _wait_online(net: Path, expected: int, deadline_s: float = 20.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + deadline_s
    while True:
        statuses = _status(net)
        if sum(bool(s["online"]) for s in statuses) == expected or time.monotonic() > deadline:
            return statuses
        time.sleep(0.1)


def test_up_status_down(live_net: Path) -> None:
    before = _status(live_net)
    assert [s["online"] for s in before] == [False] * 3 and all(s["pid"] is None for s in before)

    up = runner.invoke(app, ["chain", "up", str(live_net), *STUB, "--grace-s", "0.3"])
    assert up.exit_code == 0, up.output
    assert up.stdout.count("started") == 3
    statuses = _wait_online(live_net, 3)
    assert [s["name"] for s in statuses] == ["node-0", "node-1", "observer-0"]
    assert [s["height"] for s in statuses] == [10, 11, 10]
    assert [s["lag"] for s in statuses] == [1, 0, 1]
    assert [s["role"] for s in statuses] == ["consensus", "consensus", "observer"]
    assert all(s["alive"] and s["peers"] == 3 for s in statuses)
    pids = [int(str(s["pid"])) for s in statuses]

    again = runner.invoke(app, ["chain", "up", str(live_net), *STUB, "--node", "node-0"])
    assert again.exit_code == 1 and "already running" in _flat(again.stderr)

    table = runner.invoke(app, ["chain", "status", str(live_net)])
    assert table.exit_code == 0 and "observer-0" in table.stdout and "yes" in table.stdout

    one = runner.invoke(app, ["chain", "down", str(live_net), "--node", "node-1"])
    assert one.exit_code == 0 and "node-1: stopped" in one.stdout
    statuses = _status(live_net)
    assert [s["online"] for s in statuses] == [True, False, True]
    assert statuses[1]["pid"] is None and statuses[1]["height"] is None
    assert [s["lag"] for s in statuses] == [0, None, 0]

    down = runner.invoke(app, ["chain", "down", str(live_net)])
    assert down.exit_code == 0
    assert "node-0: stopped" in down.stdout and "node-1: not running" in down.stdout
    for pid in pids:
        assert not procs.process_alive(pid)
    assert not list(live_net.glob("*/data/node.pid"))
    assert "serving /status" in (live_net / "node-0" / "data" / "node.log").read_text()


def test_up_reports_a_node_that_dies_and_down_kills_a_stuck_one(
    live_net: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_NODE_FAIL", "node-1")
    monkeypatch.setenv("STUB_NODE_IGNORE_TERM", "observer-0")
    up = runner.invoke(app, ["chain", "up", str(live_net), *STUB, "--grace-s", "3"])
    assert up.exit_code == 1
    assert "node-1 exited at start" in _flat(up.stderr) and "failing at start as asked" in _flat(up.stderr)
    assert not (live_net / "node-1" / "data" / "node.pid").exists()
    _wait_online(live_net, 2)
    down = runner.invoke(app, ["chain", "down", str(live_net), "--timeout", "1.5"])
    assert down.stdout.splitlines() == ["node-0: stopped", "node-1: not running", "observer-0: killed"]


def test_stale_and_foreign_pid_files(live_net: Path) -> None:
    cfg = load_config(live_net / "node-0" / "node.toml")
    cfg.node.data_dir.mkdir(exist_ok=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        cfg.pid_file.write_text(f"{sleeper.pid}\n")  # alive, but not this node: never signalled
        down = runner.invoke(app, ["chain", "down", str(live_net), "--node", "node-0"])
        assert "node-0: stale pid file" in down.stdout
        assert sleeper.poll() is None and not cfg.pid_file.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    cfg.pid_file.write_text(f"{sleeper.pid}\n")  # dead: a fresh start is allowed
    up = runner.invoke(app, ["chain", "up", str(live_net), *STUB, "--node", "node-0", "--grace-s", "0.2"])
    assert up.exit_code == 0, up.output
    assert procs.running_pid(cfg) not in (None, sleeper.pid)


def test_unknown_node_and_missing_directory(live_net: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["chain", "status", str(live_net), "--node", "node-9"])
    assert result.exit_code == 1 and "no node named node-9" in _flat(result.stderr)
    result = runner.invoke(app, ["chain", "up", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "is not a directory" in _flat(result.stderr)


def test_start_and_stop_scripts(live_net: Path, tmp_path: Path) -> None:
    fake_python = tmp_path / "python"
    fake_python.write_text(f'#!/bin/sh\nshift 2\nexec {sys.executable} -m tests.rongxin.stub_node "$@"\n')
    fake_python.chmod(0o755)
    env = {**os.environ, "RONGXIN_PYTHON": str(fake_python)}
    node = live_net / "observer-0"
    started = subprocess.run([str(node / "start.sh")], env=env, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    assert _wait_online(live_net, 1)[2]["online"]
    twice = subprocess.run([str(node / "start.sh")], env=env, capture_output=True, text=True)
    assert twice.returncode == 1 and "already running" in twice.stderr
    pid = int((node / "data" / "node.pid").read_text())
    stopped = subprocess.run([str(node / "stop.sh")], capture_output=True, text=True)
    assert stopped.returncode == 0 and "observer-0 stopped" in stopped.stdout
    deadline = time.monotonic() + 5
    while procs.process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not procs.process_alive(pid) and not (node / "data" / "node.pid").exists()
    assert subprocess.run([str(node / "stop.sh")], capture_output=True).returncode == 0


def test_python_dash_m_rongxin_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rongxin", "chain", "--help"], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0 and "init" in done.stdout and "status" in done.stdout
