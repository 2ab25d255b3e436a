"""The per-batch op jobs of a project: ``monitor_batch`` (every batch asset) and ``batch_labels``
(performance only, for delayed labels). Partitioned by the project's batches, launched by the landing
sensor as before.

Each op computes one batch asset (``assets.compute_*``), stores its value where the IO manager keeps
asset values (the same files an asset job would write), and reports an ``AssetMaterialization`` of the
batch's partition and the results of the asset's checks. Ops pass no values: a downstream op loads
what its upstream stored, as the labels job does days later. A blocking check that fails fails its
step, so nothing downstream runs (an invalid batch is never drift-assessed nor scored). The drift
verdict comes right after validation, before scoring: the retraining sensor acts on it meanwhile."""

from collections.abc import Callable, Iterator
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    In,
    JobDefinition,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    PythonObjectDagsterType,
    build_input_context,
    build_output_context,
    job,
    op,
)

from mlgov_assets.core.faults import fault_point
from mlgov_assets.core.monitoring.batch_values import AcceptedBatch, ScoredBatch

from ...io_manager import MlgovIOManager
from ...resources import MlgovResource
from ..scope import ProjectScope
from . import assets as a

#: The data version tag Dagster sets from an asset's DataVersion (batch_data's is its file's md5).
DATA_VERSION_TAG = "dagster/data_version"
#: Stage tag of both jobs (the run list filters on it).
STAGE_TAGS = {"mlgov/stage": "monitoring"}
#: Whether each batch check blocks, as its definition declares (a failing blocking check fails its step).
BLOCKING = {spec.name: bool(spec.blocking) for check in a.BATCH_CHECKS for spec in check.check_specs}

Event = AssetMaterialization | AssetCheckEvaluation | Output[None]


class BatchStore:
    """A project's batch asset values on disk, through the location's IO manager (Parquet/JSON + sha256)."""

    def __init__(self, io: MlgovIOManager, scope: ProjectScope, batch_id: str, instance: DagsterInstance):
        self.io, self.scope, self.batch_id, self.instance = io, scope, batch_id, instance

    def save(self, name: str, value: Any) -> dict[str, Any]:
        """Store ``value`` as ``name``'s partition; the storage metadata (path, sha256)."""
        context = build_output_context(
            asset_key=self.scope.key(name),
            partition_key=self.batch_id,
            asset_partitions_def=self.scope.batches,
            instance=self.instance,
        )
        self.io.handle_output(context, value)
        return dict(context.get_logged_metadata())

    def load(self, name: str, wanted: type) -> Any:
        context = build_input_context(
            asset_key=self.scope.key(name),
            partition_key=self.batch_id,
            asset_partitions_def=self.scope.batches,
            instance=self.instance,
            dagster_type=PythonObjectDagsterType(wanted),
        )
        return self.io.load_input(context)


def _report(scope: ProjectScope, name: str, batch_id: str, produced: a.Produced, stored: dict[str, Any]) -> list[Event]:
    """The materialization of ``name``'s partition and its checks' results."""
    key = scope.key(name)
    tags = {DATA_VERSION_TAG: produced.data_version} if produced.data_version else None
    events: list[Event] = [
        AssetMaterialization(key, partition=batch_id, metadata={**produced.metadata, **stored}, tags=tags)
    ]
    events += [_evaluation(key, check, batch_id, result) for check, result in produced.checks.items()]
    return events


def _evaluation(key: AssetKey, check: str, batch_id: str, result: AssetCheckResult) -> AssetCheckEvaluation:
    return AssetCheckEvaluation(
        asset_key=key,
        check_name=check,
        passed=result.passed,
        metadata=result.metadata,
        severity=result.severity,
        description=result.description,
        blocking=BLOCKING.get(check, False),
        partition=batch_id,
    )


Compute = Callable[[MlgovResource, OpExecutionContext, BatchStore], a.Produced]


def _batch_op(scope: ProjectScope, name: str, compute: Compute, description: str) -> Any:
    """The op that computes, stores and reports asset ``name`` of one batch."""

    @op(
        name=scope.named(name),
        ins={"after": In(Nothing)},
        out=Out(Nothing),
        required_resource_keys={"io_manager", "mlgov"},
        description=description,
        tags=STAGE_TAGS,
    )
    def batch_step(context: OpExecutionContext) -> Iterator[Event]:
        store = BatchStore(context.resources.io_manager, scope, context.partition_key, context.instance)
        mlgov: MlgovResource = context.resources.mlgov
        fault_point(f"monitor.{name}.{context.partition_key}")  # crash tests: one batch's step, mid-way
        produced = compute(mlgov.for_project(scope.name), context, store)
        stored = store.save(name, produced.value)
        yield from _report(scope, name, context.partition_key, produced, stored)
        yield Output(None)

    return batch_step


def _steps(scope: ProjectScope) -> dict[str, Any]:
    def data(m: MlgovResource, c: OpExecutionContext, s: BatchStore) -> a.Produced:
        return a.compute_batch_data(m, s.batch_id, c.log)

    def drift(m: MlgovResource, c: OpExecutionContext, s: BatchStore) -> a.Produced:
        return a.compute_batch_drift(m, s.batch_id, c.log, s.load("batch_data", AcceptedBatch))

    def scores(m: MlgovResource, c: OpExecutionContext, s: BatchStore) -> a.Produced:
        batch, drifted = s.load("batch_data", AcceptedBatch), s.load("batch_drift", dict)
        return a.compute_batch_scores(m, s.batch_id, c.log, batch, drifted)

    def report(m: MlgovResource, c: OpExecutionContext, s: BatchStore) -> a.Produced:
        batch, drifted = s.load("batch_data", AcceptedBatch), s.load("batch_drift", dict)
        return a.compute_batch_drift_report(m, batch, drifted, run_id=c.run_id)

    def performance(m: MlgovResource, c: OpExecutionContext, s: BatchStore) -> a.Produced:
        batch, scored = s.load("batch_data", AcceptedBatch), s.load("batch_scores", ScoredBatch)
        return a.compute_batch_performance(m, c.log, batch, scored)

    computes = {
        "batch_data": data,
        "batch_scores": scores,
        "batch_drift": drift,
        "batch_drift_report": report,
        "batch_performance": performance,
    }
    names = [spec.key.to_user_string() for spec in a.SPECS]
    return {
        name: _batch_op(scope, name, computes[name], spec.description or "")
        for name, spec in zip(names, a.SPECS, strict=True)
    }


def batch_jobs(scope: ProjectScope) -> tuple[JobDefinition, JobDefinition]:
    """The project's per-batch jobs: monitor_batch (everything) and batch_labels (performance only)."""
    steps = _steps(scope)

    @job(
        name=scope.named("monitor_batch"),
        partitions_def=scope.batches,
        description="Everything for one landed batch: validate (quarantine if invalid), data drift verdict, score "
        "(+ shadow, prediction drift), performance, Evidently report.",
        tags=STAGE_TAGS,
    )
    def monitor_batch() -> None:
        # the drift verdict (what the retraining sensor acts on) first, then the expensive scoring
        drifted = steps["batch_drift"](after=steps["batch_data"]())
        scored = steps["batch_scores"](after=drifted)
        steps["batch_performance"](after=scored)
        steps["batch_drift_report"](after=scored)

    @job(
        name=scope.named("batch_labels"),
        partitions_def=scope.batches,
        description="Delayed labels for a batch: recompute only its performance.",
        tags=STAGE_TAGS,
    )
    def batch_labels() -> None:
        steps["batch_performance"]()

    return monitor_batch, batch_labels
