"""The data validation gates' report: :func:`validate` runs a Pandera schema lazily and turns its
failure cases into evidence a person can act on (per rule the column, the check, how many rows fail
and examples of failing rows).

The schemas themselves are generated from the project spec (:mod:`mlgov_assets.core.project.schemas`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pandera.pandas as pa

from mlgov_assets.core.project.quoting import DEFAULT_QUOTE_CHARS, quote
from mlgov_assets.core.project.rawcheck import RawFileError, RuleFailure

__all__ = ["RuleFailure", "ValidationReport", "refused", "validate"]


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
        parts = [f.describe() for f in self.failures]
        return f"{self.source}: {self.schema} refused the data: " + "; ".join(parts) + "."

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "schema": self.schema,
            "rows": self.rows,
            "passed": self.passed,
            "failures": [f.to_dict() for f in self.failures],
        }


def _clean(value: Any, limit: int = DEFAULT_QUOTE_CHARS) -> Any:
    """A failing value as evidence: numbers as they are, anything else quoted (never verbatim)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, (int, float, bool)) else quote(value, limit)


def refused(source: str, schema: str, error: RawFileError, rows: int = 0) -> ValidationReport:
    """The report of a file refused for its structure (:class:`RawFileError`) before any schema ran."""
    return ValidationReport(source=source, schema=schema, rows=rows, passed=False, failures=list(error.failures))


def _no_rows(df: pd.DataFrame, source: str, name: str) -> ValidationReport | None:
    if len(df):
        return None
    empty = RuleFailure(
        column="<dataframe>", check="at least one data row", count=1, examples=[{"row": None, "value": "0 rows"}]
    )
    return ValidationReport(source=source, schema=name, rows=0, passed=False, failures=[empty])


def _short_check(check: str) -> str:
    if check.startswith("isin("):
        return "isin (a category listed in the project spec)" if "," in check else check
    return check


def validate(
    df: pd.DataFrame,
    schema: pa.DataFrameSchema | type[pa.DataFrameModel],
    *,
    source: str,
    max_examples: int = 5,
) -> ValidationReport:
    """Validate lazily (every rule, not just the first) and summarize the failures per rule.

    ``schema`` is normally one generated from the project spec (its ``name`` names it in the
    report); a ``DataFrameModel`` class is named by its class name.
    """
    name = schema.name if isinstance(schema, pa.DataFrameSchema) else schema.__name__
    name = name or "DataFrameSchema"
    empty = _no_rows(df, source, name)
    if empty is not None:
        return empty
    try:
        out = schema.validate(df, lazy=True)
        return ValidationReport(source=source, schema=name, rows=len(df), passed=True, validated=out)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    failures = []
    cases = cases.copy()
    missing = cases["check"].astype(str).isin(["column_in_dataframe", "column_in_schema"])
    # for a missing/unexpected column Pandera names the schema as "column": name the column itself
    cases.loc[missing, "column"] = cases.loc[missing, "failure_case"].astype(str).map(quote)
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
        failures.append(RuleFailure(column=quote(column), check=quote(check, 200), count=len(grp), examples=examples))
    return ValidationReport(source=source, schema=name, rows=len(df), passed=False, failures=failures)
