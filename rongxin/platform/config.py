"""The platform's configuration: one TOML file, ``platform.toml``.

::

    [platform]
    name = "county-legal-center"          # recorded in the audit log as the "node" field
    listen = "127.0.0.1:8480"
    data_dir = "platform-data"            # accounts.sqlite, ops-audit.jsonl, uploads/
    library = "library"                   # the forensics library of registered works
    client = "rongxin-client.toml"        # the member's client profile (node, genesis, key)
    nodes = ["http://127.0.0.1:26657"]    # consortium nodes shown on the operations page
    admin_password_file = "admin.pass"    # bootstraps user "admin" when no admin exists
    secure_cookies = "auto"               # "auto" (Secure when the request is https), true, false
    behind_proxy = false                  # true: trust X-Forwarded-For/-Proto from 127.0.0.1
    language = "zh"                       # default language: "zh" or "en"
    max_upload_mb = 512
    session_hours = 12
    scan_allow = []                       # internal addresses/networks scans may be let reach
    scan_db = "postgresql://scanner@db.internal:5432/scans"  # optional; else $RONGXIN_SCAN_DB, else SQLite
    agencies = "agencies.toml"            # the regulator console's deployment (privacy.config)

    [ops]                                 # optional: metric sampling and alert thresholds
    sample_interval_s = 10                # (see rongxin.platform.opsconfig for every key)

Relative paths are relative to the file's directory; every key but ``client`` has a
default (without a client profile the explorer says it has no node to read). ``scan_db``
puts the databases of scans started from the platform on PostgreSQL, as ``rongxin scan
--db`` does (leave the password out of the file: libpq reads ``PGPASSWORD`` or
``~/.pgpass``); without it the environment variable ``RONGXIN_SCAN_DB`` is used, and
without that each scan keeps a SQLite file in its directory.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rongxin.errors import RongxinError
from rongxin.platform.opsconfig import OpsConfig, ops_config


class PlatformError(RongxinError):
    """Root of the platform's errors: bad configuration, accounts, uploads."""


class ConfigError(PlatformError):
    """``platform.toml`` is missing, malformed or names something unusable."""


@dataclass(frozen=True)
class PlatformConfig:
    """A loaded ``platform.toml`` (paths absolute)."""

    data_dir: Path
    library: Path
    name: str = "platform"
    host: str = "127.0.0.1"
    port: int = 8480
    client: Path | None = None
    nodes: tuple[str, ...] = ()
    admin_password_file: Path | None = None
    secure_cookies: str = "auto"
    behind_proxy: bool = False
    language: str = "zh"
    max_upload_bytes: int = 512 * 1024 * 1024
    session_s: int = 12 * 3600
    scan_allow: tuple[str, ...] = ()
    scan_db: str | None = None
    agencies: Path | None = None
    ops: OpsConfig = field(default_factory=OpsConfig)
    extra: dict[str, Any] = field(default_factory=dict)


_KEYS = {
    "name",
    "listen",
    "data_dir",
    "library",
    "client",
    "nodes",
    "admin_password_file",
    "secure_cookies",
    "behind_proxy",
    "language",
    "max_upload_mb",
    "session_hours",
    "scan_allow",
    "scan_db",
    "agencies",
}


def _listen(value: object, where: str) -> tuple[str, int]:
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(f"{where}: listen must be HOST:PORT, e.g. 127.0.0.1:8480")
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: listen must be HOST:PORT with a port 1-65535, not {value!r}")
    return host, int(port)


def _ops(section: object, p: Path) -> OpsConfig:
    if not isinstance(section, dict):
        raise ConfigError(f"{p}: [ops] must be a table")
    try:
        return ops_config(section, str(p))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _scan_db(value: object, p: Path) -> str | None:
    """The scan database URI (``scan_db`` or ``$RONGXIN_SCAN_DB``), checked; ``None``: SQLite."""
    from crawlers.errors import ScanStoreError
    from crawlers.scandb import parse_uri

    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{p}: [platform] scan_db: a postgresql:// URI is required")
    try:
        parse_uri(value)
    except ScanStoreError as exc:
        raise ConfigError(f"{p}: [platform] scan_db (or RONGXIN_SCAN_DB): {exc}") from None
    return value


def load_config(path: str | os.PathLike[str]) -> PlatformConfig:
    """Read and check ``platform.toml``.

    Raises
    ------
    ConfigError
        Naming the file and the key that is wrong.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "platform.toml").write_text('[platform]\\nlisten = "127.0.0.1:9000"\\n')
    >>> c = load_config(d / "platform.toml")
    >>> c.port, c.data_dir.name, c.language
    (9000, 'platform-data', 'zh')
    """
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no platform configuration at {p}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{p}: not a readable TOML file: {exc}") from None
    section = doc.get("platform")
    if not isinstance(section, dict) or not set(doc) <= {"platform", "ops"}:
        raise ConfigError(f"{p}: the file has a [platform] section and an optional [ops] section, no other")
    ops = _ops(doc.get("ops", {}), p)
    unknown = set(section) - _KEYS
    if unknown:
        raise ConfigError(f"{p}: [platform] {sorted(unknown)[0]}: unknown key")
    base = p.parent.resolve()

    def path_of(key: str, default: str | None) -> Path | None:
        v = section.get(key, default)
        if v is None:
            return None
        if not isinstance(v, str) or not v:
            raise ConfigError(f"{p}: [platform] {key}: a non-empty string is required")
        return (base / v).resolve()

    host, port = _listen(section.get("listen", "127.0.0.1:8480"), str(p))
    nodes = section.get("nodes", [])
    if not isinstance(nodes, list) or not all(
        isinstance(n, str) and n.startswith(("http://", "https://")) for n in nodes
    ):
        raise ConfigError(f"{p}: [platform] nodes: a list of http:// or https:// URLs is required")
    secure = section.get("secure_cookies", "auto")
    if isinstance(secure, bool):
        secure = "always" if secure else "never"
    if secure not in ("auto", "always", "never"):
        raise ConfigError(f'{p}: [platform] secure_cookies: true, false or "auto"')
    behind_proxy = section.get("behind_proxy", False)
    if not isinstance(behind_proxy, bool):
        raise ConfigError(f"{p}: [platform] behind_proxy: true or false")
    lang = section.get("language", "zh")
    if lang not in ("zh", "en"):
        raise ConfigError(f'{p}: [platform] language: "zh" or "en"')
    upload_mb = section.get("max_upload_mb", 512)
    hours = section.get("session_hours", 12)
    for key, v in (("max_upload_mb", upload_mb), ("session_hours", hours)):
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ConfigError(f"{p}: [platform] {key}: a positive integer is required")
    scan_allow = section.get("scan_allow", [])
    if not isinstance(scan_allow, list) or not all(isinstance(a, str) and a for a in scan_allow):
        raise ConfigError(f"{p}: [platform] scan_allow: a list of addresses or networks is required")
    scan_db = _scan_db(section.get("scan_db", os.environ.get("RONGXIN_SCAN_DB") or None), p)
    name = section.get("name", "platform")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{p}: [platform] name: a non-empty string is required")
    data_dir = path_of("data_dir", "platform-data")
    library = path_of("library", "library")
    assert data_dir is not None and library is not None
    return PlatformConfig(
        data_dir=data_dir,
        library=library,
        name=name,
        host=host,
        port=port,
        client=path_of("client", None),
        nodes=tuple(n.rstrip("/") for n in nodes),
        admin_password_file=path_of("admin_password_file", None),
        secure_cookies=secure,
        behind_proxy=behind_proxy,
        language=lang,
        max_upload_bytes=upload_mb * 1024 * 1024,
        session_s=hours * 3600,
        scan_allow=tuple(scan_allow),
        scan_db=scan_db,
        agencies=path_of("agencies", None),
        ops=ops,
    )
