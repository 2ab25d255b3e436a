"""Verifying the chain, link by link: pure functions of the facts plus the files on disk.

They re-hash bytes (model artifacts, the DVC cache object of the data, the policy file) and compare
every recorded identity with every other place it was recorded. Each returns a :class:`Link`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from mlgov_assets.core.audit.lineage.facts import Facts, Materialization
from mlgov_assets.core.audit.lineage.model import (
    DATA_ASSETS,
    MODEL_ASSETS,
    POLICY_ARTIFACT,
    REQUIRED_TAGS,
    SHARED_TAGS,
    Link,
    iso_ms,
    make_link,
)
from mlgov_assets.core.integrity import (
    IntegrityError,
    locate_dvc_cached,
    manifest_digest,
    sha256_file,
    verify_dvc_cached,
    verify_tree,
)

__all__ = [
    "check_dagster_run",
    "check_git_commit",
    "check_materializations",
    "check_mlflow_run",
    "check_model_artifacts",
    "check_model_version",
    "check_policy",
    "check_training_data",
]


def check_model_version(facts: Facts) -> Link:
    """The version carries every lineage tag mlgov writes at registration."""
    m = facts.model
    missing = [t for t in REQUIRED_TAGS if not m.tags.get(t)]
    problems = [f"version {m.version} lacks lineage tag(s) {missing}"] if missing else []
    return make_link(
        "model_version",
        f"{m.name} version {m.version} (run {m.run_id}, aliases {m.aliases or 'none'})",
        problems,
        evidence={
            "name": m.name,
            "version": m.version,
            "run_id": m.run_id,
            "aliases": m.aliases,
            "registered_at": iso_ms(m.created),
        },
    )


def _artifact_problem(p: Mapping[str, str | None]) -> str:
    actual, expected = p.get("actual"), p.get("expected")
    hashes = f" (sha256 now {actual[:16]}…, recorded {expected[:16]}…)" if actual and expected else ""
    return f"model artifact {p['path']}: {p['problem']}{hashes}"


def _tree_problems(model_dir: str, manifest: Mapping[str, str]) -> list[str]:
    """Every changed, missing or unexpected model artifact file, named (a server's artifacts, prod:
    downloaded to a private directory and re-hashed there)."""
    from mlgov_assets.core.models.store import artifact_tree, is_local_location

    try:
        with artifact_tree(model_dir) as tree:
            verify_tree(tree, manifest)
    except IntegrityError as exc:
        return [_artifact_problem(p) for p in exc.problems] or [str(exc)]
    except (FileNotFoundError, NotADirectoryError) as exc:
        return [f"model directory missing: {exc}"]
    except Exception as exc:  # the tracking server refused or lost the download
        if is_local_location(model_dir):
            raise
        return [f"model artifacts at {model_dir[:200]} could not be downloaded: {str(exc)[:200]}"]
    return []


def check_model_artifacts(facts: Facts) -> Link:
    """Every model artifact file re-hashed against the sha256 manifest recorded at registration,
    and that manifest cross-checked with its copy logged to the run (integrity/model_manifest.json)."""
    tags = facts.tags
    try:
        manifest = json.loads(tags.get("mlgov.artifact_manifest") or "null")
    except json.JSONDecodeError:
        manifest = None
    if not isinstance(manifest, dict) or not manifest:
        return make_link(
            "model_artifacts", "", ["no readable sha256 manifest recorded on the version: refusing to trust it"]
        )
    problems: list[str] = []
    digest = tags.get("mlgov.artifact_manifest_sha256")
    if manifest_digest(manifest) != digest:
        problems.append(f"the manifest tag does not match its digest tag {str(digest)[:16]}…")
    model_dir = tags.get("mlgov.model_dir", "")
    problems += _tree_problems(model_dir, manifest)
    logged = facts.artifact_json("integrity/model_manifest.json")
    if logged is None:
        problems.append("the run has no integrity/model_manifest.json to cross-check the tag against")
    elif logged != manifest:
        problems.append("the manifest logged to the run (integrity/model_manifest.json) differs from the version's tag")
    return make_link(
        "model_artifacts",
        f"{len(manifest)} artifact file(s) re-hashed: all match the manifest (digest {str(digest)[:16]}…)",
        problems,
        evidence={"model_dir": str(model_dir), "files": len(manifest), "manifest_digest": digest},
    )


def check_mlflow_run(facts: Facts) -> Link:
    """The MLflow run exists, finished, and its lineage tags equal the version's."""
    run, tags = facts.run, facts.tags
    if run is None:
        return make_link("mlflow_run", "", [f"MLflow run {facts.model.run_id} of the version was not found"])
    problems = [
        f"tag {k}: run says {run.tags.get(k)!r}, version says {tags.get(k)!r}"
        for k in SHARED_TAGS
        if k in run.tags and run.tags.get(k) != tags.get(k)
    ]
    warnings = [] if run.status == "FINISHED" else [f"run status is {run.status}, not FINISHED"]
    if not run.metrics:
        problems.append("the run has no metrics")
    return make_link(
        "mlflow_run",
        f"run {run.run_id} FINISHED, {len(run.metrics)} metric(s), lineage tags agree",
        problems,
        warnings,
        {
            "run_id": run.run_id,
            "status": run.status,
            "started": iso_ms(run.start_time),
            "ended": iso_ms(run.end_time),
        },
    )


def check_dagster_run(facts: Facts) -> Link:
    """The Dagster run recorded on the version exists and materialized this exact model version."""
    dagster, m = facts.dagster, facts.model
    expected = m.tags.get("mlgov.dagster_run_id")
    if dagster is None:
        return Link(
            name="dagster_run",
            status="skipped",
            summary="no Dagster instance was given: run and materializations not checked",
        )
    run = dagster.run
    if run is None:
        return make_link("dagster_run", "", list(dagster.problems or [f"Dagster run {expected} not found"]))
    problems = []
    if run.run_id != expected:
        problems.append(f"Dagster run {run.run_id} read, but the version records {expected}")
    nodes = dagster.model_nodes()
    if not nodes:
        problems.append(f"run {run.run_id} has no {' or '.join(MODEL_ASSETS)} materialization of version {m.version}")
    for node in nodes:
        if str(node.metadata.get("mlflow_run_id")) != m.run_id:
            problems.append(
                f"the {node.asset} materialization #{node.storage_id} names MLflow run "
                f"{node.metadata.get('mlflow_run_id')}, the version's run is {m.run_id}"
            )
    assets = " and ".join(sorted({n.asset for n in nodes})) or "no model asset"
    return make_link(
        "dagster_run",
        f"run {run.run_id} ({run.job_name}, {run.status}) materialized {assets} = version {m.version}",
        problems,
        evidence={"run_id": run.run_id, "job_name": run.job_name, "status": run.status},
    )


def data_md5_tag(role: str) -> str:
    """The version tag holding the DVC md5 of the ``training`` or ``holdout`` data."""
    return f"mlgov.{'train' if role == 'training' else role}_data_md5"


def _stored_value_problems(nodes: list[Materialization]) -> list[str]:
    """Stored values still current must re-hash to the sha256 their materialization recorded."""
    problems = []
    for n in nodes:
        if n.is_latest and n.stored_at and n.sha256 and Path(n.stored_at).is_file():
            actual = sha256_file(n.stored_at)
            if actual != n.sha256:
                problems.append(
                    f"stored value of {n.asset} ({n.stored_at}) hashes to {actual[:16]}…, its "
                    f"materialization #{n.storage_id} recorded {n.sha256[:16]}…"
                )
    return problems


def check_materializations(facts: Facts) -> Link:
    """The materializations the model consumed lead to data whose versions are the recorded DVC md5s;
    stored values that are still current re-hash to the sha256 their materialization recorded."""
    dagster, tags = facts.dagster, facts.tags
    if dagster is None:
        return Link(name="materializations", status="skipped", summary="no Dagster instance was given")
    if dagster.run is None:
        return make_link(
            "materializations", "", ["the Dagster run is missing, so are the materializations it consumed"]
        )
    nodes = dagster.materializations
    problems = []
    for role, asset in DATA_ASSETS.items():
        tag = tags.get(data_md5_tag(role))
        node = dagster.node(asset)
        if node is None:
            problems.append(f"the model's inputs do not lead to a {asset} materialization")
        elif node.data_version != tag:
            problems.append(
                f"{asset} materialization #{node.storage_id} has data version {node.data_version}, "
                f"the version records DVC md5 {tag}"
            )
    problems += _stored_value_problems(nodes)
    rows = [
        n.model_dump(include={"asset", "storage_id", "run_id", "data_version", "code_version", "sha256"}) for n in nodes
    ]
    return make_link(
        "materializations",
        f"{len(nodes)} materialization(s); training/holdout data versions equal the recorded DVC md5s",
        problems,
        evidence={"materializations": rows},
    )


def check_training_data(facts: Facts) -> Link:
    """Re-hash the training and holdout bytes held in the DVC cache against the recorded md5s."""
    tags, cache = facts.tags, facts.paths.dvc_caches
    problems, evidence = [], {}
    data_json = facts.artifact_json("provenance/data.json") or {}
    for role, attrs_key in (("training", "train"), ("holdout", "holdout")):
        md5 = tags.get(data_md5_tag(role), "")
        try:
            ok, detail = verify_dvc_cached(cache, md5)
        except ValueError as exc:
            ok, detail = False, str(exc)
        evidence[role] = {
            "md5": md5,
            "cache_object": str(locate_dvc_cached(cache, md5)) if ok else None,
            "detail": detail,
        }
        if not ok:
            problems.append(f"{role} data: {detail}")
        logged = (data_json.get(attrs_key) or {}).get("dvc_md5")
        if logged is not None and logged != md5:
            problems.append(f"{role} data: provenance/data.json records md5 {logged}, the version tag {md5}")
    return make_link(
        "training_data",
        f"training md5 {tags.get('mlgov.train_data_md5')} and holdout md5 "
        f"{tags.get('mlgov.holdout_data_md5')} re-hashed from the DVC cache",
        problems,
        evidence=evidence,
    )


def check_git_commit(facts: Facts) -> Link:
    """The recorded commit exists in the project repository; a dirty training tree is flagged."""
    tags, git = facts.tags, facts.git
    commit = tags.get("mlgov.git_commit", "unknown")
    problems, warnings = [], []
    if git.recorded_commit_exists is None:
        warnings.append(f"recorded commit {commit!r} cannot be checked (not a git sha or no git)")
    elif not git.recorded_commit_exists:
        problems.append(f"recorded commit {commit} does not exist in {facts.paths.project_dir}")
    if tags.get("mlgov.git_dirty") == "true":
        warnings.append(f"trained from a dirty working tree at {commit[:12]}: the commit alone does not pin the code")
    current = git.current
    return make_link(
        "git_commit",
        f"commit {commit[:12]} exists (HEAD is {current.commit[:12]}{', dirty' if current.dirty else ''})",
        problems,
        warnings,
        {
            "recorded": commit,
            "recorded_dirty": tags.get("mlgov.git_dirty"),
            "head": current.commit,
            "head_dirty": current.dirty,
            "same_as_head": current.commit == commit,
        },
    )


def check_policy(facts: Facts) -> Link:
    """The stored copy of the policy and the policy file still hash to the recorded policy hash.

    A current policy file with another hash passes (as a warning) only if that hash is a *governed*
    policy: one a version was trained or gated under, or a decision was logged under.
    """
    recorded = facts.tags.get("mlgov.policy_sha256")
    problems, warnings = [], []
    stored = facts.artifacts.get(POLICY_ARTIFACT)
    if stored is None:
        problems.append(f"the run has no stored policy copy ({POLICY_ARTIFACT})")
    elif stored.sha256 != recorded:
        problems.append(
            f"stored policy copy {POLICY_ARTIFACT} hashes to {stored.sha256[:16]}…, the version "
            f"records {str(recorded)[:16]}…"
        )
    path = Path(facts.paths.policy_path)
    current = sha256_file(path) if path.is_file() else None
    if current is None:
        warnings.append(f"policy file {path} not found: only the stored copy was checked")
    elif current != recorded:
        if current in facts.log.known_policy_hashes:
            warnings.append(f"policy file {path} has since been replaced by governed policy {current[:16]}…")
        else:
            problems.append(
                f"policy file {path} hashes to {current[:16]}…, but the model was governed under "
                f"{str(recorded)[:16]}… and no governed decision used {current[:16]}…: changed outside governance"
            )
    return make_link(
        "policy",
        f"policy {str(recorded)[:16]}…: stored copy and {path} match",
        problems,
        warnings,
        {
            "recorded_sha256": recorded,
            "stored_copy_sha256": stored.sha256 if stored else None,
            "path": str(path),
            "path_source": facts.paths.policy_path_source,
            "current_sha256": current,
        },
    )
