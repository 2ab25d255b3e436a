"""Live traffic into the monitoring loop: logged rows roll into landing batches.

Every ``roll_rows`` rows (or after ``roll_seconds`` once the policy's ``monitoring.min_batch_rows``
rows are waiting) the pending rows are written, atomically, as ``serve-<first row id>.csv`` into the
project's landing folder in its raw layout (a ``row_id`` column + the spec's columns), which the
monitoring sensor (or ``mlgov monitor --once``) validates, scores with the champion and the shadow,
and checks for drift. The row ids are the ids each response returned, so delayed labels keyed by
them (:func:`land_labels`) reach the right batch: performance closes on real traffic.

The roller's cursor (``rolled_through``: the last row id in a landing batch, and an index of
batches by row-id range) is written after the batch file; a crash in between rolls the same rows
again under the same name, and an existing file of that name is left as it is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlgov_assets.core.errors import InputError
from mlgov_assets.core.integrity import atomic_write_bytes
from mlgov_assets.core.monitoring.batches import ROW_ID, labels_filename
from mlgov_assets.core.serving.predlog import PredictionRecord, read_log

if TYPE_CHECKING:
    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.settings import Settings

BATCH_PREFIX = "serve-"
INDEX_KEEP = 10_000  # batches remembered for labels (oldest forgotten first)


class RolledBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_id: str
    first: int
    last: int
    rows: int


class RollerState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rolled_through: int = -1
    batches: list[RolledBatch] = Field(default_factory=list)


def serving_dir(settings: Settings) -> Path:
    """The service's state under the project's state directory (prediction log, roller cursor)."""
    return settings.home / "serving"


def _state_path(settings: Settings) -> Path:
    return serving_dir(settings) / "roller.json"


def load_state(settings: Settings) -> RollerState:
    path = _state_path(settings)
    return RollerState.model_validate_json(path.read_bytes()) if path.exists() else RollerState()


class BatchRoller:
    """Pending rows (thread-safe) and the roll into the landing folder."""

    def __init__(self, settings: Settings, project: Project, *, roll_rows: int, roll_seconds: float, min_rows: int):
        self.settings, self.project = settings, project
        self.roll_rows, self.roll_seconds, self.min_rows = roll_rows, roll_seconds, min_rows
        self.state = load_state(settings)
        self._pending: list[tuple[int, dict[str, str | None]]] = []
        self._lock = threading.Lock()
        self._roll_lock = threading.Lock()
        self._since = time.monotonic()
        self.rolled = 0

    def recover(self, log_path: Path) -> int:
        """Rows the log holds past the cursor (a restart, a crash before a roll) become pending again."""
        done = self.state.rolled_through
        rows = [
            (rid, row)
            for rec in read_log(log_path).records
            if isinstance(rec, PredictionRecord)
            for rid, row in zip(rec.row_ids, rec.rows, strict=True)
            if rid > done
        ]
        with self._lock:
            self._pending = sorted(rows, key=lambda r: r[0]) + self._pending
        return len(rows)

    def add(self, row_ids: list[int], rows: list[dict[str, str | None]]) -> bool:
        """Queue a request's rows; True when a roll is due by size."""
        with self._lock:
            self._pending.extend(zip(row_ids, rows, strict=True))
            return len(self._pending) >= self.roll_rows

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def due(self, now: float | None = None) -> bool:
        return self._due(self.pending(), now)

    def _due(self, n: int, now: float | None = None) -> bool:
        waited = (time.monotonic() if now is None else now) - self._since
        return n >= self.roll_rows or (n >= self.min_rows and waited >= self.roll_seconds)

    def roll(self, *, force: bool = False) -> list[Path]:
        """Write every due batch (``force``: whatever is pending, e.g. at shutdown); the paths written."""
        out: list[Path] = []
        with self._roll_lock:
            while True:
                with self._lock:
                    n = len(self._pending)
                    if not n or (not force and not self._due(n)):
                        break
                    take = min(n, self.roll_rows)
                    chunk, self._pending = self._pending[:take], self._pending[take:]
                out.append(self._write(chunk))
                self._since = time.monotonic()
        return out

    def _write(self, chunk: list[tuple[int, dict[str, str | None]]]) -> Path:
        from mlgov_assets.core.project.reader import write_raw

        first, last = chunk[0][0], chunk[-1][0]
        batch_id = f"{BATCH_PREFIX}{first}"
        cols = [c for c in self.project.columns if any(c in row for _, row in chunk)]
        frame = pd.DataFrame.from_records([row for _, row in chunk], columns=cols)
        frame.insert(0, ROW_ID, [rid for rid, _ in chunk])
        path = self.settings.landing_dir / f"{batch_id}.csv"
        if not path.exists():  # rolled before a crash lost the cursor: same rows, same name
            write_raw(self.project, frame, path)
        self.state.rolled_through = max(self.state.rolled_through, last)
        self.state.batches = [
            *self.state.batches,
            RolledBatch(batch_id=batch_id, first=first, last=last, rows=len(chunk)),
        ][-INDEX_KEEP:]
        atomic_write_bytes(_state_path(self.settings), self.state.model_dump_json().encode())
        self.rolled += 1
        return path


def land_labels(settings: Settings, project: Project, labels: Mapping[int, str]) -> list[Path]:
    """Delayed labels keyed by the row ids the service returned (a single-row request's id is its
    row id), written as ``<batch>.labels.csv`` next to the batches that hold those rows (merged with
    labels already landed for the batch). Rows not rolled yet are refused by id."""
    from mlgov_assets.core.monitoring.batches import validate_labels

    state = load_state(settings)
    by_batch: dict[str, dict[int, str]] = {}
    unknown: list[int] = []
    for rid, label in labels.items():
        home = next((b for b in state.batches if b.first <= rid <= b.last), None)
        if home is None:
            unknown.append(rid)
        else:
            by_batch.setdefault(home.batch_id, {})[int(rid)] = str(label)
    if unknown:
        raise InputError(
            f"{len(unknown)} row id(s) are in no landing batch yet (e.g. {sorted(unknown)[:5]}): "
            "label them after the next roll"
        )
    written = []
    for batch_id, rows in by_batch.items():
        path = settings.landing_dir / labels_filename(batch_id)
        if path.exists():
            old = pd.read_csv(path, dtype=str, keep_default_na=False)
            rows = {int(r): str(v) for r, v in zip(old[ROW_ID], old[project.label], strict=True)} | rows
        frame = pd.DataFrame({ROW_ID: sorted(rows), project.label: [rows[r] for r in sorted(rows)]})
        validate_labels(project, frame, source=path.name)
        atomic_write_bytes(path, frame.to_csv(index=False).encode())
        written.append(path)
    return written
