"""The one training recipe: lineage carried explicitly, refusals typed, identities stable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mlgov_assets.core.data.lineage import DataLineage, LineagedFrame
from mlgov_assets.core.data.split import SplitRecord
from mlgov_assets.core.errors import Refusal, exit_code_for
from mlgov_assets.core.models import recipe
from mlgov_assets.core.models.training import HyperParams
from mlgov_tests.core._adult_fixtures import adult_project

DATA = Path(__file__).resolve().parents[3] / "data"
ADULT = adult_project()
TRAIN = DataLineage(role="training", source="data/adult.data", dvc_md5="5d7c39d7b8804f071cdd1f2a7c460872")
HOLDOUT = DataLineage(role="holdout", source="data/adult.test", dvc_md5="0" * 32)


def _raw(rows: int = 200) -> LineagedFrame:
    full = recipe.read_dataset(ADULT, DATA / "adult.data", TRAIN)
    return LineagedFrame(frame=full.frame.head(rows).copy(), lineage=full.lineage)


def test_features_keep_the_lineage_and_name_the_model_inputs():
    raw = _raw()
    table = recipe.feature_table(ADULT, raw)
    assert table.lineage.dvc_md5 == TRAIN.dvc_md5 and table.lineage.source == "data/adult.data"
    assert table.lineage.model_features is not None and "age" in table.lineage.model_features
    assert "sex" not in table.lineage.model_features  # protected attributes are carried, never inputs
    assert len(table.frame) == 200 and recipe.validate_features(ADULT, table).passed
    assert raw.lineage.model_features is None  # the raw table's lineage is not changed


def test_bad_raw_data_is_a_typed_refusal_with_its_evidence():
    raw = _raw()
    raw.frame.loc[3, "age"] = "7"
    with pytest.raises(recipe.DataRefused) as exc:
        recipe.feature_table(ADULT, raw)
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
    sha = ADULT.sha256
    base = recipe.fingerprint(TRAIN, HOLDOUT, params, code_version="cv", project_sha256=sha)
    assert base == recipe.fingerprint(TRAIN, HOLDOUT, HyperParams(max_iter=20), code_version="cv", project_sha256=sha)
    spec = recipe.MitigationSpec(
        method="threshold", constraints="demographic_parity", objective="accuracy_score", sensitive_features=["sex"]
    )
    split = SplitRecord(seed=0, fraction=0.3, stratified=True, rows=10, holdout_rows=3, holdout_sha256="a" * 64)
    others = {
        recipe.fingerprint(TRAIN, HOLDOUT, HyperParams(max_iter=21), code_version="cv", project_sha256=sha),
        recipe.fingerprint(TRAIN, HOLDOUT, params, code_version="cv2", project_sha256=sha),
        recipe.fingerprint(
            TRAIN.model_copy(update={"dvc_md5": "1" * 32}), HOLDOUT, params, code_version="cv", project_sha256=sha
        ),
        recipe.fingerprint(
            TRAIN, HOLDOUT, params, code_version="cv", project_sha256=sha, mitigation=spec, base_version=1
        ),
        recipe.fingerprint(
            TRAIN, HOLDOUT, params, code_version="cv", project_sha256=sha, mitigation=spec, base_version=2
        ),
        # a spec edit is a different input: never reuse a version trained under another spec
        recipe.fingerprint(TRAIN, HOLDOUT, params, code_version="cv", project_sha256="f" * 64),
        recipe.fingerprint(
            TRAIN, HOLDOUT.model_copy(update={"split": split}), params, code_version="cv", project_sha256=sha
        ),
    }
    assert base not in others and len(others) == 7


def test_mitigation_spec_follows_the_policy():
    from mlgov_assets.core.governance.policy import load_policy
    from mlgov_assets.core.settings import DEFAULT_POLICY

    policy = load_policy(DEFAULT_POLICY)
    spec = recipe.MitigationSpec.from_policy(policy)
    assert policy.fairness is not None
    if policy.fairness.mitigation.enabled:
        assert spec is not None and spec.method in ("threshold", "reductions")
        assert spec.columns(ADULT)[-len(spec.sensitive_features) :] == spec.sensitive_features
        assert spec.columns(ADULT)[: len(ADULT.model_features)] == ADULT.model_features
    else:
        assert spec is None


def test_fit_baseline_scores_the_holdout_it_is_given():
    table = recipe.feature_table(ADULT, _raw(2000))
    fitted = recipe.fit_baseline(ADULT, table.frame, table.frame, HyperParams(max_iter=5))
    assert set(fitted.metrics) >= {"accuracy", "roc_auc"} and 0.5 < fitted.metrics["roc_auc"] <= 1.0
    again = recipe.fit_recipe(ADULT, table.frame, table.frame, HyperParams(max_iter=5), None)
    assert again.metrics == fitted.metrics  # seeded, no early-stopping split: the fit is determined
    assert again.model.predict_proba(table.frame[recipe.model_columns(ADULT, None)]).shape == (2000, 2)


# --------------------------------------------------------------------------- a team's own project

LOANS_SPEC = """
name: loans
data:
  train: {path: data/loans.csv}
  holdout: {fraction: 0.25, seed: 7}
  format: {missing_tokens: ["NA"]}
columns:
  applicant: {type: categorical, categories: [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9]}
  income_k: {type: number, min: 0}
  years_employed: {type: integer, min: 0, max: 50}
  purpose: {type: categorical, categories: [car, home, study], missing: true}
  gender: {type: categorical, categories: [f, m]}
  age: {type: integer, min: 18, max: 99}
  outcome: {type: categorical, categories: [repaid, default]}
target: {column: outcome, favourable: repaid}
protected:
  - {column: gender}
  - {column: age, bands: {name: age_band, edges: [30, 50]}}
exclude:
  - {column: applicant, reason: identifier}
policy: policy.yaml
"""


def _loans_project(tmp_path: Path, rows: int = 400):
    import numpy as np
    import pandas as pd

    from mlgov_assets.core.project.project import open_project

    rng = np.random.default_rng(3)
    income = rng.gamma(4.0, 12.0, rows).round(1)
    years = rng.integers(0, 30, rows)
    repaid = (income / 50 + years / 15 + rng.normal(0, 0.5, rows)) > 1.4
    frame = pd.DataFrame(
        {
            "applicant": [f"a{i % 10}" for i in range(rows)],
            "income_k": income,
            "years_employed": years,
            "purpose": rng.choice(["car", "home", "study", "NA"], rows),
            "gender": rng.choice(["f", "m"], rows),
            "age": rng.integers(18, 80, rows),
            "outcome": np.where(repaid, "repaid", "default"),
        }
    )
    (tmp_path / "data").mkdir()
    frame.to_csv(tmp_path / "data" / "loans.csv", index=False)
    (tmp_path / "loans.yaml").write_text(LOANS_SPEC)
    return open_project(tmp_path / "loans.yaml", tmp_path), frame


def test_a_non_adult_project_trains_through_the_recipe(tmp_path):
    project, frame = _loans_project(tmp_path)
    assert project.model_numeric == ["income_k", "years_employed"] and project.model_categorical == ["purpose"]
    lineage = DataLineage(role="training", source="data/loans.csv", dvc_md5="1" * 32)
    full = recipe.read_dataset(project, tmp_path / "data" / "loans.csv", lineage)
    train_raw, holdout_raw = recipe.split_parts(project, full)
    assert len(train_raw.frame) + len(holdout_raw.frame) == len(frame) == 400
    assert holdout_raw.lineage.role == "holdout" and holdout_raw.lineage.split == train_raw.lineage.split
    assert holdout_raw.lineage.split is not None and holdout_raw.lineage.split.holdout_rows == 100

    train, holdout = recipe.feature_table(project, train_raw), recipe.feature_table(project, holdout_raw)
    assert recipe.validate_features(project, holdout).passed
    assert train.lineage.model_features == ("income_k", "years_employed", "purpose")
    assert set(train.frame.columns) == {"income_k", "years_employed", "purpose", "gender", "age_band", "label"}
    assert set(train.frame["purpose"]) <= {"car", "home", "study", "Unknown"} and "Unknown" in set(
        train.frame["purpose"]
    )
    assert set(train.frame["age_band"]) == {"<30", "30-50", ">=50"}
    fitted = recipe.fit_recipe(project, train.frame, holdout.frame, HyperParams(max_iter=20), None)
    assert fitted.metrics["roc_auc"] > 0.7  # the signal is learnable from the project's own inputs
    assert fitted.model.predict_proba(holdout.frame[recipe.model_columns(project, None)]).shape == (100, 2)
    # the spec's raw gate names its own categories and refuses a value outside them
    bad = LineagedFrame(frame=train_raw.frame.assign(purpose="boat"), lineage=train_raw.lineage)
    with pytest.raises(recipe.DataRefused) as exc:
        recipe.feature_table(project, bad)
    report = exc.value.report
    assert report.schema == "RawLoansSchema"
    assert ("purpose", "isin (a category listed in the project spec)") in {(f.column, f.check) for f in report.failures}
