"""Per-batch assets (partition key = batch id): ``batch_data`` [blocking schema gate; an invalid batch
is quarantined] -> ``batch_drift`` [data drift gate, WARN: the verdict the retraining sensor acts on,
judged before scoring] -> ``batch_scores`` (champion + shadow, and the prediction drift of the
champion's scores) -> ``batch_performance`` [tolerance gate, WARN]; ``batch_drift`` ->
``batch_drift_report`` (Evidently HTML in MLflow).

They are external assets (``AssetSpec``: in the lineage, never selected by the UI's "Materialize
all"): the per-batch op jobs in ``batch_job`` compute them with the functions below, store each value
where the IO manager keeps asset values and report an ``AssetMaterialization`` per batch, and the
check results of the checks defined here (defined so the UI lists them with their evidence; Dagster
1.13 cannot run a partitioned check of an external asset on its own). ``batch_data`` and
``batch_scores`` are tables with a typed description (``AcceptedBatch``, ``ScoredBatch``: Parquet plus
a JSON sidecar); the assessments are stored as JSON, each step storing its core result type dumped to
plain data."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    DagsterLogManager,
    MetadataValue,
    asset_check,
)

from mlgov_assets.core.monitoring.batch_values import AcceptedBatch, ScoredBatch

from ...resources import MlgovResource
from ..common import json_md, rows_table, table_metadata
from .shared import BATCHES, CHAMPION, CODE_VERSION, GROUP, webhook


def _spec(name: str, deps: Sequence[str | AssetKey], kinds: set[str], owner: str, description: str) -> AssetSpec:
    return AssetSpec(
        name,
        deps=deps,
        partitions_def=BATCHES,
        group_name=GROUP,
        code_version=CODE_VERSION,
        kinds=kinds,
        owners=[owner],
        description=description + " Computed per landed batch by the monitor_batch job (landing sensor).",
    )


SPECS = [
    _spec(
        "batch_data",
        [],
        {"pandas", "pandera"},
        "team:ml-platform",
        "A production batch from the landing folder, through the batch schema generated from the project spec "
        "(labels optional). An invalid batch is moved to $MLGOV_HOME/monitoring/quarantine/<batch_id>/ with its "
        "failure report, alerted, and stopped by the blocking schema check: it is never scored.",
    ),
    _spec(
        "batch_drift",
        ["batch_data", CHAMPION],
        {"numpy"},
        "team:model-risk",
        "Data drift of the batch's input columns (the spec's, less target and row id) against the champion's "
        "training data (reference profile built when the champion is promoted, else by its first batch; per "
        "reference md5), judged before the batch is scored. Tests and thresholds come from the policy's `drift` "
        "section; dataset drift = drifted share >= dataset_drift_share. A judged dataset drift is a breach: "
        "alerted and picked up by retrain_on_breach_sensor. Prediction drift is judged with the scores.",
    ),
    _spec(
        "batch_scores",
        ["batch_data", "batch_drift", CHAMPION],
        {"scikit-learn", "mlflow"},
        "team:ml-platform",
        "P(favourable outcome) per row from the champion the drift verdict was judged against and, in shadow, "
        "from the latest challenger (the most recent registered version that is not the champion). Models load "
        "only via Registry.load_model, which verifies every artifact's sha256. Also the prediction drift of the "
        "champion's scores against its scores on its training data (PSI; recorded, not a breach).",
    ),
    _spec(
        "batch_drift_report",
        ["batch_data", "batch_drift"],
        {"evidently", "mlflow"},
        "team:model-risk",
        "Evidently DataDriftPreset HTML report for people (the policy's tests and thresholds, both sides sampled "
        "to a bounded number of rows), logged to MLflow (experiment `monitoring`) next to the engine's full "
        "report; the verdict itself comes from batch_drift.",
    ),
    _spec(
        "batch_performance",
        ["batch_data", "batch_scores"],
        {"numpy"},
        "team:model-risk",
        "Once labels exist (the spec's label column in the batch, or `<batch_id>.labels.csv` landing later): "
        "accuracy, precision, recall, ROC AUC of champion and shadow, the breach verdict against the champion's "
        "holdout metrics (policy monitoring.performance_tolerance), concept-drift evidence and McNemar's paired "
        "test champion vs shadow (a recommendation; it never promotes).",
    ),
]


@dataclass(frozen=True)
class Produced:
    """One batch asset's value for a batch, the metadata of its materialization and its checks' results."""

    value: Any
    metadata: dict[str, Any]
    data_version: str | None = None
    checks: dict[str, AssetCheckResult] = field(default_factory=dict)


def compute_batch_data(mlgov: MlgovResource, batch_id: str, log: DagsterLogManager) -> Produced:
    from mlgov_assets.core.monitoring.intake import accept_batch
    from mlgov_assets.core.monitoring.quarantine import quarantine_on_failure

    policy, hook = mlgov.policy(), webhook(mlgov)
    caps = policy.ingestion
    with quarantine_on_failure(mlgov.settings(), batch_id, "intake", limits=caps, webhook_url=hook):
        acc = accept_batch(mlgov.settings(), mlgov.project(), batch_id, policy=policy, webhook_url=hook, log=log)
    intake = acc.intake
    meta = {
        **table_metadata(acc.frame),
        "source": intake.source,
        "md5": intake.md5,
        "valid": intake.valid,
        "validation": intake.summary[:2000],
    }
    if intake.quarantine_dir is not None:
        meta["quarantine_dir"] = MetadataValue.path(str(intake.quarantine_dir))
    return Produced(acc, meta, intake.md5, {"check_batch_data_schema": schema_result(acc)})


def schema_result(batch_data: AcceptedBatch) -> AssetCheckResult:
    intake = batch_data.intake
    report = intake.validation
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
    meta: dict[str, Any] = {
        "source": intake.source,
        "md5": intake.md5,
        "rules_failed": len(rows),
        "failures": rows_table(rows),
        "evidence": json_md(report),
    }
    if intake.quarantine_dir is not None:
        meta["quarantine_dir"] = MetadataValue.path(str(intake.quarantine_dir))
    return AssetCheckResult(
        passed=intake.valid,
        severity=AssetCheckSeverity.ERROR,
        description=intake.summary[:2000],
        metadata=meta,
    )


@asset_check(
    asset=AssetKey("batch_data"),
    blocking=True,
    partitions_def=BATCHES,
    description="The project's Pandera batch schema on the batch (types, ranges, the spec's categories, "
    "label set if present). Failing batches are quarantined and never scored.",
)
def check_batch_data_schema(batch_data: AcceptedBatch) -> AssetCheckResult:
    return schema_result(batch_data)


def compute_batch_scores(
    mlgov: MlgovResource,
    batch_id: str,
    log: DagsterLogManager,
    batch_data: AcceptedBatch,
    batch_drift: dict[str, Any],
) -> Produced:
    from mlgov_assets.core.monitoring.drift_assessment import DriftAssessment, score_and_assess_predictions
    from mlgov_assets.core.monitoring.quarantine import quarantine_on_failure

    policy = mlgov.policy()
    drift = DriftAssessment.model_validate(batch_drift)
    caps, hook = policy.ingestion, webhook(mlgov)
    with quarantine_on_failure(mlgov.settings(), batch_id, "scoring", limits=caps, webhook_url=hook):
        scored = score_and_assess_predictions(
            mlgov.settings(),
            mlgov.project(),
            policy,
            mlgov.registry(),
            batch_data,
            drift,
            webhook_url=hook,
            log=log,
        )
    scores, info = scored.frame, scored.scoring
    pred = info.prediction_drift
    meta = {
        "rows": len(scores),
        "champion_version": info.champion_version,
        "shadow_version": info.shadow_version if info.shadow_version is not None else "none",
        "mean_champion_score": float(scores["champion_score"].mean()),
        "shadow_gates": json_md(info.shadow_gates),
        "prediction_drift": pred.verdict if pred is not None else "none",
    }
    if pred is not None and pred.psi is not None:
        meta["prediction_psi"] = float(pred.psi)
    if "shadow_score" in scores.columns:
        meta["mean_shadow_score"] = float(scores["shadow_score"].mean())
    return Produced(scored, meta)


def compute_batch_drift(
    mlgov: MlgovResource, batch_id: str, log: DagsterLogManager, batch_data: AcceptedBatch
) -> Produced:
    from mlgov_assets.core.monitoring.drift_assessment import assess_drift
    from mlgov_assets.core.monitoring.quarantine import quarantine_on_failure

    caps = mlgov.policy().ingestion
    with quarantine_on_failure(mlgov.settings(), batch_id, "drift", limits=caps, webhook_url=webhook(mlgov)):
        result = assess_drift(mlgov.settings(), mlgov.project(), mlgov.policy(), mlgov.registry(), batch_data, log=log)
    report = result.report
    cols = [
        {k: c.get(k) for k in ("column", "type", "method", "statistic", "threshold", "verdict", "psi")}
        for c in report["columns"] + ([report["prediction"]] if report["prediction"] else [])
    ]
    value = result.model_dump(mode="json")
    meta = {
        "verdict": result.verdict,
        "breach": result.breach,
        "drifted_share": float(result.drifted_share),
        "drifted_columns": ", ".join(result.drifted_columns) or "none",
        "champion_version": result.champion_version,
        "reference_path": result.reference.path,
        "reference_md5": result.reference.md5,
        "reference_fingerprint": result.reference.fingerprint,
        "columns": rows_table(cols),
        "engine_seconds": float(result.elapsed_s),
    }
    return Produced(value, meta, checks={"check_batch_drift_within_policy": drift_result(value)})


def drift_result(batch_drift: dict[str, Any]) -> AssetCheckResult:
    from mlgov_assets.core.monitoring.drift_assessment import DriftAssessment

    d = DriftAssessment.model_validate(batch_drift)
    return AssetCheckResult(
        passed=not d.breach,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"{d.verdict}: {d.n_drifted}/{d.n_columns} columns drifted"
            + (f" ({', '.join(d.drifted_columns)})" if d.drifted_columns else "")
            + (f"; {d.reason}" if d.reason else "")
        ),
        metadata={
            "drifted_share": float(d.drifted_share),
            "threshold_share": float(d.report["thresholds"]["dataset_drift_share"]),
            "policy_sha256": d.policy_sha256,
        },
    )


@asset_check(
    asset=AssetKey("batch_drift"),
    partitions_def=BATCHES,
    description="No dataset drift under the policy (a breach triggers retraining; WARN, not blocking).",
)
def check_batch_drift_within_policy(batch_drift: dict[str, Any]) -> AssetCheckResult:
    return drift_result(batch_drift)


def compute_batch_drift_report(
    mlgov: MlgovResource, batch_data: AcceptedBatch, batch_drift: dict[str, Any], *, run_id: str
) -> Produced:
    from mlgov_assets.core.monitoring.drift_assessment import DriftAssessment
    from mlgov_assets.core.monitoring.drift_report import evidently_report

    settings = mlgov.settings()
    drift = DriftAssessment.model_validate(batch_drift)
    info = evidently_report(
        settings, mlgov.project(), mlgov.policy(), mlgov.registry(), batch_data.frame, drift, dagster_run_id=run_id
    )
    url = f"{settings.mlflow_ui_url.rstrip('/')}/#/experiments/{info.mlflow_experiment_id}/runs/{info.mlflow_run_id}"
    value = info.model_dump(mode="json", exclude={"evidently"}) | {"evidently_columns": info.evidently}
    meta = {
        "evidently_html": MetadataValue.path(info.html_path),
        "mlflow_run": MetadataValue.url(url),
        "mlflow_run_id": info.mlflow_run_id,
        "sampled_rows": json_md(info.sampled_rows),
        "agreement_with_engine": json_md(info.agreement.model_dump()),
        "evidently_seconds": float(info.elapsed_s),
    }
    return Produced(value, meta)


def compute_batch_performance(
    mlgov: MlgovResource, log: DagsterLogManager, batch_data: AcceptedBatch, batch_scores: ScoredBatch
) -> Produced:
    from mlgov_assets.core.monitoring.performance import assess_performance

    perf = assess_performance(
        mlgov.settings(), mlgov.project(), mlgov.policy(), mlgov.registry(), batch_data, batch_scores, log=log
    )
    meta: dict[str, Any] = {"status": perf.status, "labelled_rows": perf.n_labelled, "breach": perf.breach}
    if perf.champion is not None:
        models = [("champion", perf.champion), ("shadow", perf.shadow)]
        table = [
            {"model": who, **m.model_dump(include={"accuracy", "precision", "recall", "roc_auc"})}
            for who, m in models
            if m is not None
        ]
        comparison = {k: v.model_dump() for k, v in perf.comparison.items()}
        concept = perf.concept.model_dump() if perf.concept else None
        meta.update(metrics=rows_table(table), comparison=json_md(comparison), concept=json_md(concept))
        for k in ("accuracy", "roc_auc"):
            if getattr(perf.champion, k) is not None:
                meta[f"champion/{k}"] = float(getattr(perf.champion, k))
        if perf.mcnemar is not None:
            meta["mcnemar"] = perf.mcnemar.recommendation
    value = perf.model_dump(mode="json")
    return Produced(value, meta, checks={"check_batch_performance_within_tolerance": performance_result(value)})


def performance_result(batch_performance: dict[str, Any]) -> AssetCheckResult:
    from mlgov_assets.core.monitoring.performance import PerformanceAssessment

    p = PerformanceAssessment.model_validate(batch_performance)
    desc = "awaiting labels"
    if p.labelled:
        desc = "; ".join(
            f"{m}: {r.current if r.current is None else round(r.current, 4)} vs holdout "
            f"{r.reference if r.reference is None else round(r.reference, 4)} (tolerance {r.tolerance})"
            for m, r in p.comparison.items()
        )
        desc = f"{p.status}: {desc}" + (f"; {p.reason}" if p.reason else "")
    return AssetCheckResult(
        passed=not p.breach,
        severity=AssetCheckSeverity.WARN,
        description=desc,
        metadata={"labelled_rows": p.n_labelled, "policy_sha256": p.policy_sha256},
    )


@asset_check(
    asset=AssetKey("batch_performance"),
    partitions_def=BATCHES,
    description="Champion performance within the policy's tolerance of its holdout metrics (WARN; a breach "
    "triggers retraining). Passes while labels are awaited.",
)
def check_batch_performance_within_tolerance(batch_performance: dict[str, Any]) -> AssetCheckResult:
    return performance_result(batch_performance)


#: The batch assets as definitions without a computation (external: the op jobs report them).
BATCH_ASSETS = [AssetsDefinition(specs=[spec]) for spec in SPECS]
BATCH_CHECKS = [check_batch_data_schema, check_batch_drift_within_policy, check_batch_performance_within_tolerance]
