"""Create a whole network directory: keys, certificates, genesis, node configs, operator files.

What ``rongxin chain init`` writes (as FISCO BCOS's ``build_chain.sh`` does)::

    net/
      genesis.cbor                 the consortium's founding document (share it with everyone)
      network.json                 summary: chain id, genesis hash, nodes, roles, addresses
      supervisor/                  KEEP OFFLINE: root.key (signs certificates),
                                   supervisor.key + supervisor.cert.json (admits members),
                                   root.pub.pem, client.toml (the supervisor's client
                                   profile, talking to the first node's API)
      node-0/ … observer-0/        one per node: node.toml, node.key (sealed), node.pass
                                   (0600, unless a shared password was given),
                                   node.cert.json, start.sh, stop.sh, data/
      start-all.sh, stop-all.sh    every node present on this machine
      rongxin-node@.service        systemd unit template
      monitoring/                  prometheus.yml, alerts.yml

Observers are certified with the ``observer_node`` role and listed in the genesis: their
certificates are registered from height 0 (so peers accept them) but they are not in the
validator set, which :meth:`Genesis.validators` draws from ``consensus_node`` certificates
only. To make a machine a voter later, certify a new ``consensus_node`` key for it and
admit it with ``member.add``, ``node.ready`` and ``member.promote``.

The directory is built next to its destination and moved into place at the end, so a
failure leaves no half-written network.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chain.crypto import PrivateKey, atomic_write
from chain.crypto.keyfile import DEFAULT_SCRYPT_N, save_private_key
from chain.node.config import (
    ApiSection,
    ConsensusSection,
    NodeConfig,
    NodeSection,
    P2PSection,
    VaultSection,
    dump_config,
    load_config,
)
from chain.node.identity import certificate_to_json
from chain.types import Certificate, ChainParams, Genesis, Role
from rongxin.errors import RongxinError
from rongxin.ops import templates
from rongxin.ops.layout import DEFAULT_BASE_PORT, NodePlan, plan_network

NODE_PASSWORD_BYTES = 32
CLOCK_SKEW_MS = 24 * 3600 * 1000
"""Certificates are valid from a day before ``init``, so nodes with slow clocks accept them."""


class NetworkExistsError(RongxinError):
    """The output directory exists and is not empty (pass ``force`` to replace it)."""


@dataclass(frozen=True)
class NetworkSpec:
    """What network to create (``rongxin chain init`` options)."""

    consensus: int = 4
    observers: int = 0
    hosts: tuple[str, ...] = ()
    base_port: int = DEFAULT_BASE_PORT
    chain_id: str = "rongxin-net"
    consortium: str = "Rongxin consortium"
    organizations: tuple[str, ...] = ()
    """Organization of each node's certificate, round robin (default: "Operator of <node>")."""
    block_interval_ms: int = 1000
    round_timeout_ms: int = 2000
    empty_blocks: bool = False

    def params(self) -> ChainParams:
        """The genesis chain parameters, range-checked as a genesis document's are
        (:class:`~chain.errors.ValidationError`)."""
        params = ChainParams(
            block_interval_ms=self.block_interval_ms,
            round_timeout_ms=self.round_timeout_ms,
            empty_blocks=self.empty_blocks,
        )
        return ChainParams.from_dict(params.to_dict())


@dataclass
class NetworkSummary:
    """What was created: the directory, its genesis and every node's plan and certificate."""

    directory: Path
    genesis: Genesis
    nodes: list[NodePlan]
    certificates: dict[str, Certificate] = field(default_factory=dict)
    node_passwords_stored: bool = True

    def to_dict(self) -> dict[str, object]:
        """The content of ``network.json`` (no secret)."""
        return {
            "chain_id": self.genesis.chain_id,
            "consortium": self.genesis.consortium,
            "genesis_hash": self.genesis.hash.hex(),
            "validators": len(self.genesis.validators()),
            "nodes": [
                {
                    "name": n.name,
                    "role": n.role,
                    "p2p": str(n.p2p),
                    "api": str(n.api),
                    "cert_id": self.certificates[n.name].cert_id.hex(),
                    "organization": self.certificates[n.name].organization,
                }
                for n in self.nodes
            ],
        }


def _write(path: Path, data: str | bytes, mode: int) -> None:
    atomic_write(path, data.encode() if isinstance(data, str) else data, mode)


def _node_config(directory: Path, node: NodePlan, plan: list[NodePlan], with_pass_file: bool) -> NodeConfig:
    d = directory / node.name
    return NodeConfig(
        path=d / "node.toml",
        node=NodeSection(
            name=node.name,
            genesis=directory / "genesis.cbor",
            key_file=d / "node.key",
            cert_file=d / "node.cert.json",
            data_dir=d / "data",
            key_password_file=d / "node.pass" if with_pass_file else None,
        ),
        p2p=P2PSection(listen=(node.p2p,), persistent_peers=tuple(o.p2p for o in plan if o is not node)),
        api=ApiSection(listen=node.api),
        consensus=ConsensusSection(),
        vault=_vault_section(node, plan),
    )


def _api_url(node: NodePlan) -> str:
    return f"http://{node.api.url_authority}"


def _vault_section(node: NodePlan, plan: list[NodePlan]) -> VaultSection:
    """The first node is the supervisory organization's: it keeps a copy of every vault
    object and repairs from the others; every other node copies its uploads to it."""
    first = plan[0]
    if node is first:
        return VaultSection(hold_all=True, repair_from=tuple(_api_url(o) for o in plan if o is not first))
    return VaultSection(replicate_to=(_api_url(first),))


def _fill(
    d: Path,
    spec: NetworkSpec,
    password: str,
    node_password: str | None,
    python: str,
    scrypt_n: int,
    key_factory: Callable[[], PrivateKey],
) -> NetworkSummary:
    plan = plan_network(spec.consensus, spec.observers, spec.hosts, spec.base_port)
    now_ms = int(time.time() * 1000)
    root = key_factory()

    def issue(subject: str, organization: str, role: Role) -> tuple[PrivateKey, Certificate]:
        key = key_factory()
        cert = Certificate.issue(root, subject, organization, [role], key.public_key, now_ms - CLOCK_SKEW_MS)
        return key, cert

    supervisor_key, supervisor_cert = issue("supervisor", spec.consortium, Role.SUPERVISOR)
    orgs = spec.organizations
    identities = {
        n.name: issue(
            n.name,
            orgs[n.index % len(orgs)] if orgs else f"Operator of {n.name}",
            Role.CONSENSUS_NODE if n.is_consensus else Role.OBSERVER_NODE,
        )
        for n in plan
    }
    genesis = Genesis(
        spec.consortium,
        spec.chain_id,
        root.public_key.to_bytes(),
        (supervisor_cert, *(cert for _, cert in identities.values())),
        spec.params(),
        timestamp_ms=now_ms,
    )
    genesis.validate()
    _write(d / "genesis.cbor", genesis.to_bytes(), 0o644)

    sup = d / "supervisor"
    sup.mkdir(mode=0o700)
    save_private_key(root, sup / "root.key", password, scrypt_n=scrypt_n, overwrite=False)
    save_private_key(supervisor_key, sup / "supervisor.key", password, scrypt_n=scrypt_n, overwrite=False)
    _write(sup / "supervisor.cert.json", certificate_to_json(supervisor_cert), 0o644)
    _write(sup / "root.pub.pem", root.public_key.to_pem(), 0o644)
    from rongxin.client_profile import write_profile

    write_profile(
        sup / "client.toml",
        f"http://{plan[0].api}",
        d / "genesis.cbor",
        sup / "supervisor.key",
        sup / "supervisor.cert.json",
    )

    header = (
        f"{{name}} of {spec.chain_id} ({{role}} node), generated by `rongxin chain init`.\n"
        "Relative paths are relative to this file's directory."
    )
    for node in plan:
        nd = d / node.name
        nd.mkdir(mode=0o700)
        (nd / "data").mkdir(mode=0o700)
        secret = node_password or secrets.token_urlsafe(NODE_PASSWORD_BYTES)
        key, cert = identities[node.name]
        save_private_key(key, nd / "node.key", secret, scrypt_n=scrypt_n, overwrite=False)
        if node_password is None:
            _write(nd / "node.pass", secret + "\n", 0o600)
        _write(nd / "node.cert.json", certificate_to_json(cert), 0o644)
        cfg = _node_config(d, node, plan, with_pass_file=node_password is None)
        _write(cfg.path, dump_config(cfg, header=header.format(name=node.name, role=node.role)), 0o644)
        _write(nd / "start.sh", templates.start_script(node.name, python), 0o755)
        _write(nd / "stop.sh", templates.stop_script(node.name), 0o755)
        load_config(cfg.path)  # what the node will read must load

    names = [n.name for n in plan]
    _write(d / "start-all.sh", templates.all_script("start", names), 0o755)
    _write(d / "stop-all.sh", templates.all_script("stop", names), 0o755)
    _write(d / "rongxin-node@.service", templates.systemd_unit(), 0o644)
    mon = d / "monitoring"
    mon.mkdir()
    _write(mon / "prometheus.yml", templates.prometheus_config(spec.chain_id, plan), 0o644)
    _write(
        mon / "alerts.yml",
        templates.alert_rules(
            spec.chain_id,
            len(genesis.validators()),
            empty_blocks=spec.empty_blocks,
            block_interval_ms=spec.block_interval_ms,
        ),
        0o644,
    )
    summary = NetworkSummary(
        d, genesis, plan, {name: cert for name, (_, cert) in identities.items()}, node_password is None
    )
    _write(d / "network.json", json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n", 0o644)
    return summary


def create_network(
    out: str | os.PathLike[str],
    spec: NetworkSpec,
    password: str,
    *,
    node_password: str | None = None,
    python: str = sys.executable,
    force: bool = False,
    scrypt_n: int = DEFAULT_SCRYPT_N,
    key_factory: Callable[[], PrivateKey] = PrivateKey.generate,
) -> NetworkSummary:
    """Create the network directory ``out``.

    Parameters
    ----------
    out : str or PathLike
        The directory to create; an existing empty directory is used, a non-empty one is
        refused unless ``force`` (then it is replaced as a whole).
    spec : NetworkSpec
        Node counts, hosts, ports, chain id and parameters.
    password : str
        Seals the root and supervisor keys.
    node_password : str, optional
        Seals every node key, and nodes then read it from ``$RONGXIN_KEY_PASSWORD``;
        without it each node gets its own random password in ``node.pass`` (mode 0600).
    python : str
        Interpreter named in the start scripts.
    scrypt_n : int
        scrypt cost of the sealed keys (lower only in tests).
    key_factory : callable
        Makes every key (OS randomness by default).

    Raises
    ------
    NetworkExistsError
        ``out`` exists, is not empty and ``force`` is false.
    LayoutError
        A network that cannot be laid out (see :func:`rongxin.ops.layout.plan_network`).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "net"
    >>> s = create_network(out, NetworkSpec(consensus=4, observers=1), "root password", scrypt_n=1024)
    >>> len(s.genesis.validators()), sorted(p.name for p in out.iterdir())[:4]
    (4, ['genesis.cbor', 'monitoring', 'network.json', 'node-0'])
    """
    target = Path(os.path.abspath(os.fspath(out)))
    if target.exists() and not target.is_dir():
        raise NetworkExistsError(f"{target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise NetworkExistsError(f"{target} exists and is not empty; pass --force to replace it")
    plan_network(spec.consensus, spec.observers, spec.hosts, spec.base_port)  # fail before any work
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        os.chmod(work, 0o755)
        summary = _fill(work, spec, password, node_password, python, scrypt_n, key_factory)
        if target.is_dir():
            if any(target.iterdir()):
                shutil.rmtree(target)
            else:
                target.rmdir()
        os.rename(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    summary.directory = target
    return summary


__all__ = ["NetworkExistsError", "NetworkSpec", "NetworkSummary", "create_network"]
