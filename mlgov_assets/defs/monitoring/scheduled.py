"""The daily jobs: the monitoring summary (an asset) and the champion's re-evaluation (the champion's own
checks, ``defs/champion_checks.py``), and their schedules.

Both schedules are RUNNING by default: the summary is read-only and cheap; the re-evaluation writes
governance records only when a verdict or the policy changed.
"""

import json
from typing import Any

from dagster import (
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
from .shared import CODE_VERSION, GROUP


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


def scheduled_defs(scope: ProjectScope) -> Definitions:
    """The project's daily jobs and their schedules."""
    summary_job = define_asset_job(
        scope.named("daily_monitoring_summary"),
        selection=AssetSelection.assets(scope.key("monitoring_summary")),
        description="The monitoring summary over the last N batches.",
    )
    reevaluation_job = define_asset_job(
        scope.named("reevaluate_champion"),
        # the champion's own checks (defs/champion_checks.py): one re-evaluation, its verdict on the champion's page
        selection=AssetSelection.checks_for_assets(scope.key("champion")),
        description="Re-evaluate the champion against the current policy: the champion's own checks "
        "(current policy, artifact sha256); never moves the alias.",
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
