"""The champion's own checks, where an auditor looks: does the champion meet the CURRENT policy, and
do its artifacts still verify?

Both come from one re-evaluation (``core.monitoring.reevaluation.reevaluate_champion``: artifact
sha256, a fresh holdout evaluation, the current policy's model gates). In the run that just gated and
promoted the champion (same version, policy sha256 and holdout md5; ``run_evidence`` reads the keys
from this run's own event log) the artifacts are verified and that run's gate verdicts are cited
instead of scoring the same holdout with the same model again; the metadata says which
(``evaluation``: cited/fresh, ``cited_run_id``, ``cited_gate_checks``, ``fresh_because``). They run when ``champion``
materializes (every job that selects it), with the daily re-evaluation schedule, and when the policy
file changes (``<project>__champion_policy_sensor``, which launches ``<project>__champion_checks``).
Not blocking: a failing verdict is an ERROR on the champion's page and an alert; it never demotes.
"""

import getpass
from collections.abc import Iterator
from typing import TYPE_CHECKING

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetSelection,
    DefaultSensorStatus,
    Definitions,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    define_asset_job,
    multi_asset_check,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from ..resources import MlgovResource
from .common import json_md, rows_table
from .governance import GATE_CHECK_SUFFIX, champion, gate_check_name
from .scope import ProjectScope, scoped, sibling
from .training import candidate_model

if TYPE_CHECKING:
    from mlgov_assets.core.governance.policy import Policy
    from mlgov_assets.core.monitoring.reevaluation import Reevaluation, RunEvidence

MEETS_POLICY = "champion_meets_current_policy"
ARTIFACT_VERIFIED = "champion_artifact_verified"
POLICY_SENSOR = "champion_policy_sensor"
CHECKS_JOB = "champion_checks"


@multi_asset_check(
    name="champion_checks",
    specs=[
        AssetCheckSpec(
            MEETS_POLICY,
            asset=champion,
            description="The champion, re-evaluated from scratch (fresh holdout evaluation, recorded metrics "
            "reproduce), passes the model gates of the CURRENT policy. Evidence: policy sha256, each gate's verdict. "
            "Runs when champion materializes, daily, and when the policy file changes. In the run that gated and "
            "promoted it (same version, policy and holdout) it cites that run's gate checks instead of re-scoring.",
        ),
        AssetCheckSpec(
            ARTIFACT_VERIFIED,
            asset=champion,
            description="Every artifact of the champion's registered version matches the sha256 recorded at "
            "registration (nothing is unpickled before that).",
        ),
    ],
)
def champion_checks(context: AssetCheckExecutionContext, mlgov: MlgovResource) -> Iterator[AssetCheckResult]:
    from mlgov_assets.core.monitoring.reevaluation import reevaluate_champion
    from mlgov_assets.core.project.quoting import quote

    mlgov = scoped(mlgov, context)
    policy = mlgov.policy()
    try:
        result = reevaluate_champion(
            mlgov.settings(),
            mlgov.project(),
            policy,
            mlgov.registry(),
            actor=f"{getpass.getuser()} (dagster run {context.run.run_id[:8]})",
            dagster_run_id=context.run.run_id,
            log=context.log,
            evidence=run_evidence(context),
        )
    except Exception as exc:  # a verdict that could not be reached is a failed check, not a failed run
        why = f"the champion could not be re-evaluated: {quote(f'{type(exc).__name__}: {exc}', 400)}"
        context.log.error(why)
        meta = {"policy_sha256": policy.sha256, "policy_path": policy.path, "error": why}
        for name in (MEETS_POLICY, ARTIFACT_VERIFIED):
            yield AssetCheckResult(
                check_name=name, passed=False, severity=AssetCheckSeverity.ERROR, description=why, metadata=meta
            )
        return
    yield from champion_check_results(result, policy)


def run_evidence(context: AssetCheckExecutionContext) -> "RunEvidence":
    """What this run recorded before its champion check (its own event log only): the version its
    champion step promoted from this run's candidate and under which policy, and the candidate's
    metric-gate checks. A checks-only run (the schedule, the policy sensor) promoted nothing."""
    from dagster import DagsterEventType

    from mlgov_assets.core.monitoring.reevaluation import RunEvidence, RunGateCheck

    run_id = context.run.run_id
    candidate = candidate_model.key.path[-1]
    champ_key, cand_key = sibling(context, champion.key.path[-1]), sibling(context, candidate)
    gate_of = {gate_check_name(candidate, gate): gate for gate in GATE_CHECK_SUFFIX}
    promoted: int | None = None
    policy_sha: str | None = None
    checks: list[RunGateCheck] = []
    kinds = {DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_CHECK_EVALUATION}
    for rec in context.instance.get_records_for_run(run_id, of_type=kinds).records:
        ev = rec.event_log_entry.dagster_event
        if ev is None:
            continue
        if ev.event_type == DagsterEventType.ASSET_MATERIALIZATION and ev.asset_key == champ_key:
            meta = {k: v.value for k, v in ev.step_materialization_data.materialization.metadata.items()}
            version = meta.get("champion_version")
            moved = meta.get("promoted") is True and meta.get("action") == "promote_challenger"
            promoted = version if moved and isinstance(version, int) else None
            policy_sha = str(meta.get("policy_sha256"))
        elif ev.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            data = ev.asset_check_evaluation_data
            meta = {k: v.value for k, v in data.metadata.items()}
            version = meta.get("model_version")
            if data.asset_key == cand_key and data.check_name in gate_of and isinstance(version, int):
                checks.append(
                    RunGateCheck(
                        gate=gate_of[data.check_name],
                        check=data.check_name,
                        model_version=version,
                        policy_sha256=str(meta.get("policy_sha256")),
                        passed=data.passed,
                    )
                )
    return RunEvidence(run_id=run_id, promoted_version=promoted, policy_sha256=policy_sha, gate_checks=checks)


def champion_check_results(result: "Reevaluation", policy: "Policy") -> Iterator[AssetCheckResult]:
    """The two verdicts of one re-evaluation, with its evidence."""
    common = {
        "champion_version": result.champion if result.champion is not None else "none",
        "policy_sha256": policy.sha256,
        "policy_path": policy.path,
        "evaluated_at": result.at,
    }
    cited = result.cited
    evaluation = {
        "evaluation": result.mode,
        "cited_run_id": cited.dagster_run_id if cited else "none",
        "cited_gate_checks": rows_table([c.model_dump() for c in cited.gate_checks]) if cited else "none",
        "cited_holdout_md5": cited.holdout_md5 if cited else "none",
        "fresh_because": result.fresh_because or ("n/a" if cited else "none"),
    }
    gates = [g.model_dump() for g in result.gates]
    yield AssetCheckResult(
        check_name=MEETS_POLICY,
        passed=result.passed,
        severity=AssetCheckSeverity.ERROR,
        description=result.summary,
        metadata={
            **common,
            **evaluation,
            **{f"gate/{g.gate}": "passed" if g.passed else "FAILED" for g in result.gates},
            "gates": rows_table(gates) if gates else "none (no champion)",
            "metrics_reproduced": "n/a" if result.reproduced is None else result.reproduced,
            "not_reevaluated_here": ", ".join(result.not_reevaluated_here) or "none",
            "evidence": json_md(result.model_dump(mode="json", exclude_none=True)),
        },
    )
    verified = result.champion is None or result.integrity == "verified"
    yield AssetCheckResult(
        check_name=ARTIFACT_VERIFIED,
        passed=verified,
        severity=AssetCheckSeverity.ERROR,
        description="no champion yet"
        if result.champion is None
        else f"champion v{result.champion}: artifacts {result.integrity}",
        metadata={**common, "integrity": result.integrity or "n/a"},
    )


def checks_job(scope: ProjectScope) -> UnresolvedAssetJobDefinition:
    return define_asset_job(
        scope.named(CHECKS_JOB),
        selection=AssetSelection.checks_for_assets(scope.key("champion")),
        description=f"Re-run the champion's checks of {scope.name} (current policy, artifact sha256) without "
        "moving the alias; launched by the policy sensor when the policy file changes.",
        tags={"mlgov/project": scope.name},
    )


def policy_sensor(scope: ProjectScope, job: UnresolvedAssetJobDefinition) -> SensorDefinition:
    @sensor(
        name=scope.named(POLICY_SENSOR),
        job=job,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="When the policy file's sha256 changes, re-runs the champion's checks against it. "
        "On its first tick it runs them only if a champion has been materialized.",
    )
    def champion_policy(context: SensorEvaluationContext, mlgov: MlgovResource) -> SensorResult:
        digest = mlgov.for_project(scope.name).policy().sha256
        if context.cursor == digest:
            return SensorResult(skip_reason=f"policy unchanged ({digest[:12]})", cursor=digest)
        if context.cursor is None and context.instance.get_latest_materialization_event(scope.key("champion")) is None:
            return SensorResult(skip_reason=f"no champion yet; watching policy {digest[:12]}", cursor=digest)
        context.log.info(f"policy {context.cursor or 'unknown'} -> {digest}: re-checking the champion")
        return SensorResult(run_requests=[RunRequest(tags={"mlgov/policy_sha256": digest})], cursor=digest)

    return champion_policy


def project_defs(scope: ProjectScope) -> Definitions:
    job = checks_job(scope)
    return Definitions(jobs=[job], sensors=[policy_sensor(scope, job)])


defs = Definitions(asset_checks=[champion_checks])
