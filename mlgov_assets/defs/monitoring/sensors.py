"""The per-batch jobs and the two sensors: landed files -> partitions and runs; a breach -> one
governed retraining run. Here, not in core, is where a retraining request becomes a run config."""

import json
import time
from typing import TYPE_CHECKING, Any

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    Definitions,
    JobDefinition,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from ...resources import MlgovResource
from ..scope import ProjectScope
from .batch_job import batch_jobs
from .shared import (
    LANDING_SENSOR,
    LANDING_SETTLE_SECONDS,
    PARTITION_TAG,
    RETRAIN_SENSOR,
    RUN_KEY_TAG,
    SENSOR_INTERVAL_SECONDS,
    VERDICT_WAIT_SECONDS,
)

if TYPE_CHECKING:
    from mlgov_assets.core.monitoring.landing import LandingFile
    from mlgov_assets.core.monitoring.retraining import RetrainRequest

#: The job a retraining request runs (per project), and the ops its config addresses.
RETRAIN_JOB = "governed_training"
#: A batch run in these states may record a drift verdict during a retraining tick.
IN_FLIGHT = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
#: How often a retraining tick waiting for a verdict reads the ledger again.
VERDICT_POLL_SECONDS = 0.2


def retrain_run_config(request: "RetrainRequest") -> dict[str, Any]:
    """The governed_training run config of a request: the new dataset, and the champion's own
    hyperparameters (retraining changes the data, not the recipe)."""
    ops: dict[str, Any] = {"training_data": {"config": {"path": request.dataset}}}
    if request.params:
        ops["challenger_model"] = {"config": dict(request.params)}
    return {"ops": ops}


def retrain_run_tags(request: "RetrainRequest") -> dict[str, str]:
    return {
        "mlgov/trigger": request.trigger,
        "mlgov/retrain_key": request.run_key,
        "mlgov/retrain_batches": ",".join(request.trigger_batch_ids)[:200],
        "mlgov/retrain_champion": str(request.champion_version),
    }


def run_exists(instance: DagsterInstance, run_key: str) -> bool:
    return bool(instance.get_runs(filters=RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1))


def _landing_request(scope: ProjectScope, f: "LandingFile") -> RunRequest:
    batch = f.kind == "batch"
    return RunRequest(
        run_key=f.run_key,
        job_name=scope.named("monitor_batch" if batch else "batch_labels"),
        partition_key=f.batch_id,
        tags={"mlgov/trigger": LANDING_SENSOR, "mlgov/batch_file" if batch else "mlgov/labels_file": f.name},
    )


def landing_sensor(scope: ProjectScope, monitor: JobDefinition, labels: JobDefinition) -> SensorDefinition:
    @sensor(
        name=scope.named(LANDING_SENSOR),
        jobs=[monitor, labels],
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description="Scans the project's landing folder: each new batch file (CSV/Parquet, allow-listed id) becomes "
        "a `batches` partition and a monitor_batch run; `<batch_id>.labels.csv` arriving later runs batch_labels. "
        "Same file again -> nothing (cursor + run key).",
    )
    def scan_landing(context: SensorEvaluationContext, mlgov: MlgovResource) -> SensorResult:
        from mlgov_assets.core.monitoring.labels import labels_file_judged
        from mlgov_assets.core.monitoring.landing import plan_landing, settle_delay
        from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringPaths

        s = mlgov.for_project(scope.name).settings()
        # a file that landed moments ago is waited for here, until it has settled, rather than left
        # for the next daemon loop (5 s later); the scan then applies the settle rule as before
        time.sleep(settle_delay(s.landing_dir, LANDING_SETTLE_SECONDS))
        seen = json.loads(context.cursor) if context.cursor else {}
        plan = plan_landing(
            s.landing_dir, BatchLedger(MonitoringPaths.of(s)), seen, settle_seconds=LANDING_SETTLE_SECONDS
        )
        for name, why in plan.refused:
            context.log.warning(f"landing folder: {name} refused: {why}")
        for name, why in plan.waiting:
            context.log.info(f"landing folder: {name} waits: {why}")
        ledger = BatchLedger(MonitoringPaths.of(s))
        # a labels file already refused or held is not run again as if new (its decision is in the ledger)
        new_labels = [f for f in plan.new_labels if not labels_file_judged(ledger, f.batch_id, f.md5)]
        requests = [_landing_request(scope, f) for f in plan.new_batches + new_labels]
        partitions = scope.batches
        new_ids = sorted(
            {
                f.batch_id
                for f in plan.new_batches
                if not context.instance.has_dynamic_partition(scope.named("batches"), f.batch_id)
            }
        )
        cursor = plan.cursor()
        if not requests:
            return SensorResult(skip_reason=f"no new batch or labels file in {s.landing_dir}", cursor=cursor)
        return SensorResult(
            run_requests=requests,
            cursor=cursor,
            dynamic_partitions_requests=[partitions.build_add_request(new_ids)] if new_ids else [],
        )

    return scan_landing


def retrain_sensor(scope: ProjectScope) -> SensorDefinition:
    @sensor(
        name=scope.named(RETRAIN_SENSOR),
        job_name=scope.named(RETRAIN_JOB),
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description="Turns a drift or performance breach (policy monitoring.retrain_on) into one governed_training "
        "run on a new DVC-versioned dataset (reference + labelled batches), with the champion's "
        "hyperparameters. The run key comes from the evidence: ticks and daemon restarts launch it once.",
    )
    def retrain_on_breach(context: SensorEvaluationContext, mlgov: MlgovResource) -> SensorResult:
        mlgov = mlgov.for_project(scope.name)
        await_batch_verdicts(context.instance, scope, mlgov, time.monotonic() + VERDICT_WAIT_SECONDS)
        return _retrain_tick(context, mlgov)

    return retrain_on_breach


def await_batch_verdicts(
    instance: DagsterInstance, scope: ProjectScope, mlgov: MlgovResource, deadline: float
) -> list[str]:
    """Wait, until ``deadline`` (``time.monotonic``) at most, until a batch whose monitor_batch run is in
    flight has every verdict the policy's ``retrain_on`` acts on (its drift verdict, and its
    performance verdict when it has labels: :func:`verdicts_pending`), or a breach; at once if one has
    them already. A breach is then acted on as soon as its run records it rather than on the next
    daemon loop. Returns the batches in flight still pending (a later tick sees theirs)."""
    from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringPaths
    from mlgov_assets.core.monitoring.retrain_plan import verdicts_pending

    runs = instance.get_runs(filters=RunsFilter(job_name=scope.named("monitor_batch"), statuses=IN_FLIGHT))
    ledger = BatchLedger(MonitoringPaths.of(mlgov.settings()))
    retrain_on = mlgov.policy().monitoring.retrain_on
    in_flight = sorted({r.tags[PARTITION_TAG] for r in runs if PARTITION_TAG in r.tags})
    while True:
        pending = [b for b in in_flight if verdicts_pending(ledger.get(b), retrain_on)]
        if not pending or len(pending) < len(in_flight) or time.monotonic() >= deadline:
            return pending
        time.sleep(VERDICT_POLL_SECONDS)


def sensor_defs(scope: ProjectScope) -> Definitions:
    """The project's batch jobs and its two monitoring sensors."""
    monitor, labels = batch_jobs(scope)
    return Definitions(jobs=[monitor, labels], sensors=[landing_sensor(scope, monitor, labels), retrain_sensor(scope)])


def _retrain_tick(context: SensorEvaluationContext, mlgov: MlgovResource) -> SensorResult:
    from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringPaths
    from mlgov_assets.core.monitoring.retrain_plan import breach_reasons
    from mlgov_assets.core.monitoring.retraining import (
        read_retrain_requests,
        request_retraining,
        unlaunched_requests,
        unrequested_breaches,
    )

    s, policy = mlgov.settings(), mlgov.policy()
    paths = MonitoringPaths.of(s)
    entries = BatchLedger(paths).entries()
    if not any(breach_reasons(e, policy.monitoring.retrain_on) for e in entries):
        return SensorResult(skip_reason="no drift or performance breach recorded", cursor=context.cursor)
    emitted = set(json.loads(context.cursor)) if context.cursor else set()
    recorded = read_retrain_requests(paths)
    # the common tick: every breach already has its request, every request its run (no MLflow, no dataset)
    emitted |= {r.run_key for r in recorded if r.run_key not in emitted and run_exists(context.instance, r.run_key)}
    if not unrequested_breaches(entries, recorded, policy.monitoring.retrain_on) and all(
        r.run_key in emitted for r in recorded
    ):
        cursor = json.dumps(sorted(emitted)[-500:])
        return SensorResult(skip_reason="every breach already has a retraining request and its run", cursor=cursor)
    registry = mlgov.registry()
    pending = unlaunched_requests(
        recorded,
        registry.champion_version(),
        lambda key: run_exists(context.instance, key),
        skip=emitted,
    )
    decision, new = request_retraining(
        s,
        mlgov.project(),
        policy,
        registry,
        has_run=lambda key: key in emitted or run_exists(context.instance, key),
        trigger=RETRAIN_SENSOR,
        log=context.log,
    )
    records = pending + ([new] if new else [])
    requests = [
        RunRequest(run_key=r.run_key, run_config=retrain_run_config(r), tags=retrain_run_tags(r)) for r in records
    ]
    cursor = json.dumps(sorted(emitted | {r.run_key for r in records})[-500:])
    if not requests:
        return SensorResult(skip_reason=decision.message, cursor=cursor)
    context.log.warning(f"retraining requested: {[r.run_key for r in records]} ({decision.message})")
    return SensorResult(run_requests=requests, cursor=cursor)
