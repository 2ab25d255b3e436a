"""Stage 3 — training: the challenger, tracked in MLflow and registered as a new version."""


import json
from typing import Any, Optional

import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset

from ..resources import MlgovResource
from .common import CODE_VERSIONS, json_md


class ChallengerConfig(Config):
    """Hyperparameters (editable in the Launchpad). Same inputs + same values -> same model."""

    learning_rate: float = 0.1
    max_iter: int = 200
    max_leaf_nodes: int = 31
    max_depth: Optional[int] = None
    min_samples_leaf: int = 20
    l2_regularization: float = 0.0
    random_state: int = 0


def train_and_register(mlgov: MlgovResource, params: Any, train: pd.DataFrame, holdout: pd.DataFrame,
                       *, dagster_run_id: str, code_version: str) -> dict[str, Any]:
    """Fit, evaluate on the holdout, log to MLflow and register — or reuse the version already
    registered for exactly these inputs (fingerprint), so identical re-runs mint nothing new."""
    from ..core import training
    from ..core.features import MODEL_FEATURES, TARGET
    from ..core.provenance import environment_info, git_info

    s, policy, registry = mlgov.settings(), mlgov.policy(), mlgov.registry()
    train_md5, holdout_md5 = train.attrs.get("dvc_md5", "unknown"), holdout.attrs.get("dvc_md5", "unknown")
    fp = training.fingerprint(train_md5=train_md5, holdout_md5=holdout_md5, params=params, code_version=code_version)
    existing = registry.find_by_fingerprint(fp)
    if existing is not None:
        info = registry.version_info(existing)
        return {"version": existing, "run_id": info["run_id"], "metrics": info["metrics"], "fingerprint": fp,
                "reused": True, "train_data_md5": train_md5, "holdout_data_md5": holdout_md5,
                "params": params.to_dict(), "model_name": registry.name}
    pipeline = training.fit(train, params)
    proba = pipeline.predict_proba(holdout[MODEL_FEATURES])[:, 1]
    metrics = training.holdout_metrics(holdout[TARGET].to_numpy(), proba)
    git = git_info(s.project_dir)
    tags = {"mlgov.git_commit": str(git["commit"]), "mlgov.git_dirty": str(git["dirty"]).lower(),
            "mlgov.train_data_md5": train_md5, "mlgov.train_data_path": str(train.attrs.get("source")),
            "mlgov.holdout_data_md5": holdout_md5, "mlgov.dagster_run_id": dagster_run_id,
            "mlgov.code_version": code_version, "mlgov.policy_sha256": policy.sha256, "mlgov.fingerprint": fp,
            "mlgov.variant": "baseline", "mlgov.flavor": "sklearn"}
    env = environment_info(s.project_dir)
    versions = env["packages"]
    info = registry.log_model_version(
        model=pipeline, flavor="sklearn", run_name=f"challenger-{dagster_run_id[:8]}", params=params.to_dict(),
        metrics=metrics, tags=tags, input_example=holdout[MODEL_FEATURES].head(5),
        text_artifacts={"policy/policy.yaml": s.policy_path.read_text(), "provenance/environment.json": json.dumps(env, indent=2),
                        "provenance/data.json": json.dumps({"train": train.attrs, "holdout": holdout.attrs}, indent=2, default=str)},
        pip_requirements=[f"scikit-learn=={versions['scikit-learn']}", f"pandas=={versions['pandas']}",
                          f"numpy=={versions['numpy']}"])
    return {"version": info["version"], "run_id": info["run_id"], "metrics": metrics, "fingerprint": fp, "reused": False,
            "train_data_md5": train_md5, "holdout_data_md5": holdout_md5, "params": params.to_dict(),
            "model_name": registry.name}


def model_output(result: dict[str, Any], mlgov: MlgovResource) -> Output[dict]:
    meta = {"model_version": result["version"], "mlflow_run_id": result["run_id"],
            "model_uri": f"models:/{result['model_name']}/{result['version']}",
            "mlflow_ui": MetadataValue.url(f"http://127.0.0.1:5000/#/models/{result['model_name']}/versions/{result['version']}"),
            "reused_existing_version": result["reused"], "train_data_md5": result["train_data_md5"],
            "metrics": json_md(result["metrics"]), "params": json_md(result["params"])}
    meta.update({f"holdout/{k}": float(v) for k, v in result["metrics"].items()})
    return Output(result, metadata=meta)


@asset(group_name="training", code_version=CODE_VERSIONS["training"], kinds={"scikit-learn", "mlflow"},
       owners=["team:ml-platform"], tags={"mlgov/stage": "training"},
       description="A HistGradientBoosting pipeline from raw string columns (ordinal codes, so SHAP is exact), "
                   "trained on train_features, scored on the canonical holdout, logged to MLflow with params, "
                   "metrics, signature and provenance tags (git commit, DVC md5s, Dagster run, policy hash), "
                   "and registered as a new model version: the challenger.")
def challenger_model(context: AssetExecutionContext, config: ChallengerConfig, mlgov: MlgovResource,
                     train_features: pd.DataFrame, holdout_features: pd.DataFrame) -> Output[dict]:
    from ..core.training import HyperParams

    params = HyperParams(**config.model_dump())
    result = train_and_register(mlgov, params, train_features, holdout_features, dagster_run_id=context.run_id,
                                code_version=CODE_VERSIONS["training"])
    context.log.info(f"challenger: version {result['version']} ({'reused' if result['reused'] else 'new'}), "
                     f"holdout {json.dumps({k: round(v, 4) for k, v in result['metrics'].items()})}")
    return model_output(result, mlgov)
