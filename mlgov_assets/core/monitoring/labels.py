"""Labels of a batch: inline (the label column) and delayed (``<batch_id>.labels.csv|parquet``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.integrity import atomic_write_with, md5_file
from mlgov_assets.core.monitoring.batches import ROW_ID, align_labels, read_labels
from mlgov_assets.core.monitoring.landing import find_labels_file
from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringPaths

if TYPE_CHECKING:
    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.settings import Settings


class LabelInfo(BaseModel):
    """Where a batch's labels came from; ``conflicts`` = rows where the delayed file overrode the batch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inline: int
    file: str | None = None
    file_md5: str | None = None
    from_file: int | None = None
    conflicts: int = 0
    n_labelled: int


def collect_labels(
    project: Project, landing_dir: Path, batch_id: str, batch: pd.DataFrame
) -> tuple[pd.Series, LabelInfo]:
    """0/1 labels per row (1 = the favourable value; NaN where none), from the batch's own label
    column and/or the delayed labels file of ``batch_id``. The delayed file is the later truth: it
    wins where both have a label."""
    index = pd.Index(batch[ROW_ID].to_numpy(), name=ROW_ID)
    inline = pd.Series(np.nan, index=index, name="y")
    if project.label in batch.columns:
        text = batch[project.label].to_numpy()
        has = pd.notna(text)
        inline[has] = (text[has].astype(str) == project.favourable).astype(float)
    n_inline = int(inline.notna().sum())
    path = find_labels_file(landing_dir, batch_id)
    if path is None:
        return inline.copy(), LabelInfo(inline=n_inline, n_labelled=n_inline)
    delayed = align_labels(project, index, read_labels(project, path))
    both = delayed.notna() & inline.notna()
    y = delayed.combine_first(inline)
    info = LabelInfo(
        inline=n_inline,
        file=path.name,
        file_md5=md5_file(path),
        from_file=int(delayed.notna().sum()),
        conflicts=int((delayed[both] != inline[both]).sum()),
        n_labelled=int(y.notna().sum()),
    )
    return y, info


def record_labels(
    settings: Settings, project: Project, batch_id: str, batch: pd.DataFrame
) -> tuple[pd.Series, LabelInfo]:
    """Collect the batch's labels and keep them in the ledger (``labels.parquet`` + ``labels`` info),
    where a retraining dataset is built from. Called on acceptance and again by the performance step.
    A 0 is kept as the first label that is not the favourable one (training only asks "favourable?")."""
    ledger = BatchLedger(MonitoringPaths.of(settings))
    y, info = collect_labels(project, settings.landing_dir, batch_id, batch)
    other = next((lab for lab in project.labels if lab != project.favourable), project.favourable)
    if info.n_labelled:
        labels = y.dropna()
        frame = pd.DataFrame(
            {
                ROW_ID: labels.index.to_numpy(dtype=np.int64),
                project.label: np.where(labels.to_numpy() == 1, project.favourable, other),
            }
        )
        atomic_write_with(ledger.labels_path(batch_id), lambda tmp: frame.to_parquet(tmp, index=False))
    ledger.update(batch_id, labels=info.model_dump())
    return y, info
