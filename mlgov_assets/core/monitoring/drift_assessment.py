"""Drift of one batch against the champion's training data, judged by the policy and recorded."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.monitoring.alerts import raise_alert
from mlgov_assets.core.monitoring.batch_values import AcceptedBatch, PredictionDrift, ScoredBatch
from mlgov_assets.core.monitoring.drift import DriftReport, compute_drift, compute_prediction_drift
from mlgov_assets.core.monitoring.ledger import (
    ASSESSED,
    SCORED,
    BatchLedger,
    Log,
    MonitoringError,
    MonitoringPaths,
    jsonable,
)
from mlgov_assets.core.monitoring.reference import (
    ReferenceRecord,
    champion_reference,
    profile_with_champion,
    reference_profile,
    typed_for_drift,
)
from mlgov_assets.core.monitoring.scoring import load_verified, score_batch

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
    *,
    log: Log | None = None,
) -> DriftAssessment:
    """Data drift of a validated batch's input columns against the current champion's training data,
    before the batch is scored: the verdict needs the rows and the reference profile only. A judged
    dataset drift is a breach: recorded in the ledger (status ``assessed``, the champion judged
    against; the retraining sensor reads it) and alerted. Prediction drift needs the champion's
    scores: :func:`score_and_assess_predictions` adds it after scoring. An invalid batch is refused."""
    batch_id = batch.intake.batch_id
    if not batch.intake.valid:
        raise MonitoringError(f"refusing to assess drift of batch {batch_id}: it failed validation (quarantined)")
    champion = registry.champion_version()
    if champion is None:
        raise MonitoringError("no champion yet: train one (`mlgov train` or Materialize all) before monitoring batches")
    paths = MonitoringPaths.of(settings)
    ref = champion_reference(settings, registry.version_info(champion))
    data_profile, meta = reference_profile(project, paths, ref, bins=policy.drift.bins)
    report = compute_drift(data_profile, typed_for_drift(project, batch.frame), policy.drift)
    verdict = drift_verdict(report, len(batch.frame), policy.monitoring.min_batch_rows)
    reference = ReferenceRecord.of(ref, meta, data_profile.fingerprint)
    ledger = BatchLedger(paths)
    before = ledger.get(batch_id) or {}
    # judged again after it was scored by the same champion (a re-executed step): still scored
    rescored = before.get("status") == SCORED and before.get("champion_version") == champion
    ledger.update(
        batch_id,
        status=SCORED if rescored else ASSESSED,
        champion_version=int(champion),
        drift=verdict.model_dump(),
        reference=reference.model_dump(),
        policy_sha256=policy.sha256,
    )
    if verdict.breach:
        raise_alert(
            paths,
            "dataset_drift",
            f"batch {batch_id}: dataset drift vs the champion v{champion}'s training data: "
            f"{report.n_drifted}/{report.n_columns} columns drifted ({', '.join(report.drifted_columns)})",
            batch_id=batch_id,
            identity={"champion": champion, "reference": data_profile.fingerprint},
            webhook_url=policy.monitoring.webhook_url,
            log=log,
            evidence={"drift": verdict.model_dump(), "reference": reference.model_dump()},
        )
    return DriftAssessment(
        **verdict.model_dump(),
        batch_id=batch_id,
        champion_version=int(champion),
        reference=reference,
        policy_sha256=policy.sha256,
        report=report.to_dict(),
    )


def score_and_assess_predictions(
    settings: Settings,
    project: Project,
    policy: Policy,
    registry: Registry,
    batch: AcceptedBatch,
    drift: DriftAssessment,
    *,
    webhook_url: str | None = None,
    log: Log | None = None,
) -> ScoredBatch:
    """Score the batch with the champion its drift verdict was judged against (and the shadow), then
    judge the prediction drift of the champion's scores against its scores on the same reference
    (the champion's model is loaded, verified, once for both). The prediction verdict is kept with
    the scores and added to the batch's drift record in the ledger; it does not decide a breach
    (the policy's ``dataset_drift`` is the covariate verdict, recorded before scoring)."""
    if drift.batch_id != batch.intake.batch_id:
        raise MonitoringError(f"drift of batch {drift.batch_id} does not belong to batch {batch.intake.batch_id}")
    load = functools.cache(functools.partial(load_verified, registry))
    scored = score_batch(
        settings,
        project,
        registry,
        batch,
        champion=drift.champion_version,
        load_model=load,
        webhook_url=webhook_url,
        log=log,
    )
    paths = MonitoringPaths.of(settings)
    ref = drift.reference.located()
    data_profile, _ = reference_profile(project, paths, ref, bins=policy.drift.bins)
    profile = profile_with_champion(project, paths, ref, data_profile, champion=drift.champion_version, load_model=load)
    row = compute_prediction_drift(profile, scored.frame["champion_score"].to_numpy(), policy.drift)
    psi = None if row.psi is None else float(row.psi)
    pred = PredictionDrift(verdict=row.verdict, psi=psi, column=jsonable(row.to_dict()))
    ledger = BatchLedger(paths)
    recorded = (ledger.get(drift.batch_id) or {}).get("drift") or DriftVerdict.model_validate(
        drift.model_dump(include=set(DriftVerdict.model_fields))
    ).model_dump()
    ledger.update(drift.batch_id, drift={**recorded, "prediction_verdict": pred.verdict, "prediction_psi": pred.psi})
    return replace(scored, scoring=scored.scoring.model_copy(update={"prediction_drift": pred}))


def prepare_champion_reference(
    settings: Settings, project: Project, policy: Policy, registry: Registry, version: int
) -> ReferenceRecord:
    """Build and store, when ``version`` becomes the champion, what its batches are judged against:
    the data profile of its training data (keyed by the md5 its ``mlgov.train_data_md5`` tag records,
    verified against the bytes) and its own scores on those rows (keyed by version and the data
    profile's fingerprint). Its first batch then finds both instead of building them before its
    drift verdict; a champion promoted without this (an older home) is still covered, the first batch
    builds what is missing."""
    paths = MonitoringPaths.of(settings)
    ref = champion_reference(settings, registry.version_info(version))
    data_profile, meta = reference_profile(project, paths, ref, bins=policy.drift.bins)
    load = functools.partial(load_verified, registry)
    profile_with_champion(project, paths, ref, data_profile, champion=version, load_model=load)
    return ReferenceRecord.of(ref, meta, data_profile.fingerprint)
