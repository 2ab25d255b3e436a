"""What ``reproduce`` rebuilds from: a version's recorded params, project spec and data.

Each input is parsed strictly or verified against the hash the version recorded (params against
``HyperParams``, the spec against ``mlgov.project_sha256``, data bytes against their DVC md5s, a
re-cut holdout split against ``mlgov.holdout_split_sha256``); a mismatch is refused, never guessed.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from pydantic import ValidationError

from mlgov_assets.core.data.lineage import DataLineage, LineagedFrame
from mlgov_assets.core.errors import Refusal
from mlgov_assets.core.integrity import CHUNK_SIZE, CacheDirs, IntegrityError, locate_dvc_cached
from mlgov_assets.core.models.registration import MitigationSettings
from mlgov_assets.core.models.training import HyperParams

if TYPE_CHECKING:
    from mlgov_assets.core.models.registry import Registry, VersionInfo
    from mlgov_assets.core.project.project import Project


class ReproduceError(Refusal):
    """The version cannot be reproduced as recorded (missing lineage, unsupported variant, ...)."""


def recorded_params(params: Mapping[str, str]) -> HyperParams:
    """The run's params (MLflow stores strings) back as ``HyperParams``, every field required."""
    fields = set(HyperParams.model_fields)
    unknown, missing = sorted(set(params) - fields), sorted(fields - set(params))
    if unknown or missing:
        raise ReproduceError(f"run params do not match training.HyperParams: unknown {unknown}, missing {missing}")
    try:
        return HyperParams.from_recorded(params)
    except ValidationError as exc:
        raise ReproduceError(f"run params are not valid HyperParams: {exc}") from exc


MITIGATION_KEYS = ("method", "constraints", "objective", "sensitive_features", "base_version")


def split_params(params: Mapping[str, str]) -> tuple[HyperParams, MitigationSettings | None]:
    """(HyperParams, mitigation settings or None) from a run's params (``mitigation_*`` prefixed)."""
    base = {k: v for k, v in params.items() if not k.startswith("mitigation_")}
    mit = {k[len("mitigation_") :]: v for k, v in params.items() if k.startswith("mitigation_")}
    hyper = recorded_params(base)
    if not mit:
        return hyper, None
    missing = [k for k in MITIGATION_KEYS if k not in mit]
    if missing:
        raise ReproduceError(f"mitigation params incomplete: missing {['mitigation_' + k for k in missing]}")
    try:
        sens = ast.literal_eval(mit["sensitive_features"])
    except (ValueError, SyntaxError) as exc:
        raise ReproduceError(f"mitigation_sensitive_features={mit['sensitive_features']!r} is not a list") from exc
    if not isinstance(sens, (list, tuple)) or not all(isinstance(x, str) for x in sens):
        raise ReproduceError(f"mitigation_sensitive_features must be a list of column names, got {sens!r}")
    try:
        return hyper, MitigationSettings.model_validate(mit | {"sensitive_features": list(sens)})
    except ValidationError as exc:
        raise ReproduceError(f"mitigation params are not valid: {exc}") from exc


def copy_from_dvc_cache(cache_dir: CacheDirs, md5: str, dest: Path) -> Path:
    """Copy the cache object for ``md5`` (from the first cache root holding it) to ``dest``, hashing
    the bytes written; refuse a mismatch."""
    src = locate_dvc_cached(cache_dir, md5)
    if not src.is_file() or src.is_symlink():
        raise IntegrityError(
            f"DVC cache object for md5 {md5} not found at {src}: cannot reproduce from the recorded data"
        )
    h = hashlib.md5(usedforsecurity=False)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(dest, "xb") as fout:
        for chunk in iter(lambda: fin.read(CHUNK_SIZE), b""):
            h.update(chunk)
            fout.write(chunk)
    if h.hexdigest() != md5:
        dest.unlink()
        raise IntegrityError(f"DVC cache object {src} has md5 {h.hexdigest()}, recorded {md5}: refusing to train on it")
    return dest


def _parquet_round_trip(data: LineagedFrame, path: Path) -> LineagedFrame:
    """As MlgovIOManager stores a table between steps (Parquet, no index)."""
    data.frame.to_parquet(path, index=False)
    return LineagedFrame(frame=pd.read_parquet(path), lineage=data.lineage)


def features_from_raw(project: Project, data: LineagedFrame, workdir: Path) -> LineagedFrame:
    """The governed chain from raw rows to modelling table (data asset -> features asset)."""
    from mlgov_assets.core.models.recipe import DataRefused, feature_table

    role = data.lineage.role
    raw = _parquet_round_trip(data, workdir / f"{role}_data.parquet")
    try:
        table = feature_table(project, raw)
    except DataRefused as exc:
        raise ReproduceError(f"recorded {role} data fails the project's raw schema: {exc}") from exc
    return _parquet_round_trip(table, workdir / f"{role}_features.parquet")


def features_from_file(project: Project, path: Path, workdir: Path, lineage: DataLineage) -> LineagedFrame:
    """The governed chain from a raw file to its modelling table."""
    from mlgov_assets.core.models.recipe import read_dataset

    return features_from_raw(project, read_dataset(project, path, lineage), workdir)


# --------------------------------------------------------------------------- project spec and data


def recorded_project_text(registry: Registry, info: VersionInfo) -> str | None:
    """The recorded spec, verified against the version's ``mlgov.project_sha256`` tag."""
    from mlgov_assets.core.models.registration import PROJECT_ARTIFACT

    sha = info.tags.get("mlgov.project_sha256")
    if not sha:
        return None
    text = registry.artifact_text(info.run_id, PROJECT_ARTIFACT) if info.run_id else None
    if text is None:
        raise ReproduceError(f"version {info.version} records project sha256 {sha[:12]} but no {PROJECT_ARTIFACT}")
    actual = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if actual != sha:
        raise IntegrityError(
            f"version {info.version}: {PROJECT_ARTIFACT} hashes to {actual[:12]}, recorded {sha[:12]}: refusing it"
        )
    return text


def project_for(registry: Registry, version: int, project_text: str | None, workdir: Path) -> tuple[Project, list[str]]:
    """The project to rebuild under (the recorded spec, else the current one) and notes saying which."""
    from mlgov_assets.core.project.project import open_project

    s = registry.settings
    if project_text is None:
        current = open_project(s.project_spec, s.project_dir)
        note = (
            f"version {version} predates project recording (no mlgov.project_sha256 tag): rebuilt under "
            f"the current project spec {s.project_spec} ({current.name}, sha256 {current.sha256[:12]})"
        )
        return current, [note]
    path = workdir / "project" / "project.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(project_text.encode("utf-8"))
    return open_project(path, s.project_dir), []


def raw_tables(
    project: Project, lineage: Mapping[str, DataLineage], tags: Mapping[str, str], cache: CacheDirs, workdir: Path
) -> dict[str, LineagedFrame]:
    """The recorded raw rows per role: each file from the DVC cache, or both parts of the training
    file re-split as the spec says (the split's holdout hash checked against the recorded one)."""
    from mlgov_assets.core.models.recipe import read_dataset, split_parts

    if project.holdout_file is not None:
        return {
            role: read_dataset(project, copy_from_dvc_cache(cache, lin.dvc_md5, workdir / "data" / f"{role}.raw"), lin)
            for role, lin in lineage.items()
        }
    train_lineage = lineage["training"]
    if lineage["holdout"].dvc_md5 != train_lineage.dvc_md5:
        raise ReproduceError("the project's holdout is a split, but the version records a separate holdout file")
    path = copy_from_dvc_cache(cache, train_lineage.dvc_md5, workdir / "data" / "training.raw")
    train, holdout = split_parts(project, read_dataset(project, path, train_lineage))
    recorded = tags.get("mlgov.holdout_split_sha256")
    cut = holdout.lineage.split.holdout_sha256 if holdout.lineage.split is not None else ""
    if recorded and recorded != cut:
        raise ReproduceError(
            f"the re-cut holdout's row ids hash to {cut[:12]}, recorded {recorded[:12]}: "
            "not the holdout the version was evaluated on"
        )
    return {"training": train, "holdout": holdout}
