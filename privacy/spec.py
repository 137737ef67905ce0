"""Query specifications: a JSON form and a small SQL-like text form.

A query names one aggregate over one table of the shared catalog, with optional filters
and an optional GROUP BY on a column with a declared (low-cardinality) domain.

========================  ==========================================  ==========
aggregate                 SQL-like form                               path
========================  ==========================================  ==========
count                     ``COUNT(*)``                                Paillier
sum, mean, variance       ``SUM(c)``, ``MEAN(c)``, ``VARIANCE(c)``     Paillier
histogram (fixed bins)    ``HISTOGRAM(c, 0, 10, 100)``                Paillier
min, max, median          ``MIN(c)``, ``MAX(c)``, ``MEDIAN(c)``        MPC
quantiles                 ``QUANTILE(c, 0.25, 0.75)``                 MPC
top-k by key              ``TOPK(c, 5, key)``                         MPC
intersection size         ``INTERSECTION(key)``                       MPC
========================  ==========================================  ==========

Filters: ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``IN (...)``, ``BETWEEN a AND b``,
joined by ``AND``. ``WITH EPSILON e`` asks for differential-privacy noise (linear
aggregates only).

Examples
--------
>>> s = parse_sql("SELECT SUM(views) FROM plays WHERE county IN ('a', 'b') GROUP BY category")
>>> s.aggregate, s.column, s.group_by, s.filters[0].op
('sum', 'views', 'category', 'in')
>>> QuerySpec.from_dict(s.to_dict()) == s
True
>>> parse_sql("SELECT SUM(views) FORM plays")
Traceback (most recent call last):
...
privacy.errors.SpecError: at character 19: expected FROM, found 'FORM'
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from typing import Any

from privacy.catalog import Catalog, Column
from privacy.errors import CatalogError, SpecError

LINEAR = frozenset({"count", "sum", "mean", "variance", "histogram"})
ORDER = frozenset({"min", "max", "median", "quantile"})
MPC = ORDER | {"topk", "intersection"}
AGGREGATES = LINEAR | MPC
OPS = ("=", "!=", "<", "<=", ">", ">=", "in", "between")
MAX_BINS = 4096
MAX_QUANTILES = 16
MAX_K = 1000
MAX_IN = 1024
MAX_EPSILON = 10.0
MAX_TEXT = 8192
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

Literal = str | int | float


@dataclass(frozen=True)
class Filter:
    """One condition ``column op value`` (``value`` is a tuple for IN and BETWEEN)."""

    column: str
    op: str
    value: Literal | tuple[Literal, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"column": self.column, "op": self.op, "value": value}


@dataclass(frozen=True)
class QuerySpec:
    """A validated-shape query (call :meth:`validate` against a catalog before running).

    Parameters
    ----------
    aggregate : str
        One of :data:`AGGREGATES`.
    table : str
        Catalog table.
    column : str or None
        The value column (``None`` for count and intersection).
    filters : tuple of Filter
        Conditions joined by AND.
    group_by : str or None
        A column with a declared domain.
    bins : tuple of float or None
        Histogram edges (increasing; the last bin is closed, as in ``numpy.histogram``).
    quantiles : tuple of float or None
        Probabilities in (0, 1] (``inverted_cdf`` definition).
    k : int or None
        Top-k size.
    key : str or None
        Key column (with a declared domain) for top-k and intersection.
    epsilon : float or None
        Differential-privacy budget to spend (linear aggregates only).
    requester, role : str
        Who asks, and in which role (policy is decided per role, budgets per requester).
    """

    aggregate: str
    table: str
    column: str | None = None
    filters: tuple[Filter, ...] = ()
    group_by: str | None = None
    bins: tuple[float, ...] | None = None
    quantiles: tuple[float, ...] | None = None
    k: int | None = None
    key: str | None = None
    epsilon: float | None = None
    requester: str = ""
    role: str = ""

    def __post_init__(self) -> None:
        _check_shape(self)

    @property
    def is_linear(self) -> bool:
        """Whether the query runs under Paillier (else as MPC)."""
        return self.aggregate in LINEAR

    def with_requester(self, requester: str, role: str) -> QuerySpec:
        """A copy naming the requester and role."""
        return replace(self, requester=requester, role=role)

    def columns_used(self) -> set[str]:
        """Every column the query reads."""
        cols = {f.column for f in self.filters}
        cols.update(c for c in (self.column, self.group_by, self.key) if c is not None)
        return cols

    def to_dict(self) -> dict[str, Any]:
        """JSON form (omits unset fields)."""
        doc: dict[str, Any] = {"aggregate": self.aggregate, "table": self.table}
        for name in ("column", "group_by", "k", "key", "requester", "role"):
            value = getattr(self, name)
            if value not in (None, ""):
                doc[name] = value
        if self.filters:
            doc["where"] = [f.to_dict() for f in self.filters]
        if self.bins is not None:
            doc["bins"] = list(self.bins)
        if self.quantiles is not None:
            doc["quantiles"] = list(self.quantiles)
        if self.epsilon is not None:
            doc["dp"] = {"epsilon": self.epsilon}
        return doc

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def digest(self) -> bytes:
        """SM3 of the canonical JSON: the spec digest recorded in the audit trail."""
        from chain.crypto import sm3  # here: an MPC party process never loads the crypto stack

        return sm3(self.to_json().encode("utf-8"))

    @classmethod
    def from_dict(cls, doc: Any) -> QuerySpec:
        """Parse the JSON form; :class:`SpecError` says which field is wrong."""
        if not isinstance(doc, dict):
            raise SpecError("a query spec is a JSON object")
        allowed = {"aggregate", "table", "column", "where", "group_by", "bins", "quantiles", "k", "key"}
        allowed |= {"dp", "requester", "role"}
        extra = set(doc) - allowed
        if extra:
            raise SpecError(f"unknown fields {sorted(extra)}; allowed: {sorted(allowed)}")
        where = doc.get("where", [])
        if not isinstance(where, list):
            raise SpecError("'where' must be a list of {column, op, value} objects")
        filters = tuple(_filter_from_dict(i, f) for i, f in enumerate(where))
        dp = doc.get("dp")
        if dp is not None and (not isinstance(dp, dict) or set(dp) != {"epsilon"}):
            raise SpecError("'dp' must be an object {\"epsilon\": number}")
        return cls(
            aggregate=_text(doc, "aggregate", required=True) or "",
            table=_text(doc, "table", required=True) or "",
            column=_text(doc, "column"),
            filters=filters,
            group_by=_text(doc, "group_by"),
            bins=_numbers(doc, "bins"),
            quantiles=_numbers(doc, "quantiles"),
            k=_int(doc, "k"),
            key=_text(doc, "key"),
            epsilon=None if dp is None else _number(dp["epsilon"], "dp.epsilon"),
            requester=_text(doc, "requester") or "",
            role=_text(doc, "role") or "",
        )

    @classmethod
    def from_json(cls, text: str) -> QuerySpec:
        """Parse JSON text."""
        if len(text) > MAX_TEXT:
            raise SpecError(f"a query spec is at most {MAX_TEXT} characters")
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise SpecError(f"query spec is not valid JSON: {exc.msg} at line {exc.lineno}") from None

    def validate(self, catalog: Catalog) -> None:
        """Check the spec against the catalog (tables, columns, types, bounds, domains)."""
        try:
            _validate(self, catalog)
        except CatalogError as exc:
            raise SpecError(str(exc)) from None


def _check_shape(s: QuerySpec) -> None:
    """Check a spec on its own (no catalog); the first problem found raises :class:`SpecError`."""
    _check_names(s)
    _check_operands(s)
    _check_bins_and_quantiles(s)
    _check_epsilon(s)
    for f in s.filters:
        _check_filter(f)


def _check_names(s: QuerySpec) -> None:
    """A known aggregate, and identifiers where names are given."""
    if s.aggregate not in AGGREGATES:
        raise SpecError(f"unknown aggregate {s.aggregate!r}; choose one of {sorted(AGGREGATES)}")
    for name in ("table", "column", "group_by", "key"):
        value = getattr(s, name)
        if value is not None and not _NAME.match(value):
            raise SpecError(f"{name} {value!r} is not a valid identifier (letters, digits, _; max 64)")


def _check_operands(s: QuerySpec) -> None:
    """The column, key, ``k`` and grouping each aggregate takes, and only those."""
    needs_column = s.aggregate not in ("count", "intersection")
    if needs_column and s.column is None:
        raise SpecError(f"aggregate {s.aggregate!r} needs a column")
    if s.aggregate == "intersection" and s.key is None:
        raise SpecError("aggregate 'intersection' needs a key column ('key')")
    if s.aggregate == "topk":
        if s.key is None or s.k is None:
            raise SpecError("aggregate 'topk' needs 'k' and a key column ('key')")
        if not 1 <= s.k <= MAX_K:
            raise SpecError(f"k must be in 1..{MAX_K}, got {s.k}")
    elif s.k is not None or (s.key is not None and s.aggregate != "intersection"):
        raise SpecError(f"'k' and 'key' only go with topk/intersection, not {s.aggregate!r}")
    if s.aggregate in ("topk", "intersection") and s.group_by is not None:
        raise SpecError(f"GROUP BY is not supported with {s.aggregate!r}; filter on the column instead")


def _check_bins_and_quantiles(s: QuerySpec) -> None:
    """Histogram edges with ``histogram`` only, probabilities with ``quantile`` only."""
    if (s.aggregate == "histogram") != (s.bins is not None):
        raise SpecError("'bins' (at least two increasing edges) goes with 'histogram' and only with it")
    if s.bins is not None and (
        not 2 <= len(s.bins) <= MAX_BINS + 1 or any(b >= c for b, c in zip(s.bins, s.bins[1:], strict=False))
    ):
        raise SpecError(f"histogram bins need 2..{MAX_BINS + 1} strictly increasing edges")
    if (s.aggregate == "quantile") != (s.quantiles is not None):
        raise SpecError("'quantiles' goes with 'quantile' and only with it")
    if s.quantiles is not None and (
        not 1 <= len(s.quantiles) <= MAX_QUANTILES or not all(0 < q <= 1 for q in s.quantiles)
    ):
        raise SpecError(f"quantiles: 1..{MAX_QUANTILES} probabilities in (0, 1]")


def _check_epsilon(s: QuerySpec) -> None:
    """Differential-privacy noise only on linear aggregates, with a bounded epsilon."""
    if s.epsilon is not None:
        if s.aggregate not in LINEAR:
            raise SpecError(
                "differential privacy (WITH EPSILON) is offered for count/sum/mean/variance/histogram"
            )
        if not 0 < s.epsilon <= MAX_EPSILON:
            raise SpecError(f"epsilon must be in (0, {MAX_EPSILON}]")


def _check_filter(f: Filter) -> None:
    if not _NAME.match(f.column):
        raise SpecError(f"filter column {f.column!r} is not a valid identifier")
    if f.op not in OPS:
        raise SpecError(f"filter on {f.column!r}: unknown operator {f.op!r}; use one of {OPS}")
    if f.op == "in":
        if not isinstance(f.value, tuple) or not 1 <= len(f.value) <= MAX_IN:
            raise SpecError(f"filter on {f.column!r}: IN takes a list of 1..{MAX_IN} values")
    elif f.op == "between":
        if not isinstance(f.value, tuple) or len(f.value) != 2:
            raise SpecError(f"filter on {f.column!r}: BETWEEN takes exactly two values")
    elif isinstance(f.value, tuple):
        raise SpecError(f"filter on {f.column!r}: {f.op} takes a single value")
    values = f.value if isinstance(f.value, tuple) else (f.value,)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise SpecError(f"filter on {f.column!r}: values are strings or numbers, not {v!r}")
        if isinstance(v, float) and not math.isfinite(v):
            raise SpecError(f"filter on {f.column!r}: values must be finite")


def _validate(s: QuerySpec, catalog: Catalog) -> None:
    if s.column is not None:
        col = catalog.column(s.table, s.column)
        if s.aggregate != "count":
            if not col.numeric:
                raise SpecError(f"{s.aggregate} needs a numeric column; {s.column!r} is {col.kind}")
            if not col.bounded:
                raise SpecError(
                    f"column {s.column!r} has no declared bounds; {s.aggregate} needs 'min' and 'max' "
                    "in the catalog (they size the encryption slots and the DP sensitivity)"
                )
    for name in ("group_by", "key"):
        cname = getattr(s, name)
        if cname is not None and catalog.column(s.table, cname).domain is None:
            raise SpecError(f"{name} column {cname!r} needs a declared domain in the catalog")
    for f in s.filters:
        col = catalog.column(s.table, f.column)
        values = f.value if isinstance(f.value, tuple) else (f.value,)
        for v in values:
            if col.numeric == isinstance(v, str):
                raise SpecError(
                    f"filter on {f.column!r}: value {v!r} does not match the column type {col.kind}"
                )
        if not col.numeric and f.op in ("<", "<=", ">", ">=", "between"):
            raise SpecError(f"filter on {f.column!r}: range comparisons need a numeric column")


def _text(doc: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = doc.get(name)
    if value is None:
        if required:
            raise SpecError(f"missing required field {name!r}")
        return None
    if not isinstance(value, str):
        raise SpecError(f"field {name!r} must be a string")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _numbers(doc: dict[str, Any], name: str) -> tuple[float, ...] | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise SpecError(f"field {name!r} must be a list of numbers")
    return tuple(_number(v, name) for v in value)


def _int(doc: dict[str, Any], name: str) -> int | None:
    value = doc.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"field {name!r} must be an integer")
    return value


def _filter_from_dict(i: int, doc: Any) -> Filter:
    if not isinstance(doc, dict) or set(doc) != {"column", "op", "value"}:
        raise SpecError(f"where[{i}] must be an object with exactly 'column', 'op' and 'value'")
    value = doc["value"]
    if isinstance(value, list):
        value = tuple(value)
    if not isinstance(doc["column"], str) or not isinstance(doc["op"], str):
        raise SpecError(f"where[{i}]: 'column' and 'op' are strings")
    return Filter(doc["column"], doc["op"].lower(), value)


# --- the SQL-like form ---------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<str>'(?:[^']|'')*')"
    r"|(?P<op><=|>=|!=|<>|=|<|>|\(|\)|,|\*)|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
_SQL_AGG = {
    "COUNT": "count",
    "SUM": "sum",
    "MEAN": "mean",
    "AVG": "mean",
    "VARIANCE": "variance",
    "HISTOGRAM": "histogram",
    "MIN": "min",
    "MAX": "max",
    "MEDIAN": "median",
    "QUANTILE": "quantile",
    "TOPK": "topk",
    "INTERSECTION": "intersection",
}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    text = text.rstrip().rstrip(";")
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise SpecError(f"at character {pos + 1}: unexpected {text[pos : pos + 10]!r}")
        kind = m.lastgroup or ""
        toks.append(_Tok(kind, m.group(kind), m.start(kind) + 1))
        pos = m.end()
    toks.append(_Tok("end", "", len(text) + 1))
    return toks


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_TEXT:
            raise SpecError(f"a query is at most {MAX_TEXT} characters")
        self.toks = _tokenize(text)
        self.i = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def fail(self, expected: str) -> SpecError:
        found = self.tok.text or "end of query"
        return SpecError(f"at character {self.tok.pos}: expected {expected}, found {found!r}")

    def word(self, *options: str) -> str:
        if self.tok.kind != "word" or (options and self.tok.text.upper() not in options):
            raise self.fail(" or ".join(options) if options else "a name")
        self.i += 1
        return self.toks[self.i - 1].text

    def is_word(self, w: str) -> bool:
        return self.tok.kind == "word" and self.tok.text.upper() == w

    def punct(self, p: str) -> None:
        if self.tok.text != p or self.tok.kind != "op":
            raise self.fail(repr(p))
        self.i += 1

    def literal(self) -> Literal:
        tok = self.tok
        if tok.kind == "num":
            self.i += 1
            return float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
        if tok.kind == "str":
            self.i += 1
            return tok.text[1:-1].replace("''", "'")
        raise self.fail("a number or a 'string'")

    def number(self) -> float:
        v = self.literal()
        if isinstance(v, str):
            raise SpecError(f"at character {self.toks[self.i - 1].pos}: expected a number")
        return float(v)

    def parse(self) -> QuerySpec:
        self.word("SELECT")
        agg_word = self.word(*_SQL_AGG).upper()
        agg = _SQL_AGG[agg_word]
        self.punct("(")
        fields: dict[str, Any] = {}
        if agg == "count":
            if self.tok.text == "*":
                self.i += 1
            else:
                self.word()
        elif agg == "intersection":
            fields["key"] = self.word()
        else:
            fields["column"] = self.word()
            if agg in ("histogram", "quantile"):
                numbers = []
                while self.tok.text == ",":
                    self.i += 1
                    numbers.append(self.number())
                fields["bins" if agg == "histogram" else "quantiles"] = tuple(numbers)
            elif agg == "topk":
                self.punct(",")
                k = self.literal()
                if not isinstance(k, int):
                    raise SpecError(f"at character {self.toks[self.i - 1].pos}: k must be an integer")
                fields["k"] = k
                self.punct(",")
                fields["key"] = self.word()
        self.punct(")")
        self.word("FROM")
        table = self.word()
        filters: list[Filter] = []
        if self.is_word("WHERE"):
            self.i += 1
            filters.append(self.condition())
            while self.is_word("AND"):
                self.i += 1
                filters.append(self.condition())
        if self.is_word("GROUP"):
            self.i += 1
            self.word("BY")
            fields["group_by"] = self.word()
        if self.is_word("WITH"):
            self.i += 1
            self.word("EPSILON")
            fields["epsilon"] = self.number()
        if self.tok.kind != "end":
            raise self.fail("WHERE, GROUP BY, WITH EPSILON or the end of the query")
        return QuerySpec(aggregate=agg, table=table, filters=tuple(filters), **fields)

    def condition(self) -> Filter:
        column = self.word()
        if self.is_word("IN"):
            self.i += 1
            self.punct("(")
            values = [self.literal()]
            while self.tok.text == ",":
                self.i += 1
                values.append(self.literal())
            self.punct(")")
            return Filter(column, "in", tuple(values))
        if self.is_word("BETWEEN"):
            self.i += 1
            lo = self.literal()
            self.word("AND")
            return Filter(column, "between", (lo, self.literal()))
        if self.tok.kind != "op" or self.tok.text not in ("=", "!=", "<>", "<", "<=", ">", ">="):
            raise self.fail("a comparison (=, !=, <, <=, >, >=, IN, BETWEEN)")
        op = "!=" if self.tok.text == "<>" else self.tok.text
        self.i += 1
        return Filter(column, op, self.literal())


def parse_sql(text: str) -> QuerySpec:
    """Parse the SQL-like form (see the module docstring)."""
    return _Parser(text).parse()


def parse(text: str) -> QuerySpec:
    """Parse either form: JSON if it starts with ``{``, else SQL-like."""
    stripped = text.lstrip()
    return QuerySpec.from_json(stripped) if stripped.startswith("{") else parse_sql(stripped)


def column_of(spec: QuerySpec, catalog: Catalog) -> Column | None:
    """The value column's definition, if the query has one."""
    return None if spec.column is None else catalog.column(spec.table, spec.column)
