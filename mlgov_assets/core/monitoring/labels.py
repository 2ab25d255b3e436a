"""Labels of a batch: inline (the label column) and delayed (``<batch_id>.labels.csv|parquet``).

A delayed labels file is judged before any of it is used (:func:`judge_labels_file`):

* unreadable or invalid (columns, ids, values not among the project's labels): refused, rule ``invalid``;
* naming row ids the batch does not have: refused, rule ``unknown_row_ids`` (a capped list + the count);
* disagreeing with a label already recorded for the batch (its own label column or an earlier
  labels file): refused or held for review, as the policy's ``labels.on_conflict`` says, rule ``conflict``;
* otherwise applied: its labels join the batch's.

A file that is not applied changes nothing but three records: its decision in the ledger
(``label_files``, keyed by the file's sha256), the rows it disputes (``disputed.parquet`` in the
batch's folder, kept out of every retraining) and an alert. The batch's labels and performance stay
as they were. A file is judged once: the same bytes again get the same decision and no second alert.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.integrity import atomic_write_with, md5_file, sha256_file
from mlgov_assets.core.monitoring.alerts import raise_alert
from mlgov_assets.core.monitoring.batches import ROW_ID, align_labels, read_labels
from mlgov_assets.core.monitoring.landing import find_labels_file
from mlgov_assets.core.monitoring.ledger import BatchLedger, LedgerEntry, Log, MonitoringPaths, utc_now

if TYPE_CHECKING:
    from mlgov_assets.core.governance.policy import Labels, Policy
    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.settings import Settings

_FROZEN = ConfigDict(extra="forbid", frozen=True)

LabelRule = Literal["invalid", "unknown_row_ids", "conflict"]
LabelVerdict = Literal["applied", "refused", "held"]
#: What ``labels.on_conflict`` does to a conflicting file.
_ON_CONFLICT: dict[str, LabelVerdict] = {"refuse": "refused", "hold": "held"}
#: The alert kind of a file that was not applied.
ALERT_KINDS: dict[LabelVerdict, str] = {"refused": "labels_refused", "held": "labels_held"}
#: File in a batch's ledger folder listing the rows whose labels are in dispute.
DISPUTED_FILE = "disputed.parquet"


class LabelFileDecision(BaseModel):
    """What became of one delayed labels file: evidence without raw values (row ids, counts, hashes)."""

    model_config = _FROZEN

    file: str
    sha256: str
    md5: str
    bytes: int
    decision: LabelVerdict
    rule: LabelRule | None = None
    count: int = 0  # rows breaking the rule, all of them
    row_ids: list[int] = []  # the first policy labels.max_examples of them
    rows: int = 0  # label rows in the file (0 when unreadable)
    reason: str = ""
    at: str

    @property
    def applied(self) -> bool:
        return self.decision == "applied"


class LabelInfo(BaseModel):
    """Where a batch's labels came from (``file``: the labels file applied last), how many rows are
    in dispute (kept out of retraining) and the decision on the labels file judged by this call."""

    model_config = _FROZEN

    inline: int
    file: str | None = None
    file_md5: str | None = None
    from_file: int | None = None
    conflicts: int = 0  # rows of the judged file that disagreed with recorded labels (file not applied)
    n_labelled: int
    disputed: int = 0
    decision: LabelFileDecision | None = None

    @property
    def not_applied(self) -> LabelFileDecision | None:
        """The decision when the judged labels file was refused or held, else None."""
        return self.decision if self.decision is not None and not self.decision.applied else None


@dataclass(frozen=True)
class LabelJudgement:
    """A labels file judged against the labels already known: the decision, the file's 0/1 labels
    aligned to the batch (only when applied) and the row ids it disputes."""

    decision: LabelFileDecision
    delayed: pd.Series | None
    disputed: np.ndarray


def quote(text: str, max_chars: int) -> str:
    """``text`` if short, else a prefix with its length and sha256: raw input never goes out unbounded."""
    if len(text) <= max_chars:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]
    return f"{text[:max_chars]}... ({len(text)} chars, sha256 {digest})"


def _binary(project: Project, text: np.ndarray, index: pd.Index) -> pd.Series:
    y = pd.Series(np.nan, index=index, name="y")
    has = pd.notna(text)
    y[has] = (text[has].astype(str) == project.favourable).astype(float)
    return y


def inline_labels(project: Project, batch: pd.DataFrame) -> pd.Series:
    """0/1 labels from the batch's own label column (1 = favourable; NaN where none), by row id."""
    index = pd.Index(batch[ROW_ID].to_numpy(), name=ROW_ID)
    if project.label not in batch.columns:
        return pd.Series(np.nan, index=index, name="y")
    return _binary(project, batch[project.label].to_numpy(), index)


def recorded_labels(project: Project, ledger: BatchLedger, batch_id: str, index: pd.Index) -> pd.Series:
    """0/1 labels the ledger already holds for the batch (``labels.parquet``), aligned to ``index``."""
    path = ledger.labels_path(batch_id)
    if not path.exists():
        return pd.Series(np.nan, index=index, name="y")
    frame = pd.read_parquet(path)
    y = _binary(project, frame[project.label].to_numpy(), pd.Index(frame[ROW_ID].to_numpy(), name=ROW_ID))
    return y[y.index.isin(index)].reindex(index)


def disputed_path(ledger: BatchLedger, batch_id: str) -> Path:
    return ledger.paths.batch_dir(batch_id) / DISPUTED_FILE


def disputed_row_ids(ledger: BatchLedger, batch_id: str) -> np.ndarray:
    """Row ids of the batch whose labels are in dispute (a refused or held file disagreed with them)."""
    path = disputed_path(ledger, batch_id)
    if not path.exists():
        return np.array([], dtype=np.int64)
    return np.unique(pd.read_parquet(path)[ROW_ID].to_numpy(dtype=np.int64))


def label_file_decisions(entry: LedgerEntry | None) -> dict[str, LabelFileDecision]:
    """The batch's labels-file decisions, by sha256."""
    return {k: LabelFileDecision.model_validate(v) for k, v in ((entry or {}).get("label_files") or {}).items()}


def labels_file_judged(ledger: BatchLedger, batch_id: str, md5: str) -> bool:
    """Whether a labels file with these bytes was already refused or held for ``batch_id``: it is
    not to be run again as if new (the landing sensor asks)."""
    return any(d.md5 == md5 and not d.applied for d in label_file_decisions(ledger.get(batch_id)).values())


def judge_labels_file(
    project: Project, rules: Labels, path: Path, known: pd.Series, *, batch_id: str
) -> LabelJudgement:
    """Judge the labels file at ``path`` against ``known`` (0/1 labels already recorded, indexed by
    the batch's row ids; NaN = none). Never raises for bad content: that is a refusal."""
    facts = {"file": path.name, "sha256": sha256_file(path), "md5": md5_file(path), "bytes": path.stat().st_size}
    none = np.array([], dtype=np.int64)
    cap = rules.max_examples
    try:
        labels = read_labels(project, path)
    except (ValueError, OSError) as exc:  # pandas/pyarrow parse errors are ValueErrors
        why = quote(f"{type(exc).__name__}: {exc}", rules.max_quoted_chars)
        decision = LabelFileDecision(
            **facts, decision="refused", rule="invalid", reason=f"{path.name}: invalid labels file: {why}", at=utc_now()
        )
        return LabelJudgement(decision, None, none)
    ids = labels[ROW_ID].to_numpy(dtype=np.int64)
    unknown = np.sort(ids[~np.isin(ids, known.index.to_numpy())])
    if len(unknown):
        decision = LabelFileDecision(
            **facts,
            decision="refused",
            rule="unknown_row_ids",
            count=len(unknown),
            row_ids=unknown[:cap].tolist(),
            rows=len(labels),
            reason=f"{path.name}: {len(unknown)} {ROW_ID}(s) not in batch {batch_id} ({len(known)} rows), e.g. "
            f"{unknown[:cap].tolist()}; refused: a labels file may name only the batch's rows",
            at=utc_now(),
        )
        return LabelJudgement(decision, None, none)
    delayed = align_labels(project, known.index, labels)
    clash = (delayed.notna() & known.notna() & (delayed != known)).to_numpy()
    conflicting = np.sort(known.index.to_numpy(dtype=np.int64)[clash])
    if len(conflicting):
        verdict = _ON_CONFLICT[rules.on_conflict]
        done = "refused" if verdict == "refused" else "held for review"
        decision = LabelFileDecision(
            **facts,
            decision=verdict,
            rule="conflict",
            count=len(conflicting),
            row_ids=conflicting[:cap].tolist(),
            rows=len(labels),
            reason=f"{path.name}: {len(conflicting)} row(s) disagree with labels already recorded for batch "
            f"{batch_id} (its label column or an earlier labels file), e.g. {ROW_ID}s {conflicting[:cap].tolist()}; "
            f"{done} (policy labels.on_conflict: {rules.on_conflict}): the batch's labels and performance are "
            f"unchanged and these rows are kept out of retraining",
            at=utc_now(),
        )
        return LabelJudgement(decision, None, conflicting)
    decision = LabelFileDecision(**facts, decision="applied", rows=len(labels), at=utc_now())
    return LabelJudgement(decision, delayed, none)


def _write_labels(project: Project, ledger: BatchLedger, batch_id: str, y: pd.Series) -> None:
    """Keep 0/1 labels as label strings; a 0 is the first label that is not the favourable one
    (training only asks "favourable?")."""
    other = next((lab for lab in project.labels if lab != project.favourable), project.favourable)
    labels = y.dropna()
    frame = pd.DataFrame(
        {
            ROW_ID: labels.index.to_numpy(dtype=np.int64),
            project.label: np.where(labels.to_numpy() == 1, project.favourable, other),
        }
    )
    atomic_write_with(ledger.labels_path(batch_id), lambda tmp: frame.to_parquet(tmp, index=False))


def _add_disputed(ledger: BatchLedger, batch_id: str, rows: np.ndarray, sha256: str) -> int:
    path = disputed_path(ledger, batch_id)
    new = pd.DataFrame({ROW_ID: rows.astype(np.int64), "sha256": sha256})
    frame = pd.concat([pd.read_parquet(path), new], ignore_index=True) if path.exists() else new
    frame = frame.drop_duplicates().sort_values([ROW_ID, "sha256"], ignore_index=True)
    atomic_write_with(path, lambda tmp: frame.to_parquet(tmp, index=False))
    return int(frame[ROW_ID].nunique())


def record_labels(
    settings: Settings,
    project: Project,
    batch_id: str,
    batch: pd.DataFrame,
    *,
    policy: Policy | None = None,
    log: Log | None = None,
) -> tuple[pd.Series, LabelInfo]:
    """The batch's labels, kept in the ledger (``labels.parquet`` + ``labels`` info) where a
    retraining dataset is built from: the labels already recorded (inline and earlier files), plus
    the delayed labels file in the landing folder if it passes :func:`judge_labels_file`. Called on
    acceptance and again by the performance step; ``policy`` defaults to the settings' policy file.
    Returns 0/1 labels by row id (NaN where none) and where they came from."""
    from mlgov_assets.core.governance.policy import load_policy

    policy = policy or load_policy(settings.policy_path)
    rules = policy.labels
    paths = MonitoringPaths.of(settings)
    ledger = BatchLedger(paths)
    entry = ledger.get(batch_id) or {}
    previous = LabelInfo.model_validate(entry["labels"]) if entry.get("labels") else None
    inline = inline_labels(project, batch)
    known = recorded_labels(project, ledger, batch_id, inline.index).combine_first(inline)
    disputed = len(disputed_row_ids(ledger, batch_id))
    kept: dict[str, str | int | None] = {"file": None, "file_md5": None, "from_file": None}
    if previous is not None and previous.file is not None:
        kept = previous.model_dump(include=set(kept))
    path = find_labels_file(settings.landing_dir, batch_id)
    judged = label_file_decisions(entry).get(sha256_file(path)) if path is not None else None
    if path is None or (judged is not None and not judged.applied):
        # no file, or one judged before (same bytes, same decision: nothing changes, no second alert)
        info = LabelInfo(
            inline=int(inline.notna().sum()),
            **kept,
            conflicts=judged.count if judged is not None and judged.rule == "conflict" else 0,
            n_labelled=int(known.notna().sum()),
            disputed=disputed,
            decision=judged,
        )
        if info.n_labelled and not ledger.labels_path(batch_id).exists():
            _write_labels(project, ledger, batch_id, known)
        ledger.update(batch_id, labels=info.model_dump())
        return known, info
    judgement = judge_labels_file(project, rules, path, known, batch_id=batch_id)
    decision = judgement.decision
    y = known if judgement.delayed is None else judgement.delayed.combine_first(known)
    if decision.applied:
        assert judgement.delayed is not None
        kept = {"file": path.name, "file_md5": decision.md5, "from_file": int(judgement.delayed.notna().sum())}
    elif len(judgement.disputed):
        disputed = _add_disputed(ledger, batch_id, judgement.disputed, decision.sha256)
    info = LabelInfo(
        inline=int(inline.notna().sum()),
        **kept,
        conflicts=decision.count if decision.rule == "conflict" else 0,
        n_labelled=int(y.notna().sum()),
        disputed=disputed,
        decision=decision,
    )
    if info.n_labelled and (decision.applied or not ledger.labels_path(batch_id).exists()):
        _write_labels(project, ledger, batch_id, y)
    if not decision.applied:
        raise_alert(
            paths,
            ALERT_KINDS[decision.decision],
            decision.reason,
            severity="ERROR" if decision.decision == "refused" else "WARNING",
            batch_id=batch_id,
            identity=decision.sha256,
            webhook_url=policy.monitoring.webhook_url,
            log=log,
            evidence={"labels_file": decision.model_dump(), "disputed_rows": disputed},
        )
    # recorded after the alert: a crash in between judges the file again, and the alert is not repeated
    files = {**(entry.get("label_files") or {}), decision.sha256: decision.model_dump()}
    ledger.update(batch_id, labels=info.model_dump(), label_files=files)
    return y, info
