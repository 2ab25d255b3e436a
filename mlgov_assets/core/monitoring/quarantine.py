"""Quarantine: a refused batch leaves the landing folder once, with a bounded failure report.

Every refusal (validation, the trust boundary, or a failure later in processing such as scoring or
drift) ends here: the entry is moved into ``quarantine/<batch_id>/`` next to its
``failure_report.json``, the ledger says ``quarantined`` (so no scan takes it for new again) and an
ERROR alert is raised. Reports and alerts stay under the policy's ``ingestion.max_report_bytes``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgov_assets.core.errors import InputError, MlgovError
from mlgov_assets.core.governance.policy import Ingestion
from mlgov_assets.core.monitoring.alerts import raise_alert
from mlgov_assets.core.monitoring.ledger import (
    BatchLedger,
    Log,
    MonitoringPaths,
    atomic_write_text,
    emit,
    to_json,
    utc_now,
)
from mlgov_assets.core.project.quoting import quote

if TYPE_CHECKING:
    from mlgov_assets.core.settings import Settings

#: How many innermost frames of a late failure's traceback its failure report keeps (code, no values).
_TRACE_FRAMES = 8


def bounded_report(report: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    """``report`` (a validation report as JSON data) cut to fit ``max_bytes``: examples first, then
    whole rules are dropped, and ``truncated`` says how many rules were left out."""
    out = dict(report)
    failures = list(out.get("failures") or [])
    budget = max_bytes // 2  # room for the rest of the document (summary, paths) around the report
    if len(to_json(out)) <= budget:
        return out
    failures = [{**f, "examples": list(f.get("examples") or [])[:1]} for f in failures]
    kept: list[dict[str, Any]] = []
    for f in failures:
        if len(to_json({**out, "failures": [*kept, f]})) > budget:
            break
        kept.append(f)
    out["failures"], out["truncated"] = kept, len(failures) - len(kept)
    if len(to_json(out)) > budget:  # the rest itself is too big (never from mlgov's own reports)
        out = {"source": quote(str(report.get("source", ""))), "truncated": len(failures), "failures": []}
    return out


def _move(path: Path, target: Path) -> None:
    """Rename without following links; across file systems a regular file is copied, anything else
    (a link, a FIFO) is removed, never opened."""
    try:
        os.replace(path, target)
    except OSError:
        if stat.S_ISREG(os.lstat(path).st_mode):
            shutil.copy2(path, target, follow_symlinks=False)
        path.unlink(missing_ok=True)


def quarantine_batch(
    paths: MonitoringPaths,
    batch_id: str,
    path: Path | None,
    report: Mapping[str, Any],
    summary: str,
    *,
    md5: str,
    limits: Ingestion | None = None,
) -> Path:
    """Move the entry into ``quarantine/<batch_id>/`` next to ``failure_report.json`` (written first,
    so a quarantined file is never without it). ``path`` None: the file already left the folder."""
    caps = limits if limits is not None else Ingestion()
    qdir = paths.quarantine_dir(batch_id)
    qdir.mkdir(parents=True, exist_ok=True)
    doc = {
        "batch_id": batch_id,
        "file": path.name if path is not None else None,
        "md5": md5,
        "quarantined_at": utc_now(),
        "original_path": str(path) if path is not None else None,
        "summary": quote(summary, caps.max_report_bytes // 8),
        "report": bounded_report(report, caps.max_report_bytes),
    }
    atomic_write_text(qdir / "failure_report.json", to_json(doc, indent=1, sort_keys=True) + "\n")
    if path is not None and os.path.lexists(path):
        _move(path, qdir / path.name)
    return qdir


def quarantine_alert(
    paths: MonitoringPaths,
    batch_id: str,
    md5: str,
    qdir: Path,
    report: Mapping[str, Any],
    summary: str,
    *,
    what: str = "failed validation",
    webhook_url: str | None = None,
    log: Log | None = None,
    limits: Ingestion | None = None,
) -> None:
    caps = limits if limits is not None else Ingestion()
    raise_alert(
        paths,
        "batch_quarantined",
        f"batch {batch_id} {what} and was quarantined: {quote(summary, caps.max_report_bytes // 64)}",
        severity="ERROR",
        batch_id=batch_id,
        identity=md5,
        webhook_url=webhook_url,
        log=log,
        evidence={"quarantine_dir": str(qdir), "report": bounded_report(report, caps.max_report_bytes // 2)},
        max_bytes=caps.max_report_bytes,
    )


def quarantine_failed_batch(
    settings: Settings,
    batch_id: str,
    stage: str,
    exc: BaseException,
    *,
    limits: Ingestion | None = None,
    webhook_url: str | None = None,
    log: Log | None = None,
) -> Path:
    """A batch that failed after intake (``stage``: scoring, drift …) is quarantined with the error,
    so it is never taken up again and no single file wedges the monitoring loop."""
    from mlgov_assets.core.monitoring.batches import BATCH_SUFFIXES

    paths = MonitoringPaths.of(settings)
    ledger = BatchLedger(paths)
    entry = ledger.get(batch_id) or {}
    landing = Path(settings.landing_dir)
    path = next((p for p in (landing / f"{batch_id}{s}" for s in BATCH_SUFFIXES) if os.path.lexists(p)), None)
    caps = limits if limits is not None else Ingestion()
    message = quote(f"{type(exc).__name__}: {exc}", caps.quote_chars * 10)
    summary = f"{batch_id}: {stage} failed: {message}"
    failure = {
        "column": "<batch>",
        "check": f"{stage} succeeds",
        "count": 1,
        "examples": [{"row": None, "value": message}],
    }
    frames = traceback.format_tb(exc.__traceback__)[-_TRACE_FRAMES:]
    trace = [quote(frame, caps.quote_chars * 10) for frame in frames]
    report = {"source": path.name if path else batch_id, "schema": stage, "rows": entry.get("rows", 0)}
    report |= {"passed": False, "failures": [failure], "traceback": trace}
    md5 = str(entry.get("md5") or "")
    qdir = quarantine_batch(paths, batch_id, path, report, summary, md5=md5, limits=caps)
    validation = {"passed": False, "summary": summary, "rules_failed": 1, "stage": stage}
    ledger.update(batch_id, status="quarantined", quarantine_dir=str(qdir), validation=validation)
    what = f"failed in {stage}"
    quarantine_alert(
        paths, batch_id, md5, qdir, report, summary, what=what, webhook_url=webhook_url, log=log, limits=caps
    )
    return qdir


def should_quarantine(exc: BaseException) -> bool:
    """Whether a failure is the batch's own: bad input, or anything mlgov did not raise on purpose.
    mlgov's own other errors (no champion, a broken store, an integrity failure) are the system's: the
    batch stays to be processed once they are fixed."""
    return isinstance(exc, InputError) or (isinstance(exc, Exception) and not isinstance(exc, MlgovError))


class BatchQuarantined(InputError):
    """A processing step failed because of its batch, which is now quarantined; the message quotes
    the original error (raw values bounded), the failure report keeps its traceback."""


@contextlib.contextmanager
def quarantine_on_failure(
    settings: Settings,
    batch_id: str,
    stage: str,
    *,
    limits: Ingestion | None = None,
    webhook_url: str | None = None,
    log: Log | None = None,
) -> Iterator[None]:
    """Run a processing step of ``batch_id``; if it fails because of the batch, quarantine the batch
    (:func:`quarantine_failed_batch`) and raise :class:`BatchQuarantined` in its place (the step still
    fails, with a bounded message); mlgov's own system errors pass through untouched."""
    try:
        yield
    except Exception as exc:
        if not should_quarantine(exc):
            raise
        try:
            qdir = quarantine_failed_batch(
                settings, batch_id, stage, exc, limits=limits, webhook_url=webhook_url, log=log
            )
        except (OSError, ValueError) as inner:  # the original failure is the one to report
            emit(log, "error", f"quarantining batch {batch_id} after its {stage} failure failed too: {inner!r}")
            raise exc from None
        caps = limits if limits is not None else Ingestion()
        message = quote(f"{type(exc).__name__}: {exc}", caps.quote_chars * 10)
        # from None: the raw original is not chained into the run's log (its traceback is in the report)
        raise BatchQuarantined(f"batch {batch_id}: {stage} failed ({message}); quarantined to {qdir}") from None
