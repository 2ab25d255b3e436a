"""The fairness report: per-group rates with bootstrap CIs, and disparities over adequate groups.

Point estimates come from Fairlearn's ``MetricFrame``; intervals from the cell bootstrap
(:mod:`.bootstrap`). Groups smaller than ``min_group_size`` are reported but left out of the
summaries, so one noisy cell cannot pass or fail a model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlgov_assets.core.errors import InputError
from mlgov_assets.core.governance.fairness.bootstrap import (
    CI_METHOD,
    GROUP_METRICS,
    METRIC_FUNCS,
    SUMMARY_METRICS,
    IntArray,
    _cell_counts,
    _rates,
    clean,
    summary_with_intervals,
)
from mlgov_assets.core.governance.fairness.results import (
    FairnessReport,
    FeatureFairness,
    GroupRow,
    ReportConfig,
    SummaryValue,
)
from mlgov_assets.core.governance.policy import INTERSECTION_SEP

if TYPE_CHECKING:
    from mlgov_assets.core.governance.fairness.bootstrap import Interval


def intersection_key(columns: Sequence[str]) -> str:
    """Name of an intersection feature set, e.g. ``["sex", "race"] -> "sex|race"``."""
    return INTERSECTION_SEP.join(columns)


# ------------------------------------------------------------------ input validation
def _as_binary(name: str, values: Any, n: int | None = None) -> IntArray:
    arr = np.asarray(values).ravel()
    if n is not None and arr.size != n:
        raise InputError(f"{name} has {arr.size} rows, expected {n}")
    bad = ~np.isin(arr, [0, 1])
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise InputError(f"{name} must be binary 0/1; bad values at rows {rows} (e.g. {arr[rows[0]]!r})")
    return arr.astype(np.int64)


def _check_sensitive(sensitive: pd.DataFrame, columns: Iterable[str], n: int) -> None:
    if not isinstance(sensitive, pd.DataFrame):
        raise TypeError("sensitive must be a pandas DataFrame of sensitive columns")
    if len(sensitive) != n:
        raise InputError(f"sensitive has {len(sensitive)} rows but y_true has {n}")
    for col in columns:
        if col not in sensitive.columns:
            raise InputError(f"sensitive feature column {col!r} not in sensitive frame ({list(sensitive.columns)})")
        missing = sensitive[col].isna().to_numpy()
        if missing.any():
            rows = sensitive.index[missing][:5].tolist()
            raise InputError(f"sensitive column {col!r} has missing values at rows {rows}")


def _group_labels(sensitive: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """One label per row: the value, or values joined by ``|`` for an intersection."""
    parts = [sensitive[c].astype(str) for c in columns]
    if len(parts) > 1:
        for c, p in zip(columns, parts, strict=True):
            clash = p.str.contains(INTERSECTION_SEP, regex=False).to_numpy()
            if clash.any():
                raise InputError(
                    f"sensitive column {c!r} contains the separator {INTERSECTION_SEP!r} "
                    f"(rows {sensitive.index[clash][:5].tolist()}); intersection labels would be ambiguous"
                )
    label = parts[0]
    for p in parts[1:]:
        label = label + INTERSECTION_SEP + p
    return label.reset_index(drop=True).rename(intersection_key(columns))


# ------------------------------------------------------------------ the report
def fairness_report(
    y_true: Any,
    y_pred: Any,
    sensitive: pd.DataFrame,
    *,
    features: list[str],
    intersections: list[list[str]],
    min_group_size: int,
    n_boot: int,
    ci_level: float,
    random_state: int,
    di_band: tuple[float, float] = (0.8, 1.25),
) -> FairnessReport:
    """Disaggregate 0/1 predictions by each sensitive feature and intersection, with bootstrap CIs.

    ``y_true``, ``y_pred`` and the rows of ``sensitive`` are aligned by position. ``n_boot=0``
    skips the bootstrap (a rule judged on a bound then fails); ``random_state`` seeds it;
    ``di_band`` is the four-fifths band. Raises :class:`InputError` for unusable inputs.
    """
    if not 0.0 < ci_level < 1.0:
        raise ValueError(f"ci_level must be in (0, 1), got {ci_level}")
    if min_group_size < 1:
        raise ValueError(f"min_group_size must be >= 1, got {min_group_size}")
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    yt = _as_binary("y_true", y_true)
    yp = _as_binary("y_pred", y_pred, yt.size)
    feature_sets = [[f] for f in features] + [list(i) for i in intersections]
    if not feature_sets:
        raise ValueError("fairness_report needs at least one feature or intersection")
    for fs in feature_sets:
        _check_sensitive(sensitive, fs, yt.size)
    config = ReportConfig(
        min_group_size=min_group_size,
        n_boot=n_boot,
        ci_level=ci_level,
        random_state=random_state,
        di_band=di_band,
        features=list(features),
        intersections=[list(i) for i in intersections],
        ci_method=CI_METHOD if n_boot > 0 else "none (n_boot=0)",
        point_method="fairlearn MetricFrame (by_group); summaries = min/max over adequate groups",
    )
    out = {
        intersection_key(fs): _feature_fairness(yt, yp, _group_labels(sensitive, fs), fs, config) for fs in feature_sets
    }
    overall = {m: clean(f(yt, yp)) for m, f in METRIC_FUNCS.items()}
    return FairnessReport(n_rows=int(yt.size), overall=overall, features=out, config=config)


def _feature_fairness(
    yt: IntArray, yp: IntArray, labels: pd.Series, columns: list[str], config: ReportConfig
) -> FeatureFairness:
    from fairlearn.metrics import MetricFrame

    name = intersection_key(columns)
    # Group sizes come from the cell counts, not a Fairlearn "count" metric (each metric costs
    # MetricFrame ~35 ms on 16k rows); the cells are cross-checked against its rates.
    point = MetricFrame(metrics=dict(METRIC_FUNCS), y_true=yt, y_pred=yp, sensitive_features=labels).by_group
    cells = _aligned_cells(yt, yp, labels, point)
    counts = cells.sum(axis=1)
    is_gated = counts >= config.min_group_size
    gated = sorted(str(g) for g in point.index[is_gated])
    small = sorted(str(g) for g in point.index[~is_gated])

    summary = {m: SummaryValue(value=None) for m in SUMMARY_METRICS}
    intervals: dict[str, dict[str, Interval]] = {}
    note = None
    if len(gated) >= 2:
        adequate = point.loc[is_gated]
        values, per_group = summary_with_intervals(
            {m: adequate[m].to_numpy(float) for m in GROUP_METRICS},
            cells[is_gated],
            n_boot=config.n_boot,
            ci_level=config.ci_level,
            random_state=config.random_state,
        )
        summary = {m: SummaryValue(value=v, lower=lo, upper=hi) for m, (v, lo, hi) in values.items()}
        intervals = {str(g): ci for g, ci in zip(adequate.index, per_group, strict=True)}
    else:
        note = (
            f"fewer than 2 groups with count >= {config.min_group_size} "
            f"(adequate: {gated}); no between-group comparison possible"
        )
    max_sel = float(point.loc[is_gated, "selection_rate"].max()) if gated else float("nan")
    groups = [
        _group_row(name, str(g), int(n), str(g) in small, row, intervals.get(str(g), {}), max_sel, config.di_band)
        for (g, row), n in zip(point.iterrows(), counts, strict=True)
    ]
    groups.sort(key=lambda r: (-r.count, r.group))
    return FeatureFairness(
        name=name,
        columns=list(columns),
        groups=groups,
        small_groups=small,
        gated_groups=gated,
        summary=summary,
        note=note,
    )


def _group_row(
    feature: str,
    group: str,
    count: int,
    small: bool,
    row: pd.Series,
    intervals: dict[str, Interval],
    max_sel: float,
    di_band: tuple[float, float],
) -> GroupRow:
    """One group's row; small groups get points only (no intervals)."""
    rec: dict[str, Any] = {"feature": feature, "group": group, "count": count, "small_group": small}
    for m in GROUP_METRICS:
        rec[m] = clean(row[m])
        rec[f"{m}_lower"], rec[f"{m}_upper"] = intervals.get(m, (None, None))
    di = clean(row["selection_rate"] / max_sel) if max_sel and max_sel > 0 else None
    rec["disparate_impact"] = di
    rec["di_within_band"] = None if di is None else bool(di_band[0] <= di <= di_band[1])
    return GroupRow.model_validate(rec)


def _aligned_cells(yt: IntArray, yp: IntArray, labels: pd.Series, point: pd.DataFrame) -> IntArray:
    """Confusion cells per group in the row order of Fairlearn's ``by_group``, cross-checked.

    The counts must reproduce Fairlearn's per-group rates exactly: a mismatch would silently
    attach one group's interval to another group's point.
    """
    codes = pd.Categorical(labels, categories=point.index).codes
    if (codes < 0).any():
        raise RuntimeError(
            f"internal error: group labels {sorted(set(labels[codes < 0]))[:5]} missing from Fairlearn's by_group index"
        )
    cells = _cell_counts(yt, yp, np.asarray(codes, dtype=np.int64), len(point))
    mine = pd.DataFrame(_rates(cells), index=point.index)
    theirs = point[mine.columns].astype(float)
    if not np.allclose(mine.to_numpy(float), theirs.to_numpy(), rtol=0, atol=1e-12, equal_nan=True):
        raise RuntimeError(
            f"internal error: confusion-cell rates disagree with Fairlearn's by_group:\n{mine.compare(theirs)}"
        )
    return cells
