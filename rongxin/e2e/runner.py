"""Run a manifest against real node processes and check the outcome black-box.

:func:`run_manifest` (or :class:`Runner`) does, in order:

1. **setup** — ``create_network`` (what ``rongxin chain init`` runs) in a work directory,
   on a free block of loopback ports (IPv4, or ``[::1]`` for ``ip = "v6"``); each node's
   ``persistent_peers`` rewritten to point at its own proxies (:mod:`rongxin.e2e.proxy`),
   one per directed link; nodes started as ``python -m rongxin node run``; the load
   clients admitted as members (``member.add``) and their transactions signed;
2. **run** — the load clients (:mod:`rongxin.e2e.load`), the height monitor
   (:mod:`rongxin.e2e.monitor`) and the perturbations of the schedule, for ``duration_s``;
3. **drain** — the clients stop sending new transactions and re-send what is stuck
   until all of it is committed (at most ``drain_s``); every node must then reach the
   network's height (at most ``catch_up_s``);
4. **check** — over the API only (:mod:`rongxin.e2e.checks`): identical block hashes at
   every height on every node, every acknowledged transaction on every node at one
   height, exactly one of each conflicting pair, everything sent committed, progress
   within ``progress_bound_s`` after each perturbation, every perturbed node caught up;
5. **teardown** — SIGTERM to every node (a node that needs SIGKILL is a problem).

The :class:`Report` lists the problems (none: the run passed), heights, throughput, the
longest stall and each perturbation's recovery times; :meth:`Report.summary` prints it.

Examples
--------
``python -m rongxin.e2e tests/e2e/manifests/kill.toml`` (see ``tests/e2e/test_e2e.py``).
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from chain.client import NodeClient
from chain.crypto import PrivateKey
from chain.crypto.keyfile import load_private_key
from chain.crypto.sealed import MIN_SCRYPT_N
from chain.node.config import HostPort, NodeConfig, dump_config, load_config
from chain.node.identity import certificate_from_json
from chain.types import Genesis, Role
from rongxin.e2e import checks
from rongxin.e2e.load import Acks, LoadClient, Member, SignedTx, make_members, presign, register_members
from rongxin.e2e.manifest import Manifest, Step
from rongxin.e2e.monitor import HeightMonitor
from rongxin.e2e.nodes import SYNC_MODES, NodeProcess, NodeProcessError
from rongxin.e2e.proxy import ProxyNet
from rongxin.errors import RongxinError
from rongxin.ops.admission import certify_node, promote_node, write_node_dir
from rongxin.ops.build import NetworkSpec, create_network
from rongxin.ops.layout import PORT_STRIDE

PORT_RANGE = (20000, 32000)
"""Port blocks are drawn below Linux's ephemeral range (32768+), so an outgoing
connection never holds a port a node must bind again after a restart."""
STOP_TIMEOUT_S = 15.0
SILENCE_WARNING_S = 5.0
"""A node's API silent this long, with no perturbation aimed at it, is reported."""


class E2EError(RongxinError):
    """The run could not be set up (no free ports, a node that does not start)."""


def ipv6_loopback() -> str | None:
    """Why IPv6 loopback cannot be used here, or ``None`` when ``[::1]`` can be bound."""
    if not socket.has_ipv6:
        return "this Python has no IPv6 support (socket.has_ipv6 is false)"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        return f"cannot bind [::1]: {exc.strerror}"
    return None


_reserved: set[int] = set()
_reserved_lock = threading.Lock()


def free_port_block(host: str, size: int, rng: random.Random | None = None, attempts: int = 200) -> int:
    """The first port of ``size`` consecutive ports on ``host`` that are all free now and
    not handed to another run of this process (see :func:`release_port_block`)."""
    rng = rng or random.Random()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(attempts):
        base = rng.randrange(PORT_RANGE[0], PORT_RANGE[1] - size)
        block = set(range(base, base + size))
        with _reserved_lock:
            if block & _reserved:
                continue
            try:
                for port in sorted(block):
                    with socket.socket(family, socket.SOCK_STREAM) as s:
                        s.bind((host, port))
            except OSError:
                continue
            _reserved.update(block)
        return base
    raise E2EError(f"no block of {size} free ports on {host} in {PORT_RANGE}")


def release_port_block(base: int, size: int) -> None:
    """Hand a block from :func:`free_port_block` back (its run is over)."""
    with _reserved_lock:
        _reserved.difference_update(range(base, base + size))


# --------------------------------------------------------------------------- report
@dataclass
class StepRecord:
    """What happened when a step ran, and how the network recovered."""

    step: Step
    targets: tuple[str, ...] = ()
    started: float = 0.0
    ended: float = 0.0
    """When the fault was over (node started again, resumed, links healed)."""
    progress_s: float | None = None
    """From :attr:`ended` to the network's next block."""
    caught_up_s: dict[str, float | None] = field(default_factory=dict)
    """From :attr:`ended` until each target reached the network's height at that time."""
    note: str = ""

    def describe(self) -> str:
        """One report line."""
        what = self.step.describe()
        if self.targets and self.step.node in ("leader", "random"):
            what += f" (→ {', '.join(self.targets)})"
        progress = "-" if self.progress_s is None else f"{self.progress_s:.1f} s"
        caught = ", ".join(f"{n} {'-' if s is None else f'{s:.1f} s'}" for n, s in self.caught_up_s.items())
        line = f"{self.started:6.1f}-{self.ended:6.1f} s  {what}; next block after {progress}"
        if caught:
            line += f"; caught up: {caught}"
        return line + (f"; {self.note}" if self.note else "")


def struck_again(
    records: Sequence[StepRecord], rec: StepRecord, name: str, until: float
) -> StepRecord | None:
    """The first step after ``rec`` that struck ``name`` again before ``until`` (when the
    node caught up after ``rec``, or the end of its catch-up window), if any.

    A node killed again while it restarts, or before it has caught up, cannot be held to
    catching up within the window of the first kill; the later step's own check holds it to
    reaching that step's (higher) height within the window from that step's end.

    Examples
    --------
    >>> kill = Step(2.0, "kill", node="random", duration_s=1.5)
    >>> first = StepRecord(kill, ("node-3",), 2.0, 3.5)
    >>> second = StepRecord(kill, ("node-3",), 6.0, 7.5)
    >>> struck_again([first, second], first, "node-3", 10.0) is second
    True
    >>> struck_again([first, second], first, "node-3", 5.0) is None  # caught up before it
    True
    >>> struck_again([first, second], first, "node-1", 10.0) is None
    True
    """
    later = False
    for other in records:
        if other is rec:
            later = True
        elif later and other.started < until and name in other.targets:
            return other
    return None


@dataclass
class Report:
    """The outcome of one run."""

    name: str
    directory: Path
    problems: list[str] = field(default_factory=list)
    heights: dict[str, int] = field(default_factory=dict)
    checked_height: int = 0
    steps: list[StepRecord] = field(default_factory=list)
    load: dict[str, int] = field(default_factory=dict)
    tps: float = 0.0
    max_stall_s: float = 0.0
    max_stall_at: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    log_errors: dict[str, list[str]] = field(default_factory=dict)
    refusals: dict[str, int] = field(default_factory=dict)
    """The nodes' reasons for refusing load transactions, counted."""
    silences: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Per node: the longest time its API did not answer /status, and when it began."""
    warnings: list[str] = field(default_factory=list)
    """Findings that fail no check (e.g. an API that stopped answering, unprovoked)."""
    epochs: int = 0
    """The epoch an honest node is in at the end (runs with Byzantine nodes)."""
    bases: dict[str, int] = field(default_factory=dict)
    """Nodes restored from a snapshot: the height their kept blocks start after."""

    @property
    def passed(self) -> bool:
        """Whether no check found a problem."""
        return not self.problems

    def summary(self) -> str:
        """The report as text."""
        lines = [
            f"e2e {self.name}: {'PASSED' if self.passed else 'FAILED'}  ({self.directory})",
            f"  heights {self.heights}; blocks compared on every node: 1..{self.checked_height}"
            + "".join(f" ({n} from {b}, restored from a snapshot)" for n, b in self.bases.items()),
            f"  load {self.load}; {self.tps:.1f} tx/s committed during the load",
            *(f"  refused {n}×: {reason}" for reason, n in self.refusals.items()),
            f"  longest stall {self.max_stall_s:.1f} s (from {self.max_stall_at:.1f} s)",
            "  timings " + ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items()),
        ]
        lines += ["  " + s.describe() for s in self.steps]
        if self.silences:
            lines.append(
                "  longest API silence: "
                + ", ".join(f"{n} {gap:.1f} s (from {at:.1f} s)" for n, (gap, at) in self.silences.items())
            )
        for name, errors in self.log_errors.items():
            lines.append(f"  {name} logged {len(errors)} error(s), first: {errors[0][:300]}")
        lines += [f"  WARNING: {w}" for w in self.warnings]
        lines += [f"  PROBLEM: {p}" for p in self.problems]
        return "\n".join(lines)


# --------------------------------------------------------------------------- the runner
@dataclass
class _Network:
    directory: Path
    genesis: Genesis
    password: str
    host: str
    base: int
    configs: dict[str, NodeConfig]
    ids: dict[str, str]
    """Node name → node id (certificate id, hex)."""
    supervisor: Member
    root_key: PrivateKey
    joiners: dict[str, Member] = field(default_factory=dict)
    """Nodes outside the genesis: their keys and certificates (registered when they start)."""


class Runner:
    """Run ``manifest`` in ``workdir`` (a fresh temporary directory when ``None``).

    Parameters
    ----------
    manifest : Manifest
        What to run.
    workdir : Path, optional
        Where the network directory and the logs go (kept after the run).
    log : callable
        Progress messages (default: discarded).
    """

    def __init__(
        self, manifest: Manifest, workdir: Path | None = None, log: Callable[[str], None] = lambda s: None
    ) -> None:
        self.m = manifest
        self.workdir = (
            Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix=f"e2e-{manifest.name}-"))
        )
        self.log = log
        self.rng = random.Random(manifest.seed)
        self.report = Report(manifest.name, self.workdir)
        self.nodes: dict[str, NodeProcess] = {}
        self.proxies = ProxyNet()
        self.acks = Acks()
        self.clients: list[LoadClient] = []
        self.sent: dict[str, list[SignedTx]] = {}
        self.pairs: list[tuple[SignedTx, SignedTx]] = []
        self.t0 = time.monotonic()
        self.monitor = HeightMonitor({}, self.clock)
        self.abort = threading.Event()
        self.net: _Network | None = None
        self._load_window = (0, 0)
        self.promoted: dict[str, int] = {}
        """Joiner → the height of its promotion (it must vote in blocks after it)."""

    def clock(self) -> float:
        """Seconds since the run (the load) started."""
        return time.monotonic() - self.t0

    def problem(self, text: str) -> None:
        """Record a failed check."""
        self.report.problems.append(text)
        self.log(f"PROBLEM: {text}")

    # ------------------------------------------------------------------ setup
    def _build(self) -> _Network:
        m = self.m
        host = "::1" if m.ip == "v6" else "127.0.0.1"
        names = m.node_names()
        base = free_port_block(host, PORT_STRIDE * len(names))  # not seeded: runs may overlap
        password = secrets.token_urlsafe(16)
        spec = NetworkSpec(
            consensus=m.chain.nodes,
            observers=m.chain.observers,
            hosts=(host,),
            base_port=base,
            chain_id=f"e2e-{m.name}"[:60],
            block_interval_ms=m.chain.block_interval_ms,
            round_timeout_ms=m.chain.round_timeout_ms,
            empty_blocks=m.chain.empty_blocks,
        )
        summary = create_network(
            self.workdir / "net", spec, password, node_password=password, scrypt_n=MIN_SCRYPT_N
        )
        d = summary.directory
        configs: dict[str, NodeConfig] = {}
        for i, plan in enumerate(summary.nodes):
            cfg = load_config(d / plan.name / "node.toml")
            others = [o for o in summary.nodes if o is not plan]
            proxied = []
            for slot, other in enumerate(others):
                listen = (host, base + PORT_STRIDE * i + 2 + slot)
                self.proxies.add_link(plan.name, other.name, listen, (host, other.p2p.port))
                proxied.append(HostPort(host, listen[1]))
            cfg = replace(cfg, p2p=replace(cfg.p2p, persistent_peers=tuple(proxied)))
            cfg.path.write_text(
                dump_config(cfg, header=f"{plan.name}: peers through the e2e runner's proxies")
            )
            configs[plan.name] = load_config(cfg.path)
        sup = d / "supervisor"
        supervisor = Member(
            "supervisor",
            load_private_key(sup / "supervisor.key", password),
            certificate_from_json((sup / "supervisor.cert.json").read_text()),
        )
        ids = {name: cert.cert_id.hex() for name, cert in summary.certificates.items()}
        root = load_private_key(sup / "root.key", password)
        joiners: dict[str, Member] = {}
        for k, name in enumerate(m.joiner_names()):
            i = len(summary.nodes) + k
            key, cert = certify_node(root, name, Role.CONSENSUS_NODE)
            proxied = []
            for slot, other in enumerate(summary.nodes):
                listen = (host, base + PORT_STRIDE * i + 2 + slot)
                self.proxies.add_link(name, other.name, listen, (host, other.p2p.port))
                proxied.append(HostPort(host, listen[1]))
            configs[name] = write_node_dir(
                d,
                name,
                key,
                cert,
                password=password,
                listen=HostPort(host, base + PORT_STRIDE * i),
                api=HostPort(host, base + PORT_STRIDE * i + 1),
                peers=proxied,
                scrypt_n=MIN_SCRYPT_N,
            )
            joiners[name] = Member(name, key, cert)
            ids[name] = cert.cert_id.hex()
        if m.chain.snapshot_interval:
            for name, cfg in configs.items():
                cfg = replace(
                    cfg, state_sync=replace(cfg.state_sync, snapshot_interval=m.chain.snapshot_interval)
                )
                cfg.path.write_text(dump_config(cfg, header=f"{name}: e2e snapshot interval"))
                configs[name] = load_config(cfg.path)
        return _Network(d, summary.genesis, password, host, base, configs, ids, supervisor, root, joiners)

    def _setup(self) -> None:
        self.proxies.start()
        self.net = net = self._build()
        self.log(f"network of {len(net.configs)} nodes in {net.directory} (ports {net.base}+)")
        for name, cfg in net.configs.items():
            spec = self.m.node(name)
            if spec.sync not in SYNC_MODES:
                raise E2EError(
                    f"{name}: sync mode {spec.sync!r} is not available (registered: "
                    f"{', '.join(sorted(SYNC_MODES))}); register it in rongxin.e2e.nodes.SYNC_MODES"
                )
            node = NodeProcess(cfg, net.password, spec.behaviour)
            node.clock_offset_ms = spec.clock_offset_ms
            self.nodes[name] = node
        for step in self.m.schedule():
            if step.kind == "clock_skew" and step.at_s == 0 and step.node is not None:
                self.nodes[step.node].clock_offset_ms = step.offset_ms
        with httpx.Client(trust_env=False) as http:
            early = [n for n in self.nodes.values() if self.m.node(n.name).start_at_s == 0]
            for node in early:
                SYNC_MODES[self.m.node(node.name).sync](node.config)
                node.start()
            for node in early:
                node.wait_ready(http)
        self.log(f"{len(early)} nodes answer /status")
        self.monitor = HeightMonitor(self.nodes, self.clock)
        self._prepare_load()

    def _urls(self, index: int) -> list[str]:
        names = self.m.consensus_names()
        first = index % len(names)
        return [self.nodes[n].api_url for n in names[first:] + names[:first]]

    def _prepare_load(self) -> None:
        assert self.net is not None
        net, load = self.net, self.m.load
        members = make_members(
            net.root_key, load.clients + (1 if load.conflicts else 0), f"e2e-{self.m.name}"
        )
        first = self.nodes[self.m.consensus_names()[0]]
        with NodeClient(
            first.api_url, net.supervisor.key, net.supervisor.cert, net.genesis, retries=5
        ) as sup:
            height = register_members(sup, members)
        self.log(f"{len(members)} load members admitted by height {height}")
        per_client = load.rate / (load.clients + (2 if load.conflicts else 0))
        count = math.ceil(per_client * self.m.duration_s) + 5
        chain_id = net.genesis.chain_id
        for i, member in enumerate(members[: load.clients]):
            txs = presign(member, count, chain_id, self.m.name)
            self.sent[member.name] = txs
            self.clients.append(self._client(member, txs, i, per_client))
        if load.conflicts:
            member = members[-1]
            a = presign(member, count, chain_id, f"{self.m.name}/a")
            b = presign(member, count, chain_id, f"{self.m.name}/b")
            self.pairs = list(zip(a, b, strict=True))
            self.clients.append(self._client(member, a, load.clients, per_client, "conflict-a"))
            self.clients.append(self._client(member, b, load.clients + 1, per_client, "conflict-b"))

    def _client(
        self, member: Member, txs: list[SignedTx], index: int, rate: float, name: str = ""
    ) -> LoadClient:
        assert self.net is not None
        return LoadClient(
            member,
            txs,
            self._urls(index),
            self.net.genesis,
            rate,
            self.m.load.commit_every,
            self.acks,
            name=name or member.name,
        )

    # ------------------------------------------------------------------ perturbations
    def _resolve(self, target: str | None) -> str:
        assert target is not None and self.net is not None
        if target == "random":
            return self.rng.choice(self.m.consensus_names())
        if target != "leader":
            return target
        with httpx.Client(trust_env=False) as http:
            statuses = [
                s for n in self.m.consensus_names() if (s := self.nodes[n].status(http, 1.0)) is not None
            ]
        if not statuses:
            raise E2EError("no consensus node answers /status: cannot tell the leader")
        top = max(statuses, key=lambda s: (int(s.get("height", 0)), int(s.get("round", 0))))
        validators = sorted(cert_id.hex() for cert_id in self.net.genesis.validators())
        leader = validators[int(top["round"]) % len(validators)]  # the core's round robin
        return next(name for name, nid in self.net.ids.items() if nid == leader)

    def _sleep(self, seconds: float) -> None:
        self.abort.wait(max(0.0, seconds))

    def _apply(self, step: Step, rec: StepRecord) -> None:
        if step.kind == "start":
            assert step.node is not None and self.net is not None
            rec.targets = (step.node,)
            joiner = self.net.joiners.get(step.node)
            if joiner is not None:
                height = self._supervisor_send("member.add", {"certificate": joiner.cert.to_dict()})
                rec.note = f"registered at height {height}"
            SYNC_MODES[self.m.node(step.node).sync](self.nodes[step.node].config)
            self.nodes[step.node].start()
            if joiner is not None and self.m.node(step.node).promote:
                self._promote(joiner, rec)
        elif step.kind == "kill":
            name = self._resolve(step.node)
            rec.targets = (name,)
            self.nodes[name].kill()
            self._sleep(step.duration_s)
            self.nodes[name].start()
        elif step.kind == "pause":
            name = self._resolve(step.node)
            rec.targets = (name,)
            self.nodes[name].pause()
            self._sleep(step.duration_s)
            self.nodes[name].resume()
        elif step.kind == "partition":
            rec.note = f"{len(self.proxies.partition(step.groups))} links cut"
            self._sleep(step.duration_s)
            self.proxies.heal()
        elif step.kind == "restart":
            rec.targets = step.nodes
            self._restart_each(step, rec)
        elif step.kind == "clock_skew":
            name = self._resolve(step.node)
            rec.targets = (name,)
            node = self.nodes[name]
            node.clock_offset_ms = step.offset_ms
            if step.at_s > 0 and node.alive():
                self._stop_cleanly(node)
                node.start()

    def _live_consensus_url(self) -> str:
        with httpx.Client(trust_env=False) as http:
            for name in self.m.consensus_names():
                if self.nodes[name].status(http, 1.0) is not None:
                    return self.nodes[name].api_url
        raise E2EError("no consensus node answers /status")

    def _supervisor_send(self, kind: str, payload: dict[str, Any]) -> int:
        """Send a supervisor transaction through a live consensus node; its height."""
        assert self.net is not None
        sup = self.net.supervisor
        with NodeClient(self._live_consensus_url(), sup.key, sup.cert, self.net.genesis, retries=3) as c:
            return int(c.send(kind, payload).get("height", 0))

    def _promote(self, joiner: Member, rec: StepRecord) -> None:
        """Wait for the joiner to catch up, then promote it and wait until it votes."""
        assert self.net is not None
        node = self.nodes[joiner.name]
        with httpx.Client(trust_env=False) as http:
            ready = node.wait_ready(http, 60.0)
            deadline = time.monotonic() + self.m.catch_up_s
            while (self.monitor.height(joiner.name) or 0) < self.monitor.best() - 1:
                if time.monotonic() > deadline:
                    raise E2EError(
                        f"{joiner.name} did not catch up within {self.m.catch_up_s:g} s to be promoted"
                    )
                self._sleep(0.2)
            sup = self.net.supervisor
            with (
                NodeClient(node.api_url, joiner.key, joiner.cert, self.net.genesis, retries=3) as own,
                NodeClient(self._live_consensus_url(), sup.key, sup.cert, self.net.genesis, retries=3) as c,
            ):
                height = int(promote_node(own, c, joiner.cert).get("height", 0))
            deadline = time.monotonic() + self.m.catch_up_s
            while not (node.status(http) or {}).get("voting"):
                if time.monotonic() > deadline:
                    raise E2EError(
                        f"{joiner.name} promoted at height {height} but not voting after "
                        f"{self.m.catch_up_s:g} s"
                    )
                self._sleep(0.2)
        self.promoted[joiner.name] = height
        base = int(ready.get("base_height", 0))
        rec.note += f"; {'restored a snapshot of height ' + str(base) if base else 'synced block by block'}"
        rec.note += f"; promoted at height {height}"

    def _stop_cleanly(self, node: NodeProcess) -> None:
        code = node.terminate(STOP_TIMEOUT_S)
        if code is None:
            self.problem(f"{node.name} did not exit within {STOP_TIMEOUT_S:g} s of SIGTERM (killed)")
        elif code != 0:
            self.problem(f"{node.name} exited with status {code} on SIGTERM:\n{node.log_tail(4)}")

    def _restart_each(self, step: Step, rec: StepRecord) -> None:
        with httpx.Client(trust_env=False) as http:
            for i, name in enumerate(step.nodes):
                node = self.nodes[name]
                target = self.monitor.best()
                self._stop_cleanly(node)
                node.start()
                try:
                    node.wait_ready(http, 30.0)
                except NodeProcessError as exc:
                    self.problem(str(exc))
                    continue
                deadline = time.monotonic() + self.m.catch_up_s
                while (self.monitor.height(name) or 0) < target and time.monotonic() < deadline:
                    self._sleep(0.1)
                if i + 1 < len(step.nodes):
                    self._sleep(step.duration_s)

    def _steps(self) -> list[Step]:
        steps = [s for s in self.m.schedule() if not (s.kind == "clock_skew" and s.at_s == 0)]
        for name in self.m.node_names():
            at = self.m.node(name).start_at_s
            if at > 0:
                steps.append(Step(at, "start", node=name, source=-1))
        return sorted(steps, key=lambda s: (s.at_s, s.source))

    def _perturb(self, records: list[StepRecord]) -> None:
        for step in self._steps():
            self._sleep(step.at_s - self.clock())
            if self.abort.is_set():
                return
            rec = StepRecord(step, started=self.clock())
            self.log(f"{rec.started:6.1f} s  {step.describe()}")
            try:
                self._apply(step, rec)
            except Exception as exc:  # a failed step is a finding, the run goes on
                self.problem(f"step '{step.describe()}' failed: {exc}")
            rec.ended = self.clock()
            records.append(rec)

    # ------------------------------------------------------------------ run
    def run(self) -> Report:
        """Set up, run, drain, check, tear down; the report (problems listed, none raised)."""
        timings = self.report.timings
        started = time.monotonic()
        try:
            self._setup()
            timings["setup"] = time.monotonic() - started
            self._run_load()
            self._check()
        except (RongxinError, OSError) as exc:
            self.problem(f"run aborted: {exc}")
        finally:
            self.abort.set()
            t = time.monotonic()
            self._teardown()
            if self.net is not None:
                release_port_block(self.net.base, PORT_STRIDE * len(self.net.configs))
            timings["teardown"] = time.monotonic() - t
            timings["total"] = time.monotonic() - started
            self._scan_logs()
        return self.report

    def _run_load(self) -> None:
        timings = self.report.timings
        self.t0 = time.monotonic()
        load_start_ms = int(time.time() * 1000)
        self.monitor.start()
        for c in self.clients:
            c.start()
        records: list[StepRecord] = []
        perturber = threading.Thread(target=self._perturb, args=(records,), name="e2e-perturb", daemon=True)
        perturber.start()
        self._sleep(self.m.duration_s - self.clock())
        perturber.join(timeout=max(60.0, self.m.duration_s))
        # progress is checked within progress_bound_s of each perturbation's end, under load:
        # on a slow machine the last perturbation may end after duration_s, so the load runs on
        last = max((r.ended for r in records), default=0.0)
        self._sleep(last + self.m.progress_bound_s - self.clock())
        for c in self.clients:
            c.stop_load.set()
        load_end = self.clock()
        load_end_ms = int(time.time() * 1000)
        timings["run"] = load_end
        deadline = time.monotonic() + self.m.drain_s
        for c in self.clients:
            c.join(max(0.0, deadline - time.monotonic()))
        for c in self.clients:
            c.stop_drain.set()
        for c in self.clients:
            c.join(10.0)
            if c.error is not None:
                self.problem(f"load client {c.name} failed: {c.error!r}")
        timings["drain"] = self.clock() - load_end
        t = time.monotonic()
        self._wait_all_caught_up()
        timings["catch_up"] = time.monotonic() - t
        self.report.steps = records
        self._progress_checks(records, load_end)
        self._load_window = (load_start_ms, load_end_ms)

    def _wait_all_caught_up(self) -> None:
        # asked now, not the monitor's last poll: the block that committed the last of the
        # drained load may be newer than it
        target = max([self.monitor.best(), *self._fresh_heights().values()])
        deadline = time.monotonic() + self.m.catch_up_s
        while time.monotonic() < deadline:
            if all((self.monitor.height(n) or 0) >= target for n in self.nodes):
                return
            time.sleep(0.2)
        for name, node in self.nodes.items():
            h = self.monitor.height(name) or 0
            if h < target:
                self.problem(
                    f"{name} at height {h} did not reach the network's height {target} within "
                    f"{self.m.catch_up_s:g} s; its log ends:\n{node.log_tail(6)}"
                )

    def _progress_checks(self, records: list[StepRecord], load_end: float) -> None:
        bound = self.m.progress_bound_s
        for rec in records:
            advanced = self.monitor.advanced_after(rec.ended)
            rec.progress_s = None if advanced is None else advanced - rec.ended
            if rec.progress_s is None or rec.progress_s > bound:
                self.problem(
                    f"no new block within {bound:g} s after '{rec.step.describe()}' ended "
                    f"at {rec.ended:.1f} s "
                    f"(next block {'never' if advanced is None else f'at {advanced:.1f} s'})"
                )
            if rec.step.kind in ("partition",):
                continue
            height = self.monitor.best_at(rec.ended)
            for name in rec.targets:
                reached = self.monitor.reached(name, height, rec.ended)
                rec.caught_up_s[name] = None if reached is None else reached - rec.ended
                until = rec.ended + self.m.catch_up_s if reached is None else reached
                again = struck_again(records, rec, name, until)
                if again is not None:
                    struck = f"{name} struck again at {again.started:.1f} s before it caught up: "
                    struck += "checked from that step's end"
                    rec.note = f"{rec.note}; {struck}" if rec.note else struck
                    continue
                if reached is None or reached - rec.ended > self.m.catch_up_s:
                    self.problem(
                        f"{name} did not reach height {height} within {self.m.catch_up_s:g} s after "
                        f"'{rec.step.describe()}'"
                    )
        stall, at = self.monitor.max_stall(1.0, load_end)
        self.report.max_stall_s, self.report.max_stall_at = stall, at
        self.report.silences = {name: self.monitor.longest_silence(name) for name in self.nodes}
        for name, (gap, at) in self.report.silences.items():
            provoked = any(
                (name in rec.targets or rec.step.kind == "partition") and rec.started - 1.0 <= at <= rec.ended
                for rec in records
            )
            if gap > SILENCE_WARNING_S and not provoked:
                self.report.warnings.append(
                    f"{name}'s API did not answer /status for {gap:.1f} s from {at:.1f} s, unprovoked "
                    "(its event loop was busy: see its log for peers it dropped as silent)"
                )

    # ------------------------------------------------------------------ checks
    def _fetch(self, name: str, height: int) -> tuple[int, checks.Chain]:
        """The node's base height and its blocks ``base+1..height`` (1.. for a full node)."""
        assert self.net is not None
        sup = self.net.supervisor
        with NodeClient(self.nodes[name].api_url, sup.key, sup.cert, self.net.genesis, retries=3) as c:
            base = int(c.status().get("base_height", 0))
            return base, checks.fetch_chain(c, height, start=max(1, base))

    def _check(self) -> None:
        t = time.monotonic()
        self.monitor.stop()
        heights = self._fresh_heights()
        self.report.heights = heights
        lowest = min(heights.values(), default=0)
        self.report.checked_height = lowest
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            futures = {n: pool.submit(self._fetch, n, lowest) for n in self.nodes}
            chains: dict[str, checks.Chain] = {}
            restored: dict[str, checks.Chain] = {}
            for n, f in futures.items():
                try:
                    base, blocks = f.result()
                except RongxinError as exc:
                    self.problem(f"cannot read the blocks of {n}: {exc}")
                except Exception as exc:
                    self.problem(f"cannot read the blocks of {n}: {exc!r}")
                else:
                    (restored if base else chains)[n] = blocks
                    if base:
                        self.report.bases[n] = base
        for p in checks.compare_chains(chains):
            self.problem(p)
        reference = max(chains.values(), key=len, default=[])
        for n, blocks in restored.items():
            for p in checks.compare_restored(reference, n, blocks):
                self.problem(p)
        self._fate_checks(reference)
        for p in checks.check_acknowledged(chains, self.acks):
            self.problem(p)
        for p in checks.check_conflicts(chains, self.pairs):
            self.problem(p)
        for c in self.clients:
            if c.name.startswith("conflict-"):
                continue
            for p in checks.check_drained(chains, c.txs[: c.sent_upto]):
                self.problem(f"{c.name}: {p}")
        self._load_stats(chains)
        if self.pairs and chains:
            heights = checks.tx_heights(min(chains.values(), key=len))
            self.report.load["conflict_pairs_decided"] = sum(
                (a.tx_id.hex() in heights) != (b.tx_id.hex() in heights) for a, b in self.pairs
            )
        self.report.timings["check"] = time.monotonic() - t

    def _fresh_heights(self) -> dict[str, int]:
        """Each node's height asked now (the monitor's last poll may predate the block that
        committed the drained load), or the monitor's when the node does not answer."""
        heights = {n: self.monitor.height(n) or 0 for n in self.nodes}
        with httpx.Client(trust_env=False) as http:
            for name, node in self.nodes.items():
                doc = node.status(http, 2.0) if node.alive() else None
                if doc is not None and isinstance(doc.get("height"), int):
                    heights[name] = max(heights[name], int(doc["height"]))
        return heights

    def _fate_checks(self, reference: checks.Chain) -> None:
        """Joiners that were promoted must vote; Byzantine nodes must be excluded."""
        if self.net is None:
            return
        for n, height in self.promoted.items():
            for p in checks.check_votes(reference, n, self.net.ids[n], height):
                self.problem(p)
        byzantine = [n for n in self.nodes if self.m.node(n).behaviour == "byzantine"]
        if not byzantine:
            return
        honest = next(n for n in self.m.consensus_names() if n not in byzantine)
        sup = self.net.supervisor
        with NodeClient(self.nodes[honest].api_url, sup.key, sup.cert, self.net.genesis, retries=3) as c:
            validators = c.validators()
        self.report.epochs = int(validators.get("epoch", 0))
        for n in byzantine:
            for p in checks.check_excluded(reference, validators, n, self.net.ids[n]):
                self.problem(p)

    def _load_stats(self, chains: dict[str, checks.Chain]) -> None:
        chain = next(iter(chains.values()), [])
        start_ms, end_ms = self._load_window
        load_ids = {tx.tx_id.hex() for txs in self.sent.values() for tx in txs}
        load_ids |= {t.tx_id.hex() for pair in self.pairs for t in pair}
        in_window = sum(
            1
            for b in chain
            if start_ms <= b["time_ms"] <= end_ms
            for tx in b.get("txs", [])
            if tx["tx_id"] in load_ids
        )
        committed = sum(1 for b in chain for tx in b.get("txs", []) if tx["tx_id"] in load_ids)
        self.report.tps = in_window / max(0.001, (end_ms - start_ms) / 1000)
        with self.acks.lock:
            self.report.load = {
                "sent": len(self.acks.sent),
                "admitted": len(self.acks.accepted),
                "acknowledged_committed": len(self.acks.committed),
                "refused": sum(self.acks.refused.values()),
                "unreachable": self.acks.unreachable,
                "resent": self.acks.resent,
                "committed": committed,
            }
            self.report.refusals = dict(self.acks.refused.most_common(5))

    # ------------------------------------------------------------------ teardown
    def _teardown(self) -> None:
        for c in self.clients:
            c.stop_load.set()
            c.stop_drain.set()
        with contextlib.suppress(Exception):
            self.monitor.stop()
        running = [n for n in self.nodes.values() if n.alive()]
        with ThreadPoolExecutor(max(1, len(running))) as pool:
            list(pool.map(self._stop_cleanly, running))
        self.proxies.stop()

    def _scan_logs(self) -> None:
        for name, node in self.nodes.items():
            errors = []
            try:
                lines = node.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                try:
                    doc = json.loads(line)
                except ValueError:
                    if line.startswith("Traceback") or "Error" in line[:40]:
                        errors.append(line)
                    continue
                if isinstance(doc, dict) and doc.get("level") in ("error", "critical"):
                    errors.append(str(doc.get("msg", line)))
            if errors:
                self.report.log_errors[name] = errors


def run_manifest(
    manifest: Manifest, workdir: Path | None = None, log: Callable[[str], None] = lambda s: None
) -> Report:
    """Run ``manifest`` (see the module docstring); its report."""
    return Runner(manifest, workdir, log).run()


__all__ = [
    "E2EError",
    "Report",
    "Runner",
    "StepRecord",
    "free_port_block",
    "ipv6_loopback",
    "release_port_block",
    "run_manifest",
    "struck_again",
]
