"""Performance of a batch once labels exist: champion and shadow metrics, the breach verdict against
the champion's holdout metrics, concept-drift evidence and McNemar's paired test (never promotes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.monitoring.alerts import raise_alert
from mlgov_assets.core.monitoring.batch_values import AcceptedBatch, ScoredBatch, batch_id_of
from mlgov_assets.core.monitoring.batches import ROW_ID
from mlgov_assets.core.monitoring.labels import LabelInfo, record_labels
from mlgov_assets.core.monitoring.ledger import BatchLedger, Log, MonitoringPaths
from mlgov_assets.core.monitoring.metrics import (
    McNemar,
    MetricComparison,
    ModelMetrics,
    mcnemar_test,
    performance_breach,
    performance_metrics,
)

if TYPE_CHECKING:
    from mlgov_assets.core.governance.policy import Policy
    from mlgov_assets.core.models.registry import Registry
    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.settings import Settings

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class ConceptEvidence(BaseModel):
    """Label shift and calibration gap: whether P(y|x) moved, not only the inputs."""

    model_config = _FROZEN

    positive_rate: float
    reference_positive_rate: float | None
    label_shift: float | None
    mean_champion_score: float
    calibration_gap: float  # observed minus expected positive rate


class PerformanceReport(BaseModel):
    """Performance on the labelled rows of a batch (``labelled`` False: awaiting labels)."""

    model_config = _FROZEN

    labelled: bool
    n_labelled: int
    judged: bool
    breach: bool
    status: str  # "awaiting labels" | "not judged" | "ok" | "breach"
    breached_metrics: list[str] = []
    comparison: dict[str, MetricComparison] = {}
    reason: str | None = None
    champion: ModelMetrics | None = None
    shadow: ModelMetrics | None = None
    concept: ConceptEvidence | None = None
    mcnemar: McNemar | None = None


class PerformanceAssessment(PerformanceReport):
    """The report with the batch, champion, labels and policy it belongs to."""

    batch_id: str
    champion_version: int
    labels: LabelInfo
    policy_sha256: str


class HeadlineMetrics(BaseModel):
    model_config = _FROZEN

    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    roc_auc: float | None = None


class McNemarVerdict(BaseModel):
    model_config = _FROZEN

    p_value: float
    better: str
    significant: bool
    recommendation: str


class PerformanceVerdict(BaseModel):
    """The performance verdict as the ledger keeps it (under ``performance``)."""

    model_config = _FROZEN

    labelled: bool
    n_labelled: int
    judged: bool
    breach: bool
    breached_metrics: list[str]
    status: str
    reason: str | None
    champion: HeadlineMetrics
    shadow: HeadlineMetrics | None = None
    mcnemar: McNemarVerdict | None = None

    @classmethod
    def of(cls, perf: PerformanceReport) -> PerformanceVerdict:
        def headline(m: ModelMetrics | None) -> HeadlineMetrics:
            return HeadlineMetrics.model_validate(m.model_dump(include=set(HeadlineMetrics.model_fields)) if m else {})

        return cls(
            **perf.model_dump(include={"labelled", "n_labelled", "judged", "breach", "breached_metrics"}),
            status=perf.status,
            reason=perf.reason,
            champion=headline(perf.champion),
            shadow=headline(perf.shadow) if perf.shadow else None,
            mcnemar=McNemarVerdict.model_validate(perf.mcnemar.model_dump(include=set(McNemarVerdict.model_fields)))
            if perf.mcnemar
            else None,
        )


def _model_metrics(y: np.ndarray, scores: pd.DataFrame, who: str, mask: np.ndarray) -> ModelMetrics:
    ranked = performance_metrics(y, scores[f"{who}_score"].to_numpy()[mask])
    decided = performance_metrics(y, scores[f"{who}_decision"].to_numpy()[mask].astype(np.float64), 0.5)
    reasons = {k: v for k, v in decided.reasons.items() if k != "roc_auc"}
    if "roc_auc" in ranked.reasons:
        reasons["roc_auc"] = ranked.reasons["roc_auc"]
    fields = decided.model_dump(exclude={"threshold", "reasons", "roc_auc"})
    return ModelMetrics(**fields, roc_auc=ranked.roc_auc, reasons=reasons)


def _concept(yt: np.ndarray, champ: np.ndarray, reference_positive_rate: float | None) -> ConceptEvidence:
    positive_rate = float(yt.mean())
    return ConceptEvidence(
        positive_rate=positive_rate,
        reference_positive_rate=reference_positive_rate,
        label_shift=None if reference_positive_rate is None else positive_rate - reference_positive_rate,
        mean_champion_score=float(champ.mean()),
        calibration_gap=positive_rate - float(champ.mean()),
    )


def _mcnemar(yt: np.ndarray, scores: pd.DataFrame, mask: np.ndarray, alpha: float) -> McNemar:
    test = mcnemar_test(
        yt, scores["champion_decision"].to_numpy()[mask], scores["shadow_decision"].to_numpy()[mask], alpha=alpha
    )
    said = test.recommendation.replace("model a", "the champion").replace("model b", "the shadow")
    return test.model_copy(update={"recommendation": said})


def performance_report(
    y: pd.Series,
    scores: pd.DataFrame,
    *,
    champion_metrics: Mapping[str, float],
    tolerance: Mapping[str, float],
    min_rows: int,
    alpha: float,
    reference_positive_rate: float | None,
) -> PerformanceReport:
    """Metrics of champion (and shadow) on the labelled rows and the breach verdict against the
    champion's holdout metrics. Fewer than ``min_rows`` labelled rows: reported, not judged."""
    y = y.reindex(pd.Index(scores[ROW_ID].to_numpy()))
    mask = y.notna().to_numpy()
    n = int(mask.sum())
    if n == 0:
        return PerformanceReport(labelled=False, n_labelled=0, judged=False, breach=False, status="awaiting labels")
    yt = y.to_numpy()[mask].astype(int)
    champion = _model_metrics(yt, scores, "champion", mask)
    verdict = performance_breach(champion_metrics, champion, tolerance)
    judged = n >= min_rows
    breach = bool(judged and verdict.breach)
    has_shadow = "shadow_score" in scores.columns
    return PerformanceReport(
        labelled=True,
        n_labelled=n,
        judged=judged,
        breach=breach,
        status="breach" if breach else ("ok" if judged else "not judged"),
        breached_metrics=verdict.breached_metrics if judged else [],
        comparison=verdict.metrics,
        reason=None if judged else f"{n} labelled rows < monitoring.min_batch_rows ({min_rows})",
        champion=champion,
        shadow=_model_metrics(yt, scores, "shadow", mask) if has_shadow else None,
        concept=_concept(yt, scores["champion_score"].to_numpy()[mask], reference_positive_rate),
        mcnemar=_mcnemar(yt, scores, mask, alpha) if has_shadow else None,
    )


def assess_performance(
    settings: Settings,
    project: Project,
    policy: Policy,
    registry: Registry,
    batch: AcceptedBatch,
    scores: ScoredBatch,
    *,
    log: Log | None = None,
) -> PerformanceAssessment:
    """Performance of one batch once labels exist; records the labels for retraining, the verdict
    in the ledger, and alerts a breach. A labels file refused or held (:func:`record_labels`) adds
    no label: the verdict is the one the batch's recorded labels give, as before the file landed."""
    paths = MonitoringPaths.of(settings)
    ledger = BatchLedger(paths)
    batch_id = batch_id_of(batch, scores)
    champion = scores.scoring.champion_version
    y, info = record_labels(settings, project, batch_id, batch.frame, policy=policy, log=log)
    entry = ledger.get(batch_id) or {}
    perf = performance_report(
        y,
        scores.frame,
        champion_metrics=registry.version_info(champion).metrics,
        tolerance=policy.monitoring.performance_tolerance,
        min_rows=policy.monitoring.min_batch_rows,
        alpha=policy.drift.p_value,
        reference_positive_rate=(entry.get("reference") or {}).get("positive_rate"),
    )
    verdict = PerformanceVerdict.of(perf)
    ledger.update(batch_id, performance=verdict.model_dump())
    if perf.breach:
        raise_alert(
            paths,
            "performance_breach",
            f"batch {batch_id}: champion v{champion} performance dropped beyond tolerance on "
            f"{perf.n_labelled} labelled rows: {', '.join(perf.breached_metrics)}",
            batch_id=batch_id,
            identity={"champion": champion, "labels": info.file_md5 or info.inline},
            webhook_url=policy.monitoring.webhook_url,
            log=log,
            evidence={"performance": verdict.model_dump()},
        )
    return PerformanceAssessment(
        **perf.model_dump(), batch_id=batch_id, champion_version=champion, labels=info, policy_sha256=policy.sha256
    )
