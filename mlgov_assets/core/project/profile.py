"""``mlgov init``'s engine: profile a data file and draft a project spec and a starting policy for
review (inferred types, ranges and categories, with warnings a reviewer must read)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mlgov_assets.core.errors import InputError
from mlgov_assets.core.project.spec import (
    Band,
    Column,
    Data,
    Exclusion,
    Format,
    ProjectSpec,
    Protected,
    Source,
    Split,
    Target,
)

#: Column names that suggest personal data (refused as model inputs until a person decides).
PII_NAME = re.compile(r"(^|_)(name|e?mail|phone|ssn|social|address|street|zip|postcode|birth|dob|passport)($|_)", re.I)
#: A numeric protected attribute with more distinct values than this gets bands, not categories.
MAX_CATEGORIES = 20
IMBALANCE = 0.05


@dataclass
class Draft:
    """A drafted spec, the policy text to go with it, and what a reviewer must look at."""

    spec: ProjectSpec
    policy_yaml: str
    warnings: list[str] = field(default_factory=list)


def _is_numeric(values: pd.Series) -> bool:
    present = values.dropna()
    return len(present) > 0 and bool(pd.to_numeric(present, errors="coerce").notna().all())


def _column(values: pd.Series, *, categorical: bool) -> Column:
    present = values.dropna()
    nullable = len(present) < len(values)
    if categorical or not _is_numeric(values):
        cats = sorted(present.unique(), key=lambda v: (pd.to_numeric(v, errors="coerce"), v))
        numeric = _is_numeric(values)
        return Column(type="categorical", categories=[int(c) if numeric else str(c) for c in cats], nullable=nullable)
    nums = pd.to_numeric(present)
    integral = bool(present.astype(str).str.fullmatch(r"[+-]?\d+").all())  # "1e+05" parses, but not as int
    return Column(
        type="integer" if integral else "number",
        min=float(nums.min()),
        max=float(nums.max()),
        nullable=nullable,
        description="observed range: review",
    )


def _bands(values: pd.Series) -> list[float]:
    """Four bands at the quartiles, rounded to whole numbers (a starting point for review)."""
    nums = pd.to_numeric(values.dropna())
    edges = sorted({round(float(q)) for q in nums.quantile([0.25, 0.5, 0.75])})
    return [float(e) for e in edges if nums.min() < e <= nums.max()] or [float(round(nums.median()))]


def draft_spec(
    df: pd.DataFrame,
    *,
    name: str,
    data_path: str,
    target: str,
    favourable: str,
    sensitive: list[str],
    exclude: list[str],
    policy_file: str,
    holdout_fraction: float = 0.3,
    min_group_size: int = 200,
) -> Draft:
    """Profile ``df`` (raw strings, missing as ``None``) and draft its spec and a starting policy."""
    missing = [c for c in [target, *sensitive, *exclude] if c not in df.columns]
    if missing:
        raise InputError(f"{data_path}: no column(s) {missing}; the file has {list(df.columns)}")
    if favourable not in set(df[target].dropna().astype(str)):
        raise InputError(f"{data_path}: favourable value {favourable!r} never occurs in {target!r}")
    warnings: list[str] = []
    exclusions = [Exclusion(column=c, reason="other", note="excluded at init: REVIEW the reason") for c in exclude]
    columns: dict[str, Column] = {}
    protected: list[Protected] = []
    for col in df.columns:
        values = df[col]
        wide_numeric = _is_numeric(values) and values.nunique() > MAX_CATEGORIES
        categorical = col == target or (col in sensitive and not wide_numeric)
        columns[col] = _column(values, categorical=categorical)
        if col in sensitive:
            bands = Band(name=f"{col.lower()}_band", edges=_bands(values)) if wide_numeric else None
            protected.append(Protected(column=col, bands=bands))
        if col in exclude or col == target or col in sensitive:
            continue
        exclusions += _suspicious(col, values, warnings)
    warnings += _group_warnings(df, protected, holdout_fraction, min_group_size)
    rate = float((df[target].astype(str) == favourable).mean())
    if rate < IMBALANCE or rate > 1 - IMBALANCE:
        warnings.append(f"target {target!r}: favourable rate {rate:.1%} is very imbalanced; review the metric floors")
    target_col = columns[target]
    favourable_value: str | int = (
        int(favourable) if target_col.categories and isinstance(target_col.categories[0], int) else favourable
    )
    spec = ProjectSpec(
        name=name,
        title=f"{name} (drafted by mlgov init from {Path(data_path).name}: REVIEW)",
        data=Data(
            train=Source(path=data_path),
            holdout=Split(fraction=holdout_fraction, seed=0, stratify=True),
            format=Format(kind="csv", header="present"),
        ),
        columns=columns,
        target=Target(column=target, favourable=favourable_value),
        protected=protected,
        exclude=exclusions,
        policy=policy_file,
    )
    return Draft(spec=spec, policy_yaml=starting_policy(spec), warnings=warnings)


def _group_warnings(df: pd.DataFrame, protected: list[Protected], fraction: float, min_size: int) -> list[str]:
    """Protected groups too small to be gated on the expected holdout."""
    out = []
    for p in protected:
        if p.bands is None:
            small = {str(k): int(v) for k, v in df[p.column].value_counts().items() if v * fraction < min_size}
            if small:
                out.append(
                    f"protected {p.column!r}: groups {small} have fewer than {min_size} expected holdout rows: "
                    "they are reported, never gated"
                )
    return out


def _suspicious(col: str, values: pd.Series, warnings: list[str]) -> list[Exclusion]:
    """Id-like and PII-like columns are excluded from the model at init, with a warning to review."""
    present = values.dropna()
    if len(present) and present.nunique() == len(values) and (_is_numeric(values) or "id" in col.lower()):
        warnings.append(f"column {col!r} looks like an identifier (every value unique): excluded from the model")
        return [Exclusion(column=col, reason="identifier", note="every value unique (mlgov init)")]
    if PII_NAME.search(col):
        warnings.append(f"column {col!r} looks like personal data by its name: excluded from the model")
        return [Exclusion(column=col, reason="pii", note="name suggests personal data (mlgov init)")]
    return []


def starting_policy(spec: ProjectSpec) -> str:
    """A starting policy: four-fifths on every sensitive feature, mitigation on, floors to review."""
    sensitive = [p.bands.name if p.bands else p.column for p in spec.protected]
    rules = "\n".join(
        f"    - {{feature: {s}, metric: demographic_parity_ratio, bound: point, min: 0.8}}" for s in sensitive
    )
    return _POLICY_TEMPLATE.format(name=spec.name, sensitive=", ".join(sensitive), rules=rules)


_POLICY_TEMPLATE = """# Starting policy drafted by `mlgov init` for project {name}: REVIEW every threshold and
# justification before a model governed by it decides about people.
policy_version: 1
description: >-
  REVIEW: what the model decides, for whom, and what the favourable outcome means.
intended_use: >-
  REVIEW: the intended use and who reviews the decisions.
limitations: >-
  REVIEW: known limits of the data (period, population, coding).

metric_floors:
  roc_auc: {{min: 0.6}}

champion_comparison:
  roc_auc:
    greater_is_better: true
    threshold: 0.6
    min_absolute_change: 0.0005

fairness:
  sensitive_features: [{sensitive}]
  intersections: []
  reference_group: most_favoured
  min_group_size: 200
  confidence_level: 0.95
  n_boot: 100
  four_fifths_band: [0.8, 1.25]
  rules:
{rules}
  justification: >-
    Starting point: the four-fifths rule on selection rates for every protected attribute. REVIEW.
  mitigation:
    enabled: true
    method: threshold_optimizer
    constraints: demographic_parity
    objective: accuracy_score
    sensitive_features: [{sensitive}]
    justification: >-
      REVIEW: group-specific thresholds use the protected attribute at decision time, which is itself
      regulated in some domains; exponentiated_gradient needs it only during training.

explanations:
  additivity_tolerance: 1.0e-6
  ndcg_min: 0.9
  top_k_reasons: 3

drift:
  bins: 10
  numeric_method: wasserstein
  categorical_method: jensenshannon
  wasserstein_threshold: 0.1
  jensenshannon_threshold: 0.1
  psi_warn: 0.1
  psi_act: 0.25
  p_value: 0.05
  dataset_drift_share: 0.5
  prediction_psi_act: 0.25

monitoring:
  performance_tolerance: {{accuracy: 0.05, roc_auc: 0.05}}
  min_batch_rows: 200
  summary_last_n_batches: 20
  retrain_on: [dataset_drift, performance]
"""
