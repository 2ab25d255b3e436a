"""Accepting a batch: the trust boundary, the validation gate, archiving accepted rows, quarantining
the rest (:mod:`~mlgov_assets.core.monitoring.quarantine`). Every failure to read or judge a file ends
in quarantine with a reason; none escapes to the caller."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlgov_assets.core.governance.policy import Ingestion, Policy, load_policy
from mlgov_assets.core.integrity import atomic_write_with
from mlgov_assets.core.monitoring.batch_values import AcceptedBatch, BatchIntake
from mlgov_assets.core.monitoring.batches import ROW_ID, read_batch
from mlgov_assets.core.monitoring.boundary import LandingRefusal, landing_md5, read_landing_file
from mlgov_assets.core.monitoring.labels import record_labels
from mlgov_assets.core.monitoring.landing import find_batch_file
from mlgov_assets.core.monitoring.ledger import BatchLedger, Log, MonitoringPaths
from mlgov_assets.core.monitoring.quarantine import bounded_report, quarantine_alert, quarantine_batch
from mlgov_assets.core.project.quoting import quote
from mlgov_assets.core.project.rawcheck import RuleFailure

if TYPE_CHECKING:
    import pandera.pandas as pa

    from mlgov_assets.core.data.schemas import ValidationReport
    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.settings import Settings


def absent_label(project: Project, columns: Iterable[str]) -> str | None:
    """The label column when a batch lacks it, else ``None``. The rule, for the intake and the serving
    request gate alike: labels are optional and may arrive later, so a batch without the label column
    is judged with an empty one."""
    return None if project.label in columns else project.label


def validate_batch(
    project: Project, raw: pd.DataFrame, *, source: str, schema: pa.DataFrameSchema | None = None
) -> ValidationReport:
    """The project's batch schema (``raw_schema(project, batch=True)``, or that schema built once by
    the caller) on a batch; a batch without the label column gets an empty one (labels are optional
    and may arrive later)."""
    from mlgov_assets.core.data.schemas import validate
    from mlgov_assets.core.project.schemas import raw_schema

    label = absent_label(project, raw.columns)
    df = raw if label is None else raw.assign(**{label: None})
    return validate(df, schema if schema is not None else raw_schema(project, batch=True), source=source)


def _unreadable(name: str, exc: Exception, quote_chars: int) -> tuple[str, dict[str, Any]]:
    """The report of a file no rule could even look at (a broken Parquet file, a reader hook's error)."""
    message = quote(f"{type(exc).__name__}: {exc}", quote_chars * 10)
    summary = f"{name}: unreadable batch file: {message}"
    failure = {"column": "<file>", "check": "readable", "count": 1, "examples": [{"row": None, "value": message}]}
    return summary, {"source": name, "schema": "readable batch file", "rows": 0, "passed": False, "failures": [failure]}


def _too_few_rows(report: ValidationReport, min_rows: int) -> ValidationReport:
    """Policy ``monitoring.min_batch_rows`` as a validation rule: a batch too small to judge (empty,
    header only) is refused at the gate, never scored."""
    from mlgov_assets.core.data.schemas import RuleFailure

    if report.rows >= min_rows:
        return report
    what = "header only, no data rows" if report.rows == 0 else f"{report.rows} rows"
    rule = RuleFailure(
        "<dataframe>", f"at least monitoring.min_batch_rows ({min_rows}) rows", 1, [{"row": None, "value": what}]
    )
    others = [f for f in report.failures if f.column != "<dataframe>"]
    return replace(report, passed=False, failures=[rule, *others], validated=None)


def _gate(project: Project, path: Path, limits: Ingestion, min_rows: int) -> tuple[pd.DataFrame, bytes | None, Any]:
    """Read ``path`` across the trust boundary and judge it: ``(raw rows, bytes or None, report)``
    where ``report`` is a :class:`ValidationReport`, or ``(summary, report dict)`` when unreadable."""
    from mlgov_assets.core.data.schemas import refused
    from mlgov_assets.core.project.rawcheck import RawFileError

    content: bytes | None = None
    try:
        content = read_landing_file(path, limits)
        raw = read_batch(project, path, content=content, limits=limits)
        return raw, content, _too_few_rows(validate_batch(project, raw, source=path.name), min_rows)
    except LandingRefusal as exc:
        rule = RawFileError(path.name, [RuleFailure("<file>", exc.rule, 1, [{"row": None, "value": exc.why}])])
        return pd.DataFrame(), content, refused(path.name, "landing folder", rule)
    except RawFileError as exc:
        return pd.DataFrame(), content, refused(path.name, "raw file structure", exc)
    except Exception as exc:
        return pd.DataFrame(), content, _unreadable(path.name, exc, limits.quote_chars)


def accept_batch(
    settings: Settings,
    project: Project,
    batch_id: str,
    *,
    policy: Policy | None = None,
    webhook_url: str | None = None,
    log: Log | None = None,
) -> AcceptedBatch:
    """Read the landing file of ``batch_id`` and pass it through the validation gate.

    Valid: the accepted rows (and labels already known) are archived in the ledger for retraining.
    Invalid, unreadable, too small (``monitoring.min_batch_rows``), or refused at the trust boundary
    (a link, a special file, over the ``ingestion`` caps): the entry moves to quarantine with its
    failure report, the ledger says ``quarantined`` and an ERROR alert is raised; the caller must not
    score it. ``policy`` defaults to the settings' policy file.
    """
    pol = policy if policy is not None else load_policy(settings.policy_path)
    limits = pol.ingestion
    paths = MonitoringPaths.of(settings)
    ledger = BatchLedger(paths)
    path = find_batch_file(settings.landing_dir, batch_id, ledger)
    raw, content, judged = _gate(project, path, limits, pol.monitoring.min_batch_rows)
    md5 = hashlib.md5(content, usedforsecurity=False).hexdigest() if content is not None else landing_md5(path, limits)
    report: ValidationReport | None = None
    if isinstance(judged, tuple):
        summary, report_dict = judged
    else:
        report = judged
        report_dict, summary = report.to_dict(), report.summary()
    passed = report is not None and report.passed
    base = {
        "source": path.name,
        "md5": md5,
        "landed_at": datetime.fromtimestamp(os.lstat(path).st_mtime, UTC).isoformat(timespec="seconds"),
        "rows": len(raw),
        "validation": {"passed": passed, "summary": summary[:2000], "rules_failed": len(report_dict["failures"])},
    }
    intake = BatchIntake(
        batch_id=batch_id, source=path.name, md5=md5, valid=passed, summary=summary, validation=report_dict
    )
    if report is None or not report.passed:
        qdir = quarantine_batch(paths, batch_id, path, report_dict, summary, md5=md5, limits=limits)
        ledger.update(batch_id, status="quarantined", quarantine_dir=str(qdir), **base)
        quarantine_alert(
            paths, batch_id, md5, qdir, report_dict, summary, webhook_url=webhook_url, log=log, limits=limits
        )
        bounded = bounded_report(report_dict, limits.max_report_bytes)
        intake = intake.model_copy(update={"quarantine_dir": qdir, "validation": bounded})
        frame = raw.reset_index() if len(raw.columns) else pd.DataFrame({ROW_ID: pd.Series([], dtype="int64")})
        return AcceptedBatch(frame=frame, intake=intake)
    archive = raw.reset_index()
    archive = archive[[ROW_ID] + [c for c in project.columns if c in archive.columns]]
    atomic_write_with(ledger.rows_path(batch_id), lambda tmp: archive.to_parquet(tmp, index=False))
    ledger.update(batch_id, status="validated", quarantine_dir=None, **base)
    frame = (report.validated if report.validated is not None else raw).reset_index()
    record_labels(settings, project, batch_id, frame)
    return AcceptedBatch(frame=frame, intake=intake)
