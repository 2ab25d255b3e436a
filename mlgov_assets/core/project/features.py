"""Feature engineering from the spec: deterministic and seed-free, so the same raw bytes always give
the same modelling table. Protected columns and their bands are carried for fairness, never inputs."""

from __future__ import annotations

import pandas as pd

from mlgov_assets.core.errors import InputError
from mlgov_assets.core.project.project import TARGET, UNKNOWN, Project
from mlgov_assets.core.project.schemas import band_labels


def build_features(project: Project, raw: pd.DataFrame, *, require_label: bool = True) -> pd.DataFrame:
    """Validated raw rows -> the modelling table: typed numbers, missing categories -> ``Unknown``,
    protected groups alongside, the target as 1 (favourable) / 0."""
    spec = project.spec
    out = pd.DataFrame(index=raw.index)
    for col in project.model_numeric:
        values = pd.to_numeric(raw[col], errors="raise")
        out[col] = values.astype("int64") if spec.columns[col].type == "integer" else values.astype("float64")
    tokens = project.missing_tokens
    for col in project.model_categorical:
        values = raw[col].astype(str)
        out[col] = values.replace(tokens, UNKNOWN) if tokens else values
    for p in spec.protected:
        if p.bands is None:
            out[p.column] = raw[p.column].astype(str)
        else:
            edges = [float("-inf"), *p.bands.edges, float("inf")]
            banded = pd.cut(
                pd.to_numeric(raw[p.column], errors="raise"),
                edges,
                right=False,
                labels=band_labels(p.bands.edges, p.bands.labels),
            )
            out[p.bands.name] = banded.astype(str)
    label = project.label
    if label in raw.columns and raw[label].notna().all():
        out[TARGET] = (raw[label].astype(str) == project.favourable).astype("int64")
    elif require_label:
        raise InputError(f"column '{label}': labels are required for training/holdout data")
    return out.reset_index(drop=True)
