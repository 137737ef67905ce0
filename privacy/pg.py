"""PostgreSQL as an agency's data source (psycopg 3), with filters and GROUP BY pushed into SQL.

:class:`PostgreSQLConnector` reads whole columns like the other connectors (the MPC path),
and computes a linear query's local slot vector in the database
(:meth:`PostgreSQLConnector.linear_vector`): the filters become a parameterized ``WHERE``,
the grouping a ``GROUP BY`` over the group column, the sums of fixed-point values
(rounded, clipped to the catalog's bounds exactly as :func:`privacy.local.scaled_values`
does) and the histogram buckets (``width_bucket``) are computed by PostgreSQL, and only one
row per group comes back. The result equals :func:`privacy.local.linear_vector` over the
fetched rows; it stays inside the agency like any local aggregate (it is masked and
encrypted before it leaves), so pushing the work down reveals nothing more.

Identifiers are checked against a strict pattern and quoted; every value is a bound
parameter. The connection is read-only (``default_transaction_read_only``) with a
statement timeout.

Examples
--------
>>> from privacy.catalog import Catalog
>>> cat = Catalog.from_dict({"plays": {"views": {"type": "int", "min": 0, "max": 9}}})
>>> PostgreSQLConnector("host=/run/agency dbname=agency", cat).schema
'public'
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from privacy.catalog import Catalog, Column
from privacy.connectors import MAX_ROWS, _ident, _to_array
from privacy.errors import ConnectorError, SpecError
from privacy.local import MAX_ROWS_BITS, RankCounter, n_groups, slot_kinds
from privacy.spec import Filter, QuerySpec

STATEMENT_TIMEOUT_MS = 600_000
"""Longest a query may run in the agency's database."""
_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _q(name: str) -> str:
    return f'"{_ident(name)}"'


def _condition(f: Filter) -> tuple[str, list[Any]]:
    col = _q(f.column)
    if f.op == "in":
        assert isinstance(f.value, tuple)
        return f"{col} = ANY(%s)", [list(f.value)]
    if f.op == "between":
        assert isinstance(f.value, tuple)
        return f"{col} BETWEEN %s AND %s", [f.value[0], f.value[1]]
    if f.op not in _OPS:
        raise SpecError(f"filter operator {f.op!r} is not supported")
    return f"{col} {_OPS[f.op]} %s", [f.value]


def _scaled(col: Column) -> str:
    """SQL for :func:`privacy.local.scaled_values`: round(x * scale), clipped, as bigint."""
    lo, hi = col.scaled_bounds()
    raw = (
        f"round({_q(col.name)}::float8 * {col.scale})"
        if col.kind == "float" or col.scale != 1
        else _q(col.name)
    )
    return f"LEAST(GREATEST(({raw})::bigint, {lo}::bigint), {hi}::bigint)"


class PostgreSQLConnector:
    """Tables of a PostgreSQL database.

    Parameters
    ----------
    conninfo : str
        A libpq connection string (``host=… port=… dbname=… user=…``); a password comes
        from ``password`` or the usual libpq sources (``PGPASSWORD``, ``~/.pgpass``).
    catalog : Catalog
        The shared catalog (column types, bounds, domains).
    schema : str
        The schema the tables live in.
    password : str or None
        The database password, if any.
    """

    def __init__(
        self, conninfo: str, catalog: Catalog, schema: str = "public", password: str | None = None
    ) -> None:
        self.conninfo = conninfo
        self.catalog = catalog
        self.schema = _ident(schema)
        self.password = password

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        import psycopg

        kw: dict[str, Any] = {
            "options": f"-c default_transaction_read_only=on -c statement_timeout={STATEMENT_TIMEOUT_MS}",
            "connect_timeout": 10,
        }
        if self.password is not None:
            kw["password"] = self.password
        try:
            with psycopg.connect(self.conninfo, **kw) as con:
                return list(con.execute(sql, list(params)).fetchall())
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConnectorError(f"PostgreSQL: {first}") from None

    def _table(self, table: str) -> str:
        return f"{_q(self.schema)}.{_q(table)}"

    def fetch(self, table: str, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """``SELECT columns FROM schema.table`` as arrays."""
        cols = ", ".join(_q(c) for c in columns)
        rows = self._rows(f"SELECT {cols} FROM {self._table(table)} LIMIT {MAX_ROWS + 1}", [])
        if len(rows) > MAX_ROWS:
            raise ConnectorError(f"table {table!r} has more than {MAX_ROWS} rows")
        transposed = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
        return {
            c: _to_array(list(v), self.catalog.column(table, c).kind, c)
            for c, v in zip(columns, transposed, strict=True)
        }

    def linear_vector(self, spec: QuerySpec, catalog: Catalog, min_group: int = 1) -> np.ndarray:
        """The local slot vector of a linear query, computed in the database (group-major)."""
        where, params = ["TRUE"], []
        for f in spec.filters:
            sql, p = _condition(f)
            where.append(sql)
            params.extend(p)
        g = n_groups(spec, catalog)
        kinds = slot_kinds(spec)
        group = "0" if spec.group_by is None else _q(spec.group_by)
        if spec.aggregate == "histogram":
            assert spec.bins is not None and spec.column is not None
            edges = [float(e) for e in spec.bins]
            col = _q(spec.column)
            bucket = (
                f"CASE WHEN {col} = %s THEN {len(edges) - 1} "
                f"ELSE width_bucket({col}::float8, %s::float8[]) END"
            )
            sql = (
                f"SELECT {group} AS g, {bucket} AS b, COUNT(*) FROM {self._table(spec.table)} "
                f"WHERE {' AND '.join(where)} GROUP BY {'2' if spec.group_by is None else '1, 2'}"
            )
            rows = self._rows(sql, [edges[-1], edges, *params])
        else:
            exprs = ["COUNT(*)"]
            if spec.column is not None and spec.aggregate != "count":
                x = _scaled(catalog.column(spec.table, spec.column))
                exprs.append(f"COALESCE(SUM(({x})::numeric), 0)")
                if "sumsq" in kinds:
                    exprs.append(f"COALESCE(SUM(({x})::numeric * ({x})::numeric), 0)")
            sql = (
                f"SELECT {group} AS g, {', '.join(exprs)} FROM {self._table(spec.table)} "
                f"WHERE {' AND '.join(where)}{'' if spec.group_by is None else ' GROUP BY 1'}"
            )
            rows = self._rows(sql, params)
        return self._assemble(spec, catalog, rows, g, kinds, min_group)

    def order_counter(self, spec: QuerySpec, catalog: Catalog, bits: int, width: int) -> RankCounter:
        """Rows per (group, value bin) of an order statistic, counted in the database.

        ``WHERE`` from the filters, the value scaled and clipped as in-process, binned by
        ``width`` and grouped; one row per distinct (group, bin) comes back instead of
        every row, and it stays inside the agency like the rows themselves.
        """
        assert spec.column is not None
        where, params = ["TRUE"], []
        for f in spec.filters:
            sql, p = _condition(f)
            where.append(sql)
            params.extend(p)
        col = catalog.column(spec.table, spec.column)
        lo, _ = col.scaled_bounds()
        group = "0" if spec.group_by is None else _q(spec.group_by)
        rows = self._rows(
            f"SELECT {group} AS g, (({_scaled(col)}) - ({lo})::bigint) / ({width})::bigint AS b, "
            f"COUNT(*) FROM {self._table(spec.table)} WHERE {' AND '.join(where)} GROUP BY 1, 2",
            params,
        )
        if any(r[1] is None for r in rows):
            raise ConnectorError(f"column {col.name!r} holds NULL values; clean the data first")
        gids = np.array([self._group_index(spec, catalog, r[0]) for r in rows], dtype=np.int64)
        bins = np.array([int(r[1]) for r in rows], dtype=np.int64)
        counts = np.array([int(r[2]) for r in rows], dtype=np.int64)
        return RankCounter.build(gids, bins, n_groups(spec, catalog), bits, counts)

    def _group_index(self, spec: QuerySpec, catalog: Catalog, value: Any) -> int:
        if spec.group_by is None:
            return 0
        col = catalog.column(spec.table, spec.group_by)
        try:
            return col.domain_index(value)
        except Exception:
            raise ConnectorError(
                f"column {col.name!r} holds a value outside its declared domain (e.g. {value!r}); "
                "extend the catalog's domain or clean the data"
            ) from None

    def _assemble(
        self,
        spec: QuerySpec,
        catalog: Catalog,
        rows: list[tuple[Any, ...]],
        g: int,
        kinds: list[str],
        min_group: int,
    ) -> np.ndarray:
        out = np.zeros((g, len(kinds)), dtype=object)
        counts = [0] * g
        if spec.aggregate == "histogram":
            b = len(kinds)
            for value, bucket, n in rows:
                i = self._group_index(spec, catalog, value)
                counts[i] += int(n)
                if bucket is not None and 1 <= int(bucket) <= b:
                    out[i, int(bucket) - 1] += int(n)
        else:
            for value, n, *sums in rows:
                i = self._group_index(spec, catalog, value)
                counts[i] = int(n)
                by_kind = {"count": int(n)}
                if sums:
                    by_kind["sum"] = int(sums[0])
                if len(sums) > 1:
                    by_kind["sumsq"] = int(sums[1])
                out[i, :] = [by_kind[k] for k in kinds]
        if sum(counts) >= 1 << MAX_ROWS_BITS:
            raise ConnectorError(f"a table may hold at most {(1 << MAX_ROWS_BITS) - 1} rows per agency")
        for i, n in enumerate(counts):
            if n < min_group:
                out[i, :] = 0
        return out.reshape(-1)


def from_source(source: Mapping[str, Any], catalog: Catalog) -> PostgreSQLConnector:
    """``{"kind": "postgresql", "conninfo": …, "schema": …, "password_env": …}``."""
    conninfo = source.get("conninfo")
    if not isinstance(conninfo, str) or not conninfo:
        raise ConnectorError("a PostgreSQL source needs a 'conninfo' (libpq connection string)")
    schema = source.get("schema", "public")
    password_env = source.get("password_env")
    password = None
    if password_env is not None:
        password = os.environ.get(str(password_env))
        if password is None:
            raise ConnectorError(f"the PostgreSQL password variable ${password_env} is not set")
    return PostgreSQLConnector(conninfo, catalog, str(schema), password)
