"""`reproduce`: retrain a registered model from its recorded lineage (real Adult bytes in a DVC-layout
cache, a real MLflow registry, a real git checkout) and compare holdout predictions.

Expected values are computed independently here: the holdout table is typed with pandas as
COMMON.md describes (not with mlgov's feature code), scores come from the registered model loaded
through the verified loader, and a deliberately different model is fitted here to size a difference.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mlgov_assets.core.audit.decision_log import DecisionLog
from mlgov_assets.core.audit.reproduce import ReproduceError, code_identity, reproduce, split_params
from mlgov_assets.core.integrity import IntegrityError
from mlgov_tests.conftest import dvc_cache_put
from mlgov_tests.core._adult_fixtures import NUMERIC, adult_project, read_adult

ADULT = adult_project()
MODEL_FEATURES = ADULT.model_features

DATA = Path(__file__).resolve().parents[3] / "data"
REPO = Path(__file__).resolve().parents[3]
PARAMS = {"max_iter": 20, "learning_rate": 0.2}


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout.strip()


def _typed(path: Path) -> pd.DataFrame:
    """COMMON.md's independent typing: numbers parsed, `?` -> Unknown, label 0/1."""
    df = read_adult(path)
    for col in NUMERIC:
        df[col] = pd.to_numeric(df[col]).astype("int64")
    df = df.replace("?", "Unknown")
    df["label"] = (df["income"] == ">50K").astype(int)
    return df


def _register(
    registry, pipeline, metrics, holdout, md5: dict, commit: str, recorded_params: dict, project_text: str | None = None
) -> int:
    """Register ``pipeline`` as the governed path would, with ``recorded_params`` as its run params
    (and, given ``project_text``, the project spec it records)."""
    tags = {
        "mlgov.train_data_md5": md5["train"],
        "mlgov.holdout_data_md5": md5["holdout"],
        "mlgov.git_commit": commit,
        "mlgov.git_dirty": "false",
        "mlgov.code_version": "cv-test",
        "mlgov.variant": "baseline",
        "mlgov.flavor": "sklearn",
        "mlgov.dagster_run_id": "none",
        "mlgov.policy_sha256": "0" * 64,
    }
    texts = {}
    if project_text is not None:
        tags |= {"mlgov.project": "adult", "mlgov.project_sha256": hashlib.sha256(project_text.encode()).hexdigest()}
        texts["project/project.yaml"] = project_text
    info = registry.log_model_version(
        model=pipeline,
        flavor="sklearn",
        run_name="repro",
        params=recorded_params,
        metrics=metrics,
        tags=tags,
        input_example=holdout[MODEL_FEATURES].head(5),
        text_artifacts=texts,
        pip_requirements=["scikit-learn==1.9.1"],
    )
    return info.version


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A clean git checkout whose DVC cache holds the Adult files, and one registered version."""
    from mlgov_assets.core.models.registry import Registry
    from mlgov_assets.core.models.training import HyperParams, fit, holdout_metrics
    from mlgov_assets.core.settings import get_settings

    root = tmp_path_factory.mktemp("reproduce")
    project = root / "project"
    project.mkdir()
    (project / ".gitignore").write_text(".dvc/cache/\n")
    (project / "README").write_text("test checkout\n")
    _git(project, "init", "-q", "-b", "main")
    _git(project, "-c", "user.email=t@e.invalid", "-c", "user.name=t", "add", "-A")
    _git(project, "-c", "user.email=t@e.invalid", "-c", "user.name=t", "commit", "-qm", "init")
    cache = project / ".dvc" / "cache"
    md5 = {"train": dvc_cache_put(cache, DATA / "adult.data"), "holdout": dvc_cache_put(cache, DATA / "adult.test")}
    settings = get_settings(
        home=root / "state",
        project_dir=project,
        policy_path=REPO / "mlgov_assets" / "policies" / "default.yaml",
        model_name="repro-test",
        landing_dir=root / "incoming",
    )
    registry = Registry(settings)
    train, holdout = _typed(DATA / "adult.data"), _typed(DATA / "adult.test")
    params = HyperParams(**PARAMS)
    pipeline = fit(train, params, ADULT)
    metrics = holdout_metrics(holdout["label"].to_numpy(), pipeline.predict_proba(holdout[MODEL_FEATURES])[:, 1])
    commit = _git(project, "rev-parse", "HEAD")

    def register(recorded_params: dict, project_text: str | None = None) -> int:
        return _register(registry, pipeline, metrics, holdout, md5, commit, recorded_params, project_text)

    honest = register(params.to_dict())
    # a version whose recorded params do not describe its model (max_iter 21 recorded, 20 trained)
    lying = register({**params.to_dict(), "max_iter": 21})
    return SimpleNamespace(
        registry=registry,
        settings=settings,
        project=project,
        cache=cache,
        md5=md5,
        holdout=holdout,
        honest=honest,
        lying=lying,
        commit=commit,
        register=register,
        params=params,
    )


def _scores(world, version: int) -> np.ndarray:
    return world.registry.load_model(version).predict_proba(world.holdout[MODEL_FEATURES])[:, 1]


def test_a_registered_model_reproduces_bitwise_and_is_certified(world):
    from sklearn.metrics import roc_auc_score

    log = DecisionLog(world.settings.decision_log)
    before = len(log.records())
    report = reproduce(world.registry, world.honest, actor="auditor", current_code_version="cv-test")
    assert report.identical and report.reproduced and report.max_abs_diff == 0.0 and report.differing_decisions == 0
    assert report.code_identity == "identical" and report.code_notes == []
    # registered without a project record: rebuilt under the current spec, and the report says so
    assert report.project == {"name": "adult", "sha256": ADULT.sha256, "spec": "current"}
    assert any("predates project recording" in n for n in report.notes)
    assert report.rows == len(world.holdout) == 16281
    assert report.data["training"]["md5"] == hashlib.md5((DATA / "adult.data").read_bytes()).hexdigest()
    scores = _scores(world, world.honest)
    assert report.metrics_reproduced["roc_auc"] == pytest.approx(
        roc_auc_score(world.holdout["label"], scores), abs=1e-12
    )
    # the certificate: appended to the home's log, citing the predictions by hash
    records = log.records()
    assert len(records) == before + 1
    cert = records[-1]
    assert (cert["kind"], cert["model_version"], cert["actor"]) == (
        "reproducibility_certificate",
        str(world.honest),
        "auditor",
    )
    h = hashlib.sha256(np.ascontiguousarray(scores, dtype="<f8").tobytes())
    h.update(np.ascontiguousarray((scores >= 0.5).astype(float), dtype="<f8").tobytes())
    assert cert["evidence_hashes"]["registered_predictions_sha256"] == h.hexdigest()
    assert cert["evidence_hashes"]["train_data_md5"] == world.md5["train"]
    assert "the recorded code" in cert["reason"] and "bitwise identical" in cert["reason"]
    # witnessed on the version, and the log verifies against that witness
    tags = world.registry.version_info(world.honest).tags
    assert tags["mlgov.reproducibility_certificate"] == cert["hash"]
    import json

    assert log.verify(expected_head=json.loads(tags["mlgov.decision_log_head"])).ok


def test_code_that_differs_is_stated_and_the_certificate_marked(world):
    report = reproduce(world.registry, world.honest, actor="auditor", current_code_version="cv-changed")
    assert report.identical and report.code_identity == "differs"
    assert any("cv-changed" in n for n in report.code_notes)
    cert = DecisionLog(world.settings.decision_log).records()[-1]
    assert cert["payload"]["code_identity"] == "differs" and "DIFFERS" in cert["reason"]
    # the same rules, directly: another commit, a dirty tree now, a dirty tree at training time
    ident, notes = code_identity(
        {"mlgov.git_commit": "a" * 40, "mlgov.git_dirty": "true"}, {"commit": "b" * 40, "dirty": True}, None
    )
    assert ident == "differs" and len(notes) == 3
    assert code_identity(
        {"mlgov.git_commit": "a" * 40, "mlgov.git_dirty": "false"}, {"commit": "a" * 40, "dirty": False}, None
    ) == ("identical", [])


def test_a_difference_is_reported_with_its_size_and_not_certified(world):
    from mlgov_assets.core.models.training import HyperParams, fit

    log = DecisionLog(world.settings.decision_log)
    before = len(log.records())
    report = reproduce(world.registry, world.lying, actor="auditor")
    assert not report.identical and not report.reproduced and report.certificate is None
    assert len(log.records()) == before  # nothing certified
    registered = _scores(world, world.lying)
    retrained = fit(_typed(DATA / "adult.data"), HyperParams(**{**PARAMS, "max_iter": 21}), ADULT).predict_proba(
        world.holdout[MODEL_FEATURES]
    )[:, 1]
    assert report.max_abs_diff == pytest.approx(float(np.max(np.abs(registered - retrained))), rel=1e-12)
    changed = int(np.sum((registered >= 0.5) != (retrained >= 0.5)))
    assert report.differing_decisions == changed and report.differing_share == pytest.approx(changed / 16281)
    assert report.max_abs_diff > 1e-6  # a real difference (one more boosting round), not rounding noise


def test_the_recorded_project_spec_is_the_one_rebuilt_under(world):
    from mlgov_assets.core.settings import DEFAULT_PROJECT_SPEC

    # the recorded spec differs from the current one in bytes only (a comment): same rows, same model
    text = DEFAULT_PROJECT_SPEC.read_text() + "# as recorded\n"
    version = world.register(world.params.to_dict(), text)
    report = reproduce(world.registry, version, actor="auditor", write_certificate=False)
    assert report.identical and report.notes == []
    assert report.project == {"name": "adult", "sha256": hashlib.sha256(text.encode()).hexdigest(), "spec": "recorded"}
    # a recorded spec that does not hash to its tag is refused, never used
    run_id = world.registry.version_info(version).run_id
    world.registry.client.log_text(run_id, text.replace("income > 50K", "income > 60K"), "project/project.yaml")
    with pytest.raises(IntegrityError, match=r"project/project\.yaml hashes to"):
        reproduce(world.registry, version, actor="auditor", write_certificate=False)


def test_altered_training_bytes_in_the_cache_are_refused(world):
    obj = world.cache / "files" / "md5" / world.md5["train"][:2] / world.md5["train"][2:]
    original = obj.read_bytes()
    data = bytearray(original)
    data[len(data) // 3] ^= 0x20
    obj.write_bytes(bytes(data))
    try:
        with pytest.raises(IntegrityError) as exc:
            reproduce(world.registry, world.honest, actor="auditor")
        assert world.md5["train"] in str(exc.value) and "refusing to train" in str(exc.value)
    finally:
        obj.write_bytes(original)


def test_recorded_params_are_parsed_strictly():
    hyper, mit = split_params(
        {
            "learning_rate": "0.2",
            "max_iter": "20",
            "max_leaf_nodes": "31",
            "max_depth": "None",
            "min_samples_leaf": "20",
            "l2_regularization": "0.0",
            "random_state": "7",
            "mitigation_method": "threshold",
            "mitigation_constraints": "demographic_parity",
            "mitigation_objective": "accuracy_score",
            "mitigation_sensitive_features": "['sex', 'race']",
            "mitigation_base_version": "4",
        }
    )
    assert (hyper.learning_rate, hyper.max_iter, hyper.max_depth, hyper.random_state) == (0.2, 20, None, 7)
    assert mit is not None and mit.model_dump() == {
        "method": "threshold",
        "constraints": "demographic_parity",
        "objective": "accuracy_score",
        "sensitive_features": ["sex", "race"],
        "base_version": 4,
    }
    with pytest.raises(ReproduceError, match="unknown \\['n_estimators'\\]"):
        split_params({"n_estimators": "5"})
    with pytest.raises(ReproduceError, match="missing"):
        split_params({"learning_rate": "0.2"})
    recorded = {k: str(v) for k, v in hyper.to_dict().items()}
    with pytest.raises(ReproduceError, match="max_iter"):  # a value that is not an int is refused, not truncated
        split_params({**recorded, "max_iter": "2.5"})
    with pytest.raises(ReproduceError, match="mitigation_base_version"):
        split_params({**recorded, "mitigation_method": "threshold"})
