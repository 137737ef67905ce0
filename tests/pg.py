"""A throw-away PostgreSQL server for the tests that need one (privacy agencies, scan databases).

:func:`pg_server` is a session fixture (registered in ``tests/conftest.py``): one cluster
(:class:`privacy.pg_cluster.ThrowawayCluster`, Debian's ``initdb``/``pg_ctl``, a Unix
socket only, run as ``nobody`` when the tests run as root) shared by every test module
that asks for it; each module keeps to its own schemas or databases. Without PostgreSQL
installed the tests that need it are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest

from privacy.pg_cluster import ThrowawayCluster, pg_bin_dir

needs_pg = pytest.mark.skipif(pg_bin_dir() is None, reason="PostgreSQL is not installed (scripts/setup.sh)")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ThrowawayCluster]:
    """A running throw-away PostgreSQL cluster (skips the test when PostgreSQL is missing)."""
    if pg_bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (scripts/setup.sh)")
    with ThrowawayCluster() as cluster:
        yield cluster


def pg_uri(cluster: ThrowawayCluster, user: str | None = None, password: str | None = None) -> str:
    """A ``postgresql://`` URI of ``cluster``'s database over its Unix socket."""
    who = quote(user or cluster.user, safe="")
    if password is not None:
        who += ":" + quote(password, safe="")
    socket_dir = quote(str(cluster.dir), safe="")
    return f"postgresql://{who}@/{cluster.database}?host={socket_dir}&port={cluster.port}"


def password_login(cluster: ThrowawayCluster, role: str, password: str) -> None:
    """Create the login ``role`` (owner of nothing, allowed to create schemas) that must give
    ``password`` (SCRAM) on the cluster's socket; the other users keep ``trust``."""
    hba = cluster.data / "pg_hba.conf"
    lines = hba.read_text().splitlines()
    rule = f"local all {role} scram-sha-256"
    if rule not in lines:
        hba.write_text("\n".join([rule, *lines]) + "\n")  # the first matching line decides
    with psycopg.connect(cluster.conninfo, autocommit=True) as con:
        exists = con.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if exists is None:
            con.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
            con.execute(f'GRANT CREATE ON DATABASE "{cluster.database}" TO "{role}"')
        con.execute("SELECT pg_reload_conf()")
