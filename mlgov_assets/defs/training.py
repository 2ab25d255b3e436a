"""Stage 3 — training: the challenger (and, per policy, its fairness-mitigated candidate),
tracked in MLflow and registered as new model versions."""

import json
from typing import Any

import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset

from ..resources import MlgovResource
from .common import CODE_VERSIONS, json_md


class ChallengerConfig(Config):
    """Hyperparameters (editable in the Launchpad). Same inputs + same values -> same model."""

    learning_rate: float = 0.1
    max_iter: int = 200
    max_leaf_nodes: int = 15
    max_depth: int | None = None
    min_samples_leaf: int = 20
    l2_regularization: float = 0.0
    random_state: int = 0


def _provenance(
    mlgov: MlgovResource,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    run_id: str,
    code_version: str,
    fingerprint: str,
    variant: str,
    flavor: str,
) -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    """Tags and text artifacts every registered version carries: where its data, code and policy came from."""
    from mlgov_assets.core.provenance import environment_info, git_info

    s, policy = mlgov.settings(), mlgov.policy()
    git = git_info(s.project_dir)
    tags = {
        "mlgov.git_commit": str(git["commit"]),
        "mlgov.git_dirty": str(git["dirty"]).lower(),
        "mlgov.train_data_md5": train.attrs.get("dvc_md5", "unknown"),
        "mlgov.train_data_path": str(train.attrs.get("source")),
        "mlgov.holdout_data_md5": holdout.attrs.get("dvc_md5", "unknown"),
        "mlgov.dagster_run_id": run_id,
        "mlgov.code_version": code_version,
        "mlgov.policy_sha256": policy.sha256,
        "mlgov.fingerprint": fingerprint,
        "mlgov.variant": variant,
        "mlgov.flavor": flavor,
    }
    env = environment_info(s.project_dir)
    texts = {
        "policy/policy.yaml": s.policy_path.read_text(),
        "provenance/environment.json": json.dumps(env, indent=2),
        "provenance/data.json": json.dumps({"train": train.attrs, "holdout": holdout.attrs}, indent=2, default=str),
    }
    return tags, texts, env["packages"]


def _reuse(registry, fp: str, base: dict[str, Any]) -> dict[str, Any] | None:
    existing = registry.find_by_fingerprint(fp)
    if existing is None:
        return None
    info = registry.version_info(existing)
    return base | {"version": existing, "run_id": info["run_id"], "metrics": info["metrics"], "reused": True}


def train_and_register(
    mlgov: MlgovResource,
    params: Any,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    dagster_run_id: str,
    code_version: str,
) -> dict[str, Any]:
    """Fit, evaluate on the holdout, log to MLflow and register — or reuse the version already
    registered for exactly these inputs (fingerprint), so identical re-runs mint nothing new."""
    from mlgov_assets.core.data.features import MODEL_FEATURES, TARGET
    from mlgov_assets.core.models import training as training

    registry = mlgov.registry()
    train_md5, holdout_md5 = train.attrs.get("dvc_md5", "unknown"), holdout.attrs.get("dvc_md5", "unknown")
    fp = training.fingerprint(train_md5=train_md5, holdout_md5=holdout_md5, params=params, code_version=code_version)
    base = {
        "fingerprint": fp,
        "reused": False,
        "train_data_md5": train_md5,
        "holdout_data_md5": holdout_md5,
        "params": params.to_dict(),
        "model_name": registry.name,
        "variant": "baseline",
        "mitigation": None,
    }
    if (found := _reuse(registry, fp, base)) is not None:
        return found
    pipeline = training.fit(train, params)
    metrics = training.holdout_metrics(
        holdout[TARGET].to_numpy(), pipeline.predict_proba(holdout[MODEL_FEATURES])[:, 1]
    )
    tags, texts, versions = _provenance(
        mlgov,
        train,
        holdout,
        run_id=dagster_run_id,
        code_version=code_version,
        fingerprint=fp,
        variant="baseline",
        flavor="sklearn",
    )
    info = registry.log_model_version(
        model=pipeline,
        flavor="sklearn",
        run_name=f"challenger-{dagster_run_id[:8]}",
        params=params.to_dict(),
        metrics=metrics,
        tags=tags,
        input_example=holdout[MODEL_FEATURES].head(5),
        text_artifacts=texts,
        pip_requirements=[
            f"scikit-learn=={versions['scikit-learn']}",
            f"pandas=={versions['pandas']}",
            f"numpy=={versions['numpy']}",
        ],
    )
    return base | {"version": info["version"], "run_id": info["run_id"], "metrics": metrics}


def mitigate_and_register(
    mlgov: MlgovResource,
    challenger: dict[str, Any],
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    dagster_run_id: str,
    code_version: str,
) -> dict[str, Any]:
    """Fairlearn mitigation of the challenger, as the policy configures it, registered as its own
    version (pyfunc) so it goes through every gate like any other model."""
    from mlgov_assets.core.data.features import MODEL_FEATURES, TARGET
    from mlgov_assets.core.models import training as training
    from mlgov_assets.core.models.mitigation import fit_mitigated
    from mlgov_assets.core.models.scoring import holdout_metrics, score_frame

    policy, registry = mlgov.policy(), mlgov.registry()
    fz = policy.fairness
    mit = fz.mitigation
    sens = mit.sensitive_features or fz.sensitive_features
    method = {"threshold_optimizer": "threshold", "exponentiated_gradient": "reductions"}[mit.method]
    params = training.HyperParams(**challenger["params"])
    settings = {
        "method": method,
        "constraints": mit.constraints,
        "objective": mit.objective,
        "sensitive_features": sens,
        "base_version": challenger["version"],
    }
    fp = training.fingerprint(
        train_md5=challenger["train_data_md5"],
        holdout_md5=challenger["holdout_data_md5"],
        params=params,
        code_version=code_version,
        variant="mitigated",
        extra=settings,
    )
    base = {
        "fingerprint": fp,
        "reused": False,
        "train_data_md5": challenger["train_data_md5"],
        "holdout_data_md5": challenger["holdout_data_md5"],
        "params": challenger["params"],
        "model_name": registry.name,
        "variant": "mitigated",
        "mitigation": settings,
    }
    if (found := _reuse(registry, fp, base)) is not None:
        return found
    cols = MODEL_FEATURES + list(sens)
    model = fit_mitigated(
        registry.load_governed(challenger["version"]),
        train[cols],
        train[TARGET].to_numpy(),
        sensitive_features=list(sens),
        method=method,
        constraints=mit.constraints,
        objective=mit.objective,
        random_state=params.random_state,
    )
    metrics = holdout_metrics(holdout[TARGET].to_numpy(), score_frame(model, holdout[cols]))
    tags, texts, versions = _provenance(
        mlgov,
        train,
        holdout,
        run_id=dagster_run_id,
        code_version=code_version,
        fingerprint=fp,
        variant="mitigated",
        flavor="pyfunc",
    )
    tags["mlgov.base_version"] = str(challenger["version"])
    texts["mitigation/description.json"] = json.dumps(model.describe(), indent=2, default=str)
    info = registry.log_model_version(
        model=model,
        flavor="pyfunc",
        run_name=f"mitigated-{dagster_run_id[:8]}",
        params={**challenger["params"], **{f"mitigation_{k}": v for k, v in settings.items()}},
        metrics=metrics,
        tags=tags,
        input_example=holdout[cols].head(5),
        text_artifacts=texts,
        pip_requirements=[
            f"scikit-learn=={versions['scikit-learn']}",
            f"pandas=={versions['pandas']}",
            f"numpy=={versions['numpy']}",
            f"fairlearn=={versions.get('fairlearn') or '0.15.0'}",
        ],
    )
    return base | {"version": info["version"], "run_id": info["run_id"], "metrics": metrics}


def model_output(result: dict[str, Any]) -> Output[dict]:
    meta = {
        "model_version": result["version"],
        "mlflow_run_id": result["run_id"],
        "variant": result["variant"],
        "model_uri": f"models:/{result['model_name']}/{result['version']}",
        "mlflow_ui": MetadataValue.url(
            f"http://127.0.0.1:5000/#/models/{result['model_name']}/versions/{result['version']}"
        ),
        "reused_existing_version": result["reused"],
        "train_data_md5": result["train_data_md5"],
        "metrics": json_md(result["metrics"]),
        "params": json_md(result["params"]),
    }
    meta.update({f"holdout/{k}": float(v) for k, v in result["metrics"].items()})
    if result.get("mitigation"):
        meta["mitigation"] = json_md(result["mitigation"])
    return Output(result, metadata=meta)


@asset(
    group_name="training",
    code_version=CODE_VERSIONS["training"],
    kinds={"scikit-learn", "mlflow"},
    owners=["team:ml-platform"],
    tags={"mlgov/stage": "training"},
    description="A HistGradientBoosting pipeline from raw string columns (ordinal codes, so SHAP is exact), "
    "trained on train_features, scored on the canonical holdout, logged to MLflow with params, "
    "metrics, signature and provenance tags (git commit, DVC md5s, Dagster run, policy hash), "
    "and registered as a new model version: the (unmitigated) challenger.",
)
def challenger_model(
    context: AssetExecutionContext,
    config: ChallengerConfig,
    mlgov: MlgovResource,
    train_features: pd.DataFrame,
    holdout_features: pd.DataFrame,
) -> Output[dict]:
    from mlgov_assets.core.models.training import HyperParams

    result = train_and_register(
        mlgov,
        HyperParams(**config.model_dump()),
        train_features,
        holdout_features,
        dagster_run_id=context.run_id,
        code_version=CODE_VERSIONS["training"],
    )
    context.log.info(
        f"challenger: version {result['version']} ({'reused' if result['reused'] else 'new'}), "
        f"holdout {json.dumps({k: round(v, 4) for k, v in result['metrics'].items()})}"
    )
    return model_output(result)


@asset(
    group_name="training",
    code_version=CODE_VERSIONS["training"],
    kinds={"fairlearn", "mlflow"},
    owners=["team:model-risk"],
    tags={"mlgov/stage": "training"},
    description="The model proposed for promotion. When the policy enables mitigation: the challenger "
    "post-processed by Fairlearn (ThresholdOptimizer) or retrained with reductions "
    "(ExponentiatedGradient), registered as its own version; otherwise the challenger itself "
    "(same version). Its gates are blocking; the unmitigated challenger's are shown beside it.",
)
def candidate_model(
    context: AssetExecutionContext,
    mlgov: MlgovResource,
    challenger_model: dict,
    train_features: pd.DataFrame,
    holdout_features: pd.DataFrame,
) -> Output[dict]:
    policy = mlgov.policy()
    if policy.fairness is None or not policy.fairness.mitigation.enabled:
        context.log.info("mitigation disabled by the policy: the candidate is the challenger itself")
        return model_output(challenger_model)
    result = mitigate_and_register(
        mlgov,
        challenger_model,
        train_features,
        holdout_features,
        dagster_run_id=context.run_id,
        code_version=CODE_VERSIONS["training"],
    )
    context.log.info(
        f"mitigated candidate: version {result['version']} of challenger {challenger_model['version']}, "
        f"holdout {json.dumps({k: round(v, 4) for k, v in result['metrics'].items()})}"
    )
    return model_output(result)
