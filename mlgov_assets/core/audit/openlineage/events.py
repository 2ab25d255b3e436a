"""Pure OpenLineage event building: a finished Dagster run's steps as run events.

A Dagster run is one OpenLineage run (its ``runId`` IS the Dagster run id, its job the Dagster job);
each step that started is a child run (``parent`` facet: the Dagster run) whose job is named after
what the step materializes or checks — ``<project>/<asset>`` or ``<project>/<asset>.<check>`` —
with a START event at the step's start and COMPLETE or FAIL at its end. A step's ``runId`` is a
UUID derived from (Dagster run id, job name), so the events of one Dagster run share its id and the
whole-chain export (:mod:`.chain`) names the same runs. Outputs carry ``mlgov_data`` (DVC md5,
stored sha256, rows, data/code versions) and, for model assets, ``mlgov_model``; inputs come from
Dagster's input-event pointers; a check step's input carries the standard ``dataQualityAssertions``
facet and the run the ``mlgov_gates`` facet (verdicts and policy hash). Text is capped
(:data:`MAX_TEXT`), lists too (:data:`MAX_ITEMS`); only whitelisted metadata (identifiers,
hashes, counts) is read: never data values.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlgov_assets.core.audit.lineage.facts import CheckEvaluation, DagsterRun, Materialization

if TYPE_CHECKING:
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, RunEvent
    from openlineage.client.generated.base import DatasetFacet, InputDatasetFacet, RunFacet

__all__ = [
    "MAX_ITEMS",
    "MAX_TEXT",
    "EventContext",
    "RunView",
    "StepView",
    "cap",
    "check_job_name",
    "dataset_name",
    "run_events",
    "step_run_id",
]

MAX_TEXT = 500
MAX_ITEMS = 200
_UUID_NS = uuid.UUID("6f1c2d0e-5b8a-4c3e-9a57-0d7c4e1b2a90")  # mlgov's namespace for derived run ids
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")
Outcome = Literal["COMPLETE", "FAIL", "ABORT"]


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepView(_View):
    """One Dagster step of a finished run, as plain data (read by the Dagster layer)."""

    step_key: str
    project: str | None = Field(description="the first part of the step's asset keys (None: unprefixed)")
    assets: list[str] = Field(default_factory=list, description="asset names the step planned to materialize")
    checks: list[str] = Field(default_factory=list, description="'<asset>.<check>' the step planned to evaluate")
    status: Literal["success", "failure", "incomplete", "skipped"] = Field(
        description="incomplete: started, never finished (a killed or canceled run)"
    )
    start_time: float | None = None
    end_time: float | None = None
    error: str | None = None
    materializations: list[Materialization] = Field(default_factory=list)
    evaluations: list[CheckEvaluation] = Field(default_factory=list)


class RunView(_View):
    """A finished Dagster run: the run and its steps (``engine``: Dagster's version)."""

    run: DagsterRun
    steps: list[StepView]
    engine: str | None = None


@dataclass(frozen=True)
class EventContext:
    """Where events are filed: the job and dataset ``namespace`` (``MLGOV_OPENLINEAGE_NAMESPACE``)."""

    namespace: str = "mlgov"


def cap(text: object, limit: int = MAX_TEXT) -> str:
    """``text`` as a string of at most ``limit`` characters (an ellipsis marks a cut)."""
    s = str(text)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def iso(seconds: float | None) -> str:
    """An epoch timestamp (seconds) as ISO 8601 UTC; now when unknown."""
    when = datetime.fromtimestamp(seconds, tz=UTC) if seconds is not None else datetime.now(tz=UTC)
    return when.isoformat(timespec="milliseconds")


def dataset_name(project: str | None, asset: str) -> str:
    """A Dagster asset's dataset name: its key as Dagster spells it (``adult/training_data``)."""
    return f"{project}/{asset}" if project else asset


def check_job_name(project: str | None, asset: str, check: str) -> str:
    return f"{dataset_name(project, asset)}.{check}"


def step_run_id(dagster_run_id: str, job_name: str) -> str:
    """The OpenLineage run id of the step that ran ``job_name`` in a Dagster run (deterministic)."""
    return str(uuid.uuid5(_UUID_NS, f"{dagster_run_id}/{job_name}"))


def derived_run_id(*parts: str) -> str:
    return str(uuid.uuid5(_UUID_NS, "/".join(parts)))


def _valid_uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return derived_run_id("dagster", value)


# --------------------------------------------------------------------------- facets


def _meta_str(node: Materialization, *keys: str) -> str | None:
    for key in keys:
        value = node.metadata.get(key)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return cap(value)
    return None


def data_facet(node: Materialization) -> DatasetFacet:
    from mlgov_assets.core.audit.openlineage.facets import PRODUCER, MlgovDataDatasetFacet

    md5 = _meta_str(node, "dvc_md5", "md5")
    rows = node.metadata.get("row_count")
    return MlgovDataDatasetFacet(
        producer=PRODUCER,
        dvcMd5=md5 if md5 and _MD5.match(md5) else None,
        sha256=node.sha256 if node.sha256 and _SHA256.match(node.sha256) else None,
        rowCount=rows if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0 else None,
        dataVersion=cap(node.data_version) if node.data_version else None,
        codeVersion=cap(node.code_version) if node.code_version else None,
        path=_meta_str(node, "path"),
    )


def model_facet(
    uri: str,
    *,
    run_id: str | None = None,
    train_md5: str | None = None,
    holdout_md5: str | None = None,
    policy_sha256: str | None = None,
    aliases: Sequence[str] = (),
) -> DatasetFacet | None:
    """``mlgov_model`` for a ``models:/NAME/VERSION`` URI (None for any other URI)."""
    from mlgov_assets.core.audit.openlineage.facets import PRODUCER, MlgovModelDatasetFacet

    m = _MODEL_URI.match(uri)
    if m is None:
        return None
    return MlgovModelDatasetFacet(
        producer=PRODUCER,
        modelName=m["name"],
        modelVersion=int(m["version"]),
        modelUri=uri,
        mlflowRunId=run_id,
        trainDataMd5=train_md5 if train_md5 and _MD5.match(train_md5) else None,
        holdoutDataMd5=holdout_md5 if holdout_md5 and _MD5.match(holdout_md5) else None,
        policySha256=policy_sha256 if policy_sha256 and _SHA256.match(policy_sha256) else None,
        aliases=list(aliases),
    )


def gates_facet(evaluations: Sequence[CheckEvaluation], policy_sha256: str | None = None) -> RunFacet:
    """``mlgov_gates``: the verdicts, and the policy hash they recorded (or ``policy_sha256``)."""
    from mlgov_assets.core.audit.openlineage.facets import PRODUCER, GateVerdict, MlgovGatesRunFacet

    recorded = next((str(e.metadata["policy_sha256"]) for e in evaluations if e.metadata.get("policy_sha256")), None)
    policy = recorded or policy_sha256
    return MlgovGatesRunFacet(
        producer=PRODUCER,
        policySha256=policy if policy and _SHA256.match(policy) else None,
        verdicts=[
            GateVerdict(
                asset=e.asset,
                check=e.check,
                passed=e.passed,
                severity=e.severity,
                blocking=e.blocking,
                gate=e.gate,
                description=cap(e.description) if e.description else None,
            )
            for e in evaluations[:MAX_ITEMS]
        ],
    )


def assertions_facet(evaluations: Sequence[CheckEvaluation]) -> InputDatasetFacet:
    """The standard ``dataQualityAssertions`` facet (an input facet of the checked dataset)."""
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq

    from mlgov_assets.core.audit.openlineage.facets import PRODUCER

    return dq.DataQualityAssertionsDatasetFacet(
        producer=PRODUCER,
        assertions=[
            dq.Assertion(
                assertion=e.gate or e.check,
                success=e.passed,
                severity=e.severity.lower(),
                name=e.check,
                description=cap(e.description) if e.description else None,
            )
            for e in evaluations[:MAX_ITEMS]
        ],
    )


def dagster_facet(run_id: str, job: str | None, project: str | None = None, step_key: str | None = None) -> RunFacet:
    from mlgov_assets.core.audit.openlineage.facets import PRODUCER, MlgovDagsterRunFacet

    return MlgovDagsterRunFacet(
        producer=PRODUCER, dagsterRunId=run_id, dagsterJob=job or "unknown", project=project, stepKey=step_key
    )


def parent_facet(ctx: EventContext, run_id: str, job: str) -> RunFacet:
    from openlineage.client.facet_v2 import parent_run

    from mlgov_assets.core.audit.openlineage.facets import PRODUCER

    return parent_run.ParentRunFacet(
        producer=PRODUCER,
        run=parent_run.Run(runId=_valid_uuid(run_id)),
        job=parent_run.Job(namespace=ctx.namespace, name=job),
    )


def error_facet(message: str) -> RunFacet:
    from openlineage.client.facet_v2 import error_message_run

    from mlgov_assets.core.audit.openlineage.facets import PRODUCER

    return error_message_run.ErrorMessageRunFacet(producer=PRODUCER, message=cap(message), programmingLanguage="python")


def engine_facet(version: str | None) -> RunFacet:
    from openlineage.client.facet_v2 import processing_engine_run

    from mlgov_assets.core.audit.openlineage.facets import PRODUCER

    return processing_engine_run.ProcessingEngineRunFacet(
        producer=PRODUCER,
        version=version or "unknown",
        name="Dagster",
        openlineageAdapterVersion=PRODUCER.rsplit("/", 1)[-1],
    )


# --------------------------------------------------------------------------- datasets and events


def output_dataset(ctx: EventContext, project: str | None, node: Materialization) -> OutputDataset:
    """A materialization as an output dataset: ``mlgov_data``, its data version, columns, and
    ``mlgov_model`` when it is a registered model version."""
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import dataset_version_dataset, schema_dataset

    from mlgov_assets.core.audit.openlineage.facets import PRODUCER

    facets: dict[str, DatasetFacet] = {"mlgov_data": data_facet(node)}
    if node.data_version:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            producer=PRODUCER, datasetVersion=cap(node.data_version)
        )
    if node.columns:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            producer=PRODUCER,
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name=cap(c.name, 200), type=cap(c.dtype, 100))
                for c in node.columns[:MAX_ITEMS]
            ],
        )
    uri = _meta_str(node, "model_uri")
    model = (
        model_facet(
            uri,
            run_id=_meta_str(node, "mlflow_run_id"),
            train_md5=_meta_str(node, "train_data_md5"),
            policy_sha256=_meta_str(node, "policy_sha256"),
        )
        if uri
        else None
    )
    if model is not None:
        facets["mlgov_model"] = model
    return OutputDataset(namespace=ctx.namespace, name=dataset_name(project, node.asset), facets=facets)


def input_datasets(ctx: EventContext, nodes: Iterable[Materialization]) -> list[InputDataset]:
    """The datasets the materializations read (Dagster's input-event pointers), once each."""
    from openlineage.client.event_v2 import InputDataset

    names = dict.fromkeys(key for node in nodes for key in sorted(node.inputs))
    return [InputDataset(namespace=ctx.namespace, name=cap(name, 300)) for name in list(names)[:MAX_ITEMS]]


def checked_datasets(
    ctx: EventContext, project: str | None, evaluations: Sequence[CheckEvaluation]
) -> list[InputDataset]:
    """The checked assets as inputs, each with its ``dataQualityAssertions``."""
    from openlineage.client.event_v2 import InputDataset

    by_asset: dict[str, list[CheckEvaluation]] = {}
    for e in evaluations:
        by_asset.setdefault(e.asset, []).append(e)
    return [
        InputDataset(
            namespace=ctx.namespace,
            name=dataset_name(project, asset),
            inputFacets={"dataQualityAssertions": assertions_facet(evs)},
        )
        for asset, evs in by_asset.items()
    ]


def job(ctx: EventContext, name: str, job_type: str) -> Job:
    from openlineage.client.event_v2 import Job
    from openlineage.client.facet_v2 import job_type_job

    from mlgov_assets.core.audit.openlineage.facets import PRODUCER

    kind = job_type_job.JobTypeJobFacet(
        producer=PRODUCER, processingType="BATCH", integration="DAGSTER", jobType=job_type
    )
    return Job(namespace=ctx.namespace, name=cap(name, 300), facets={"jobType": kind})


def event(
    state: str,
    when: float | None,
    *,
    job_obj: Job,
    run_id: str,
    run_facets: dict[str, RunFacet],
    inputs: Sequence[InputDataset] = (),
    outputs: Sequence[OutputDataset] = (),
) -> RunEvent:
    from openlineage.client.event_v2 import Run, RunEvent, RunState

    from mlgov_assets.core.audit.openlineage.facets import PRODUCER

    return RunEvent(
        eventType=RunState(state),
        eventTime=iso(when),
        run=Run(runId=run_id, facets=run_facets),
        job=job_obj,
        inputs=list(inputs),
        outputs=list(outputs),
        producer=PRODUCER,
    )


def step_job_name(step: StepView) -> str:
    """``<project>/<asset>`` for one asset, ``<project>/<asset>.<check>`` for one check, else the step key."""
    assets = step.assets or list(dict.fromkeys(m.asset for m in step.materializations))
    checks = step.checks or list(dict.fromkeys(f"{e.asset}.{e.check}" for e in step.evaluations))
    if len(assets) == 1 and not checks:
        return dataset_name(step.project, assets[0])
    if len(checks) == 1 and not assets:
        return dataset_name(step.project, checks[0])
    return dataset_name(step.project, step.step_key)


def _outcome(status: str) -> Outcome:
    return "COMPLETE" if status.upper() == "SUCCESS" else ("ABORT" if status.upper() == "CANCELED" else "FAIL")


def step_events(ctx: EventContext, view: RunView, step: StepView) -> list[RunEvent]:
    """START and COMPLETE/FAIL of one step that started (none for a step that never did)."""
    if step.start_time is None:
        return []
    run = view.run
    name = step_job_name(step)
    rid = step_run_id(run.run_id, name)
    facets: dict[str, RunFacet] = {
        "parent": parent_facet(ctx, run.run_id, run.job_name),
        "mlgov_dagster": dagster_facet(run.run_id, run.job_name, step.project, step.step_key),
        "processing_engine": engine_facet(view.engine),
    }
    kind = "ASSET_CHECK" if step.checks and not step.assets else "ASSET"
    start = event("START", step.start_time, job_obj=job(ctx, name, kind), run_id=rid, run_facets=dict(facets))
    if step.evaluations:
        facets["mlgov_gates"] = gates_facet(step.evaluations)
    if step.status == "failure":
        facets["errorMessage"] = error_facet(step.error or f"step {step.step_key} failed")
    elif step.status == "incomplete":
        facets["errorMessage"] = error_facet(f"step {step.step_key} started but never finished")
    inputs = input_datasets(ctx, step.materializations) + checked_datasets(ctx, step.project, step.evaluations)
    outputs = [output_dataset(ctx, step.project, m) for m in step.materializations[:MAX_ITEMS]]
    state = {"success": "COMPLETE", "incomplete": "ABORT"}.get(step.status, "FAIL")
    end = event(
        state,
        step.end_time if step.end_time is not None else step.start_time,
        job_obj=job(ctx, name, kind),
        run_id=rid,
        run_facets=facets,
        inputs=inputs,
        outputs=outputs,
    )
    return [start, end]


def run_events(ctx: EventContext, view: RunView) -> list[RunEvent]:
    """Every event of a finished Dagster run: the run's START, each started step's START and
    COMPLETE/FAIL, the run's COMPLETE/FAIL/ABORT (with every gate verdict of the run)."""
    run = view.run
    project = next((s.project for s in view.steps if s.project), None)
    rid = _valid_uuid(run.run_id)
    base: dict[str, RunFacet] = {
        "mlgov_dagster": dagster_facet(run.run_id, run.job_name, project),
        "processing_engine": engine_facet(view.engine),
    }
    out = [event("START", run.start_time, job_obj=job(ctx, run.job_name, "JOB"), run_id=rid, run_facets=dict(base))]
    for step in sorted(view.steps, key=lambda s: (s.start_time is None, s.start_time or 0.0, s.step_key)):
        out += step_events(ctx, view, step)
    evaluations = [e for s in view.steps for e in s.evaluations]
    end_facets = dict(base)
    if evaluations:
        end_facets["mlgov_gates"] = gates_facet(evaluations)
    failed = [s.step_key for s in view.steps if s.status == "failure"]
    outcome = _outcome(run.status)
    if outcome != "COMPLETE":
        end_facets["errorMessage"] = error_facet(
            f"Dagster run {run.status.lower()}" + (f"; failed steps: {', '.join(failed[:20])}" if failed else "")
        )
    end_time = run.end_time if run.end_time is not None else max((s.end_time or 0.0 for s in view.steps), default=None)
    out.append(event(outcome, end_time, job_obj=job(ctx, run.job_name, "JOB"), run_id=rid, run_facets=end_facets))
    return out
