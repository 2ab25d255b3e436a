"""The retraining dataset: the champion's training rows plus the labelled batch rows, DVC-versioned."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.data.adult import COLUMNS, LABEL, read_adult_csv
from mlgov_assets.core.integrity import atomic_write_with, md5_file
from mlgov_assets.core.monitoring.batches import ROW_ID
from mlgov_assets.core.monitoring.ledger import (
    BatchLedger,
    Log,
    MonitoringError,
    MonitoringPaths,
    atomic_write_text,
    emit,
    utc_now,
)
from mlgov_assets.core.monitoring.retrain_plan import RetrainPlan, dataset_manifest_path, lineage_batch_ids

if TYPE_CHECKING:
    from mlgov_assets.core.settings import Settings


class ManifestReference(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    md5: str
    rows: int


class DatasetManifest(BaseModel):
    """``<dataset>.manifest.json``: what a generated training set is made of."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str
    run_key: str
    created_at: str
    reference: ManifestReference
    batches: dict[str, int]  # batch id -> labelled rows taken
    rows: int
    holdout_overlap_rows: int
    trigger_batch_ids: list[str]
    champion_version: int
    included_batch_ids: list[str]  # every batch in this data's lineage


class RetrainDataset(DatasetManifest):
    """The manifest plus the DVC facts of the written file."""

    md5: str
    dvc_file: str
    added_to_dvc_now: bool


def _labelled_rows(ledger: BatchLedger, batch_id: str) -> pd.DataFrame:
    rows = pd.read_parquet(ledger.rows_path(batch_id)).set_index(ROW_ID)
    labels = pd.read_parquet(ledger.labels_path(batch_id)).set_index(ROW_ID)[LABEL]
    labelled: pd.DataFrame = rows.drop(columns=[LABEL], errors="ignore").join(labels, how="inner")[COLUMNS]
    return labelled.reset_index(drop=True)


def _holdout_overlap(holdout_path: Path, rows: pd.DataFrame) -> int:
    if not holdout_path.exists() or rows.empty:
        return 0
    holdout = read_adult_csv(holdout_path)[COLUMNS].drop_duplicates()
    return len(rows.merge(holdout, on=COLUMNS, how="inner"))


def _write_dataset(settings: Settings, plan: RetrainPlan, out: Path, holdout_rel: str, log: Log | None) -> None:
    project = Path(settings.project_dir)
    ledger = BatchLedger(MonitoringPaths.of(settings))
    ref = plan.reference
    if md5_file(Path(ref.read_from)) != ref.md5:
        raise MonitoringError(f"reference {ref.read_from} changed since it was profiled (md5 {ref.md5})")
    reference = read_adult_csv(Path(ref.read_from))[COLUMNS]
    per_batch = {b: _labelled_rows(ledger, b) for b in plan.training_batch_ids}
    batches = pd.concat(per_batch.values(), ignore_index=True) if per_batch else reference.iloc[:0]
    df = pd.concat([reference, batches], ignore_index=True)
    overlap = _holdout_overlap(project / holdout_rel, batches)
    atomic_write_with(out, lambda tmp: df.to_csv(tmp, index=False))
    manifest = DatasetManifest(
        dataset=plan.dataset,
        run_key=plan.run_key,
        created_at=utc_now(),
        reference=ManifestReference(path=ref.path, md5=ref.md5, rows=len(reference)),
        batches={b: len(rows) for b, rows in per_batch.items()},
        rows=len(df),
        holdout_overlap_rows=int(overlap),
        trigger_batch_ids=plan.trigger_batch_ids,
        champion_version=plan.champion_version,
        included_batch_ids=sorted(set(lineage_batch_ids(project, ref.path)) | set(per_batch)),
    )
    atomic_write_text(dataset_manifest_path(out), manifest.model_dump_json(indent=1) + "\n")
    if overlap:
        emit(
            log,
            "warning",
            f"{plan.dataset}: {overlap} batch rows also occur verbatim in {holdout_rel}; "
            f"the retrained model's holdout metrics will be optimistic",
        )


def build_retraining_dataset(
    settings: Settings, plan: RetrainPlan, *, holdout_rel: str, log: Log | None = None
) -> RetrainDataset:
    """Write ``data/generated/<run_key>.csv`` (Adult layout with a header) and its manifest, and make
    it a DVC-versioned dataset. Written once per run key, so a re-emitted request trains on the same
    bytes. Batch rows also found verbatim in the holdout (``holdout_rel``, the caller's) are counted
    in ``holdout_overlap_rows``: the retrained model's holdout metrics are then optimistic."""
    from mlgov_assets.core.data.datasets import ensure_tracked

    project = Path(settings.project_dir)
    out = project / plan.dataset
    manifest_path = dataset_manifest_path(out)
    if not (out.exists() and manifest_path.exists()):
        _write_dataset(settings, plan, out, holdout_rel, log)
    manifest = DatasetManifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
    tracked = ensure_tracked(project, out, site_cache=Path(settings.dvc_site_cache))
    return RetrainDataset(
        **manifest.model_dump(),
        md5=tracked.md5,
        dvc_file=str(tracked.dvc_file.relative_to(project)),
        added_to_dvc_now=tracked.added_now,
    )
