"""Data and prediction drift verdicts: a vectorized engine that gates on effect sizes, not p-values.

The policy's ``drift`` section (:class:`~mlgov_assets.core.governance.policy.Drift`) picks one
method per column type and its threshold decides "drift"; p-values decide only when the policy
explicitly chooses ``ks``/``chisquare``. Whatever the method, PSI >= ``psi_warn`` raises an "ok"
column to "warn" (never counted as drifted). Dataset drift, as in Evidently: drifted share >=
``dataset_drift_share``. Prediction drift is judged by PSI and never counts toward that share.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from mlgov_assets.core.governance.policy import Drift
from mlgov_assets.core.monitoring import drift_stats as ds
from mlgov_assets.core.monitoring.profile import (
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    prediction_series,
)

VERDICTS = ("ok", "warn", "drift")
#: Evidently scores a numeric column with <= 5 distinct values (reference ∪ current) with the
#: Jensen–Shannon distance over its values instead of the Wasserstein distance; so do we.
LOW_CARDINALITY_MAX = 5
#: Evidently's floor for the reference std that norms the Wasserstein distance.
WASSERSTEIN_MIN_NORM = 0.001
#: Evidently's floor for empty-bin proportions in PSI.
PSI_EPSILON = 1e-4
_MAX_UNSEEN_LISTED = 20


def evidently_compatible() -> Drift:
    """Evidently's DataDriftPreset choice for references > 1000 rows: normed Wasserstein and
    Jensen–Shannon distance at 0.1 (other settings: the policy defaults)."""
    return Drift(numeric_method="wasserstein", categorical_method="jensenshannon")


def _psi_verdict(psi: float | None, warn: float, act: float) -> str:
    if psi is None:
        return "drift"
    return "drift" if psi >= act else ("warn" if psi >= warn else "ok")


@dataclass
class ColumnDrift:
    """One column's statistics and verdict. ``statistic``/``threshold`` are the deciding pair."""

    column: str
    type: str  # "numeric" | "categorical" | "prediction"
    method: str
    statistic: float | None
    threshold: float
    verdict: str  # "ok" | "warn" | "drift"
    psi: float | None = None
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    wasserstein_normed: float | None = None
    chi2_statistic: float | None = None
    chi2_pvalue: float | None = None
    chi2_dof: int | None = None
    js_distance: float | None = None
    n_reference: int = 0
    n_current: int = 0
    missing_share_reference: float = 0.0
    missing_share_current: float = 0.0
    unseen_categories: dict[str, int] = field(default_factory=dict)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DriftReport:
    """Per-column drift rows plus the dataset-level verdict (JSON-serialisable via ``to_dict``)."""

    columns: list[ColumnDrift]
    prediction: ColumnDrift | None
    n_reference_rows: int
    n_current_rows: int
    n_drifted: int
    n_columns: int
    drifted_share: float
    dataset_drift: bool
    drifted_columns: list[str]
    warn_columns: list[str]
    verdict: str  # "drift" if dataset drift, else "warn" if any column/prediction not ok, else "ok"
    thresholds: Drift
    reference_fingerprint: str
    elapsed_s: float

    def column(self, name: str) -> ColumnDrift:
        for row in self.columns + ([self.prediction] if self.prediction else []):
            if row.column == name:
                return row
        raise KeyError(f"no drift row for column {name!r}")

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["columns"] = [c.to_dict() for c in self.columns]
        d["prediction"] = self.prediction.to_dict() if self.prediction else None
        d["thresholds"] = self.thresholds.model_dump()  # the policy's drift settings, recorded with every report
        return d

    def to_frame(self) -> pd.DataFrame:
        rows = [c.to_dict() for c in self.columns] + ([self.prediction.to_dict()] if self.prediction else [])
        return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the engine


def compute_drift(
    profile: ReferenceProfile,
    current: pd.DataFrame,
    thresholds: Drift | None = None,
    *,
    current_prediction: np.ndarray | None = None,
) -> DriftReport:
    """Compare a batch with the reference profile; the verdict follows ``thresholds`` (the policy).

    ``current`` must hold every profiled column (extra columns are ignored); numeric columns must
    be numeric or parse as numbers. Cost: one sort per numeric column, one hash count per
    categorical column; nothing is recomputed on the reference side.
    """
    t0 = time.perf_counter()
    th = Drift() if thresholds is None else thresholds
    ds.require_columns(current, profile.columns, "current batch")
    if len(current) == 0:
        raise ValueError("current batch is empty: no rows to compare")
    rows = [_numeric_row(p, current[c], th, "numeric") for c, p in profile.numeric.items()]
    rows += [_categorical_row(p, current[c], th, "categorical") for c, p in profile.categorical.items()]
    pred_row = _prediction_row(profile, current_prediction, th)
    drifted = [r.column for r in rows if r.verdict == "drift"]
    warned = [r.column for r in rows if r.verdict == "warn"]
    share = len(drifted) / len(rows) if rows else 0.0
    dataset_drift = bool(rows) and share >= th.dataset_drift_share
    any_signal = drifted or warned or (pred_row is not None and pred_row.verdict != "ok")
    return DriftReport(
        columns=rows,
        prediction=pred_row,
        n_reference_rows=profile.n_rows,
        n_current_rows=len(current),
        n_drifted=len(drifted),
        n_columns=len(rows),
        drifted_share=share,
        dataset_drift=dataset_drift,
        drifted_columns=drifted,
        warn_columns=warned,
        verdict="drift" if dataset_drift else ("warn" if any_signal else "ok"),
        thresholds=th,
        reference_fingerprint=profile.fingerprint,
        elapsed_s=time.perf_counter() - t0,
    )


def compute_prediction_drift(
    profile: ReferenceProfile, current_prediction: np.ndarray, thresholds: Drift | None = None
) -> ColumnDrift:
    """Prediction drift alone (the same row :func:`compute_drift` reports), for a batch whose data
    drift was judged before it was scored. ``profile`` must carry the model's reference scores."""
    row = _prediction_row(profile, current_prediction, Drift() if thresholds is None else thresholds)
    if row is None:
        raise ValueError("no prediction given")
    return row


def _prediction_row(profile: ReferenceProfile, current_prediction: Any, th: Drift) -> ColumnDrift | None:
    """Prediction drift is always judged by PSI (warn ``psi_warn``, act ``prediction_psi_act``)."""
    if current_prediction is None:
        return None
    if profile.prediction is None:
        raise ValueError("current_prediction given but the reference profile was built without a prediction")
    s = prediction_series(current_prediction)
    if isinstance(profile.prediction, NumericProfile):
        row = _numeric_row(profile.prediction, s, th, "prediction")
    else:
        row = _categorical_row(profile.prediction, s, th, "prediction")
    row.method, row.statistic, row.threshold = "psi", row.psi, th.prediction_psi_act
    row.verdict = _psi_verdict(row.psi, th.psi_warn, th.prediction_psi_act)
    return row


def _numeric_row(p: NumericProfile, series: pd.Series, th: Drift, kind: str) -> ColumnDrift:
    values, n_missing = ds.numeric_values(series, p.name)
    row = ColumnDrift(
        column=p.name,
        type=kind,
        method=th.numeric_method,
        statistic=None,
        threshold=0.0,
        verdict="drift",
        n_reference=p.n,
        n_current=int(values.size),
        missing_share_reference=ds.share(p.n_missing, p.n + p.n_missing),
        missing_share_current=ds.share(n_missing, len(series)),
    )
    if values.size == 0:
        row.note = "no non-missing values in the current batch"
        return row
    cur = np.sort(values)
    row.psi = ds.psi(p.bin_counts / p.n, ds.bin_counts(cur, p.edges) / cur.size, PSI_EPSILON)
    cur_unique = ds.sorted_unique(cur)
    ks, wass = ds.ks_and_wasserstein(p.sorted_values, cur, p.unique_values, cur_unique)
    ks_p, wass_normed = ds.ks_pvalue(ks, p.n, cur.size), wass / max(p.std, WASSERSTEIN_MIN_NORM)
    row.ks_statistic, row.ks_pvalue, row.wasserstein_normed = ks, ks_p, wass_normed
    support = np.union1d(p.unique_values, cur_unique) if cur_unique.size <= LOW_CARDINALITY_MAX else cur_unique
    if support.size <= LOW_CARDINALITY_MAX:
        row.js_distance = ds.js_distance(*ds.value_proportions(p.sorted_values, cur, support))
    _decide_numeric(row, th, wass_normed, ks_p)
    return row


def _decide_numeric(row: ColumnDrift, th: Drift, wass_normed: float, ks_p: float) -> None:
    method = th.numeric_method
    if method == "psi":
        row.statistic, row.threshold = row.psi, th.psi_act
        row.verdict = _psi_verdict(row.psi, th.psi_warn, th.psi_act)
        return
    if method == "wasserstein" and row.js_distance is not None:
        # Evidently's rule for <= 5 distinct values; it keeps the numeric threshold.
        row.method, row.statistic, drifted = (
            "jensenshannon",
            row.js_distance,
            row.js_distance >= th.wasserstein_threshold,
        )
        row.note = f"<= {LOW_CARDINALITY_MAX} distinct values: Jensen-Shannon distance over values (as Evidently)"
        row.threshold = th.wasserstein_threshold
    elif method == "wasserstein":
        row.statistic, row.threshold = wass_normed, th.wasserstein_threshold
        drifted = wass_normed >= th.wasserstein_threshold
    else:  # ks: the p-value decides, by explicit policy choice
        row.statistic, row.threshold = ks_p, th.p_value
        drifted = ks_p < th.p_value
    row.verdict = "drift" if drifted else _psi_verdict(row.psi, th.psi_warn, math.inf)


def _categorical_row(p: CategoricalProfile, series: pd.Series, th: Drift, kind: str) -> ColumnDrift:
    counts, n_missing = ds.category_counts(series)
    n_cur = int(sum(counts.values()))
    row = ColumnDrift(
        column=p.name,
        type=kind,
        method=th.categorical_method,
        statistic=None,
        threshold=0.0,
        verdict="drift",
        n_reference=p.n,
        n_current=n_cur,
        missing_share_reference=ds.share(p.n_missing, p.n + p.n_missing),
        missing_share_current=ds.share(n_missing, len(series)),
    )
    if n_cur == 0:
        row.note = "no non-missing values in the current batch"
        return row
    known = set(p.categories)
    unseen = sorted((k for k in counts if k not in known), key=lambda k: (-counts[k], k))
    ref_counts = np.concatenate([p.counts, np.zeros(len(unseen), dtype=np.int64)]).astype(np.float64)
    cur_counts = np.array([counts.get(c, 0) for c in p.categories] + [counts[k] for k in unseen], dtype=np.float64)
    row.unseen_categories = {k: int(counts[k]) for k in unseen[:_MAX_UNSEEN_LISTED]}
    if len(unseen) > _MAX_UNSEEN_LISTED:
        row.note = f"{len(unseen)} unseen categories; the {_MAX_UNSEEN_LISTED} most frequent are listed"
    row.psi = ds.psi(ref_counts / p.n, cur_counts / n_cur, PSI_EPSILON)
    row.js_distance = ds.js_distance(ref_counts, cur_counts)
    row.chi2_statistic, row.chi2_pvalue, row.chi2_dof = ds.chi2_homogeneity(ref_counts, cur_counts)
    method = th.categorical_method
    if method == "psi":
        row.statistic, row.threshold = row.psi, th.psi_act
        row.verdict = _psi_verdict(row.psi, th.psi_warn, th.psi_act)
        return row
    if method == "jensenshannon":
        row.statistic, row.threshold = row.js_distance, th.jensenshannon_threshold
        drifted = row.js_distance >= th.jensenshannon_threshold
    else:
        row.statistic, row.threshold = row.chi2_pvalue, th.p_value
        drifted = row.chi2_pvalue < th.p_value
    row.verdict = "drift" if drifted else _psi_verdict(row.psi, th.psi_warn, math.inf)
    return row
