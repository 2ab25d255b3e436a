"""Per-group rates and between-group summaries from confusion cells, and their bootstrap.

Every reported number is a function of the ``groups x 4`` confusion counts of (group, y_true,
y_pred), so the bootstrap resamples those counts (a multinomial draw, the same distribution as a
row bootstrap) instead of rows. The scalar functions in :data:`METRIC_FUNCS` give Fairlearn's
``MetricFrame`` the same divisions, so points and replicates agree bit for bit.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from mlgov_assets.core.governance.policy import SUMMARY_METRICS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Per-group metrics, in report order (``count`` is added separately: it has no CI).
GROUP_METRICS: tuple[str, ...] = ("selection_rate", "tpr", "fpr", "fnr", "precision", "accuracy")

#: Per-group metrics that get bootstrap CIs (all of them: the cell bootstrap makes them free).
BOOTSTRAP_METRICS: tuple[str, ...] = GROUP_METRICS

__all__ = ["BOOTSTRAP_METRICS", "CI_METHOD", "GROUP_METRICS", "METRIC_FUNCS", "SUMMARY_METRICS", "clean"]

#: What a report's ``config.ci_method`` says about its intervals.
CI_METHOD = (
    "nonparametric percentile bootstrap: n_boot resamples with replacement of the rows of the "
    "adequately sized groups (not stratified by group; drawn exactly as multinomial counts of "
    "group x y_true x y_pred cells, numpy Generator seeded with random_state); every per-group "
    "rate and summary (equalized odds included) computed per replicate; interval = "
    "[q, 1-q] quantiles with q = (1 - ci_level)/2, replicates where a rate is 0/0 left out; "
    "small groups get no interval"
)


def clean(x: Any) -> float | None:
    """Float or None (JSON has no NaN)."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


# ------------------------------------------------------------------ scalar points (for MetricFrame)
def rate(num: float, den: float) -> float:
    """``num / den``, NaN when ``den`` is 0."""
    return float(num) / float(den) if den > 0 else float("nan")


def _selection_rate(y_true: Any, y_pred: Any) -> float:
    yp = np.asarray(y_pred)
    return rate((yp == 1).sum(), yp.size)


def _tpr(y_true: Any, y_pred: Any) -> float:
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    return rate(((yp == 1) & (yt == 1)).sum(), (yt == 1).sum())


def _fpr(y_true: Any, y_pred: Any) -> float:
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    return rate(((yp == 1) & (yt == 0)).sum(), (yt == 0).sum())


def _fnr(y_true: Any, y_pred: Any) -> float:
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    return rate(((yp == 0) & (yt == 1)).sum(), (yt == 1).sum())


def _precision(y_true: Any, y_pred: Any) -> float:
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    return rate(((yp == 1) & (yt == 1)).sum(), (yp == 1).sum())


def _accuracy(y_true: Any, y_pred: Any) -> float:
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    return rate((yt == yp).sum(), yt.size)


#: Plain-numpy metric functions (much cheaper than sklearn's validated ones) for MetricFrame.
METRIC_FUNCS: dict[str, Callable[[Any, Any], float]] = {
    "selection_rate": _selection_rate,
    "tpr": _tpr,
    "fpr": _fpr,
    "fnr": _fnr,
    "precision": _precision,
    "accuracy": _accuracy,
}


# ------------------------------------------------------------------ vectorised over cells
def _cell_counts(yt: IntArray, yp: IntArray, codes: IntArray, n_groups: int) -> IntArray:
    """``(n_groups, 4)`` confusion counts, last axis ``[TN, FP, FN, TP]`` (= ``2*y_true + y_pred``)."""
    return np.bincount(codes * 4 + 2 * yt + yp, minlength=4 * n_groups).reshape(n_groups, 4)


def _rates(counts: npt.NDArray[Any]) -> dict[str, FloatArray]:
    """Each of :data:`GROUP_METRICS` from counts of shape ``(..., groups, 4)``; 0/0 -> NaN.

    The same float divisions as :data:`METRIC_FUNCS`, so the results equal Fairlearn's points.
    """
    c = counts.astype(np.float64)
    tn, fp, fn, tp = c[..., 0], c[..., 1], c[..., 2], c[..., 3]
    n, pos, neg, sel = tn + fp + fn + tp, fn + tp, tn + fp, fp + tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "selection_rate": sel / n,
            "tpr": tp / pos,
            "fpr": fp / neg,
            "fnr": fn / pos,
            "precision": tp / sel,
            "accuracy": (tp + tn) / n,
        }


def _between_groups(values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(min/max, max-min)`` over the last (group) axis, skipping undefined (NaN) groups as
    Fairlearn's ``ratio()``/``difference()`` do; NaN when no group is defined."""
    undefined = np.isnan(values)
    none = undefined.all(axis=-1)
    lo = np.where(none, np.nan, np.where(undefined, np.inf, values).min(axis=-1))
    hi = np.where(none, np.nan, np.where(undefined, -np.inf, values).max(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return lo / hi, hi - lo


def _summaries(rates: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    """Each of :data:`SUMMARY_METRICS` from per-group rates of shape ``(..., groups)``.

    One function for the point and every replicate, so equalized odds is the worst of the *same*
    replicate's TPR and FPR disparities; NaN propagates (a rule on it then fails closed).
    """
    sel_r, sel_d = _between_groups(rates["selection_rate"])
    tpr_r, tpr_d = _between_groups(rates["tpr"])
    fpr_r, fpr_d = _between_groups(rates["fpr"])
    return {
        "demographic_parity_ratio": sel_r,
        "demographic_parity_difference": sel_d,
        "disparate_impact_min": sel_r,
        "equalized_odds_ratio": np.minimum(tpr_r, fpr_r),
        "equalized_odds_difference": np.maximum(tpr_d, fpr_d),
        "tpr_ratio": tpr_r,
        "tpr_difference": tpr_d,
        "fpr_ratio": fpr_r,
        "fpr_difference": fpr_d,
    }


def _bootstrap_counts(cells: IntArray, n_boot: int, rng: np.random.Generator) -> IntArray:
    """Confusion counts of ``n_boot`` row resamples, shape ``(n_boot, *cells.shape)``.

    A resample of N rows puts each draw in cell c with probability ``n_c / N``: its cell counts
    are ``Multinomial(N, n / N)``, drawn here directly at O(n_boot x cells) cost.
    """
    flat = cells.ravel()
    total = int(flat.sum())
    draws: IntArray = rng.multinomial(total, flat / total, size=n_boot)
    return draws.reshape(n_boot, *cells.shape)


def _percentile_interval(samples: FloatArray, ci_level: float) -> tuple[FloatArray, FloatArray]:
    """Percentile interval ``[Q(q), Q(1-q)]``, ``q = (1 - ci_level) / 2``, along axis 0.

    Undefined (NaN) replicates are left out; NaN if all are undefined.
    """
    q = (1.0 - ci_level) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices -> NaN, on purpose
        lo, hi = np.nanquantile(samples, [q, 1.0 - q], axis=0)
    return lo, hi


Interval = tuple[float | None, float | None]


def summary_with_intervals(
    point_rates: Mapping[str, FloatArray], cells: IntArray, *, n_boot: int, ci_level: float, random_state: int
) -> tuple[dict[str, tuple[float | None, float | None, float | None]], list[dict[str, Interval]]]:
    """Summary ``(value, lower, upper)`` per metric and per-group intervals (one dict per group).

    ``point_rates`` are the groups' point rates and ``cells`` their confusion counts (same group
    order). ``n_boot=0`` gives points only (intervals None).
    """
    point = _summaries(point_rates)
    n_groups = cells.shape[0]
    if n_boot == 0:
        return {m: (clean(point[m]), None, None) for m in SUMMARY_METRICS}, [{} for _ in range(n_groups)]
    rng = np.random.default_rng(random_state)
    boot_rates = _rates(_bootstrap_counts(cells, n_boot, rng))
    boot = _summaries(boot_rates)
    summary: dict[str, tuple[float | None, float | None, float | None]] = {}
    for m in SUMMARY_METRICS:
        lo, hi = _percentile_interval(boot[m], ci_level)
        summary[m] = (clean(point[m]), clean(lo), clean(hi))
    group_ci = {m: _percentile_interval(boot_rates[m], ci_level) for m in BOOTSTRAP_METRICS}
    per_group = [
        {m: (clean(group_ci[m][0][j]), clean(group_ci[m][1][j])) for m in BOOTSTRAP_METRICS} for j in range(n_groups)
    ]
    return summary, per_group
