"""The landing folder: which files are new batches, delayed labels, refused, or still waiting."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.governance.policy import Ingestion
from mlgov_assets.core.monitoring.batches import (
    BATCH_SUFFIXES,
    LABELS_INFIX,
    parse_landing_filename,
    validate_batch_id,
)
from mlgov_assets.core.monitoring.boundary import entry_identity, landing_md5, refusal
from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringError, is_done

#: Cursor outcomes that are looked at again on the next scan even if the file did not change.
_RECHECK = ("waiting", "settling", "with_batch")

Outcome = Literal["requested", "done", "refused", "waiting", "settling", "with_batch"]


class SeenFile(BaseModel):
    """What the sensor cursor remembers of one landing file (stored as JSON without the unset fields)."""

    # a cursor written by an earlier version may carry other keys: ignored, not refused
    model_config = ConfigDict(extra="ignore", frozen=True)

    size: int
    mtime_ns: int
    md5: str | None = None
    outcome: Outcome
    batch_id: str | None = None
    kind: Literal["batch", "labels"] | None = None


#: The sensor cursor: file name -> what was seen.
Seen = dict[str, SeenFile]


@dataclass(frozen=True)
class LandingFile:
    """A batch or labels file found in the landing folder."""

    name: str
    path: Path
    batch_id: str
    kind: Literal["batch", "labels"]
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
    seen: Seen = field(default_factory=dict)  # the cursor to keep

    def cursor(self) -> str:
        """The sensor cursor to store: ``seen`` as JSON (the shape :func:`plan_landing` reads back)."""
        return json.dumps({name: f.model_dump(exclude_none=True) for name, f in self.seen.items()}, sort_keys=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "new_batches": [f.to_dict() for f in self.new_batches],
            "new_labels": [f.to_dict() for f in self.new_labels],
            "waiting": [{"file": f, "reason": r} for f, r in self.waiting],
            "refused": [{"file": f, "reason": r} for f, r in self.refused],
            "done": list(self.done),
        }


def plan_landing(
    landing_dir: Path,
    ledger: BatchLedger,
    seen: Mapping[str, SeenFile | Mapping[str, Any]] | None = None,
    *,
    settle_seconds: float = 0.0,
    now: float | None = None,
    limits: Ingestion | None = None,
) -> LandingPlan:
    """Compare the landing folder with the sensor cursor (``seen``) and the ledger.

    New batch files become ``new_batches`` (other bytes under a known id are refused: batches are
    immutable); ``<id>.labels.*`` ride along with their batch, become ``new_labels`` for a finished
    batch, or wait. Invalid names are refused with the reason; files younger than
    ``settle_seconds`` are left for the next scan. Only new or changed files are hashed. ``seen`` is
    the previous :attr:`LandingPlan.seen`, or its JSON form (:meth:`LandingPlan.cursor`) parsed.
    """
    previous: Seen = {name: SeenFile.model_validate(v) for name, v in (seen or {}).items()}
    plan = LandingPlan()
    if not Path(landing_dir).is_dir():
        return plan
    caps = limits if limits is not None else Ingestion()
    found = _scan(Path(landing_dir), previous, plan, time.time() if now is None else now, settle_seconds, caps)
    new_ids = _classify_batches([f for f in found if f.kind == "batch"], ledger, plan)
    _classify_labels([f for f in found if f.kind == "labels"], ledger, plan, previous, new_ids)
    return plan


def settle_delay(landing_dir: Path, settle_seconds: float, *, now: float | None = None) -> float:
    """Seconds until every visible entry of the landing folder is ``settle_seconds`` old (0: none is
    younger). A sensor that waits this long and then scans applies the same rule as the next scan
    would (a file modified meanwhile is younger again and still waits), without a whole daemon loop
    in between. Never more than ``settle_seconds``; entries are looked at with ``lstat`` only."""
    if settle_seconds <= 0 or not Path(landing_dir).is_dir():
        return 0.0
    now = time.time() if now is None else now
    delay = 0.0
    for entry in os.scandir(landing_dir):
        if entry.name.startswith("."):
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue
        delay = max(delay, settle_seconds - max(age, 0.0))
    return min(delay, settle_seconds)


def _scan(
    landing: Path, previous: Seen, plan: LandingPlan, now: float, settle_seconds: float, limits: Ingestion
) -> list[LandingFile]:
    """New or changed entries; unchanged, settling and refused ones go straight to the cursor.

    Entries are looked at with ``lstat`` only: a batch-named symlink, FIFO, device, directory or
    oversized file is not read (its identity is its ``lstat``) and goes to intake, which quarantines
    it by name; such a labels file is refused here. Regular files are hashed without following links.
    """
    out: list[LandingFile] = []
    for path in sorted(Path(e.path) for e in os.scandir(landing) if not e.name.startswith(".")):
        try:
            st = os.lstat(path)
        except FileNotFoundError:  # gone since the listing: nothing to plan
            continue
        prev = previous.get(path.name)
        unchanged = prev is not None and prev.size == st.st_size and prev.mtime_ns == st.st_mtime_ns
        if prev is not None and unchanged and prev.outcome not in _RECHECK:
            plan.seen[path.name] = prev
            continue
        if now - st.st_mtime < settle_seconds:
            plan.seen[path.name] = SeenFile(size=st.st_size, mtime_ns=st.st_mtime_ns, outcome="settling")
            continue
        unread = refusal(path.name, st, limits)
        try:
            batch_id, kind = parse_landing_filename(path)
            if unread is not None and kind == "labels":
                raise unread
        except ValueError as exc:
            plan.refused.append((path.name, str(exc)))  # names are repr'd: bounded, escaped
            plan.seen[path.name] = SeenFile(size=st.st_size, mtime_ns=st.st_mtime_ns, outcome="refused")
            continue
        try:
            known = prev.md5 if prev is not None and unchanged and prev.md5 and unread is None else None
            md5 = entry_identity(st) if unread is not None else known or landing_md5(path, limits)
        except FileNotFoundError:
            continue
        out.append(LandingFile(path.name, path, batch_id, kind, md5, st.st_size, st.st_mtime_ns))
    return out


def _classify_batches(files: list[LandingFile], ledger: BatchLedger, plan: LandingPlan) -> set[str]:
    new_ids: set[str] = set()
    for lf in files:
        entry = ledger.get(lf.batch_id)
        outcome: Outcome = "requested"
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
    return new_ids


def _classify_labels(
    files: list[LandingFile], ledger: BatchLedger, plan: LandingPlan, previous: Seen, new_ids: set[str]
) -> None:
    for lf in files:
        entry = ledger.get(lf.batch_id)
        outcome: Outcome
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
            prev = previous.get(lf.name)
            if prev is None or prev.outcome != "waiting":
                plan.waiting.append((lf.name, f"batch {lf.batch_id!r} has not landed or not been scored yet"))
        plan.seen[lf.name] = _seen(lf, outcome)


def _seen(lf: LandingFile, outcome: Outcome) -> SeenFile:
    return SeenFile(size=lf.size, mtime_ns=lf.mtime_ns, md5=lf.md5, outcome=outcome, batch_id=lf.batch_id, kind=lf.kind)


def find_batch_file(landing_dir: Path, batch_id: str, ledger: BatchLedger | None = None) -> Path:
    """The landing file of ``batch_id``; a clear error if it is missing (e.g. quarantined) or ambiguous."""
    validate_batch_id(batch_id)
    # lexists: a batch-named link or special file is found (and quarantined unread), not skipped
    found = [p for p in (Path(landing_dir) / f"{batch_id}{sfx}" for sfx in BATCH_SUFFIXES) if os.path.lexists(p)]
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
    """The delayed labels file of ``batch_id`` in the landing folder, if one landed."""
    for sfx in BATCH_SUFFIXES:
        path = Path(landing_dir) / f"{validate_batch_id(batch_id)}{LABELS_INFIX}{sfx}"
        if os.path.lexists(path) and stat.S_ISREG(os.lstat(path).st_mode):  # a link is never followed
            return path
    return None
