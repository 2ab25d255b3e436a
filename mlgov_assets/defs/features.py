"""Stage 2 — features: the deterministic modelling table, gated by the feature schema."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    Definitions,
    Failure,
    MetadataValue,
    Output,
    asset,
    asset_check,
)

from mlgov_assets.core.data.lineage import LineagedFrame

from ..resources import MlgovResource
from .common import CODE_VERSIONS, schema_check_result, table_metadata
from .scope import scoped


def _features(context: AssetExecutionContext, mlgov: MlgovResource, raw: LineagedFrame) -> Output[LineagedFrame]:
    from mlgov_assets.core.models.recipe import DataRefused, feature_table

    # Defence in depth: the blocking check stops this step in the same run; re-validating here
    # (0.1 s) also refuses bad data when features are materialized on their own.
    try:
        table = feature_table(mlgov.project(), raw)
    except DataRefused as refused:
        raise Failure(
            description=refused.report.summary(),
            metadata={"evidence": MetadataValue.json(refused.report.to_dict()), "mlgov/refused": True},
        ) from refused
    return Output(
        table,
        metadata={
            **table_metadata(table.frame),
            "source": table.lineage.source,
            "source_dvc_md5": table.lineage.dvc_md5,
            "model_features": list(table.lineage.model_features or ()),
        },
    )


@asset(
    group_name="features",
    code_version=CODE_VERSIONS["features"],
    kinds={"pandas"},
    owners=["team:ml-platform"],
    description="Training modelling table as the project spec defines it: typed numbers, missing "
    "categories -> `Unknown`, target 0/1; protected attributes (and their bands) carried for fairness "
    "reporting only (never model inputs); excluded columns dropped.",
)
def train_features(
    context: AssetExecutionContext, mlgov: MlgovResource, training_data: LineagedFrame
) -> Output[LineagedFrame]:
    return _features(context, scoped(mlgov, context), training_data)


@asset(
    group_name="features",
    code_version=CODE_VERSIONS["features"],
    kinds={"pandas"},
    owners=["team:ml-platform"],
    description="Holdout modelling table (from the project's holdout file or split), same transformations.",
)
def holdout_features(
    context: AssetExecutionContext, mlgov: MlgovResource, holdout_data: LineagedFrame
) -> Output[LineagedFrame]:
    return _features(context, scoped(mlgov, context), holdout_data)


def _feature_check(mlgov: MlgovResource, table: LineagedFrame) -> AssetCheckResult:
    from mlgov_assets.core.models.recipe import validate_features

    return schema_check_result(validate_features(mlgov.project(), table))


@asset_check(
    asset=train_features,
    blocking=True,
    description="Pandera FeatureSchema (from the project spec) on the training table.",
)
def check_train_features_schema(
    context: AssetCheckExecutionContext, mlgov: MlgovResource, train_features: LineagedFrame
) -> AssetCheckResult:
    return _feature_check(scoped(mlgov, context), train_features)


@asset_check(
    asset=holdout_features,
    blocking=True,
    description="Pandera FeatureSchema (from the project spec) on the holdout table.",
)
def check_holdout_features_schema(
    context: AssetCheckExecutionContext, mlgov: MlgovResource, holdout_features: LineagedFrame
) -> AssetCheckResult:
    return _feature_check(scoped(mlgov, context), holdout_features)


defs = Definitions(
    assets=[train_features, holdout_features],
    asset_checks=[check_train_features_schema, check_holdout_features_schema],
)
