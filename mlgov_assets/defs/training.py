"""Stage 3 — training: the challenger (and, per policy, its fairness-mitigated candidate),
tracked in MLflow and registered as new model versions. The recipe is core's
(:mod:`mlgov_assets.core.models.recipe`, :mod:`mlgov_assets.core.models.registration`)."""

import json

from dagster import AssetExecutionContext, Config, Definitions, MetadataValue, Output, asset

from mlgov_assets.core.data.lineage import LineagedFrame
from mlgov_assets.core.models.registration import ModelResult
from mlgov_assets.core.models.training import HyperParams

from ..resources import MlgovResource
from .common import CODE_VERSIONS, json_md
from .scope import scoped


class ChallengerConfig(Config, HyperParams):
    """Hyperparameters (editable in the Launchpad), as :class:`HyperParams` defines them."""


def model_output(mlgov: MlgovResource, result: ModelResult) -> Output[ModelResult]:
    """The model asset's value and the metadata the gates and the UI read."""
    meta = {
        "model_version": result.version,
        "mlflow_run_id": result.run_id,
        "variant": result.variant,
        "model_uri": f"models:/{result.model_name}/{result.version}",
        "mlflow_ui": MetadataValue.url(mlgov.settings().mlflow_model_version_url(result.model_name, result.version)),
        "reused_existing_version": result.reused,
        "train_data_md5": result.train_data_md5,
        "metrics": json_md(result.metrics),
        "params": json_md(result.params.to_dict()),
    }
    meta.update({f"holdout/{k}": MetadataValue.float(float(v)) for k, v in result.metrics.items()})
    if result.mitigation is not None:
        meta["mitigation"] = json_md(result.mitigation.model_dump(mode="json"))
    return Output(result, metadata=meta)


def _rounded(metrics: dict[str, float]) -> str:
    return json.dumps({k: round(v, 4) for k, v in metrics.items()})


@asset(
    group_name="training",
    code_version=CODE_VERSIONS["training"],
    kinds={"scikit-learn", "mlflow"},
    owners=["team:ml-platform"],
    tags={"mlgov/stage": "training"},
    description="A HistGradientBoosting pipeline from raw string columns (ordinal codes, so SHAP is exact), "
    "trained on train_features, scored on the canonical holdout, logged to MLflow with params, "
    "metrics, signature and provenance tags (git commit, DVC md5s, Dagster run, policy and project spec "
    "hashes, the spec itself), "
    "and registered as a new model version: the (unmitigated) challenger.",
)
def challenger_model(
    context: AssetExecutionContext,
    config: ChallengerConfig,
    mlgov: MlgovResource,
    train_features: LineagedFrame,
    holdout_features: LineagedFrame,
) -> Output[ModelResult]:
    from mlgov_assets.core.models.registration import train_and_register

    mlgov = scoped(mlgov, context)
    result = train_and_register(
        mlgov.registry(),
        mlgov.policy(),
        mlgov.project(),
        train_features,
        holdout_features,
        HyperParams.model_validate(config.model_dump()),
        dagster_run_id=context.run_id,
        code_version=CODE_VERSIONS["training"],
    )
    context.log.info(
        f"challenger: version {result.version} ({'reused' if result.reused else 'new'}), "
        f"holdout {_rounded(result.metrics)}"
    )
    return model_output(mlgov, result)


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
    challenger_model: ModelResult,
    train_features: LineagedFrame,
    holdout_features: LineagedFrame,
) -> Output[ModelResult]:
    from mlgov_assets.core.models.recipe import MitigationSpec
    from mlgov_assets.core.models.registration import mitigate_and_register

    mlgov = scoped(mlgov, context)
    policy = mlgov.policy()
    spec = MitigationSpec.from_policy(policy)
    if spec is None:
        context.log.info("mitigation disabled by the policy: the candidate is the challenger itself")
        return model_output(mlgov, challenger_model)
    result = mitigate_and_register(
        mlgov.registry(),
        policy,
        mlgov.project(),
        spec,
        challenger_model,
        train_features,
        holdout_features,
        dagster_run_id=context.run_id,
        code_version=CODE_VERSIONS["training"],
    )
    context.log.info(
        f"mitigated candidate: version {result.version} of challenger {challenger_model.version}, "
        f"holdout {_rounded(result.metrics)}"
    )
    return model_output(mlgov, result)


defs = Definitions(assets=[challenger_model, candidate_model])
