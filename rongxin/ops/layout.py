"""Where each node of a new network lives: names, roles, addresses (``rongxin chain init``).

Consensus nodes are ``node-0`` … ``node-{n-1}``, observers ``observer-0`` …; node ``i``
(counting consensus nodes first) listens for peers on ``base_port + 10*i`` and serves its
API on ``base_port + 10*i + 1``, on loopback by default or on the ``i``-th of the given
hosts (round robin), so several nodes may share a machine.

Examples
--------
>>> plan = plan_network(consensus=4, observers=1, hosts=["10.0.0.1", "10.0.0.2"])
>>> for n in plan[3:]:
...     print(n.name, n.role, n.p2p, n.api)
node-3 consensus 10.0.0.2:26686 10.0.0.2:26687
observer-0 observer 10.0.0.1:26696 10.0.0.1:26697
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chain.node.config import HostPort, check_host
from rongxin.errors import RongxinError

DEFAULT_BASE_PORT = 26656
PORT_STRIDE = 10
LOOPBACK = "127.0.0.1"


class LayoutError(RongxinError):
    """The requested network cannot be laid out (no node, bad host, ports out of range)."""


@dataclass(frozen=True)
class NodePlan:
    """One node of the network to create."""

    index: int
    name: str
    role: str
    """``"consensus"`` (a genesis validator) or ``"observer"`` (certified, not voting)."""
    p2p: HostPort
    api: HostPort

    @property
    def is_consensus(self) -> bool:
        """Whether the node is in the genesis validator set."""
        return self.role == "consensus"


def parse_hosts(text: str) -> list[str]:
    """Hosts from a comma-separated list (IPv4, IPv6 with or without brackets, host names).

    Examples
    --------
    >>> parse_hosts("10.0.0.1, [::1],node-3.example.org")
    ['10.0.0.1', '::1', 'node-3.example.org']
    """
    hosts = []
    for item in text.split(","):
        item = item.strip()
        try:
            hosts.append(check_host(item))
        except ValueError as exc:
            raise LayoutError(f"--hosts: {exc}") from None
    return hosts


def plan_network(
    consensus: int,
    observers: int = 0,
    hosts: Sequence[str] = (),
    base_port: int = DEFAULT_BASE_PORT,
) -> list[NodePlan]:
    """The nodes of a network: names, roles and addresses.

    Parameters
    ----------
    consensus, observers : int
        How many voting nodes (at least 1) and observers (0 or more).
    hosts : sequence of str
        Machines' addresses, assigned round robin; empty: every node on loopback.
    base_port : int
        Peer port of the first node.

    Raises
    ------
    LayoutError
        No consensus node, a negative count, a bad host or a port beyond 65535.
    """
    if consensus < 1:
        raise LayoutError("a network needs at least one consensus node (4 or more to tolerate a fault)")
    if observers < 0:
        raise LayoutError("the number of observers cannot be negative")
    total = consensus + observers
    last = base_port + PORT_STRIDE * (total - 1) + 1
    if base_port < 1 or last > 65535:
        raise LayoutError(f"ports {base_port}-{last} do not fit in 1-65535; choose another --base-port")
    machines = [check_host(h) for h in hosts] or [LOOPBACK]
    plan = []
    for i in range(total):
        name, role = (
            (f"node-{i}", "consensus") if i < consensus else (f"observer-{i - consensus}", "observer")
        )
        host = machines[i % len(machines)]
        port = base_port + PORT_STRIDE * i
        plan.append(NodePlan(i, name, role, HostPort(host, port), HostPort(host, port + 1)))
    return plan


__all__ = ["DEFAULT_BASE_PORT", "LayoutError", "NodePlan", "parse_hosts", "plan_network"]


def free_base_port(nodes: int, low: int = 20000, high: int = 60000) -> int:
    """A base port whose p2p and API ports (``base + 10 i``, ``base + 10 i + 1``) for
    ``nodes`` nodes are all free on loopback now (for local networks: demo, tests, bench)."""
    import random
    import socket

    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(low, high, PORT_STRIDE)
        try:
            for i in range(nodes):
                for port in (base + PORT_STRIDE * i, base + PORT_STRIDE * i + 1):
                    with socket.socket() as s:
                        s.bind((LOOPBACK, port))
        except OSError:
            continue
        return base
    raise LayoutError(f"no {nodes} free pairs of loopback ports between {low} and {high}")
