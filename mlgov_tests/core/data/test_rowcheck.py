"""The compiled row pre-check against the real Pandera schema it is compiled from: it may only accept
what Pandera accepts (never more), and it must accept ordinary valid rows (or it saves nothing)."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
import pytest

from mlgov_assets.core.data.rowcheck import compile_schema
from mlgov_assets.core.data.schemas import validate
from mlgov_assets.core.project.catalog import resolve_project
from mlgov_assets.core.project.project import open_project
from mlgov_assets.core.project.schemas import raw_schema
from mlgov_tests.core.monitoring.helpers import ADULT, DATA, REPO, read_adult

Columns = dict[str, list[str | None]]

SCHEMA = raw_schema(ADULT, batch=True)
COMPILED = compile_schema(SCHEMA)


def _columns(rows: list[dict[str, str | None]]) -> Columns:
    cols: Columns = {c: [r.get(c) for r in rows] for c in ADULT.columns if any(c in r for r in rows)}
    return cols if ADULT.label in cols else {**cols, ADULT.label: [None] * len(rows)}


def _pandera_passes(cols: Columns) -> bool:
    return validate(pd.DataFrame(cols, dtype=object), SCHEMA, source="test").passed


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str | None]]:
    raw = read_adult(DATA / "adult.test").drop(columns=[ADULT.label]).head(300)
    return [{k: (None if pd.isna(v) else str(v)) for k, v in r.items()} for r in raw.to_dict("records")]


def test_valid_rows_are_accepted_as_pandera_accepts_them(rows):
    assert COMPILED is not None
    for row in rows[:100]:
        cols = _columns([row])
        assert COMPILED.certainly_passes(cols) and _pandera_passes(cols)
    many = _columns(rows)
    assert COMPILED.certainly_passes(many) and _pandera_passes(many)
    labelled = _columns([{**rows[0], "income": "<=50K"}, {**rows[1], "income": ">50K."[:-1]}])
    assert COMPILED.certainly_passes(labelled) and _pandera_passes(labelled)


MUTATIONS: list[tuple[str, str | None]] = [
    # wrong type / spelling for an integer column
    ("age", "abc"),
    ("age", "39.5"),
    ("age", "39.0"),
    ("age", "1e1"),
    ("age", ""),
    ("age", " "),
    ("age", "nan"),
    ("age", "inf"),
    ("age", "3_9"),
    ("age", "\u0663\u0669"),  # Arabic-Indic digits: int() takes them
    ("age", "+39"),
    ("age", "0039"),
    ("age", "99999999999999999999999"),
    ("age", None),
    # out of range
    ("age", "16"),
    ("age", "91"),
    ("age", "-1"),
    ("fnlwgt", "0"),
    ("hours_per_week", "100"),
    ("capital_gain", "100000"),
    # unknown category, case, missing token, null
    ("workclass", "Mars"),
    ("workclass", "private"),
    ("workclass", ""),
    ("workclass", "?"),
    ("education", "?"),
    ("workclass", None),
    ("sex", "female"),
    ("native_country", "Atlantis"),
    # the label (nullable in a batch): a wrong value, the test file's trailing dot
    ("income", ">50K."),
    ("income", "maybe"),
    ("income", None),
]


@pytest.mark.parametrize(("column", "value"), MUTATIONS)
def test_a_mutated_row_is_never_accepted_where_pandera_refuses(rows, column, value):
    assert COMPILED is not None
    cols = _columns([{**rows[0], column: value}])
    fast, slow = COMPILED.certainly_passes(cols), _pandera_passes(cols)
    assert not (fast and not slow), f"{column}={value!r}: the pre-check accepted what Pandera refuses"
    if not slow:
        assert not fast
    # in a multi-row frame too (one bad row among good ones)
    multi = _columns([rows[1], {**rows[0], column: value}, rows[2]])
    assert not (COMPILED.certainly_passes(multi) and not _pandera_passes(multi))


def test_missing_and_unknown_columns_go_to_pandera(rows):
    assert COMPILED is not None
    missing = _columns([{k: v for k, v in rows[0].items() if k != "age"}])
    assert not COMPILED.certainly_passes(missing) and not _pandera_passes(missing)
    unknown = {**_columns([rows[0]]), "zzz": ["1"]}
    assert not COMPILED.certainly_passes(unknown) and not _pandera_passes(unknown)
    ragged = {**_columns([rows[0]]), "age": ["39", "40"]}
    assert not COMPILED.certainly_passes(ragged)
    partly = _columns([rows[0], {k: v for k, v in rows[1].items() if k != "sex"}])  # None where a row lacks it
    assert not COMPILED.certainly_passes(partly) and not _pandera_passes(partly)


def test_every_shipped_project_compiles_and_a_schema_it_does_not_know_does_not():
    credit = open_project(resolve_project("credit_default", REPO), REPO)
    assert compile_schema(raw_schema(credit, batch=True)) is not None
    assert compile_schema(raw_schema(ADULT)) is not None
    unknown_check = pa.DataFrameSchema({"a": pa.Column(str, pa.Check.str_matches("^x"))}, strict=True)
    assert compile_schema(unknown_check) is None
    not_strict = pa.DataFrameSchema({"a": pa.Column(str, pa.Check.isin(["x"]))})
    assert compile_schema(not_strict) is None
    frame_check = pa.DataFrameSchema(
        {"a": pa.Column("int64", coerce=True)}, checks=[pa.Check(lambda df: df["a"] > 0)], strict=True
    )
    assert compile_schema(frame_check) is None
