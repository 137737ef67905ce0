"""PostgreSQL data sources against a real, throw-away server: the pushed-down local aggregates
equal the in-process computation over the same rows, and a query across three PostgreSQL
agencies equals plaintext over the union."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from privacy import paillier
from privacy.agency import AgencyServer
from privacy.connectors import ArrayConnector, from_config
from privacy.errors import ConnectorError
from privacy.identity import PeerDirectory, Trust
from privacy.local import linear_vector, load, local_linear, order_counter
from privacy.mpc import plan as mpc_plan
from privacy.pg import PostgreSQLConnector
from privacy.pg_cluster import ThrowawayCluster, pg_bin_dir
from privacy.policy import BudgetLedger, Policy
from privacy.query import Regulator
from privacy.spec import Filter, QuerySpec, parse_sql

from .conftest import AGENCY_IDS, CATALOG, COUNTIES, POLICY, REGULATOR, ROOT, Direct, agency_tables

pytestmark = pytest.mark.skipif(pg_bin_dir() is None, reason="PostgreSQL is not installed (scripts/setup.sh)")

TABLES = [agency_tables(40 + i, 500 + 100 * i) for i in range(3)]


def _load(con: psycopg.Connection[Any], schema: str, t: dict[str, np.ndarray]) -> None:
    con.execute(f'CREATE SCHEMA "{schema}"')
    con.execute(
        f'CREATE TABLE "{schema}".plays (county text, work integer, views bigint, fee double precision)'
    )
    with con.cursor().copy(f'COPY "{schema}".plays (county, work, views, fee) FROM STDIN') as cp:
        for row in zip(t["county"], t["work"], t["views"], t["fee"], strict=True):
            cp.write_row([str(row[0]), int(row[1]), int(row[2]), float(row[3])])


@pytest.fixture(scope="module")
def cluster(pg_server: ThrowawayCluster) -> Iterator[ThrowawayCluster]:
    c = pg_server  # shared with the other tests (tests/pg.py); the agencies' schemas are ours
    with psycopg.connect(c.conninfo, autocommit=True) as con:
        for i, t in enumerate(TABLES):
            _load(con, f"agency{i}", t)
        con.execute('CREATE SCHEMA "dirty"')
        con.execute(
            'CREATE TABLE "dirty".plays (county text, work integer, views bigint, fee double precision)'
        )
        con.execute("INSERT INTO \"dirty\".plays VALUES ('elsewhere', 1, 5, 1.0), ('c1', 2, 7, 'NaN')")
    yield c


SPECS = [
    "SELECT COUNT(*) FROM plays",
    "SELECT COUNT(*) FROM plays WHERE views >= 100 AND work IN (1, 2, 3, 5, 8, 13, 21) GROUP BY county",
    "SELECT SUM(views) FROM plays WHERE county != 'c3' GROUP BY county",
    "SELECT MEAN(fee) FROM plays WHERE fee BETWEEN -10 AND 250.5 GROUP BY county",
    "SELECT VARIANCE(fee) FROM plays WHERE work < 20",
    "SELECT VARIANCE(views) FROM plays WHERE views > 4990 GROUP BY county",
    "SELECT HISTOGRAM(views, 0, 10, 500, 2500, 5000) FROM plays GROUP BY county",
    "SELECT HISTOGRAM(fee, -50, 0, 100.25, 499.99) FROM plays WHERE county = 'c2'",
    "SELECT SUM(fee) FROM plays WHERE work = 7 GROUP BY work",
    "SELECT COUNT(*) FROM plays WHERE views > 99999",
]


@pytest.mark.parametrize("text", SPECS)
@pytest.mark.parametrize("min_group", [1, 30])
def test_pushed_down_aggregates_equal_the_local_computation(
    cluster: ThrowawayCluster, text: str, min_group: int
) -> None:
    spec = parse_sql(text)
    spec.validate(CATALOG)
    for i, t in enumerate(TABLES):
        pg = PostgreSQLConnector(cluster.conninfo, CATALOG, f"agency{i}")
        pushed = local_linear(pg, CATALOG, spec, min_group).tolist()
        fetched = linear_vector(spec, CATALOG, load(pg, CATALOG, spec), min_group).tolist()
        arrays = local_linear(ArrayConnector({"plays": t}), CATALOG, spec, min_group).tolist()
        assert pushed == fetched == arrays


@pytest.mark.parametrize(
    "text",
    [
        "SELECT MEDIAN(views) FROM plays WHERE work < 30 GROUP BY county",
        "SELECT QUANTILE(fee, 0.1, 0.9) FROM plays WHERE county IN ('c1', 'c3')",
        "SELECT MIN(fee) FROM plays WHERE views > 4990 GROUP BY work",
    ],
)
@pytest.mark.parametrize("method", ["search", "histogram"])
def test_pushed_down_rank_counts_equal_the_local_computation(
    cluster: ThrowawayCluster, text: str, method: str
) -> None:
    spec = parse_sql(text)
    p = mpc_plan(spec, CATALOG, 3, 1, method)
    rng = np.random.default_rng(7)
    for i, t in enumerate(TABLES):
        pg = PostgreSQLConnector(cluster.conninfo, CATALOG, f"agency{i}")
        pushed = pg.order_counter(spec, CATALOG, p.bits, p.width)
        local = order_counter(
            spec, CATALOG, load(ArrayConnector({"plays": t}), CATALOG, spec), p.bits, p.width
        )
        assert pushed.totals().tolist() == local.totals().tolist()
        assert len(pushed.keys) <= len(local.keys)  # one key per distinct (group, bin)
        bins = np.concatenate([local.keys[:200] & ((1 << p.bits) - 1), rng.integers(0, 1 << p.bits, 200)])
        groups = np.concatenate([local.keys[:200] >> p.bits, rng.integers(0, p.groups, 200)])
        assert pushed.at_most(groups, bins).tolist() == local.at_most(groups, bins).tolist()


def test_values_are_parameters_and_names_are_checked(cluster: ThrowawayCluster) -> None:
    pg = PostgreSQLConnector(cluster.conninfo, CATALOG, "agency0")
    sneaky = QuerySpec("count", "plays", filters=(Filter("county", "=", "c1' OR '1'='1"),))
    assert local_linear(pg, CATALOG, sneaky).tolist() == [0]
    with pytest.raises(ConnectorError, match="not a valid table or column name"):
        pg.fetch('plays" ; DROP TABLE plays; --', ["views"])
    with pytest.raises(ConnectorError, match="not a valid table or column name"):
        PostgreSQLConnector(cluster.conninfo, CATALOG, "agency0; DROP")
    with pytest.raises(ConnectorError, match=r'PostgreSQL: relation "agency0.nope" does not exist'):
        pg.fetch("nope", ["views"])
    dirty = PostgreSQLConnector(cluster.conninfo, CATALOG, "dirty")
    with pytest.raises(ConnectorError, match="outside its declared domain"):
        local_linear(dirty, CATALOG, parse_sql("SELECT COUNT(*) FROM plays GROUP BY county"))
    with pytest.raises(ConnectorError, match="outside its declared domain"):
        dirty.order_counter(parse_sql("SELECT MEDIAN(views) FROM plays GROUP BY county"), CATALOG, 13, 1)
    with pytest.raises(ConnectorError, match="NaN"):
        dirty.fetch("plays", ["fee"])
    gone = PostgreSQLConnector(f"host={cluster.dir} port=1 dbname=x user=nobody", CATALOG)
    with pytest.raises(ConnectorError, match="PostgreSQL: "):
        gone.fetch("plays", ["views"])
    # read-only: even a connector's own session cannot write
    with pytest.raises(ConnectorError, match="read-only transaction"):
        pg._rows("CREATE TABLE agency0.x (a int)", [])
    with pytest.raises(ConnectorError, match="needs a 'conninfo'"):
        from_config({"kind": "postgresql"}, CATALOG)
    with pytest.raises(ConnectorError, match="RONGXIN_TEST_NO_SUCH_VAR is not set"):
        from_config(
            {"kind": "postgresql", "conninfo": "x", "password_env": "RONGXIN_TEST_NO_SUCH_VAR"}, CATALOG
        )


def test_fetch_equals_the_stored_rows(cluster: ThrowawayCluster) -> None:
    pg = PostgreSQLConnector(cluster.conninfo, CATALOG, "agency1")
    got = pg.fetch("plays", ["county", "views", "fee"])
    order = np.lexsort((got["fee"], got["views"], got["county"].astype(str)))
    t = TABLES[1]
    ref = np.lexsort((t["fee"], t["views"], t["county"].astype(str)))
    assert got["views"][order].tolist() == t["views"][ref].tolist()
    assert got["fee"][order].tolist() == t["fee"][ref].tolist()


def test_a_query_across_postgresql_agencies_equals_plaintext(
    cluster: ThrowawayCluster, tmp_path: Path, keypair: tuple[paillier.PublicKey, paillier.PrivateKey]
) -> None:
    names = [f"agency-{i}" for i in range(3)]
    peers = PeerDirectory({n: AGENCY_IDS[n].cert for n in names})
    servers = [
        AgencyServer(
            n,
            from_config(
                {"kind": "postgresql", "conninfo": cluster.conninfo, "schema": f"agency{i}"}, CATALOG
            ),
            CATALOG,
            Policy.from_dict(POLICY),
            AGENCY_IDS[n],
            Trust(ROOT.public_key),
            peers,
            BudgetLedger(tmp_path / f"{n}.db"),
        )
        for i, n in enumerate(names)
    ]

    res = Regulator(CATALOG, [Direct(s) for s in servers], keypair, REGULATOR).run(
        parse_sql("SELECT MEAN(views) FROM plays WHERE work < 30 GROUP BY county")
    )
    u = {c: np.concatenate([t[c] for t in TABLES]) for c in TABLES[0]}
    for row, c in zip(res.rows, COUNTIES, strict=True):
        m = (u["county"] == c) & (u["work"] < 30)
        assert row[2] == int(m.sum()) and row[1] == pytest.approx(u["views"][m].mean(), rel=1e-12)
