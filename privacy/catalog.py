"""The shared table catalog: which tables and columns exist, their types, bounds and domains.

All agencies of a deployment publish the same catalog (the schema, never the data). Bounds
make sums and differential-privacy sensitivities finite and size the Paillier slots;
domains make GROUP BY and key columns enumerable, so every agency produces vectors of the
same length without revealing which groups it has.

Examples
--------
>>> cat = Catalog.from_dict({"plays": {"county": {"type": "str", "domain": ["a", "b"]},
...                                    "views": {"type": "int", "min": 0, "max": 1000}}})
>>> cat.column("plays", "views").scaled_bounds()
(0, 1000)
>>> cat.column("plays", "county").domain_index("b")
1
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from privacy.errors import CatalogError

KINDS = ("int", "float", "str")
MAX_DOMAIN = 1 << 20


@dataclass(frozen=True)
class Column:
    """One column: its type, numeric bounds (scaled by ``scale``) and optional domain."""

    name: str
    kind: str
    lo: float | None = None
    hi: float | None = None
    scale: int = 1
    domain: tuple[str | int, ...] | None = None
    _index: dict[str | int, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise CatalogError(f"column {self.name!r}: type must be one of {KINDS}, not {self.kind!r}")
        if (self.lo is None) != (self.hi is None):
            raise CatalogError(f"column {self.name!r}: give both 'min' and 'max' or neither")
        if self.lo is not None and self.hi is not None:
            if not (math.isfinite(self.lo) and math.isfinite(self.hi)) or self.lo > self.hi:
                raise CatalogError(f"column {self.name!r}: bounds must be finite with min <= max")
            if self.kind == "str":
                raise CatalogError(f"column {self.name!r}: a str column has no numeric bounds")
        if not isinstance(self.scale, int) or not 1 <= self.scale <= 10**6:
            raise CatalogError(f"column {self.name!r}: scale must be an integer in 1..10**6")
        if self.domain is not None:
            if not 1 <= len(self.domain) <= MAX_DOMAIN:
                raise CatalogError(f"column {self.name!r}: a domain has 1..{MAX_DOMAIN} values")
            if len(set(self.domain)) != len(self.domain):
                raise CatalogError(f"column {self.name!r}: domain values must be distinct")
            self._index.update({v: i for i, v in enumerate(self.domain)})

    @property
    def numeric(self) -> bool:
        """Whether the column holds numbers."""
        return self.kind != "str"

    @property
    def bounded(self) -> bool:
        """Whether numeric bounds are declared."""
        return self.lo is not None

    def scaled_bounds(self) -> tuple[int, int]:
        """Bounds as integers in fixed-point units (``round(bound * scale)``)."""
        if self.lo is None or self.hi is None:
            raise CatalogError(
                f"column {self.name!r} has no declared bounds; add 'min' and 'max' to the catalog"
            )
        return round(self.lo * self.scale), round(self.hi * self.scale)

    def domain_index(self, value: str | int) -> int:
        """Position of ``value`` in the declared domain."""
        if self.domain is None:
            raise CatalogError(f"column {self.name!r} has no declared domain")
        try:
            return self._index[value]
        except KeyError:
            raise CatalogError(f"value {value!r} is not in the domain of column {self.name!r}") from None

    @classmethod
    def from_dict(cls, name: str, doc: Any) -> Column:
        """Build from a catalog entry ``{"type", "min", "max", "scale", "domain"}``."""
        if not isinstance(doc, dict):
            raise CatalogError(f"column {name!r}: expected a table of properties")
        extra = set(doc) - {"type", "min", "max", "scale", "domain"}
        if extra:
            raise CatalogError(f"column {name!r}: unknown properties {sorted(extra)}")
        domain = doc.get("domain")
        if domain is not None and (
            not isinstance(domain, list) or not all(isinstance(v, (str, int)) for v in domain)
        ):
            raise CatalogError(f"column {name!r}: 'domain' must be a list of strings or integers")
        try:
            lo = None if doc.get("min") is None else float(doc["min"])
            hi = None if doc.get("max") is None else float(doc["max"])
        except (TypeError, ValueError):
            raise CatalogError(f"column {name!r}: 'min' and 'max' must be numbers") from None
        return cls(
            name,
            str(doc.get("type", "")),
            lo,
            hi,
            doc.get("scale", 1),
            None if domain is None else tuple(domain),
        )

    def to_dict(self) -> dict[str, Any]:
        """The catalog entry for this column."""
        doc: dict[str, Any] = {"type": self.kind, "scale": self.scale}
        if self.lo is not None:
            doc["min"], doc["max"] = self.lo, self.hi
        if self.domain is not None:
            doc["domain"] = list(self.domain)
        return doc


@dataclass(frozen=True)
class Catalog:
    """Tables and their columns, shared by all agencies of a deployment."""

    tables: dict[str, dict[str, Column]]

    def column(self, table: str, column: str) -> Column:
        """The column definition; :class:`CatalogError` names the known ones otherwise."""
        if table not in self.tables:
            raise CatalogError(f"unknown table {table!r}; the catalog has {sorted(self.tables)}")
        cols = self.tables[table]
        if column not in cols:
            raise CatalogError(f"unknown column {column!r} in table {table!r}; it has {sorted(cols)}")
        return cols[column]

    @classmethod
    def from_dict(cls, doc: Any) -> Catalog:
        """Build from ``{table: {column: {...}}}``."""
        if not isinstance(doc, dict) or not doc:
            raise CatalogError("the catalog must map table names to their columns")
        tables: dict[str, dict[str, Column]] = {}
        for tname, cols in doc.items():
            if not isinstance(cols, dict) or not cols:
                raise CatalogError(f"table {tname!r}: expected a non-empty table of columns")
            tables[str(tname)] = {str(c): Column.from_dict(str(c), d) for c, d in cols.items()}
        return cls(tables)

    def to_dict(self) -> dict[str, Any]:
        """The catalog as plain data."""
        return {t: {c: col.to_dict() for c, col in cols.items()} for t, cols in self.tables.items()}
