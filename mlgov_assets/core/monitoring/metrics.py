"""Batch metrics once labels exist: performance at a threshold, the breach rule against the champion's
holdout metrics, and McNemar's paired test of two models on the same rows (a recommendation only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class ModelMetrics(BaseModel):
    """One model on the labelled rows. A metric undefined on the batch is None, with the reason in
    ``reasons`` (e.g. a single-class batch has no ROC AUC), never a misleading 0."""

    model_config = _FROZEN

    n: int
    n_positive: int
    accuracy: float
    precision: float | None
    recall: float | None
    roc_auc: float | None
    predicted_positive_rate: float
    reasons: dict[str, str]  # why a metric is None


class ThresholdMetrics(ModelMetrics):
    """:class:`ModelMetrics` of scores turned into decisions at ``threshold``."""

    threshold: float


class MetricComparison(BaseModel):
    """A batch metric against the champion's holdout metric (policy ``performance_tolerance``)."""

    model_config = _FROZEN

    reference: float | None
    current: float | None
    tolerance: float
    drop: float | None
    breach: bool
    evaluated: bool
    reason: str | None = None


class PerformanceBreach(BaseModel):
    """Every tolerated metric compared; ``breach`` if any dropped strictly beyond its tolerance."""

    model_config = _FROZEN

    breach: bool
    breached_metrics: list[str]
    metrics: dict[str, MetricComparison]


class McNemar(BaseModel):
    """McNemar's paired test of model a vs model b: a recommendation; ``promotes`` is always False."""

    model_config = _FROZEN

    method: str
    statistic: float
    p_value: float
    b: int
    c: int
    n: int
    accuracy_a: float | None
    accuracy_b: float | None
    better: Literal["a", "b", "tie"]
    significant: bool
    alpha: float
    recommendation: str
    promotes: bool


# --------------------------------------------------------------------------- performance


def performance_metrics(
    y_true: ArrayLike,
    y_score: ArrayLike,
    threshold: float = 0.5,
    *,
    labels: Sequence[str] = (),
    positive: str | None = None,
) -> ThresholdMetrics:
    """Accuracy, precision, recall (at ``threshold``, policy default 0.5) and ROC AUC.

    ``y_true`` is 0/1, or label strings among ``labels`` where ``positive`` is the 1 (the project's
    labels and favourable value). Raises ValueError for mismatched shapes, no rows, non-finite
    scores or unknown labels.
    """
    y = _binary_labels(y_true, labels, positive)
    s = np.asarray(y_score, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"y_true and y_score must be 1-D of equal length, got {y.shape} and {s.shape}")
    if y.size == 0:
        raise ValueError("performance_metrics: no labelled rows")
    if not np.isfinite(s).all():
        raise ValueError(f"y_score has non-finite values at rows {np.flatnonzero(~np.isfinite(s))[:5].tolist()}")
    pred = s >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    n_pos = int(y.sum())
    reasons: dict[str, str] = {}
    precision = tp / (tp + fp) if tp + fp else None
    if precision is None:
        reasons["precision"] = "no predicted positives"
    recall = tp / n_pos if n_pos else None
    if recall is None:
        reasons["recall"] = "no positive labels"
    auc = _roc_auc(y, s) if 0 < n_pos < y.size else None
    if auc is None:
        reasons["roc_auc"] = f"single-class batch (all {'positive' if n_pos else 'negative'})"
    return ThresholdMetrics(
        n=int(y.size),
        n_positive=n_pos,
        threshold=float(threshold),
        accuracy=float(np.mean(pred == (y == 1))),
        precision=precision,
        recall=recall,
        roc_auc=auc,
        predicted_positive_rate=float(pred.mean()),
        reasons=reasons,
    )


def _binary_labels(y_true: ArrayLike, labels: Sequence[str] = (), positive: str | None = None) -> np.ndarray:
    arr = np.asarray(y_true)
    if arr.dtype.kind in "OUS":
        if positive is None:
            raise ValueError("y_true: label strings need the favourable value (positive=) to become 0/1")
        allowed = tuple(labels) or (positive,)
        text = pd.Series(arr).astype(str).str.strip()
        bad = ~text.isin(allowed)
        if bad.any():
            raise ValueError(f"y_true: labels must be 0/1 or {allowed}; bad rows {np.flatnonzero(bad)[:5].tolist()}")
        return (text == positive).to_numpy().astype(np.int64)
    ok = np.isin(arr, (0, 1))
    if not ok.all():
        raise ValueError(f"y_true: labels must be 0/1; bad rows {np.flatnonzero(~ok)[:5].tolist()}")
    return arr.astype(np.int64)


def _roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Mann–Whitney form of ROC AUC (ties count one half), via average ranks."""
    ranks = pd.Series(s).rank(method="average").to_numpy()
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def performance_breach(
    reference_metrics: Mapping[str, float | None], current: ModelMetrics, tolerance: Mapping[str, float]
) -> PerformanceBreach:
    """Compare batch metrics with the champion's reference metrics.

    ``tolerance`` (policy ``monitoring.performance_tolerance``) is the allowed absolute drop per
    metric; a drop strictly beyond it is a breach. A metric missing on either side is reported
    as not evaluated (with the reason) and never counts as a breach.
    """
    rows: dict[str, MetricComparison] = {}
    for name, tol in tolerance.items():
        if tol < 0:
            raise ValueError(f"tolerance for {name!r} must be >= 0, got {tol}")
        ref, cur = reference_metrics.get(name), getattr(current, name, None)
        if ref is not None and cur is not None:
            drop = float(ref) - float(cur)
            rows[name] = MetricComparison(
                reference=ref, current=cur, tolerance=float(tol), drop=drop, breach=drop > tol, evaluated=True
            )
            continue
        reason = current.reasons.get(name) or (
            f"{name} missing from the {'reference' if ref is None else 'current'} metrics"
        )
        rows[name] = MetricComparison(
            reference=ref, current=cur, tolerance=float(tol), drop=None, breach=False, evaluated=False, reason=reason
        )
    breached = [n for n, r in rows.items() if r.breach]
    return PerformanceBreach(breach=bool(breached), breached_metrics=breached, metrics=rows)


# --------------------------------------------------------------------------- paired comparison


def mcnemar_test(
    y_true: ArrayLike, pred_a: ArrayLike, pred_b: ArrayLike, *, alpha: float = 0.05, exact_below: int = 25
) -> McNemar:
    """McNemar's paired test of two models' correctness on the same rows (champion A vs shadow B).

    ``b`` = rows A gets right and B wrong, ``c`` = the reverse. With fewer than ``exact_below``
    discordant rows the exact two-sided binomial test is used, otherwise chi-square with
    continuity correction, ``(|b - c| - 1)^2 / (b + c)``, 1 dof. ``alpha`` is the policy's p-value.

    The result is a *recommendation* for a human or the governed promotion path; this function
    never promotes anything (``promotes`` is always False).
    """
    y = _binary_labels(y_true)
    a, bb = _binary_labels(pred_a), _binary_labels(pred_b)
    if not (y.shape == a.shape == bb.shape):
        raise ValueError(f"y_true, pred_a, pred_b must have equal length, got {y.size}, {a.size}, {bb.size}")
    a_ok, b_ok = a == y, bb == y
    b = int(np.sum(a_ok & ~b_ok))
    c = int(np.sum(~a_ok & b_ok))
    method, stat, p = _mcnemar_p(b, c, exact_below)
    better: Literal["a", "b", "tie"] = "a" if b > c else ("b" if c > b else "tie")
    significant = p < alpha
    recommendation = (
        f"model {better} is significantly more accurate on these rows (p={p:.3g}); "
        f"consider it through the governed promotion path"
        if significant and better != "tie"
        else "no significant difference; keep the champion"
    )
    return McNemar(
        method=method,
        statistic=float(stat),
        p_value=float(p),
        b=b,
        c=c,
        n=int(y.size),
        accuracy_a=float(a_ok.mean()) if y.size else None,
        accuracy_b=float(b_ok.mean()) if y.size else None,
        better=better,
        significant=significant,
        alpha=alpha,
        recommendation=recommendation,
        promotes=False,
    )


def _mcnemar_p(b: int, c: int, exact_below: int) -> tuple[str, float, float]:
    """(method, statistic, two-sided p-value) for ``b`` and ``c`` discordant rows."""
    n_disc = b + c
    if n_disc == 0:
        return "none (no discordant rows)", 0.0, 1.0
    if n_disc < exact_below:
        from scipy.stats import binom

        return "exact binomial", float(min(b, c)), min(1.0, 2.0 * float(binom.cdf(min(b, c), n_disc, 0.5)))
    from scipy.stats import chi2

    stat = (abs(b - c) - 1) ** 2 / n_disc
    return "chi-square with continuity correction", stat, float(chi2.sf(stat, 1))
