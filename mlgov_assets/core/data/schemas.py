"""Pandera schemas: the data validation gates, and a report a person can act on.

``RawAdultSchema`` describes the files as delivered (strings, ``?`` for missing in the three
columns where Adult has it); ``FeatureSchema`` the modelling table the features step produces.
:func:`validate` runs a schema lazily and turns Pandera's failure cases into evidence: per rule the
column, the check, how many rows fail and examples of failing rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from mlgov_assets.core.data.adult import CATEGORIES, LABELS, MISSING_ALLOWED, MISSING_TOKEN
from mlgov_assets.core.data.features import MODEL_CATEGORICAL, MODEL_NUMERIC, UNKNOWN

_RAW_CATS = {c: cats + ([MISSING_TOKEN] if c in MISSING_ALLOWED else []) for c, cats in CATEGORIES.items()}


class RawAdultSchema(pa.DataFrameModel):
    """The UCI Adult layout (``adult.names``). ``?`` is allowed only where Adult uses it
    (workclass, occupation, native_country); anywhere else it is an error."""

    age: Series[int] = pa.Field(ge=17, le=90, coerce=True)
    workclass: Series[str] = pa.Field(isin=_RAW_CATS["workclass"])
    fnlwgt: Series[int] = pa.Field(gt=0, coerce=True)
    education: Series[str] = pa.Field(isin=_RAW_CATS["education"])
    education_num: Series[int] = pa.Field(ge=1, le=16, coerce=True)
    marital_status: Series[str] = pa.Field(isin=_RAW_CATS["marital_status"])
    occupation: Series[str] = pa.Field(isin=_RAW_CATS["occupation"])
    relationship: Series[str] = pa.Field(isin=_RAW_CATS["relationship"])
    race: Series[str] = pa.Field(isin=_RAW_CATS["race"])
    sex: Series[str] = pa.Field(isin=_RAW_CATS["sex"])
    capital_gain: Series[int] = pa.Field(ge=0, le=99999, coerce=True)
    capital_loss: Series[int] = pa.Field(ge=0, le=99999, coerce=True)
    hours_per_week: Series[int] = pa.Field(ge=1, le=99, coerce=True)
    native_country: Series[str] = pa.Field(isin=_RAW_CATS["native_country"])
    income: Series[str] = pa.Field(isin=list(LABELS))

    class Config:
        strict = True  # an unexpected column is an error, not silently dropped
        ordered = False


class UnlabelledRawAdultSchema(RawAdultSchema):
    """Production batches may arrive without labels; otherwise the same rules."""

    income: Series[str] = pa.Field(isin=list(LABELS), nullable=True)

    class Config:
        strict = "filter"


class FeatureSchema(pa.DataFrameModel):
    """The modelling table: typed, cleaned, ``?`` made an explicit ``Unknown`` category."""

    age: Series[int] = pa.Field(ge=17, le=90)
    education_num: Series[int] = pa.Field(ge=1, le=16)
    capital_gain: Series[int] = pa.Field(ge=0, le=99999)
    capital_loss: Series[int] = pa.Field(ge=0, le=99999)
    hours_per_week: Series[int] = pa.Field(ge=1, le=99)
    workclass: Series[str] = pa.Field(isin=CATEGORIES["workclass"] + [UNKNOWN])
    marital_status: Series[str] = pa.Field(isin=CATEGORIES["marital_status"])
    occupation: Series[str] = pa.Field(isin=CATEGORIES["occupation"] + [UNKNOWN])
    relationship: Series[str] = pa.Field(isin=CATEGORIES["relationship"])
    native_country: Series[str] = pa.Field(isin=CATEGORIES["native_country"] + [UNKNOWN])
    sex: Series[str] = pa.Field(isin=CATEGORIES["sex"])
    race: Series[str] = pa.Field(isin=CATEGORIES["race"])
    label: Series[int] = pa.Field(isin=[0, 1])

    class Config:
        strict = True


if not set(MODEL_NUMERIC) | set(MODEL_CATEGORICAL) <= set(FeatureSchema.to_schema().columns):
    raise ImportError("FeatureSchema does not cover every model input in core.features")


@dataclass
class RuleFailure:
    column: str
    check: str
    count: int
    examples: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "check": self.check, "count": self.count, "examples": self.examples}


@dataclass
class ValidationReport:
    source: str
    schema: str
    rows: int
    passed: bool
    failures: list[RuleFailure] = field(default_factory=list)
    validated: pd.DataFrame | None = None

    @property
    def failing_rows(self) -> int:
        return len({ex["row"] for f in self.failures for ex in f.examples if ex.get("row") is not None})

    def summary(self) -> str:
        """One paragraph a person can act on: file, then each rule with its column and rows."""
        if self.passed:
            return f"{self.source}: {self.rows} rows pass {self.schema}."
        parts = []
        for f in self.failures:
            rows = [ex["row"] for ex in f.examples if ex.get("row") is not None]
            vals = [ex["value"] for ex in f.examples]
            where = f" rows {rows}" if rows else ""
            parts.append(f"column '{f.column}' fails '{f.check}' in {f.count} case(s){where} (values {vals})")
        return f"{self.source}: {self.schema} refused the data: " + "; ".join(parts) + "."

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "schema": self.schema,
            "rows": self.rows,
            "passed": self.passed,
            "failures": [f.to_dict() for f in self.failures],
        }


def _clean(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, (int, float, bool)) else str(value)


def _short_check(check: str) -> str:
    if check.startswith("isin("):
        return "isin (a category listed in adult.names)" if "," in check else check
    return check


def validate(
    df: pd.DataFrame, schema: type[pa.DataFrameModel], *, source: str, max_examples: int = 5
) -> ValidationReport:
    """Validate lazily (every rule, not just the first) and summarize the failures per rule."""
    try:
        out = schema.validate(df, lazy=True)
        return ValidationReport(source=source, schema=schema.__name__, rows=len(df), passed=True, validated=out)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    failures = []
    cases = cases.copy()
    missing = cases["check"].astype(str).isin(["column_in_dataframe", "column_in_schema"])
    # for a missing/unexpected column Pandera names the schema as "column": name the column itself
    cases.loc[missing, "column"] = cases.loc[missing, "failure_case"]
    cases["column"] = cases["column"].fillna("<dataframe>")
    cases["check"] = cases["check"].astype(str).map(_short_check)
    # once a column fails type coercion, its range checks only echo a TypeError: drop that noise
    uncoercible = set(cases.loc[cases["check"].str.startswith("coerce_dtype"), "column"])
    echo = cases["column"].isin(uncoercible) & cases["failure_case"].astype(str).str.startswith("TypeError(")
    cases = cases[~echo]
    for (column, check), grp in cases.groupby(["column", "check"], sort=False, dropna=False):
        examples = [
            {"row": _clean(r["index"]), "value": _clean(r["failure_case"])}
            for _, r in grp.head(max_examples).iterrows()
        ]
        failures.append(RuleFailure(column=str(column), check=str(check), count=len(grp), examples=examples))
    return ValidationReport(source=source, schema=schema.__name__, rows=len(df), passed=False, failures=failures)
