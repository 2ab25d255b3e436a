"""A registered model version's whole chain as OpenLineage events, from the audit's facts.

``mlgov audit export-lineage MODEL_REF`` gathers :class:`~mlgov_assets.core.audit.lineage.facts.Facts`
exactly as ``mlgov audit`` does and turns them into events, left to right:

1. every materialization in the version's Dagster lineage (source file → validated data → features →
   challenger/candidate model), each a START/COMPLETE pair of job ``<project>/<asset>`` with the run
   id the live emission gave that step (:func:`~.events.step_run_id`);
2. every gate (check evaluation) on those materializations: job ``<project>/<asset>.<check>``, its
   verdict in ``dataQualityAssertions`` and ``mlgov_gates``; a failed blocking gate ends in FAIL;
3. the registration: job ``<project>/registration`` writing ``models:/NAME/VERSION`` with
   ``mlgov_model`` (MLflow URI and version, data md5s, policy hash, aliases);
4. every decision-log record about the version (promotion, rollback, approval, …): job
   ``<project>/champion`` with ``mlgov_decision`` (record index and hash); a promotion to (or rollback
   to) the version writes ``models:/NAME@champion``.

Nothing is re-derived: each value is a fact :func:`~mlgov_assets.core.audit.lineage.gather.gather` read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlgov_assets.core.audit.lineage.facts import CheckEvaluation, Facts, Materialization
from mlgov_assets.core.audit.openlineage.events import (
    MAX_ITEMS,
    EventContext,
    cap,
    check_job_name,
    checked_datasets,
    dagster_facet,
    dataset_name,
    derived_run_id,
    error_facet,
    event,
    gates_facet,
    input_datasets,
    job,
    model_facet,
    output_dataset,
    parent_facet,
    step_run_id,
)
from mlgov_assets.core.governance.transaction import MOVES

if TYPE_CHECKING:
    from openlineage.client.event_v2 import RunEvent
    from openlineage.client.generated.base import RunFacet

    from mlgov_assets.core.audit.decision_log.records import Record

__all__ = ["CHAMPION_KINDS", "chain_events", "model_dataset_name"]

#: Decision kinds that move the champion alias onto the version they name.
CHAMPION_KINDS = frozenset(MOVES)
#: Decisions that refused something: their events end in FAIL.
REFUSING_KINDS = frozenset({"rejection", "promotion_aborted", "approval_rejection", "approval_lapsed"})


def model_dataset_name(name: str, version: int | str) -> str:
    return f"models:/{name}/{version}"


def _job_of(facts: Facts, run_id: str) -> str | None:
    run = facts.dagster.run if facts.dagster is not None else None
    return run.job_name if run is not None and run.run_id == run_id else None


def _run_facets(ctx: EventContext, facts: Facts, project: str, run_id: str) -> dict[str, RunFacet]:
    job_name = _job_of(facts, run_id)
    facets: dict[str, RunFacet] = {"mlgov_dagster": dagster_facet(run_id, job_name, project)}
    if job_name is not None:
        facets["parent"] = parent_facet(ctx, run_id, job_name)
    return facets


def _materialization_events(ctx: EventContext, facts: Facts, project: str, node: Materialization) -> list[RunEvent]:
    name = dataset_name(project, node.asset)
    rid = step_run_id(node.run_id, name)
    facets = _run_facets(ctx, facts, project, node.run_id)
    return [
        event("START", node.timestamp, job_obj=job(ctx, name, "ASSET"), run_id=rid, run_facets=dict(facets)),
        event(
            "COMPLETE",
            node.timestamp,
            job_obj=job(ctx, name, "ASSET"),
            run_id=rid,
            run_facets=facets,
            inputs=input_datasets(ctx, [node]),
            outputs=[output_dataset(ctx, project, node)],
        ),
    ]


def _check_events(
    ctx: EventContext, facts: Facts, project: str, check: CheckEvaluation, when: float | None
) -> list[RunEvent]:
    name = check_job_name(project, check.asset, check.check)
    run_id = check.run_id or (facts.dagster.run.run_id if facts.dagster and facts.dagster.run else "unknown")
    rid = step_run_id(run_id, name)
    facets = _run_facets(ctx, facts, project, run_id)
    start = event("START", when, job_obj=job(ctx, name, "ASSET_CHECK"), run_id=rid, run_facets=dict(facets))
    facets["mlgov_gates"] = gates_facet([check], facts.tags.get("mlgov.policy_sha256"))
    failed = not check.passed and check.blocking and check.severity == "ERROR"
    if failed:
        facets["errorMessage"] = error_facet(check.description or f"gate {check.check} failed")
    end = event(
        "FAIL" if failed else "COMPLETE",
        when,
        job_obj=job(ctx, name, "ASSET_CHECK"),
        run_id=rid,
        run_facets=facets,
        inputs=checked_datasets(ctx, project, [check]),
    )
    return [start, end]


def _registration_events(ctx: EventContext, facts: Facts, project: str) -> list[RunEvent]:
    from openlineage.client.event_v2 import InputDataset, OutputDataset

    info, tags = facts.model, facts.tags
    name = f"{project}/registration"
    uri = model_dataset_name(info.name, info.version)
    rid = derived_run_id("registration", info.name, str(info.version))
    facet = model_facet(
        uri,
        run_id=info.run_id,
        train_md5=tags.get("mlgov.train_data_md5"),
        holdout_md5=tags.get("mlgov.holdout_data_md5"),
        policy_sha256=tags.get("mlgov.policy_sha256"),
        aliases=info.aliases,
    )
    output = OutputDataset(
        namespace=ctx.namespace, name=uri, facets={"mlgov_model": facet} if facet is not None else {}
    )
    dagster_run = tags.get("mlgov.dagster_run_id")
    facets = _run_facets(ctx, facts, project, dagster_run) if dagster_run else {}
    models = facts.dagster.model_nodes() if facts.dagster is not None else []
    ins = [InputDataset(namespace=ctx.namespace, name=dataset_name(project, n.asset)) for n in models]
    start_ms = facts.run.start_time if facts.run is not None else None
    end_ms = facts.run.end_time if facts.run is not None else None
    start_s = start_ms / 1000 if start_ms is not None else None
    end_s = end_ms / 1000 if end_ms is not None else start_s
    return [
        event("START", start_s, job_obj=job(ctx, name, "MODEL_REGISTRATION"), run_id=rid, run_facets=dict(facets)),
        event(
            "COMPLETE",
            end_s,
            job_obj=job(ctx, name, "MODEL_REGISTRATION"),
            run_id=rid,
            run_facets=facets,
            inputs=ins,
            outputs=[output],
        ),
    ]


def _decision_facet(record: Record) -> RunFacet:
    from mlgov_assets.core.audit.openlineage.facets import PRODUCER, MlgovDecisionRunFacet

    policy = record.evidence_hashes.get("policy_sha256")
    return MlgovDecisionRunFacet(
        producer=PRODUCER,
        kind=record.kind,
        recordIndex=record.index,
        recordHash=record.hash,
        time=record.time,
        modelVersion=record.model_version,
        policySha256=policy,
        reason=cap(record.reason) if record.reason else None,
    )


def _decision_events(ctx: EventContext, facts: Facts, project: str, record: Record) -> list[RunEvent]:
    from datetime import datetime

    from openlineage.client.event_v2 import InputDataset, OutputDataset

    info = facts.model
    name = f"{project}/champion"
    rid = derived_run_id("decision", record.hash)
    try:
        when: float | None = datetime.fromisoformat(record.time).timestamp()
    except ValueError:
        when = None
    facets: dict[str, RunFacet] = {"mlgov_decision": _decision_facet(record)}
    moves = record.kind in CHAMPION_KINDS and record.model_version == str(info.version)
    outputs = [OutputDataset(namespace=ctx.namespace, name=f"models:/{info.name}@champion")] if moves else []
    end_facets = dict(facets)
    refused = record.kind in REFUSING_KINDS
    if refused:
        end_facets["errorMessage"] = error_facet(f"{record.kind}: {record.reason}")
    inputs = [InputDataset(namespace=ctx.namespace, name=model_dataset_name(info.name, info.version))]
    return [
        event("START", when, job_obj=job(ctx, name, "GOVERNANCE_DECISION"), run_id=rid, run_facets=facets),
        event(
            "FAIL" if refused else "COMPLETE",
            when,
            job_obj=job(ctx, name, "GOVERNANCE_DECISION"),
            run_id=rid,
            run_facets=end_facets,
            inputs=inputs,
            outputs=outputs,
        ),
    ]


def chain_events(ctx: EventContext, facts: Facts, project: str) -> list[RunEvent]:
    """The version's chain, in order: materializations, gates, registration, decisions."""
    out: list[RunEvent] = []
    nodes = sorted(facts.dagster.materializations, key=lambda n: n.storage_id) if facts.dagster else []
    for node in nodes[:MAX_ITEMS]:
        out += _materialization_events(ctx, facts, project, node)
    times = {n.storage_id: n.timestamp for n in nodes}
    for check in (facts.dagster.checks if facts.dagster else [])[:MAX_ITEMS]:
        when = times.get(check.target_storage_id) if check.target_storage_id is not None else None
        out += _check_events(ctx, facts, project, check, when)
    out += _registration_events(ctx, facts, project)
    for record in facts.decisions[:MAX_ITEMS]:
        out += _decision_events(ctx, facts, project, record)
    return out
