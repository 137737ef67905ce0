"""Query specs: both forms, round trips, and refusals that point at the problem."""

from __future__ import annotations

import pytest

from privacy.catalog import Catalog
from privacy.errors import SpecError
from privacy.spec import QuerySpec, parse, parse_sql

CAT = Catalog.from_dict(
    {
        "plays": {
            "county": {"type": "str", "domain": ["a", "b"]},
            "views": {"type": "int", "min": 0, "max": 100},
            "note": {"type": "str"},
            "raw": {"type": "int"},
        }
    }
)


@pytest.mark.parametrize(
    "text",
    [
        "SELECT COUNT(*) FROM plays",
        "SELECT SUM(views) FROM plays WHERE county = 'a' AND views BETWEEN 1 AND 9 GROUP BY county",
        "SELECT MEAN(views) FROM plays WHERE county IN ('a', 'b') WITH EPSILON 0.5",
        "SELECT HISTOGRAM(views, 0, 10, 100) FROM plays GROUP BY county",
        "SELECT QUANTILE(views, 0.25, 0.75) FROM plays",
        "SELECT TOPK(views, 3, county) FROM plays WHERE views >= 2",
        "select intersection(county) from plays where views != 3;",
    ],
)
def test_sql_json_round_trip(text: str) -> None:
    spec = parse_sql(text)
    spec.validate(CAT)
    again = parse(spec.to_json())
    assert again == spec
    assert again.digest() == spec.digest()


def test_digest_changes_with_any_field() -> None:
    a = parse_sql("SELECT SUM(views) FROM plays")
    assert a.digest() != parse_sql("SELECT SUM(views) FROM plays WHERE views > 0").digest()
    assert a.digest() != a.with_requester("r", "regulator").digest()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT SUM(views) FORM plays", "at character 19: expected FROM"),
        ("SELECT SUMM(views) FROM plays", "expected COUNT or SUM"),
        ("SELECT SUM(views) FROM plays WHERE views ~ 3", "unexpected"),
        ("SELECT SUM(views) FROM plays GROUP county", "expected BY"),
        ("SELECT HISTOGRAM(views, 10, 5) FROM plays", "strictly increasing"),
        ("SELECT QUANTILE(views, 1.5) FROM plays", "probabilities in (0, 1]"),
        ("SELECT TOPK(views, 0, county) FROM plays", "k must be in"),
        ("SELECT MEDIAN(views) FROM plays WITH EPSILON 1", "differential privacy"),
        ("SELECT SUM(views) FROM plays WITH EPSILON -1", "epsilon must be"),
        ("SELECT TOPK(views, 2, county) FROM plays GROUP BY county", "GROUP BY is not supported"),
        ("SELECT SUM(views) FROM plays trailing", "expected WHERE, GROUP BY"),
    ],
)
def test_malformed_sql_is_refused_with_position(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=None) as info:
        parse_sql(text)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "JSON object"),
        ({"aggregate": "sum"}, "missing required field 'table'"),
        ({"aggregate": "avg", "table": "plays"}, "unknown aggregate 'avg'"),
        ({"aggregate": "sum", "table": "plays"}, "needs a column"),
        ({"aggregate": "count", "table": "plays", "colour": 1}, "unknown fields ['colour']"),
        (
            {"aggregate": "count", "table": "plays", "where": [{"column": "views", "op": "~", "value": 1}]},
            "unknown operator",
        ),
        (
            {"aggregate": "count", "table": "plays", "where": [{"column": "views", "op": "in", "value": 1}]},
            "IN takes a list",
        ),
        (
            {"aggregate": "count", "table": "plays", "where": [{"column": "views"}]},
            "exactly 'column', 'op' and 'value'",
        ),
        ({"aggregate": "count", "table": "plays; DROP", "column": None}, "not a valid identifier"),
        ({"aggregate": "count", "table": "plays", "dp": {"epsilon": "x"}}, "finite number"),
    ],
)
def test_malformed_json_is_refused(doc: object, message: str) -> None:
    with pytest.raises(SpecError) as info:
        QuerySpec.from_dict(doc)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT SUM(views) FROM shows", "unknown table 'shows'"),
        ("SELECT SUM(viewz) FROM plays", "unknown column 'viewz'"),
        ("SELECT SUM(note) FROM plays", "needs a numeric column"),
        ("SELECT SUM(raw) FROM plays", "no declared bounds"),
        ("SELECT COUNT(*) FROM plays GROUP BY views", "needs a declared domain"),
        ("SELECT COUNT(*) FROM plays WHERE views = 'x'", "does not match the column type"),
        ("SELECT COUNT(*) FROM plays WHERE county > 'a'", "range comparisons need a numeric column"),
    ],
)
def test_specs_that_do_not_fit_the_catalog(text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_sql(text).validate(CAT)
    assert message in str(info.value)


def test_oversize_and_bad_json() -> None:
    with pytest.raises(SpecError, match="at most"):
        parse("SELECT COUNT(*) FROM plays WHERE county IN (" + ", ".join(["'a'"] * 3000) + ")")
    with pytest.raises(SpecError, match="not valid JSON"):
        parse('{"aggregate": ')
