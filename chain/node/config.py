r"""A node's configuration file, ``node.toml``: typed sections, strict loading, a TOML writer.

One file per node (``rongxin chain init`` writes them). Relative paths are relative to
the directory of the file; every problem is a :class:`~chain.errors.ConfigError` that
names the file, the ``[section]`` and the key::

    [node]
    name = "node-0"
    genesis = "../genesis.cbor"
    key_file = "node.key"              # sealed SM2 key (chain.crypto.keyfile)
    key_password_file = "node.pass"    # optional: else $RONGXIN_KEY_PASSWORD; mode 0600
    cert_file = "node.cert.json"       # the node's certificate (chain.node.identity)
    data_dir = "data"                  # ledger, log, pid file
    log_level = "info"

    [p2p]
    listen = ["127.0.0.1:26656"]       # IPv4, "[IPv6]:port" or a host name
    persistent_peers = ["127.0.0.1:26666"]
    max_frame_bytes = 16777280
    handshake_timeout_s = 10.0

    [api]
    listen = "127.0.0.1:26657"
    public_status = true

    [consensus]                        # optional local overrides of the genesis' pacing
    round_timeout_ms = 1000

    [mempool]
    max_txs = 100000
    max_bytes = 268435456
    max_per_sender = 10000

    [vault]                            # the off-chain vault this node serves (docs/vault.md)
    enable = true
    dir = "data/vault"                 # default: <data_dir>/vault
    max_object_bytes = 4294967296      # largest object stored (4 GiB)
    replicate_to = ["http://127.0.0.1:26667"]  # nodes that get a copy of every upload here
    repair_from = []                   # replicas a scrub repairs from (default: replicate_to)
    hold_all = false                   # keep every object registered on chain (the regulator's node)
    replicate_interval_s = 2.0
    scrub_interval_s = 0.0             # periodic scrub (0: on demand only)
    operators = []                     # certificate ids (hex) that may start a scrub (empty: any member)
    backend = "local"                  # "local" (the directory above) or "s3" (a bucket)
    s3_endpoint = "https://s3.example.cn"  # with backend = "s3": the service's URL
    s3_bucket = "rongxin-vault"        # an existing bucket
    s3_region = "us-east-1"
    s3_access_key_id = "AKIA…"
    s3_secret_file = "s3.secret"       # mode 600, first line; or s3_secret_env = "VAR_NAME"
    s3_prefix = ""                     # prepended to every key (nodes sharing a bucket)
    s3_part_bytes = 16777216           # multipart part size (>= 5 MiB)

    [state_sync]
    enable = false                     # an empty node restores a peer's snapshot first
    snapshot_interval = 1000           # blocks between the snapshots this node serves (0: none)
    snapshot_keep = 2                  # snapshots kept on disk
    discovery_s = 10.0                 # how long an empty node collects snapshot offers
    chunk_timeout_s = 15.0             # a chunk not delivered in time is asked of another peer

``[node]``, ``[p2p]`` (with ``listen``) and the ``[node]`` files are required; everything
else has the default shown. Unknown sections and keys are refused (a misspelt key must
not silently fall back to a default).

Examples
--------
>>> hp = parse_host_port("[::1]:26656")
>>> hp.host, hp.port, str(hp)
('::1', 26656, '[::1]:26656')
>>> parse_host_port("0.0.0.0:26657").dial_host
'127.0.0.1'
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import stat
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from chain.errors import ConfigError as ConfigError  # re-exported here, next to its use

T = TypeVar("T")

KEY_PASSWORD_ENV = "RONGXIN_KEY_PASSWORD"
"""Environment variable with the node's key password when ``key_password_file`` is not set."""
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024 + 64
MAX_FRAME_LIMIT = 256 * 1024 * 1024
"""Largest ``max_frame_bytes`` accepted: a peer may make a node buffer this much."""

_HOSTNAME_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


# --------------------------------------------------------------------------- addresses
@dataclass(frozen=True)
class HostPort:
    """A TCP address: an IPv4 or IPv6 literal or a host name, and a port in 1–65535.

    Examples
    --------
    >>> str(HostPort("10.0.0.5", 26656)), str(HostPort("fe80::1", 1))
    ('10.0.0.5:26656', '[fe80::1]:1')
    """

    host: str
    port: int

    @property
    def is_ipv6(self) -> bool:
        """Whether :attr:`host` is an IPv6 literal (written in brackets)."""
        return ":" in self.host

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if self.is_ipv6 else f"{self.host}:{self.port}"

    @property
    def dial_host(self) -> str:
        """The host to connect to: loopback for a wildcard listen address (``0.0.0.0``, ``::``)."""
        if self.host == "0.0.0.0":
            return "127.0.0.1"
        if self.host == "::":
            return "::1"
        return self.host

    @property
    def url_authority(self) -> str:
        """``host:port`` for a URL, connecting to loopback for a wildcard address.

        >>> HostPort("::", 26657).url_authority
        '[::1]:26657'
        """
        return str(HostPort(self.dial_host, self.port))


def check_host(host: str) -> str:
    """``host`` if it is an IPv4 or IPv6 literal or a valid DNS name; else ``ValueError``.

    An IPv6 literal is returned without brackets; an all-numeric name must be a valid
    IPv4 address (``300.1.1.1`` is refused rather than looked up).

    Examples
    --------
    >>> check_host("[::1]"), check_host("node-1.example.org")
    ('::1', 'node-1.example.org')
    """
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ValueError(f"{host!r} is neither an IPv4 address nor a host name") from None
    if not host:
        raise ValueError("the host is empty")
    labels = host.rstrip(".").split(".")
    if all(label.isdigit() for label in labels):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise ValueError(f"{host!r} is not a valid IPv4 address") from None
    if len(host) > 253 or not all(_HOSTNAME_LABEL.match(label) for label in labels):
        raise ValueError(f"{host!r} is not a valid host name")
    return host


def parse_host_port(text: str) -> HostPort:
    """Parse ``"10.0.0.5:26656"``, ``"[::1]:26656"`` or ``"node-1.example.org:26656"``.

    Raises
    ------
    ValueError
        No port, a port outside 1–65535, an unbracketed IPv6 address or a bad host.

    Examples
    --------
    >>> parse_host_port("127.0.0.1:26656")
    HostPort(host='127.0.0.1', port=26656)
    >>> parse_host_port("::1:26656")
    Traceback (most recent call last):
    ...
    ValueError: an IPv6 address is written in brackets: "[::1]:26656"
    """
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f'{text!r} is not "[IPv6]:port"')
        host = check_host(f"[{host}]")
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ValueError(f"{text!r} has no port (host:port)")
        if ":" in host:
            raise ValueError(f'an IPv6 address is written in brackets: "[{host}]:{port}"')
        host = check_host(host)
    if not port.isdigit() or not port.isascii():
        raise ValueError(f"port {port!r} is not a number")
    number = int(port)
    if not 1 <= number <= 65535:
        raise ValueError(f"port {number} is outside 1-65535")
    return HostPort(host, number)


# --------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class NodeSection:
    """``[node]``: the node's name, its files and its log level (paths absolute)."""

    name: str
    genesis: Path
    key_file: Path
    cert_file: Path
    data_dir: Path
    key_password_file: Path | None = None
    log_level: str = "info"


@dataclass(frozen=True)
class P2PSection:
    """``[p2p]``: where the node listens for peers and which peers it always dials."""

    listen: tuple[HostPort, ...]
    persistent_peers: tuple[HostPort, ...] = ()
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    handshake_timeout_s: float = 10.0


@dataclass(frozen=True)
class ApiSection:
    """``[api]``: the HTTP API's address (loopback by default) and whether /status is public."""

    listen: HostPort = HostPort("127.0.0.1", 26657)
    public_status: bool = True


@dataclass(frozen=True)
class ConsensusSection:
    """``[consensus]``: local overrides of the genesis' pacing (``None``: the genesis value)."""

    round_timeout_ms: int | None = None


@dataclass(frozen=True)
class MempoolSection:
    """``[mempool]``: bounds of the node's pending-transaction pool."""

    max_txs: int = 100_000
    max_bytes: int = 256 * 1024 * 1024
    max_per_sender: int = 10_000


@dataclass(frozen=True)
class StateSyncSection:
    """``[state_sync]``: joining from a peer's snapshot, and the snapshots this node serves."""

    enable: bool = False
    snapshot_interval: int = 1000
    snapshot_keep: int = 2
    discovery_s: float = 10.0
    chunk_timeout_s: float = 15.0


@dataclass(frozen=True)
class S3Settings:
    """The bucket of ``[vault] backend = "s3"``; the secret key itself is read at start
    (:func:`chain.node.vault.s3_secret`) from ``secret_file`` or the variable ``secret_env``."""

    endpoint: str
    bucket: str
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_file: Path | None = None
    secret_env: str | None = None
    prefix: str = ""
    part_bytes: int = 16 * 1024 * 1024


VAULT_BACKENDS = ("local", "s3")
_S3_MIN_PART = 5 * 1024 * 1024
_S3_KEYS = (
    "s3_endpoint",
    "s3_bucket",
    "s3_region",
    "s3_access_key_id",
    "s3_secret_file",
    "s3_secret_env",
    "s3_prefix",
    "s3_part_bytes",
)


@dataclass(frozen=True)
class VaultSection:
    """``[vault]``: the off-chain vault this node serves, its copies and its upkeep."""

    enable: bool = True
    dir: Path | None = None
    max_object_bytes: int = 4 * 1024**3
    replicate_to: tuple[str, ...] = ()
    repair_from: tuple[str, ...] | None = None
    hold_all: bool = False
    replicate_interval_s: float = 2.0
    scrub_interval_s: float = 0.0
    operators: tuple[str, ...] = ()
    backend: str = "local"
    s3: S3Settings | None = None

    def directory(self, data_dir: Path) -> Path:
        """Where the objects live (``dir``, or ``<data_dir>/vault``)."""
        return self.dir if self.dir is not None else data_dir / "vault"

    def sources(self) -> tuple[str, ...]:
        """The replicas a scrub repairs from."""
        return self.replicate_to if self.repair_from is None else self.repair_from


@dataclass(frozen=True)
class NodeConfig:
    """A loaded ``node.toml``; :attr:`path` is the file (paths inside are absolute)."""

    path: Path
    node: NodeSection
    p2p: P2PSection
    api: ApiSection = field(default_factory=ApiSection)
    consensus: ConsensusSection = field(default_factory=ConsensusSection)
    mempool: MempoolSection = field(default_factory=MempoolSection)
    state_sync: StateSyncSection = field(default_factory=StateSyncSection)
    vault: VaultSection = field(default_factory=VaultSection)

    @property
    def directory(self) -> Path:
        """The directory relative paths are resolved against."""
        return self.path.parent

    @property
    def pid_file(self) -> Path:
        """Where ``rongxin chain up`` records the node's process id."""
        return self.node.data_dir / "node.pid"

    @property
    def log_file(self) -> Path:
        """Where ``rongxin chain up`` sends the node's output."""
        return self.node.data_dir / "node.log"


# --------------------------------------------------------------------------- loading
_MISSING: Any = object()


class _Table:
    """Typed reads from one TOML table; every error names file, section and key."""

    def __init__(self, path: Path, section: str, table: dict[str, Any]) -> None:
        self.path, self.section, self.table = path, section, table
        self.seen: set[str] = set()

    def error(self, key: str | None, problem: str) -> ConfigError:
        return ConfigError(str(self.path), self.section, key, problem)

    def get(self, key: str, kind: type[T], default: Any = _MISSING) -> T:
        self.seen.add(key)
        if key not in self.table:
            if default is _MISSING:
                raise self.error(key, "is required")
            return default  # type: ignore[no-any-return]
        value = self.table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(key, f"must be {_kind_name(kind)}, not {_toml_type(value)}")
        return value

    def positive(self, key: str, kind: type[int] | type[float], default: Any = _MISSING) -> Any:
        value = self.get(key, kind, default)
        if value is not None and (not math.isfinite(value) or value <= 0):
            raise self.error(key, f"must be positive, not {value}")
        return value

    def address(self, key: str, text: object) -> HostPort:
        if not isinstance(text, str):
            raise self.error(key, f'must be a string "host:port", not {_toml_type(text)}')
        try:
            return parse_host_port(text)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def addresses(self, key: str, default: Any = _MISSING) -> tuple[HostPort, ...]:
        values = self.get(key, list, default)
        out = tuple(self.address(f"{key}[{i}]", v) for i, v in enumerate(values))
        if len(set(out)) != len(out):
            raise self.error(key, "lists an address twice")
        return out

    def optional_file(self, key: str) -> Path | None:
        if key not in self.table:
            self.seen.add(key)
            return None
        return self.file(key)

    def private_file(self, key: str) -> Path | None:
        """An optional file holding a secret: refused when others may read it."""
        path = self.optional_file(key)
        if path is not None:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise self.error(
                    key, f"{path} is readable by others (mode {stat.S_IMODE(mode):04o}); chmod 600 it"
                )
        return path

    def file(self, key: str, default: Any = _MISSING, *, must_exist: bool = True) -> Path:
        text = self.get(key, str, default)
        if not text:
            raise self.error(key, "is empty")
        resolved = Path(os.path.normpath(self.path.parent / Path(text).expanduser()))
        if must_exist and not resolved.is_file():
            what = "is not a file" if resolved.exists() else "does not exist"
            raise self.error(key, f"{resolved} {what}")
        return resolved

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.seen)
        if unknown:
            raise self.error(unknown[0], f"unknown key (known: {', '.join(sorted(self.seen))})")


def _kind_name(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list"}.get(
        kind, kind.__name__
    )


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return {str: "a string", int: "an integer", float: "a float", list: "a list", dict: "a table"}.get(
        type(value), type(value).__name__
    )


_SECTIONS = ("node", "p2p", "api", "consensus", "mempool", "state_sync", "vault")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), None, None, "no such configuration file") from None
    except OSError as exc:
        raise ConfigError(str(path), None, None, f"cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), None, None, f"not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), None, None, "not valid TOML: the file is not UTF-8") from None


def _table(path: Path, doc: dict[str, Any], name: str, required: bool) -> _Table:
    value = doc.get(name, _MISSING)
    if value is _MISSING:
        if required:
            raise ConfigError(str(path), name, None, "section is missing")
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(str(path), None, name, f"must be a [{name}] table, not {_toml_type(value)}")
    return _Table(path, name, value)


def _node_section(t: _Table) -> NodeSection:
    name = t.get("name", str)
    if not _NODE_NAME.match(name):
        raise t.error("name", f"{name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    password_file = t.private_file("key_password_file")
    data_dir = t.file("data_dir", "data", must_exist=False)
    if data_dir.exists() and not data_dir.is_dir():
        raise t.error("data_dir", f"{data_dir} exists and is not a directory")
    log_level = t.get("log_level", str, "info")
    if log_level not in LOG_LEVELS:
        raise t.error("log_level", f"{log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    section = NodeSection(
        name=name,
        genesis=t.file("genesis"),
        key_file=t.file("key_file"),
        cert_file=t.file("cert_file"),
        data_dir=data_dir,
        key_password_file=password_file,
        log_level=log_level,
    )
    t.finish()
    return section


def _p2p_section(t: _Table) -> P2PSection:
    listen = t.addresses("listen")
    if not listen:
        raise t.error("listen", "needs at least one address")
    frame = t.positive("max_frame_bytes", int, DEFAULT_MAX_FRAME_BYTES)
    if frame > MAX_FRAME_LIMIT:
        raise t.error("max_frame_bytes", f"{frame} exceeds the limit of {MAX_FRAME_LIMIT}")
    section = P2PSection(
        listen=listen,
        persistent_peers=t.addresses("persistent_peers", []),
        max_frame_bytes=frame,
        handshake_timeout_s=t.positive("handshake_timeout_s", float, 10.0),
    )
    t.finish()
    return section


def _api_section(t: _Table) -> ApiSection:
    default = ApiSection()
    listen = t.get("listen", str, None)
    section = ApiSection(
        listen=default.listen if listen is None else t.address("listen", listen),
        public_status=t.get("public_status", bool, True),
    )
    t.finish()
    return section


def _consensus_section(t: _Table) -> ConsensusSection:
    section = ConsensusSection(round_timeout_ms=t.positive("round_timeout_ms", int, None))
    t.finish()
    return section


def _mempool_section(t: _Table) -> MempoolSection:
    d = MempoolSection()
    section = MempoolSection(
        max_txs=t.positive("max_txs", int, d.max_txs),
        max_bytes=t.positive("max_bytes", int, d.max_bytes),
        max_per_sender=t.positive("max_per_sender", int, d.max_per_sender),
    )
    if section.max_per_sender > section.max_txs:
        raise t.error("max_per_sender", f"{section.max_per_sender} exceeds max_txs ({section.max_txs})")
    t.finish()
    return section


def _state_sync_section(t: _Table) -> StateSyncSection:
    d = StateSyncSection()
    interval = t.get("snapshot_interval", int, d.snapshot_interval)
    if interval < 0:
        raise t.error("snapshot_interval", f"must be 0 (no snapshots) or positive, not {interval}")
    section = StateSyncSection(
        enable=t.get("enable", bool, d.enable),
        snapshot_interval=interval,
        snapshot_keep=t.positive("snapshot_keep", int, d.snapshot_keep),
        discovery_s=t.positive("discovery_s", float, d.discovery_s),
        chunk_timeout_s=t.positive("chunk_timeout_s", float, d.chunk_timeout_s),
    )
    t.finish()
    return section


def _urls(t: _Table, key: str, default: Any) -> tuple[str, ...] | None:
    values = t.get(key, list, default)
    if values is None:
        return None
    out = []
    for i, v in enumerate(values):
        if not isinstance(v, str) or not re.fullmatch(r"https?://[^\s/]+(:\d+)?/?", v):
            raise t.error(
                f"{key}[{i}]", f'must be a node\'s API URL like "http://127.0.0.1:26657", not {v!r}'
            )
        out.append(v.rstrip("/"))
    if len(set(out)) != len(out):
        raise t.error(key, "lists a URL twice")
    return tuple(out)


def _vault_section(t: _Table) -> VaultSection:
    d = VaultSection()
    directory = t.file("dir", None, must_exist=False) if "dir" in t.table else None
    t.seen.add("dir")
    scrub = t.get("scrub_interval_s", float, d.scrub_interval_s)
    if not math.isfinite(scrub) or scrub < 0:
        raise t.error("scrub_interval_s", f"must be 0 (on demand only) or positive, not {scrub}")
    operators = t.get("operators", list, [])
    for i, op in enumerate(operators):
        if not isinstance(op, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", op):
            raise t.error(f"operators[{i}]", "must be a certificate id, 64 hex digits")
    backend = t.get("backend", str, d.backend)
    if backend not in VAULT_BACKENDS:
        raise t.error("backend", f"{backend!r} is not one of {', '.join(VAULT_BACKENDS)}")
    s3 = _s3_settings(t) if backend == "s3" else None
    if s3 is None:
        stray = [k for k in _S3_KEYS if k in t.table]
        if stray:
            raise t.error(stray[0], 'is only used with backend = "s3"')
    section = VaultSection(
        enable=t.get("enable", bool, d.enable),
        dir=directory,
        max_object_bytes=t.positive("max_object_bytes", int, d.max_object_bytes),
        replicate_to=_urls(t, "replicate_to", []) or (),
        repair_from=_urls(t, "repair_from", None),
        hold_all=t.get("hold_all", bool, d.hold_all),
        replicate_interval_s=t.positive("replicate_interval_s", float, d.replicate_interval_s),
        scrub_interval_s=scrub,
        operators=tuple(op.lower() for op in operators),
        backend=backend,
        s3=s3,
    )
    t.finish()
    return section


def _s3_settings(t: _Table) -> S3Settings:
    endpoint = t.get("s3_endpoint", str)
    if not re.fullmatch(r"https?://[^\s/?#]+/?", endpoint):
        raise t.error("s3_endpoint", f'must be a URL like "https://s3.example.cn", not {endpoint!r}')
    bucket = t.get("s3_bucket", str)
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise t.error("s3_bucket", f"{bucket!r} is not a valid bucket name")
    key_id = t.get("s3_access_key_id", str)
    if not key_id:
        raise t.error("s3_access_key_id", "is empty")
    secret_file = t.private_file("s3_secret_file")
    secret_env = t.get("s3_secret_env", str, None)
    if (secret_file is None) == (secret_env is None):
        raise t.error(
            "s3_secret_file", "set exactly one of s3_secret_file and s3_secret_env (never the secret itself)"
        )
    if secret_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", secret_env):
        raise t.error("s3_secret_env", f"{secret_env!r} is not an environment variable name")
    prefix = t.get("s3_prefix", str, "")
    if prefix.startswith("/") or ".." in prefix.split("/"):
        raise t.error("s3_prefix", f"{prefix!r} must be a relative key prefix")
    part = t.positive("s3_part_bytes", int, S3Settings.part_bytes)
    if part < _S3_MIN_PART:
        raise t.error(
            "s3_part_bytes", f"must be at least {_S3_MIN_PART} (the S3 minimum part size), not {part}"
        )
    return S3Settings(
        endpoint=endpoint.rstrip("/"),
        bucket=bucket,
        region=t.get("s3_region", str, S3Settings.region),
        access_key_id=key_id,
        secret_file=secret_file,
        secret_env=secret_env,
        prefix=prefix,
        part_bytes=part,
    )


def _s3_keys(s3: S3Settings | None, base: Path) -> dict[str, object]:
    if s3 is None:
        return {}
    return {
        "s3_endpoint": s3.endpoint,
        "s3_bucket": s3.bucket,
        "s3_region": s3.region,
        "s3_access_key_id": s3.access_key_id,
        "s3_secret_file": _relative(s3.secret_file, base),
        "s3_secret_env": s3.secret_env,
        "s3_prefix": s3.prefix,
        "s3_part_bytes": s3.part_bytes,
    }


def load_config(path: str | os.PathLike[str]) -> NodeConfig:
    """Read and check a ``node.toml``.

    Parameters
    ----------
    path : str or PathLike
        The configuration file; relative paths inside it are resolved against its directory.

    Returns
    -------
    NodeConfig
        With absolute paths. The key password is not read here (see
        :func:`chain.node.identity.key_password`).

    Raises
    ------
    ConfigError
        Unreadable file or bad TOML, a missing or unknown section or key, a value of the
        wrong type, a bad ``host:port``, a missing file, a limit that is not positive, a
        password file readable by others.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("genesis.cbor", "node.key", "node.cert.json"):
    ...     _ = (d / name).write_bytes(b"")
    >>> _ = (d / "node.toml").write_text('''
    ... [node]
    ... name = "node-0"
    ... genesis = "genesis.cbor"
    ... key_file = "node.key"
    ... cert_file = "node.cert.json"
    ... [p2p]
    ... listen = ["127.0.0.1:26656"]
    ... ''')
    >>> cfg = load_config(d / "node.toml")
    >>> cfg.node.data_dir == d / "data", str(cfg.api.listen)
    (True, '127.0.0.1:26657')
    >>> _ = (d / "bad.toml").write_text('[node]\\nname = "x"\\nport = 1\\n')
    >>> load_config(d / "bad.toml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chain.errors.ConfigError: .../bad.toml: [node] genesis: is required
    """
    file = Path(os.path.abspath(os.fspath(path)))
    doc = _read_toml(file)
    unknown = sorted(set(doc) - set(_SECTIONS))
    if unknown:
        raise ConfigError(str(file), unknown[0], None, f"unknown section (known: {', '.join(_SECTIONS)})")
    readers: dict[str, Callable[[_Table], Any]] = {
        "node": _node_section,
        "p2p": _p2p_section,
        "api": _api_section,
        "consensus": _consensus_section,
        "mempool": _mempool_section,
        "state_sync": _state_sync_section,
        "vault": _vault_section,
    }
    parts = {
        name: read(_table(file, doc, name, required=name in ("node", "p2p")))
        for name, read in readers.items()
    }
    return NodeConfig(path=file, **parts)


# --------------------------------------------------------------------------- writing
def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value: object) -> str:
    """One TOML value: string, integer, finite float, boolean or a list of those.

    Examples
    --------
    >>> toml_value(["a\\"b", 1, 2.5, True])
    '["a\\\\"b", 1, 2.5, true]'
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"TOML value {value} is not finite")
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def toml_document(sections: dict[str, dict[str, object]]) -> str:
    """A TOML document of flat tables (``None`` values are left out, as are empty tables).

    Examples
    --------
    >>> print(toml_document({"api": {"listen": "127.0.0.1:26657", "x": None}}), end="")
    [api]
    listen = "127.0.0.1:26657"
    """
    blocks = []
    for name, values in sections.items():
        lines = [f"{key} = {toml_value(v)}" for key, v in values.items() if v is not None]
        if lines:
            blocks.append(f"[{name}]\n" + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def _relative(path: Path | None, base: Path) -> str | None:
    """``path`` relative to ``base`` when it lies in ``base``'s parent (the network directory)."""
    if path is None:
        return None
    if path.is_relative_to(base.parent) and base.parent != Path(base.anchor):
        return os.path.relpath(path, base)
    return str(path)


def dump_config(cfg: NodeConfig, *, header: str = "") -> str:
    """The TOML text of ``cfg``; :func:`load_config` of it (at ``cfg.path``) gives ``cfg`` back.

    Paths are written relative to the file's directory when they lie within its parent
    (a network directory moved as a whole keeps working), else absolute. ``header`` is
    written first as ``#`` comment lines.

    Examples
    --------
    >>> cfg = NodeConfig(Path("/net/node-0/node.toml"),
    ...     NodeSection("node-0", Path("/net/genesis.cbor"), Path("/net/node-0/node.key"),
    ...                 Path("/net/node-0/node.cert.json"), Path("/net/node-0/data")),
    ...     P2PSection((HostPort("127.0.0.1", 26656),)))
    >>> print(dump_config(cfg).split("\\n\\n")[0])
    [node]
    name = "node-0"
    genesis = "../genesis.cbor"
    key_file = "node.key"
    cert_file = "node.cert.json"
    data_dir = "data"
    log_level = "info"
    """
    base = cfg.directory
    n, p, a, c, m, ss, v = cfg.node, cfg.p2p, cfg.api, cfg.consensus, cfg.mempool, cfg.state_sync, cfg.vault
    sections: dict[str, dict[str, object]] = {
        "node": {
            "name": n.name,
            "genesis": _relative(n.genesis, base),
            "key_file": _relative(n.key_file, base),
            "key_password_file": _relative(n.key_password_file, base),
            "cert_file": _relative(n.cert_file, base),
            "data_dir": _relative(n.data_dir, base),
            "log_level": n.log_level,
        },
        "p2p": {
            "listen": [str(x) for x in p.listen],
            "persistent_peers": [str(x) for x in p.persistent_peers],
            "max_frame_bytes": p.max_frame_bytes,
            "handshake_timeout_s": float(p.handshake_timeout_s),
        },
        "api": {"listen": str(a.listen), "public_status": a.public_status},
        "consensus": {"round_timeout_ms": c.round_timeout_ms},
        "mempool": {"max_txs": m.max_txs, "max_bytes": m.max_bytes, "max_per_sender": m.max_per_sender},
        "state_sync": {
            "enable": ss.enable,
            "snapshot_interval": ss.snapshot_interval,
            "snapshot_keep": ss.snapshot_keep,
            "discovery_s": float(ss.discovery_s),
            "chunk_timeout_s": float(ss.chunk_timeout_s),
        },
        "vault": {
            "enable": v.enable,
            "dir": _relative(v.dir, base),
            "max_object_bytes": v.max_object_bytes,
            "replicate_to": list(v.replicate_to),
            "repair_from": None if v.repair_from is None else list(v.repair_from),
            "hold_all": v.hold_all,
            "replicate_interval_s": float(v.replicate_interval_s),
            "scrub_interval_s": float(v.scrub_interval_s),
            "operators": list(v.operators),
            "backend": None if v.backend == "local" else v.backend,  # the default is left out
            **_s3_keys(v.s3, base),
        },
    }
    comments = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    return comments + ("\n" if comments else "") + toml_document(sections)


__all__ = [
    "KEY_PASSWORD_ENV",
    "LOG_LEVELS",
    "ApiSection",
    "ConfigError",
    "ConsensusSection",
    "HostPort",
    "MempoolSection",
    "NodeConfig",
    "NodeSection",
    "P2PSection",
    "S3Settings",
    "StateSyncSection",
    "VaultSection",
    "check_host",
    "dump_config",
    "load_config",
    "parse_host_port",
    "toml_document",
    "toml_value",
]
