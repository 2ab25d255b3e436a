"""Stage 1 — data: the Adult files as DVC-versioned datasets, with blocking schema gates."""

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetExecutionContext,
    AssetKey,
    Config,
    DataVersion,
    Output,
    asset,
    asset_check,
    observable_source_asset,
)

from mlgov_assets.core.data.adult import read_adult_csv
from mlgov_assets.core.integrity import md5_file

from ..resources import MlgovResource, TrainingLock
from .common import CODE_VERSIONS, schema_check_result, table_metadata

TRAIN_FILE = "data/adult.data"
HOLDOUT_FILE = "data/adult.test"


@observable_source_asset(
    group_name="data",
    description="The raw training file `data/adult.data` "
    "(UCI Adult, CC BY 4.0). Observed data version = md5 of its bytes (DVC's md5).",
)
def adult_training_file(mlgov: MlgovResource) -> DataVersion:
    return DataVersion(md5_file(mlgov.settings().project_dir / TRAIN_FILE))


@observable_source_asset(
    group_name="data", description="The canonical holdout `data/adult.test`. Observed data version = md5 of its bytes."
)
def adult_holdout_file(mlgov: MlgovResource) -> DataVersion:
    return DataVersion(md5_file(mlgov.settings().project_dir / HOLDOUT_FILE))


class DatasetConfig(Config):
    path: str = TRAIN_FILE
    """Dataset file inside the project's DVC repo; retraining points this at a new dataset."""


def _load(context: AssetExecutionContext, mlgov: MlgovResource, path: str, role: str) -> Output[pd.DataFrame]:
    from mlgov_assets.core.data.datasets import ensure_tracked

    s = mlgov.settings()
    tracked = ensure_tracked(s.project_dir, path, site_cache=s.dvc_site_cache)
    df = read_adult_csv(tracked.path)
    rel = str(tracked.path.relative_to(s.project_dir))
    df.attrs = {"role": role, "source": rel, "dvc_md5": tracked.md5}
    context.log.info(
        f"{rel}: {len(df)} rows, DVC md5 {tracked.md5}{' (newly added to DVC)' if tracked.added_now else ''}"
    )
    return Output(
        df,
        data_version=DataVersion(tracked.md5),
        metadata={
            **table_metadata(df),
            "path": rel,
            "dvc_md5": tracked.md5,
            "bytes": tracked.size,
            "dvc_file": str(tracked.dvc_file.relative_to(s.project_dir)),
            "dvc_cache_object": str(tracked.cache_object),
        },
    )


@asset(
    group_name="data",
    deps=[adult_training_file],
    code_version=CODE_VERSIONS["data"],
    kinds={"dvc", "pandas"},
    owners=["team:ml-platform"],
    description="Training rows as delivered (strings, `?` kept), content-addressed by DVC: the data "
    "version IS the DVC md5, so one changed byte marks everything downstream stale.",
)
def training_data(
    context: AssetExecutionContext, config: DatasetConfig, mlgov: MlgovResource, training_lock: TrainingLock
) -> Output[pd.DataFrame]:
    # training_lock: held from run start to run end (resources live for the whole run)
    return _load(context, mlgov, config.path, "training")


@asset(
    group_name="data",
    deps=[adult_holdout_file],
    code_version=CODE_VERSIONS["data"],
    kinds={"dvc", "pandas"},
    owners=["team:ml-platform"],
    description="The canonical holdout (`adult.test`), DVC-versioned like the training data.",
)
def holdout_data(context: AssetExecutionContext, mlgov: MlgovResource) -> Output[pd.DataFrame]:
    return _load(context, mlgov, HOLDOUT_FILE, "holdout")


def _raw_check(df: pd.DataFrame):
    from mlgov_assets.core.data.schemas import RawAdultSchema, validate

    return schema_check_result(validate(df, RawAdultSchema, source=df.attrs.get("source", "<unknown>")))


@asset_check(
    asset=training_data,
    blocking=True,
    description="Pandera RawAdultSchema: types, ranges (age 17-90, ...), adult.names categories, "
    "`?` only where Adult uses it, label set. Failing rows never reach training.",
)
def check_training_data_schema(context: AssetCheckExecutionContext, training_data: pd.DataFrame):
    return _raw_check(training_data)


@asset_check(asset=holdout_data, blocking=True, description="Pandera RawAdultSchema on the holdout.")
def check_holdout_data_schema(context: AssetCheckExecutionContext, holdout_data: pd.DataFrame):
    return _raw_check(holdout_data)


SOURCE_KEYS = [AssetKey("adult_training_file"), AssetKey("adult_holdout_file")]
