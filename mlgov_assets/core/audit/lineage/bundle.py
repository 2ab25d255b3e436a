"""The evidence bundle (``core.audit.modelcard.schema``) built from a version's facts: every claim
names its source (materialization, run, artifact, log record) and that source's content hash.

Each builder returns the schema's own section model, validated as it is constructed. Deterministic
(no clock): the same evidence gives the same bundle digest, so "is this card stale?" is a hash
comparison. UI links are conveniences; the hashes are the proof.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from mlgov_assets.core.audit.decision_log.records import Record
from mlgov_assets.core.audit.lineage.facts import Facts, Materialization
from mlgov_assets.core.audit.lineage.gates import gate_names, latest_gate_record
from mlgov_assets.core.audit.lineage.model import (
    DATA_ASSETS,
    POLICY_ARTIFACT,
    PROJECT_ARTIFACT,
    iso_ms,
    json_or_none,
    jsonable,
)
from mlgov_assets.core.audit.lineage.project_section import PROJECT_SHA_TAG, project_section, spec_copy, version_project
from mlgov_assets.core.audit.lineage.verify import data_md5_tag
from mlgov_assets.core.audit.modelcard.schema import (
    SCHEMA_VERSION,
    BundleError,
    CodeSection,
    Column,
    Dataset,
    Decision,
    DriftEntry,
    EnvironmentSection,
    EvidenceBundle,
    ExplanationsSection,
    FairnessSection,
    Gate,
    MetricsSection,
    ModelSection,
    NotAvailable,
    ProjectSection,
    Source,
    SourceKind,
    TextSection,
    ValuesSection,
    problems_of,
)
from mlgov_assets.core.integrity import canonical_hash, is_sha256, locate_dvc_cached, sha256_file

if TYPE_CHECKING:
    from mlgov_assets.core.settings import Settings

__all__ = ["DEFAULT_DAGSTER_URL", "build_bundle"]

DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"  # `mlgov ui` default
#: Where the shipped demo datasets came from (shown in the card's data section).
KNOWN_PROVENANCE = {
    "adult.data": "UCI Machine Learning Repository, Adult (Becker & Kohavi 1996), CC BY 4.0: training split",
    "adult.test": "UCI Machine Learning Repository, Adult (Becker & Kohavi 1996), CC BY 4.0: canonical test split",
}
_T = TypeVar("_T")


class _Urls:
    """The UI addresses links point at: MLflow from the settings, Dagster's web server."""

    def __init__(self, settings: Settings, dagster_url: str):
        self.settings, self.dagster = settings, dagster_url

    def mlflow_run(self, experiment_id: str, run_id: str) -> str:
        return f"{self.settings.mlflow_ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"

    def dagster_run(self, run_id: str) -> str:
        return f"{self.dagster}/runs/{run_id}"


def _src(kind: SourceKind, ref: str, sha256: str, url: str | None = None) -> Source:
    # url is left unset (not null) when there is none: the bundle JSON holds only the fields given
    if url:
        return Source(kind=kind, ref=ref, sha256=sha256, url=url)
    return Source(kind=kind, ref=ref, sha256=sha256)


def _node(facts: Facts, asset: str) -> Materialization | None:
    return facts.dagster.node(asset) if facts.dagster is not None else None


def _mat_source(node: Materialization, urls: _Urls) -> Source:
    ref = f"{node.asset} materialization #{node.storage_id} (run {node.run_id})"
    recorded = node.model_dump(mode="json", exclude_unset=True)
    sha = node.sha256 if node.sha256 is not None and is_sha256(node.sha256) else canonical_hash(jsonable(recorded))
    return _src("dagster_materialization", ref, sha, urls.dagster_run(node.run_id))


def _run_source(facts: Facts, rel: str | None, fallback: Any, urls: _Urls) -> Source:
    """A run artifact (sha256 of its bytes) or, for values held in the run itself (params, metrics),
    the canonical hash of exactly the values cited, so an auditor can recompute it."""
    run_id = facts.model.run_id
    art = facts.artifacts.get(rel) if rel else None
    sha = art.sha256 if art else canonical_hash(jsonable(fallback))
    ref = f"runs:/{run_id}/{rel}" if art else f"runs:/{run_id}"
    exp = facts.run.experiment_id if facts.run is not None else None
    return _src("mlflow_run", ref, sha, urls.mlflow_run(exp, str(run_id)) if exp else None)


def _text_section(facts: Facts, key: str, urls: _Urls) -> TextSection:
    import yaml

    text = facts.artifact_text(POLICY_ARTIFACT)
    try:
        value = (yaml.safe_load(text) or {}).get(key) if text else None
    except yaml.YAMLError:
        value = None
    value = (
        str(value).strip() if value else f"Not stated in the policy this version was governed under ({key} is empty)."
    )
    cited = {"policy_sha256": facts.tags.get("mlgov.policy_sha256")}
    return TextSection(text=value, source=_run_source(facts, POLICY_ARTIFACT, cited, urls))


def _dataset_path(facts: Facts, role: str) -> str:
    data_json = facts.artifact_json("provenance/data.json") or {}
    return str((data_json.get("train" if role == "training" else "holdout") or {}).get("source") or "unknown")


def _dvc_description(facts: Facts, path: str, md5: str) -> tuple[int, list[Column], Source]:
    """(rows, columns, source) of the DVC object itself, read in the project's raw layout, when no
    Dagster record describes it."""
    from mlgov_assets.core.errors import MlgovError
    from mlgov_assets.core.project.reader import read_raw

    obj = locate_dvc_cached(facts.paths.dvc_caches, md5) if re.fullmatch(r"[0-9a-f]{32}", md5) else None
    project, _ = version_project(facts)
    try:
        if obj is None or project is None:
            raise ValueError("not an md5, or no project spec to read it with")
        df = read_raw(project, obj)
        columns = [Column(name=str(c), dtype=str(t)) for c, t in df.dtypes.items()]
        return len(df), columns, _src("dvc", f"{path} (DVC md5 {md5})", sha256_file(obj))
    except (OSError, TypeError, ValueError, MlgovError):  # the card states the gap instead of failing
        unavailable = canonical_hash({"dvc_md5": md5, "available": False})
        return 0, [], _src("dvc", f"{path} (DVC md5 {md5}): cache object unavailable", unavailable)


def _dataset(facts: Facts, role: str, urls: _Urls) -> Dataset:
    tags = facts.tags
    md5 = tags.get(data_md5_tag(role), "")
    data_json = facts.artifact_json("provenance/data.json") or {}
    path = str(
        (data_json.get("train" if role == "training" else "holdout") or {}).get("source")
        or tags.get("mlgov.train_data_path")
        or "unknown"
    )
    node = _node(facts, DATA_ASSETS[role])
    if node is not None:
        row_count: Any = node.metadata.get("row_count")
        rows, columns, source = int(row_count or 0), list(node.columns), _mat_source(node, urls)
    else:
        rows, columns, source = _dvc_description(facts, path, md5)
    provenance = KNOWN_PROVENANCE.get(Path(path).name, f"dataset {path} registered in DVC by the governed path")
    return Dataset(
        role=role,
        path=path,
        dvc_md5=md5,
        rows=rows,
        columns=columns,
        provenance=f"{provenance}; bytes content-addressed by DVC md5 {md5}",
        source=source,
    )


def _project(facts: Facts, urls: _Urls) -> ProjectSection | NotAvailable:
    """The project the version was trained under: from the run's stored spec, else the current one."""
    copy = spec_copy(facts)
    if isinstance(copy, str):
        return NotAvailable(not_available=copy)
    if copy.stored:
        return project_section(facts, _run_source(facts, PROJECT_ARTIFACT, None, urls))
    recorded = "recorded with the version" if PROJECT_SHA_TAG in facts.tags else "not recorded with the version"
    return project_section(facts, _src("project_spec", f"{copy.path} ({recorded})", copy.sha256))


def _gate_values(evidence: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(values, thresholds) per metric/rule from a gate's evidence rows."""
    values: dict[str, Any] = {}
    thresholds: dict[str, Any] = {}
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
    return values, thresholds


def _gate_entry(facts: Facts, g: str, urls: _Urls) -> Gate:
    tags = facts.tags
    rel = f"gates/{g}.json"
    evidence = facts.artifact_json(rel) or {}
    values, thresholds = _gate_values(evidence)
    if not values:
        values = {"summary": tags.get(f"mlgov.gate.{g}.summary", "")}
    rec = latest_gate_record(facts, g)
    fields: dict[str, Any] = {
        "name": g,
        "passed": tags[f"mlgov.gate.{g}"] == "passed",
        "severity": tags.get(f"mlgov.gate.{g}.severity") or "unknown",
        "values": jsonable(values),
        "thresholds": jsonable(thresholds),
        "policy_hash": tags.get(f"mlgov.gate.{g}.policy_sha256") or tags.get("mlgov.policy_sha256"),
        "evaluated_at": rec.time if rec else "unknown",
        "source": _run_source(facts, rel, evidence, urls),
    }
    run_id = rec.payload.get("dagster_run_id") if rec else None
    if run_id:  # link is left unset (not null) without a Dagster run
        fields["link"] = urls.dagster_run(run_id)
    return Gate(**fields)


def _first_json(facts: Facts, folder: str, prefer: Iterable[str]) -> tuple[str | None, Any]:
    prefer = tuple(prefer)
    names = sorted(
        (p for p in facts.artifacts if p.startswith(folder + "/") and p.endswith(".json")),
        key=lambda p: (not any(w in p for w in prefer), p),
    )
    for p in names:
        data = json_or_none(facts.artifacts[p].text)
        if isinstance(data, dict):
            return p, data
    return None, None


def _fairness_rows(data: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]] | None:
    """(groups, summary) from a FairnessReport dict ({features: …}) or {groups, summary}; None if neither."""
    if isinstance(data.get("features"), dict):
        features = data["features"]
        groups = [{"attribute": name, **g} for name, f in features.items() for g in (f.get("groups") or [])]
        summary = {
            f"{name}: {k}": (v.get("value") if isinstance(v, dict) else v)
            for name, f in features.items()
            for k, v in (f.get("summary") or {}).items()
        }
        return groups, summary
    if isinstance(data.get("groups"), list):
        return data["groups"], data.get("summary") or {}
    return None


def _fairness(facts: Facts, urls: _Urls) -> FairnessSection | NotAvailable:
    """From a fairness report logged under ``fairness/``; "not available" otherwise."""
    rel, whole = _first_json(facts, "fairness", ("report",))
    if rel is None:
        return NotAvailable(not_available="no fairness report was logged to this version's run (fairness/*.json)")
    data = whole["report"] if isinstance(whole.get("report"), dict) else whole  # {"report": …, "verdict": …}
    rows = _fairness_rows(data)
    if rows is None:
        sha = facts.artifacts[rel].sha256
        return NotAvailable(not_available=f"{rel} is in an unrecognised format (sha256 {sha})")
    groups, summary = rows
    verdict = whole.get("verdict") if isinstance(whole.get("verdict"), dict) else None
    if verdict is not None and "passed" in verdict:
        summary = {"fairness gate passed": bool(verdict["passed"]), **summary}
    return FairnessSection(
        groups=jsonable(groups), summary=jsonable(summary), source=_run_source(facts, rel, whole, urls)
    )


def _explanations(facts: Facts, urls: _Urls, top: int = 10) -> ExplanationsSection | NotAvailable:
    """Top features from an explanation summary under ``explanations/``; "not available" otherwise."""
    rel, data = _first_json(facts, "explanations", ("summary", "global", "importance"))
    if rel is None:
        return NotAvailable(
            not_available="no explanation summary was logged to this version's run (explanations/*.json)"
        )
    if isinstance(data.get("importance"), dict):
        ranked = sorted(data["importance"].items(), key=lambda kv: -float(kv[1] or 0))[:top]
        feats: list[Any] = [{"feature": str(k), "importance": float(v or 0)} for k, v in ranked]
    elif isinstance(data.get("top_features"), list):
        feats = data["top_features"][:top]
    else:
        sha = facts.artifacts[rel].sha256
        return NotAvailable(not_available=f"{rel} is in an unrecognised format (sha256 {sha})")
    return ExplanationsSection(
        method=str(data.get("method") or "unknown"),
        top_features=jsonable(feats),  # the artifact's rows, validated as Feature
        source=_run_source(facts, rel, data, urls),
    )


def _drift_alert(r: Record, log_name: str) -> DriftEntry:
    p = r.payload
    drifted = p.get("drifted_columns")
    if drifted is None and isinstance(p.get("columns"), dict):  # {column: drifted?}
        drifted = [c for c, flag in p["columns"].items() if flag]
    return DriftEntry(
        batch=str(p.get("batch") or p.get("batch_id") or f"record {r.index}"),
        time=r.time,
        dataset_drift=bool(p.get("dataset_drift", True)),
        drifted_columns=[str(c) for c in drifted or []],
        source=_src("decision_log", f"{log_name}#{r.index}", r.hash),
    )


def _drift(facts: Facts, log_name: str) -> list[DriftEntry] | NotAvailable:
    """Drift history while the version was champion: monitored batches and drift alerts."""
    m = facts.model
    if m.version not in facts.champion_history and "champion" not in m.aliases:
        return NotAvailable(not_available="this version has never been champion (never in production)")
    out = [
        DriftEntry(
            batch=b.batch_id,
            time=b.time,
            dataset_drift=b.dataset_drift,
            drifted_columns=b.drifted_columns,
            source=_src("monitoring_ledger", b.path, b.sha256),
        )
        for b in facts.monitoring
    ]
    return out + [_drift_alert(r, log_name) for r in facts.decisions if r.kind == "drift_alert"]


def _model(facts: Facts, settings: Settings) -> ModelSection:
    m, tags = facts.model, facts.tags
    digest = tags.get("mlgov.artifact_manifest_sha256") or canonical_hash(tags.get("mlgov.artifact_manifest") or "")
    return ModelSection(
        name=m.name,
        version=m.version,
        run_id=m.run_id or "",
        registered_at=iso_ms(m.created) or "unknown",
        artifact_manifest_digest=digest,
        source=_src(
            "mlflow_model_version",
            f"models:/{m.name}/{m.version}",
            digest,
            settings.mlflow_model_version_url(m.name, m.version),
        ),
    )


def _code(facts: Facts, urls: _Urls) -> CodeSection:
    tags = facts.tags
    run = facts.dagster.run if facts.dagster is not None else None
    nodes = facts.dagster.materializations if facts.dagster is not None else []
    code_versions = {n.asset: n.code_version for n in nodes if n.code_version}
    if run:
        cited: dict[str, Any] = {"run_id": run.run_id, "code_versions": code_versions}
        source = _src("dagster_run", run.run_id, canonical_hash(cited), urls.dagster_run(run.run_id))
    else:
        cited = {k: tags.get(k) for k in ("mlgov.git_commit", "mlgov.git_dirty", "mlgov.code_version")}
        source = _src("mlflow_run", f"runs:/{facts.model.run_id}", canonical_hash(cited))
    if not code_versions and tags.get("mlgov.code_version"):
        code_versions = {"training": tags["mlgov.code_version"]}
    return CodeSection(
        git_commit=tags.get("mlgov.git_commit", "unknown"),
        git_dirty=tags.get("mlgov.git_dirty") == "true",
        code_versions=code_versions,
        source=source,
    )


def _environment(facts: Facts, urls: _Urls) -> EnvironmentSection:
    env_rel = "provenance/environment.json"
    env = facts.artifact_json(env_rel) or {}
    return EnvironmentSection(
        uv_lock_sha256=env.get("uv_lock_sha256"),
        python_version=str(env.get("python") or "unknown"),
        packages=jsonable({k: v for k, v in (env.get("packages") or {}).items() if v}),
        source=_run_source(facts, env_rel, env, urls),
    )


def _metrics(facts: Facts, urls: _Urls) -> MetricsSection:
    m = facts.model
    model_node = next(iter(facts.dagster.model_nodes()), None) if facts.dagster is not None else None
    holdout = f"holdout ({_dataset_path(facts, 'holdout')}, DVC md5 {m.tags.get('mlgov.holdout_data_md5')})"
    return MetricsSection(
        split=holdout,
        values=jsonable(dict(sorted(m.metrics.items()))),
        source=_mat_source(model_node, urls) if model_node else _run_source(facts, None, m.metrics, urls),
    )


def _hyperparameters(facts: Facts, urls: _Urls) -> ValuesSection:
    params = facts.model.params
    return ValuesSection(values=dict(sorted(params.items())), source=_run_source(facts, None, params, urls))


def _decision(r: Record, log_name: str) -> Decision:
    source = _src("decision_log", f"{log_name}#{r.index}", r.hash)
    return Decision(index=r.index, kind=r.kind, actor=r.actor, reason=r.reason, time=r.time, source=source)


class _Sections:
    """Builds sections, collecting every validation problem (named by its path in the bundle)."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def build(self, at: tuple[int | str, ...], make: Callable[[], _T]) -> _T | None:
        try:
            return make()
        except ValidationError as exc:
            self.problems += problems_of(exc, at)
            return None

    def each(self, key: str, makers: list[Callable[[], _T]]) -> list[_T | None]:
        return [self.build((key, i), make) for i, make in enumerate(makers)]


def build_bundle(facts: Facts, settings: Settings, *, dagster_url: str = DEFAULT_DAGSTER_URL) -> EvidenceBundle:
    """The evidence bundle for the version the facts describe; MLflow links from ``settings``.

    Raises BundleError if the facts do not make a valid bundle (every problem named).
    """
    urls = _Urls(settings, dagster_url)
    log_name = Path(facts.log.path).name
    one = _Sections()
    sections: dict[str, Any] = {
        "model": one.build(("model",), lambda: _model(facts, settings)),
        "intended_use": one.build(("intended_use",), lambda: _text_section(facts, "intended_use", urls)),
        "limitations": one.build(("limitations",), lambda: _text_section(facts, "limitations", urls)),
        "data": one.each("data", [partial(_dataset, facts, role, urls) for role in ("training", "holdout")]),
        "code": one.build(("code",), lambda: _code(facts, urls)),
        "environment": one.build(("environment",), lambda: _environment(facts, urls)),
        "hyperparameters": one.build(("hyperparameters",), lambda: _hyperparameters(facts, urls)),
        "metrics": one.build(("metrics",), lambda: _metrics(facts, urls)),
        "gates": one.each("gates", [partial(_gate_entry, facts, g, urls) for g in gate_names(facts.tags)]),
        "decisions": one.each(
            "decisions", [partial(_decision, r, log_name) for r in facts.decisions if r.kind != "gate_evaluation"]
        ),
        "fairness": one.build(("fairness",), lambda: _fairness(facts, urls)),
        "explanations": one.build(("explanations",), lambda: _explanations(facts, urls)),
        "drift": one.build(("drift",), lambda: _drift(facts, log_name)),
        "project": one.build(("project",), lambda: _project(facts, urls)),
    }
    bundle = one.build((), lambda: EvidenceBundle(schema_version=SCHEMA_VERSION, **sections))
    if one.problems or bundle is None:
        raise BundleError(one.problems)
    return bundle
