"""Pandera schemas generated from a project spec: raw training data and holdout, production batches
(labels optional), and the modelling table. One source, so the gates never disagree with the spec."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from mlgov_assets.core.project.project import TARGET, UNKNOWN, Project
from mlgov_assets.core.project.spec import Column

if TYPE_CHECKING:
    import pandera.pandas as pa


def _integral(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _bounds(col: Column) -> dict[str, Any]:
    return {
        k: _integral(v) for k, v in (("min", col.min), ("max", col.max), ("gt", col.min_exclusive)) if v is not None
    }


def _range_checks(col: Column) -> list[pa.Check]:
    import pandera.pandas as pa

    b = _bounds(col)
    out = []
    if "min" in b:
        out.append(pa.Check.ge(b["min"]))
    if "max" in b:
        out.append(pa.Check.le(b["max"]))
    if "gt" in b:
        out.append(pa.Check.gt(b["gt"]))
    return out


def _raw_column(project: Project, name: str, col: Column, *, nullable_label: bool) -> pa.Column:
    import pandera.pandas as pa

    nullable = col.nullable or (nullable_label and name == project.label)
    if col.type == "categorical":
        allowed = [str(c) for c in col.categories or []]
        if col.missing:
            allowed += project.missing_tokens
        return pa.Column(str, pa.Check.isin(allowed), nullable=nullable)
    dtype = "int64" if col.type == "integer" else "float64"
    return pa.Column(dtype, _range_checks(col), coerce=True, nullable=nullable)


def raw_schema(project: Project, *, batch: bool = False) -> pa.DataFrameSchema:
    """The files as delivered: exactly the spec's columns (``strict``: an unknown column is refused,
    never dropped). A batch may come without labels (its label column is nullable)."""
    import pandera.pandas as pa

    columns = {n: _raw_column(project, n, c, nullable_label=batch) for n, c in project.spec.columns.items()}
    title = _title(project)
    name = f"UnlabelledRaw{title}Schema" if batch else f"Raw{title}Schema"
    return pa.DataFrameSchema(columns, strict=True, ordered=False, name=name)


def feature_schema(project: Project) -> pa.DataFrameSchema:
    """The modelling table: typed inputs, missing categories made ``Unknown``, protected groups, 0/1 label."""
    import pandera.pandas as pa

    spec = project.spec
    columns: dict[str, pa.Column] = {}
    for name in project.model_numeric:
        col = spec.columns[name]
        columns[name] = pa.Column("int64" if col.type == "integer" else "float64", _range_checks(col))
    for name in project.model_categorical:
        col = spec.columns[name]
        allowed = [str(c) for c in col.categories or []] + ([UNKNOWN] if col.missing else [])
        columns[name] = pa.Column(str, pa.Check.isin(allowed))
    for p in spec.protected:
        if p.bands is not None:
            columns[p.bands.name] = pa.Column(str, pa.Check.isin(band_labels(p.bands.edges, p.bands.labels)))
        else:
            col = spec.columns[p.column]
            columns[p.column] = pa.Column(str, pa.Check.isin([str(c) for c in col.categories or []]))
    columns[TARGET] = pa.Column("int64", pa.Check.isin([0, 1]))
    return pa.DataFrameSchema(columns, strict=True, name="FeatureSchema")


def band_labels(edges: list[float], labels: list[str] | None) -> list[str]:
    """Names of the bands [-inf, e1), [e1, e2) … [en, inf): the spec's labels or ``<e1``, ``e1-e2``, ``>=en``."""
    if labels is not None:
        return list(labels)
    fmt = [f"{_integral(e)}" for e in edges]
    middle = [f"{a}-{b}" for a, b in itertools.pairwise(fmt)]
    return [f"<{fmt[0]}", *middle, f">={fmt[-1]}"]


def _title(project: Project) -> str:
    return "".join(part.capitalize() for part in project.name.split("_"))
