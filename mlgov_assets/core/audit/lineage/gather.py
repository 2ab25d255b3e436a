"""Gathering a version's lineage: the registry (tags, run, artifact bytes), the decision log, git,
the DVC cache location and the monitoring ledger, as one typed :class:`~.facts.Facts`.

The Dagster part arrives as plain data from the Dagster layer (``defs.audit.read_dagster_lineage``):
core never imports dagster.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from pydantic import ValidationError

from mlgov_assets.core.audit.decision_log.records import LogIntegrityError, Record, read_records
from mlgov_assets.core.audit.lineage.facts import (
    ArtifactFact,
    DagsterLineage,
    Facts,
    GitFacts,
    GitHead,
    LogFacts,
    MonitoredBatch,
    PathFacts,
    ProjectFacts,
    RunFacts,
)
from mlgov_assets.core.audit.lineage.model import (
    SCANNED_FOLDERS,
    TEXT_ARTIFACTS,
    PublishedHead,
    json_or_none,
    jsonable,
)
from mlgov_assets.core.governance.promotion import HEAD_TAG  # the decision-log head promotion publishes
from mlgov_assets.core.integrity import is_sha256

if TYPE_CHECKING:
    from mlgov_assets.core.models.registry import Registry
    from mlgov_assets.core.settings import Settings

__all__ = ["HEAD_TAG", "gather", "published_heads", "version_tags"]


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _run_facts(registry: Registry, run_id: str | None) -> RunFacts | None:
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    try:
        run = registry.client.get_run(run_id)
    except MlflowException:
        return None
    return RunFacts(
        run_id=run_id,
        experiment_id=run.info.experiment_id,
        status=run.info.status,
        start_time=run.info.start_time,
        end_time=run.info.end_time,
        artifact_uri=run.info.artifact_uri,
        tags={k: v for k, v in run.data.tags.items() if k.startswith("mlgov.")},
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
    )


def _artifact_bytes(registry: Registry, run: RunFacts, rel: str) -> bytes | None:
    """The bytes of one run artifact, straight from the artifact store (None if absent)."""
    parsed = urlparse(run.artifact_uri)
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
                run_id=run.run_id, artifact_path=rel, dst_path=tmp, tracking_uri=registry.settings.tracking_uri
            )
            return Path(local).read_bytes()
        except Exception:
            return None


def _list_artifacts(registry: Registry, run_id: str, folder: str) -> list[str]:
    try:
        infos = registry.client.list_artifacts(run_id, folder)
    except Exception:
        return []
    out: list[str] = []
    for info in infos:
        out += _list_artifacts(registry, run_id, info.path) if info.is_dir else [info.path]
    return out


def _read_artifacts(registry: Registry, run: RunFacts | None) -> dict[str, ArtifactFact]:
    """{path: artifact} for the lineage artifacts of the run; JSON/YAML texts kept."""
    if run is None:
        return {}
    paths = list(TEXT_ARTIFACTS)
    for folder in SCANNED_FOLDERS:
        paths += _list_artifacts(registry, run.run_id, folder)
    out: dict[str, ArtifactFact] = {}
    for rel in dict.fromkeys(paths):
        data = _artifact_bytes(registry, run, rel)
        if data is None:
            continue
        keep = rel.endswith((".json", ".yaml", ".yml")) and len(data) < 2_000_000
        text = data.decode("utf-8", errors="replace") if keep else None
        out[rel] = ArtifactFact(sha256=_sha256_bytes(data), size=len(data), text=text)
    return out


def version_tags(registry: Registry) -> dict[int, dict[str, str]]:
    """{version: tags} for every registered version, in one registry call."""
    from mlflow.exceptions import MlflowException

    try:
        found = registry.client.search_model_versions(f"name = '{registry.name}'")
    except MlflowException:
        return {}
    return {int(mv.version): dict(mv.tags or {}) for mv in found}


def published_heads(registry: Registry) -> list[PublishedHead]:
    """Every decision-log head published on a model version (``HEAD_TAG``): the external witnesses."""
    out = []
    for v, tags in sorted(version_tags(registry).items()):
        if tags.get(HEAD_TAG):
            head = json_or_none(tags[HEAD_TAG])
            out.append(PublishedHead(version=v, head=head if isinstance(head, dict) else None, raw=tags[HEAD_TAG]))
    return out


def _registry_policy_hashes(registry: Registry) -> set[str]:
    """Every policy hash any version was trained or gated under: the governed policies."""
    return {
        v
        for tags in version_tags(registry).values()
        for k, v in tags.items()
        if (k == "mlgov.policy_sha256" or k.endswith(".policy_sha256")) and is_sha256(v)
    }


def _version_decisions(all_records: list[Record], name: str, version: int) -> list[Record]:
    """Records about this version: its own, plus rollbacks *away* from it (logged on the target)."""
    v = str(version)
    return [
        r
        for r in all_records
        if r.model_name == name
        and (r.model_version == v or (r.kind == "rollback" and str(r.payload.get("from_version")) == v))
    ]


def _ledger_entry(settings: Settings, path: Path, version: int) -> MonitoredBatch | None:
    try:
        data = path.read_bytes()
        entry = json.loads(data)
    except (OSError, json.JSONDecodeError):
        return None
    drift = entry.get("drift") or {}
    if str(entry.get("champion_version")) != str(version) or not drift:
        return None
    try:
        return MonitoredBatch(
            batch_id=str(entry.get("batch_id") or path.parent.name),
            time=str(entry.get("landed_at") or entry.get("created_at") or "unknown"),
            judged=bool(drift.get("judged", True)),
            verdict=drift.get("verdict"),
            dataset_drift=bool(drift.get("dataset_drift")),
            drifted_columns=[str(c) for c in drift.get("drifted_columns") or []],
            path=str(path.relative_to(Path(settings.home))),
            sha256=_sha256_bytes(data),
        )
    except ValidationError:  # an unreadable verdict: the batch is not cited
        return None


def monitoring_batches(settings: Settings, version: int) -> list[MonitoredBatch]:
    """Production batches the version scored as champion, with their drift verdicts (monitoring ledger)."""
    from mlgov_assets.core.monitoring.ledger import MonitoringPaths

    found = (
        _ledger_entry(settings, p, version) for p in sorted(MonitoringPaths.of(settings).batches.glob("*/state.json"))
    )
    return sorted((e for e in found if e is not None), key=lambda e: (e.time, e.batch_id))


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


def _recorded_policy_path(dagster: DagsterLineage | None) -> str | None:
    """The policy file the gates were evaluated with, as the Dagster checks recorded it."""
    for check in dagster.checks if dagster is not None else []:
        path = check.metadata.get("policy_path")
        if path:
            return str(path)
    return None


def _log_facts(registry: Registry, version: int) -> tuple[list[Record], LogFacts]:
    """(records about the version, the log section of the facts)."""
    path = registry.settings.decision_log
    try:
        all_records, log_error = read_records(path), None
    except LogIntegrityError as exc:
        all_records, log_error = [], str(exc)
    logged = {r.evidence_hashes.get("policy_sha256") for r in all_records} - {None}
    known = _registry_policy_hashes(registry) | {h for h in logged if h is not None}
    section = LogFacts(path=str(path), read_error=log_error, count=len(all_records), known_policy_hashes=sorted(known))
    return _version_decisions(all_records, registry.name, version), section


def _paths(settings: Settings, dagster: DagsterLineage | None) -> PathFacts:
    from mlgov_assets.core.data.datasets import dataset_caches

    recorded_path = _recorded_policy_path(dagster)
    project_cache, generated_cache = dataset_caches(settings)
    return PathFacts(
        project_dir=str(settings.project_dir),
        dvc_cache_dir=str(project_cache),
        generated_dvc_cache_dir=str(generated_cache),
        policy_path=recorded_path or str(settings.policy_path),
        policy_path_source="recorded by the Dagster gate checks" if recorded_path else "current settings",
    )


def project_facts(settings: Settings) -> ProjectFacts:
    """The current project spec's bytes (hash and text); unreadable is recorded, not raised."""
    path = Path(settings.project_spec)
    try:
        data = path.read_bytes()
    except OSError:
        return ProjectFacts(path=str(path), sha256=None)
    return ProjectFacts(path=str(path), sha256=_sha256_bytes(data), text=data.decode("utf-8", errors="replace"))


def gather(registry: Registry, version: int, *, dagster: Mapping[str, Any] | None = None) -> Facts:
    """Everything the audit and the card need about ``version``.

    ``dagster`` is the plain-data view of the Dagster run that trained the version (validated into
    :class:`~.facts.DagsterLineage`); None when no instance is available (the Dagster links are then
    ``skipped``).
    """
    from mlgov_assets.core.provenance import git_info

    s = registry.settings
    info = registry.version_info(version)
    run = _run_facts(registry, info.run_id)
    decisions, log = _log_facts(registry, version)
    lineage = DagsterLineage.model_validate(jsonable(dagster)) if dagster is not None else None
    recorded_commit = info.tags.get("mlgov.git_commit", "")
    return Facts(
        model=info,
        run=run,
        artifacts=_read_artifacts(registry, run),
        decisions=decisions,
        champion_history=registry.champion_history(),
        monitoring=monitoring_batches(s, version),
        log=log,
        witnesses=published_heads(registry),
        git=GitFacts(
            current=GitHead.model_validate(git_info(s.project_dir)),
            recorded_commit_exists=_git_commit_exists(s.project_dir, recorded_commit),
        ),
        paths=_paths(s, lineage),
        dagster=lineage,
        project=project_facts(s),
    )
