"""Batch metrics: performance (vs scikit-learn), the breach rule and McNemar (vs a hand computation)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlgov_assets.core.monitoring.metrics import ModelMetrics, mcnemar_test, performance_breach, performance_metrics
from mlgov_tests.core.monitoring.helpers import ADULT, read_adult

DATA = Path(__file__).resolve().parents[3] / "data"
LABEL = ADULT.label


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    return read_adult(DATA / "adult.test")


def toy_score(df: pd.DataFrame) -> np.ndarray:
    num = {c: pd.to_numeric(df[c]) for c in ("age", "hours_per_week", "education_num")}
    z = (num["age"] - 40) / 12 + (num["hours_per_week"] - 40) / 10 + (num["education_num"] - 10) / 3
    return 1 / (1 + np.exp(-z.to_numpy(dtype=float)))


def _metrics(**values: Any) -> ModelMetrics:
    """Batch metrics with the given values; the rest are unremarkable."""
    base = {"n": 100, "n_positive": 30, "accuracy": 0.8, "precision": 0.7, "recall": 0.6, "roc_auc": 0.85}
    return ModelMetrics.model_validate({**base, "predicted_positive_rate": 0.3, "reasons": {}, **values})


# --------------------------------------------------------------------------- performance


def test_performance_metrics_equal_sklearn(holdout):
    from sklearn import metrics

    y = (holdout[LABEL] == ">50K").astype(int).to_numpy()
    s = toy_score(holdout)
    got = performance_metrics(y, s, threshold=0.6)
    pred = (s >= 0.6).astype(int)
    assert got.accuracy == pytest.approx(metrics.accuracy_score(y, pred))
    assert got.precision == pytest.approx(metrics.precision_score(y, pred))
    assert got.recall == pytest.approx(metrics.recall_score(y, pred))
    assert got.roc_auc == pytest.approx(metrics.roc_auc_score(y, s), rel=1e-12)
    # ties in the scores (rounded) follow sklearn's half-credit convention too
    assert performance_metrics(y, np.round(s, 1)).roc_auc == pytest.approx(metrics.roc_auc_score(y, np.round(s, 1)))
    # string labels are accepted
    coding = {"labels": ADULT.labels, "positive": ADULT.favourable}
    assert performance_metrics(holdout[LABEL].to_numpy(), s, 0.6, **coding) == got


def test_performance_metrics_single_class_batch():
    got = performance_metrics([0, 0, 0, 0], [0.1, 0.2, 0.7, 0.3])
    assert got.roc_auc is None and "single-class" in got.reasons["roc_auc"]
    assert got.recall is None and got.accuracy == pytest.approx(0.75)
    with pytest.raises(ValueError, match="0/1"):
        performance_metrics([0, 2], [0.1, 0.2])


def test_performance_breach():
    ref = {"accuracy": 0.85, "roc_auc": 0.90, "recall": 0.6}
    cur = _metrics(accuracy=0.79, roc_auc=0.86, recall=None, reasons={"recall": "no positive labels"})
    got = performance_breach(ref, cur, {"accuracy": 0.05, "roc_auc": 0.05, "recall": 0.1})
    assert got.breach and got.breached_metrics == ["accuracy"]
    assert got.metrics["accuracy"].drop == pytest.approx(0.06)
    assert not got.metrics["roc_auc"].breach
    assert not got.metrics["recall"].evaluated and got.metrics["recall"].reason == "no positive labels"
    exact = performance_breach({"accuracy": 0.5}, _metrics(accuracy=0.25), {"accuracy": 0.25})
    assert not exact.breach  # a drop equal to the tolerance is allowed


# --------------------------------------------------------------------------- McNemar


def _paired(b: int, c: int, both_right: int, both_wrong: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.ones(b + c + both_right + both_wrong, dtype=int)
    a_right = np.r_[np.ones(b), np.zeros(c), np.ones(both_right), np.zeros(both_wrong)].astype(bool)
    b_right = np.r_[np.zeros(b), np.ones(c), np.ones(both_right), np.zeros(both_wrong)].astype(bool)
    return y, np.where(a_right, 1, 0), np.where(b_right, 1, 0)


def test_mcnemar_chi_square_matches_hand_computation():
    y, a, b = _paired(b=30, c=12, both_right=500, both_wrong=40)
    got = mcnemar_test(y, a, b)
    stat = (abs(30 - 12) - 1) ** 2 / (30 + 12)
    assert got.b == 30 and got.c == 12
    assert got.statistic == pytest.approx(stat)
    assert got.p_value == pytest.approx(math.erfc(math.sqrt(stat / 2)))  # chi2(1) survival function
    assert got.better == "a" and got.significant and got.promotes is False


def test_mcnemar_exact_matches_hand_computation():
    y, a, b = _paired(b=3, c=9, both_right=100, both_wrong=5)
    got = mcnemar_test(y, a, b)
    p = 2 * sum(math.comb(12, k) for k in range(0, 4)) / 2**12
    assert got.method == "exact binomial"
    assert got.p_value == pytest.approx(p) and got.better == "b"
    assert not got.significant and got.promotes is False
    none = mcnemar_test(*_paired(0, 0, 10, 2))
    assert none.p_value == 1.0 and none.better == "tie"
