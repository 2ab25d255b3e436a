"""The one training recipe: lineage carried explicitly, refusals typed, identities stable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mlgov_assets.core.data.lineage import DataLineage, LineagedFrame
from mlgov_assets.core.errors import Refusal, exit_code_for
from mlgov_assets.core.models import recipe
from mlgov_assets.core.models.training import HyperParams

DATA = Path(__file__).resolve().parents[3] / "data"
TRAIN = DataLineage(role="training", source="data/adult.data", dvc_md5="5d7c39d7b8804f071cdd1f2a7c460872")
HOLDOUT = DataLineage(role="holdout", source="data/adult.test", dvc_md5="0" * 32)


def _raw(rows: int = 200) -> LineagedFrame:
    full = recipe.read_dataset(DATA / "adult.data", TRAIN)
    return LineagedFrame(frame=full.frame.head(rows).copy(), lineage=full.lineage)


def test_features_keep_the_lineage_and_name_the_model_inputs():
    raw = _raw()
    table = recipe.feature_table(raw)
    assert table.lineage.dvc_md5 == TRAIN.dvc_md5 and table.lineage.source == "data/adult.data"
    assert table.lineage.model_features is not None and "age" in table.lineage.model_features
    assert "sex" not in table.lineage.model_features  # protected attributes are carried, never inputs
    assert len(table.frame) == 200 and recipe.validate_features(table).passed
    assert raw.lineage.model_features is None  # the raw table's lineage is not changed


def test_bad_raw_data_is_a_typed_refusal_with_its_evidence():
    raw = _raw()
    raw.frame.loc[3, "age"] = "7"
    with pytest.raises(recipe.DataRefused) as exc:
        recipe.feature_table(raw)
    assert isinstance(exc.value, Refusal) and exit_code_for(exc.value) == 1
    failures = {(f.column, f.count) for f in exc.value.report.failures}
    assert ("age", 1) in failures and "data/adult.data" in str(exc.value)


def test_lineage_is_validated():
    with pytest.raises(ValidationError, match="dvc_md5"):
        DataLineage(role="training", source="x", dvc_md5="unknown")
    with pytest.raises(ValidationError):
        DataLineage(role="training", source="x", dvc_md5="0" * 32, extra="field")


def test_hyperparameters_are_defined_once_and_parsed_strictly():
    from mlgov_assets.defs.training import ChallengerConfig

    assert {n: f.default for n, f in ChallengerConfig.model_fields.items()} == {
        n: f.default for n, f in HyperParams.model_fields.items()
    }
    assert HyperParams.from_recorded({"max_depth": "None", "learning_rate": "0.2"}) == HyperParams(learning_rate=0.2)
    with pytest.raises(ValidationError):
        HyperParams(n_estimators=5)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        HyperParams.from_recorded({"max_iter": "ten"})


def test_fingerprint_depends_on_data_params_code_and_mitigation():
    params = HyperParams(max_iter=20)
    base = recipe.fingerprint(TRAIN, HOLDOUT, params, code_version="cv")
    assert base == recipe.fingerprint(TRAIN, HOLDOUT, HyperParams(max_iter=20), code_version="cv")
    spec = recipe.MitigationSpec(
        method="threshold", constraints="demographic_parity", objective="accuracy_score", sensitive_features=["sex"]
    )
    others = {
        recipe.fingerprint(TRAIN, HOLDOUT, HyperParams(max_iter=21), code_version="cv"),
        recipe.fingerprint(TRAIN, HOLDOUT, params, code_version="cv2"),
        recipe.fingerprint(TRAIN.model_copy(update={"dvc_md5": "1" * 32}), HOLDOUT, params, code_version="cv"),
        recipe.fingerprint(TRAIN, HOLDOUT, params, code_version="cv", mitigation=spec, base_version=1),
        recipe.fingerprint(TRAIN, HOLDOUT, params, code_version="cv", mitigation=spec, base_version=2),
    }
    assert base not in others and len(others) == 5


def test_mitigation_spec_follows_the_policy():
    from mlgov_assets.core.governance.policy import load_policy
    from mlgov_assets.core.settings import DEFAULT_POLICY

    policy = load_policy(DEFAULT_POLICY)
    spec = recipe.MitigationSpec.from_policy(policy)
    assert policy.fairness is not None
    if policy.fairness.mitigation.enabled:
        assert spec is not None and spec.method in ("threshold", "reductions")
        assert spec.columns()[-len(spec.sensitive_features) :] == spec.sensitive_features
    else:
        assert spec is None


def test_fit_baseline_scores_the_holdout_it_is_given():
    table = recipe.feature_table(_raw(2000))
    fitted = recipe.fit_baseline(table.frame, table.frame, HyperParams(max_iter=5))
    assert set(fitted.metrics) >= {"accuracy", "roc_auc"} and 0.5 < fitted.metrics["roc_auc"] <= 1.0
    again = recipe.fit_recipe(table.frame, table.frame, HyperParams(max_iter=5), None)
    assert again.metrics == fitted.metrics  # seeded, no early-stopping split: the fit is determined
    assert again.model.predict_proba(table.frame[recipe.model_columns(None)]).shape == (2000, 2)
