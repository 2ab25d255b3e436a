"""Where monitoring state lives, the JSON helpers it is written with, and the batch ledger.

State sits under ``$MLGOV_HOME/monitoring/``: ``batches/<id>/state.json`` (the ledger, plus the
accepted ``rows.parquet`` and ``labels.parquet``), ``quarantine/<id>/``, ``reference/<md5>/``,
``alerts.jsonl`` and ``retraining.jsonl``. The ledger is readable without a daemon (``mlgov status``,
``mlgov monitor --once``) and by sensors in one cheap file read.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mlgov_assets.core.errors import MlgovError
from mlgov_assets.core.integrity import atomic_write_bytes, file_lock
from mlgov_assets.core.monitoring.batches import validate_batch_id

if TYPE_CHECKING:
    from mlgov_assets.core.settings import Settings

#: A ledger entry: one batch's ``state.json`` (a JSON document merged field by field).
LedgerEntry = dict[str, Any]

#: A batch's status once its drift verdict is recorded (before scoring), then once it is scored.
ASSESSED, SCORED = "assessed", "scored"
#: Statuses of a validated batch with a drift verdict: a breach in either calls for retraining.
JUDGED_STATUSES = (ASSESSED, SCORED)


class MonitoringError(MlgovError):
    """Monitoring cannot proceed; the message says why and what to do (CLI exit 2)."""


class Log(Protocol):
    """The logging calls monitoring makes (Dagster's ``context.log`` and ``logging.Logger`` fit)."""

    def info(self, msg: str) -> object: ...

    def warning(self, msg: str) -> object: ...

    def error(self, msg: str) -> object: ...


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def emit(log: Log | None, level: str, message: str) -> None:
    """Log ``message`` at ``level`` when a logger was given (monitoring also runs without one)."""
    if log is not None:
        getattr(log, level)(message)


# --------------------------------------------------------------------------- locations


@dataclass(frozen=True)
class MonitoringPaths:
    """Where monitoring state lives (all under ``$MLGOV_HOME/monitoring``)."""

    root: Path

    @classmethod
    def of(cls, settings: Settings) -> MonitoringPaths:
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


# --------------------------------------------------------------------------- JSON files


def _json_default(obj: object) -> object:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def nan_to_none(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [nan_to_none(v) for v in obj]
    return obj


def to_json(obj: object, **kw: Any) -> str:
    return json.dumps(obj, default=_json_default, **kw)


def jsonable(obj: Any) -> Any:
    """A deep copy made only of JSON types (numpy scalars, NaN -> None, Paths -> str)."""
    return json.loads(to_json(nan_to_none(obj)))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """One line per record, written with one ``write`` under an exclusive lock, then fsynced."""
    line = to_json(nan_to_none(dict(record)), sort_keys=True) + "\n"
    with file_lock(path.with_name(f".{path.name}.lock")), open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every record of a JSON-lines file; a torn last line (crash mid-write) is skipped."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
    return out


# --------------------------------------------------------------------------- the batch ledger


class BatchLedger:
    """One ``state.json`` per batch; updates are merged under a lock."""

    def __init__(self, paths: MonitoringPaths):
        self.paths = paths

    def state_path(self, batch_id: str) -> Path:
        return self.paths.batch_dir(batch_id) / "state.json"

    def rows_path(self, batch_id: str) -> Path:
        return self.paths.batch_dir(batch_id) / "rows.parquet"

    def labels_path(self, batch_id: str) -> Path:
        return self.paths.batch_dir(batch_id) / "labels.parquet"

    def get(self, batch_id: str) -> LedgerEntry | None:
        path = self.state_path(batch_id)
        if not path.exists():
            return None
        entry: LedgerEntry = json.loads(path.read_text(encoding="utf-8"))
        return entry

    def update(self, batch_id: str, **fields: Any) -> LedgerEntry:
        """Merge ``fields`` into the batch's state (top-level keys replace) and stamp ``updated_at``."""
        with file_lock(self.paths.root / ".ledger.lock"):
            state = self.get(batch_id) or {"batch_id": batch_id, "created_at": utc_now()}
            state.update(jsonable(fields))
            state["updated_at"] = utc_now()
            atomic_write_text(self.state_path(batch_id), to_json(state, indent=1, sort_keys=True) + "\n")
        return state

    def entries(self) -> list[LedgerEntry]:
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
    return entry is not None and bool(entry) and (entry.get("status") == "quarantined" or "drift" in entry)
