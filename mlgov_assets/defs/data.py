"""Stage 1 — data: the project's files as DVC-versioned datasets, with blocking schema gates.

Which files, how they are read and what a valid row is all come from the project spec
(``mlgov.project()``); when the spec's holdout is a ``Split``, both data assets cut the training
file with the recorded seeded split and the holdout's source asset observes the training file.
"""

import json
from typing import TYPE_CHECKING, Any, Literal

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
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    SourceAsset,
    asset,
    asset_check,
    observable_source_asset,
    sensor,
)

from mlgov_assets.core.data.lineage import LineagedFrame
from mlgov_assets.core.integrity import md5_file

from ..resources import MlgovResource, TrainingLock
from .common import CODE_VERSIONS, json_md, schema_check_result, table_metadata
from .scope import ProjectScope, scoped

if TYPE_CHECKING:
    from mlgov_assets.core.project.project import Project


#: The source assets (per project: ``<project>/training_file``, ``<project>/holdout_file``).
TRAINING_FILE, HOLDOUT_FILE = "training_file", "holdout_file"
SOURCE_NAMES = (TRAINING_FILE, HOLDOUT_FILE)


def observed_files(project: "Project") -> dict[str, str]:
    """The source asset -> the file it observes (the training file twice when the holdout is a split)."""
    return {
        TRAINING_FILE: project.train_file,
        HOLDOUT_FILE: project.holdout_file or project.train_file,
    }


def source_assets(scope: ProjectScope) -> list[SourceAsset]:
    """The project's observed source files: data version = md5 of their bytes (DVC's md5)."""

    def observer(name: str, description: str) -> SourceAsset:
        @observable_source_asset(key=scope.key(name), group_name=scope.named("data"), description=description)
        def observe(mlgov: MlgovResource) -> DataVersion:
            project = mlgov.for_project(scope.name).project()
            return DataVersion(md5_file(project.repo / observed_files(project)[name]))

        return observe

    return [
        observer(
            TRAINING_FILE,
            "The project's raw training file (the spec's `data.train`; the Adult demo ships UCI Adult, CC BY 4.0). "
            "Observed data version = md5 of its bytes (DVC's md5).",
        ),
        observer(
            HOLDOUT_FILE,
            "The project's holdout file (the spec's `data.holdout`), or the training file when the holdout is a "
            "seeded split of it. Observed data version = md5 of its bytes.",
        ),
    ]


class DatasetConfig(Config):
    path: str | None = None
    """Dataset file inside the project's DVC repo (default: the spec's training file); retraining
    points this at a new dataset."""


def _requested_dataset(context: AssetExecutionContext, mlgov: MlgovResource, path: str) -> dict[str, Any]:
    """A retraining request's training set is built here, in its run, before it is read (the sensor
    only decides and records the request); its manifest goes into this step's metadata, next to
    the DVC md5, so the run shows which data the retrained model was trained on and what it is made of."""
    from mlgov_assets.core.data.datasets import is_generated
    from mlgov_assets.core.monitoring.retraining import prepare_requested_dataset

    if not is_generated(path):
        return {}
    built = prepare_requested_dataset(mlgov.settings(), mlgov.project(), path, log=context.log)
    if built is None:
        return {}
    context.log.info(
        f"{path}: retraining dataset of {built.run_key}: {built.reference.rows} reference rows + "
        f"{sum(built.batches.values())} labelled batch rows {built.batches}, DVC md5 {built.md5}"
        f"{' (built and added to DVC now)' if built.added_to_dvc_now else ''}"
    )
    manifest = built.model_dump(mode="json", exclude={"md5", "dvc_file", "added_to_dvc_now"})
    return {"retrain_run_key": built.run_key, "retrain_manifest": json_md(manifest)}


def _load(
    context: AssetExecutionContext,
    mlgov: MlgovResource,
    path: str,
    role: Literal["training", "holdout"],
    extra: dict[str, Any] | None = None,
) -> Output[LineagedFrame]:
    from mlgov_assets.core.data.datasets import ensure_dataset
    from mlgov_assets.core.models.recipe import read_tracked, split_tracked

    s = mlgov.settings()
    project = mlgov.project()
    tracked = ensure_dataset(s, path)
    if project.holdout_file is None and path == project.train_file:
        train, holdout = split_tracked(project, tracked, project_dir=s.project_dir)
        data = train if role == "training" else holdout
    elif project.holdout_file is None:  # another dataset (a retraining's): all of it is training data
        data = read_tracked(project, tracked, project_dir=s.project_dir, role=role)
    else:
        data = read_tracked(project, tracked, project_dir=s.project_dir, role=role)
    rel = data.lineage.source
    split = data.lineage.split
    context.log.info(
        f"{rel}{f' ({role} part of a seeded split)' if split else ''}: {len(data.frame)} rows, "
        f"DVC md5 {tracked.md5}{' (newly added to DVC)' if tracked.added_now else ''}"
    )
    meta = {
        **table_metadata(data.frame),
        "path": rel,
        "dvc_md5": tracked.md5,
        "bytes": tracked.size,
        "dvc_file": tracked.shown_dvc_file(s.project_dir),
        "dvc_cache_object": str(tracked.cache_object),
        "project": project.name,
        "project_sha256": project.sha256,
        **(extra or {}),
    }
    if split is not None:
        meta["split"] = json_md(split.model_dump(mode="json"))
    return Output(data, data_version=DataVersion(tracked.md5), metadata=meta)


@asset(
    group_name="data",
    deps=[AssetKey(TRAINING_FILE)],
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
    mlgov = scoped(mlgov, context)
    path = config.path or mlgov.project().train_file
    return _load(context, mlgov, path, "training", _requested_dataset(context, mlgov, path))


@asset(
    group_name="data",
    deps=[AssetKey(HOLDOUT_FILE)],
    code_version=CODE_VERSIONS["data"],
    kinds={"dvc", "pandas"},
    owners=["team:ml-platform"],
    description="The holdout (the spec's holdout file, e.g. the demo's `adult.test`, or the seeded split "
    "of the training file), DVC-versioned like the training data.",
)
def holdout_data(context: AssetExecutionContext, mlgov: MlgovResource) -> Output[LineagedFrame]:
    mlgov = scoped(mlgov, context)
    project = mlgov.project()
    return _load(context, mlgov, project.holdout_file or project.train_file, "holdout")


def _raw_check(mlgov: MlgovResource, data: LineagedFrame) -> AssetCheckResult:
    from mlgov_assets.core.models.recipe import validate_raw

    return schema_check_result(validate_raw(mlgov.project(), data))


@asset_check(
    asset=training_data,
    blocking=True,
    description="Pandera raw schema generated from the project spec: types, ranges, listed categories, "
    "missing tokens only where the spec allows them, label set. Failing rows never reach training.",
)
def check_training_data_schema(
    context: AssetCheckExecutionContext, mlgov: MlgovResource, training_data: LineagedFrame
) -> AssetCheckResult:
    return _raw_check(scoped(mlgov, context), training_data)


@asset_check(asset=holdout_data, blocking=True, description="The project's raw schema on the holdout.")
def check_holdout_data_schema(
    context: AssetCheckExecutionContext, mlgov: MlgovResource, holdout_data: LineagedFrame
) -> AssetCheckResult:
    return _raw_check(scoped(mlgov, context), holdout_data)


DATA_VERSION_TAG = "dagster/data_version"


def source_files_sensor(scope: ProjectScope) -> SensorDefinition:
    @sensor(
        name=scope.named("source_files_sensor"),
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="Hashes the project's training and holdout files (md5, as DVC does) and records an "
        "observation when the bytes change, so the UI marks every downstream asset stale.",
    )
    def observe_sources(context: SensorEvaluationContext, mlgov: MlgovResource) -> SensorResult | SkipReason:
        project = mlgov.for_project(scope.name).project()
        seen = json.loads(context.cursor) if context.cursor else {}
        current = {
            key: md5_file(project.repo / rel)
            for key, rel in observed_files(project).items()
            if (project.repo / rel).exists()
        }
        changed = {k: v for k, v in current.items() if seen.get(k) != v}
        if not changed:
            return SkipReason("source files unchanged")
        return SensorResult(
            asset_events=[
                AssetObservation(scope.key(k), tags={DATA_VERSION_TAG: v}, metadata={"md5": v})
                for k, v in changed.items()
            ],
            cursor=json.dumps(current),
        )

    return observe_sources


def project_defs(scope: ProjectScope) -> Definitions:
    """The stage's per-project pieces: the observed source files and their sensor."""
    return Definitions(assets=source_assets(scope), sensors=[source_files_sensor(scope)])


defs = Definitions(
    assets=[training_data, holdout_data],
    asset_checks=[check_training_data_schema, check_holdout_data_schema],
)
