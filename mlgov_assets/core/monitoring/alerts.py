"""Alerts: ``alerts.jsonl`` (de-duplicated by alert id), the decision log for governance kinds, and
an optional webhook that never holds monitoring up."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from mlgov_assets.core.governance.policy import Ingestion
from mlgov_assets.core.monitoring.ledger import (
    Log,
    MonitoringPaths,
    append_jsonl,
    emit,
    jsonable,
    read_jsonl,
    to_json,
    utc_now,
)
from mlgov_assets.core.project.quoting import quote

#: The policy's default cap on one alert record (``ingestion.max_report_bytes``).
_MAX_BYTES = Ingestion().max_report_bytes

#: A webhook must never hold up monitoring: short timeout, failures are logged, never raised.
WEBHOOK_TIMEOUT_S = 3.0

#: Alerts that are governance decisions too: also written to the hash-chained decision log.
DECISION_KINDS = {
    "dataset_drift": "drift_alert",
    "performance_breach": "drift_alert",
    "retrain_requested": "retrain_request",
    # a labels file refused or held for review: evidence an auditor needs (labels drive performance and retraining)
    "labels_refused": "labels_refusal",
    "labels_held": "labels_refusal",
}


def alert_id(kind: str, batch_id: str | None, identity: object) -> str:
    blob = to_json({"kind": kind, "batch_id": batch_id, "identity": identity}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _log_decision(paths: MonitoringPaths, kind: str, record: Mapping[str, Any], log: Log | None) -> None:
    from mlgov_assets.core.audit.decision_log import DecisionLog, LogIntegrityError
    from mlgov_assets.core.integrity import canonical_hash

    try:
        DecisionLog(paths.root.parent / "audit" / "decisions.jsonl").append(
            kind,
            actor="mlgov monitoring",
            reason=str(record["summary"])[:2000],
            model_name=None,
            model_version=None,
            payload={
                "alert_id": record["alert_id"],
                "alert_kind": record["kind"],
                "batch_id": record["batch_id"],
                "severity": record["severity"],
                "evidence": record["evidence"],
            },
            evidence_hashes={"alert_sha256": canonical_hash(record)},
        )
    except (LogIntegrityError, ValueError, TypeError) as exc:  # the alert itself is already recorded
        emit(log, "error", f"decision log refused the {kind} record: {type(exc).__name__}: {exc}")


def raise_alert(
    paths: MonitoringPaths,
    kind: str,
    summary: str,
    *,
    severity: str = "WARNING",
    batch_id: str | None = None,
    evidence: Mapping[str, Any] | None = None,
    identity: object = None,
    webhook_url: str | None = None,
    log: Log | None = None,
    timeout: float = WEBHOOK_TIMEOUT_S,
    max_bytes: int = _MAX_BYTES,
) -> dict[str, Any] | None:
    """Record an alert in ``alerts.jsonl``, log it, and POST it to ``webhook_url`` if one is set.

    ``identity`` says what makes two alerts "the same" (default: the summary). Returns the record,
    or None for a duplicate. A webhook failure is logged and returned under ``webhook``, never raised.
    The record (line, log message, webhook body) stays under ``max_bytes`` (policy
    ``ingestion.max_report_bytes``): a longer summary is quoted, oversized evidence replaced by its
    size and sha256.
    """
    aid = alert_id(kind, batch_id, summary if identity is None else identity)
    if any(a.get("alert_id") == aid for a in read_jsonl(paths.alerts)):
        return None
    record: dict[str, Any] = {
        "alert_id": aid,
        "at": utc_now(),
        "kind": kind,
        "severity": severity,
        "batch_id": batch_id,
        "summary": quote(summary, max_bytes // 64),
        "evidence": jsonable(dict(evidence or {})),
    }
    blob = to_json(record, sort_keys=True)
    if len(blob.encode()) > max_bytes:
        body = to_json(record["evidence"], sort_keys=True).encode()
        record["evidence"] = {"truncated": True, "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    summary = record["summary"]
    append_jsonl(paths.alerts, record)
    emit(log, "error" if severity == "ERROR" else "warning", f"ALERT [{kind}] {summary}")
    if kind in DECISION_KINDS:
        _log_decision(paths, DECISION_KINDS[kind], record, log)
    if webhook_url:
        record["webhook"] = post_webhook(webhook_url, record, timeout=timeout, log=log)
    return record


def post_webhook(
    url: str, payload: Mapping[str, Any], *, timeout: float = WEBHOOK_TIMEOUT_S, log: Log | None = None
) -> dict[str, Any]:
    """POST JSON with the standard library (no extra dependency); never raises."""
    import urllib.error
    import urllib.request

    body = to_json(payload, sort_keys=True).encode()
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "mlgov-monitoring"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return {"ok": 200 <= resp.status < 300, "status": resp.status}
    except (urllib.error.URLError, OSError, ValueError) as exc:
        emit(log, "warning", f"alert webhook {url} failed: {type(exc).__name__}: {exc}")
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
