"""Rebuild a registered model from its recorded lineage and certify that it reproduces.

What is reproduced, exactly (the certificate states each point):

- **Data**: the training and holdout bytes are taken from the DVC cache *by the md5 recorded on the
  version*, copied into a private temporary directory and re-hashed while they are copied; a cache
  object whose bytes no longer match is refused, never trained on.
- **Parameters and seed**: the MLflow run's params, converted back to ``training.HyperParams``
  (``random_state`` included), plus ``mitigation_*`` params for a fairness-mitigated version. A run
  param that neither knows is refused rather than silently ignored.
- **Model**: a baseline version is the fitted pipeline. A mitigated version (``mlgov.variant`` =
  mitigated) is rebuilt the way ``mitigate_and_register`` builds it: the base pipeline is refitted
  from the data, then ``mitigation.fit_mitigated`` with the recorded method, constraints,
  objective, sensitive features and seed.
- **Code**: the code of the current checkout. It *is* the recorded code only if the recorded commit
  equals HEAD, the tree is clean now and was clean at training time, and (when given) the training
  ``code_version`` is unchanged. Otherwise the report says how the code differs, the reproduction
  still runs, and the certificate is marked ``code_identity: "differs"``.
- **Execution**: in-process, not as a Dagster job: the same chain of functions the assets call
  (``read_adult_csv`` -> Parquet round trip as the IO manager stores it -> ``RawAdultSchema``
  validation -> ``build_features`` -> Parquet round trip -> ``training.fit``), in a temporary
  directory that plays the isolated MLGOV_HOME: nothing is written to the original home except the
  certificate. A Dagster job in a temporary instance would add a temporary MLflow store and a second
  registration (~4 s here) and re-run the gates, none of which changes the predictions compared.
- **Comparison**: the registered model is loaded with ``Registry.load_governed`` (its artifact
  bytes verified against the sha256 manifest first), both models score the recorded holdout with
  ``scoring.score_frame`` and the outputs are compared: the score (positive-class probability of
  the pipeline), the decision, and for a mitigated model its decision probability P(decision=1). Default tolerance 0: bitwise identical, which is what a
  seeded HistGradientBoosting on the same bytes, library versions and CPU gives. A non-zero
  ``tolerance`` is for a different machine, where OpenMP reductions may sum in another order
  (differences of ~1e-15 in a probability); it is recorded in the certificate. A difference is
  reported with its size (max absolute difference, number and share of changed decisions).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlgov_assets.core.integrity import CHUNK_SIZE, IntegrityError, dvc_cache_path

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
    "in-process: read_adult_csv -> Parquet -> RawAdultSchema -> build_features -> Parquet -> "
    "training.fit (the functions the governed assets call), data from the DVC cache by md5"
)


class ReproduceError(RuntimeError):
    """The version cannot be reproduced as recorded (missing lineage, unsupported variant, ...)."""


@dataclass
class ReproductionReport:
    """What was rebuilt, from what, and how its holdout predictions compare with the registered model's."""

    model_name: str
    version: int
    run_id: str
    rows: int
    identical: bool
    within_tolerance: bool
    tolerance: float
    max_abs_diff: float
    differing_decisions: int
    differing_share: float
    code_identity: str
    code_notes: list[str]
    recorded_code: dict[str, Any]
    current_code: dict[str, Any]
    data: dict[str, Any]
    params: dict[str, Any]
    metrics_recorded: dict[str, float]
    metrics_reproduced: dict[str, float]
    predictions_sha256: dict[str, str]
    timings: dict[str, float | None]
    method: str = METHOD
    variant: str = "baseline"
    certificate: dict[str, Any] | None = None
    workdir: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        return self.identical or self.within_tolerance

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"reproduced": self.reproduced}


# --------------------------------------------------------------------------- inputs


def recorded_params(params: Mapping[str, str]):
    """The run's params (MLflow stores strings) back as ``HyperParams``, every field required."""
    from mlgov_assets.core.models.training import HyperParams

    fields = {f.name: f for f in dataclasses.fields(HyperParams)}
    unknown = sorted(set(params) - set(fields))
    missing = sorted(set(fields) - set(params))
    if unknown or missing:
        raise ReproduceError(f"run params do not match training.HyperParams: unknown {unknown}, missing {missing}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        raw, kind = params[name], str(f.type)
        try:
            if raw == "None" and ("Optional" in kind or "None" in kind):
                values[name] = None
            elif "float" in kind:
                values[name] = float(raw)
            elif "int" in kind:
                values[name] = int(raw)
            else:
                values[name] = raw
        except ValueError as exc:
            raise ReproduceError(f"run param {name}={raw!r} is not a valid {kind}") from exc
    return HyperParams(**values)


MITIGATION_KEYS = ("method", "constraints", "objective", "sensitive_features")


def split_params(params: Mapping[str, str]) -> tuple[Any, dict[str, Any] | None]:
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
    return hyper, {
        "method": mit["method"],
        "constraints": mit["constraints"],
        "objective": mit["objective"],
        "sensitive_features": list(sens),
        "base_version": mit.get("base_version"),
    }


def copy_from_dvc_cache(cache_dir: str | Path, md5: str, dest: Path) -> Path:
    """Copy the cache object for ``md5`` to ``dest``, hashing the bytes written; refuse a mismatch."""
    src = dvc_cache_path(cache_dir, md5)
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


def _parquet_round_trip(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """As MlgovIOManager stores an asset value between steps (Parquet, no index)."""
    df.to_parquet(path, index=False)
    return pd.read_parquet(path)


def features_from_file(path: Path, workdir: Path, role: str) -> pd.DataFrame:
    """The governed chain from raw file to modelling table (data asset -> features asset)."""
    from mlgov_assets.core.data.adult import read_adult_csv
    from mlgov_assets.core.data.features import build_features
    from mlgov_assets.core.data.schemas import RawAdultSchema, validate

    raw = _parquet_round_trip(read_adult_csv(path), workdir / f"{role}_data.parquet")
    report = validate(raw, RawAdultSchema, source=f"{role} data from the DVC cache")
    if not report.passed:
        raise ReproduceError(f"recorded {role} data fails RawAdultSchema: {report.summary()}")
    return _parquet_round_trip(build_features(report.validated), workdir / f"{role}_features.parquet")


def predictions(model: Any, X: pd.DataFrame) -> dict[str, np.ndarray]:
    """What a governed model outputs on X: score, decision, and (mitigated) P(decision=1)."""
    from mlgov_assets.core.models.scoring import is_mitigated, score_frame

    scored = score_frame(model, X)
    out = {"score": scored["score"].to_numpy(dtype=float), "decision": scored["decision"].to_numpy(dtype=float)}
    if is_mitigated(model):
        out["p_decision"] = np.asarray(model.predict_proba(X)[:, 1], dtype=float)
    return out


def predictions_sha256(preds: Mapping[str, np.ndarray]) -> str:
    """sha256 over the float64 little-endian bytes of score, decision, then p_decision if present."""
    h = hashlib.sha256()
    for key in ("score", "decision", "p_decision"):
        if key in preds:
            h.update(np.ascontiguousarray(preds[key], dtype="<f8").tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- code identity


def code_identity(
    tags: Mapping[str, str], current_git: Mapping[str, Any], current_code_version: str | None
) -> tuple[str, list[str]]:
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


def _compare(registered: Mapping[str, np.ndarray], reproduced: Mapping[str, np.ndarray]) -> dict[str, Any]:
    keys = sorted(set(registered) | set(reproduced))
    same = all(k in registered and k in reproduced and np.array_equal(registered[k], reproduced[k]) for k in keys)
    diffs = [
        float(np.max(np.abs(registered[k] - reproduced[k])))
        for k in ("score", "p_decision")
        if k in registered and k in reproduced and len(registered[k])
    ]
    changed = int(np.sum(registered["decision"] != reproduced["decision"]))
    n = len(registered["decision"])
    return {
        "identical": bool(same),
        "max_abs_diff": max(diffs, default=0.0),
        "differing_decisions": changed,
        "differing_share": changed / n if n else 0.0,
    }


def reproduce(
    registry: Any,
    version: int,
    *,
    actor: str,
    tolerance: float = 0.0,
    current_code_version: str | None = None,
    original_training_seconds: float | None = None,
    write_certificate: bool = True,
    keep_workdir: bool = False,
) -> ReproductionReport:
    """Retrain ``version`` from its recorded lineage in a temporary directory and compare holdout
    predictions with the registered model; append a ``reproducibility_certificate`` to the decision
    log of ``registry``'s home when they are identical (or within ``tolerance``, which is stated).

    Decisions are the model's own (``scoring.score_frame``: score >= 0.5 for a pipeline, the
    group-specific thresholds for a mitigated model); a certificate needs every decision equal. ``current_code_version`` (the training asset's code_version
    now) and ``original_training_seconds`` (the challenger_model step's duration) come from the
    Dagster layer. Raises IntegrityError if the recorded data or the model artifacts no longer hash
    to what was recorded.
    """
    from mlgov_assets.core.data.datasets import cache_dir
    from mlgov_assets.core.data.features import MODEL_FEATURES, TARGET
    from mlgov_assets.core.models.scoring import holdout_metrics
    from mlgov_assets.core.models.training import fit
    from mlgov_assets.core.provenance import git_info

    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    started = time.perf_counter()
    info = registry.version_info(version)
    tags = info["tags"]
    variant = tags.get("mlgov.variant", "baseline")
    if variant not in ("baseline", "mitigated"):
        raise ReproduceError(
            f"version {version} is variant {variant!r}: only baseline and mitigated versions can be reproduced"
        )
    md5s = {"training": tags.get("mlgov.train_data_md5"), "holdout": tags.get("mlgov.holdout_data_md5")}
    if not all(md5s.values()):
        raise ReproduceError(f"version {version} records no DVC md5 for {[k for k, v in md5s.items() if not v]}")
    params, mitigation = split_params(info["params"])
    if (variant == "mitigated") != (mitigation is not None):
        raise ReproduceError(
            f"version {version}: variant {variant!r} but mitigation params {'present' if mitigation else 'absent'}"
        )
    s = registry.settings
    identity, code_notes = code_identity(tags, git_info(s.project_dir), current_code_version)
    columns = MODEL_FEATURES + (mitigation["sensitive_features"] if mitigation else [])
    workdir = Path(tempfile.mkdtemp(prefix="mlgov-reproduce-"))
    try:
        cache = cache_dir(s.project_dir)
        files = {role: copy_from_dvc_cache(cache, md5, workdir / "data" / f"{role}.csv") for role, md5 in md5s.items()}
        train = features_from_file(files["training"], workdir, "training")
        holdout = features_from_file(files["holdout"], workdir, "holdout")
        t_fit = time.perf_counter()
        model = fit(train, params)
        if mitigation:
            from mlgov_assets.core.models.mitigation import fit_mitigated

            model = fit_mitigated(
                model,
                train[columns],
                train[TARGET].to_numpy(),
                sensitive_features=mitigation["sensitive_features"],
                method=mitigation["method"],
                constraints=mitigation["constraints"],
                objective=mitigation["objective"],
                random_state=params.random_state,
            )
        fit_seconds = time.perf_counter() - t_fit
        reproduced = predictions(model, holdout[columns])
        registered = predictions(registry.load_governed(version), holdout[columns])
    finally:
        if not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    cmp = _compare(registered, reproduced)
    scored = pd.DataFrame({"score": reproduced["score"], "decision": reproduced["decision"].astype(int)})
    report = ReproductionReport(
        model_name=registry.name,
        version=int(version),
        run_id=info["run_id"],
        rows=len(holdout),
        identical=cmp["identical"],
        within_tolerance=cmp["max_abs_diff"] <= tolerance and cmp["differing_decisions"] == 0,
        tolerance=tolerance,
        max_abs_diff=cmp["max_abs_diff"],
        differing_decisions=cmp["differing_decisions"],
        differing_share=cmp["differing_share"],
        code_identity=identity,
        code_notes=code_notes,
        recorded_code={
            "commit": tags.get("mlgov.git_commit"),
            "dirty": tags.get("mlgov.git_dirty"),
            "code_version": tags.get("mlgov.code_version"),
        },
        current_code={**git_info(s.project_dir), "code_version": current_code_version},
        data={role: {"md5": md5, "rows": len(df)} for (role, md5), df in zip(md5s.items(), (train, holdout), strict=False)},
        params=params.to_dict() | ({"mitigation": mitigation} if mitigation else {}),
        metrics_recorded=dict(info["metrics"]),
        metrics_reproduced=holdout_metrics(holdout[TARGET].to_numpy(), scored),
        predictions_sha256={"registered": predictions_sha256(registered), "reproduced": predictions_sha256(reproduced)},
        timings={
            "original_training_seconds": original_training_seconds,
            "fit_seconds": fit_seconds,
            "reproduce_seconds": time.perf_counter() - started,
        },
        workdir=str(workdir) if keep_workdir else None,
        variant=variant,
    )
    if write_certificate and report.reproduced:
        report.certificate = _certify(registry, report, tags, actor)
    return report


def _certify(registry: Any, report: ReproductionReport, tags: Mapping[str, str], actor: str) -> dict[str, Any]:
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
