"""End-to-end test manifests: a network, a load and timed perturbations, in one TOML file.

The shape follows CometBFT's ``test/e2e`` manifests (a network description the runner
turns into real node processes), with the perturbations as a timed list rather than
per-node tags, so one file says exactly what happens when::

    name = "kill"                 # default: the file's stem
    description = "kill -9 of one node under load"
    seed = 7                      # random moments and random targets are drawn from it
    ip = "v4"                     # "v4" (127.0.0.1) or "v6" ([::1])
    duration_s = 20               # load and perturbations run this long
    progress_bound_s = 8          # after each perturbation, a new block within this
    drain_s = 20                  # after the load: unconfirmed transactions retried this long
    catch_up_s = 20               # every node must then reach the final height within this

    [chain]                       # `rongxin chain init` options
    nodes = 4                     # consensus nodes
    observers = 0
    joiners = 0                   # nodes joiner-0.. not in the genesis: certified and registered
                                  # on chain when they start (start_at_s), as `rongxin node add` does
    block_interval_ms = 500
    round_timeout_ms = 1000
    empty_blocks = true           # a block every interval, so progress shows without load
    snapshot_interval = 0         # blocks between the snapshots nodes serve (0: the default)

    [load]
    rate = 30                     # transactions per second, all clients together
    clients = 3                   # client threads, each a member with its own key
    conflicts = false             # two more clients share one sender: every nonce twice
    commit_every = 10             # every n-th is sent again, waiting for its commit (0: none)

    [nodes.observer-0]            # optional, per node
    start_at_s = 8                # joins the running chain late
    clock_offset_ms = 0           # RONGXIN_CLOCK_OFFSET_MS of its process
    behaviour = "honest"          # hook: byzantine node processes (see nodes.BEHAVIOURS)
    sync = "blocks"               # or "state": an empty node restores a peer's snapshot first
                                  # (see nodes.SYNC_MODES)

    [nodes.joiner-0]
    start_at_s = 6                # a joiner must start late
    sync = "state"
    promote = true                # once caught up: node.ready, member.promote; it must then vote

    [[perturb]]
    kind = "kill"                 # SIGKILL, restart after down_s
    node = "node-1"               # a node, "leader" (of the current round) or "random"
    times = 3                     # at random moments in window_s (or at_s = [4, 9, 15])
    window_s = [2, 18]
    down_s = 2

    [[perturb]]
    kind = "pause"                # SIGSTOP for duration_s, then SIGCONT
    node = "leader"
    at_s = 6
    duration_s = 5

    [[perturb]]
    kind = "partition"            # links between groups cut for duration_s, then healed
    groups = [["node-0", "node-1"], ["node-2", "node-3"]]
    at_s = 6
    duration_s = 6

    [[perturb]]
    kind = "restart"              # SIGTERM and start again, one node after the other
    nodes = "all"                 # or a list of names
    at_s = 3
    gap_s = 2                     # pause between one node being back and the next going down

    [[perturb]]
    kind = "clock_skew"           # the node runs with its clock off by offset_ms
    node = "node-2"
    offset_ms = 2000
    at_s = 0                      # 0: from its first start; later: it restarts skewed

:func:`load_manifest` reads and checks a file (:class:`ManifestError` names the file and
the key); :meth:`Manifest.schedule` expands the perturbations into :class:`Step` s in time
order, deterministically from ``seed``.

Examples
--------
>>> m = parse_manifest({"chain": {"nodes": 4}, "perturb": [
...     {"kind": "kill", "node": "node-1", "times": 2, "window_s": [2, 12], "down_s": 1}]}, "demo")
>>> [(s.kind, s.node, s.duration_s) for s in m.schedule()]
[('kill', 'node-1', 1.0), ('kill', 'node-1', 1.0)]
>>> m.node_names()
['node-0', 'node-1', 'node-2', 'node-3']
"""

from __future__ import annotations

import math
import random
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from rongxin.errors import RongxinError

T = TypeVar("T")

KINDS = ("kill", "pause", "partition", "restart", "clock_skew")
"""Perturbations the runner applies."""
TARGETS = ("leader", "random")
"""Node targets resolved when the step runs: the current round's leader, a random consensus node."""
MAX_NODES = 9
"""Nodes of one manifest: each node's ports (p2p, API, one proxy per peer) share a block of 10."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ManifestError(RongxinError):
    """A manifest that cannot be run: the message names the file and the key."""


@dataclass(frozen=True)
class ChainSpec:
    """``[chain]``: the network ``rongxin chain init`` creates."""

    nodes: int = 4
    observers: int = 0
    block_interval_ms: int = 500
    round_timeout_ms: int = 1000
    empty_blocks: bool = True
    joiners: int = 0
    snapshot_interval: int = 0


@dataclass(frozen=True)
class LoadSpec:
    """``[load]``: pre-signed anchor transactions sent by client threads."""

    rate: float = 20.0
    clients: int = 2
    conflicts: bool = False
    commit_every: int = 10


@dataclass(frozen=True)
class NodeSpec:
    """``[nodes.<name>]``: how one node's process is run."""

    name: str
    start_at_s: float = 0.0
    clock_offset_ms: int = 0
    behaviour: str = "honest"
    sync: str = "blocks"
    promote: bool = False


@dataclass(frozen=True)
class Perturbation:
    """One ``[[perturb]]`` table as written (see the module docstring)."""

    kind: str
    node: str | None = None
    nodes: tuple[str, ...] = ()
    groups: tuple[tuple[str, ...], ...] = ()
    at_s: tuple[float, ...] = ()
    times: int = 0
    window_s: tuple[float, float] | None = None
    duration_s: float = 0.0
    down_s: float = 2.0
    gap_s: float = 2.0
    offset_ms: int = 0


@dataclass(frozen=True)
class Step:
    """One action of the schedule: what to do to which node(s), when, for how long."""

    at_s: float
    kind: str
    node: str | None = None
    """A node name, ``"leader"`` or ``"random"`` (kill, pause, clock_skew)."""
    nodes: tuple[str, ...] = ()
    """Restart: the nodes, in order."""
    groups: tuple[tuple[str, ...], ...] = ()
    """Partition: the groups that cannot reach one another."""
    duration_s: float = 0.0
    """Kill: time down; pause and partition: their length; restart: the gap between nodes."""
    offset_ms: int = 0
    source: int = 0
    """Index of the ``[[perturb]]`` table the step comes from."""

    def describe(self) -> str:
        """One line for reports.

        >>> Step(3.0, "pause", node="leader", duration_s=5).describe()
        'pause leader for 5 s at 3 s'
        """
        at = f"at {self.at_s:g} s"
        if self.kind == "kill":
            return f"kill -9 {self.node}, down {self.duration_s:g} s, {at}"
        if self.kind == "pause":
            return f"pause {self.node} for {self.duration_s:g} s {at}"
        if self.kind == "partition":
            cut = " | ".join(",".join(g) for g in self.groups)
            return f"partition {cut} for {self.duration_s:g} s {at}"
        if self.kind == "restart":
            return f"restart {', '.join(self.nodes)} one by one {at}"
        if self.kind == "start":
            return f"start {self.node} (joins the running chain) {at}"
        return f"clock of {self.node} off by {self.offset_ms:+d} ms {at}"


@dataclass(frozen=True)
class Manifest:
    """A checked manifest (see the module docstring)."""

    name: str
    description: str = ""
    seed: int = 0
    ip: str = "v4"
    duration_s: float = 20.0
    progress_bound_s: float = 10.0
    drain_s: float = 20.0
    catch_up_s: float = 20.0
    chain: ChainSpec = field(default_factory=ChainSpec)
    load: LoadSpec = field(default_factory=LoadSpec)
    nodes: Mapping[str, NodeSpec] = field(default_factory=dict)
    perturbations: tuple[Perturbation, ...] = ()
    path: Path | None = None

    def node_names(self) -> list[str]:
        """Every node: consensus nodes ``node-i``, observers ``observer-j``, joiners ``joiner-k``."""
        return _all_names(self.chain)

    def joiner_names(self) -> list[str]:
        """The nodes that are not in the genesis (registered when they start)."""
        return [f"joiner-{k}" for k in range(self.chain.joiners)]

    def consensus_names(self) -> list[str]:
        """The consensus (voting) nodes."""
        return consensus_names(self.chain.nodes)

    def node(self, name: str) -> NodeSpec:
        """The settings of node ``name`` (defaults when the manifest has none)."""
        return self.nodes.get(name) or NodeSpec(name)

    def schedule(self) -> list[Step]:
        """The perturbations as steps in time order; random moments drawn from ``seed``."""
        rng = random.Random(self.seed)
        steps: list[Step] = []
        for index, p in enumerate(self.perturbations):
            moments = list(p.at_s) if p.at_s else _moments(rng, p)
            for at in moments:
                if p.kind == "kill":
                    steps.append(Step(at, p.kind, node=p.node, duration_s=p.down_s, source=index))
                elif p.kind in ("pause", "partition"):
                    steps.append(
                        Step(at, p.kind, node=p.node, groups=p.groups, duration_s=p.duration_s, source=index)
                    )
                elif p.kind == "restart":
                    steps.append(Step(at, p.kind, nodes=p.nodes, duration_s=p.gap_s, source=index))
                else:
                    steps.append(Step(at, p.kind, node=p.node, offset_ms=p.offset_ms, source=index))
        steps.sort(key=lambda s: (s.at_s, s.source))
        return steps


def _all_names(chain: ChainSpec) -> list[str]:
    return (
        consensus_names(chain.nodes)
        + [f"observer-{j}" for j in range(chain.observers)]
        + [f"joiner-{k}" for k in range(chain.joiners)]
    )


def consensus_names(count: int) -> list[str]:
    """``node-0`` … ``node-{count-1}`` (the names ``rongxin chain init`` gives)."""
    return [f"node-{i}" for i in range(count)]


def _moments(rng: random.Random, p: Perturbation) -> list[float]:
    """``p.times`` moments in ``p.window_s``, one in each equal slot, leaving room in each
    slot for the node to be down and to come back."""
    assert p.window_s is not None
    start, end = p.window_s
    slot = (end - start) / p.times
    busy = p.down_s if p.kind == "kill" else p.duration_s
    room = max(0.0, slot - busy - 1.0)
    return [round(start + i * slot + rng.uniform(0.0, room), 2) for i in range(p.times)]


# --------------------------------------------------------------------------- parsing
class _Table:
    """Typed, strict reads from one TOML table; errors name the file and the key."""

    def __init__(self, where: str, section: str, table: Mapping[str, Any]) -> None:
        self.where = where
        self.section = section
        self.table = dict(table)
        self.used: set[str] = set()

    def error(self, key: str | None, problem: str) -> ManifestError:
        at = f"[{self.section}]" if self.section else "top level"
        return ManifestError(f"{self.where}: {at}{' ' + key if key else ''}: {problem}")

    def get(self, key: str, kind: type[T], default: T) -> T:
        self.used.add(key)
        if key not in self.table:
            return default
        value = self.table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(key, f"must be {kind.__name__}, not {type(value).__name__}")
        return value

    def number(self, key: str, default: float, low: float = 0.0) -> float:
        value = self.get(key, float, default)
        if not math.isfinite(value) or value < low:
            raise self.error(key, f"must be a number ≥ {low:g}")
        return value

    def count(self, key: str, default: int, low: int = 0, high: int | None = None) -> int:
        value = self.get(key, int, default)
        if value < low or (high is not None and value > high):
            raise self.error(key, f"must be an integer in {low}..{high if high is not None else '∞'}")
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.error(unknown[0], f"unknown key (known: {', '.join(sorted(self.used))})")


def _chain(t: _Table) -> ChainSpec:
    spec = ChainSpec(
        nodes=t.count("nodes", 4, 1, MAX_NODES),
        observers=t.count("observers", 0, 0, MAX_NODES),
        block_interval_ms=t.count("block_interval_ms", 500, 10),
        round_timeout_ms=t.count("round_timeout_ms", 1000, 10),
        empty_blocks=t.get("empty_blocks", bool, True),
        joiners=t.count("joiners", 0, 0, MAX_NODES),
        snapshot_interval=t.count("snapshot_interval", 0, 0),
    )
    t.finish()
    if spec.nodes + spec.observers + spec.joiners > MAX_NODES:
        raise t.error(None, f"at most {MAX_NODES} nodes in all (consensus nodes, observers and joiners)")
    return spec


def _load(t: _Table) -> LoadSpec:
    spec = LoadSpec(
        rate=t.number("rate", 20.0),
        clients=t.count("clients", 2, 1, 64),
        conflicts=t.get("conflicts", bool, False),
        commit_every=t.count("commit_every", 10),
    )
    t.finish()
    return spec


def _node(t: _Table, name: str) -> NodeSpec:
    spec = NodeSpec(
        name,
        start_at_s=t.number("start_at_s", 0.0),
        clock_offset_ms=t.get("clock_offset_ms", int, 0),
        behaviour=t.get("behaviour", str, "honest"),
        sync=t.get("sync", str, "blocks"),
        promote=t.get("promote", bool, False),
    )
    t.finish()
    joiner = name.startswith("joiner-")
    if joiner and spec.start_at_s <= 0:
        raise t.error("start_at_s", "a joiner is not in the genesis: it must start after the chain (> 0)")
    if spec.promote and not joiner:
        raise t.error("promote", "only joiners (certified as consensus nodes when they join) are promoted")
    for key in ("behaviour", "sync"):
        if not _NAME.match(getattr(spec, key)):
            raise t.error(key, "must be a short name (letters, digits, '.', '_', '-')")
    return spec


def _names(t: _Table, key: str, value: object, known: Sequence[str]) -> tuple[str, ...]:
    if value == "all":
        return tuple(known)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise t.error(key, 'must be "all" or a non-empty list of node names')
    for v in value:
        if v not in known:
            raise t.error(key, f"no node {v!r} (nodes: {', '.join(known)})")
    if len(set(value)) != len(value):
        raise t.error(key, "names a node twice")
    return tuple(value)


def _target(t: _Table, known: Sequence[str]) -> str:
    node = t.get("node", str, "")
    if node not in known and node not in TARGETS:
        raise t.error("node", f'must name one of {", ".join(known)}, "leader" or "random"')
    return node


def _groups(t: _Table, known: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    t.used.add("groups")
    raw = t.table.get("groups")
    if not isinstance(raw, list) or len(raw) < 2:
        raise t.error("groups", "must list at least two groups of node names")
    groups = tuple(_names(t, "groups", g, known) for g in raw)
    flat = [n for g in groups for n in g]
    if len(flat) != len(set(flat)):
        raise t.error("groups", "a node is in two groups")
    missing = sorted(set(known) - set(flat))
    if missing:
        raise t.error("groups", f"every node must be in a group; missing {', '.join(missing)}")
    return groups


def _at(t: _Table) -> tuple[float, ...]:
    t.used.add("at_s")
    raw = t.table.get("at_s")
    if raw is None:
        return ()
    values = raw if isinstance(raw, list) else [raw]
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise t.error("at_s", "must be a number of seconds ≥ 0, or a list of them")
        out.append(float(v))
    return tuple(sorted(out))


def _window(t: _Table) -> tuple[float, float] | None:
    t.used.add("window_s")
    raw = t.table.get("window_s")
    if raw is None:
        return None
    ok = isinstance(raw, list) and len(raw) == 2
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw)
    if not ok or not 0 <= raw[0] < raw[1]:
        raise t.error("window_s", "must be [start, end] with 0 ≤ start < end (seconds)")
    return float(raw[0]), float(raw[1])


def _perturbation(t: _Table, known: Sequence[str], duration: float) -> Perturbation:
    kind = t.get("kind", str, "")
    if kind not in KINDS:
        raise t.error("kind", f"must be one of {', '.join(KINDS)}")
    at, times, window = _at(t), t.count("times", 0), _window(t)
    if at and (times or window):
        raise t.error("at_s", "give either at_s or times with window_s, not both")
    if not at and not (times and window):
        raise t.error("at_s", "is required (or times with window_s)")
    t.used.add("nodes")
    p = Perturbation(
        kind,
        node=_target(t, known) if kind in ("kill", "pause", "clock_skew") else None,
        nodes=_names(t, "nodes", t.table.get("nodes", "all"), known) if kind == "restart" else (),
        groups=_groups(t, known) if kind == "partition" else (),
        at_s=at,
        times=times,
        window_s=window,
        duration_s=t.number("duration_s", 5.0, 0.1) if kind in ("pause", "partition") else 0.0,
        down_s=t.number("down_s", 2.0) if kind == "kill" else 2.0,
        gap_s=t.number("gap_s", 2.0) if kind == "restart" else 2.0,
        offset_ms=t.get("offset_ms", int, 0) if kind == "clock_skew" else 0,
    )
    if kind != "restart" and "nodes" in t.table:
        raise t.error("nodes", f"is for restart; a {kind} names one node")
    t.finish()
    if kind == "clock_skew" and (p.node in TARGETS or p.offset_ms == 0):
        raise t.error("offset_ms", "a clock skew needs a named node and offset_ms ≠ 0 (e.g. 2000 or -2000)")
    last = max(p.at_s) if p.at_s else (p.window_s[1] if p.window_s else 0.0)
    if last > duration:
        raise t.error("at_s", f"{last:g} s is after the end of the run (duration_s = {duration:g})")
    return p


def parse_manifest(doc: Mapping[str, Any], name: str, where: str = "manifest") -> Manifest:
    """Check a manifest already read from TOML (see :func:`load_manifest`).

    Raises
    ------
    ManifestError
        Naming ``where``, the section and the key.
    """
    top = _Table(where, "", doc)
    for section in ("chain", "load", "nodes", "perturb"):
        top.used.add(section)

    def table(section: str, key: str = "") -> _Table:
        raw = doc.get(key or section, {})
        if not isinstance(raw, dict):
            raise top.error(key or section, "must be a table")
        return _Table(where, section, raw)

    chain = _chain(table("chain"))
    load = _load(table("load"))
    known = _all_names(chain)
    duration = top.number("duration_s", 20.0, 1.0)
    nodes: dict[str, NodeSpec] = {}
    for node_name, raw in table("nodes").table.items():
        if node_name not in known:
            raise top.error("nodes", f"no node {node_name!r} (nodes: {', '.join(known)})")
        if not isinstance(raw, dict):
            raise top.error(f"nodes.{node_name}", "must be a table")
        nodes[node_name] = _node(_Table(where, f"nodes.{node_name}", raw), node_name)
    for joiner in [f"joiner-{k}" for k in range(chain.joiners)]:
        if joiner not in nodes:
            raise top.error("nodes", f"joiner {joiner!r} needs a [nodes.{joiner}] table with start_at_s > 0")
    raw_perturb = doc.get("perturb", [])
    if not isinstance(raw_perturb, list) or not all(isinstance(p, dict) for p in raw_perturb):
        raise top.error("perturb", "must be an array of tables ([[perturb]])")
    perturbations = tuple(
        _perturbation(_Table(where, f"perturb #{i + 1}", p), known, duration)
        for i, p in enumerate(raw_perturb)
    )
    ip = top.get("ip", str, "v4")
    if ip not in ("v4", "v6"):
        raise top.error("ip", 'must be "v4" or "v6"')
    manifest = Manifest(
        name=top.get("name", str, name),
        description=top.get("description", str, ""),
        seed=top.get("seed", int, 0),
        ip=ip,
        duration_s=duration,
        progress_bound_s=top.number("progress_bound_s", 10.0, 0.5),
        drain_s=top.number("drain_s", 20.0),
        catch_up_s=top.number("catch_up_s", 20.0, 1.0),
        chain=chain,
        load=load,
        nodes=nodes,
        perturbations=perturbations,
    )
    top.finish()
    return manifest


def load_manifest(path: str | Path) -> Manifest:
    """Read and check the manifest at ``path``.

    Raises
    ------
    ManifestError
        The file cannot be read, is not TOML, or a key is missing, unknown or wrong.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "pause.toml"
    >>> _ = p.write_text('[[perturb]]\\nkind = "pause"\\nnode = "leader"\\nat_s = 4\\nduration_s = 5\\n')
    >>> load_manifest(p).schedule()[0].describe()
    'pause leader for 5 s at 4 s'
    """
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"cannot read {p}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{p}: not TOML: {exc}") from None
    return replace(parse_manifest(doc, p.stem, str(p)), path=p)


__all__ = [
    "KINDS",
    "MAX_NODES",
    "TARGETS",
    "ChainSpec",
    "LoadSpec",
    "Manifest",
    "ManifestError",
    "NodeSpec",
    "Perturbation",
    "Step",
    "consensus_names",
    "load_manifest",
    "parse_manifest",
]
