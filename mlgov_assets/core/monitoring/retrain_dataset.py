"""The retraining dataset: the champion's training rows plus the labelled batch rows (never rows whose
labels are in dispute), DVC-versioned."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.integrity import md5_file
from mlgov_assets.core.monitoring.batches import ROW_ID
from mlgov_assets.core.monitoring.labels import disputed_row_ids
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
    from mlgov_assets.core.project.project import Project
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
    # labelled rows left out because their labels are in dispute (manifests written before: 0)
    disputed_rows_excluded: int = 0
    disputed_by_batch: dict[str, int] = {}
    trigger_batch_ids: list[str]
    champion_version: int
    included_batch_ids: list[str]  # every batch in this data's lineage


class RetrainDataset(DatasetManifest):
    """The manifest plus the DVC facts of the written file."""

    md5: str
    dvc_file: str
    added_to_dvc_now: bool


def _labelled_rows(project: Project, ledger: BatchLedger, batch_id: str) -> tuple[pd.DataFrame, int]:
    """The batch's labelled rows, less those whose labels are in dispute (a refused or held labels
    file disagreed with them), and how many were left out for that reason."""
    label = project.label
    rows = pd.read_parquet(ledger.rows_path(batch_id)).set_index(ROW_ID)
    labels = pd.read_parquet(ledger.labels_path(batch_id)).set_index(ROW_ID)[label]
    joined = rows.drop(columns=[label], errors="ignore").join(labels, how="inner")
    disputed = joined.index.isin(disputed_row_ids(ledger, batch_id))
    labelled: pd.DataFrame = joined.loc[~disputed, project.columns]
    return labelled.reset_index(drop=True), int(disputed.sum())


def _holdout_overlap(project: Project, rows: pd.DataFrame) -> int:
    """Batch rows found verbatim in the project's holdout (file or split)."""
    from mlgov_assets.core.monitoring.reevaluation import holdout_source, read_holdout

    if not (project.repo / holdout_source(project)).exists() or rows.empty:
        return 0
    cols = project.columns
    holdout = read_holdout(project)[cols].drop_duplicates()
    return len(rows.merge(holdout, on=cols, how="inner"))


def _write_dataset(settings: Settings, project: Project, plan: RetrainPlan, out: Path, log: Log | None) -> None:
    from mlgov_assets.core.data.split import split_holdout
    from mlgov_assets.core.monitoring.reevaluation import holdout_source
    from mlgov_assets.core.project.reader import read_raw, write_raw
    from mlgov_assets.core.project.spec import Split

    repo = Path(settings.project_dir)
    ledger = BatchLedger(MonitoringPaths.of(settings))
    ref = plan.reference
    if md5_file(Path(ref.read_from)) != ref.md5:
        raise MonitoringError(f"reference {ref.read_from} changed since it was profiled (md5 {ref.md5})")
    own = ref.path in (project.train_file, project.holdout_file)
    reference = read_raw(project, Path(ref.read_from), header=None if own else "present")[project.columns]
    split = project.spec.data.holdout
    if ref.path == project.train_file and isinstance(split, Split):
        # only the training part: the holdout rows of the split must never reach a retraining
        reference = split_holdout(project, reference, split).train
    taken = {b: _labelled_rows(project, ledger, b) for b in plan.training_batch_ids}
    per_batch = {b: rows for b, (rows, _) in taken.items()}
    excluded = {b: n for b, (_, n) in taken.items() if n}
    batches = pd.concat(per_batch.values(), ignore_index=True) if per_batch else reference.iloc[:0]
    df = pd.concat([reference, batches], ignore_index=True)
    overlap = _holdout_overlap(project, batches)
    write_raw(project, df, out)
    manifest = DatasetManifest(
        dataset=plan.dataset,
        run_key=plan.run_key,
        created_at=utc_now(),
        reference=ManifestReference(path=ref.path, md5=ref.md5, rows=len(reference)),
        batches={b: len(rows) for b, rows in per_batch.items()},
        rows=len(df),
        holdout_overlap_rows=int(overlap),
        disputed_rows_excluded=sum(excluded.values()),
        disputed_by_batch=excluded,
        trigger_batch_ids=plan.trigger_batch_ids,
        champion_version=plan.champion_version,
        included_batch_ids=sorted(set(lineage_batch_ids(repo, ref.path, settings.generated_dir)) | set(per_batch)),
    )
    atomic_write_text(dataset_manifest_path(out), manifest.model_dump_json(indent=1) + "\n")
    if excluded:
        emit(log, "warning", f"{plan.dataset}: {sum(excluded.values())} labelled rows in dispute left out {excluded}")
    if overlap:
        emit(
            log,
            "warning",
            f"{plan.dataset}: {overlap} batch rows also occur verbatim in {holdout_source(project)}; "
            f"the retrained model's holdout metrics will be optimistic",
        )


def build_retraining_dataset(
    settings: Settings, project: Project, plan: RetrainPlan, *, log: Log | None = None
) -> RetrainDataset:
    """Write ``data/generated/<run_key>.csv`` (in ``settings.generated_dir``, never the checkout: the
    project's raw layout with a header row, written by ``write_raw``) and its manifest, and make it a
    DVC-versioned dataset of the generated-data repository. Written once per run key,
    so a re-emitted request trains on the same bytes. Batch rows also found verbatim in the
    project's holdout are counted in ``holdout_overlap_rows``: the retrained model's holdout
    metrics are then optimistic."""
    from mlgov_assets.core.data.datasets import dataset_location, ensure_dataset

    repo = Path(settings.project_dir)
    _, out = dataset_location(repo, plan.dataset, settings.generated_dir)
    manifest_path = dataset_manifest_path(out)
    if not (out.exists() and manifest_path.exists()):
        _write_dataset(settings, project, plan, out, log)
    manifest = DatasetManifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
    tracked = ensure_dataset(settings, plan.dataset)
    return RetrainDataset(
        **manifest.model_dump(),
        md5=tracked.md5,
        dvc_file=tracked.shown_dvc_file(repo),
        added_to_dvc_now=tracked.added_now,
    )


def built_dataset(settings: Settings, dataset: str) -> tuple[str, int] | None:
    """The md5 and row count of a retraining dataset once its run has built it (None before)."""
    from mlgov_assets.core.data.datasets import dataset_location

    _, out = dataset_location(Path(settings.project_dir), dataset, settings.generated_dir)
    manifest_path = dataset_manifest_path(out)
    if not (out.exists() and manifest_path.exists()):
        return None
    manifest = DatasetManifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
    return md5_file(out), manifest.rows
