"""A ledger node as a process: its configuration file and identity on disk.

* :mod:`chain.node.config` — ``node.toml``: :class:`NodeConfig` and its sections,
  :func:`load_config` (strict: every problem is a :class:`ConfigError` naming the file,
  section and key), :func:`dump_config` (the TOML text), :func:`parse_host_port`;
* :mod:`chain.node.identity` — the node's key and certificate (:func:`load_identity`),
  the key password (:func:`key_password`), the genesis (:func:`load_genesis`) and the
  certificate JSON files (:func:`certificate_to_json`, :func:`certificate_from_json`).

Names are imported on first use, so ``import chain.node`` stays cheap.

Examples
--------
>>> from chain.node import parse_host_port
>>> str(parse_host_port("[::1]:26656"))
'[::1]:26656'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chain.errors import ConfigError
from chain.lazy import lazy_exports

if TYPE_CHECKING:
    from chain.node.config import (
        KEY_PASSWORD_ENV,
        ApiSection,
        ConsensusSection,
        HostPort,
        MempoolSection,
        NodeConfig,
        NodeSection,
        P2PSection,
        StateSyncSection,
        dump_config,
        load_config,
        parse_host_port,
    )
    from chain.node.identity import (
        certificate_from_json,
        certificate_to_json,
        key_password,
        load_genesis,
        load_identity,
        read_certificate,
    )

#: Public name -> the module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "KEY_PASSWORD_ENV": "chain.node.config",
    "ApiSection": "chain.node.config",
    "ConsensusSection": "chain.node.config",
    "HostPort": "chain.node.config",
    "MempoolSection": "chain.node.config",
    "NodeConfig": "chain.node.config",
    "NodeSection": "chain.node.config",
    "P2PSection": "chain.node.config",
    "StateSyncSection": "chain.node.config",
    "dump_config": "chain.node.config",
    "load_config": "chain.node.config",
    "parse_host_port": "chain.node.config",
    "certificate_from_json": "chain.node.identity",
    "certificate_to_json": "chain.node.identity",
    "key_password": "chain.node.identity",
    "load_genesis": "chain.node.identity",
    "load_identity": "chain.node.identity",
    "read_certificate": "chain.node.identity",
}

__all__ = [
    "KEY_PASSWORD_ENV",
    "ApiSection",
    "ConfigError",
    "ConsensusSection",
    "HostPort",
    "MempoolSection",
    "NodeConfig",
    "NodeSection",
    "P2PSection",
    "StateSyncSection",
    "certificate_from_json",
    "certificate_to_json",
    "dump_config",
    "key_password",
    "load_config",
    "load_genesis",
    "load_identity",
    "parse_host_port",
    "read_certificate",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
