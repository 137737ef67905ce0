"""Seeded synthetic data for the five-agency demo: plays, infringement cases, revenue.

Five county media centers each hold three tables (the same schema, their own rows):

* ``plays(county, category, work_id, day, views)`` — plays of registered works;
* ``cases(county, category, work_id, status, infringing_views)`` — infringement cases;
* ``revenue(county, category, amount)`` — licensing revenue in yuan (2 decimals).

:func:`write_demo` writes SQLite databases (agencies 1, 3, 5) or CSV directories (2, 4)
and ``agencies.toml``. The same seed gives byte-identical data.

Examples
--------
>>> t = generate_tables(seed=7, agency=0, rows=50)
>>> sorted(t), len(t["plays"]["views"])
(['cases', 'plays', 'revenue'], 50)
"""

from __future__ import annotations

import csv
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from chain.crypto import PrivateKey
from chain.crypto.keyfile import save_private_key
from chain.types import Role
from privacy.identity import Identity, certificate_to_json
from privacy.mpc_tls import service_credentials

COUNTIES = [f"county-{i:02d}" for i in range(1, 11)]
CATEGORIES = ["news", "drama", "music", "variety", "documentary", "sports"]
STATUSES = ["reported", "confirmed", "dismissed"]
N_WORKS = 2000
AGENCIES = ["huaxian", "liuyang", "pingjiang", "xiangyin", "yueyang"]
MAX_VIEWS = 1_000_000
_SQL_TYPES = {"f": "REAL", "i": "INTEGER", "u": "INTEGER"}

CATALOG: dict[str, Any] = {
    "plays": {
        "county": {"type": "str", "domain": COUNTIES},
        "category": {"type": "str", "domain": CATEGORIES},
        "work_id": {"type": "int", "domain": list(range(N_WORKS))},
        "day": {"type": "int", "min": 0, "max": 365},
        "views": {"type": "int", "min": 0, "max": MAX_VIEWS},
    },
    "cases": {
        "county": {"type": "str", "domain": COUNTIES},
        "category": {"type": "str", "domain": CATEGORIES},
        "work_id": {"type": "int", "domain": list(range(N_WORKS))},
        "status": {"type": "str", "domain": STATUSES},
        "infringing_views": {"type": "int", "min": 0, "max": 100_000},
    },
    "revenue": {
        "county": {"type": "str", "domain": COUNTIES},
        "category": {"type": "str", "domain": CATEGORIES},
        "amount": {"type": "float", "min": 0, "max": 50_000, "scale": 100},
    },
}


def generate_tables(seed: int, agency: int, rows: int) -> dict[str, dict[str, np.ndarray]]:
    """One agency's tables (seeded; agencies differ in county mix and popularity)."""
    rng = np.random.default_rng([seed, agency])
    home = np.array([(2 * agency + j) % len(COUNTIES) for j in range(3)])
    county_p = np.full(len(COUNTIES), 0.2 / (len(COUNTIES) - 3))
    county_p[home] = 0.8 / 3
    county_p /= county_p.sum()

    def counties(n: int) -> np.ndarray:
        return np.asarray(COUNTIES, dtype=object)[rng.choice(len(COUNTIES), n, p=county_p)]

    def categories(n: int) -> np.ndarray:
        return np.asarray(CATEGORIES, dtype=object)[rng.integers(0, len(CATEGORIES), n)]

    works = np.minimum(rng.zipf(1.3, rows) - 1, N_WORKS - 1)
    plays = {
        "county": counties(rows),
        "category": categories(rows),
        "work_id": works.astype(np.int64),
        "day": rng.integers(0, 366, rows),
        "views": np.minimum(rng.lognormal(6.0, 1.6, rows).astype(np.int64), MAX_VIEWS),
    }
    n_cases = max(1, rows // 10)
    cases = {
        "county": counties(n_cases),
        "category": categories(n_cases),
        "work_id": (np.minimum(rng.zipf(1.5, n_cases) - 1, N_WORKS - 1)).astype(np.int64),
        "status": np.asarray(STATUSES, dtype=object)[rng.choice(3, n_cases, p=[0.3, 0.55, 0.15])],
        "infringing_views": np.minimum(rng.lognormal(5.0, 1.5, n_cases).astype(np.int64), 100_000),
    }
    n_rev = max(1, rows // 5)
    revenue = {
        "county": counties(n_rev),
        "category": categories(n_rev),
        "amount": np.round(np.minimum(rng.gamma(2.0, 800.0, n_rev), 50_000), 2),
    }
    return {"plays": plays, "cases": cases, "revenue": revenue}


def write_sqlite(path: Path, tables: dict[str, dict[str, np.ndarray]]) -> None:
    """Write tables to a fresh SQLite database."""
    if path.exists():
        path.unlink()
    con = sqlite3.connect(path)
    try:
        for name, cols in tables.items():
            names = list(cols)
            decl = ", ".join(f'"{c}" {_SQL_TYPES.get(cols[c].dtype.kind, "TEXT")}' for c in names)
            con.execute(f'CREATE TABLE "{name}" ({decl})')
            rows = zip(*(cols[c].tolist() for c in names), strict=True)
            con.executemany(f'INSERT INTO "{name}" VALUES ({", ".join("?" * len(names))})', rows)
        con.commit()
    finally:
        con.close()


def write_csv(directory: Path, tables: dict[str, dict[str, np.ndarray]]) -> None:
    """Write tables as ``<table>.csv`` files."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, cols in tables.items():
        with open(directory / f"{name}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(list(cols))
            w.writerows(zip(*(cols[c].tolist() for c in cols), strict=True))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml_value(x)}' for k, x in v.items()) + " }"
    raise TypeError(type(v).__name__)


DEMO_SCRYPT_N = 1 << 14
"""scrypt cost of the demo's key files (lower than a production key's, so the demo starts fast)."""


def write_identity(keys: Path, name: str, identity: Identity, password: str) -> dict[str, str]:
    """Write ``name``'s encrypted key and certificate under ``keys``; the config entries."""
    keys.mkdir(parents=True, exist_ok=True)
    save_private_key(identity.key, keys / f"{name}.key", password, scrypt_n=DEMO_SCRYPT_N)
    (keys / f"{name}.cert.json").write_text(certificate_to_json(identity.cert), encoding="utf-8")
    return {
        "identity_key": f"keys/{name}.key",
        "identity_certificate": f"keys/{name}.cert.json",
        "password_file": "keys/password",
    }


def deployment_toml(
    sources: list[tuple[str, dict[str, str]]],
    min_group_size: int = 3,
    root_public_key: str = "",
    identities: dict[str, dict[str, str]] | None = None,
    chain_id: str = "rongxin-local",
) -> str:
    """The demo's ``agencies.toml``."""
    ids = identities or {}
    lines = [
        "# Rongxin privacy demo: five county media centers and a provincial regulator.",
        "[consortium]",
        f'root_public_key = "{root_public_key}"',
        f"chain_id = {_toml_value(chain_id)}",
        "",
        "[regulator]",
        'role = "regulator"',
        "key_bits = 3072",
        *(f"{k} = {_toml_value(v)}" for k, v in ids.get("regulator", {}).items()),
        "",
    ]
    for table, cols in CATALOG.items():
        for col, props in cols.items():
            lines.append(f"[catalog.{table}.{col}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in props.items())
            lines.append("")
    for name, source in sources:
        lines += [
            "[[agencies]]",
            f'name = "{name}"',
            f"source = {_toml_value(source)}",
            f'state_dir = "state/{name}"',
            *(f"{k} = {_toml_value(v)}" for k, v in ids.get(name, {}).items()),
            "[agencies.policy]",
            f"min_group_size = {min_group_size}",
            "min_agencies = 3",
            "epsilon_budget = 10.0",
            "[agencies.policy.roles.regulator]",
            'tables = { plays = "*", cases = "*", revenue = "*" }',
            "[agencies.policy.roles.auditor]",
            'tables = { cases = ["county", "category", "status"] }',
            'aggregates = ["count"]',
            "",
        ]
    return "\n".join(lines)


def write_demo(
    out_dir: str | Path,
    rows: int = 20_000,
    seed: int = 2026,
    min_group_size: int = 3,
    root: PrivateKey | None = None,
    regulator: Identity | None = None,
    chain_id: str = "rongxin-local",
) -> Path:
    """Write the five agencies' data, SM2 identities and ``agencies.toml``; returns the config path.

    The agencies' certificates are issued by ``root`` (the consortium's supervisory root
    key; a fresh one when not given), as is the regulator's unless ``regulator`` (an
    existing member's identity, carrying the ``regulator`` role) is given. The key files
    share one random password, written to ``keys/password``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    root = root or PrivateKey.generate()
    keys = out / "keys"
    keys.mkdir(exist_ok=True)
    password = secrets.token_urlsafe(18)
    (keys / "password").write_text(password + "\n", encoding="utf-8")
    (keys / "password").chmod(0o600)
    regulator = regulator or Identity.issue(root, "Provincial regulator", [Role.REGULATOR])
    identities = {"regulator": write_identity(keys, "regulator", regulator, password)}
    for name in AGENCIES:
        agency = Identity.issue(root, f"{name} county media center", [Role.MEDIA_CENTER], name)
        identities[name] = write_identity(keys, name, agency, password)
    sources = []
    for i, name in enumerate(AGENCIES):
        tables = generate_tables(seed, i, rows)
        if i % 2 == 0:
            write_sqlite(out / f"{name}.db", tables)
            sources.append((name, {"kind": "sqlite", "path": f"{name}.db"}))
        else:
            write_csv(out / name, tables)
            sources.append((name, {"kind": "csv", "path": name}))
    config = out / "agencies.toml"
    toml = deployment_toml(sources, min_group_size, root.public_key.to_bytes().hex(), identities, chain_id)
    config.write_text(toml, encoding="utf-8")
    return config


def write_service_configs(
    config: str | Path,
    host: str = "127.0.0.1",
    base_port: int = 8600,
    stride: int = 1,
    tls: bool = True,
) -> tuple[Path, list[Path]]:
    """Split an in-process deployment into one service configuration per agency.

    Each agency gets ``<name>.agency.json`` (its entry, listening on ``host`` at
    ``base_port + stride * i``, pinning the other agencies' certificates); the regulator gets
    ``agencies-net.json``, reaching every agency by URL. Paths stay relative to the
    directory of ``config``. With ``tls`` each agency serves HTTPS with a fresh key and
    self-signed certificate (``keys/<name>.tls.*``), which the regulator's file pins.
    Returns the regulator's file and the agencies' files.
    """
    import json
    import tomllib

    src = Path(config)
    doc = tomllib.loads(src.read_text(encoding="utf-8"))
    out_dir = src.resolve().parent
    agencies = doc["agencies"]
    files, remote = [], []
    for i, entry in enumerate(agencies):
        port = base_port + stride * i
        peers = [
            {"name": other["name"], "certificate": other["identity_certificate"]}
            for other in agencies
            if other["name"] != entry["name"]
        ]
        tls_files: dict[str, str] = {}
        if tls:
            key_pem, cert_pem = service_credentials(host)
            key_path = out_dir / "keys" / f"{entry['name']}.tls.key"
            key_path.write_bytes(key_pem)
            key_path.chmod(0o600)
            (out_dir / "keys" / f"{entry['name']}.tls.crt").write_bytes(cert_pem)
            tls_files = {
                "tls_key": f"keys/{entry['name']}.tls.key",
                "tls_certificate": f"keys/{entry['name']}.tls.crt",
            }
        service = {
            "consortium": doc["consortium"],
            "agency": {**entry, "listen": f"{host}:{port}", **tls_files},
            "peers": peers,
            "catalog": doc["catalog"],
        }
        path = out_dir / f"{entry['name']}.agency.json"
        path.write_text(json.dumps(service, indent=2, ensure_ascii=False), encoding="utf-8")
        files.append(path)
        remote.append(
            {
                "name": entry["name"],
                "url": f"{'https' if tls else 'http'}://{host}:{port}",
                "identity_certificate": entry["identity_certificate"],
                **({"tls_certificate": tls_files["tls_certificate"]} if tls else {}),
            }
        )
    net = {**{k: v for k, v in doc.items() if k != "agencies"}, "agencies": remote}
    regulator = out_dir / "agencies-net.json"
    regulator.write_text(json.dumps(net, indent=2, ensure_ascii=False), encoding="utf-8")
    return regulator, files
