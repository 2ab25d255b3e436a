"""The reference a batch is compared with: the champion's training data, and its cached profile."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.data.adult import CATEGORICAL, LABEL, MISSING_TOKEN, NUMERIC, POSITIVE_LABEL, read_adult_csv
from mlgov_assets.core.integrity import md5_file
from mlgov_assets.core.monitoring.ledger import MonitoringError, MonitoringPaths, atomic_write_text, utc_now
from mlgov_assets.core.monitoring.profile import ReferenceProfile
from mlgov_assets.core.monitoring.scoring import model_inputs, score_model

if TYPE_CHECKING:
    from mlgov_assets.core.models.registry import VersionInfo
    from mlgov_assets.core.settings import Settings

#: Columns compared for data drift: every Adult input column (the label is judged by performance).
DRIFT_NUMERIC = list(NUMERIC)
DRIFT_CATEGORICAL = list(CATEGORICAL)


def typed_for_drift(raw: pd.DataFrame) -> pd.DataFrame:
    """The 14 Adult input columns, numbers parsed, ``?`` as the explicit category ``Unknown``."""
    out = pd.DataFrame(index=raw.index)
    for col in DRIFT_NUMERIC:
        out[col] = pd.to_numeric(raw[col], errors="raise")
    for col in DRIFT_CATEGORICAL:
        out[col] = raw[col].astype(str).replace(MISSING_TOKEN, "Unknown")
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
    from mlgov_assets.core.data.datasets import cache_dir
    from mlgov_assets.core.integrity import dvc_cache_path

    rel, md5 = version_info.tags.get("mlgov.train_data_path"), version_info.tags.get("mlgov.train_data_md5")
    if not rel or not md5:
        raise MonitoringError(f"model version {version_info.version} has no mlgov.train_data_path/md5 tags")
    project = Path(settings.project_dir)
    candidate = project / rel
    if candidate.is_file() and md5_file(candidate) == md5:
        return Reference(rel, md5, candidate, "project")
    cached = dvc_cache_path(cache_dir(project), md5)
    if cached.is_file() and md5_file(cached) == md5:
        return Reference(rel, md5, cached, "dvc-cache")
    raise MonitoringError(
        f"the champion's training data {rel} (md5 {md5}) is neither in the project nor in the "
        f"DVC cache: run `mlgov data pull` (or `dvc pull`) to restore it"
    )


def read_reference(ref: Reference) -> pd.DataFrame:
    return read_adult_csv(ref.path)


def reference_profile(
    paths: MonitoringPaths, ref: Reference, *, bins: int, raw: pd.DataFrame | None = None
) -> tuple[ReferenceProfile, ReferenceMeta]:
    """The data-side profile of ``ref`` (built once per reference md5 and ``bins``, then loaded)."""
    folder = paths.reference / ref.md5
    path = folder / f"profile-b{bins}.json"
    meta_path = folder / "meta.json"
    if path.exists() and meta_path.exists():
        with contextlib.suppress(ValueError, OSError, KeyError):
            return ReferenceProfile.load(path), ReferenceMeta.model_validate_json(meta_path.read_text(encoding="utf-8"))
    raw = read_reference(ref) if raw is None else raw
    profile = ReferenceProfile.build(typed_for_drift(raw), DRIFT_NUMERIC, DRIFT_CATEGORICAL, bins=bins)
    profile.save(path)
    labels = raw[LABEL] if LABEL in raw.columns else pd.Series(dtype=object)
    meta = ReferenceMeta(
        md5=ref.md5,
        path=ref.rel_path,
        rows=len(raw),
        positive_rate=float((labels == POSITIVE_LABEL).mean()) if len(labels) else None,
        fingerprint=profile.fingerprint,
        built_at=utc_now(),
    )
    atomic_write_text(meta_path, meta.model_dump_json(indent=1) + "\n")
    return profile, meta


def profile_with_champion(
    paths: MonitoringPaths,
    ref: Reference,
    profile: ReferenceProfile,
    *,
    champion: int,
    load_model: Callable[[int], Any],
) -> ReferenceProfile:
    """The profile plus the champion's scores on the reference rows (for prediction drift), cached
    per (reference md5, bins, champion version): scoring the reference happens once per champion."""
    path = paths.reference / ref.md5 / f"profile-b{profile.bins}-champion-v{champion}.json"
    if path.exists():
        with contextlib.suppress(ValueError, OSError, KeyError):
            loaded = ReferenceProfile.load(path)
            if loaded.data_fingerprint == profile.fingerprint:
                return loaded
    scores, _ = score_model(load_model(champion), model_inputs(read_reference(ref)))
    combined = profile.with_prediction(scores)
    combined.save(path)
    return combined
