"""The drift verdict comes before scoring, from the batch and the champion's reference profile alone;
that profile is stored when the champion is promoted, and its first batch uses it."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mlgov_assets.core.governance.policy import load_policy
from mlgov_assets.core.integrity import md5_file
from mlgov_assets.core.monitoring.batch_values import AcceptedBatch, BatchIntake
from mlgov_assets.core.monitoring.drift_assessment import assess_drift, prepare_champion_reference
from mlgov_assets.core.monitoring.ledger import ASSESSED, BatchLedger, MonitoringError, MonitoringPaths
from mlgov_assets.core.monitoring.profile import ReferenceProfile
from mlgov_assets.core.monitoring.retrain_plan import breach_reasons
from mlgov_tests.core.monitoring.helpers import ADULT, DATA, sim


class _Toy:
    """A fit-free stand-in with the sklearn interface (score rises with age)."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = np.clip(pd.to_numeric(X["age"]).to_numpy(dtype=float) / 100.0, 0.01, 0.99)
        return np.column_stack([1 - p, p])


class _Registry:
    """The registry calls monitoring makes; loading a model is recorded (or refused)."""

    def __init__(self, champion: int, *, loadable: bool = True):
        self.champion, self.loadable, self.loaded = champion, loadable, []
        self.tags = {"mlgov.train_data_path": "data/adult.data", "mlgov.train_data_md5": md5_file(DATA / "adult.data")}

    def champion_version(self) -> int:
        return self.champion

    def version_info(self, version: int) -> SimpleNamespace:
        return SimpleNamespace(version=version, tags=self.tags)

    def load_governed(self, version: int) -> _Toy:
        if not self.loadable:
            pytest.fail("a model was loaded for the drift verdict")
        self.loaded.append(version)
        return _Toy()


@pytest.fixture
def home(settings):
    (settings.project_dir / "data").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / "adult.data", settings.project_dir / "data" / "adult.data")
    return settings


def _accepted(frame: pd.DataFrame, batch_id: str, *, valid: bool = True) -> AcceptedBatch:
    intake = BatchIntake(
        batch_id=batch_id, source=f"{batch_id}.csv", md5="0" * 32, valid=valid, summary="", validation={}
    )
    return AcceptedBatch(frame=frame, intake=intake)


def test_the_verdict_needs_no_model_and_is_a_breach_before_scoring(home, holdout):
    policy = load_policy(home.policy_path)
    batch = _accepted(sim("covariate", holdout, rows=2000, seed=3)[0], "cov-1")
    result = assess_drift(home, ADULT, policy, _Registry(4, loadable=False), batch)
    assert result.breach and result.champion_version == 4 and result.prediction_verdict is None
    entry = BatchLedger(MonitoringPaths.of(home)).get("cov-1")
    assert entry["status"] == ASSESSED and entry["champion_version"] == 4 and entry["drift"]["breach"]
    # the retraining policy acts on it before the batch is scored
    assert breach_reasons(entry, ["dataset_drift"]) == ["dataset_drift"]


def test_a_refused_batch_gets_no_verdict(home, holdout):
    policy = load_policy(home.policy_path)
    batch = _accepted(sim("covariate", holdout, rows=500, seed=4)[0], "bad-1", valid=False)
    with pytest.raises(MonitoringError, match="failed validation"):
        assess_drift(home, ADULT, policy, _Registry(4, loadable=False), batch)
    assert BatchLedger(MonitoringPaths.of(home)).get("bad-1") is None


def test_the_reference_is_profiled_at_promotion_and_the_first_batch_uses_it(home, holdout, monkeypatch):
    policy, registry = load_policy(home.policy_path), _Registry(5)
    record = prepare_champion_reference(home, ADULT, policy, registry, 5)
    folder = MonitoringPaths.of(home).reference / record.md5
    assert record.md5 == registry.tags["mlgov.train_data_md5"] and registry.loaded == [5]
    assert (folder / f"profile-b{policy.drift.bins}.json").exists()
    assert (folder / f"profile-b{policy.drift.bins}-champion-v5.json").exists()  # its scores, for prediction drift
    # the first batch builds nothing: every profile is read as stored
    monkeypatch.setattr(ReferenceProfile, "build", classmethod(lambda cls, *a, **k: pytest.fail("rebuilt")))
    batch = _accepted(sim("covariate", holdout, rows=800, seed=5)[0], "first-1")
    result = assess_drift(home, ADULT, policy, _Registry(5, loadable=False), batch)
    assert result.reference.fingerprint == record.fingerprint


def test_without_a_stored_reference_the_first_batch_builds_it(home, holdout):
    """An older home (promoted before references were prepared at promotion) still works."""
    policy = load_policy(home.policy_path)
    batch = _accepted(sim("covariate", holdout, rows=800, seed=6)[0], "old-1")
    result = assess_drift(home, ADULT, policy, _Registry(2, loadable=False), batch)
    assert (MonitoringPaths.of(home).reference / result.reference.md5 / f"profile-b{policy.drift.bins}.json").exists()
