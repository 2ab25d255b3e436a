"""The lineage of a registered model version: gathered, verified link by link, and turned into the
evidence bundle the model card renders.

The chain an auditor follows (``LINKS``, in this order)::

    model_version -> model_artifacts -> mlflow_run -> dagster_run -> materializations
        -> training_data (DVC) -> git_commit -> policy -> checks -> decision_log

Three layers, so the logic is testable without Dagster or a trained model:

- **gathering** (:func:`gather`) reads the MLflow registry (version tags, the run, artifact bytes),
  the decision log, git and the DVC cache location into one plain JSON dict (the *facts*). The
  Dagster part arrives as plain data too, produced by a thin reader in the Dagster layer
  (``mlgov_assets.defs.audit.read_dagster_lineage``): core modules never import dagster.
- **verifying** (``check_*`` and :func:`verify_lineage`): pure functions over the facts plus the
  files on disk. They re-hash bytes (the DVC cache object of the training data, every model
  artifact file, the policy file and its stored copy) and compare every recorded identity with
  every other place it was recorded (version tag vs run tag vs Dagster data version vs decision
  log). Each returns a :class:`Link` that names what broke and how.
- **the evidence bundle** (:func:`build_bundle`): the same facts as a ``core.modelcard`` bundle in
  which every claim names its source (materialization, run, artifact, log record) and that
  source's content hash.

Statuses: ``ok``; ``warn`` (true but worth a look, e.g. trained from a dirty tree; does not fail an
audit); ``fail`` (a mismatch: the audit exits non-zero naming the link); ``skipped`` (the evidence
for the link was not provided, e.g. no Dagster instance).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mlgov_assets.core.audit.decision_log import LogIntegrityError
from mlgov_assets.core.audit.decision_log import records as log_records
from mlgov_assets.core.audit.decision_log import verify as verify_log
from mlgov_assets.core.governance.promotion import (
    HEAD_TAG,
)  # the decision-log head core.promotion publishes on a version
from mlgov_assets.core.integrity import (
    IntegrityError,
    canonical_hash,
    dvc_cache_path,
    is_sha256,
    manifest_digest,
    sha256_file,
    verify_dvc_cached,
    verify_tree,
)

__all__ = [
    "HEAD_TAG",
    "LINKS",
    "AuditReport",
    "Link",
    "ModelRefError",
    "audit",
    "build_bundle",
    "gather",
    "parse_model_ref",
    "published_heads",
    "resolve_version",
    "verify_lineage",
    "verify_with_witnesses",
    "version_tags",
]

LINKS = (
    "model_version",
    "model_artifacts",
    "mlflow_run",
    "dagster_run",
    "materializations",
    "training_data",
    "git_commit",
    "policy",
    "checks",
    "decision_log",
)
REQUIRED_TAGS = (
    "mlgov.train_data_md5",
    "mlgov.holdout_data_md5",
    "mlgov.git_commit",
    "mlgov.policy_sha256",
    "mlgov.dagster_run_id",
    "mlgov.artifact_manifest",
    "mlgov.artifact_manifest_sha256",
    "mlgov.model_dir",
)
#: Tags written on both the MLflow run and the model version: the two copies must agree.
SHARED_TAGS = (
    "mlgov.train_data_md5",
    "mlgov.holdout_data_md5",
    "mlgov.git_commit",
    "mlgov.git_dirty",
    "mlgov.dagster_run_id",
    "mlgov.policy_sha256",
    "mlgov.fingerprint",
    "mlgov.code_version",
    "mlgov.artifact_manifest_sha256",
    "mlgov.model_dir",
)
#: Assets whose materialization IS a registered version (metadata model_version, mlflow_run_id): the
#: challenger that trained it, or the (fairness-mitigated) candidate built from it.
MODEL_ASSETS = ("challenger_model", "candidate_model")
DATA_ASSETS = {"training": "training_data", "holdout": "holdout_data"}
POLICY_ARTIFACT = "policy/policy.yaml"
#: Run artifacts whose text the audit and the card read (others under these folders are hashed only).
TEXT_ARTIFACTS = (
    POLICY_ARTIFACT,
    "provenance/environment.json",
    "provenance/data.json",
    "integrity/model_manifest.json",
)
SCANNED_FOLDERS = ("gates", "fairness", "explanations", "monitoring")
#: Where the shipped datasets came from (shown in the card's data section).
KNOWN_PROVENANCE = {
    "adult.data": "UCI Machine Learning Repository, Adult (Becker & Kohavi 1996), CC BY 4.0: training split",
    "adult.test": "UCI Machine Learning Repository, Adult (Becker & Kohavi 1996), CC BY 4.0: canonical test split",
}


class ModelRefError(LookupError):
    """A MODEL_REF that is malformed or names no registered version."""


@dataclass
class Link:
    """One verified link of the chain. ``problems`` (fail) and ``warnings`` name every finding."""

    name: str
    status: str
    summary: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def _link(
    name: str,
    ok_summary: str,
    problems: list[str],
    warnings: list[str] | None = None,
    evidence: dict[str, Any] | None = None,
) -> Link:
    warnings = warnings or []
    status = "fail" if problems else ("warn" if warnings else "ok")
    summary = "; ".join(problems) if problems else ("; ".join(warnings) if warnings else ok_summary)
    return Link(name, status, summary, problems, warnings, evidence or {})


@dataclass
class AuditReport:
    """The verified chain for one model version; ``ok`` is False if any link failed."""

    model_name: str
    version: int
    ref: str
    aliases: list[str]
    links: list[Link]

    @property
    def ok(self) -> bool:
        return not self.broken

    @property
    def broken(self) -> list[str]:
        return [link.name for link in self.links if link.status == "fail"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "version": self.version,
            "ref": self.ref,
            "aliases": self.aliases,
            "ok": self.ok,
            "broken": self.broken,
            "links": [link.to_dict() for link in self.links],
        }


# --------------------------------------------------------------------------- helpers


def _jsonable(obj: Any) -> Any:
    """Plain JSON types with NaN/inf -> None (canonical JSON refuses them) and tuples -> lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    try:  # numpy scalars
        return _jsonable(obj.item())
    except AttributeError:
        return str(obj)


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _iso_ms(ms: int | float | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def _json_or_none(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


# --------------------------------------------------------------------------- model references

_REF = re.compile(r"^models:/(?P<name>[^/@\s]+)(?:/(?P<version>\d+)|@(?P<alias>[A-Za-z0-9_.-]+))$")


def parse_model_ref(ref: str, default_name: str) -> tuple[str, int | None, str | None]:
    """``models:/NAME@alias``, ``models:/NAME/N``, ``N`` or ``champion`` -> (name, version, alias).

    Exactly one of version and alias is set. Why a parser of our own: MLflow resolves these URIs
    only while loading a model, and an audit must name the version before touching any bytes.
    """
    text = (ref or "").strip()
    if text.isdigit():
        return default_name, int(text), None
    if text in ("champion", "previous-champion"):
        return default_name, None, text
    m = _REF.match(text)
    if not m:
        raise ModelRefError(
            f"MODEL_REF {ref!r}: expected models:/NAME@champion, models:/NAME/N, a version number, or 'champion'"
        )
    version = int(m["version"]) if m["version"] else None
    return m["name"], version, m["alias"]


def resolve_version(registry: Any, ref: str) -> int:
    """The version number a MODEL_REF names in ``registry`` (whose model name must match)."""
    from mlflow.exceptions import MlflowException

    name, version, alias = parse_model_ref(ref, registry.name)
    if name != registry.name:
        raise ModelRefError(f"MODEL_REF {ref!r} names model {name!r}, but this registry governs {registry.name!r}")
    try:
        if alias is not None:
            return int(registry.client.get_model_version_by_alias(name, alias).version)
        registry.client.get_model_version(name, str(version))
        return int(version)  # type: ignore[arg-type]
    except MlflowException as exc:
        what = f"alias {alias!r}" if alias else f"version {version}"
        known = registry.versions()
        raise ModelRefError(f"model {name!r} has no {what} (registered versions: {known or 'none'})") from exc


# --------------------------------------------------------------------------- gathering


def _run_facts(registry: Any, run_id: str | None) -> dict[str, Any] | None:
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    try:
        run = registry.client.get_run(run_id)
    except MlflowException:
        return None
    return {
        "run_id": run_id,
        "experiment_id": run.info.experiment_id,
        "status": run.info.status,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
        "artifact_uri": run.info.artifact_uri,
        "tags": {k: v for k, v in run.data.tags.items() if k.startswith("mlgov.")},
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
    }


def _artifact_bytes(registry: Any, run: Mapping[str, Any], rel: str) -> bytes | None:
    """The bytes of one run artifact, straight from the artifact store (None if absent)."""
    parsed = urlparse(run["artifact_uri"])
    if parsed.scheme in ("file", ""):
        path = Path(unquote(parsed.path)) / rel
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:  # remote stores: download, then hash what arrived
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run["run_id"], artifact_path=rel, dst_path=tmp, tracking_uri=registry.settings.tracking_uri
            )
            return Path(local).read_bytes()
        except Exception:
            return None


def _list_artifacts(registry: Any, run_id: str, folder: str) -> list[str]:
    try:
        infos = registry.client.list_artifacts(run_id, folder)
    except Exception:
        return []
    out: list[str] = []
    for info in infos:
        out += _list_artifacts(registry, run_id, info.path) if info.is_dir else [info.path]
    return out


def _read_artifacts(registry: Any, run: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """{path: {sha256, size, text?}} for the lineage artifacts of the run; JSON/YAML texts kept."""
    if run is None:
        return {}
    paths = list(TEXT_ARTIFACTS)
    for folder in SCANNED_FOLDERS:
        paths += _list_artifacts(registry, run["run_id"], folder)
    out: dict[str, dict[str, Any]] = {}
    for rel in dict.fromkeys(paths):
        data = _artifact_bytes(registry, run, rel)
        if data is None:
            continue
        entry: dict[str, Any] = {"sha256": _sha256_bytes(data), "size": len(data)}
        if rel.endswith((".json", ".yaml", ".yml")) and len(data) < 2_000_000:
            entry["text"] = data.decode("utf-8", errors="replace")
        out[rel] = entry
    return out


def version_tags(registry: Any) -> dict[int, dict[str, str]]:
    """{version: tags} for every registered version, in one registry call."""
    from mlflow.exceptions import MlflowException

    try:
        found = registry.client.search_model_versions(f"name = '{registry.name}'")
    except MlflowException:
        return {}
    return {int(mv.version): dict(mv.tags or {}) for mv in found}


def published_heads(registry: Any) -> list[dict[str, Any]]:
    """Every decision-log head published on a model version (``HEAD_TAG``): the external witnesses."""
    return [
        {"version": v, "head": _json_or_none(tags[HEAD_TAG]), "raw": tags[HEAD_TAG]}
        for v, tags in sorted(version_tags(registry).items())
        if tags.get(HEAD_TAG)
    ]


def _registry_policy_hashes(registry: Any) -> set[str]:
    """Every policy hash any version was trained or gated under: the governed policies."""
    return {
        v
        for tags in version_tags(registry).values()
        for k, v in tags.items()
        if (k == "mlgov.policy_sha256" or k.endswith(".policy_sha256")) and is_sha256(v)
    }


def _version_decisions(all_records: list[dict[str, Any]], name: str, version: int) -> list[dict[str, Any]]:
    """Records about this version: its own, plus rollbacks *away* from it (logged on the target)."""
    v = str(version)
    return [
        r
        for r in all_records
        if r["model_name"] == name
        and (r["model_version"] == v or (r["kind"] == "rollback" and str(r["payload"].get("from_version")) == v))
    ]


def _monitoring_batches(settings: Any, version: int) -> list[dict[str, Any]]:
    """Production batches the version scored as champion, with their drift verdicts, from the
    monitoring ledger (``$MLGOV_HOME/monitoring/batches/<id>/state.json``, see core.monitoring)."""
    from mlgov_assets.core.monitoring.service import MonitoringPaths

    out = []
    for path in sorted(MonitoringPaths.of(settings).batches.glob("*/state.json")):
        try:
            data = path.read_bytes()
            entry = json.loads(data)
        except (OSError, json.JSONDecodeError):
            continue
        drift = entry.get("drift") or {}
        if str(entry.get("champion_version")) != str(version) or not drift:
            continue
        out.append(
            {
                "batch_id": str(entry.get("batch_id") or path.parent.name),
                "time": str(entry.get("landed_at") or entry.get("created_at") or "unknown"),
                "judged": bool(drift.get("judged", True)),
                "verdict": drift.get("verdict"),
                "dataset_drift": bool(drift.get("dataset_drift")),
                "drifted_columns": [str(c) for c in drift.get("drifted_columns") or []],
                "path": str(path.relative_to(Path(settings.home))),
                "sha256": _sha256_bytes(data),
            }
        )
    return sorted(out, key=lambda e: (e["time"], e["batch_id"]))


def _git_commit_exists(project_dir: Path, commit: str) -> bool | None:
    if not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", commit or ""):
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(project_dir), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True, timeout=30
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return done.returncode == 0


def _recorded_policy_path(dagster: Mapping[str, Any] | None) -> str | None:
    """The policy file the gates were evaluated with, as the Dagster checks recorded it."""
    for check in (dagster or {}).get("checks", []):
        path = (check.get("metadata") or {}).get("policy_path")
        if path:
            return str(path)
    return None


def gather(registry: Any, version: int, *, dagster: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything the audit and the card need about ``version``, as one plain JSON dict.

    ``dagster`` is the plain-data view of the Dagster run that trained the version (see the module
    doc); None when no instance is available (the Dagster links are then ``skipped``).
    """
    from mlgov_assets.core.data.datasets import cache_dir
    from mlgov_assets.core.provenance import git_info

    s = registry.settings
    info = registry.version_info(version)
    tags = info["tags"]
    run = _run_facts(registry, info["run_id"])
    try:
        all_records, log_error = log_records(s.decision_log), None
    except LogIntegrityError as exc:
        all_records, log_error = [], str(exc)
    decisions = _version_decisions(all_records, registry.name, version)
    known = _registry_policy_hashes(registry) | {r["evidence_hashes"].get("policy_sha256") for r in all_records} - {
        None
    }
    recorded_path = _recorded_policy_path(dagster)
    return _jsonable(
        {
            "model": {
                "name": registry.name,
                "version": int(version),
                "run_id": info["run_id"],
                "aliases": info["aliases"],
                "created": info["created"],
                "source": info["source"],
                "tags": tags,
                "params": info["params"],
                "metrics": info["metrics"],
            },
            "run": run,
            "artifacts": _read_artifacts(registry, run),
            "decisions": decisions,
            "champion_history": registry.champion_history(),
            "monitoring": _monitoring_batches(s, version),
            "log": {
                "path": str(s.decision_log),
                "read_error": log_error,
                "count": len(all_records),
                "known_policy_hashes": sorted(known),
            },
            "witnesses": published_heads(registry),
            "git": {
                "current": git_info(s.project_dir),
                "recorded_commit_exists": _git_commit_exists(s.project_dir, tags.get("mlgov.git_commit", "")),
            },
            "paths": {
                "project_dir": str(s.project_dir),
                "dvc_cache_dir": str(cache_dir(s.project_dir)),
                "policy_path": recorded_path or str(s.policy_path),
                "policy_path_source": "recorded by the Dagster gate checks" if recorded_path else "current settings",
            },
            "dagster": dict(dagster) if dagster is not None else None,
        }
    )


# --------------------------------------------------------------------------- verification (pure)


def check_model_version(facts: Mapping[str, Any]) -> Link:
    """The version carries every lineage tag mlgov writes at registration."""
    m = facts["model"]
    missing = [t for t in REQUIRED_TAGS if not m["tags"].get(t)]
    problems = [f"version {m['version']} lacks lineage tag(s) {missing}"] if missing else []
    return _link(
        "model_version",
        f"{m['name']} version {m['version']} (run {m['run_id']}, aliases {m['aliases'] or 'none'})",
        problems,
        evidence={
            "name": m["name"],
            "version": m["version"],
            "run_id": m["run_id"],
            "aliases": m["aliases"],
            "registered_at": _iso_ms(m["created"]),
        },
    )


def check_model_artifacts(facts: Mapping[str, Any]) -> Link:
    """Every model artifact file re-hashed against the sha256 manifest recorded at registration.

    Same check as ``Registry.verify_artifacts`` (manifest vs digest tag, then every file), plus a
    cross-check with the copy of the manifest logged to the run (integrity/model_manifest.json).
    """
    tags = facts["model"]["tags"]
    problems: list[str] = []
    try:
        manifest = json.loads(tags.get("mlgov.artifact_manifest") or "null")
    except json.JSONDecodeError:
        manifest = None
    if not isinstance(manifest, dict) or not manifest:
        return _link(
            "model_artifacts", "", ["no readable sha256 manifest recorded on the version: refusing to trust it"]
        )
    digest = tags.get("mlgov.artifact_manifest_sha256")
    if manifest_digest(manifest) != digest:
        problems.append(f"the manifest tag does not match its digest tag {str(digest)[:16]}…")
    model_dir = Path(tags.get("mlgov.model_dir", ""))
    try:
        verify_tree(model_dir, manifest)
    except IntegrityError as exc:
        problems += [
            f"model artifact {p['path']}: {p['problem']}"
            + (
                f" (sha256 now {p['actual'][:16]}…, recorded {p['expected'][:16]}…)"
                if p.get("actual") and p.get("expected")
                else ""
            )
            for p in exc.problems
        ] or [str(exc)]
    except (FileNotFoundError, NotADirectoryError) as exc:
        problems.append(f"model directory missing: {exc}")
    logged = _json_or_none(facts["artifacts"].get("integrity/model_manifest.json", {}).get("text"))
    if logged is None:
        problems.append("the run has no integrity/model_manifest.json to cross-check the tag against")
    elif logged != manifest:
        problems.append("the manifest logged to the run (integrity/model_manifest.json) differs from the version's tag")
    return _link(
        "model_artifacts",
        f"{len(manifest)} artifact file(s) re-hashed: all match the manifest (digest {str(digest)[:16]}…)",
        problems,
        evidence={"model_dir": str(model_dir), "files": len(manifest), "manifest_digest": digest},
    )


def check_mlflow_run(facts: Mapping[str, Any]) -> Link:
    """The MLflow run exists, finished, and its lineage tags equal the version's."""
    run, tags = facts["run"], facts["model"]["tags"]
    if run is None:
        return _link("mlflow_run", "", [f"MLflow run {facts['model']['run_id']} of the version was not found"])
    problems = [
        f"tag {k}: run says {run['tags'].get(k)!r}, version says {tags.get(k)!r}"
        for k in SHARED_TAGS
        if k in run["tags"] and run["tags"].get(k) != tags.get(k)
    ]
    warnings = [] if run["status"] == "FINISHED" else [f"run status is {run['status']}, not FINISHED"]
    if not run["metrics"]:
        problems.append("the run has no metrics")
    return _link(
        "mlflow_run",
        f"run {run['run_id']} FINISHED, {len(run['metrics'])} metric(s), lineage tags agree",
        problems,
        warnings,
        {
            "run_id": run["run_id"],
            "status": run["status"],
            "started": _iso_ms(run["start_time"]),
            "ended": _iso_ms(run["end_time"]),
        },
    )


def _model_nodes(dagster: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [n for n in dagster.get("materializations", []) if n.get("role") == "model"]


def check_dagster_run(facts: Mapping[str, Any]) -> Link:
    """The Dagster run recorded on the version exists and materialized this exact model version."""
    dagster, m = facts["dagster"], facts["model"]
    expected = m["tags"].get("mlgov.dagster_run_id")
    if dagster is None:
        return Link("dagster_run", "skipped", "no Dagster instance was given: run and materializations not checked")
    run = dagster.get("run")
    if run is None:
        return _link("dagster_run", "", list(dagster.get("problems") or [f"Dagster run {expected} not found"]))
    problems = []
    if run["run_id"] != expected:
        problems.append(f"Dagster run {run['run_id']} read, but the version records {expected}")
    nodes = _model_nodes(dagster)
    if not nodes:
        problems.append(
            f"run {run['run_id']} has no {' or '.join(MODEL_ASSETS)} materialization of version {m['version']}"
        )
    for node in nodes:
        if str(node["metadata"].get("mlflow_run_id")) != m["run_id"]:
            problems.append(
                f"the {node['asset']} materialization #{node['storage_id']} names MLflow run "
                f"{node['metadata'].get('mlflow_run_id')}, the version's run is {m['run_id']}"
            )
    assets = " and ".join(sorted({n["asset"] for n in nodes})) or "no model asset"
    return _link(
        "dagster_run",
        f"run {run['run_id']} ({run['job_name']}, {run['status']}) materialized {assets} = version {m['version']}",
        problems,
        evidence={"run_id": run["run_id"], "job_name": run["job_name"], "status": run["status"]},
    )


def check_materializations(facts: Mapping[str, Any]) -> Link:
    """The materializations the model consumed lead to data whose versions are the recorded DVC md5s;
    stored values that are still current re-hash to the sha256 their materialization recorded."""
    dagster, tags = facts["dagster"], facts["model"]["tags"]
    if dagster is None:
        return Link("materializations", "skipped", "no Dagster instance was given")
    if dagster.get("run") is None:
        return _link("materializations", "", ["the Dagster run is missing, so are the materializations it consumed"])
    nodes = dagster.get("materializations", [])
    problems, warnings = [], []
    for role, asset in DATA_ASSETS.items():
        tag = tags.get(f"mlgov.{'train' if role == 'training' else role}_data_md5")
        node = next((n for n in nodes if n["asset"] == asset), None)
        if node is None:
            problems.append(f"the model's inputs do not lead to a {asset} materialization")
        elif node.get("data_version") != tag:
            problems.append(
                f"{asset} materialization #{node['storage_id']} has data version {node.get('data_version')}, "
                f"the version records DVC md5 {tag}"
            )
    for n in nodes:
        if n.get("is_latest") and n.get("stored_at") and n.get("sha256") and Path(n["stored_at"]).is_file():
            actual = sha256_file(n["stored_at"])
            if actual != n["sha256"]:
                problems.append(
                    f"stored value of {n['asset']} ({n['stored_at']}) hashes to {actual[:16]}…, its "
                    f"materialization #{n['storage_id']} recorded {n['sha256'][:16]}…"
                )
    rows = [
        {k: n.get(k) for k in ("asset", "storage_id", "run_id", "data_version", "code_version", "sha256")}
        for n in nodes
    ]
    return _link(
        "materializations",
        f"{len(nodes)} materialization(s); training/holdout data versions equal the recorded DVC md5s",
        problems,
        warnings,
        {"materializations": rows},
    )


def check_training_data(facts: Mapping[str, Any]) -> Link:
    """Re-hash the training and holdout bytes held in the DVC cache against the recorded md5s."""
    tags, cache = facts["model"]["tags"], facts["paths"]["dvc_cache_dir"]
    problems, evidence = [], {}
    data_json = _json_or_none(facts["artifacts"].get("provenance/data.json", {}).get("text")) or {}
    for role, key, attrs_key in (
        ("training", "mlgov.train_data_md5", "train"),
        ("holdout", "mlgov.holdout_data_md5", "holdout"),
    ):
        md5 = tags.get(key, "")
        try:
            ok, detail = verify_dvc_cached(cache, md5)
        except ValueError as exc:
            ok, detail = False, str(exc)
        evidence[role] = {"md5": md5, "cache_object": str(dvc_cache_path(cache, md5)) if ok else None, "detail": detail}
        if not ok:
            problems.append(f"{role} data: {detail}")
        logged = (data_json.get(attrs_key) or {}).get("dvc_md5")
        if logged is not None and logged != md5:
            problems.append(f"{role} data: provenance/data.json records md5 {logged}, the version tag {md5}")
    return _link(
        "training_data",
        f"training md5 {tags.get('mlgov.train_data_md5')} and holdout md5 "
        f"{tags.get('mlgov.holdout_data_md5')} re-hashed from the DVC cache",
        problems,
        evidence=evidence,
    )


def check_git_commit(facts: Mapping[str, Any]) -> Link:
    """The recorded commit exists in the project repository; a dirty training tree is flagged."""
    tags, git = facts["model"]["tags"], facts["git"]
    commit = tags.get("mlgov.git_commit", "unknown")
    problems, warnings = [], []
    if git["recorded_commit_exists"] is None:
        warnings.append(f"recorded commit {commit!r} cannot be checked (not a git sha or no git)")
    elif not git["recorded_commit_exists"]:
        problems.append(f"recorded commit {commit} does not exist in {facts['paths']['project_dir']}")
    if tags.get("mlgov.git_dirty") == "true":
        warnings.append(f"trained from a dirty working tree at {commit[:12]}: the commit alone does not pin the code")
    current = git["current"]
    return _link(
        "git_commit",
        f"commit {commit[:12]} exists (HEAD is {str(current['commit'])[:12]}{', dirty' if current['dirty'] else ''})",
        problems,
        warnings,
        {
            "recorded": commit,
            "recorded_dirty": tags.get("mlgov.git_dirty"),
            "head": current["commit"],
            "head_dirty": current["dirty"],
            "same_as_head": current["commit"] == commit,
        },
    )


def check_policy(facts: Mapping[str, Any]) -> Link:
    """The stored copy of the policy and the policy file still hash to the recorded policy hash.

    A current policy file with another hash passes only if that hash is a *governed* policy (one a
    later version was trained or gated under, or a decision was logged under): a deliberate policy
    change leaves that trace, an edit outside governance (or a flipped byte) does not.
    """
    recorded = facts["model"]["tags"].get("mlgov.policy_sha256")
    problems, warnings = [], []
    stored = facts["artifacts"].get(POLICY_ARTIFACT)
    if stored is None:
        problems.append(f"the run has no stored policy copy ({POLICY_ARTIFACT})")
    elif stored["sha256"] != recorded:
        problems.append(
            f"stored policy copy {POLICY_ARTIFACT} hashes to {stored['sha256'][:16]}…, the version "
            f"records {str(recorded)[:16]}…"
        )
    path = Path(facts["paths"]["policy_path"])
    current = sha256_file(path) if path.is_file() else None
    if current is None:
        warnings.append(f"policy file {path} not found: only the stored copy was checked")
    elif current != recorded:
        if current in facts["log"]["known_policy_hashes"]:
            warnings.append(f"policy file {path} has since been replaced by governed policy {current[:16]}…")
        else:
            problems.append(
                f"policy file {path} hashes to {current[:16]}…, but the model was governed under "
                f"{str(recorded)[:16]}… and no governed decision used {current[:16]}…: changed outside governance"
            )
    return _link(
        "policy",
        f"policy {str(recorded)[:16]}…: stored copy and {path} match",
        problems,
        warnings,
        {
            "recorded_sha256": recorded,
            "stored_copy_sha256": stored["sha256"] if stored else None,
            "path": str(path),
            "path_source": facts["paths"]["policy_path_source"],
            "current_sha256": current,
        },
    )


def _gate_names(tags: Mapping[str, str]) -> list[str]:
    return sorted(k[len("mlgov.gate.") :] for k in tags if k.startswith("mlgov.gate.") and k.count(".") == 2)


def _required_gates(facts: Mapping[str, Any]) -> list[str]:
    """Gates the policy this version was governed under requires (parsed from its stored copy)."""
    from mlgov_assets.core.governance.policy import PolicyError, load_policy

    text = facts["artifacts"].get(POLICY_ARTIFACT, {}).get("text")
    if text:
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "policy.yaml"
            p.write_text(text, encoding="utf-8")
            try:
                return load_policy(p).required_model_gates()
            except (PolicyError, ValueError, TypeError):
                pass
    return ["metric_floors", "champion_comparison"]


def check_gates(facts: Mapping[str, Any]) -> Link:
    """Every gate verdict agrees across the version tag, the evidence artifact, the decision log
    (whose record carries the evidence's canonical hash) and the Dagster check; promotion only
    with every required gate passed or an override on record; the data checks passed."""
    tags, m = facts["model"]["tags"], facts["model"]
    gates = _gate_names(tags)
    evals = [r for r in facts["decisions"] if r["kind"] == "gate_evaluation"]
    dag_checks = (facts["dagster"] or {}).get("checks", [])
    problems, warnings, rows = [], [], []
    log_error = facts["log"]["read_error"]
    if log_error:
        problems.append(
            f"the decision log cannot be read ({log_error}): gate verdicts cannot be cross-checked against it"
        )
    for g in gates:
        verdict = tags[f"mlgov.gate.{g}"] == "passed"
        art = facts["artifacts"].get(f"gates/{g}.json")
        evidence = _json_or_none(art.get("text")) if art else None
        rec = next((r for r in reversed(evals) if r["payload"].get("gate") == g), None)
        if evidence is None:
            problems.append(f"gate {g}: evidence artifact gates/{g}.json missing or unreadable")
        elif bool(evidence.get("passed")) != verdict:
            problems.append(f"gate {g}: tag says {'passed' if verdict else 'failed'}, evidence artifact disagrees")
        if rec is None and not log_error:
            problems.append(f"gate {g}: no gate_evaluation record in the decision log")
        elif rec is None:
            pass
        else:
            if evidence is not None and canonical_hash(evidence) != rec["evidence_hashes"].get("evidence_sha256"):
                problems.append(
                    f"gate {g}: evidence artifact gates/{g}.json does not hash to what decision record "
                    f"#{rec['index']} recorded: altered after the evaluation"
                )
            if bool(rec["payload"].get("passed")) != verdict:
                problems.append(f"gate {g}: decision record #{rec['index']} says passed={rec['payload'].get('passed')}")
        dag = next(
            (
                c
                for c in reversed(dag_checks)
                if c.get("gate") == g and str(c["metadata"].get("model_version", m["version"])) == str(m["version"])
            ),
            None,
        )
        if dag is not None and dag["passed"] != verdict:
            problems.append(f"gate {g}: Dagster check {dag['check']} passed={dag['passed']}, the tag disagrees")
        rows.append(
            {
                "gate": g,
                "passed": verdict,
                "policy_sha256": tags.get(f"mlgov.gate.{g}.policy_sha256"),
                "decision_record": rec["index"] if rec else None,
                "dagster_check": dag["check"] if dag else None,
            }
        )
    kinds = {r["kind"] for r in facts["decisions"] if r["model_version"] == str(m["version"])}
    failed_required = [g for g in _required_gates(facts) if tags.get(f"mlgov.gate.{g}") != "passed"]
    if failed_required and "promotion" in kinds and "override" not in kinds:
        problems.append(
            f"promoted although required gate(s) {failed_required} did not pass, and no override is recorded"
        )
    elif failed_required and "override" in kinds:
        warnings.append(f"promoted by OVERRIDE despite gate(s) {failed_required} (justification in the decision log)")
    for c in dag_checks:
        if c.get("role") == "data" and not c["passed"] and c.get("blocking"):
            problems.append(
                f"blocking check {c['check']} on {c['asset']} failed, yet the model consumed that materialization"
            )
    upstream = sum(1 for c in dag_checks if c.get("role") == "data")
    return _link(
        "checks",
        f"{len(gates)} gate(s) agree across tag, evidence, decision log and Dagster; "
        f"{upstream} check(s) on the consumed materializations",
        problems,
        warnings,
        {"gates": rows},
    )


def verify_with_witnesses(path: str | Path, witnesses: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Verify the decision log's chain and head anchor, then that it still extends every head
    published on a model version. Names the first bad record index (None if the problem is not a
    record, e.g. a missing head anchor)."""
    problems = [
        f"unreadable head witness on version {w['version']}: {w.get('raw')!r}"
        for w in witnesses
        if not isinstance(w.get("head"), dict)
    ]
    result = verify_log(path)
    problem, checked = result.problem, 0
    for w in witnesses:
        if not result.ok or not isinstance(w.get("head"), dict):
            continue
        try:
            result = verify_log(path, expected_head=w["head"])
        except ValueError as exc:
            problems.append(f"head witness on version {w['version']} is malformed: {exc}")
            continue
        checked += 1
        problem = f"{result.problem} (head published on version {w['version']}: {w['head']})" if not result.ok else None
    return {
        "path": str(path),
        "ok": result.ok and not problems,
        "count": result.count,
        "first_bad_index": result.first_bad_index,
        "problem": problem if not result.ok else None,
        "last_hash": result.last_hash,
        "witnesses_checked": checked,
        "witness_problems": problems,
    }


def check_decision_log(facts: Mapping[str, Any]) -> Link:
    """The whole hash chain, its head anchor, and every head published on a model version."""
    res = verify_with_witnesses(facts["log"]["path"], facts["witnesses"])
    problems = list(res["witness_problems"])
    if res["problem"]:
        at = "" if res["first_bad_index"] is None else f"first bad record index {res['first_bad_index']}: "
        problems.insert(0, f"decision log {res['path']}: {at}{res['problem']}")
    return _link(
        "decision_log",
        f"{res['count']} record(s) chain correctly, head anchor matches, "
        f"{res['witnesses_checked']} published head(s) extended; {len(facts['decisions'])} record(s) "
        "concern this version",
        problems,
        evidence=res,
    )


_CHECKS = {
    "model_version": check_model_version,
    "model_artifacts": check_model_artifacts,
    "mlflow_run": check_mlflow_run,
    "dagster_run": check_dagster_run,
    "materializations": check_materializations,
    "training_data": check_training_data,
    "git_commit": check_git_commit,
    "policy": check_policy,
    "checks": check_gates,
    "decision_log": check_decision_log,
}


def verify_lineage(facts: Mapping[str, Any]) -> list[Link]:
    """Every link of the chain, in ``LINKS`` order. A check that crashes is itself a failed link."""
    out = []
    for name in LINKS:
        try:
            out.append(_CHECKS[name](facts))
        except Exception as exc:
            out.append(
                Link(
                    name,
                    "fail",
                    f"could not be verified: {type(exc).__name__}: {exc}",
                    [f"{type(exc).__name__}: {exc}"],
                )
            )
    return out


def audit(registry: Any, ref: str, *, dagster_reader: Any = None) -> tuple[AuditReport, dict[str, Any]]:
    """Resolve ``ref``, gather the lineage and verify it. ``dagster_reader(run_id, version)`` returns
    the plain-data Dagster view (or None to skip those links). Returns (report, facts)."""
    version = resolve_version(registry, ref)
    run_id = registry.version_info(version)["tags"].get("mlgov.dagster_run_id")
    dagster = dagster_reader(run_id, version) if dagster_reader is not None and run_id else None
    facts = gather(registry, version, dagster=dagster)
    report = AuditReport(registry.name, version, ref, facts["model"]["aliases"], verify_lineage(facts))
    return report, facts


# --------------------------------------------------------------------------- evidence bundle

DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"  # `mlgov ui` default; links are conveniences, hashes are the proof
DEFAULT_MLFLOW_URL = "http://127.0.0.1:5000"  # `make mlflow-ui` default


def _src(kind: str, ref: str, sha256: str, url: str | None = None) -> dict[str, str]:
    out = {"kind": kind, "ref": ref, "sha256": sha256}
    if url:
        out["url"] = url
    return out


def _node(facts: Mapping[str, Any], asset: str) -> Mapping[str, Any] | None:
    return next((n for n in (facts["dagster"] or {}).get("materializations", []) if n["asset"] == asset), None)


def _mat_source(node: Mapping[str, Any], dagster_url: str) -> dict[str, str]:
    ref = f"{node['asset']} materialization #{node['storage_id']} (run {node['run_id']})"
    sha = node.get("sha256") if is_sha256(node.get("sha256")) else canonical_hash(_jsonable(dict(node)))
    return _src("dagster_materialization", ref, sha, f"{dagster_url}/runs/{node['run_id']}")


def _run_source(facts: Mapping[str, Any], rel: str | None, fallback: Any, mlflow_url: str) -> dict[str, str]:
    """Source = a run artifact (sha256 of its bytes) or, for values held in the run itself (params,
    metrics), the canonical hash of exactly the values cited, so an auditor can recompute it."""
    run_id = facts["model"]["run_id"]
    art = facts["artifacts"].get(rel) if rel else None
    sha = art["sha256"] if art else canonical_hash(_jsonable(fallback))
    ref = f"runs:/{run_id}/{rel}" if art else f"runs:/{run_id}"
    exp = (facts["run"] or {}).get("experiment_id")
    return _src("mlflow_run", ref, sha, f"{mlflow_url}/#/experiments/{exp}/runs/{run_id}" if exp else None)


def _text_section(facts: Mapping[str, Any], key: str, mlflow_url: str) -> dict[str, Any]:
    import yaml

    text = facts["artifacts"].get(POLICY_ARTIFACT, {}).get("text")
    try:
        value = (yaml.safe_load(text) or {}).get(key) if text else None
    except yaml.YAMLError:
        value = None
    value = (
        str(value).strip() if value else f"Not stated in the policy this version was governed under ({key} is empty)."
    )
    src = _run_source(
        facts, POLICY_ARTIFACT, {"policy_sha256": facts["model"]["tags"].get("mlgov.policy_sha256")}, mlflow_url
    )
    return {"text": value, "source": src}


def _dataset(facts: Mapping[str, Any], role: str, dagster_url: str) -> dict[str, Any]:
    from mlgov_assets.core.data.adult import read_adult_csv

    tags = facts["model"]["tags"]
    md5 = tags.get(f"mlgov.{'train' if role == 'training' else role}_data_md5", "")
    data_json = _json_or_none(facts["artifacts"].get("provenance/data.json", {}).get("text")) or {}
    path = str(
        (data_json.get("train" if role == "training" else "holdout") or {}).get("source")
        or tags.get("mlgov.train_data_path")
        or "unknown"
    )
    node = _node(facts, DATA_ASSETS[role])
    if node is not None:
        rows, columns, source = (
            int(node["metadata"].get("row_count") or 0),
            node.get("columns") or [],
            _mat_source(node, dagster_url),
        )
    else:  # no Dagster record: describe the DVC object itself
        obj = dvc_cache_path(facts["paths"]["dvc_cache_dir"], md5) if re.fullmatch(r"[0-9a-f]{32}", md5) else None
        try:
            df = read_adult_csv(obj)  # type: ignore[arg-type]
            rows, columns = len(df), [{"name": str(c), "dtype": str(t)} for c, t in df.dtypes.items()]
            source = _src("dvc", f"{path} (DVC md5 {md5})", sha256_file(obj))  # type: ignore[arg-type]
        except (OSError, TypeError, ValueError):  # the card states the gap instead of failing
            rows, columns = 0, []
            source = _src(
                "dvc",
                f"{path} (DVC md5 {md5}): cache object unavailable",
                canonical_hash({"dvc_md5": md5, "available": False}),
            )
    provenance = KNOWN_PROVENANCE.get(Path(path).name, f"dataset {path} registered in DVC by the governed path")
    return {
        "role": role,
        "path": path,
        "dvc_md5": md5,
        "rows": rows,
        "columns": columns,
        "provenance": f"{provenance}; bytes content-addressed by DVC md5 {md5}",
        "source": source,
    }


def _gate_entry(facts: Mapping[str, Any], g: str, dagster_url: str, mlflow_url: str) -> dict[str, Any]:
    tags = facts["model"]["tags"]
    rel = f"gates/{g}.json"
    evidence = _json_or_none(facts["artifacts"].get(rel, {}).get("text")) or {}
    values, thresholds = {}, {}
    for row in evidence.get("rows") or []:
        name = str(row.get("metric") or row.get("rule") or row.get("name") or len(values))
        values[name] = row.get("value", row.get("challenger"))
        if "rule" in row and "threshold" in row:
            thresholds[name] = f"{row['rule']} {row['threshold']}"
        else:
            thresholds[name] = {
                k: row[k]
                for k in ("threshold", "min_absolute_change", "min_relative_change", "min", "max", "bound")
                if row.get(k) is not None
            } or None
    if not values:
        values = {"summary": tags.get(f"mlgov.gate.{g}.summary", "")}
    rec = next(
        (r for r in reversed(facts["decisions"]) if r["kind"] == "gate_evaluation" and r["payload"].get("gate") == g),
        None,
    )
    entry = {
        "name": g,
        "passed": tags[f"mlgov.gate.{g}"] == "passed",
        "severity": tags.get(f"mlgov.gate.{g}.severity") or "unknown",
        "values": values,
        "thresholds": thresholds,
        "policy_hash": tags.get(f"mlgov.gate.{g}.policy_sha256") or tags.get("mlgov.policy_sha256"),
        "evaluated_at": rec["time"] if rec else "unknown",
        "source": _run_source(facts, rel, evidence, mlflow_url),
    }
    run_id = (rec or {}).get("payload", {}).get("dagster_run_id")
    if run_id:
        entry["link"] = f"{dagster_url}/runs/{run_id}"
    return entry


def _first_json(facts: Mapping[str, Any], folder: str, prefer: Iterable[str]) -> tuple[str | None, Any]:
    names = sorted(
        (p for p in facts["artifacts"] if p.startswith(folder + "/") and p.endswith(".json")),
        key=lambda p: (not any(w in p for w in prefer), p),
    )
    for p in names:
        data = _json_or_none(facts["artifacts"][p].get("text"))
        if isinstance(data, dict):
            return p, data
    return None, None


def _fairness(facts: Mapping[str, Any], mlflow_url: str) -> dict[str, Any]:
    """From a fairness report logged under ``fairness/`` (core.fairness.FairnessReport.to_dict shape,
    or {groups, summary}); "not available" otherwise."""
    rel, data = _first_json(facts, "fairness", ("report",))
    if data is None:
        return {"not_available": "no fairness report was logged to this version's run (fairness/*.json)"}
    whole = data
    if isinstance(data.get("report"), dict):  # {"report": FairnessReport.to_dict(), "verdict": ..., "metrics": ...}
        data = data["report"]
    if isinstance(data.get("features"), dict):
        groups = [{"attribute": name, **g} for name, f in data["features"].items() for g in (f.get("groups") or [])]
        summary = {
            f"{name}: {k}": (v.get("value") if isinstance(v, dict) else v)
            for name, f in data["features"].items()
            for k, v in (f.get("summary") or {}).items()
        }
    elif isinstance(data.get("groups"), list):
        groups, summary = data["groups"], data.get("summary") or {}
    else:
        return {"not_available": f"{rel} is in an unrecognised format (sha256 {facts['artifacts'][rel]['sha256']})"}
    verdict = whole.get("verdict") if isinstance(whole.get("verdict"), dict) else None
    if verdict is not None and "passed" in verdict:
        summary = {"fairness gate passed": bool(verdict["passed"]), **summary}
    return {
        "groups": _jsonable(groups),
        "summary": _jsonable(summary),
        "source": _run_source(facts, rel, whole, mlflow_url),
    }


def _explanations(facts: Mapping[str, Any], mlflow_url: str, top: int = 10) -> dict[str, Any]:
    """Top features from an explanation summary under ``explanations/`` (core.explain
    Explanation.to_dict shape: {method, importance}); "not available" otherwise."""
    rel, data = _first_json(facts, "explanations", ("summary", "global", "importance"))
    if data is None:
        return {"not_available": "no explanation summary was logged to this version's run (explanations/*.json)"}
    if isinstance(data.get("importance"), dict):
        ranked = sorted(data["importance"].items(), key=lambda kv: -float(kv[1] or 0))[:top]
        feats = [{"feature": str(k), "importance": float(v or 0)} for k, v in ranked]
    elif isinstance(data.get("top_features"), list):
        feats = data["top_features"][:top]
    else:
        return {"not_available": f"{rel} is in an unrecognised format (sha256 {facts['artifacts'][rel]['sha256']})"}
    return {
        "method": str(data.get("method") or "unknown"),
        "top_features": _jsonable(feats),
        "source": _run_source(facts, rel, data, mlflow_url),
    }


def _drift(facts: Mapping[str, Any], log_name: str) -> Any:
    """Drift history while the version was champion: every monitored batch it scored (monitoring
    ledger) and any drift alert in the decision log."""
    v = facts["model"]["version"]
    if v not in facts["champion_history"] and "champion" not in facts["model"]["aliases"]:
        return {"not_available": "this version has never been champion (never in production)"}
    out = [
        {
            "batch": b["batch_id"],
            "time": b["time"],
            "dataset_drift": b["dataset_drift"],
            "drifted_columns": b["drifted_columns"],
            "source": _src("monitoring_ledger", b["path"], b["sha256"]),
        }
        for b in facts.get("monitoring") or []
    ]
    for r in facts["decisions"]:
        if r["kind"] != "drift_alert":
            continue
        p = r["payload"]
        drifted = p.get("drifted_columns")
        if drifted is None and isinstance(p.get("columns"), dict):  # {column: drifted?}
            drifted = [c for c, flag in p["columns"].items() if flag]
        out.append(
            {
                "batch": str(p.get("batch") or p.get("batch_id") or f"record {r['index']}"),
                "time": r["time"],
                "dataset_drift": bool(p.get("dataset_drift", True)),
                "drifted_columns": [str(c) for c in drifted or []],
                "source": _src("decision_log", f"{log_name}#{r['index']}", r["hash"]),
            }
        )
    return out


def build_bundle(
    facts: Mapping[str, Any], *, dagster_url: str = DEFAULT_DAGSTER_URL, mlflow_url: str = DEFAULT_MLFLOW_URL
) -> dict[str, Any]:
    """The evidence bundle (core/modelcard.py schema) for the version the facts describe.

    Deterministic (no clock): the same evidence gives the same bundle digest, which is what makes
    "is this card stale?" a hash comparison. When it was built is on the Dagster materialization.
    """
    from mlgov_assets.core.audit.modelcard import SCHEMA_VERSION

    m, tags = facts["model"], facts["model"]["tags"]
    name, version = m["name"], m["version"]
    digest = tags.get("mlgov.artifact_manifest_sha256") or canonical_hash(tags.get("mlgov.artifact_manifest") or "")
    log_name = Path(facts["log"]["path"]).name
    env_rel = "provenance/environment.json"
    env = _json_or_none(facts["artifacts"].get(env_rel, {}).get("text")) or {}
    model_node = next(iter(_model_nodes(facts["dagster"] or {})), None)
    run = (facts["dagster"] or {}).get("run")
    code_versions = {
        n["asset"]: n["code_version"]
        for n in (facts["dagster"] or {}).get("materializations", [])
        if n.get("code_version")
    }
    code_src = (
        _src(
            "dagster_run",
            run["run_id"],
            canonical_hash({"run_id": run["run_id"], "code_versions": code_versions}),
            f"{dagster_url}/runs/{run['run_id']}",
        )
        if run
        else _src(
            "mlflow_run",
            f"runs:/{m['run_id']}",
            canonical_hash({k: tags.get(k) for k in ("mlgov.git_commit", "mlgov.git_dirty", "mlgov.code_version")}),
        )
    )
    if not code_versions and tags.get("mlgov.code_version"):
        code_versions = {"training": tags["mlgov.code_version"]}
    decisions = [
        {
            "index": r["index"],
            "kind": r["kind"],
            "actor": r["actor"],
            "reason": r["reason"],
            "time": r["time"],
            "source": _src("decision_log", f"{log_name}#{r['index']}", r["hash"]),
        }
        for r in facts["decisions"]
        if r["kind"] != "gate_evaluation"
    ]
    bundle = {
        "schema_version": SCHEMA_VERSION,
        "model": {
            "name": name,
            "version": version,
            "run_id": m["run_id"],
            "registered_at": _iso_ms(m["created"]) or "unknown",
            "artifact_manifest_digest": digest,
            "source": _src(
                "mlflow_model_version",
                f"models:/{name}/{version}",
                digest,
                f"{mlflow_url}/#/models/{name}/versions/{version}",
            ),
        },
        "intended_use": _text_section(facts, "intended_use", mlflow_url),
        "limitations": _text_section(facts, "limitations", mlflow_url),
        "data": [_dataset(facts, "training", dagster_url), _dataset(facts, "holdout", dagster_url)],
        "code": {
            "git_commit": tags.get("mlgov.git_commit", "unknown"),
            "git_dirty": tags.get("mlgov.git_dirty") == "true",
            "code_versions": code_versions,
            "source": code_src,
        },
        "environment": {
            "uv_lock_sha256": env.get("uv_lock_sha256"),
            "python_version": str(env.get("python") or "unknown"),
            "packages": {k: v for k, v in (env.get("packages") or {}).items() if v},
            "source": _run_source(facts, env_rel, env, mlflow_url),
        },
        "hyperparameters": {
            "values": dict(sorted(m["params"].items())),
            "source": _run_source(facts, None, m["params"], mlflow_url),
        },
        "metrics": {
            "split": f"holdout ({_dataset_path(facts, 'holdout')}, DVC md5 {tags.get('mlgov.holdout_data_md5')})",
            "values": dict(sorted(m["metrics"].items())),
            "source": _mat_source(model_node, dagster_url)
            if model_node
            else _run_source(facts, None, m["metrics"], mlflow_url),
        },
        "gates": [_gate_entry(facts, g, dagster_url, mlflow_url) for g in _gate_names(tags)],
        "decisions": decisions,
        "fairness": _fairness(facts, mlflow_url),
        "explanations": _explanations(facts, mlflow_url),
        "drift": _drift(facts, log_name),
    }
    return _jsonable(bundle)


def _dataset_path(facts: Mapping[str, Any], role: str) -> str:
    data_json = _json_or_none(facts["artifacts"].get("provenance/data.json", {}).get("text")) or {}
    return str((data_json.get("train" if role == "training" else "holdout") or {}).get("source") or "unknown")
