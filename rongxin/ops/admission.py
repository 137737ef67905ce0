"""Admitting a node to a running consortium: certify it, write its directory, promote it.

The steps ``rongxin node add`` and ``rongxin node promote`` take (and the end-to-end
runner's joining nodes), in one place:

* :func:`certify_node` — a fresh SM2 key and a node certificate signed by the root;
* :func:`write_node_dir` — ``<net>/<name>/``: the sealed key (and its password file
  unless the network shares one), the certificate, ``node.toml``, start/stop scripts;
* the supervisor registers the certificate on chain (``member.add``): the node joins as
  an observer, by block sync or, with ``state_sync``, from a peer's snapshot;
* :func:`promote_node` — once it has caught up, the node attests its head
  (``node.ready``, signed with its own key) and the supervisor promotes it
  (``member.promote``); it votes from the next epoch.

Examples
--------
>>> from chain.crypto import PrivateKey
>>> from chain.types import Role
>>> root = PrivateKey.generate()
>>> key, cert = certify_node(root, "node-5", Role.CONSENSUS_NODE)
>>> cert.subject, cert.key().to_bytes() == key.public_key.to_bytes()
('node-5', True)
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chain.crypto import PrivateKey
from chain.crypto.keyfile import save_private_key
from chain.crypto.sealed import DEFAULT_SCRYPT_N
from chain.node.config import (
    ApiSection,
    HostPort,
    NodeConfig,
    NodeSection,
    P2PSection,
    StateSyncSection,
    dump_config,
)
from chain.node.identity import certificate_to_json
from chain.types import Certificate, Role
from rongxin.ops import templates

BACKDATE_MS = 24 * 3600 * 1000
"""A new certificate is valid from a day ago (clocks of the consortium differ a little)."""


def certify_node(root: PrivateKey, name: str, role: Role) -> tuple[PrivateKey, Certificate]:
    """A new node key and its certificate (``role``: consensus or observer node)."""
    key = PrivateKey.generate()
    not_before = int(time.time() * 1000) - BACKDATE_MS
    cert = Certificate.issue(root, name, f"Operator of {name}", [role], key.public_key, not_before)
    return key, cert


def write_node_dir(
    net: Path,
    name: str,
    key: PrivateKey,
    cert: Certificate,
    *,
    password: str | None,
    listen: HostPort,
    api: HostPort,
    peers: Sequence[HostPort],
    state_sync: bool = False,
    scrypt_n: int = DEFAULT_SCRYPT_N,
) -> NodeConfig:
    """Write the new node's directory ``net/name`` and return its loaded configuration.

    Parameters
    ----------
    password : str or None
        The key password when the network shares one (no password file is written);
        ``None``: a new random password, in ``node.pass`` (mode 0600).
    listen, api : HostPort
        Its peer and API addresses.
    peers : sequence of HostPort
        Its persistent peers (the running nodes).
    state_sync : bool
        Join from a peer's snapshot instead of replaying the chain.
    """
    d = net / name
    (d / "data").mkdir(parents=True, mode=0o700)
    secret = password if password is not None else secrets.token_urlsafe(32)
    save_private_key(key, d / "node.key", secret, overwrite=False, scrypt_n=scrypt_n)
    if password is None:
        (d / "node.pass").write_text(secret + "\n")
        (d / "node.pass").chmod(0o600)
    (d / "node.cert.json").write_text(certificate_to_json(cert))
    cfg = NodeConfig(
        path=d / "node.toml",
        node=NodeSection(
            name=name,
            genesis=net / "genesis.cbor",
            key_file=d / "node.key",
            cert_file=d / "node.cert.json",
            data_dir=d / "data",
            key_password_file=None if password is not None else d / "node.pass",
        ),
        p2p=P2PSection(listen=(listen,), persistent_peers=tuple(peers)),
        api=ApiSection(listen=api),
        state_sync=StateSyncSection(enable=state_sync),
    )
    role = cert.roles[0].value if cert.roles else "node"
    header = f"{name} ({role}), added to a running consortium.\nRelative paths are relative to this file."
    cfg.path.write_text(dump_config(cfg, header=header))
    (d / "start.sh").write_text(templates.start_script(name, sys.executable))
    (d / "stop.sh").write_text(templates.stop_script(name))
    (d / "start.sh").chmod(0o755)
    (d / "stop.sh").chmod(0o755)
    return cfg


def promote_node(own: Any, supervisor: Any, cert: Certificate) -> dict[str, Any]:
    """Promote the node of ``cert``: it attests its head through its own client ``own``
    (``node.ready``), then the supervisor's client sends ``member.promote``; the
    supervisor's transaction answer (``height`` of the promotion).

    ``own`` and ``supervisor`` are :class:`chain.client.NodeClient` s (``own`` signs with
    the node's key).
    """
    st = own.status()
    own.send("node.ready", {"height": st["height"], "block_hash": bytes.fromhex(st["head_hash"])})
    answer: dict[str, Any] = supervisor.send("member.promote", {"cert_id": cert.cert_id})
    return answer


__all__ = ["BACKDATE_MS", "certify_node", "promote_node", "write_node_dir"]
