"""Feature engineering from the spec: deterministic and seed-free, so the same raw bytes always give
the same modelling table. Protected columns and their bands are carried for fairness, never inputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from mlgov_assets.core.errors import InputError
from mlgov_assets.core.project.hooks import HookError, call_hook, resolve_hook
from mlgov_assets.core.project.project import TARGET, UNKNOWN, Project
from mlgov_assets.core.project.schemas import band_labels


def build_features(project: Project, raw: pd.DataFrame, *, require_label: bool = True) -> pd.DataFrame:
    """Validated raw rows -> the modelling table: typed numbers, missing categories -> ``Unknown``,
    protected groups alongside, the target as 1 (favourable) / 0."""
    spec = project.spec
    cols: dict[str, pd.Series] = {}  # built column by column, framed once (cheaper than inserting each)
    for col in project.model_numeric:
        values = pd.to_numeric(raw[col], errors="raise")
        cols[col] = values.astype("int64") if spec.columns[col].type == "integer" else values.astype("float64")
    tokens = project.missing_tokens
    for col in project.model_categorical:
        values = raw[col].astype(str)
        cols[col] = values.replace(tokens, UNKNOWN) if tokens else values
    for p in spec.protected:
        if p.bands is None:
            cols[p.column] = raw[p.column].astype(str)
        else:
            edges = [float("-inf"), *p.bands.edges, float("inf")]
            banded = pd.cut(
                pd.to_numeric(raw[p.column], errors="raise"),
                edges,
                right=False,
                labels=band_labels(p.bands.edges, p.bands.labels),
            )
            cols[p.bands.name] = banded.astype(str)
    label = project.label
    if label in raw.columns and raw[label].notna().all():
        cols[TARGET] = (raw[label].astype(str) == project.favourable).astype("int64")
    elif require_label:
        raise InputError(f"column '{label}': labels are required for training/holdout data")
    out = pd.DataFrame(cols, index=raw.index)
    hook = resolve_hook("features", spec.hooks, project.repo)
    if hook is not None:
        out = _with_hook(hook, project, raw, out)
    return out.reset_index(drop=True)


def _with_hook(hook: Callable[..., Any], project: Project, raw: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
    """The built-in table with the features hook's columns put in (added or replaced).

    The hook may only supply model columns the spec declares, one row per raw row; the label and
    protected columns stay mlgov's. The feature schema judges the values afterwards.
    """
    where = f"hooks.features: {project.spec.hooks.features!r}"
    supplied = call_hook("features", hook, project.spec.hooks, raw, project)
    foreign = [str(c) for c in supplied.columns if c not in project.model_features]
    if foreign:
        raise HookError(f"{where} returned {foreign}, not model columns of the spec ({project.model_features})")
    if len(supplied) != len(raw):
        raise HookError(f"{where} returned {len(supplied)} rows for {len(raw)} raw rows")
    out = out.copy()
    for col in supplied.columns:
        out[col] = supplied[col].to_numpy()
    return out
