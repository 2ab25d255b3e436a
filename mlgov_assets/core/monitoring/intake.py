"""Accepting a batch: the validation gate, archiving accepted rows, quarantining the rest."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlgov_assets.core.integrity import atomic_write_with, md5_file
from mlgov_assets.core.monitoring.alerts import raise_alert
from mlgov_assets.core.monitoring.batch_values import AcceptedBatch, BatchIntake
from mlgov_assets.core.monitoring.batches import ROW_ID, read_batch
from mlgov_assets.core.monitoring.labels import record_labels
from mlgov_assets.core.monitoring.landing import find_batch_file
from mlgov_assets.core.monitoring.ledger import (
    BatchLedger,
    Log,
    MonitoringPaths,
    atomic_write_text,
    to_json,
    utc_now,
)

if TYPE_CHECKING:
    from mlgov_assets.core.data.schemas import ValidationReport
    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.settings import Settings


def validate_batch(project: Project, raw: pd.DataFrame, *, source: str) -> ValidationReport:
    """The project's batch schema (``raw_schema(project, batch=True)``) on a batch; a batch without
    the label column gets an empty one (labels are optional and may arrive later)."""
    from mlgov_assets.core.data.schemas import validate
    from mlgov_assets.core.project.schemas import raw_schema

    label = project.label
    df = raw if label in raw.columns else raw.assign(**{label: None})
    return validate(df, raw_schema(project, batch=True), source=source)


def _unreadable(name: str, exc: Exception) -> tuple[str, dict[str, Any]]:
    summary = f"{name}: unreadable batch file: {exc}"
    failure = {
        "column": "<file>",
        "check": "readable",
        "count": 1,
        "examples": [{"row": None, "value": str(exc)[:500]}],
    }
    return summary, {"source": name, "schema": "readable batch file", "rows": 0, "passed": False, "failures": [failure]}


def accept_batch(
    settings: Settings,
    project: Project,
    batch_id: str,
    *,
    webhook_url: str | None = None,
    log: Log | None = None,
) -> AcceptedBatch:
    """Read the landing file of ``batch_id`` and pass it through the validation gate.

    Valid: the accepted rows (and labels already known) are archived in the ledger for retraining.
    Invalid or unreadable: the file moves to quarantine with its failure report, the ledger says
    ``quarantined`` and an ERROR alert is raised; the caller must not score it.
    """
    paths = MonitoringPaths.of(settings)
    ledger = BatchLedger(paths)
    path = find_batch_file(settings.landing_dir, batch_id, ledger)
    md5 = md5_file(path)
    report: ValidationReport | None = None
    try:
        raw = read_batch(project, path)
        report = validate_batch(project, raw, source=path.name)
        report_dict, summary = report.to_dict(), report.summary()
    except (ValueError, OSError, pd.errors.ParserError) as exc:  # unreadable: same fate as invalid
        raw = pd.DataFrame()
        summary, report_dict = _unreadable(path.name, exc)
    passed = report is not None and report.passed
    base = {
        "source": path.name,
        "md5": md5,
        "landed_at": datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds"),
        "rows": len(raw),
        "validation": {"passed": passed, "summary": summary[:2000], "rules_failed": len(report_dict["failures"])},
    }
    intake = BatchIntake(
        batch_id=batch_id, source=path.name, md5=md5, valid=passed, summary=summary, validation=report_dict
    )
    if report is None or not report.passed:
        qdir = quarantine_batch(paths, batch_id, path, report_dict, summary)
        ledger.update(batch_id, status="quarantined", quarantine_dir=str(qdir), **base)
        _quarantine_alert(paths, batch_id, md5, qdir, report_dict, summary, webhook_url, log)
        frame = raw.reset_index() if len(raw.columns) else pd.DataFrame({ROW_ID: pd.Series([], dtype="int64")})
        return AcceptedBatch(frame=frame, intake=intake.model_copy(update={"quarantine_dir": qdir}))
    archive = raw.reset_index()
    archive = archive[[ROW_ID] + [c for c in project.columns if c in archive.columns]]
    atomic_write_with(ledger.rows_path(batch_id), lambda tmp: archive.to_parquet(tmp, index=False))
    ledger.update(batch_id, status="validated", quarantine_dir=None, **base)
    frame = (report.validated if report.validated is not None else raw).reset_index()
    record_labels(settings, project, batch_id, frame)
    return AcceptedBatch(frame=frame, intake=intake)


def _quarantine_alert(
    paths: MonitoringPaths,
    batch_id: str,
    md5: str,
    qdir: Path,
    report: dict[str, Any],
    summary: str,
    webhook_url: str | None,
    log: Log | None,
) -> None:
    raise_alert(
        paths,
        "batch_quarantined",
        f"batch {batch_id} failed validation and was quarantined: {summary[:500]}",
        severity="ERROR",
        batch_id=batch_id,
        identity=md5,
        webhook_url=webhook_url,
        log=log,
        evidence={"quarantine_dir": str(qdir), "report": report},
    )


def quarantine_batch(
    paths: MonitoringPaths, batch_id: str, path: Path, report: Mapping[str, Any], summary: str
) -> Path:
    """Move the file into ``quarantine/<batch_id>/`` next to ``failure_report.json`` (written first,
    so a quarantined file is never without it); copy + unlink across file systems."""
    qdir = paths.quarantine_dir(batch_id)
    qdir.mkdir(parents=True, exist_ok=True)
    doc = {
        "batch_id": batch_id,
        "file": path.name,
        "md5": md5_file(path),
        "quarantined_at": utc_now(),
        "original_path": str(path),
        "summary": summary,
        "report": report,
    }
    atomic_write_text(qdir / "failure_report.json", to_json(doc, indent=1, sort_keys=True) + "\n")
    target = qdir / path.name
    try:
        os.replace(path, target)
    except OSError:
        shutil.copy2(path, target)
        path.unlink(missing_ok=True)
    return qdir
