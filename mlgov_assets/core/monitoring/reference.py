"""The reference a batch is compared with: the champion's training data, and its cached profile."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.integrity import md5_file
from mlgov_assets.core.monitoring.ledger import MonitoringError, MonitoringPaths, atomic_write_text, utc_now
from mlgov_assets.core.monitoring.profile import ReferenceProfile
from mlgov_assets.core.monitoring.scoring import model_inputs, score_model

if TYPE_CHECKING:
    from mlgov_assets.core.models.registry import VersionInfo
    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.settings import Settings


@dataclass(frozen=True)
class DriftColumns:
    """Columns compared for data drift: every raw input column of the project, in file order, but
    the target (judged by performance) and the row id (unique per row, so it always "drifts")."""

    numeric: list[str]
    categorical: list[str]

    @classmethod
    def of(cls, project: Project) -> DriftColumns:
        skip = {project.label, project.spec.row_id}
        return cls(
            numeric=[c for c in project.numeric if c not in skip],
            categorical=[c for c in project.categorical if c not in skip],
        )

    @property
    def all(self) -> list[str]:
        return self.numeric + self.categorical


def typed_for_drift(project: Project, raw: pd.DataFrame) -> pd.DataFrame:
    """The drift columns of ``raw``: numbers parsed, missing tokens (and missing values) of a
    category as the explicit category ``Unknown``."""
    from mlgov_assets.core.project.project import UNKNOWN

    columns = DriftColumns.of(project)
    tokens = project.missing_tokens
    out = pd.DataFrame(index=raw.index)
    for col in columns.numeric:
        out[col] = pd.to_numeric(raw[col], errors="raise")
    for col in columns.categorical:
        text = raw[col].astype(str).where(raw[col].notna(), UNKNOWN)
        out[col] = text.replace(tokens, UNKNOWN) if tokens else text
    return out


@dataclass(frozen=True)
class Reference:
    """The champion's training data: where its bytes are read from and their md5 (DVC's)."""

    rel_path: str
    md5: str
    path: Path
    source: Literal["project", "dvc-cache"]


class ReferenceMeta(BaseModel):
    """Small facts about a reference kept next to its profile (``meta.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    md5: str
    path: str
    rows: int
    positive_rate: float | None
    fingerprint: str
    built_at: str


class ReferenceRecord(BaseModel):
    """The reference a batch was judged against, as recorded in the ledger and the drift result."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    md5: str
    read_from: str
    source: Literal["project", "dvc-cache"]
    fingerprint: str
    rows: int | None = None
    positive_rate: float | None = None

    def located(self) -> Reference:
        """The :class:`Reference` this record names (to read the same bytes again)."""
        return Reference(self.path, self.md5, Path(self.read_from), self.source)

    @classmethod
    def of(cls, ref: Reference, meta: ReferenceMeta, fingerprint: str) -> ReferenceRecord:
        """``fingerprint``: the data-side profile's (what a retraining run key is built from)."""
        return cls(
            path=ref.rel_path,
            md5=ref.md5,
            read_from=str(ref.path),
            source=ref.source,
            fingerprint=fingerprint,
            rows=meta.rows,
            positive_rate=meta.positive_rate,
        )


def champion_reference(settings: Settings, version_info: VersionInfo) -> Reference:
    """Resolve the training data recorded on the champion (tags ``mlgov.train_data_path/md5``).

    The working-tree file if its bytes still hash to the recorded md5, else the DVC cache object
    with that md5. Anything else raises :class:`MonitoringError`: comparing batches with data the
    champion never saw would be a silent lie.
    """
    from mlgov_assets.core.data.datasets import dataset_caches, dataset_location
    from mlgov_assets.core.integrity import locate_dvc_cached

    rel, md5 = version_info.tags.get("mlgov.train_data_path"), version_info.tags.get("mlgov.train_data_md5")
    if not rel or not md5:
        raise MonitoringError(f"model version {version_info.version} has no mlgov.train_data_path/md5 tags")
    _, candidate = dataset_location(Path(settings.project_dir), rel, settings.generated_dir)
    if candidate.is_file() and md5_file(candidate) == md5:
        return Reference(rel, md5, candidate, "project")
    cached = locate_dvc_cached(dataset_caches(settings), md5)
    if cached.is_file() and md5_file(cached) == md5:
        return Reference(rel, md5, cached, "dvc-cache")
    raise MonitoringError(
        f"the champion's training data {rel} (md5 {md5}) is neither in the project nor in the "
        f"DVC cache: run `mlgov data pull` (or `dvc pull`) to restore it"
    )


def read_reference(project: Project, ref: Reference) -> pd.DataFrame:
    """The champion's training rows: the file as the spec reads it (a dataset mlgov generated has a
    header row), and when the spec's holdout is a split, only the training part of it."""
    from mlgov_assets.core.project.reader import read_raw
    from mlgov_assets.core.project.spec import Split

    own = ref.rel_path in (project.train_file, project.holdout_file)
    raw = read_raw(project, ref.path, header=None if own else "present")
    split = project.spec.data.holdout
    if isinstance(split, Split):
        from mlgov_assets.core.data.split import split_holdout

        raw = split_holdout(project, raw, split).train
    return raw


def _cache_dir(project: Project, paths: MonitoringPaths, ref: Reference) -> Path:
    """Profiles of a reference are cached per md5 of its bytes (and per split, when it is cut)."""
    from mlgov_assets.core.project.spec import Split

    split = project.spec.data.holdout
    if isinstance(split, Split):
        return paths.reference / f"{ref.md5}-split-{split.seed}-{split.fraction:g}{'-strat' if split.stratify else ''}"
    return paths.reference / ref.md5


def reference_profile(
    project: Project, paths: MonitoringPaths, ref: Reference, *, bins: int, raw: pd.DataFrame | None = None
) -> tuple[ReferenceProfile, ReferenceMeta]:
    """The data-side profile of ``ref`` (built once per reference md5 and ``bins``, then loaded)."""
    folder = _cache_dir(project, paths, ref)
    path = folder / f"profile-b{bins}.json"
    meta_path = folder / "meta.json"
    if path.exists() and meta_path.exists():
        with contextlib.suppress(ValueError, OSError, KeyError):
            return ReferenceProfile.load(path), ReferenceMeta.model_validate_json(meta_path.read_text(encoding="utf-8"))
    raw = read_reference(project, ref) if raw is None else raw
    columns = DriftColumns.of(project)
    profile = ReferenceProfile.build(typed_for_drift(project, raw), columns.numeric, columns.categorical, bins=bins)
    profile.save(path)
    label = project.label
    labels = raw[label] if label in raw.columns else pd.Series(dtype=object)
    meta = ReferenceMeta(
        md5=ref.md5,
        path=ref.rel_path,
        rows=len(raw),
        positive_rate=float((labels == project.favourable).mean()) if len(labels) else None,
        fingerprint=profile.fingerprint,
        built_at=utc_now(),
    )
    atomic_write_text(meta_path, meta.model_dump_json(indent=1) + "\n")
    return profile, meta


def profile_with_champion(
    project: Project,
    paths: MonitoringPaths,
    ref: Reference,
    profile: ReferenceProfile,
    *,
    champion: int,
    load_model: Callable[[int], Any],
) -> ReferenceProfile:
    """The profile plus the champion's scores on the reference rows (for prediction drift), cached
    per (reference md5, bins, champion version): scoring the reference happens once per champion."""
    path = _cache_dir(project, paths, ref) / f"profile-b{profile.bins}-champion-v{champion}.json"
    if path.exists():
        with contextlib.suppress(ValueError, OSError, KeyError):
            loaded = ReferenceProfile.load(path)
            if loaded.data_fingerprint == profile.fingerprint:
                return loaded
    scores, _ = score_model(load_model(champion), model_inputs(project, read_reference(project, ref)))
    combined = profile.with_prediction(scores)
    combined.save(path)
    return combined
