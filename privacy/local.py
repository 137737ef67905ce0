"""What an agency computes on its own rows: filters, groups and local aggregates.

Everything here runs inside the agency. The outputs are vectors that are encrypted
(Paillier path) or secret-shared (MPC path) before they leave; nothing here is sent in
the clear.

Examples
--------
>>> import numpy as np
>>> from privacy.catalog import Catalog
>>> from privacy.spec import parse_sql
>>> cat = Catalog.from_dict({"t": {"g": {"type": "str", "domain": ["x", "y"]},
...                                "v": {"type": "int", "min": 0, "max": 100}}})
>>> frame = Frame.from_columns({"g": np.array(["x", "y", "x"], dtype=object), "v": np.array([1, 2, 3])})
>>> spec = parse_sql("SELECT SUM(v) FROM t GROUP BY g")
>>> linear_vector(spec, cat, frame.filtered(spec, cat)).tolist()
[4, 2]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from privacy.catalog import Catalog, Column
from privacy.connectors import Connector
from privacy.errors import ConnectorError, OverflowRisk, SpecError
from privacy.spec import Filter, QuerySpec

MAX_ROWS_BITS = 26
_PART = 21
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Frame:
    """Columns of one table (filtered or not) as arrays of equal length."""

    columns: dict[str, np.ndarray]
    n: int

    @classmethod
    def from_columns(cls, columns: dict[str, np.ndarray]) -> Frame:
        """Check lengths and wrap."""
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ConnectorError(f"columns have different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        if n >= 1 << MAX_ROWS_BITS:
            raise ConnectorError(f"a table may hold at most {(1 << MAX_ROWS_BITS) - 1} rows per agency")
        return cls(columns, n)

    def filtered(self, spec: QuerySpec, catalog: Catalog) -> Frame:
        """Rows that satisfy every filter of ``spec``."""
        mask = np.ones(self.n, dtype=bool)
        for f in spec.filters:
            mask &= _condition(self.columns[f.column], f, catalog.column(spec.table, f.column))
        if mask.all():
            return self
        return Frame({c: v[mask] for c, v in self.columns.items()}, int(mask.sum()))


def load(connector: Connector, catalog: Catalog, spec: QuerySpec) -> Frame:
    """Fetch the columns ``spec`` reads and apply its filters."""
    cols = sorted(spec.columns_used()) or [next(iter(catalog.tables[spec.table]))]
    return Frame.from_columns(connector.fetch(spec.table, cols)).filtered(spec, catalog)


def _condition(values: np.ndarray, f: Filter, col: Column) -> np.ndarray:
    v = f.value
    if f.op == "in":
        assert isinstance(v, tuple)
        return np.isin(values, np.asarray(list(v), dtype=values.dtype if col.numeric else object))
    if f.op == "between":
        assert isinstance(v, tuple)
        return np.asarray((values >= v[0]) & (values <= v[1]), dtype=bool)
    ops = {
        "=": np.equal,
        "!=": np.not_equal,
        "<": np.less,
        "<=": np.less_equal,
        ">": np.greater,
        ">=": np.greater_equal,
    }
    return np.asarray(ops[f.op](values, v), dtype=bool)


def domain_ids(values: np.ndarray, col: Column) -> np.ndarray:
    """Index of each value in the column's declared domain; unknown values are an error."""
    if col.domain is None:
        raise SpecError(f"column {col.name!r} has no declared domain")
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    uniq, inverse = np.unique(values, return_inverse=True)
    try:
        mapped = np.asarray([col.domain_index(u.item() if hasattr(u, "item") else u) for u in uniq])
    except Exception:
        bad = [u for u in uniq if u not in col._index]
        raise ConnectorError(
            f"column {col.name!r} holds {len(bad)} value(s) outside its declared domain "
            f"(e.g. {bad[0]!r}); extend the catalog's domain or clean the data"
        ) from None
    return np.asarray(mapped[inverse], dtype=np.int64)


def n_groups(spec: QuerySpec, catalog: Catalog) -> int:
    """Number of groups (1 without GROUP BY)."""
    if spec.group_by is None:
        return 1
    domain = catalog.column(spec.table, spec.group_by).domain
    assert domain is not None
    return len(domain)


def group_ids(frame: Frame, spec: QuerySpec, catalog: Catalog) -> np.ndarray:
    """Group index of every row (all 0 without GROUP BY)."""
    if spec.group_by is None:
        return np.zeros(frame.n, dtype=np.int64)
    return domain_ids(frame.columns[spec.group_by], catalog.column(spec.table, spec.group_by))


def scaled_values(frame: Frame, col: Column) -> np.ndarray:
    """Values in fixed-point units, clipped to the declared bounds (int64)."""
    lo, hi = col.scaled_bounds()
    raw = frame.columns[col.name]
    if col.scale != 1 or raw.dtype.kind == "f":
        raw = np.rint(np.asarray(raw, dtype=np.float64) * col.scale)
    return np.clip(np.asarray(raw, dtype=np.int64), lo, hi)


def slot_kinds(spec: QuerySpec) -> list[str]:
    """The plaintext slots of one group, in order."""
    if spec.aggregate == "count":
        return ["count"]
    if spec.aggregate == "sum":
        return ["sum"]
    if spec.aggregate == "mean":
        return ["sum", "count"]
    if spec.aggregate == "variance":
        return ["sum", "sumsq", "count"]
    if spec.aggregate == "histogram":
        assert spec.bins is not None
        return ["bin"] * (len(spec.bins) - 1)
    raise SpecError(f"{spec.aggregate!r} is not a linear aggregate")


def value_bits(spec: QuerySpec, catalog: Catalog) -> int:
    """Bits ``b`` with |local slot value| < 2**b for any agency (given the row limit)."""
    rows = MAX_ROWS_BITS
    if spec.aggregate in ("count", "histogram"):
        return rows + 1
    col = catalog.column(spec.table, spec.column or "")
    lo, hi = col.scaled_bounds()
    mag = max(abs(lo), abs(hi), 1)
    per_row = mag * mag if spec.aggregate == "variance" else mag
    if spec.aggregate == "variance" and (hi - lo) >= 1 << 31:
        raise OverflowRisk(
            f"column {col.name!r}: a range of {hi - lo} units is too wide for an exact variance "
            "(at most 2**31); narrow the declared bounds or lower the scale"
        )
    return rows + per_row.bit_length() + 1


def sensitivities(spec: QuerySpec, catalog: Catalog) -> list[int]:
    """L1 sensitivity of each slot kind (one row changes one group's slots)."""
    out = []
    for kind in dict.fromkeys(slot_kinds(spec)):
        if kind in ("count", "bin"):
            out.append(1)
            continue
        lo, hi = catalog.column(spec.table, spec.column or "").scaled_bounds()
        mag = max(abs(lo), abs(hi), 1)
        out.append(mag * mag if kind == "sumsq" else mag)
    return out


def _group_sum(u: np.ndarray, groups: np.ndarray, g: int) -> list[int]:
    """Exact per-group sums of non-negative int64 values (float64 bincounts on 21-bit parts)."""
    totals = [0] * g
    for start in range(0, len(u), _CHUNK):
        part_u = u[start : start + _CHUNK].astype(np.uint64)
        part_g = groups[start : start + _CHUNK]
        for shift in range(0, 63, _PART):
            piece = ((part_u >> np.uint64(shift)) & np.uint64((1 << _PART) - 1)).astype(np.float64)
            if not piece.any():
                continue
            sums = np.bincount(part_g, weights=piece, minlength=g)
            for i in np.nonzero(sums)[0]:
                totals[i] += int(sums[i]) << shift
    return totals


def local_linear(connector: Connector, catalog: Catalog, spec: QuerySpec, min_group: int = 1) -> np.ndarray:
    """The agency's local slot vector: computed by the connector's engine when it offers
    ``linear_vector`` (filters and grouping pushed down), else over the fetched rows."""
    pushed = getattr(connector, "linear_vector", None)
    if pushed is not None:
        return np.asarray(pushed(spec, catalog, min_group), dtype=object)
    return linear_vector(spec, catalog, load(connector, catalog, spec), min_group)


def linear_vector(spec: QuerySpec, catalog: Catalog, frame: Frame, min_group: int = 1) -> np.ndarray:
    """The agency's local slot vector, group-major (object array of Python ints).

    Groups with fewer than ``min_group`` local rows contribute zeros (suppressed).
    """
    g = n_groups(spec, catalog)
    kinds = slot_kinds(spec)
    groups = group_ids(frame, spec, catalog)
    counts = np.bincount(groups, minlength=g)
    out = np.zeros((g, len(kinds)), dtype=object)
    if spec.aggregate == "histogram":
        assert spec.bins is not None
        col = catalog.column(spec.table, spec.column or "")
        values = np.asarray(frame.columns[col.name], dtype=np.float64)
        edges = np.asarray(spec.bins, dtype=np.float64)
        idx = np.searchsorted(edges, values, side="right") - 1
        idx[values == edges[-1]] = len(edges) - 2
        ok = (idx >= 0) & (idx < len(edges) - 1)
        b = len(edges) - 1
        hist = np.bincount(groups[ok] * b + idx[ok], minlength=g * b).reshape(g, b)
        out[:, :] = hist.astype(object)
    else:
        sums: dict[str, list[int]] = {"count": [int(c) for c in counts]}
        if spec.column is not None and spec.aggregate != "count":
            col = catalog.column(spec.table, spec.column)
            lo, _ = col.scaled_bounds()
            u = scaled_values(frame, col) - lo
            su = _group_sum(u, groups, g)
            sums["sum"] = [s + lo * n for s, n in zip(su, sums["count"], strict=True)]
            if "sumsq" in kinds:
                suu = _group_sum(u * u, groups, g)
                sums["sumsq"] = [
                    q + 2 * lo * s + lo * lo * n for q, s, n in zip(suu, su, sums["count"], strict=True)
                ]
        for j, kind in enumerate(kinds):
            out[:, j] = sums[kind]
    out[counts < min_group, :] = 0
    return out.reshape(-1)


# --- MPC inputs ------------------------------------------------------------------------------


def order_bits(col: Column, max_bits: int) -> tuple[int, int]:
    """(bits, width): values are mapped to ``2**bits`` bins of ``width`` units (1 = exact)."""
    lo, hi = col.scaled_bounds()
    span = hi - lo + 1
    bits = min(max_bits, max(1, math.ceil(math.log2(span))))
    width = -(-span // (1 << bits))
    return bits, width


def order_histogram(spec: QuerySpec, catalog: Catalog, frame: Frame, bits: int, width: int) -> np.ndarray:
    """Counts per (group, value bin): shape ``(G, 2**bits)``."""
    g = n_groups(spec, catalog)
    col = catalog.column(spec.table, spec.column or "")
    lo, _ = col.scaled_bounds()
    q = (scaled_values(frame, col) - lo) // width
    d = 1 << bits
    groups = group_ids(frame, spec, catalog)
    return np.bincount(groups * d + q, minlength=g * d).reshape(g, d)


@dataclass(frozen=True)
class RankCounter:
    """One agency's rows as sorted ``(group, value bin)`` keys: how many lie at or below a bin.

    What the agency answers, secret-shared, at each step of the secure search for an order
    statistic (:mod:`privacy.mpc_party`); it never leaves the agency in the clear.

    Examples
    --------
    >>> c = RankCounter.build(np.array([0, 0, 1, 0]), np.array([5, 2, 7, 2]), groups=2, bits=3)
    >>> c.totals().tolist()
    [3, 1]
    >>> c.at_most(np.array([0, 0, 1, 1]), np.array([1, 2, 6, 7])).tolist()
    [0, 2, 0, 1]
    >>> RankCounter.build(np.array([1]), np.array([3]), 2, 3, counts=np.array([4])).totals().tolist()
    [0, 4]
    """

    keys: np.ndarray
    cumulative: np.ndarray
    groups: int
    bits: int

    @classmethod
    def build(
        cls,
        group_ids: np.ndarray,
        bins: np.ndarray,
        groups: int,
        bits: int,
        counts: np.ndarray | None = None,
    ) -> RankCounter:
        """Sort the keys ``group * 2**bits + bin`` (group ids in ``[0, groups)``, bins in
        ``[0, 2**bits)``), each standing for one row or for ``counts[i]`` rows."""
        if groups.bit_length() + bits > 62:
            raise SpecError(f"{groups} groups of 2**{bits} value bins do not fit 64-bit keys")
        gid = np.asarray(group_ids, dtype=np.int64)
        q = np.asarray(bins, dtype=np.int64)
        weights = np.ones(len(q), dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
        if not len(gid) == len(q) == len(weights):
            raise ConnectorError("group ids, bins and counts differ in length")
        bad = (gid < 0) | (gid >= groups) | (q < 0) | (q >= 1 << bits) | (weights < 0)
        if bad.any():
            raise ConnectorError("a row falls outside the plan's groups or value bins")
        if int(weights.sum()) >= 1 << MAX_ROWS_BITS:
            raise ConnectorError(f"a table may hold at most {(1 << MAX_ROWS_BITS) - 1} rows per agency")
        keys = gid * (1 << bits) + q
        order = np.argsort(keys, kind="stable")
        cumulative = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(weights[order])])
        return cls(keys[order], cumulative, groups, bits)

    def _below_or_at(self, keys: np.ndarray, side: str) -> np.ndarray:
        index = np.searchsorted(self.keys, keys, side="left" if side == "left" else "right")
        return np.asarray(self.cumulative[index])

    def totals(self) -> np.ndarray:
        """Rows per group (int64, length ``groups``)."""
        edges = np.arange(self.groups + 1, dtype=np.int64) << self.bits
        return np.diff(self._below_or_at(edges, "left"))

    def at_most(self, groups: np.ndarray, bins: np.ndarray) -> np.ndarray:
        """Rows of each ``groups[i]`` whose bin is ``<= bins[i]`` (arrays of equal shape)."""
        g = np.asarray(groups, dtype=np.int64) << self.bits
        upper = self._below_or_at(g + np.asarray(bins, dtype=np.int64), "right")
        return np.asarray(upper - self._below_or_at(g, "left"))


def order_counter(spec: QuerySpec, catalog: Catalog, frame: Frame, bits: int, width: int) -> RankCounter:
    """The agency's :class:`RankCounter` for an order statistic over ``2**bits`` bins of ``width``."""
    col = catalog.column(spec.table, spec.column or "")
    lo, _ = col.scaled_bounds()
    q = (scaled_values(frame, col) - lo) // width
    return RankCounter.build(group_ids(frame, spec, catalog), q, n_groups(spec, catalog), bits)


def key_totals(spec: QuerySpec, catalog: Catalog, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """(sum of the value column per key, rows per key) for top-k (int64, length K)."""
    key = catalog.column(spec.table, spec.key or "")
    assert key.domain is not None
    k = len(key.domain)
    ids = domain_ids(frame.columns[key.name], key)
    col = catalog.column(spec.table, spec.column or "")
    values = scaled_values(frame, col)
    totals = np.asarray(_group_sum(values, ids, k), dtype=object)
    return totals, np.bincount(ids, minlength=k)


def key_indicator(spec: QuerySpec, catalog: Catalog, frame: Frame) -> np.ndarray:
    """1 for every domain key present in the agency's (filtered) rows."""
    key = catalog.column(spec.table, spec.key or "")
    assert key.domain is not None
    ids = domain_ids(frame.columns[key.name], key)
    return (np.bincount(ids, minlength=len(key.domain)) > 0).astype(np.int64)
