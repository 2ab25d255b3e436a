"""The Evidently HTML drift report of a batch, for people, logged to MLflow beside the engine's report."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.monitoring.drift_assessment import DriftAssessment
from mlgov_assets.core.monitoring.ledger import nan_to_none, to_json
from mlgov_assets.core.monitoring.reference import DriftColumns, read_reference, typed_for_drift

if TYPE_CHECKING:
    from mlgov_assets.core.governance.policy import Policy
    from mlgov_assets.core.models.registry import Registry
    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.settings import Settings

#: Evidently is slow and memory-hungry at scale, so each side is sampled to at most this many rows
#: (seeded). The verdict comes from the engine on all rows.
EVIDENTLY_MAX_ROWS = 5000
MONITORING_EXPERIMENT = "monitoring"


class Agreement(BaseModel):
    """Drifted columns by Evidently vs the engine."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    same: list[str]
    only_evidently: list[str]
    only_engine: list[str]


class EvidentlyReport(BaseModel):
    """Where the HTML report is, what was sampled, and how Evidently's verdicts compare."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_id: str
    mlflow_run_id: str
    mlflow_experiment_id: str
    html_path: str
    sampled_rows: dict[str, int]
    elapsed_s: float
    evidently_drifted_columns: list[str]
    engine_drifted_columns: list[str]
    agreement: Agreement
    evidently: dict[str, dict[str, Any]]  # per column: drifted, status, method, threshold, score


def _sample(frame: pd.DataFrame, max_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    return frame.iloc[np.sort(rng.choice(len(frame), min(max_rows, len(frame)), replace=False))]


def evidently_report(
    settings: Settings,
    project: Project,
    policy: Policy,
    registry: Registry,
    batch: pd.DataFrame,
    drift: DriftAssessment,
    *,
    max_rows: int = EVIDENTLY_MAX_ROWS,
    seed: int = 0,
    dagster_run_id: str | None = None,
) -> EvidentlyReport:
    """Evidently's ``DataDriftPreset`` HTML for one batch with the policy's tests and thresholds, both
    sides sampled to ``max_rows``; logged to MLflow (experiment ``monitoring``, one run per batch)."""
    from mlgov_assets.core.monitoring.evidently_preset import (
        evidently_details_from_snapshot,
        evidently_options,
        evidently_snapshot,
    )

    ref = drift.reference.located()
    rng = np.random.default_rng(seed)
    columns = DriftColumns.of(project)
    ref_s = _sample(typed_for_drift(project, read_reference(project, ref)), max_rows, rng)
    cur_s = _sample(typed_for_drift(project, batch), max_rows, rng)
    t0 = time.perf_counter()
    snapshot = evidently_snapshot(ref_s, cur_s, columns.numeric, columns.categorical, **evidently_options(policy.drift))
    details = evidently_details_from_snapshot(snapshot, columns.all)
    elapsed = time.perf_counter() - t0
    ev_drifted = sorted(c for c, d in details.items() if d["drifted"])
    engine_drifted = sorted(drift.drifted_columns)
    run_id, exp_id, html = _log_to_mlflow(settings, policy, registry, drift, snapshot, len(ev_drifted), dagster_run_id)
    return EvidentlyReport(
        batch_id=drift.batch_id,
        mlflow_run_id=run_id,
        mlflow_experiment_id=exp_id,
        html_path=html,
        sampled_rows={"reference": len(ref_s), "current": len(cur_s)},
        elapsed_s=elapsed,
        evidently_drifted_columns=ev_drifted,
        engine_drifted_columns=engine_drifted,
        agreement=Agreement(
            same=sorted(set(ev_drifted) & set(engine_drifted)),
            only_evidently=sorted(set(ev_drifted) - set(engine_drifted)),
            only_engine=sorted(set(engine_drifted) - set(ev_drifted)),
        ),
        evidently=details,
    )


def _log_to_mlflow(
    settings: Settings,
    policy: Policy,
    registry: Registry,
    drift: DriftAssessment,
    snapshot: Any,
    n_evidently_drifted: int,
    dagster_run_id: str | None,
) -> tuple[str, str, str]:
    """One MLflow run per batch with the HTML and the engine's report; (run id, experiment id, html path)."""
    client = registry.client
    exp_id = _monitoring_experiment(client, settings)
    run = client.create_run(
        exp_id,
        run_name=f"batch {drift.batch_id}",
        tags={
            "mlgov.batch_id": drift.batch_id,
            "mlgov.champion_version": str(drift.champion_version),
            "mlgov.reference_md5": drift.reference.md5,
            "mlgov.dagster_run_id": dagster_run_id or "",
            "mlgov.policy_sha256": policy.sha256,
        },
    )
    run_id: str = run.info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "data_drift.html"
        snapshot.save_html(str(html))
        client.log_artifact(run_id, str(html), "evidently")
    engine_report = nan_to_none(drift.model_dump(mode="json"))
    client.log_text(run_id, to_json(engine_report, indent=1, sort_keys=True), "drift/engine_report.json")
    client.log_metric(run_id, "drifted_share", float(drift.drifted_share or 0.0))
    client.log_metric(run_id, "evidently_drifted_columns", float(n_evidently_drifted))
    client.set_terminated(run_id)
    artifact_dir = _uri_path(client.get_run(run_id).info.artifact_uri)
    return run_id, exp_id, str(artifact_dir / "evidently" / "data_drift.html")


def _monitoring_experiment(client: Any, settings: Settings) -> str:
    exp = client.get_experiment_by_name(MONITORING_EXPERIMENT)
    if exp is not None:
        return str(exp.experiment_id)
    try:
        return str(
            client.create_experiment(MONITORING_EXPERIMENT, artifact_location=settings.artifact_location("monitoring"))
        )
    except Exception:  # created concurrently by another run: read it back
        return str(client.get_experiment_by_name(MONITORING_EXPERIMENT).experiment_id)


def _uri_path(uri: str) -> Path:
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme in ("file", "") else Path(uri)
