"""Sensors that keep the graph honest about its inputs."""

import json

from dagster import (
    AssetKey,
    AssetObservation,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from mlgov_assets.core.integrity import md5_file

from .defs.data import HOLDOUT_FILE, TRAIN_FILE
from .resources import MlgovResource

DATA_VERSION_TAG = "dagster/data_version"


@sensor(
    name="source_files_sensor",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Hashes data/adult.data and data/adult.test (md5, as DVC does) and records an observation "
    "when the bytes change, so the UI marks every downstream asset stale.",
)
def source_files_sensor(context: SensorEvaluationContext, mlgov: MlgovResource):
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
