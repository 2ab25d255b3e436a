"""Stage 1 — data: the Adult files as DVC-versioned datasets, with blocking schema gates."""

import json
from typing import Literal

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    Config,
    DataVersion,
    DefaultSensorStatus,
    Definitions,
    Output,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset,
    asset_check,
    observable_source_asset,
    sensor,
)

from mlgov_assets.core.data.lineage import LineagedFrame
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


def _load(
    context: AssetExecutionContext, mlgov: MlgovResource, path: str, role: Literal["training", "holdout"]
) -> Output[LineagedFrame]:
    from mlgov_assets.core.data.datasets import ensure_tracked
    from mlgov_assets.core.models.recipe import read_tracked

    s = mlgov.settings()
    tracked = ensure_tracked(s.project_dir, path, site_cache=s.dvc_site_cache)
    data = read_tracked(tracked, project_dir=s.project_dir, role=role)
    rel = data.lineage.source
    context.log.info(
        f"{rel}: {len(data.frame)} rows, DVC md5 {tracked.md5}{' (newly added to DVC)' if tracked.added_now else ''}"
    )
    return Output(
        data,
        data_version=DataVersion(tracked.md5),
        metadata={
            **table_metadata(data.frame),
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
) -> Output[LineagedFrame]:
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
def holdout_data(context: AssetExecutionContext, mlgov: MlgovResource) -> Output[LineagedFrame]:
    return _load(context, mlgov, HOLDOUT_FILE, "holdout")


def _raw_check(data: LineagedFrame) -> AssetCheckResult:
    from mlgov_assets.core.models.recipe import validate_raw

    return schema_check_result(validate_raw(data))


@asset_check(
    asset=training_data,
    blocking=True,
    description="Pandera RawAdultSchema: types, ranges (age 17-90, ...), adult.names categories, "
    "`?` only where Adult uses it, label set. Failing rows never reach training.",
)
def check_training_data_schema(context: AssetCheckExecutionContext, training_data: LineagedFrame) -> AssetCheckResult:
    return _raw_check(training_data)


@asset_check(asset=holdout_data, blocking=True, description="Pandera RawAdultSchema on the holdout.")
def check_holdout_data_schema(context: AssetCheckExecutionContext, holdout_data: LineagedFrame) -> AssetCheckResult:
    return _raw_check(holdout_data)


SOURCE_KEYS = [AssetKey("adult_training_file"), AssetKey("adult_holdout_file")]


DATA_VERSION_TAG = "dagster/data_version"


@sensor(
    name="source_files_sensor",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Hashes data/adult.data and data/adult.test (md5, as DVC does) and records an observation "
    "when the bytes change, so the UI marks every downstream asset stale.",
)
def source_files_sensor(context: SensorEvaluationContext, mlgov: MlgovResource) -> SensorResult | SkipReason:
    project = mlgov.settings().project_dir
    seen = json.loads(context.cursor) if context.cursor else {}
    current = {
        key: md5_file(project / rel)
        for key, rel in (("adult_training_file", TRAIN_FILE), ("adult_holdout_file", HOLDOUT_FILE))
        if (project / rel).exists()
    }
    changed = {k: v for k, v in current.items() if seen.get(k) != v}
    if not changed:
        return SkipReason("source files unchanged")
    return SensorResult(
        asset_events=[
            AssetObservation(AssetKey(k), tags={DATA_VERSION_TAG: v}, metadata={"md5": v}) for k, v in changed.items()
        ],
        cursor=json.dumps(current),
    )


defs = Definitions(
    assets=[adult_training_file, adult_holdout_file, training_data, holdout_data],
    asset_checks=[check_training_data_schema, check_holdout_data_schema],
    sensors=[source_files_sensor],
)
