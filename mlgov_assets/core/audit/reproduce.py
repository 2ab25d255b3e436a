"""Rebuild a registered model from its recorded lineage and certify that it reproduces.

The training and holdout bytes come from the DVC cache by the md5s recorded on the version
(re-hashed while copied; altered bytes are refused), the hyperparameters and mitigation from the
MLflow run's params (parsed strictly), and the model is rebuilt by the training recipe
(:mod:`mlgov_assets.core.models.recipe`) in a temporary directory, under the project spec the version
recorded (``project/project.yaml``, checked against its ``mlgov.project_sha256`` tag; a version that
predates the tag is rebuilt under the current spec and the report says so). Both models score the holdout;
a certificate is appended to the decision log when every decision is equal and the scores are
identical (or within a stated ``tolerance``). The code is the current checkout: the report says
whether it is the recorded code (same commit, clean trees, same training ``code_version``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlgov_assets.core.audit.reproduce_inputs import (
    ReproduceError,
    copy_from_dvc_cache,
    features_from_raw,
    project_for,
    raw_tables,
    recorded_params,
    recorded_project_text,
    split_params,
)
from mlgov_assets.core.data.lineage import DataLineage
from mlgov_assets.core.models.registration import MitigationSettings
from mlgov_assets.core.models.training import HyperParams

if TYPE_CHECKING:
    from mlgov_assets.core.models.registry import Registry, VersionInfo
    from mlgov_assets.core.project.project import Project

__all__ = [
    "METHOD",
    "ReproduceError",
    "ReproductionReport",
    "code_identity",
    "copy_from_dvc_cache",
    "predictions",
    "predictions_sha256",
    "recorded_params",
    "reproduce",
    "split_params",
]

METHOD = (
    "in-process, under the recorded project spec: read_raw -> (holdout split) -> Parquet -> raw schema -> "
    "build_features -> Parquet -> training.fit (the recipe the governed assets call), data from the DVC "
    "cache by md5"
)

Predictions = dict[str, np.ndarray[Any, Any]]


class ReproductionReport(BaseModel):
    """What was rebuilt, from what, and how its holdout predictions compare with the registered model's."""

    model_config = ConfigDict(extra="forbid")

    model_name: str
    version: int
    run_id: str | None
    rows: int
    identical: bool
    within_tolerance: bool
    tolerance: float
    max_abs_diff: float
    differing_decisions: int
    differing_share: float
    code_identity: Literal["identical", "differs"]
    code_notes: list[str]
    recorded_code: dict[str, Any]
    current_code: dict[str, Any]
    data: dict[str, dict[str, Any]]
    params: dict[str, Any]
    metrics_recorded: dict[str, float]
    metrics_reproduced: dict[str, float]
    predictions_sha256: dict[str, str]
    timings: dict[str, float | None]
    method: str = METHOD
    variant: Literal["baseline", "mitigated"] = "baseline"
    certificate: dict[str, Any] | None = None
    project: dict[str, str] = Field(default_factory=dict)
    """The spec rebuilt under: name, sha256 and whether it is the ``recorded`` one or the ``current`` one."""
    workdir: str | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        return self.identical or self.within_tolerance

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump() | {"reproduced": self.reproduced}


# --------------------------------------------------------------------------- predictions


def predictions(model: Any, X: pd.DataFrame) -> Predictions:
    """What a governed model outputs on X: score, decision, and (mitigated) P(decision=1)."""
    from mlgov_assets.core.models.scoring import is_mitigated, score_frame

    scored = score_frame(model, X)
    out = {"score": scored["score"].to_numpy(dtype=float), "decision": scored["decision"].to_numpy(dtype=float)}
    if is_mitigated(model):
        out["p_decision"] = np.asarray(model.predict_proba(X)[:, 1], dtype=float)
    return out


def predictions_sha256(preds: Mapping[str, np.ndarray[Any, Any]]) -> str:
    """sha256 over the float64 little-endian bytes of score, decision, then p_decision if present."""
    h = hashlib.sha256()
    for key in ("score", "decision", "p_decision"):
        if key in preds:
            h.update(np.ascontiguousarray(preds[key], dtype="<f8").tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- code identity


def code_identity(
    tags: Mapping[str, str], current_git: Mapping[str, Any], current_code_version: str | None
) -> tuple[Literal["identical", "differs"], list[str]]:
    """("identical" | "differs", reasons): is the current checkout the code that trained the version?"""
    notes = []
    commit = tags.get("mlgov.git_commit", "unknown")
    if commit != current_git.get("commit"):
        notes.append(f"recorded commit {commit[:12]} is not HEAD ({str(current_git.get('commit'))[:12]})")
    if tags.get("mlgov.git_dirty") != "false":
        notes.append("the version was trained from a dirty (or unknown) working tree: its commit does not pin the code")
    if current_git.get("dirty"):
        notes.append("the current working tree has uncommitted changes")
    recorded_cv = tags.get("mlgov.code_version")
    if current_code_version and recorded_cv and current_code_version != recorded_cv:
        notes.append(f"training code_version is {current_code_version} now, {recorded_cv} when trained")
    return ("differs" if notes else "identical"), notes


# --------------------------------------------------------------------------- the reproduction


@dataclass(frozen=True)
class _Comparison:
    identical: bool
    max_abs_diff: float
    differing_decisions: int
    differing_share: float


def _compare(registered: Predictions, reproduced: Predictions) -> _Comparison:
    keys = sorted(set(registered) | set(reproduced))
    same = all(k in registered and k in reproduced and np.array_equal(registered[k], reproduced[k]) for k in keys)
    diffs = [
        float(np.max(np.abs(registered[k] - reproduced[k])))
        for k in ("score", "p_decision")
        if k in registered and k in reproduced and len(registered[k])
    ]
    changed = int(np.sum(registered["decision"] != reproduced["decision"]))
    n = len(registered["decision"])
    return _Comparison(bool(same), max(diffs, default=0.0), changed, changed / n if n else 0.0)


@dataclass(frozen=True)
class _Recorded:
    """What the version records about its own making."""

    info: VersionInfo
    variant: Literal["baseline", "mitigated"]
    lineage: dict[str, DataLineage]
    params: HyperParams
    mitigation: MitigationSettings | None
    project_text: str | None
    """The spec text the version recorded (None: it predates project recording)."""


def _recorded(registry: Registry, version: int) -> _Recorded:
    info = registry.version_info(version)
    tags = info.tags
    variant = tags.get("mlgov.variant", "baseline")
    if variant not in ("baseline", "mitigated"):
        raise ReproduceError(
            f"version {version} is variant {variant!r}: only baseline and mitigated versions can be reproduced"
        )
    md5s = {"training": tags.get("mlgov.train_data_md5"), "holdout": tags.get("mlgov.holdout_data_md5")}
    absent = [role for role, md5 in md5s.items() if not md5]
    if absent:
        raise ReproduceError(f"version {version} records no DVC md5 for {absent}")
    try:
        lineage = {
            role: DataLineage(role=role, source=f"{role} data from the DVC cache", dvc_md5=str(md5))
            for role, md5 in md5s.items()
        }
    except ValidationError as exc:
        raise ReproduceError(f"version {version}: recorded data md5s are not valid: {exc}") from exc
    params, mitigation = split_params(info.params)
    if (variant == "mitigated") != (mitigation is not None):
        raise ReproduceError(
            f"version {version}: variant {variant!r} but mitigation params {'present' if mitigation else 'absent'}"
        )
    return _Recorded(
        info,
        "mitigated" if variant == "mitigated" else "baseline",
        lineage,
        params,
        mitigation,
        recorded_project_text(registry, info),
    )


@dataclass(frozen=True)
class _Rebuilt:
    project: Project
    holdout: pd.DataFrame
    rows: dict[str, int]
    reproduced: Predictions
    registered: Predictions
    fit_seconds: float
    notes: list[str]


def _rebuild(registry: Registry, rec: _Recorded, workdir: Path) -> _Rebuilt:
    """Copy the recorded data out of the DVC cache, run the recipe under the recorded project spec,
    score both models on the holdout."""
    from mlgov_assets.core.data.datasets import dataset_caches
    from mlgov_assets.core.models.recipe import fit_recipe, model_columns

    project, notes = project_for(registry, rec.info.version, rec.project_text, workdir)
    raws = raw_tables(project, rec.lineage, rec.info.tags, dataset_caches(registry.settings), workdir)
    tables = {role: features_from_raw(project, raw, workdir).frame for role, raw in raws.items()}
    train, holdout = tables["training"], tables["holdout"]
    t_fit = time.perf_counter()
    fitted = fit_recipe(project, train, holdout, rec.params, rec.mitigation)
    fit_seconds = time.perf_counter() - t_fit
    columns = model_columns(project, rec.mitigation)
    return _Rebuilt(
        project=project,
        holdout=holdout,
        rows={role: len(df) for role, df in tables.items()},
        reproduced=predictions(fitted.model, holdout[columns]),
        registered=predictions(registry.load_governed(rec.info.version), holdout[columns]),
        fit_seconds=fit_seconds,
        notes=notes,
    )


def reproduce(
    registry: Registry,
    version: int,
    *,
    actor: str,
    tolerance: float = 0.0,
    current_code_version: str | None = None,
    original_training_seconds: float | None = None,
    write_certificate: bool = True,
    keep_workdir: bool = False,
) -> ReproductionReport:
    """Retrain ``version`` from its recorded lineage and compare holdout predictions with the
    registered model; append a ``reproducibility_certificate`` to the decision log when every
    decision is equal and the scores are identical or within ``tolerance``.

    ``current_code_version`` (the training asset's code_version now) and
    ``original_training_seconds`` come from the Dagster layer. Raises ``ReproduceError`` when the
    version cannot be rebuilt as recorded, ``IntegrityError`` when the recorded data or the model
    artifacts no longer hash to what was recorded.
    """
    from mlgov_assets.core.provenance import git_info

    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    started = time.perf_counter()
    rec = _recorded(registry, version)
    identity, code_notes = code_identity(rec.info.tags, git_info(registry.settings.project_dir), current_code_version)
    workdir = Path(tempfile.mkdtemp(prefix="mlgov-reproduce-"))
    try:
        rebuilt = _rebuild(registry, rec, workdir)
    finally:
        if not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    report = _report(registry, rec, rebuilt, tolerance=tolerance, identity=identity, code_notes=code_notes)
    report.current_code["code_version"] = current_code_version
    report.timings = {
        "original_training_seconds": original_training_seconds,
        "fit_seconds": rebuilt.fit_seconds,
        "reproduce_seconds": time.perf_counter() - started,
    }
    report.workdir = str(workdir) if keep_workdir else None
    if write_certificate and report.reproduced:
        report.certificate = _certify(registry, report, rec.info.tags, actor)
    return report


def _report(
    registry: Registry,
    rec: _Recorded,
    rebuilt: _Rebuilt,
    *,
    tolerance: float,
    identity: Literal["identical", "differs"],
    code_notes: list[str],
) -> ReproductionReport:
    from mlgov_assets.core.models.scoring import holdout_metrics
    from mlgov_assets.core.project.project import TARGET
    from mlgov_assets.core.provenance import git_info

    cmp = _compare(rebuilt.registered, rebuilt.reproduced)
    repro = rebuilt.reproduced
    scored = pd.DataFrame({"score": repro["score"], "decision": repro["decision"].astype(int)})
    tags = rec.info.tags
    return ReproductionReport(
        model_name=registry.name,
        version=rec.info.version,
        run_id=rec.info.run_id,
        rows=len(rebuilt.holdout),
        identical=cmp.identical,
        within_tolerance=cmp.max_abs_diff <= tolerance and cmp.differing_decisions == 0,
        tolerance=tolerance,
        max_abs_diff=cmp.max_abs_diff,
        differing_decisions=cmp.differing_decisions,
        differing_share=cmp.differing_share,
        code_identity=identity,
        code_notes=code_notes,
        recorded_code={
            "commit": tags.get("mlgov.git_commit"),
            "dirty": tags.get("mlgov.git_dirty"),
            "code_version": tags.get("mlgov.code_version"),
        },
        current_code=dict(git_info(registry.settings.project_dir)),
        data={role: {"md5": lin.dvc_md5, "rows": rebuilt.rows[role]} for role, lin in rec.lineage.items()},
        params=rec.params.to_dict() | ({"mitigation": rec.mitigation.model_dump()} if rec.mitigation else {}),
        metrics_recorded=dict(rec.info.metrics),
        metrics_reproduced=holdout_metrics(rebuilt.holdout[TARGET].to_numpy(), scored),
        predictions_sha256={
            "registered": predictions_sha256(rebuilt.registered),
            "reproduced": predictions_sha256(repro),
        },
        timings={},
        variant=rec.variant,
        project={
            "name": rebuilt.project.name,
            "sha256": rebuilt.project.sha256,
            "spec": "recorded" if rec.project_text is not None else "current",
        },
        notes=list(rebuilt.notes),
    )


def _certify(registry: Registry, report: ReproductionReport, tags: Mapping[str, str], actor: str) -> dict[str, Any]:
    """Append the certificate to the original home's decision log and witness the new head on the version."""
    from mlgov_assets.core.audit.decision_log import DecisionLog
    from mlgov_assets.core.governance.promotion import HEAD_TAG

    how = (
        "bitwise identical"
        if report.identical
        else f"within the stated tolerance {report.tolerance:g} (max |diff| {report.max_abs_diff:.3g})"
    )
    code = (
        "the recorded code (same commit, clean tree)"
        if report.code_identity == "identical"
        else "code that DIFFERS from the recorded code (" + "; ".join(report.code_notes) + ")"
    )
    evidence = {
        "train_data_md5": report.data["training"]["md5"],
        "holdout_data_md5": report.data["holdout"]["md5"],
        "registered_predictions_sha256": report.predictions_sha256["registered"],
        "reproduced_predictions_sha256": report.predictions_sha256["reproduced"],
    }
    for key, tag in (
        ("artifact_manifest_sha256", "mlgov.artifact_manifest_sha256"),
        ("policy_sha256", "mlgov.policy_sha256"),
        ("git_commit", "mlgov.git_commit"),
    ):
        value = tags.get(tag, "")
        if 32 <= len(value) <= 128 and all(c in "0123456789abcdef" for c in value):
            evidence[key] = value
    payload = {k: v for k, v in report.to_dict().items() if k not in ("certificate", "workdir")}
    log = DecisionLog(registry.settings.decision_log)
    rec = log.append(
        "reproducibility_certificate",
        actor=actor,
        reason=f"retrained from the recorded lineage with {code}: holdout predictions on {report.rows} rows are {how}",
        model_name=registry.name,
        model_version=report.version,
        payload=json.loads(json.dumps(payload, default=str)),
        evidence_hashes=evidence,
    )
    client = registry.client
    client.set_model_version_tag(registry.name, str(report.version), HEAD_TAG, json.dumps(log.head(), sort_keys=True))
    client.set_model_version_tag(registry.name, str(report.version), "mlgov.reproducibility_certificate", rec.hash)
    return {"index": rec.index, "hash": rec.hash, "time": rec.time, "code_identity": report.code_identity}
