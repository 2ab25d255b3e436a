"""Read-only views of the ledger: the periodic summary and the compact status for ``mlgov status``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.monitoring.ledger import BatchLedger, LedgerEntry, MonitoringPaths, read_jsonl, utc_now
from mlgov_assets.core.monitoring.retraining import RetrainRequest, read_retrain_requests

if TYPE_CHECKING:
    from mlgov_assets.core.settings import Settings

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class SummaryWindow(BaseModel):
    model_config = _FROZEN

    last_n: int
    batches: int
    since: str


class SummaryCounts(BaseModel):
    model_config = _FROZEN

    batches: int
    quarantined: int
    dataset_drift: int
    labelled: int
    performance_breach: int
    retraining_requests: int
    alerts: int


class SummaryRow(BaseModel):
    """One batch in the summary table."""

    model_config = _FROZEN

    batch_id: str | None
    landed_at: str | None
    rows: int | None
    status: str | None
    champion: int | None
    drift: str | None
    drifted_share: float | None
    prediction_drift: str | None
    labelled: int
    accuracy: float | None
    roc_auc: float | None
    performance: str


class RetrainingRef(BaseModel):
    """A retraining request, as the summary and the status show it."""

    model_config = _FROZEN

    at: str
    run_key: str
    champion_version: int
    trigger_batch_ids: list[str]
    dataset: str
    trigger: str | None = None

    @classmethod
    def of(cls, r: RetrainRequest, *, with_trigger: bool = False) -> RetrainingRef:
        return cls(
            **r.model_dump(include={"at", "run_key", "champion_version", "trigger_batch_ids", "dataset"}),
            trigger=r.trigger if with_trigger else None,
        )


class MonitoringSummary(BaseModel):
    """Drift and performance over the last N batches."""

    model_config = _FROZEN

    generated_at: str
    window: SummaryWindow
    counts: SummaryCounts
    drift_rate: float | None
    mean_accuracy: float | None
    most_drifted_columns: list[tuple[str, int]]
    batches: list[SummaryRow]
    retraining: list[RetrainingRef]


def _drift(e: Mapping[str, Any]) -> dict[str, Any]:
    return dict(e.get("drift") or {})


def _perf(e: Mapping[str, Any]) -> dict[str, Any]:
    return dict(e.get("performance") or {})


def _summary_row(e: LedgerEntry) -> SummaryRow:
    drift, perf = _drift(e), _perf(e)
    champ = perf.get("champion") or {}
    return SummaryRow(
        batch_id=e.get("batch_id"),
        landed_at=e.get("landed_at"),
        rows=e.get("rows"),
        status=e.get("status"),
        champion=e.get("champion_version"),
        drift=drift.get("verdict"),
        drifted_share=drift.get("drifted_share"),
        prediction_drift=drift.get("prediction_verdict"),
        labelled=perf.get("n_labelled") or 0,
        accuracy=champ.get("accuracy"),
        roc_auc=champ.get("roc_auc"),
        performance="n/a" if e.get("status") == "quarantined" else (perf.get("status") or "awaiting labels"),
    )


def _counts(entries: list[LedgerEntry], n_retrains: int, n_alerts: int) -> SummaryCounts:
    return SummaryCounts(
        batches=len(entries),
        quarantined=sum(e.get("status") == "quarantined" for e in entries),
        dataset_drift=sum(bool(_drift(e).get("breach")) for e in entries),
        labelled=sum(bool(_perf(e).get("labelled")) for e in entries),
        performance_breach=sum(bool(_perf(e).get("breach")) for e in entries),
        retraining_requests=n_retrains,
        alerts=n_alerts,
    )


def monitoring_summary(settings: Settings, last_n: int) -> MonitoringSummary:
    """Drift and performance over the last ``last_n`` batches (policy ``monitoring.summary_last_n_batches``)."""
    paths = MonitoringPaths.of(settings)
    entries = BatchLedger(paths).entries()[-last_n:] if last_n > 0 else []
    rows = [_summary_row(e) for e in entries]
    ids = {e["batch_id"] for e in entries}
    since = entries[0].get("created_at", "") if entries else utc_now()
    column_counts: dict[str, int] = {}
    for e in entries:
        for c in _drift(e).get("drifted_columns") or []:
            column_counts[c] = column_counts.get(c, 0) + 1
    alerts = [a for a in read_jsonl(paths.alerts) if a.get("at", "") >= since]
    retrains = [r for r in read_retrain_requests(paths) if set(r.trigger_batch_ids) & ids]
    judged = [e for e in entries if _drift(e).get("judged")]
    accuracies = [r.accuracy for r in rows if r.accuracy is not None]
    return MonitoringSummary(
        generated_at=utc_now(),
        window=SummaryWindow(last_n=last_n, batches=len(entries), since=since),
        counts=_counts(entries, len(retrains), len(alerts)),
        drift_rate=(sum(bool(_drift(e).get("breach")) for e in judged) / len(judged)) if judged else None,
        mean_accuracy=float(np.mean(accuracies)) if accuracies else None,
        most_drifted_columns=sorted(column_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5],
        batches=rows,
        retraining=[RetrainingRef.of(r) for r in retrains],
    )


class LatestDrift(BaseModel):
    model_config = _FROZEN

    batch_id: str
    verdict: str | None
    breach: bool | None
    drifted_share: float | None
    drifted_columns: list[str] | None
    prediction_drift: str | None
    champion: int | None
    at: str | None


class LatestPerformance(BaseModel):
    model_config = _FROZEN

    batch_id: str
    status: str | None
    breach: bool | None
    n_labelled: int | None
    champion: dict[str, float | None] | None
    shadow: dict[str, float | None] | None
    mcnemar: str | None
    at: str | None


class MonitoringStatus(BaseModel):
    """The latest drift and performance verdicts (compact on purpose)."""

    model_config = _FROZEN

    landing_dir: str
    batches: int
    quarantined: int
    latest_drift: LatestDrift | None
    latest_performance: LatestPerformance | None
    last_retraining: RetrainingRef | None
    alerts: int


def _latest_drift(e: LedgerEntry) -> LatestDrift:
    d = _drift(e)
    return LatestDrift(
        batch_id=e["batch_id"],
        verdict=d.get("verdict"),
        breach=d.get("breach"),
        drifted_share=d.get("drifted_share"),
        drifted_columns=d.get("drifted_columns"),
        prediction_drift=d.get("prediction_verdict"),
        champion=e.get("champion_version"),
        at=e.get("updated_at"),
    )


def _latest_performance(e: LedgerEntry) -> LatestPerformance:
    p = _perf(e)
    return LatestPerformance(
        batch_id=e["batch_id"],
        status=p.get("status"),
        breach=p.get("breach"),
        n_labelled=p.get("n_labelled"),
        champion=p.get("champion"),
        shadow=p.get("shadow"),
        mcnemar=(p.get("mcnemar") or {}).get("recommendation"),
        at=e.get("updated_at"),
    )


def monitoring_status(settings: Settings) -> MonitoringStatus:
    """The latest drift and performance verdicts, for ``mlgov status``."""
    paths = MonitoringPaths.of(settings)
    entries = BatchLedger(paths).entries()
    drifted = [e for e in entries if e.get("drift")]
    perf = [e for e in entries if _perf(e).get("labelled")]
    requests = read_retrain_requests(paths)
    return MonitoringStatus(
        landing_dir=str(settings.landing_dir),
        batches=len(entries),
        quarantined=sum(e.get("status") == "quarantined" for e in entries),
        latest_drift=_latest_drift(drifted[-1]) if drifted else None,
        latest_performance=_latest_performance(perf[-1]) if perf else None,
        last_retraining=RetrainingRef.of(requests[-1], with_trigger=True) if requests else None,
        alerts=len(read_jsonl(paths.alerts)),
    )
