"""OpenLineage emission: every finished Dagster run of the code location, as OpenLineage run events.

The hook is thin and generic, so it covers every materialization of every project (keys are
prefixed per project) without touching an asset: when a run ends, its steps, materializations and
check evaluations are read back from the instance's event log (:func:`read_run_view`, plain data)
and the pure core (``core/audit/openlineage``) builds the events, which go to the configured
transport. Two callers see runs end:

- the location's run-status sensors (``openlineage_after_*``): runs launched by the UI, the daemon's
  sensors and schedules;
- the CLI, right after a run it executed in its own process (``cli.run_job``, ``mlgov monitor --once``).

A run is emitted once (``transport.claim_run``), whoever sees it first. Emission never fails a run
or a command: a failing transport is logged and reported (:func:`emit_run` returns the report).
Nothing here imports ``openlineage`` at module level: loading the code location never does.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    Definitions,
    EventLogRecord,
    RunStatusSensorContext,
    SkipReason,
    run_status_sensor,
)

if TYPE_CHECKING:
    from mlgov_assets.core.audit.lineage.facts import CheckEvaluation, Materialization
    from mlgov_assets.core.audit.openlineage.events import RunView, StepView
    from mlgov_assets.core.audit.openlineage.transport import EmitReport
    from mlgov_assets.core.settings import Settings

log = logging.getLogger("mlgov.openlineage")
POINTER = "dagster/input_event_pointer/"
#: Materialization metadata an event may carry: identifiers, hashes, counts (never data values).
METADATA_KEYS = (
    "dagster/row_count",
    "path",
    "dvc_md5",
    "md5",
    "model_version",
    "model_uri",
    "mlflow_run_id",
    "train_data_md5",
    "policy_sha256",
    "champion_version",
)
_TYPES = {
    DagsterEventType.STEP_START,
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    DagsterEventType.ASSET_CHECK_EVALUATION,
    DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
}


def _value(v: Any) -> Any:
    return getattr(v, "value", v)


def _split(path: list[str]) -> tuple[str | None, str]:
    """(project, asset name) of an asset key (``adult/training_data``; unprefixed: no project)."""
    return (path[0], "/".join(path[1:])) if len(path) > 1 else (None, path[0])


def _materialization(rec: EventLogRecord) -> Materialization:
    from mlgov_assets.core.audit.lineage.facts import Materialization

    mat = rec.asset_materialization
    assert mat is not None
    meta = {k: _value(v) for k, v in (mat.metadata or {}).items()}
    tags = dict(mat.tags or {})
    schema = meta.get("dagster/column_schema")
    return Materialization(
        asset=_split(list(mat.asset_key.path))[1],
        role="output",
        storage_id=rec.storage_id,
        run_id=rec.run_id,
        timestamp=rec.timestamp,
        data_version=tags.get("dagster/data_version"),
        code_version=tags.get("dagster/code_version"),
        sha256=meta.get("mlgov/sha256") if isinstance(meta.get("mlgov/sha256"), str) else None,
        metadata={
            k.split("/")[-1]: v
            for k, v in meta.items()
            if k in METADATA_KEYS and isinstance(v, (str, int, float, bool))
        },
        columns=[{"name": c.name, "dtype": c.type} for c in getattr(schema, "columns", None) or []],
        inputs={k[len(POINTER) :]: int(v) for k, v in tags.items() if k.startswith(POINTER) and str(v).isdigit()},
    )


def _evaluation(rec: EventLogRecord) -> CheckEvaluation | None:
    from mlgov_assets.core.audit.lineage.facts import CheckEvaluation

    ev = rec.event_log_entry.asset_check_evaluation
    if ev is None:
        return None
    meta = {k: _value(v) for k, v in (ev.metadata or {}).items()}
    found = meta.get("evidence")
    gate = found.get("gate") if isinstance(found, dict) else None
    return CheckEvaluation(
        asset=_split(list(ev.asset_key.path))[1],
        check=ev.check_name,
        passed=bool(ev.passed),
        severity=ev.severity.value,
        blocking=bool(ev.blocking),
        role="output",
        gate=gate if isinstance(gate, str) else None,
        run_id=rec.run_id,
        target_storage_id=ev.target_materialization_data.storage_id if ev.target_materialization_data else None,
        description=ev.description,
        metadata={
            k: v for k, v in meta.items() if k in ("policy_sha256", "model_version") and isinstance(v, (str, int))
        },
    )


def _error(rec: EventLogRecord) -> str:
    ev = rec.event_log_entry.dagster_event
    data = ev.step_failure_data if ev is not None else None
    if data is None:
        return "step failed"
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    err = data.error
    while err is not None and err.cause is not None:  # the user's error, not Dagster's wrapper
        err = err.cause
    if err is None:
        return "step failed"
    message = err.message.strip()
    name = err.cls_name or "Error"
    return message if name in message.split(":", 1)[0] else f"{name}: {message}"


def read_run_view(instance: DagsterInstance, run_id: str) -> RunView | None:
    """A finished run's steps as plain data for ``core.audit.openlineage.events`` (None: no such run)."""
    import dagster

    from mlgov_assets.core.audit.lineage.facts import DagsterRun
    from mlgov_assets.core.audit.openlineage.events import RunView, StepView

    record = instance.get_run_record_by_id(run_id)
    if record is None:
        return None
    steps: dict[str, dict[str, Any]] = {}

    def step(key: str | None) -> dict[str, Any]:
        return steps.setdefault(
            key or "run", {"step_key": key or "run", "assets": [], "checks": [], "status": "skipped", "project": None}
        )

    materializations: dict[str, list[Materialization]] = {}
    evaluations: dict[str, list[CheckEvaluation]] = {}
    for rec in instance.get_records_for_run(run_id, of_type=_TYPES).records:
        ev = rec.event_log_entry.dagster_event
        if ev is None:
            continue
        s, kind = step(ev.step_key), ev.event_type
        if kind == DagsterEventType.STEP_START:
            s["start_time"] = rec.timestamp
            s["status"] = "incomplete" if s["status"] == "skipped" else s["status"]
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            s["end_time"] = rec.timestamp
            s["status"] = "success" if kind == DagsterEventType.STEP_SUCCESS else "failure"
            if kind == DagsterEventType.STEP_FAILURE:
                s["error"] = _error(rec)
        elif kind == DagsterEventType.ASSET_MATERIALIZATION_PLANNED and ev.asset_key is not None:
            s["project"], name = _split(list(ev.asset_key.path))
            s["assets"].append(name)
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
            planned = ev.event_specific_data
            key = getattr(planned, "asset_key", None)
            if key is not None:
                s["project"], name = _split(list(key.path))
                s["checks"].append(f"{name}.{getattr(planned, 'check_name', '?')}")
        elif kind == DagsterEventType.ASSET_MATERIALIZATION:
            if ev.asset_key is not None and s["project"] is None:
                s["project"] = _split(list(ev.asset_key.path))[0]
            materializations.setdefault(s["step_key"], []).append(_materialization(rec))
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            found = _evaluation(rec)
            if found is not None:
                evaluations.setdefault(s["step_key"], []).append(found)
    views: list[StepView] = [
        StepView(
            **s,
            materializations=materializations.get(s["step_key"], []),
            evaluations=evaluations.get(s["step_key"], []),
        )
        for s in steps.values()
        if s["step_key"] != "run"
    ]
    run = record.dagster_run
    return RunView(
        run=DagsterRun(
            run_id=run.run_id,
            job_name=run.job_name,
            status=run.status.value,
            start_time=record.start_time,
            end_time=record.end_time,
        ),
        steps=views,
        engine=dagster.__version__,
    )


def emit_run(instance: DagsterInstance, run_id: str, settings: Settings | None = None) -> EmitReport | None:
    """Emit a finished run's events (once per run; None if emission is off, already done or the run
    unknown). Never raises: a failure is logged and returned in the report."""
    from mlgov_assets.core.settings import get_settings

    try:
        from mlgov_assets.core.audit.openlineage.events import EventContext, run_events
        from mlgov_assets.core.audit.openlineage.transport import EmitReport, OpenLineageConfig, claim_run, emit

        cfg = OpenLineageConfig.from_env(settings or get_settings())
        if not cfg.enabled:
            return None
        view = read_run_view(instance, run_id)
        if view is None or not claim_run(cfg, run_id):
            return None
        return emit(run_events(EventContext(cfg.namespace), view), cfg)
    except Exception as exc:  # never let lineage export fail what it describes
        log.warning("OpenLineage: events of run %s not emitted: %s: %s", run_id, type(exc).__name__, exc)
        return EmitReport(events=0, errors=[f"{type(exc).__name__}: {exc}"])


def _after(context: RunStatusSensorContext) -> SkipReason:
    report = emit_run(context.instance, context.dagster_run.run_id)
    run = f"run {context.dagster_run.run_id[:8]} of {context.dagster_run.job_name}"
    if report is None:
        return SkipReason(f"{run}: OpenLineage off or already emitted")
    if report.errors:
        context.log.warning(f"{run}: OpenLineage emission failed: {'; '.join(report.errors)}")
    return SkipReason(f"{run}: {report.written} OpenLineage event(s) written, {report.sent} sent")


def location_defs() -> Definitions:
    """The location-wide sensors: one per terminal run status, for every project's runs."""
    sensors = []
    for status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):

        @run_status_sensor(
            run_status=status,
            name=f"openlineage_after_{status.value.lower()}",
            default_status=DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=10,
            description=f"After any run of this code location ends ({status.value}): emit its OpenLineage "
            "events (START/COMPLETE/FAIL per step, with DVC md5s, model URIs, policy hash and gate verdicts) "
            "to $MLGOV_HOME/openlineage/events.jsonl and MLGOV_OPENLINEAGE_URL if set.",
        )
        def after(context: RunStatusSensorContext) -> SkipReason:
            return _after(context)

        sensors.append(after)
    return Definitions(sensors=sensors)
