"""Benchmark the privacy queries: Paillier packed vs unpacked, MPC median and top-k.

    .venv/bin/python bench/privacy.py --quick      # acceptance cells + packed-vs-unpacked
    .venv/bin/python bench/privacy.py --full       # 3/5/10 agencies x 10k/100k/1M rows

Paillier cells run MEAN (the grouped SUM and COUNT slots) over 30 groups with a 3072-bit
key; rows are per agency, held in memory (load time excluded; local aggregation, encryption,
aggregation and decryption included). MPC cells write one SQLite file per agency, then run
real party processes over TCP on localhost.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from privacy import paillier
from privacy.agency import AgencyServer
from privacy.catalog import Catalog
from privacy.config import Deployment, LocalAgencyClient
from privacy.connectors import ArrayConnector
from privacy.policy import Policy
from privacy.query import Regulator
from privacy.spec import parse_sql

GROUPS = 30
KEYS = 200
CATALOG = {
    "t": {
        "g": {"type": "int", "domain": list(range(GROUPS))},
        "k": {"type": "int", "domain": list(range(KEYS))},
        "v": {"type": "int", "min": 0, "max": 1_000_000},
    }
}
POLICY = {"roles": {"regulator": {"tables": {"t": "*"}}}}


def table(seed: int, rows: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "g": rng.integers(0, GROUPS, rows),
        "k": rng.integers(0, KEYS, rows),
        "v": np.minimum(rng.lognormal(6.0, 1.6, rows).astype(np.int64), 1_000_000),
    }


def paillier_cell(
    agencies: int, rows: int, keypair: tuple[paillier.PublicKey, paillier.PrivateKey], packed: bool
) -> dict[str, float]:
    cat = Catalog.from_dict(CATALOG)
    data = [table(a, rows) for a in range(agencies)]
    clients = [
        LocalAgencyClient(AgencyServer(f"a{a}", ArrayConnector({"t": d}), cat, Policy.from_dict(POLICY)))
        for a, d in enumerate(data)
    ]
    reg = Regulator(cat, clients, keypair, "bench", "regulator", timeout=3600)
    t0 = time.perf_counter()
    res = reg.run(parse_sql("SELECT MEAN(v) FROM t GROUP BY g"), packed=packed)
    seconds = time.perf_counter() - t0
    v = np.concatenate([d["v"] for d in data])
    g = np.concatenate([d["g"] for d in data])
    assert [r[2] for r in res.rows] == np.bincount(g, minlength=GROUPS).tolist(), "count mismatch"
    assert all(
        abs(r[1] * r[2] - s) < 1e-6 * max(1, s)
        for r, s in zip(res.rows, np.bincount(g, weights=v, minlength=GROUPS), strict=True)
    )
    total_bytes = (
        res.stats["bytes_request"]
        + res.stats["bytes_agencies_to_aggregator"]
        + res.stats["bytes_to_regulator"]
    )
    return {"seconds": seconds, "bytes": total_bytes, "cts": res.stats["ciphertexts_per_agency"]}


def mpc_cell(agencies: int, rows_total: int, query: str, workdir: Path) -> dict[str, float]:
    per = rows_total // agencies
    agencies_cfg = []
    for a in range(agencies):
        path = workdir / f"a{a}-{rows_total}.db"
        if not path.exists():
            d = table(100 + a, per)
            con = sqlite3.connect(path)
            con.execute("CREATE TABLE t (g INTEGER, k INTEGER, v INTEGER)")
            con.executemany(
                "INSERT INTO t VALUES (?, ?, ?)",
                zip(d["g"].tolist(), d["k"].tolist(), d["v"].tolist(), strict=True),
            )
            con.commit()
            con.close()
        agencies_cfg.append(
            {"name": f"a{a}", "source": {"kind": "sqlite", "path": path.name}, "policy": POLICY}
        )
    dep = Deployment.from_dict({"catalog": CATALOG, "agencies": agencies_cfg}, workdir)
    reg = Regulator(
        dep.catalog, dep.clients(), paillier.generate_keypair(2048), "bench", "regulator", timeout=3600
    )
    t0 = time.perf_counter()
    res = reg.run(parse_sql(query))
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "bytes": res.stats.get("bytes_sent", 0), "rows": res.rows[:2]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick", action="store_true", help="acceptance cells and packed vs unpacked (default)"
    )
    mode.add_argument("--full", action="store_true", help="the full matrix (long)")
    ap.add_argument("--bits", type=int, default=3072)
    args = ap.parse_args()
    keypair = paillier.generate_keypair(args.bits)
    if args.full:
        p_cells = [(a, r) for a in (3, 5, 10) for r in (10_000, 100_000, 1_000_000)]
        unpacked_cells = set(p_cells)
        m_cells = [(a, r) for a in (3, 5, 10) for r in (10_000, 100_000, 1_000_000)]
    else:
        p_cells = [(3, 10_000), (10, 100_000), (10, 1_000_000)]
        unpacked_cells = {(3, 10_000), (10, 1_000_000)}
        m_cells = [(3, 100_000)]
    print(f"Paillier, MEAN (grouped SUM + COUNT) over {GROUPS} groups, {args.bits}-bit key")
    print(f"{'agencies':>8} {'rows/agency':>12} {'mode':>9} {'ct/agency':>9} {'seconds':>9} {'bytes':>12}")
    for a, r in p_cells:
        for packed in (True, False):
            if not packed and (a, r) not in unpacked_cells:
                continue
            c = paillier_cell(a, r, keypair, packed)
            print(
                f"{a:>8} {r:>12,} {'packed' if packed else 'unpacked':>9} {c['cts']:>9} "
                f"{c['seconds']:>9.2f} {c['bytes']:>12,}",
                flush=True,
            )
    print()
    print(
        "MPC (mpyc, parties over TCP on localhost): median and top-5 of 200 keys; rows = total over agencies"
    )
    print(f"{'agencies':>8} {'rows total':>12} {'query':>8} {'seconds':>9} {'bytes sent':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for a, r in m_cells:
            for name, q in (("median", "SELECT MEDIAN(v) FROM t"), ("top-5", "SELECT TOPK(v, 5, k) FROM t")):
                c = mpc_cell(a, r, q, Path(tmp))
                print(f"{a:>8} {r:>12,} {name:>8} {c['seconds']:>9.2f} {c['bytes']:>12,}", flush=True)


if __name__ == "__main__":
    main()
