"""Drift of one batch against the champion's training data, judged by the policy and recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.monitoring.alerts import raise_alert
from mlgov_assets.core.monitoring.batch_values import AcceptedBatch, ScoredBatch, batch_id_of
from mlgov_assets.core.monitoring.drift import DriftReport, compute_drift
from mlgov_assets.core.monitoring.ledger import BatchLedger, Log, MonitoringPaths
from mlgov_assets.core.monitoring.reference import (
    ReferenceRecord,
    champion_reference,
    profile_with_champion,
    reference_profile,
    typed_for_drift,
)
from mlgov_assets.core.monitoring.scoring import load_verified

if TYPE_CHECKING:
    from mlgov_assets.core.governance.policy import Policy
    from mlgov_assets.core.models.registry import Registry
    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.settings import Settings


class DriftVerdict(BaseModel):
    """The drift verdict of one batch, as the ledger keeps it (under ``drift``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    judged: bool
    verdict: str  # "ok" | "warn" | "drift" | "not judged"
    breach: bool
    dataset_drift: bool
    drifted_share: float
    n_drifted: int
    n_columns: int
    drifted_columns: list[str]
    warn_columns: list[str]
    prediction_verdict: str | None
    prediction_psi: float | None
    elapsed_s: float
    reason: str | None


class DriftAssessment(DriftVerdict):
    """The verdict with what it was judged against, and the engine's full report (JSON)."""

    batch_id: str
    champion_version: int
    reference: ReferenceRecord
    policy_sha256: str
    report: dict[str, Any]


def drift_verdict(report: DriftReport, n_rows: int, min_rows: int) -> DriftVerdict:
    """A batch smaller than ``min_rows`` (policy ``monitoring.min_batch_rows``) is reported, not judged."""
    judged = n_rows >= min_rows
    pred = report.prediction
    return DriftVerdict(
        judged=judged,
        verdict=report.verdict if judged else "not judged",
        breach=judged and report.dataset_drift,
        dataset_drift=report.dataset_drift,
        drifted_share=report.drifted_share,
        n_drifted=report.n_drifted,
        n_columns=report.n_columns,
        drifted_columns=report.drifted_columns,
        warn_columns=report.warn_columns,
        prediction_verdict=pred.verdict if pred else None,
        prediction_psi=pred.psi if pred else None,
        elapsed_s=report.elapsed_s,
        reason=None if judged else f"{n_rows} rows < monitoring.min_batch_rows ({min_rows})",
    )


def assess_drift(
    settings: Settings,
    project: Project,
    policy: Policy,
    registry: Registry,
    batch: AcceptedBatch,
    scores: ScoredBatch,
    *,
    log: Log | None = None,
) -> DriftAssessment:
    """Data drift on the project's input columns and prediction drift of the champion's scores, against the
    champion's training data. A judged dataset drift is a breach: recorded in the ledger (the
    retraining sensor reads it) and alerted."""
    paths = MonitoringPaths.of(settings)
    batch_id = batch_id_of(batch, scores)
    champion = scores.scoring.champion_version
    ref = champion_reference(settings, registry.version_info(champion))
    data_profile, meta = reference_profile(project, paths, ref, bins=policy.drift.bins)
    profile = profile_with_champion(
        project, paths, ref, data_profile, champion=champion, load_model=lambda v: load_verified(registry, v)
    )
    report = compute_drift(
        profile,
        typed_for_drift(project, batch.frame),
        policy.drift,
        current_prediction=scores.frame["champion_score"].to_numpy(),
    )
    verdict = drift_verdict(report, len(batch.frame), policy.monitoring.min_batch_rows)
    reference = ReferenceRecord.of(ref, meta, data_profile.fingerprint)
    BatchLedger(paths).update(
        batch_id,
        status="scored",
        drift=verdict.model_dump(),
        reference=reference.model_dump(),
        policy_sha256=policy.sha256,
    )
    if verdict.breach:
        raise_alert(
            paths,
            "dataset_drift",
            f"batch {batch_id}: dataset drift vs the champion v{champion}'s training data: "
            f"{report.n_drifted}/{report.n_columns} columns drifted ({', '.join(report.drifted_columns)}); "
            f"prediction drift {verdict.prediction_verdict}",
            batch_id=batch_id,
            identity={"champion": champion, "reference": data_profile.fingerprint},
            webhook_url=policy.monitoring.webhook_url,
            log=log,
            evidence={"drift": verdict.model_dump(), "reference": reference.model_dump()},
        )
    return DriftAssessment(
        **verdict.model_dump(),
        batch_id=batch_id,
        champion_version=champion,
        reference=reference,
        policy_sha256=policy.sha256,
        report=report.to_dict(),
    )
