"""A holdout split of the training file, when the project names no holdout file.

The selection is a pure function of the file's rows, the target column and the spec's ``Split``
(seed, fraction, stratify): the same bytes and spec always give the same rows, in both the data
assets and ``reproduce``. Rows are identified by the spec's ``row_id`` column, else by their
0-based position in the file; the sha256 of the holdout's ids is recorded with the lineage so a
rebuilt split can be checked against the one a model was evaluated on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.project.spec import Split

#: The stratum of rows whose target is missing (refused later by the raw-data gate).
MISSING_STRATUM = "<missing>"


class SplitRecord(BaseModel):
    """How a holdout was cut from the training file (carried on both parts' lineage)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    seed: int
    fraction: float
    stratified: bool
    rows: int
    """Rows in the training file."""
    holdout_rows: int
    holdout_sha256: str
    """sha256 of the holdout's row ids, one per line in file order."""


@dataclass(frozen=True)
class SplitFrames:
    """The two parts (each re-indexed from 0) and the record of the split."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    record: SplitRecord


def holdout_positions(labels: pd.Series, split: Split) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    """Sorted row positions of the holdout: per target value (when stratified) a seeded random
    ``fraction`` of that value's rows, rounded to the nearest row."""
    import numpy as np  # here: the lineage types (and the code location) import this module, not numpy

    rng = np.random.default_rng(split.seed)
    values = labels.astype(object).where(labels.notna(), MISSING_STRATUM).astype(str).to_numpy()
    strata = sorted(set(values)) if split.stratify else [None]
    chosen: list[np.ndarray[tuple[int], np.dtype[np.int64]]] = []
    for stratum in strata:
        positions = np.arange(len(values), dtype=np.int64)
        if stratum is not None:
            positions = positions[values == stratum]
        take = round(split.fraction * len(positions))
        chosen.append(rng.permutation(positions)[:take])
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


def row_ids(project: Project, raw: pd.DataFrame) -> list[str]:
    """Each row's identity: the ``row_id`` column's value, else its position in the file."""
    row_id = project.spec.row_id
    if row_id is not None:
        return [str(v) for v in raw[row_id]]
    return [str(i) for i in range(len(raw))]


def split_holdout(project: Project, raw: pd.DataFrame, split: Split) -> SplitFrames:
    """The training file's rows (as read, in file order) cut into training and holdout parts."""
    import numpy as np
    import pandas as pd

    labels = raw[project.label] if project.label in raw.columns else pd.Series([None] * len(raw), dtype=object)
    positions = holdout_positions(labels.reset_index(drop=True), split)
    mask = np.zeros(len(raw), dtype=bool)
    mask[positions] = True
    ids = row_ids(project, raw)
    digest = hashlib.sha256("\n".join(ids[i] for i in positions).encode("utf-8")).hexdigest()
    record = SplitRecord(
        seed=split.seed,
        fraction=split.fraction,
        stratified=split.stratify,
        rows=len(raw),
        holdout_rows=int(mask.sum()),
        holdout_sha256=digest,
    )
    return SplitFrames(
        train=raw.loc[~mask].reset_index(drop=True),
        holdout=raw.loc[mask].reset_index(drop=True),
        record=record,
    )
