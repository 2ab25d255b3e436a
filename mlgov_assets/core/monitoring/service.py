"""Production monitoring, orchestrated: what the batch sensor, the per-batch assets, the retraining
sensor, the schedules and ``mlgov monitor --once`` all do, as plain functions (no Dagster here).

State lives under ``$MLGOV_HOME/monitoring/`` (see :class:`MonitoringPaths`):

* ``batches/<batch_id>/state.json`` — the batch ledger: one small JSON per batch with its file, md5,
  validation outcome, the champion (and shadow) that scored it, the reference it was compared with,
  the drift and performance verdicts. The sensors, the daily summary, ``mlgov status`` and the
  retraining planner read it; the per-batch assets write it (atomically, under a file lock).
  ``rows.parquet`` (the accepted rows, raw strings) and ``labels.parquet`` (labels as they arrive) sit
  next to it: they are what a retraining dataset is built from, even if the landing folder is cleaned.
* ``quarantine/<batch_id>/`` — a batch that failed validation: the file (moved out of the landing
  folder, so nothing else consumes it) and ``failure_report.json``. It is never scored and never
  counts toward retraining.
* ``reference/<md5>/`` — the reference profile of a champion's training data, built once per
  reference md5 (``profile-b<bins>.json``), plus the champion's scores on those rows per champion
  version (``profile-b<bins>-champion-v<N>.json``) for prediction drift.
* ``alerts.jsonl`` — every alert (drift, performance breach, quarantine, retraining requested, ...),
  de-duplicated by an alert id so re-runs do not re-alert; optionally POSTed to a webhook.
* ``retraining.jsonl`` — every retraining request: run key, the breaching batches, the dataset.

Why a ledger next to Dagster's event log: the verdicts must be readable by the CLI without a running
daemon (``mlgov status``, ``mlgov monitor --once``) and by sensors in one cheap file read; Dagster's
materializations carry the same numbers as metadata for people in the UI.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlgov_assets.core.data.adult import (
    CATEGORICAL,
    COLUMNS,
    LABEL,
    MISSING_TOKEN,
    NUMERIC,
    POSITIVE_LABEL,
    read_adult_csv,
)
from mlgov_assets.core.integrity import atomic_write_bytes, atomic_write_with, md5_file
from mlgov_assets.core.monitoring.batches import (
    BATCH_SUFFIXES,
    LABELS_INFIX,
    ROW_ID,
    align_labels,
    mcnemar_test,
    parse_landing_filename,
    performance_breach,
    performance_metrics,
    read_batch,
    read_labels,
    retrain_run_key,
    validate_batch_id,
)
from mlgov_assets.core.monitoring.drift import DriftThresholds, ReferenceProfile, compute_drift

#: Mirrors ``assets.data.HOLDOUT_FILE`` (core may not import the Dagster layer); callers pass it.
HOLDOUT_FILE = "data/adult.test"
#: Retraining datasets are written here, inside the project, so DVC can version them.
GENERATED_DIR = "data/generated"
#: Columns compared for data drift: every Adult input column (the label is judged by performance).
DRIFT_NUMERIC = list(NUMERIC)
DRIFT_CATEGORICAL = list(CATEGORICAL)
#: The HTML report is for people; Evidently is slow and memory-hungry at scale, so each side is
#: sampled to at most this many rows (seeded). The verdict comes from the engine on all rows.
EVIDENTLY_MAX_ROWS = 5000
#: A webhook must never hold up monitoring: short timeout, failures are logged, never raised.
WEBHOOK_TIMEOUT_S = 3.0
#: Batch-level statuses after which the batch sensor considers a batch done.
DONE_STATUSES = ("quarantined", "scored")
MONITORING_EXPERIMENT = "monitoring"


class MonitoringError(RuntimeError):
    """Monitoring cannot proceed; the message says why and what to do."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _emit(log: Any, level: str, message: str) -> None:
    if log is not None:
        getattr(log, level)(message)


# --------------------------------------------------------------------------- locations and files


@dataclass(frozen=True)
class MonitoringPaths:
    """Where monitoring state lives (all under ``$MLGOV_HOME/monitoring``)."""

    root: Path

    @classmethod
    def of(cls, settings: Any) -> MonitoringPaths:
        return cls(Path(settings.home) / "monitoring")

    @property
    def batches(self) -> Path:
        return self.root / "batches"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def reference(self) -> Path:
        return self.root / "reference"

    @property
    def alerts(self) -> Path:
        return self.root / "alerts.jsonl"

    @property
    def retraining(self) -> Path:
        return self.root / "retraining.jsonl"

    def batch_dir(self, batch_id: str) -> Path:
        return self.batches / validate_batch_id(batch_id)

    def quarantine_dir(self, batch_id: str) -> Path:
        return self.quarantine / validate_batch_id(batch_id)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def to_json(obj: Any, **kw: Any) -> str:
    return json.dumps(obj, default=_json_default, **kw)


def jsonable(obj: Any) -> Any:
    """A deep copy made only of JSON types (numpy scalars, NaN -> None, Paths -> str)."""
    return json.loads(to_json(_nan_to_none(obj)))


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _locked(path: Path):
    from mlgov_assets.core.integrity import file_lock

    return file_lock(path)


def _append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """One line per record, written with one ``write`` under an exclusive lock, then fsynced."""
    line = to_json(_nan_to_none(dict(record)), sort_keys=True) + "\n"
    with _locked(path.with_name(f".{path.name}.lock")), open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            with contextlib.suppress(json.JSONDecodeError):  # a torn last line (crash mid-write) is skipped
                out.append(json.loads(line))
    return out


# --------------------------------------------------------------------------- the batch ledger


class BatchLedger:
    """One ``state.json`` per batch (see the module docstring); updates are merged under a lock."""

    def __init__(self, paths: MonitoringPaths):
        self.paths = paths

    def state_path(self, batch_id: str) -> Path:
        return self.paths.batch_dir(batch_id) / "state.json"

    def rows_path(self, batch_id: str) -> Path:
        return self.paths.batch_dir(batch_id) / "rows.parquet"

    def labels_path(self, batch_id: str) -> Path:
        return self.paths.batch_dir(batch_id) / "labels.parquet"

    def get(self, batch_id: str) -> dict[str, Any] | None:
        path = self.state_path(batch_id)
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def update(self, batch_id: str, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into the batch's state (top-level keys replace) and stamp ``updated_at``."""
        with _locked(self.paths.root / ".ledger.lock"):
            state = self.get(batch_id) or {"batch_id": batch_id, "created_at": utc_now()}
            state.update(jsonable(fields))
            state["updated_at"] = utc_now()
            atomic_write_text(self.state_path(batch_id), to_json(state, indent=1, sort_keys=True) + "\n")
        return state

    def entries(self) -> list[dict[str, Any]]:
        """Every batch's state, oldest first (by the time the batch was first accepted)."""
        if not self.paths.batches.exists():
            return []
        out = []
        for path in self.paths.batches.glob("*/state.json"):
            with contextlib.suppress(json.JSONDecodeError, OSError):
                out.append(json.loads(path.read_text(encoding="utf-8")))
        return sorted(out, key=lambda e: (e.get("created_at", ""), e.get("batch_id", "")))


def is_done(entry: Mapping[str, Any] | None) -> bool:
    """A batch is done once quarantined or once its drift verdict is recorded."""
    return bool(entry) and (entry.get("status") == "quarantined" or "drift" in entry)


# --------------------------------------------------------------------------- landing folder


@dataclass
class LandingFile:
    name: str
    path: Path
    batch_id: str
    kind: str  # "batch" | "labels"
    md5: str
    size: int
    mtime_ns: int

    @property
    def run_key(self) -> str:
        """Same bytes under the same name -> same key, so Dagster launches the run once."""
        return f"{self.kind}-{self.batch_id}-{self.md5[:12]}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "batch_id": self.batch_id,
            "kind": self.kind,
            "md5": self.md5,
            "size": self.size,
            "run_key": self.run_key,
        }


@dataclass
class LandingPlan:
    """What a scan of the landing folder found: work to request, and files refused or waiting."""

    new_batches: list[LandingFile] = field(default_factory=list)
    new_labels: list[LandingFile] = field(default_factory=list)
    waiting: list[tuple[str, str]] = field(default_factory=list)  # (file, why) - re-examined next scan
    refused: list[tuple[str, str]] = field(default_factory=list)  # (file, why) - reported once
    done: list[str] = field(default_factory=list)
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)  # the cursor to keep

    def to_dict(self) -> dict[str, Any]:
        return {
            "new_batches": [f.to_dict() for f in self.new_batches],
            "new_labels": [f.to_dict() for f in self.new_labels],
            "waiting": [{"file": f, "reason": r} for f, r in self.waiting],
            "refused": [{"file": f, "reason": r} for f, r in self.refused],
            "done": list(self.done),
        }


#: Cursor outcomes that are looked at again on the next scan even if the file did not change.
_RECHECK = ("waiting", "settling", "with_batch")


def plan_landing(
    landing_dir: Path,
    ledger: BatchLedger,
    seen: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    settle_seconds: float = 0.0,
    now: float | None = None,
) -> LandingPlan:
    """Compare the landing folder with what was seen before (``seen``: the sensor cursor) and the ledger.

    * A new batch file (valid id, not finished in the ledger) -> ``new_batches``. A batch id the
      ledger already holds with different bytes is refused: batches are immutable, land corrected
      data under a new id. A batch the ledger has finished (e.g. by ``mlgov monitor --once``) is done.
    * ``<id>.labels.csv|parquet``: for a batch landing in the same scan it rides along with the
      batch's own run; for a finished batch whose ledger has not consumed these bytes ->
      ``new_labels``; before its batch is finished it waits (re-examined each scan).
    * Names that are not batch files, or whose id fails the allow-list, are refused with the reason.
    * Files modified less than ``settle_seconds`` ago are left for the next scan (a writer that
      does not rename atomically may still be writing).

    Only new or changed files are hashed, so a scan costs a directory listing when nothing changed.
    """
    landing_dir = Path(landing_dir)
    previous = dict(seen or {})
    plan = LandingPlan()
    if not landing_dir.is_dir():
        return plan
    now = time.time() if now is None else now
    batch_files: list[LandingFile] = []
    label_files: list[LandingFile] = []
    for path in sorted(p for p in landing_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
        st = path.stat()
        prev = previous.get(path.name) or {}
        unchanged = prev.get("size") == st.st_size and prev.get("mtime_ns") == st.st_mtime_ns
        if unchanged and prev.get("outcome") not in _RECHECK:
            plan.seen[path.name] = dict(prev)
            continue
        if now - st.st_mtime < settle_seconds:
            plan.seen[path.name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "outcome": "settling"}
            continue
        try:
            batch_id, kind = parse_landing_filename(path)
        except ValueError as exc:
            plan.refused.append((path.name, str(exc)))
            plan.seen[path.name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "outcome": "refused"}
            continue
        md5 = prev["md5"] if unchanged and prev.get("md5") else md5_file(path)
        lf = LandingFile(
            name=path.name, path=path, batch_id=batch_id, kind=kind, md5=md5, size=st.st_size, mtime_ns=st.st_mtime_ns
        )
        (batch_files if kind == "batch" else label_files).append(lf)

    new_ids: set[str] = set()
    for lf in batch_files:
        entry = ledger.get(lf.batch_id)
        outcome = "requested"
        if entry and entry.get("md5") and entry["md5"] != lf.md5:
            outcome = "refused"
            plan.refused.append(
                (
                    lf.name,
                    f"batch id {lf.batch_id!r} already holds other bytes (md5 {entry['md5']}); "
                    f"batches are immutable: land corrected data under a new batch id",
                )
            )
        elif lf.batch_id in new_ids:
            outcome = "refused"
            plan.refused.append((lf.name, f"another file in this scan already carries batch id {lf.batch_id!r}"))
        elif is_done(entry):
            outcome = "done"
            plan.done.append(lf.name)
        else:
            plan.new_batches.append(lf)
            new_ids.add(lf.batch_id)
        plan.seen[lf.name] = _seen(lf, outcome)

    for lf in label_files:
        entry = ledger.get(lf.batch_id)
        if entry and entry.get("status") == "quarantined":
            outcome = "refused"
            plan.refused.append((lf.name, f"batch {lf.batch_id!r} was quarantined; its labels are not used"))
        elif entry and (entry.get("labels") or {}).get("file_md5") == lf.md5:
            outcome = "done"
            plan.done.append(lf.name)
        elif lf.batch_id in new_ids:
            outcome = "with_batch"  # the batch's own run reads the labels file
        elif is_done(entry):
            outcome = "requested"
            plan.new_labels.append(lf)
        else:
            outcome = "waiting"
            if (previous.get(lf.name) or {}).get("outcome") != "waiting":
                plan.waiting.append((lf.name, f"batch {lf.batch_id!r} has not landed or not been scored yet"))
        plan.seen[lf.name] = _seen(lf, outcome)
    return plan


def _seen(lf: LandingFile, outcome: str) -> dict[str, Any]:
    return {
        "size": lf.size,
        "mtime_ns": lf.mtime_ns,
        "md5": lf.md5,
        "outcome": outcome,
        "batch_id": lf.batch_id,
        "kind": lf.kind,
    }


def find_batch_file(landing_dir: Path, batch_id: str, ledger: BatchLedger | None = None) -> Path:
    """The landing file of ``batch_id``; a clear error if it is missing (e.g. quarantined) or ambiguous."""
    validate_batch_id(batch_id)
    found = [Path(landing_dir) / f"{batch_id}{sfx}" for sfx in BATCH_SUFFIXES]
    found = [p for p in found if p.is_file()]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise MonitoringError(f"batch {batch_id!r}: both {[p.name for p in found]} are in {landing_dir}; keep one")
    entry = ledger.get(batch_id) if ledger else None
    if entry and entry.get("status") == "quarantined":
        raise MonitoringError(
            f"batch {batch_id!r} was quarantined to {entry.get('quarantine_dir')}: it is never "
            f"scored; land corrected data under a new batch id"
        )
    raise MonitoringError(f"batch {batch_id!r}: no {batch_id}.csv or {batch_id}.parquet in {landing_dir}")


def find_labels_file(landing_dir: Path, batch_id: str) -> Path | None:
    for sfx in BATCH_SUFFIXES:
        path = Path(landing_dir) / f"{validate_batch_id(batch_id)}{LABELS_INFIX}{sfx}"
        if path.is_file():
            return path
    return None


# --------------------------------------------------------------------------- alerts


def alert_id(kind: str, batch_id: str | None, identity: Any) -> str:
    blob = to_json({"kind": kind, "batch_id": batch_id, "identity": identity}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


#: Alerts that are governance decisions too: also written to the hash-chained decision log, so
#: drift verdicts and retraining requests are as tamper-evident as promotions.
DECISION_KINDS = {
    "dataset_drift": "drift_alert",
    "performance_breach": "drift_alert",
    "retrain_requested": "retrain_request",
}


def _log_decision(paths: MonitoringPaths, kind: str, record: Mapping[str, Any], log: Any) -> None:
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
        _emit(log, "error", f"decision log refused the {kind} record: {type(exc).__name__}: {exc}")


def raise_alert(
    paths: MonitoringPaths,
    kind: str,
    summary: str,
    *,
    severity: str = "WARNING",
    batch_id: str | None = None,
    evidence: Mapping[str, Any] | None = None,
    identity: Any = None,
    webhook_url: str | None = None,
    log: Any = None,
    timeout: float = WEBHOOK_TIMEOUT_S,
) -> dict[str, Any] | None:
    """Record an alert in ``alerts.jsonl``, log it, and POST it to ``webhook_url`` if one is set.

    ``identity`` says what makes two alerts "the same" (default: the summary): a re-run of the same
    batch does not alert twice. Returns the record, or None when it was a duplicate. A webhook
    failure is logged (and returned under ``webhook``), never raised: an unreachable chat server
    must not stop monitoring.
    """
    aid = alert_id(kind, batch_id, summary if identity is None else identity)
    if any(a.get("alert_id") == aid for a in read_jsonl(paths.alerts)):
        return None
    record = {
        "alert_id": aid,
        "at": utc_now(),
        "kind": kind,
        "severity": severity,
        "batch_id": batch_id,
        "summary": summary,
        "evidence": jsonable(dict(evidence or {})),
    }
    _append_jsonl(paths.alerts, record)
    _emit(log, "error" if severity == "ERROR" else "warning", f"ALERT [{kind}] {summary}")
    if kind in DECISION_KINDS:
        _log_decision(paths, DECISION_KINDS[kind], record, log)
    if webhook_url:
        record["webhook"] = post_webhook(webhook_url, record, timeout=timeout, log=log)
    return record


def post_webhook(
    url: str, payload: Mapping[str, Any], *, timeout: float = WEBHOOK_TIMEOUT_S, log: Any = None
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
        _emit(log, "warning", f"alert webhook {url} failed: {type(exc).__name__}: {exc}")
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


# --------------------------------------------------------------------------- accepting a batch


@dataclass
class AcceptedBatch:
    """A batch after the validation gate: ``frame`` has ``row_id`` as a column (asset stores drop the
    index) and ``attrs`` with the provenance and the validation report."""

    frame: pd.DataFrame
    valid: bool
    report: dict[str, Any]
    summary: str
    source: str
    md5: str
    quarantine_dir: Path | None = None


def validate_batch(raw: pd.DataFrame, *, source: str):
    """UnlabelledRawAdultSchema on a batch; a batch without the label column gets an empty one
    (labels are optional and may arrive later)."""
    from mlgov_assets.core.data.schemas import UnlabelledRawAdultSchema, validate

    df = raw if LABEL in raw.columns else raw.assign(**{LABEL: None})
    return validate(df, UnlabelledRawAdultSchema, source=source)


def accept_batch(settings: Any, batch_id: str, *, webhook_url: str | None = None, log: Any = None) -> AcceptedBatch:
    """Read the landing file of ``batch_id`` and pass it through the validation gate.

    Valid: the accepted rows (and any labels already known) are archived in the ledger
    (``rows.parquet``, ``labels.parquet``) for retraining. Invalid
    (including unreadable files): the file moves to the quarantine folder with its failure report,
    the ledger says ``quarantined`` and an ERROR alert is raised; the caller must not score it.
    """
    paths = MonitoringPaths.of(settings)
    ledger = BatchLedger(paths)
    path = find_batch_file(settings.landing_dir, batch_id, ledger)
    md5 = md5_file(path)
    landed = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    try:
        raw = read_batch(path)
        report = validate_batch(raw, source=path.name)
        passed, report_dict, summary = report.passed, report.to_dict(), report.summary()
    except (ValueError, OSError, pd.errors.ParserError) as exc:  # unreadable: same fate as invalid
        raw, report = pd.DataFrame(), None
        summary = f"{path.name}: unreadable batch file: {exc}"
        passed, report_dict = (
            False,
            {
                "source": path.name,
                "schema": "readable batch file",
                "rows": 0,
                "passed": False,
                "failures": [
                    {
                        "column": "<file>",
                        "check": "readable",
                        "count": 1,
                        "examples": [{"row": None, "value": str(exc)[:500]}],
                    }
                ],
            },
        )
    base = {
        "source": path.name,
        "md5": md5,
        "landed_at": landed,
        "rows": len(raw),
        "validation": {"passed": passed, "summary": summary[:2000], "rules_failed": len(report_dict["failures"])},
    }
    if not passed:
        qdir = quarantine_batch(paths, batch_id, path, report_dict, summary)
        ledger.update(batch_id, status="quarantined", quarantine_dir=str(qdir), **base)
        raise_alert(
            paths,
            "batch_quarantined",
            f"batch {batch_id} failed validation and was quarantined: {summary[:500]}",
            severity="ERROR",
            batch_id=batch_id,
            identity=md5,
            webhook_url=webhook_url,
            log=log,
            evidence={"quarantine_dir": str(qdir), "report": report_dict},
        )
        frame = raw.reset_index() if len(raw.columns) else pd.DataFrame({ROW_ID: pd.Series([], dtype="int64")})
        frame.attrs = {
            "batch_id": batch_id,
            "source": path.name,
            "md5": md5,
            "valid": False,
            "summary": summary,
            "validation": report_dict,
            "quarantine_dir": str(qdir),
        }
        return AcceptedBatch(frame, False, report_dict, summary, path.name, md5, qdir)
    archive = raw.reset_index()
    archive = archive[[ROW_ID] + [c for c in COLUMNS if c in archive.columns]]
    atomic_write_with(ledger.rows_path(batch_id), lambda tmp: archive.to_parquet(tmp, index=False))
    ledger.update(batch_id, status="validated", quarantine_dir=None, **base)
    frame = report.validated.reset_index()
    frame.attrs = {
        "batch_id": batch_id,
        "source": path.name,
        "md5": md5,
        "valid": True,
        "summary": summary,
        "validation": report_dict,
    }
    record_labels(settings, frame)
    return AcceptedBatch(frame, True, report_dict, summary, path.name, md5)


def quarantine_batch(
    paths: MonitoringPaths, batch_id: str, path: Path, report: Mapping[str, Any], summary: str
) -> Path:
    """Move the file into ``quarantine/<batch_id>/`` (copy + unlink across file systems) next to
    ``failure_report.json``. The report is written first, so a quarantined file is never without it."""
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


# --------------------------------------------------------------------------- models and scores


def typed_for_drift(raw: pd.DataFrame) -> pd.DataFrame:
    """The 14 Adult input columns, numbers parsed, ``?`` as the explicit category ``Unknown``."""
    out = pd.DataFrame(index=raw.index)
    for col in DRIFT_NUMERIC:
        out[col] = pd.to_numeric(raw[col], errors="raise")
    for col in DRIFT_CATEGORICAL:
        out[col] = raw[col].astype(str).replace(MISSING_TOKEN, "Unknown")
    return out


def model_inputs(batch: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns plus the sensitive ones (a fairness-mitigated model needs them to
    decide; a plain pipeline ignores them), built exactly as training built them (core.features)."""
    from mlgov_assets.core.data.adult import SENSITIVE
    from mlgov_assets.core.data.features import MODEL_FEATURES, build_features

    cols = [c for c in COLUMNS if c in batch.columns]
    return build_features(batch[cols], require_label=False)[MODEL_FEATURES + list(SENSITIVE)]


def load_verified(registry: Any, version: int) -> Any:
    """A registered model, loaded through ``Registry.load_model`` (sha256 of every artifact verified
    first); ``load_governed`` unwraps a governed pyfunc (e.g. a mitigated model) after that check."""
    loader = getattr(registry, "load_governed", None) or registry.load_model
    return loader(version)


def score_model(model: Any, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(score, decision) per row: P(>50K), and what the model decides (for a mitigated model its
    group thresholds; otherwise score >= 0.5), the one scoring rule of ``core.scoring``."""
    from mlgov_assets.core.models.scoring import score_frame

    scored = score_frame(model, features)
    return scored["score"].to_numpy(dtype=np.float64), scored["decision"].to_numpy(dtype=np.int64)


def latest_challenger(registry: Any, champion: int | None) -> int | None:
    """The shadow model: the most recently registered version that is not the champion, of the
    champion's own variant when there is one (with mitigation on, every unmitigated challenger is
    refused by the fairness gate by design: shadowing it would compare against a model that can
    never ship)."""
    others = [v for v in registry.versions() if v != champion]
    if not others:
        return None
    if champion is not None:
        variant = registry.version_info(champion)["tags"].get("mlgov.variant")
        same = [v for v in others if registry.version_info(v)["tags"].get("mlgov.variant") == variant]
        if same:
            return max(same)
    return max(others)


def score_batch(
    settings: Any, registry: Any, batch: pd.DataFrame, *, webhook_url: str | None = None, log: Any = None
) -> pd.DataFrame:
    """Champion scores and, in shadow, the latest challenger's, for every row of a validated batch.

    Models are loaded only through ``Registry.load_model`` (it verifies every artifact's sha256);
    a champion that fails verification stops scoring, a shadow that fails it is dropped with an alert.
    """
    from mlgov_assets.core.integrity import IntegrityError

    batch_id = batch.attrs.get("batch_id", "?")
    if not batch.attrs.get("valid"):
        raise MonitoringError(f"refusing to score batch {batch_id}: it failed validation (quarantined)")
    champion = registry.champion_version()
    if champion is None:
        raise MonitoringError("no champion yet: train one (`mlgov train` or Materialize all) before monitoring batches")
    paths = MonitoringPaths.of(settings)
    features = model_inputs(batch)
    try:
        champ_model = load_verified(registry, champion)
    except IntegrityError as exc:
        raise_alert(
            paths,
            "integrity",
            f"champion v{champion} failed artifact verification: {exc}",
            severity="ERROR",
            batch_id=batch_id,
            webhook_url=webhook_url,
            log=log,
        )
        raise
    score, decision = score_model(champ_model, features)
    out = pd.DataFrame({ROW_ID: batch[ROW_ID].to_numpy(), "champion_score": score, "champion_decision": decision})
    shadow = latest_challenger(registry, champion)
    shadow_gates: dict[str, bool] = {}
    if shadow is not None:
        try:
            out["shadow_score"], out["shadow_decision"] = score_model(load_verified(registry, shadow), features)
            shadow_gates = {name: rec.passed for name, rec in registry.gate_records(shadow).items()}
        except IntegrityError as exc:
            raise_alert(
                paths,
                "integrity",
                f"shadow v{shadow} failed artifact verification and was not used: {exc}",
                severity="ERROR",
                batch_id=batch_id,
                webhook_url=webhook_url,
                log=log,
            )
            shadow = None
    out.attrs = {
        "batch_id": batch_id,
        "champion_version": int(champion),
        "shadow_version": None if shadow is None else int(shadow),
        "shadow_gates": shadow_gates,
    }
    BatchLedger(paths).update(
        batch_id, champion_version=int(champion), shadow_version=None if shadow is None else int(shadow)
    )
    return out


# --------------------------------------------------------------------------- the reference


@dataclass(frozen=True)
class Reference:
    """The champion's training data: where its bytes are read from and their md5 (DVC's)."""

    rel_path: str
    md5: str
    path: Path
    source: str  # "project" | "dvc-cache"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.rel_path, "md5": self.md5, "read_from": str(self.path), "source": self.source}


def champion_reference(settings: Any, version_info: Mapping[str, Any]) -> Reference:
    """Resolve the training data recorded on the champion (tags ``mlgov.train_data_path/md5``).

    The working-tree file is used if its bytes still hash to the recorded md5; otherwise the DVC
    cache object with that md5 (content-addressed, so it *is* those bytes). Anything else is an
    error: comparing batches with data the champion never saw would be a silent lie.
    """
    from mlgov_assets.core.data.datasets import cache_dir
    from mlgov_assets.core.integrity import dvc_cache_path

    tags = version_info.get("tags", {})
    rel, md5 = tags.get("mlgov.train_data_path"), tags.get("mlgov.train_data_md5")
    if not rel or not md5:
        raise MonitoringError(f"model version {version_info.get('version')} has no mlgov.train_data_path/md5 tags")
    project = Path(settings.project_dir)
    candidate = project / rel
    if candidate.is_file() and md5_file(candidate) == md5:
        return Reference(rel, md5, candidate, "project")
    cached = dvc_cache_path(cache_dir(project), md5)
    if cached.is_file() and md5_file(cached) == md5:
        return Reference(rel, md5, cached, "dvc-cache")
    raise MonitoringError(
        f"the champion's training data {rel} (md5 {md5}) is neither in the project nor in the "
        f"DVC cache: run `mlgov data pull` (or `dvc pull`) to restore it"
    )


def read_reference(ref: Reference) -> pd.DataFrame:
    return read_adult_csv(ref.path)


def reference_profile(
    paths: MonitoringPaths, ref: Reference, *, bins: int, raw: pd.DataFrame | None = None
) -> tuple[ReferenceProfile, dict[str, Any]]:
    """The data-side profile of ``ref`` (built once per reference md5 and ``bins``, then loaded) and
    small facts about it (row count, positive-label share) kept in ``meta.json``."""
    folder = paths.reference / ref.md5
    path = folder / f"profile-b{bins}.json"
    meta_path = folder / "meta.json"
    if path.exists() and meta_path.exists():
        with contextlib.suppress(ValueError, OSError, KeyError):
            return ReferenceProfile.load(path), json.loads(meta_path.read_text(encoding="utf-8"))
    raw = read_reference(ref) if raw is None else raw
    profile = ReferenceProfile.build(typed_for_drift(raw), DRIFT_NUMERIC, DRIFT_CATEGORICAL, bins=bins)
    profile.save(path)
    labels = raw[LABEL] if LABEL in raw.columns else pd.Series(dtype=object)
    meta = {
        "md5": ref.md5,
        "path": ref.rel_path,
        "rows": len(raw),
        "positive_rate": float((labels == POSITIVE_LABEL).mean()) if len(labels) else None,
        "fingerprint": profile.fingerprint,
        "built_at": utc_now(),
    }
    atomic_write_text(meta_path, to_json(meta, indent=1, sort_keys=True) + "\n")
    return profile, meta


def profile_with_champion(
    paths: MonitoringPaths,
    ref: Reference,
    profile: ReferenceProfile,
    *,
    champion: int,
    load_model: Callable[[int], Any],
) -> ReferenceProfile:
    """The profile plus the champion's scores on the reference rows (for prediction drift), cached
    per (reference md5, bins, champion version): scoring 32k rows happens once per champion."""
    path = paths.reference / ref.md5 / f"profile-b{profile.bins}-champion-v{champion}.json"
    if path.exists():
        with contextlib.suppress(ValueError, OSError, KeyError):
            loaded = ReferenceProfile.load(path)
            if loaded.data_fingerprint == profile.fingerprint:
                return loaded
    scores, _ = score_model(load_model(champion), model_inputs(read_reference(ref)))
    combined = profile.with_prediction(scores)
    combined.save(path)
    return combined


# --------------------------------------------------------------------------- drift


def assess_drift(
    settings: Any, policy: Any, registry: Any, batch: pd.DataFrame, scores: pd.DataFrame, *, log: Any = None
) -> dict[str, Any]:
    """Drift of one batch against the champion's training data, judged by the policy.

    Data drift on the 14 input columns (the policy's test per column type and thresholds) and
    prediction drift of the champion's scores. A batch smaller than ``monitoring.min_batch_rows``
    is reported but not judged (too few rows for a verdict to mean anything). A judged dataset
    drift is a breach: recorded in the ledger (the retraining sensor reads it) and alerted.
    """
    paths = MonitoringPaths.of(settings)
    batch_id = batch.attrs.get("batch_id", "?")
    champion = int(scores.attrs["champion_version"])
    ref = champion_reference(settings, registry.version_info(champion))
    data_profile, meta = reference_profile(paths, ref, bins=policy.drift.bins)
    profile = profile_with_champion(
        paths, ref, data_profile, champion=champion, load_model=lambda v: load_verified(registry, v)
    )
    th = DriftThresholds.from_policy(policy.drift)
    report = compute_drift(profile, typed_for_drift(batch), th, current_prediction=scores["champion_score"].to_numpy())
    min_rows = policy.monitoring.min_batch_rows
    judged = len(batch) >= min_rows
    breach = judged and report.dataset_drift
    pred = report.prediction
    compact = {
        "judged": judged,
        "verdict": report.verdict if judged else "not judged",
        "breach": breach,
        "dataset_drift": report.dataset_drift,
        "drifted_share": report.drifted_share,
        "n_drifted": report.n_drifted,
        "n_columns": report.n_columns,
        "drifted_columns": report.drifted_columns,
        "warn_columns": report.warn_columns,
        "prediction_verdict": pred.verdict if pred else None,
        "prediction_psi": pred.psi if pred else None,
        "elapsed_s": report.elapsed_s,
        "reason": None if judged else f"{len(batch)} rows < monitoring.min_batch_rows ({min_rows})",
    }
    reference = {
        **ref.to_dict(),
        "fingerprint": data_profile.fingerprint,
        "rows": meta.get("rows"),
        "positive_rate": meta.get("positive_rate"),
    }
    BatchLedger(paths).update(
        batch_id, status="scored", drift=compact, reference=reference, policy_sha256=policy.sha256
    )
    if breach:
        raise_alert(
            paths,
            "dataset_drift",
            f"batch {batch_id}: dataset drift vs the champion v{champion}'s training data: "
            f"{report.n_drifted}/{report.n_columns} columns drifted ({', '.join(report.drifted_columns)}); "
            f"prediction drift {compact['prediction_verdict']}",
            batch_id=batch_id,
            identity={"champion": champion, "reference": data_profile.fingerprint},
            webhook_url=policy.monitoring.webhook_url,
            log=log,
            evidence={"drift": compact, "reference": reference},
        )
    return {
        "batch_id": batch_id,
        "champion_version": champion,
        "reference": reference,
        "policy_sha256": policy.sha256,
        **compact,
        "report": report.to_dict(),
    }


# --------------------------------------------------------------------------- labels and performance


def collect_labels(landing_dir: Path, batch: pd.DataFrame) -> tuple[pd.Series, dict[str, Any]]:
    """0/1 labels per row (NaN where none), from the batch's own ``income`` column and/or the delayed
    ``<batch_id>.labels.csv|parquet``. The delayed file is the later truth: it wins where both have a
    label, and disagreements are counted in the returned info."""
    index = pd.Index(batch[ROW_ID].to_numpy(), name=ROW_ID)
    inline = pd.Series(np.nan, index=index, name="y")
    if LABEL in batch.columns:
        text = batch[LABEL].to_numpy()
        has = pd.notna(text)
        inline[has] = (text[has] == POSITIVE_LABEL).astype(float)
    info: dict[str, Any] = {"inline": int(inline.notna().sum()), "file": None, "file_md5": None, "conflicts": 0}
    y = inline.copy()
    path = find_labels_file(landing_dir, str(batch.attrs.get("batch_id")))
    if path is not None:
        delayed = align_labels(index, read_labels(path))
        both = delayed.notna() & inline.notna()
        info.update(
            file=path.name,
            file_md5=md5_file(path),
            from_file=int(delayed.notna().sum()),
            conflicts=int((delayed[both] != inline[both]).sum()),
        )
        y = delayed.combine_first(inline)
    info["n_labelled"] = int(y.notna().sum())
    return y, info


def record_labels(settings: Any, batch: pd.DataFrame) -> tuple[pd.Series, dict[str, Any]]:
    """Collect the batch's labels (:func:`collect_labels`) and keep them in the ledger
    (``labels.parquet`` + ``labels`` info): they are what a retraining dataset is built from.
    Called when the batch is accepted, so a drift breach can be retrained on at once, and again
    by the performance step, which also sees labels that arrived later."""
    ledger = BatchLedger(MonitoringPaths.of(settings))
    batch_id = str(batch.attrs.get("batch_id"))
    y, info = collect_labels(settings.landing_dir, batch)
    if info["n_labelled"]:
        labels = y.dropna()
        frame = pd.DataFrame(
            {
                ROW_ID: labels.index.to_numpy(dtype=np.int64),
                LABEL: np.where(labels.to_numpy() == 1, POSITIVE_LABEL, "<=50K"),
            }
        )
        atomic_write_with(ledger.labels_path(batch_id), lambda tmp: frame.to_parquet(tmp, index=False))
    ledger.update(batch_id, labels=info)
    return y, info


def performance_report(
    y: pd.Series,
    scores: pd.DataFrame,
    *,
    champion_metrics: Mapping[str, Any],
    tolerance: Mapping[str, float],
    min_rows: int,
    alpha: float,
    reference_positive_rate: float | None,
) -> dict[str, Any]:
    """Champion (and shadow) metrics on the labelled rows, the breach verdict against the champion's
    holdout metrics (``monitoring.performance_tolerance``), concept-drift evidence, and McNemar's
    paired test champion vs shadow on their decisions — a recommendation only, never a promotion.

    ROC AUC is computed on scores, accuracy/precision/recall on decisions (what the model decides,
    which for a fairness-mitigated model is not ``score >= 0.5``), as the training path does.
    """
    y = y.reindex(pd.Index(scores[ROW_ID].to_numpy()))
    mask = y.notna().to_numpy()
    n = int(mask.sum())
    if n == 0:
        return {"labelled": False, "n_labelled": 0, "judged": False, "breach": False, "status": "awaiting labels"}
    yt = y.to_numpy()[mask].astype(int)
    out: dict[str, Any] = {"labelled": True, "n_labelled": n}
    out["champion"] = _model_metrics(yt, scores, "champion", mask)
    verdict = performance_breach(champion_metrics, out["champion"], tolerance)
    out["judged"] = n >= min_rows
    out["breach"] = bool(out["judged"] and verdict["breach"])
    out["breached_metrics"] = verdict["breached_metrics"] if out["judged"] else []
    out["comparison"] = verdict["metrics"]
    out["reason"] = None if out["judged"] else f"{n} labelled rows < monitoring.min_batch_rows ({min_rows})"
    champ = scores["champion_score"].to_numpy()[mask]
    positive_rate = float(yt.mean())
    out["concept"] = {
        "positive_rate": positive_rate,
        "reference_positive_rate": reference_positive_rate,
        "label_shift": None if reference_positive_rate is None else positive_rate - reference_positive_rate,
        "mean_champion_score": float(champ.mean()),
        # observed minus expected positive rate: P(y|x) moved if the scores no longer match outcomes
        "calibration_gap": positive_rate - float(champ.mean()),
    }
    if "shadow_score" in scores.columns:
        out["shadow"] = _model_metrics(yt, scores, "shadow", mask)
        test = mcnemar_test(
            yt, scores["champion_decision"].to_numpy()[mask], scores["shadow_decision"].to_numpy()[mask], alpha=alpha
        )
        test["recommendation"] = (
            test["recommendation"].replace("model a", "the champion").replace("model b", "the shadow")
        )
        out["mcnemar"] = test
    out["status"] = "breach" if out["breach"] else ("ok" if out["judged"] else "not judged")
    return out


def _model_metrics(y: np.ndarray, scores: pd.DataFrame, who: str, mask: np.ndarray) -> dict[str, Any]:
    ranked = performance_metrics(y, scores[f"{who}_score"].to_numpy()[mask])
    decided = performance_metrics(y, scores[f"{who}_decision"].to_numpy()[mask].astype(np.float64), 0.5)
    out = {**decided, "roc_auc": ranked["roc_auc"], "reasons": {**decided["reasons"]}}
    out["reasons"].pop("roc_auc", None)
    if "roc_auc" in ranked["reasons"]:
        out["reasons"]["roc_auc"] = ranked["reasons"]["roc_auc"]
    out.pop("threshold", None)
    return out


def assess_performance(
    settings: Any, policy: Any, registry: Any, batch: pd.DataFrame, scores: pd.DataFrame, *, log: Any = None
) -> dict[str, Any]:
    """Performance of one batch once labels exist; records the labels for retraining and alerts a breach."""
    paths = MonitoringPaths.of(settings)
    ledger = BatchLedger(paths)
    batch_id = batch.attrs.get("batch_id", "?")
    champion = int(scores.attrs["champion_version"])
    y, info = record_labels(settings, batch)
    entry = ledger.get(batch_id) or {}
    ref_rate = (entry.get("reference") or {}).get("positive_rate")
    perf = performance_report(
        y,
        scores,
        champion_metrics=registry.version_info(champion)["metrics"],
        tolerance=policy.monitoring.performance_tolerance,
        min_rows=policy.monitoring.min_batch_rows,
        alpha=policy.drift.p_value,
        reference_positive_rate=ref_rate,
    )
    compact = {
        k: perf.get(k) for k in ("labelled", "n_labelled", "judged", "breach", "breached_metrics", "status", "reason")
    }
    compact["champion"] = {
        k: (perf.get("champion") or {}).get(k) for k in ("accuracy", "precision", "recall", "roc_auc")
    }
    if "shadow" in perf:
        compact["shadow"] = {k: perf["shadow"].get(k) for k in ("accuracy", "precision", "recall", "roc_auc")}
        compact["mcnemar"] = {k: perf["mcnemar"].get(k) for k in ("p_value", "better", "significant", "recommendation")}
    ledger.update(batch_id, performance=compact)
    if perf["breach"]:
        raise_alert(
            paths,
            "performance_breach",
            f"batch {batch_id}: champion v{champion} performance dropped beyond tolerance on "
            f"{perf['n_labelled']} labelled rows: {', '.join(perf['breached_metrics'])}",
            batch_id=batch_id,
            identity={"champion": champion, "labels": info.get("file_md5") or info["inline"]},
            webhook_url=policy.monitoring.webhook_url,
            log=log,
            evidence={"performance": compact},
        )
    return {"batch_id": batch_id, "champion_version": champion, "labels": info, "policy_sha256": policy.sha256, **perf}


# --------------------------------------------------------------------------- Evidently report (for people)


def evidently_report(
    settings: Any,
    policy: Any,
    registry: Any,
    batch: pd.DataFrame,
    drift: Mapping[str, Any],
    *,
    max_rows: int = EVIDENTLY_MAX_ROWS,
    seed: int = 0,
    dagster_run_id: str | None = None,
) -> dict[str, Any]:
    """Evidently's ``DataDriftPreset`` HTML for one batch, with the policy's tests and thresholds,
    both sides sampled to ``max_rows`` rows; logged to MLflow (experiment ``monitoring``, one run per
    batch) with the engine's full report, so a person can read both side by side."""
    from mlgov_assets.core.monitoring.drift import (
        evidently_details_from_snapshot,
        evidently_options,
        evidently_snapshot,
    )

    batch_id = str(drift["batch_id"])
    ref_doc = drift["reference"]
    ref = Reference(ref_doc["path"], ref_doc["md5"], Path(ref_doc["read_from"]), ref_doc["source"])
    reference = typed_for_drift(read_reference(ref))
    current = typed_for_drift(batch)
    rng = np.random.default_rng(seed)
    ref_s = reference.iloc[np.sort(rng.choice(len(reference), min(max_rows, len(reference)), replace=False))]
    cur_s = current.iloc[np.sort(rng.choice(len(current), min(max_rows, len(current)), replace=False))]
    th = DriftThresholds.from_policy(policy.drift)
    t0 = time.perf_counter()
    snapshot = evidently_snapshot(ref_s, cur_s, DRIFT_NUMERIC, DRIFT_CATEGORICAL, **evidently_options(th))
    details = evidently_details_from_snapshot(snapshot, DRIFT_NUMERIC + DRIFT_CATEGORICAL)
    elapsed = time.perf_counter() - t0
    ev_drifted = sorted(c for c, d in details.items() if d["drifted"])
    engine_drifted = sorted(drift.get("drifted_columns") or [])
    client = registry.client
    exp_id = _monitoring_experiment(client, settings)
    run = client.create_run(
        exp_id,
        run_name=f"batch {batch_id}",
        tags={
            "mlgov.batch_id": batch_id,
            "mlgov.champion_version": str(drift["champion_version"]),
            "mlgov.reference_md5": ref.md5,
            "mlgov.dagster_run_id": dagster_run_id or "",
            "mlgov.policy_sha256": policy.sha256,
        },
    )
    run_id = run.info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "data_drift.html"
        snapshot.save_html(str(html))
        client.log_artifact(run_id, str(html), "evidently")
    client.log_text(run_id, to_json(_nan_to_none(dict(drift)), indent=1, sort_keys=True), "drift/engine_report.json")
    client.log_metric(run_id, "drifted_share", float(drift.get("drifted_share") or 0.0))
    client.log_metric(run_id, "evidently_drifted_columns", float(len(ev_drifted)))
    client.set_terminated(run_id)
    artifact_dir = _uri_path(client.get_run(run_id).info.artifact_uri)
    return {
        "batch_id": batch_id,
        "mlflow_run_id": run_id,
        "mlflow_experiment_id": exp_id,
        "html_path": str(artifact_dir / "evidently" / "data_drift.html"),
        "sampled_rows": {"reference": len(ref_s), "current": len(cur_s)},
        "elapsed_s": elapsed,
        "evidently_drifted_columns": ev_drifted,
        "engine_drifted_columns": engine_drifted,
        "agreement": {
            "same": sorted(set(ev_drifted) & set(engine_drifted)),
            "only_evidently": sorted(set(ev_drifted) - set(engine_drifted)),
            "only_engine": sorted(set(engine_drifted) - set(ev_drifted)),
        },
        "evidently": details,
    }


def _monitoring_experiment(client: Any, settings: Any) -> str:
    exp = client.get_experiment_by_name(MONITORING_EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(
            MONITORING_EXPERIMENT, artifact_location=(Path(settings.artifact_root) / "monitoring").as_uri()
        )
    except Exception:
        return client.get_experiment_by_name(MONITORING_EXPERIMENT).experiment_id


def _uri_path(uri: str) -> Path:
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme in ("file", "") else Path(uri)


# --------------------------------------------------------------------------- retraining


@dataclass
class RetrainPlan:
    """A retraining request, decided from the ledger: which breaches, which data, which recipe."""

    run_key: str
    champion_version: int
    trigger_batch_ids: list[str]
    reasons: dict[str, list[str]]
    reference: dict[str, Any]
    training_batch_ids: list[str]
    new_labelled_rows: int
    params: dict[str, Any]

    @property
    def dataset_rel(self) -> str:
        return f"{GENERATED_DIR}/{self.run_key}.csv"

    def run_config(self) -> dict[str, Any]:
        """The governed_training job's config: the new dataset, and the champion's own hyperparameters
        (retraining changes the data, not the recipe)."""
        ops: dict[str, Any] = {"training_data": {"config": {"path": self.dataset_rel}}}
        if self.params:
            ops["challenger_model"] = {"config": dict(self.params)}
        return {"ops": ops}

    def tags(self, trigger: str) -> dict[str, str]:
        return {
            "mlgov/trigger": trigger,
            "mlgov/retrain_key": self.run_key,
            "mlgov/retrain_batches": ",".join(self.trigger_batch_ids)[:200],
            "mlgov/retrain_champion": str(self.champion_version),
        }

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"dataset": self.dataset_rel, "run_config": self.run_config()}


@dataclass
class RetrainDecision:
    kind: str  # "none" | "request" | "pending_labels"
    message: str
    plan: RetrainPlan | None = None
    breaches: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "breaches": self.breaches,
            "plan": self.plan.to_dict() if self.plan else None,
        }


def breach_reasons(entry: Mapping[str, Any], retrain_on: list[str]) -> list[str]:
    """Why a batch calls for retraining under the policy's ``monitoring.retrain_on`` (empty: it does not)."""
    if entry.get("status") != "scored":
        return []
    reasons = []
    if "dataset_drift" in retrain_on and (entry.get("drift") or {}).get("breach"):
        reasons.append("dataset_drift")
    perf = entry.get("performance") or {}
    if "performance" in retrain_on and perf.get("breach"):
        reasons.append("performance")
    return reasons


def dataset_manifest_path(dataset: Path) -> Path:
    return dataset.with_name(dataset.stem + ".manifest.json")


def lineage_batch_ids(project_dir: Path, train_data_path: str) -> list[str]:
    """Batches already inside a training dataset (from its manifest; the shipped data has none)."""
    manifest = dataset_manifest_path(Path(project_dir) / train_data_path)
    if not manifest.exists():
        return []
    return list(json.loads(manifest.read_text(encoding="utf-8")).get("included_batch_ids", []))


def champion_hyperparams(params: Mapping[str, str]) -> dict[str, Any]:
    """The champion's hyperparameters, as MLflow stored them (strings), typed back for the job config."""
    from mlgov_assets.core.models.training import HyperParams

    hints = typing.get_type_hints(HyperParams)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(HyperParams):
        raw = params.get(f.name)
        if raw is None:
            continue
        tp = hints[f.name]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        base = args[0] if args else tp
        out[f.name] = None if raw in ("None", "") else base(float(raw)) if base is int else base(raw)
    return out


def plan_retraining(
    ledger: BatchLedger,
    requests: list[dict[str, Any]],
    *,
    champion: int | None,
    champion_info: Mapping[str, Any] | None,
    project_dir: Path,
    retrain_on: list[str],
) -> RetrainDecision:
    """Decide whether a retraining run is due, from the ledger and the earlier requests.

    Breaches count only against the champion that scored the batch (after a new champion, old
    breaches are history). A breach already covered by a request for this champion is handled,
    so repeated ticks, fresh cursors and daemon restarts decide the same thing. The run key is
    ``batches.retrain_run_key`` over the unhandled breaching batches, the reference fingerprint and
    the champion version. The training set is the reference plus every labelled batch not already in
    the champion's training data; with no new labelled row, retraining would refit the same data,
    so the decision is ``pending_labels`` until labels arrive.
    """
    if champion is None or champion_info is None:
        return RetrainDecision("none", "no champion")
    entries = ledger.entries()
    breaching = {e["batch_id"]: breach_reasons(e, retrain_on) for e in entries if e.get("champion_version") == champion}
    breaching = {k: v for k, v in breaching.items() if v}
    if not breaching:
        return RetrainDecision("none", f"no breach against champion v{champion}")
    handled = {b for r in requests if r.get("champion_version") == champion for b in r.get("trigger_batch_ids", [])}
    new = sorted(b for b in breaching if b not in handled)
    if not new:
        return RetrainDecision(
            "none", f"breaches {sorted(breaching)} already have a retraining request", breaches=sorted(breaching)
        )
    in_lineage = set(lineage_batch_ids(project_dir, champion_info["tags"].get("mlgov.train_data_path", "")))
    training = [
        e
        for e in entries
        if e.get("status") == "scored"
        and e["batch_id"] not in in_lineage
        and (e.get("labels") or {}).get("n_labelled", 0) > 0
        and ledger.labels_path(e["batch_id"]).exists()
    ]
    n_rows = sum(int(e["labels"]["n_labelled"]) for e in training)
    by_id = {e["batch_id"]: e for e in entries}
    reference = dict(by_id[new[-1]].get("reference") or {})
    if not n_rows:
        return RetrainDecision(
            "pending_labels",
            f"breach in {new} against champion v{champion}, but no labelled batch "
            f"rows beyond its training data yet: retraining waits for labels",
            breaches=new,
        )
    key = retrain_run_key(
        {"batch_ids": new, "reference_fingerprint": reference.get("fingerprint"), "champion_version": champion}
    )
    plan = RetrainPlan(
        run_key=key,
        champion_version=int(champion),
        trigger_batch_ids=new,
        reasons={b: breaching[b] for b in new},
        reference=reference,
        training_batch_ids=[e["batch_id"] for e in training],
        new_labelled_rows=n_rows,
        params=champion_hyperparams(champion_info.get("params", {})),
    )
    why = ", ".join(f"{b} ({'+'.join(breaching[b])})" for b in new)
    return RetrainDecision("request", f"retrain: {why}", plan=plan, breaches=new)


def build_retraining_dataset(
    settings: Any, plan: RetrainPlan, *, holdout_rel: str = HOLDOUT_FILE, log: Any = None
) -> dict[str, Any]:
    """Write ``data/generated/<run_key>.csv`` = the champion's training rows + the labelled rows of
    the plan's batches (with their labels), in the Adult layout with a header, plus a manifest; and
    make it a DVC-versioned dataset (``core.datasets.ensure_tracked``).

    Deterministic per run key and written once: a re-emitted request trains on the same bytes.
    Rows that also occur verbatim in the holdout are counted (``holdout_overlap_rows``): simulated
    batches are drawn from adult.test, so a retrained model has then seen holdout rows and its
    holdout metrics are optimistic; the count makes that visible rather than hidden.
    """
    from mlgov_assets.core.data.datasets import ensure_tracked

    project = Path(settings.project_dir)
    out = project / plan.dataset_rel
    manifest_path = dataset_manifest_path(out)
    ledger = BatchLedger(MonitoringPaths.of(settings))
    if not (out.exists() and manifest_path.exists()):
        ref_doc = plan.reference
        reference = read_adult_csv(Path(ref_doc["read_from"]))[COLUMNS]
        if md5_file(Path(ref_doc["read_from"])) != ref_doc["md5"]:
            raise MonitoringError(
                f"reference {ref_doc['read_from']} changed since it was profiled (md5 {ref_doc['md5']})"
            )
        parts, per_batch = [reference], {}
        for batch_id in plan.training_batch_ids:
            rows = pd.read_parquet(ledger.rows_path(batch_id)).set_index(ROW_ID)
            labels = pd.read_parquet(ledger.labels_path(batch_id)).set_index(ROW_ID)[LABEL]
            labelled = rows.drop(columns=[LABEL], errors="ignore").join(labels, how="inner")[COLUMNS]
            parts.append(labelled.reset_index(drop=True))
            per_batch[batch_id] = len(labelled)
        df = pd.concat(parts, ignore_index=True)
        overlap = (
            _holdout_overlap(project / holdout_rel, pd.concat(parts[1:], ignore_index=True)) if len(parts) > 1 else 0
        )
        atomic_write_with(out, lambda tmp: df.to_csv(tmp, index=False))
        lineage = lineage_batch_ids(project, ref_doc.get("path", ""))
        manifest = {
            "dataset": plan.dataset_rel,
            "run_key": plan.run_key,
            "created_at": utc_now(),
            "reference": {"path": ref_doc.get("path"), "md5": ref_doc.get("md5"), "rows": len(reference)},
            "batches": per_batch,
            "rows": len(df),
            "holdout_overlap_rows": int(overlap),
            "trigger_batch_ids": plan.trigger_batch_ids,
            "champion_version": plan.champion_version,
            "included_batch_ids": sorted(set(lineage) | set(per_batch)),
        }
        atomic_write_text(manifest_path, to_json(manifest, indent=1, sort_keys=True) + "\n")
        if overlap:
            _emit(
                log,
                "warning",
                f"{plan.dataset_rel}: {overlap} batch rows also occur verbatim in {holdout_rel}; "
                f"the retrained model's holdout metrics will be optimistic",
            )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    tracked = ensure_tracked(project, out, site_cache=Path(settings.dvc_site_cache))
    return {
        **manifest,
        "md5": tracked.md5,
        "dvc_file": str(tracked.dvc_file.relative_to(project)),
        "added_to_dvc_now": tracked.added_now,
    }


def _holdout_overlap(holdout_path: Path, rows: pd.DataFrame) -> int:
    if not holdout_path.exists() or rows.empty:
        return 0
    holdout = read_adult_csv(holdout_path)[COLUMNS].drop_duplicates()
    return len(rows.merge(holdout, on=COLUMNS, how="inner"))


def read_retrain_requests(paths: MonitoringPaths) -> list[dict[str, Any]]:
    return read_jsonl(paths.retraining)


def record_retrain_request(
    paths: MonitoringPaths, plan: RetrainPlan, dataset: Mapping[str, Any], *, trigger: str, policy_sha256: str
) -> dict[str, Any]:
    record = {
        "at": utc_now(),
        "run_key": plan.run_key,
        "champion_version": plan.champion_version,
        "trigger_batch_ids": plan.trigger_batch_ids,
        "reasons": plan.reasons,
        "training_batch_ids": plan.training_batch_ids,
        "new_labelled_rows": plan.new_labelled_rows,
        "dataset": plan.dataset_rel,
        "dataset_md5": dataset.get("md5"),
        "rows": dataset.get("rows"),
        "holdout_overlap_rows": dataset.get("holdout_overlap_rows"),
        "run_config": plan.run_config(),
        "tags": plan.tags(trigger),
        "trigger": trigger,
        "policy_sha256": policy_sha256,
    }
    _append_jsonl(paths.retraining, record)
    return record


def unlaunched_requests(
    requests: list[dict[str, Any]],
    champion: int | None,
    has_run: Callable[[str], bool],
    skip: set[str] | None = None,
) -> list[dict[str, Any]]:
    """Recorded requests for the current champion whose run never appeared on the instance (the
    process stopped between recording and launching): re-emitting them with the same run key is
    safe, since Dagster launches a run key once."""
    skip = skip or set()
    return [
        r
        for r in requests
        if r.get("champion_version") == champion and r["run_key"] not in skip and not has_run(r["run_key"])
    ]


def request_retraining(
    settings: Any, policy: Any, registry: Any, *, has_run: Callable[[str], bool], trigger: str, log: Any = None
) -> tuple[RetrainDecision, dict[str, Any] | None]:
    """What the retraining sensor and ``mlgov monitor --once`` do: plan, and if a run is due and its
    run key was never launched, build and DVC-version the dataset, record the request and alert.
    Returns the decision and the recorded request (None when nothing new is to be launched)."""
    paths = MonitoringPaths.of(settings)
    ledger = BatchLedger(paths)
    champion = registry.champion_version()
    info = registry.version_info(champion) if champion is not None else None
    requests = read_retrain_requests(paths)
    decision = plan_retraining(
        ledger,
        requests,
        champion=champion,
        champion_info=info,
        project_dir=Path(settings.project_dir),
        retrain_on=list(policy.monitoring.retrain_on),
    )
    webhook = policy.monitoring.webhook_url
    if decision.kind == "pending_labels":
        raise_alert(
            paths,
            "retrain_pending_labels",
            decision.message,
            identity={"breaches": decision.breaches, "champion": champion},
            webhook_url=webhook,
            log=log,
        )
        return decision, None
    if decision.kind != "request" or decision.plan is None:
        return decision, None
    plan = decision.plan
    if has_run(plan.run_key):
        return RetrainDecision("none", f"run key {plan.run_key} was already launched", breaches=decision.breaches), None
    dataset = build_retraining_dataset(settings, plan, log=log)
    record = record_retrain_request(paths, plan, dataset, trigger=trigger, policy_sha256=policy.sha256)
    raise_alert(
        paths,
        "retrain_requested",
        f"retraining requested ({plan.run_key}) after {decision.message.removeprefix('retrain: ')}; dataset "
        f"{plan.dataset_rel} ({dataset.get('rows')} rows, {plan.new_labelled_rows} new labelled), "
        f"against champion v{plan.champion_version}",
        identity=plan.run_key,
        webhook_url=webhook,
        log=log,
        evidence={"plan": plan.to_dict(), "dataset": dataset},
    )
    return decision, record


# --------------------------------------------------------------------------- summary and status


def monitoring_summary(settings: Any, last_n: int) -> dict[str, Any]:
    """Drift and performance over the last ``last_n`` batches (policy ``monitoring.summary_last_n_batches``)."""
    paths = MonitoringPaths.of(settings)
    entries = BatchLedger(paths).entries()[-last_n:] if last_n > 0 else []
    rows = [_summary_row(e) for e in entries]
    ids = {e["batch_id"] for e in entries}
    since = entries[0].get("created_at", "") if entries else utc_now()
    column_counts: dict[str, int] = {}
    for e in entries:
        for c in (e.get("drift") or {}).get("drifted_columns") or []:
            column_counts[c] = column_counts.get(c, 0) + 1
    alerts = [a for a in read_jsonl(paths.alerts) if a.get("at", "") >= since]
    retrains = [r for r in read_retrain_requests(paths) if set(r.get("trigger_batch_ids", [])) & ids]
    judged = [e for e in entries if (e.get("drift") or {}).get("judged")]
    accuracies = [r["accuracy"] for r in rows if r.get("accuracy") is not None]
    return {
        "generated_at": utc_now(),
        "window": {"last_n": last_n, "batches": len(entries), "since": since},
        "counts": {
            "batches": len(entries),
            "quarantined": sum(e.get("status") == "quarantined" for e in entries),
            "dataset_drift": sum(bool((e.get("drift") or {}).get("breach")) for e in entries),
            "labelled": sum(bool((e.get("performance") or {}).get("labelled")) for e in entries),
            "performance_breach": sum(bool((e.get("performance") or {}).get("breach")) for e in entries),
            "retraining_requests": len(retrains),
            "alerts": len(alerts),
        },
        "drift_rate": (sum(bool(e["drift"].get("breach")) for e in judged) / len(judged)) if judged else None,
        "mean_accuracy": float(np.mean(accuracies)) if accuracies else None,
        "most_drifted_columns": sorted(column_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5],
        "batches": rows,
        "retraining": [
            {k: r.get(k) for k in ("at", "run_key", "champion_version", "trigger_batch_ids", "dataset")}
            for r in retrains
        ],
    }


def _summary_row(e: Mapping[str, Any]) -> dict[str, Any]:
    drift, perf = e.get("drift") or {}, e.get("performance") or {}
    champ = perf.get("champion") or {}
    return {
        "batch_id": e.get("batch_id"),
        "landed_at": e.get("landed_at"),
        "rows": e.get("rows"),
        "status": e.get("status"),
        "champion": e.get("champion_version"),
        "drift": drift.get("verdict"),
        "drifted_share": drift.get("drifted_share"),
        "prediction_drift": drift.get("prediction_verdict"),
        "labelled": perf.get("n_labelled") or 0,
        "accuracy": champ.get("accuracy"),
        "roc_auc": champ.get("roc_auc"),
        "performance": "n/a" if e.get("status") == "quarantined" else (perf.get("status") or "awaiting labels"),
    }


def monitoring_status(settings: Any) -> dict[str, Any]:
    """The latest drift and performance verdicts, for ``mlgov status`` (compact on purpose)."""
    paths = MonitoringPaths.of(settings)
    entries = BatchLedger(paths).entries()
    drifted = [e for e in entries if e.get("drift")]
    perf = [e for e in entries if (e.get("performance") or {}).get("labelled")]
    out: dict[str, Any] = {
        "landing_dir": str(settings.landing_dir),
        "batches": len(entries),
        "quarantined": sum(e.get("status") == "quarantined" for e in entries),
        "latest_drift": None,
        "latest_performance": None,
        "last_retraining": None,
        "alerts": len(read_jsonl(paths.alerts)),
    }
    if drifted:
        e = drifted[-1]
        d = e["drift"]
        out["latest_drift"] = {
            "batch_id": e["batch_id"],
            "verdict": d.get("verdict"),
            "breach": d.get("breach"),
            "drifted_share": d.get("drifted_share"),
            "drifted_columns": d.get("drifted_columns"),
            "prediction_drift": d.get("prediction_verdict"),
            "champion": e.get("champion_version"),
            "at": e.get("updated_at"),
        }
    if perf:
        e = perf[-1]
        p = e["performance"]
        out["latest_performance"] = {
            "batch_id": e["batch_id"],
            "status": p.get("status"),
            "breach": p.get("breach"),
            "n_labelled": p.get("n_labelled"),
            "champion": p.get("champion"),
            "shadow": p.get("shadow"),
            "mcnemar": (p.get("mcnemar") or {}).get("recommendation"),
            "at": e.get("updated_at"),
        }
    requests = read_retrain_requests(paths)
    if requests:
        r = requests[-1]
        out["last_retraining"] = {
            k: r.get(k) for k in ("at", "run_key", "champion_version", "trigger_batch_ids", "dataset", "trigger")
        }
    return out


# --------------------------------------------------------------------------- champion re-evaluation


def reevaluate_champion(
    settings: Any,
    policy: Any,
    registry: Any,
    *,
    actor: str,
    holdout_rel: str = HOLDOUT_FILE,
    dagster_run_id: str | None = None,
    log: Any = None,
) -> dict[str, Any]:
    """Re-run the champion's model gates against the *current* policy, from scratch.

    Loads the champion through ``Registry.load_model`` (artifact sha256 verification), re-scores
    the canonical holdout, checks that the recorded holdout metrics reproduce, and evaluates the
    metric floors and champion comparison of the current policy on the recomputed metrics. Verdicts
    are written to the registry and the decision log only when they changed (new policy hash or
    a different outcome), so a daily schedule does not flood the audit trail. The champion is never
    demoted here: a failure is an ERROR alert for a person (``mlgov rollback``/``promote``).
    """
    from mlgov_assets.core.data.adult import SENSITIVE
    from mlgov_assets.core.data.features import MODEL_FEATURES, TARGET, build_features
    from mlgov_assets.core.data.schemas import RawAdultSchema, validate
    from mlgov_assets.core.governance.gates import evaluate_model_gates
    from mlgov_assets.core.governance.promotion import record_gates
    from mlgov_assets.core.integrity import IntegrityError
    from mlgov_assets.core.models.scoring import holdout_metrics, score_frame

    paths = MonitoringPaths.of(settings)
    champion = registry.champion_version()
    if champion is None:
        return {"champion": None, "passed": True, "summary": "no champion to re-evaluate", "at": utc_now()}
    info = registry.version_info(champion)
    out: dict[str, Any] = {"champion": champion, "policy_sha256": policy.sha256, "at": utc_now(), "problems": []}
    try:
        model = load_verified(registry, champion)
        out["integrity"] = "verified"
    except IntegrityError as exc:
        out.update(
            integrity=f"FAILED: {exc}", passed=False, summary=f"champion v{champion} failed artifact verification"
        )
        out["problems"].append(out["summary"])
        _reevaluation_alert(paths, policy, out, log)
        return out
    holdout_path = Path(settings.project_dir) / holdout_rel
    holdout_md5 = md5_file(holdout_path)
    report = validate(read_adult_csv(holdout_path), RawAdultSchema, source=holdout_rel)
    if not report.passed:
        raise MonitoringError(f"the holdout {holdout_rel} fails its schema: {report.summary()}")
    table = build_features(report.validated)
    recomputed = holdout_metrics(table[TARGET].to_numpy(), score_frame(model, table[MODEL_FEATURES + list(SENSITIVE)]))
    recorded = info["metrics"]
    diffs = {k: abs(recomputed[k] - recorded[k]) for k in recomputed if k in recorded}
    same_holdout = holdout_md5 == info["tags"].get("mlgov.holdout_data_md5")
    out["holdout"] = {
        "path": holdout_rel,
        "md5": holdout_md5,
        "recorded_md5": info["tags"].get("mlgov.holdout_data_md5"),
        "same_as_recorded": same_holdout,
    }
    out["metrics"] = {"recorded": recorded, "recomputed": recomputed, "max_abs_diff": max(diffs.values(), default=0.0)}
    out["reproduced"] = bool(same_holdout and out["metrics"]["max_abs_diff"] < 1e-9)
    if same_holdout and not out["reproduced"]:
        out["problems"].append(
            f"recorded holdout metrics do not reproduce (max diff {out['metrics']['max_abs_diff']:.3g})"
        )
    results = evaluate_model_gates(policy, champion, recomputed, champion, recorded)
    records = registry.gate_records(champion)
    changed = [
        r
        for r in results
        if r.gate not in records or records[r.gate].policy_sha256 != policy.sha256 or records[r.gate].passed != r.passed
    ]
    if changed:
        record_gates(registry, policy, champion, changed, actor=actor, dagster_run_id=dagster_run_id)
    out["gates"] = [
        {"gate": r.gate, "passed": r.passed, "summary": r.summary, "recorded_now": r in changed} for r in results
    ]
    out["not_reevaluated_here"] = [g for g in policy.required_model_gates() if g not in {r.gate for r in results}]
    out["problems"] += [f"{r.gate}: {r.summary}" for r in results if not r.passed]
    out["passed"] = not out["problems"]
    out["summary"] = (
        f"champion v{champion} meets the current policy ({policy.sha256[:12]}) on a fresh evaluation"
        if out["passed"]
        else f"champion v{champion}: " + "; ".join(out["problems"])
    )
    if not out["passed"]:
        _reevaluation_alert(paths, policy, out, log)
    return out


def _reevaluation_alert(paths: MonitoringPaths, policy: Any, result: Mapping[str, Any], log: Any) -> None:
    raise_alert(
        paths,
        "champion_reevaluation_failed",
        str(result["summary"]),
        severity="ERROR",
        identity={"champion": result["champion"], "policy": policy.sha256, "problems": result.get("problems")},
        webhook_url=policy.monitoring.webhook_url,
        log=log,
        evidence=dict(result),
    )


__all__ = [
    "AcceptedBatch",
    "BatchLedger",
    "LandingFile",
    "LandingPlan",
    "MonitoringError",
    "MonitoringPaths",
    "Reference",
    "RetrainDecision",
    "RetrainPlan",
    "accept_batch",
    "assess_drift",
    "assess_performance",
    "breach_reasons",
    "build_retraining_dataset",
    "champion_hyperparams",
    "champion_reference",
    "collect_labels",
    "evidently_report",
    "monitoring_status",
    "monitoring_summary",
    "performance_report",
    "plan_landing",
    "plan_retraining",
    "post_webhook",
    "raise_alert",
    "reevaluate_champion",
    "reference_profile",
    "request_retraining",
    "score_batch",
    "typed_for_drift",
    "unlaunched_requests",
]
