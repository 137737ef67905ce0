"""Agency data sources: CSV directories, SQLite databases, in-memory arrays (PostgreSQL: :mod:`privacy.pg`).

A connector returns whole columns as NumPy arrays; filtering, grouping and aggregation
happen in :mod:`privacy.local` with one semantics for every source. Rows never leave the
agency: connectors are only ever called inside the agency's own process.

Examples
--------
>>> import numpy as np
>>> c = ArrayConnector({"plays": {"views": np.array([1, 2, 3])}})
>>> c.fetch("plays", ["views"])["views"].tolist()
[1, 2, 3]
"""

from __future__ import annotations

import csv
import os
import re
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from privacy.catalog import Catalog
from privacy.errors import ConnectorError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_ROWS = 1 << 26


class Connector(Protocol):
    """Reads columns of one table of an agency's own data.

    A connector may also offer ``linear_vector(spec, catalog, min_group)``, computing a
    linear query's local slot vector in its own engine (:mod:`privacy.pg`); it must equal
    :func:`privacy.local.linear_vector` over the fetched rows.
    """

    def fetch(self, table: str, columns: Sequence[str]) -> dict[str, np.ndarray]: ...


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ConnectorError(f"{name!r} is not a valid table or column name")
    return name


def _to_array(values: Sequence[Any], kind: str, column: str) -> np.ndarray:
    if kind == "str":
        return np.asarray([str(v) for v in values], dtype=object)
    try:
        arr = np.asarray(values, dtype=np.float64 if kind == "float" else np.int64)
    except (TypeError, ValueError) as exc:
        raise ConnectorError(f"column {column!r} holds a value that is not a {kind}: {exc}") from None
    if kind == "float" and not np.all(np.isfinite(arr)):
        raise ConnectorError(f"column {column!r} holds NaN or infinite values; clean the data first")
    return arr


class ArrayConnector:
    """In-memory tables (tests, benchmarks)."""

    def __init__(self, tables: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        self.tables = {t: dict(cols) for t, cols in tables.items()}

    def fetch(self, table: str, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """The named columns of ``table``."""
        if table not in self.tables:
            raise ConnectorError(f"this agency has no table {table!r}")
        cols = self.tables[table]
        missing = [c for c in columns if c not in cols]
        if missing:
            raise ConnectorError(f"table {table!r} has no column(s) {missing}")
        return {c: np.asarray(cols[c]) for c in columns}


class CSVConnector:
    """A directory of ``<table>.csv`` files with a header row; types come from the catalog."""

    def __init__(self, directory: str | os.PathLike[str], catalog: Catalog) -> None:
        self.directory = Path(directory)
        self.catalog = catalog

    def fetch(self, table: str, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """Read the named columns of ``<directory>/<table>.csv``."""
        path = self.directory / f"{_ident(table)}.csv"
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
                if header is None:
                    raise ConnectorError(f"{path} is empty: expected a header row")
                try:
                    idx = [header.index(c) for c in columns]
                except ValueError:
                    raise ConnectorError(f"{path} lacks one of the columns {list(columns)}") from None
                raw: list[list[str]] = [[] for _ in columns]
                for lineno, row in enumerate(reader, start=2):
                    if len(row) != len(header):
                        raise ConnectorError(f"{path}:{lineno}: {len(row)} fields, header has {len(header)}")
                    for out, i in zip(raw, idx, strict=True):
                        out.append(row[i])
                    if lineno > MAX_ROWS:
                        raise ConnectorError(f"{path} has more than {MAX_ROWS} rows")
        except OSError as exc:
            raise ConnectorError(f"cannot read {path}: {exc.strerror}") from None
        return {
            c: _to_array(v, self.catalog.column(table, c).kind, c) for c, v in zip(columns, raw, strict=True)
        }


class SQLiteConnector:
    """Tables of a SQLite database (opened read-only)."""

    def __init__(self, path: str | os.PathLike[str], catalog: Catalog) -> None:
        self.path = Path(path)
        self.catalog = catalog

    def fetch(self, table: str, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """``SELECT columns FROM table``."""
        if not self.path.is_file():
            raise ConnectorError(f"SQLite database {self.path} does not exist")
        cols = ", ".join(f'"{_ident(c)}"' for c in columns)
        try:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                rows = con.execute(f'SELECT {cols} FROM "{_ident(table)}" LIMIT {MAX_ROWS + 1}').fetchall()
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise ConnectorError(f"{self.path}: cannot read table {table!r}: {exc}") from None
        if len(rows) > MAX_ROWS:
            raise ConnectorError(f"table {table!r} has more than {MAX_ROWS} rows")
        if not rows:
            return {c: _to_array([], self.catalog.column(table, c).kind, c) for c in columns}
        transposed = list(zip(*rows, strict=True))
        return {
            c: _to_array(v, self.catalog.column(table, c).kind, c)
            for c, v in zip(columns, transposed, strict=True)
        }


def from_config(source: Mapping[str, Any], catalog: Catalog, base: Path | None = None) -> Connector:
    """A connector from ``{"kind": "csv" | "sqlite", "path": ...}`` (paths relative to ``base``)
    or ``{"kind": "postgresql", "conninfo": ...}`` (:mod:`privacy.pg`)."""
    kind = source.get("kind")
    if kind == "postgresql":
        from privacy.pg import from_source

        return from_source(source, catalog)
    path = source.get("path")
    if not isinstance(path, str):
        raise ConnectorError("a data source needs a 'path'")
    full = Path(path) if base is None or os.path.isabs(path) else base / path
    if kind == "csv":
        return CSVConnector(full, catalog)
    if kind == "sqlite":
        return SQLiteConnector(full, catalog)
    raise ConnectorError(f"unknown data source kind {kind!r}; use 'csv', 'sqlite' or 'postgresql'")
