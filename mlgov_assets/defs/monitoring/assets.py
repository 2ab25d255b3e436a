"""Stage 5 — monitoring: production batches as dynamic partitions, drift against the champion's
training data, shadow scoring, performance once labels arrive, drift-triggered retraining through
the same governed path, and the daily schedules.

Per batch (partition key = batch id): ``batch_data`` [blocking schema gate; an invalid batch is
quarantined] -> ``batch_scores`` (champion + shadow) -> ``batch_drift`` [drift gate, WARN] ->
``batch_drift_report`` (Evidently HTML in MLflow) and ``batch_performance`` [tolerance gate, WARN].
``batch_landing_sensor`` registers landed files as partitions; ``retrain_on_breach_sensor`` turns a
breach into one ``governed_training`` run. All logic is in ``core.monitoring``; heavy libraries
are imported there, inside functions.
"""

import getpass
import json

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    DataVersion,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
    MetadataValue,
    Output,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    SensorEvaluationContext,
    SensorResult,
    asset,
    asset_check,
    define_asset_job,
    sensor,
)

from mlgov_assets.core.provenance import source_version

from ..resources import MlgovResource
from .common import json_md, rows_table, table_metadata
from .data import HOLDOUT_FILE

BATCHES = DynamicPartitionsDefinition(name="batches")
GROUP = "monitoring"
CHAMPION = AssetKey("champion")
CODE_VERSION = source_version(
    "core/monitoring/service.py", "core/monitoring/drift.py", "core/monitoring/batches.py", "defs/monitoring.py"
)
RUN_KEY_TAG = "dagster/run_key"
#: A landed file younger than this is left for the next tick (a non-atomic writer may still be writing).
LANDING_SETTLE_SECONDS = 2.0
MLFLOW_UI = "http://127.0.0.1:5000"


def _webhook(mlgov: MlgovResource):
    return mlgov.policy().monitoring.webhook_url


# --------------------------------------------------------------------------- per-batch assets


@asset(
    partitions_def=BATCHES,
    group_name=GROUP,
    code_version=CODE_VERSION,
    kinds={"pandas", "pandera"},
    owners=["team:ml-platform"],
    description="A production batch from the landing folder, through UnlabelledRawAdultSchema. An invalid "
    "batch is moved to $MLGOV_HOME/monitoring/quarantine/<batch_id>/ with its failure report, "
    "alerted, and stopped by the blocking schema check: it is never scored.",
)
def batch_data(context: AssetExecutionContext, mlgov: MlgovResource) -> Output[pd.DataFrame]:
    from mlgov_assets.core.monitoring.service import accept_batch

    acc = accept_batch(mlgov.settings(), context.partition_key, webhook_url=_webhook(mlgov), log=context.log)
    meta = {
        **table_metadata(acc.frame),
        "source": acc.source,
        "md5": acc.md5,
        "valid": acc.valid,
        "validation": acc.summary[:2000],
    }
    if acc.quarantine_dir is not None:
        meta["quarantine_dir"] = MetadataValue.path(str(acc.quarantine_dir))
    return Output(acc.frame, metadata=meta, data_version=DataVersion(acc.md5))


@asset_check(
    asset=batch_data,
    blocking=True,
    partitions_def=BATCHES,
    description="Pandera UnlabelledRawAdultSchema on the batch (types, ranges, adult.names categories, "
    "label set if present). Failing batches are quarantined and never scored.",
)
def check_batch_data_schema(context: AssetCheckExecutionContext, batch_data: pd.DataFrame) -> AssetCheckResult:
    attrs = batch_data.attrs
    report = attrs.get("validation") or {}
    rows = [
        {
            "column": f["column"],
            "check": f["check"],
            "failing": f["count"],
            "example rows": [e.get("row") for e in f["examples"]],
            "example values": [e.get("value") for e in f["examples"]],
        }
        for f in report.get("failures", [])
    ]
    meta = {
        "source": attrs.get("source", "?"),
        "md5": attrs.get("md5", "?"),
        "rules_failed": len(rows),
        "failures": rows_table(rows),
        "evidence": json_md(report),
    }
    if attrs.get("quarantine_dir"):
        meta["quarantine_dir"] = MetadataValue.path(attrs["quarantine_dir"])
    return AssetCheckResult(
        passed=bool(attrs.get("valid")),
        severity=AssetCheckSeverity.ERROR,
        description=str(attrs.get("summary", ""))[:2000],
        metadata=meta,
    )


@asset(
    partitions_def=BATCHES,
    group_name=GROUP,
    code_version=CODE_VERSION,
    deps=[CHAMPION],
    kinds={"scikit-learn", "mlflow"},
    owners=["team:ml-platform"],
    description="P(>50K) per row from the champion and, in shadow, from the latest challenger (the most recent "
    "registered version that is not the champion). Models load only via Registry.load_model, "
    "which verifies every artifact's sha256.",
)
def batch_scores(
    context: AssetExecutionContext, mlgov: MlgovResource, batch_data: pd.DataFrame
) -> Output[pd.DataFrame]:
    from mlgov_assets.core.monitoring.service import score_batch

    scores = score_batch(mlgov.settings(), mlgov.registry(), batch_data, webhook_url=_webhook(mlgov), log=context.log)
    meta = {
        "rows": len(scores),
        "champion_version": scores.attrs["champion_version"],
        "shadow_version": scores.attrs["shadow_version"] if scores.attrs["shadow_version"] is not None else "none",
        "mean_champion_score": float(scores["champion_score"].mean()),
        "shadow_gates": json_md(scores.attrs["shadow_gates"]),
    }
    if "shadow_score" in scores.columns:
        meta["mean_shadow_score"] = float(scores["shadow_score"].mean())
    return Output(scores, metadata=meta)


@asset(
    partitions_def=BATCHES,
    group_name=GROUP,
    code_version=CODE_VERSION,
    kinds={"numpy"},
    owners=["team:model-risk"],
    description="Data drift of the batch's 14 input columns and prediction drift of the champion's scores, against "
    "the champion's training data (reference profile built once per reference md5). Tests and "
    "thresholds come from the policy's `drift` section; dataset drift = drifted share >= "
    "dataset_drift_share. A judged dataset drift is a breach: alerted and picked up by "
    "retrain_on_breach_sensor.",
)
def batch_drift(
    context: AssetExecutionContext, mlgov: MlgovResource, batch_data: pd.DataFrame, batch_scores: pd.DataFrame
) -> Output[dict]:
    from mlgov_assets.core.monitoring.service import assess_drift

    result = assess_drift(mlgov.settings(), mlgov.policy(), mlgov.registry(), batch_data, batch_scores, log=context.log)
    cols = [
        {k: c.get(k) for k in ("column", "type", "method", "statistic", "threshold", "verdict", "psi")}
        for c in result["report"]["columns"]
        + ([result["report"]["prediction"]] if result["report"]["prediction"] else [])
    ]
    ref = result["reference"]
    return Output(
        result,
        metadata={
            "verdict": result["verdict"],
            "breach": result["breach"],
            "drifted_share": float(result["drifted_share"]),
            "drifted_columns": ", ".join(result["drifted_columns"]) or "none",
            "prediction_drift": str(result["prediction_verdict"]),
            "champion_version": result["champion_version"],
            "reference_path": ref["path"],
            "reference_md5": ref["md5"],
            "reference_fingerprint": ref["fingerprint"],
            "columns": rows_table(cols),
            "engine_seconds": float(result["elapsed_s"]),
        },
    )


@asset_check(
    asset=batch_drift,
    partitions_def=BATCHES,
    description="No dataset drift under the policy (a breach triggers retraining; WARN, not blocking).",
)
def check_batch_drift_within_policy(batch_drift: dict) -> AssetCheckResult:
    return AssetCheckResult(
        passed=not batch_drift["breach"],
        severity=AssetCheckSeverity.WARN,
        description=(
            f"{batch_drift['verdict']}: {batch_drift['n_drifted']}/{batch_drift['n_columns']} columns drifted"
            + (f" ({', '.join(batch_drift['drifted_columns'])})" if batch_drift["drifted_columns"] else "")
            + (f"; {batch_drift['reason']}" if batch_drift.get("reason") else "")
        ),
        metadata={
            "drifted_share": float(batch_drift["drifted_share"]),
            "threshold_share": float(batch_drift["report"]["thresholds"]["dataset_drift_share"]),
            "policy_sha256": batch_drift["policy_sha256"],
        },
    )


@asset(
    partitions_def=BATCHES,
    group_name=GROUP,
    code_version=CODE_VERSION,
    kinds={"evidently", "mlflow"},
    owners=["team:model-risk"],
    description="Evidently DataDriftPreset HTML report for people (the policy's tests and thresholds, both sides "
    "sampled to a bounded number of rows), logged to MLflow (experiment `monitoring`) next to the "
    "engine's full report; the verdict itself comes from batch_drift.",
)
def batch_drift_report(
    context: AssetExecutionContext, mlgov: MlgovResource, batch_data: pd.DataFrame, batch_drift: dict
) -> Output[dict]:
    from mlgov_assets.core.monitoring.service import evidently_report

    info = evidently_report(
        mlgov.settings(), mlgov.policy(), mlgov.registry(), batch_data, batch_drift, dagster_run_id=context.run_id
    )
    url = f"{MLFLOW_UI}/#/experiments/{info['mlflow_experiment_id']}/runs/{info['mlflow_run_id']}"
    return Output(
        {k: v for k, v in info.items() if k != "evidently"} | {"evidently_columns": info["evidently"]},
        metadata={
            "evidently_html": MetadataValue.path(info["html_path"]),
            "mlflow_run": MetadataValue.url(url),
            "mlflow_run_id": info["mlflow_run_id"],
            "sampled_rows": json_md(info["sampled_rows"]),
            "agreement_with_engine": json_md(info["agreement"]),
            "evidently_seconds": float(info["elapsed_s"]),
        },
    )


@asset(
    partitions_def=BATCHES,
    group_name=GROUP,
    code_version=CODE_VERSION,
    kinds={"numpy"},
    owners=["team:model-risk"],
    description="Once labels exist (an `income` column in the batch, or `<batch_id>.labels.csv` landing later): "
    "accuracy, precision, recall, ROC AUC of champion and shadow, the breach verdict against the "
    "champion's holdout metrics (policy monitoring.performance_tolerance), concept-drift evidence and "
    "McNemar's paired test champion vs shadow (a recommendation; it never promotes).",
)
def batch_performance(
    context: AssetExecutionContext, mlgov: MlgovResource, batch_data: pd.DataFrame, batch_scores: pd.DataFrame
) -> Output[dict]:
    from mlgov_assets.core.monitoring.service import assess_performance

    perf = assess_performance(
        mlgov.settings(), mlgov.policy(), mlgov.registry(), batch_data, batch_scores, log=context.log
    )
    meta = {"status": perf["status"], "labelled_rows": perf["n_labelled"], "breach": perf["breach"]}
    if perf["labelled"]:
        table = [
            {"model": who, **{k: perf[who].get(k) for k in ("accuracy", "precision", "recall", "roc_auc")}}
            for who in ("champion", "shadow")
            if who in perf
        ]
        meta.update(metrics=rows_table(table), comparison=json_md(perf["comparison"]), concept=json_md(perf["concept"]))
        meta.update(
            {
                f"champion/{k}": float(v)
                for k, v in perf["champion"].items()
                if k in ("accuracy", "roc_auc") and v is not None
            }
        )
        if "mcnemar" in perf:
            meta["mcnemar"] = perf["mcnemar"]["recommendation"]
    return Output(perf, metadata=meta)


@asset_check(
    asset=batch_performance,
    partitions_def=BATCHES,
    description="Champion performance within the policy's tolerance of its holdout metrics (WARN; a breach "
    "triggers retraining). Passes while labels are awaited.",
)
def check_batch_performance_within_tolerance(batch_performance: dict) -> AssetCheckResult:
    p = batch_performance
    if not p["labelled"]:
        desc = "awaiting labels"
    else:
        desc = "; ".join(
            f"{m}: {r['current'] if r['current'] is None else round(r['current'], 4)} vs holdout "
            f"{r['reference'] if r['reference'] is None else round(r['reference'], 4)} (tolerance {r['tolerance']})"
            for m, r in p["comparison"].items()
        )
        desc = f"{p['status']}: {desc}" + (f"; {p['reason']}" if p.get("reason") else "")
    return AssetCheckResult(
        passed=not p["breach"],
        severity=AssetCheckSeverity.WARN,
        description=desc,
        metadata={"labelled_rows": p["n_labelled"], "policy_sha256": p["policy_sha256"]},
    )


# --------------------------------------------------------------------------- scheduled assets


@asset(
    group_name=GROUP,
    code_version=CODE_VERSION,
    kinds={"pandas"},
    owners=["team:model-risk"],
    description="Drift and performance over the last N batches (policy monitoring.summary_last_n_batches): "
    "verdict per batch, drift rate, most drifted columns, retraining requests, alerts.",
)
def monitoring_summary(context: AssetExecutionContext, mlgov: MlgovResource) -> Output[dict]:
    from mlgov_assets.core.monitoring.service import monitoring_summary as summarize

    summary = summarize(mlgov.settings(), mlgov.policy().monitoring.summary_last_n_batches)
    counts = summary["counts"]
    context.log.info(f"monitoring summary: {json.dumps(counts)}")
    return Output(
        summary,
        metadata={
            **{f"count/{k}": v for k, v in counts.items()},
            "drift_rate": summary["drift_rate"] if summary["drift_rate"] is not None else "n/a",
            "batches": rows_table(summary["batches"]),
            "most_drifted_columns": json_md(summary["most_drifted_columns"]),
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
def champion_reevaluation(context: AssetExecutionContext, mlgov: MlgovResource):
    from mlgov_assets.core.monitoring.service import reevaluate_champion

    result = reevaluate_champion(
        mlgov.settings(),
        mlgov.policy(),
        mlgov.registry(),
        actor=f"{getpass.getuser()} (dagster run {context.run_id[:8]})",
        holdout_rel=HOLDOUT_FILE,
        dagster_run_id=context.run_id,
        log=context.log,
    )
    yield Output(
        result,
        metadata={
            "champion": str(result["champion"]),
            "passed": result["passed"],
            "summary": result["summary"],
            "evidence": json_md(result),
        },
    )
    yield AssetCheckResult(
        check_name="check_champion_reevaluation_meets_policy",
        passed=bool(result["passed"]),
        severity=AssetCheckSeverity.ERROR,
        description=result["summary"],
        metadata={"policy_sha256": mlgov.policy().sha256},
    )


# --------------------------------------------------------------------------- jobs


BATCH_ASSETS = [batch_data, batch_scores, batch_drift, batch_performance, batch_drift_report]
monitor_batch_job = define_asset_job(
    "monitor_batch",
    selection=AssetSelection.assets(*BATCH_ASSETS),
    partitions_def=BATCHES,
    description="Everything for one landed batch: validate (quarantine if invalid), score (+ shadow), drift, "
    "performance, Evidently report.",
    tags={"mlgov/stage": "monitoring"},
)
batch_labels_job = define_asset_job(
    "batch_labels",
    selection=AssetSelection.assets(batch_performance),
    partitions_def=BATCHES,
    description="Delayed labels for a batch: recompute only its performance.",
    tags={"mlgov/stage": "monitoring"},
)
summary_job = define_asset_job(
    "daily_monitoring_summary",
    selection=AssetSelection.assets(monitoring_summary),
    description="The monitoring summary over the last N batches.",
)
reevaluation_job = define_asset_job(
    "reevaluate_champion",
    selection=AssetSelection.assets(champion_reevaluation),
    description="Re-evaluate the champion against the current policy.",
)


# --------------------------------------------------------------------------- sensors


def _run_exists(instance, run_key: str) -> bool:
    return bool(instance.get_runs(filters=RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1))


@sensor(
    name="batch_landing_sensor",
    jobs=[monitor_batch_job, batch_labels_job],
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING,
    description="Scans the landing folder: each new batch file (CSV/Parquet, allow-listed id) becomes a `batches` "
    "partition and a monitor_batch run; `<batch_id>.labels.csv` arriving later runs batch_labels. "
    "Same file again -> nothing (cursor + run key).",
)
def batch_landing_sensor(context: SensorEvaluationContext, mlgov: MlgovResource):
    from mlgov_assets.core.monitoring.service import BatchLedger, MonitoringPaths, plan_landing

    s = mlgov.settings()
    seen = json.loads(context.cursor) if context.cursor else {}
    plan = plan_landing(s.landing_dir, BatchLedger(MonitoringPaths.of(s)), seen, settle_seconds=LANDING_SETTLE_SECONDS)
    for name, why in plan.refused:
        context.log.warning(f"landing folder: {name} refused: {why}")
    for name, why in plan.waiting:
        context.log.info(f"landing folder: {name} waits: {why}")
    requests = [
        RunRequest(
            run_key=f.run_key,
            job_name="monitor_batch",
            partition_key=f.batch_id,
            tags={"mlgov/trigger": "batch_landing_sensor", "mlgov/batch_file": f.name},
        )
        for f in plan.new_batches
    ]
    requests += [
        RunRequest(
            run_key=f.run_key,
            job_name="batch_labels",
            partition_key=f.batch_id,
            tags={"mlgov/trigger": "batch_landing_sensor", "mlgov/labels_file": f.name},
        )
        for f in plan.new_labels
    ]
    new_ids = sorted(
        {f.batch_id for f in plan.new_batches if not context.instance.has_dynamic_partition(BATCHES.name, f.batch_id)}
    )
    cursor = json.dumps(plan.seen, sort_keys=True)
    if not requests:
        return SensorResult(skip_reason=f"no new batch or labels file in {s.landing_dir}", cursor=cursor)
    return SensorResult(
        run_requests=requests,
        cursor=cursor,
        dynamic_partitions_requests=[BATCHES.build_add_request(new_ids)] if new_ids else [],
    )


@sensor(
    name="retrain_on_breach_sensor",
    job_name="governed_training",
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING,
    description="Turns a drift or performance breach (policy monitoring.retrain_on) into one governed_training "
    "run on a new DVC-versioned dataset (reference + labelled batches), with the champion's "
    "hyperparameters. The run key comes from the evidence: ticks and daemon restarts launch it once.",
)
def retrain_on_breach_sensor(context: SensorEvaluationContext, mlgov: MlgovResource):
    from mlgov_assets.core.monitoring.service import service as mon

    s, policy = mlgov.settings(), mlgov.policy()
    paths = mon.MonitoringPaths.of(s)
    if not any(mon.breach_reasons(e, list(policy.monitoring.retrain_on)) for e in mon.BatchLedger(paths).entries()):
        return SensorResult(skip_reason="no drift or performance breach recorded", cursor=context.cursor)
    emitted = set(json.loads(context.cursor)) if context.cursor else set()
    registry = mlgov.registry()
    champion = registry.champion_version()
    pending = mon.unlaunched_requests(
        mon.read_retrain_requests(paths), champion, lambda key: _run_exists(context.instance, key), skip=emitted
    )
    decision, record = mon.request_retraining(
        s,
        policy,
        registry,
        has_run=lambda key: key in emitted or _run_exists(context.instance, key),
        trigger="retrain_on_breach_sensor",
        log=context.log,
    )
    records = pending + ([record] if record else [])
    requests = [RunRequest(run_key=r["run_key"], run_config=r["run_config"], tags=r["tags"]) for r in records]
    cursor = json.dumps(sorted(emitted | {r.run_key for r in requests})[-500:])
    if not requests:
        return SensorResult(skip_reason=decision.message, cursor=cursor)
    context.log.warning(f"retraining requested: {[r['run_key'] for r in records]} ({decision.message})")
    return SensorResult(run_requests=requests, cursor=cursor)


# --------------------------------------------------------------------------- schedules
# Both RUNNING by default: the summary is read-only and takes well under a second; the
# re-evaluation writes governance records only when a verdict or the policy changed. A champion
# silently out of policy is exactly what nobody remembers to switch a schedule on for.

daily_summary_schedule = ScheduleDefinition(
    name="daily_monitoring_summary_schedule",
    job=summary_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Daily monitoring summary (06:00 UTC).",
)
champion_reevaluation_schedule = ScheduleDefinition(
    name="champion_reevaluation_schedule",
    job=reevaluation_job,
    cron_schedule="30 5 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Daily re-evaluation of the champion against the current policy (05:30 UTC).",
)


ASSETS = [*BATCH_ASSETS, monitoring_summary, champion_reevaluation]
CHECKS = [check_batch_data_schema, check_batch_drift_within_policy, check_batch_performance_within_tolerance]
JOBS = [monitor_batch_job, batch_labels_job, summary_job, reevaluation_job]
SENSORS = [batch_landing_sensor, retrain_on_breach_sensor]
SCHEDULES = [daily_summary_schedule, champion_reevaluation_schedule]
