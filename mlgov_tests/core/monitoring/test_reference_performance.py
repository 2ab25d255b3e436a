"""The reference-profile cache and the performance verdict (vs scikit-learn)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgov_assets.core.monitoring.ledger import MonitoringPaths
from mlgov_assets.core.monitoring.performance import performance_report
from mlgov_assets.core.monitoring.reference import Reference, profile_with_champion, reference_profile
from mlgov_tests.core.monitoring.helpers import ADULT, DATA, read_adult

# --------------------------------------------------------------------------- reference profile cache


def test_reference_profile_is_built_once_per_reference_md5(settings, monkeypatch):
    from mlgov_assets.core.integrity import md5_file
    from mlgov_assets.core.monitoring.drift import ReferenceProfile

    paths = MonitoringPaths.of(settings)
    ref = Reference("data/adult.data", md5_file(DATA / "adult.data"), DATA / "adult.data", "project")
    builds = []
    real_build = ReferenceProfile.build.__func__
    monkeypatch.setattr(
        ReferenceProfile, "build", classmethod(lambda cls, *a, **k: builds.append(1) or real_build(cls, *a, **k))
    )
    p1, meta = reference_profile(ADULT, paths, ref, bins=10)
    p2, _ = reference_profile(ADULT, paths, ref, bins=10)
    assert len(builds) == 1 and p1.fingerprint == p2.fingerprint
    assert (paths.reference / ref.md5 / "profile-b10.json").exists()
    raw = read_adult(DATA / "adult.data")
    assert meta.rows == len(raw) and meta.positive_rate == pytest.approx((raw[ADULT.label] == ">50K").mean())
    # the champion's scores are attached per champion, on top of the same data profile
    with_pred = profile_with_champion(ADULT, paths, ref, p1, champion=7, load_model=lambda v: _ToyModel())
    assert with_pred.prediction is not None and with_pred.data_fingerprint == p1.fingerprint
    assert with_pred.fingerprint != p1.fingerprint
    again = profile_with_champion(ADULT, paths, ref, p1, champion=7, load_model=lambda v: pytest.fail("re-scored"))
    assert again.fingerprint == with_pred.fingerprint


class _ToyModel:
    """A fit-free stand-in with the sklearn interface (score rises with age and hours)."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        z = (X["age"].to_numpy(float) - 40) / 12 + (X["hours_per_week"].to_numpy(float) - 40) / 10
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])


# --------------------------------------------------------------------------- performance


def test_performance_report_matches_sklearn_and_judges_the_breach(holdout):
    from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score

    rng = np.random.default_rng(0)
    n = 600
    y = pd.Series(rng.integers(0, 2, n).astype(float), index=pd.RangeIndex(n, name="row_id"))
    champ = np.clip(0.35 * y.to_numpy() + rng.uniform(0, 0.65, n), 0, 1)
    shadow = np.clip(0.15 * y.to_numpy() + rng.uniform(0, 0.85, n), 0, 1)
    scores = pd.DataFrame(
        {
            "row_id": np.arange(n),
            "champion_score": champ,
            "champion_decision": (champ >= 0.5).astype(int),
            "shadow_score": shadow,
            "shadow_decision": (shadow >= 0.5).astype(int),
        }
    )
    y.iloc[:50] = np.nan  # unlabelled rows are ignored
    holdout_metrics = {"accuracy": 0.95, "roc_auc": 0.9}
    rep = performance_report(
        y,
        scores,
        champion_metrics=holdout_metrics,
        tolerance={"accuracy": 0.05, "roc_auc": 0.05},
        min_rows=200,
        alpha=0.05,
        reference_positive_rate=0.24,
    )
    yt, s = y.iloc[50:].to_numpy().astype(int), champ[50:]
    assert rep.n_labelled == 550
    assert rep.champion.accuracy == pytest.approx(accuracy_score(yt, s >= 0.5))
    assert rep.champion.precision == pytest.approx(precision_score(yt, s >= 0.5))
    assert rep.champion.recall == pytest.approx(recall_score(yt, s >= 0.5))
    assert rep.champion.roc_auc == pytest.approx(roc_auc_score(yt, s))
    assert rep.shadow.roc_auc == pytest.approx(roc_auc_score(yt, shadow[50:]))
    expected_breach = {m for m, ref in holdout_metrics.items() if ref - getattr(rep.champion, m) > 0.05}
    assert rep.breach == bool(expected_breach) and set(rep.breached_metrics) == expected_breach
    assert rep.concept.positive_rate == pytest.approx(yt.mean())
    assert rep.concept.calibration_gap == pytest.approx(yt.mean() - s.mean())
    a_ok, b_ok = (s >= 0.5) == yt, (shadow[50:] >= 0.5) == yt
    assert (rep.mcnemar.b, rep.mcnemar.c) == (int((a_ok & ~b_ok).sum()), int((~a_ok & b_ok).sum()))
    assert rep.mcnemar.promotes is False
    # a mitigated model decides by its own thresholds: accuracy follows the decisions, AUC the scores
    flipped = scores.assign(champion_decision=1 - scores["champion_decision"])
    rep2 = performance_report(
        y,
        flipped,
        champion_metrics=holdout_metrics,
        tolerance={"accuracy": 0.05},
        min_rows=200,
        alpha=0.05,
        reference_positive_rate=None,
    )
    assert rep2.champion.accuracy == pytest.approx(1 - rep.champion.accuracy)
    assert rep2.champion.roc_auc == pytest.approx(rep.champion.roc_auc)
    # too few labelled rows: reported, not judged
    small = performance_report(
        y.iloc[:250],
        scores,
        champion_metrics={"accuracy": 1.0},
        tolerance={"accuracy": 0.0},
        min_rows=300,
        alpha=0.05,
        reference_positive_rate=None,
    )
    assert small.n_labelled == 200 and not small.judged and not small.breach and "min_batch_rows" in small.reason
