"""Stage 2 — features: the deterministic modelling table, gated by the feature schema."""

import pandas as pd
from dagster import AssetExecutionContext, Failure, MetadataValue, Output, asset, asset_check

from .common import CODE_VERSIONS, schema_check_result, table_metadata


def _features(context: AssetExecutionContext, raw: pd.DataFrame) -> Output[pd.DataFrame]:
    from mlgov_assets.core.data.features import MODEL_FEATURES, build_features
    from mlgov_assets.core.data.schemas import RawAdultSchema, validate

    # Defence in depth: the blocking check stops this step in the same run; re-validating here
    # (0.1 s) also refuses bad data when features are materialized on their own.
    report = validate(raw, RawAdultSchema, source=raw.attrs.get("source", "<unknown>"))
    if not report.passed:
        raise Failure(
            description=report.summary(),
            metadata={"evidence": MetadataValue.json(report.to_dict()), "mlgov/refused": True},
        )
    df = build_features(report.validated)
    df.attrs = {**raw.attrs, "model_features": MODEL_FEATURES}
    return Output(
        df,
        metadata={
            **table_metadata(df),
            "source": raw.attrs.get("source"),
            "source_dvc_md5": raw.attrs.get("dvc_md5"),
            "model_features": MODEL_FEATURES,
        },
    )


@asset(
    group_name="features",
    code_version=CODE_VERSIONS["features"],
    kinds={"pandas"},
    owners=["team:ml-platform"],
    description="Training modelling table: typed numbers, `?` -> `Unknown`, label 0/1; sex and race "
    "carried for fairness reporting only (never model inputs); fnlwgt and education dropped.",
)
def train_features(context: AssetExecutionContext, training_data: pd.DataFrame) -> Output[pd.DataFrame]:
    return _features(context, training_data)


@asset(
    group_name="features",
    code_version=CODE_VERSIONS["features"],
    kinds={"pandas"},
    owners=["team:ml-platform"],
    description="Holdout modelling table (from the canonical adult.test), same transformations.",
)
def holdout_features(context: AssetExecutionContext, holdout_data: pd.DataFrame) -> Output[pd.DataFrame]:
    return _features(context, holdout_data)


def _feature_check(df: pd.DataFrame):
    from mlgov_assets.core.data.schemas import FeatureSchema, validate

    return schema_check_result(validate(df, FeatureSchema, source=f"features of {df.attrs.get('source', '?')}"))


@asset_check(asset=train_features, blocking=True, description="Pandera FeatureSchema on the training table.")
def check_train_features_schema(train_features: pd.DataFrame):
    return _feature_check(train_features)


@asset_check(asset=holdout_features, blocking=True, description="Pandera FeatureSchema on the holdout table.")
def check_holdout_features_schema(holdout_features: pd.DataFrame):
    return _feature_check(holdout_features)
