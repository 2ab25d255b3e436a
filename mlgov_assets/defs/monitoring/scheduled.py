"""The daily assets: the monitoring summary and the champion's re-evaluation, their jobs and schedules.

Both schedules are RUNNING by default: the summary is read-only and cheap; the re-evaluation writes
governance records only when a verdict or the policy changed.
"""

import getpass
import json
from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSelection,
    DefaultScheduleStatus,
    Definitions,
    Output,
    ScheduleDefinition,
    asset,
    define_asset_job,
)

from ...resources import MlgovResource
from ..common import json_md, rows_table
from ..scope import ProjectScope, scoped
from .shared import CHAMPION, CODE_VERSION, GROUP


@asset(
    group_name=GROUP,
    code_version=CODE_VERSION,
    kinds={"pandas"},
    owners=["team:model-risk"],
    description="Drift and performance over the last N batches (policy monitoring.summary_last_n_batches): "
    "verdict per batch, drift rate, most drifted columns, retraining requests, alerts.",
)
def monitoring_summary(context: AssetExecutionContext, mlgov: MlgovResource) -> Output[dict[str, Any]]:
    from mlgov_assets.core.monitoring.summary import monitoring_summary as summarize

    mlgov = scoped(mlgov, context)
    summary = summarize(mlgov.settings(), mlgov.policy().monitoring.summary_last_n_batches)
    counts = summary.counts.model_dump()
    context.log.info(f"monitoring summary: {json.dumps(counts)}")
    value = summary.model_dump(mode="json")
    return Output(
        value,
        metadata={
            **{f"count/{k}": v for k, v in counts.items()},
            "drift_rate": summary.drift_rate if summary.drift_rate is not None else "n/a",
            "batches": rows_table(value["batches"]),
            "most_drifted_columns": json_md(value["most_drifted_columns"]),
        },
    )


@asset(
    group_name=GROUP,
    code_version=CODE_VERSION,
    deps=[CHAMPION],
    kinds={"mlflow"},
    owners=["team:model-risk"],
    check_specs=[
        AssetCheckSpec(
            "check_champion_reevaluation_meets_policy",
            asset="champion_reevaluation",
            description="The champion, re-evaluated from scratch, meets the current policy.",
        )
    ],
    description="Re-runs the champion's model gates against the current policy: artifact sha256 verification, "
    "a fresh holdout evaluation (recorded metrics must reproduce), metric floors. Verdicts are "
    "recorded on the registry and the decision log only when they change; never demotes.",
)
def champion_reevaluation(
    context: AssetExecutionContext, mlgov: MlgovResource
) -> Iterator[Output[dict[str, Any]] | AssetCheckResult]:
    from mlgov_assets.core.monitoring.reevaluation import reevaluate_champion

    mlgov = scoped(mlgov, context)
    policy = mlgov.policy()
    result = reevaluate_champion(
        mlgov.settings(),
        mlgov.project(),
        policy,
        mlgov.registry(),
        actor=f"{getpass.getuser()} (dagster run {context.run_id[:8]})",
        dagster_run_id=context.run_id,
        log=context.log,
    )
    value = result.model_dump(mode="json", exclude_none=True)
    yield Output(
        value,
        metadata={
            "champion": str(result.champion),
            "passed": result.passed,
            "summary": result.summary,
            "evidence": json_md(value),
        },
    )
    yield AssetCheckResult(
        check_name="check_champion_reevaluation_meets_policy",
        passed=result.passed,
        severity=AssetCheckSeverity.ERROR,
        description=result.summary,
        metadata={"policy_sha256": policy.sha256},
    )


def scheduled_defs(scope: ProjectScope) -> Definitions:
    """The project's daily jobs and their schedules."""
    summary_job = define_asset_job(
        scope.named("daily_monitoring_summary"),
        selection=AssetSelection.assets(scope.key("monitoring_summary")),
        description="The monitoring summary over the last N batches.",
    )
    reevaluation_job = define_asset_job(
        scope.named("reevaluate_champion"),
        # the champion's own checks too (defs/champion_checks.py): the verdict shows on the champion's page
        selection=AssetSelection.assets(scope.key("champion_reevaluation"))
        | AssetSelection.checks_for_assets(scope.key("champion")),
        description="Re-evaluate the champion against the current policy (and run the champion's checks).",
    )
    daily_summary = ScheduleDefinition(
        name=scope.named("daily_monitoring_summary_schedule"),
        job=summary_job,
        cron_schedule="0 6 * * *",
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description="Daily monitoring summary (06:00 UTC).",
    )
    reevaluation = ScheduleDefinition(
        name=scope.named("champion_reevaluation_schedule"),
        job=reevaluation_job,
        cron_schedule="30 5 * * *",
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description="Daily re-evaluation of the champion against the current policy (05:30 UTC).",
    )
    return Definitions(jobs=[summary_job, reevaluation_job], schedules=[daily_summary, reevaluation])
