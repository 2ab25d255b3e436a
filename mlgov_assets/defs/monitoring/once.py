"""One sensor tick without a daemon, the way the daemon does it: evaluate the real sensor definition
with its stored cursor, store the new cursor where the daemon keeps it (the instance's instigator
state, keyed by code location, repository and sensor name), apply its dynamic-partition requests and
run its RunRequests in this process, skipping run keys already launched. ``mlgov monitor --once``
uses it, so the daemon path and the one-shot path evaluate the same code."""

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import (
    AddDynamicPartitionsRequest,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    RunRequest,
    SensorDefinition,
    build_sensor_context,
)

from .sensors import run_exists
from .shared import RUN_KEY_TAG, SENSOR_NAME_TAG

DEFINITIONS_MODULE = "mlgov_assets.definitions"


@dataclass(frozen=True)
class Tick:
    """What one sensor evaluation asked for."""

    sensor_name: str
    job_name: str | None  # the sensor's single target, for requests that name none
    skip_message: str | None
    cursor: str | None
    requests: list[RunRequest] = field(default_factory=list)  # to launch
    already_launched: list[str] = field(default_factory=list)  # run keys the instance already has


def code_location_name(project_dir: Path) -> str:
    """The location name the daemon knows this code by: the ``workspace.yaml`` that ``mlgov ui`` serves
    (the project's, else the one shipped with mlgov); Dagster's default (the module name) otherwise."""
    import yaml

    from mlgov_assets.core.settings import DEFAULT_PROJECT_DIR

    for workspace in (project_dir / "workspace.yaml", DEFAULT_PROJECT_DIR / "workspace.yaml"):
        if not workspace.exists():
            continue
        for entry in (yaml.safe_load(workspace.read_text(encoding="utf-8")) or {}).get("load_from", []):
            module = entry.get("python_module") or {}
            if module.get("module_name") == DEFINITIONS_MODULE and module.get("location_name"):
                return str(module["location_name"])
    return DEFINITIONS_MODULE


def _origin(location_name: str, repository_name: str, sensor_name: str, project_dir: Path) -> Any:
    from dagster._core.remote_origin import (
        ManagedGrpcPythonEnvCodeLocationOrigin,
        RemoteInstigatorOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    target = LoadableTargetOrigin(
        executable_path=sys.executable, module_name=DEFINITIONS_MODULE, working_directory=str(project_dir)
    )
    code = ManagedGrpcPythonEnvCodeLocationOrigin(target, location_name=location_name)
    return RemoteInstigatorOrigin(RemoteRepositoryOrigin(code, repository_name), sensor_name)


class CursorStore:
    """A sensor's cursor in the instance, where the daemon reads and writes it."""

    def __init__(self, instance: DagsterInstance, origin: Any, sensor: SensorDefinition):
        self.instance, self.origin, self.sensor = instance, origin, sensor

    def _state(self) -> Any:
        return self.instance.get_instigator_state(self.origin.get_id(), self.origin.get_selector().get_id())

    def load(self) -> str | None:
        state = self._state()
        return getattr(state.instigator_data, "cursor", None) if state is not None else None

    def save(self, cursor: str | None) -> None:
        from dagster._core.scheduler.instigation import (
            InstigatorState,
            InstigatorStatus,
            InstigatorType,
            SensorInstigatorData,
        )

        state = self._state()
        if state is None or state.instigator_data is None:
            data = SensorInstigatorData(
                min_interval=self.sensor.minimum_interval_seconds, cursor=cursor, sensor_type=self.sensor.sensor_type
            )
            status = InstigatorStatus.DECLARED_IN_CODE
            self.instance.add_instigator_state(InstigatorState(self.origin, InstigatorType.SENSOR, status, data))
        else:
            self.instance.update_instigator_state(state.with_data(state.instigator_data._replace(cursor=cursor)))


def _apply_partitions(instance: DagsterInstance, requests: Any) -> None:
    for req in requests or []:
        if isinstance(req, AddDynamicPartitionsRequest):
            new = [k for k in req.partition_keys if not instance.has_dynamic_partition(req.partitions_def_name, k)]
            if new:
                instance.add_dynamic_partitions(req.partitions_def_name, new)


def evaluate_once(defs: Definitions, instance: DagsterInstance, sensor_name: str, *, project_dir: Path) -> Tick:
    """Evaluate ``sensor_name`` once as the daemon would: stored cursor in, new cursor stored, dynamic
    partitions added. The run requests whose run key was never launched are returned, to :func:`launch`."""
    repo = defs.get_repository_def()
    sensor = repo.get_sensor_def(sensor_name)
    store = CursorStore(instance, _origin(code_location_name(project_dir), repo.name, sensor_name, project_dir), sensor)
    resources = repo.get_top_level_resources()  # what the daemon binds to the sensor's parameters
    with build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),  # as the daemon's: partitions this tick adds count for its run requests
        cursor=store.load(),
        repository_def=repo,
        sensor_name=sensor_name,
        resources=resources,
    ) as context:
        data = sensor.evaluate_tick(context)
    store.save(data.cursor)
    _apply_partitions(instance, data.dynamic_partitions_requests)
    requests = list(data.run_requests or [])
    launched = [r.run_key for r in requests if r.run_key and run_exists(instance, r.run_key)]
    return Tick(
        sensor_name=sensor_name,
        job_name=sensor.targets[0].job_name if len(sensor.targets) == 1 else None,
        skip_message=data.skip_message,
        cursor=data.cursor,
        requests=[r for r in requests if r.run_key not in launched],
        already_launched=launched,
    )


def launch(
    defs: Definitions, instance: DagsterInstance, tick: Tick, request: RunRequest, *, tags: dict[str, str]
) -> ExecuteInProcessResult:
    """Run one of the tick's requests in this process, tagged as the daemon tags it (run key, sensor
    name) plus ``tags`` (e.g. who launched it)."""
    job_name = request.job_name or tick.job_name
    if job_name is None:
        raise ValueError(f"{tick.sensor_name}: a run request names no job and the sensor targets several")
    run_tags = {**request.tags, SENSOR_NAME_TAG: tick.sensor_name, **tags}
    if request.run_key:
        run_tags[RUN_KEY_TAG] = request.run_key
    return defs.resolve_job_def(job_name).execute_in_process(
        run_config=request.run_config,
        instance=instance,
        partition_key=request.partition_key,
        asset_selection=request.asset_selection,
        tags=run_tags,
        raise_on_error=False,
    )
