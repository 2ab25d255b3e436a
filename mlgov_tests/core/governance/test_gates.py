"""Model gates: floors, and the champion comparison agreeing with MLflow's own validator."""

from __future__ import annotations

import random

from mlgov_assets.core.governance.gates import champion_comparison, metric_floors
from mlgov_assets.core.governance.policy import ChampionThreshold, MetricFloor


def test_metric_floors_name_each_failing_metric():
    floors = {"roc_auc": MetricFloor(min=0.9), "log_loss": MetricFloor(max=0.3), "accuracy": MetricFloor(min=0.8)}
    r = metric_floors({"roc_auc": 0.89, "log_loss": 0.31, "accuracy": 0.85}, floors, "h")
    assert not r.passed
    assert "roc_auc=0.89" in r.summary and "log_loss=0.31" in r.summary and "accuracy" not in r.summary
    assert {row["metric"]: row["passed"] for row in r.rows} == {"roc_auc": False, "log_loss": False, "accuracy": True}
    assert metric_floors({"roc_auc": 0.9, "log_loss": 0.3, "accuracy": 0.8}, floors, "h").passed  # bounds inclusive
    assert not metric_floors({"log_loss": 0.1}, {"roc_auc": MetricFloor(min=0.5)}, "h").passed  # missing metric fails


def _mlflow_verdict(thresholds: dict[str, ChampionThreshold], cand: dict, base: dict) -> bool:
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation.validation import ModelValidationFailedException, _validate

    mt = {
        k: MetricThreshold(
            threshold=t.threshold,
            min_absolute_change=t.min_absolute_change,
            min_relative_change=t.min_relative_change,
            greater_is_better=t.greater_is_better,
        )
        for k, t in thresholds.items()
    }
    try:
        _validate(mt, cand, base)
        return True
    except ModelValidationFailedException:
        return False


def test_champion_comparison_matches_mlflow_metric_threshold_semantics():
    # the reference is MLflow's own validator: if it moves in an upgrade, this must fail, not skip
    rng = random.Random(7)
    disagreements = []
    for _i in range(400):
        greater = rng.random() < 0.7
        name = "roc_auc" if greater else "log_loss"
        t = ChampionThreshold(
            greater_is_better=greater,
            threshold=rng.choice([None, round(rng.uniform(0.2, 0.9), 3)]),
            min_absolute_change=rng.choice([None, round(rng.uniform(0.0005, 0.05), 4)]),
            min_relative_change=rng.choice([None, round(rng.uniform(0.001, 0.1), 4)]),
        )
        if t.threshold is None and t.min_absolute_change is None and t.min_relative_change is None:
            continue
        base = round(rng.uniform(0.2, 0.95), 4)
        cand = round(base + rng.uniform(-0.06, 0.06), 4)
        ours = champion_comparison(2, {name: cand}, 1, {name: base}, {name: t}, "h").passed
        theirs = _mlflow_verdict({name: t}, {name: cand}, {name: base})
        if ours != theirs:
            disagreements.append((t, cand, base, ours, theirs))
    assert not disagreements, disagreements[:5]


def test_no_champion_applies_only_the_threshold_and_self_comparison_passes():
    t = {"roc_auc": ChampionThreshold(greater_is_better=True, threshold=0.9, min_absolute_change=0.01)}
    assert champion_comparison(1, {"roc_auc": 0.91}, None, None, t, "h").passed
    assert not champion_comparison(1, {"roc_auc": 0.89}, None, None, t, "h").passed
    r = champion_comparison(3, {"roc_auc": 0.5}, 3, {"roc_auc": 0.5}, t, "h")
    assert r.passed and "current champion" in r.summary
    worse = champion_comparison(4, {"roc_auc": 0.915}, 3, {"roc_auc": 0.91}, t, "h")
    assert not worse.passed and "min_absolute_change" in worse.summary
    assert worse.details["compared_champion_version"] == 3
