"""The evidence bundle (``core.audit.modelcard.schema``) built from a version's facts: every claim
names its source (materialization, run, artifact, log record) and that source's content hash.

Deterministic (no clock): the same evidence gives the same bundle digest, so "is this card
stale?" is a hash comparison. UI links are conveniences; the hashes are the proof.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgov_assets.core.audit.lineage.gates import gate_names
from mlgov_assets.core.audit.lineage.model import (
    DATA_ASSETS,
    POLICY_ARTIFACT,
    Facts,
    artifact_json,
    iso_ms,
    json_or_none,
    jsonable,
)
from mlgov_assets.core.audit.lineage.verify import data_md5_tag, model_nodes
from mlgov_assets.core.integrity import canonical_hash, dvc_cache_path, is_sha256, sha256_file

if TYPE_CHECKING:
    from mlgov_assets.core.audit.modelcard.schema import EvidenceBundle
    from mlgov_assets.core.settings import Settings

__all__ = ["DEFAULT_DAGSTER_URL", "build_bundle"]

DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"  # `mlgov ui` default
#: Where the shipped datasets came from (shown in the card's data section).
KNOWN_PROVENANCE = {
    "adult.data": "UCI Machine Learning Repository, Adult (Becker & Kohavi 1996), CC BY 4.0: training split",
    "adult.test": "UCI Machine Learning Repository, Adult (Becker & Kohavi 1996), CC BY 4.0: canonical test split",
}


class _Urls:
    """The UI addresses links point at: MLflow from the settings, Dagster's web server."""

    def __init__(self, settings: Settings, dagster_url: str):
        self.settings, self.dagster = settings, dagster_url

    def mlflow_run(self, experiment_id: str, run_id: str) -> str:
        return f"{self.settings.mlflow_ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"

    def dagster_run(self, run_id: str) -> str:
        return f"{self.dagster}/runs/{run_id}"


def _src(kind: str, ref: str, sha256: str, url: str | None = None) -> dict[str, str]:
    out = {"kind": kind, "ref": ref, "sha256": sha256}
    if url:
        out["url"] = url
    return out


def _node(facts: Facts, asset: str) -> Mapping[str, Any] | None:
    return next((n for n in (facts["dagster"] or {}).get("materializations", []) if n["asset"] == asset), None)


def _mat_source(node: Mapping[str, Any], urls: _Urls) -> dict[str, str]:
    ref = f"{node['asset']} materialization #{node['storage_id']} (run {node['run_id']})"
    sha = node.get("sha256") if is_sha256(node.get("sha256")) else canonical_hash(jsonable(dict(node)))
    return _src("dagster_materialization", ref, str(sha), urls.dagster_run(node["run_id"]))


def _run_source(facts: Facts, rel: str | None, fallback: Any, urls: _Urls) -> dict[str, str]:
    """A run artifact (sha256 of its bytes) or, for values held in the run itself (params, metrics),
    the canonical hash of exactly the values cited, so an auditor can recompute it."""
    run_id = facts["model"]["run_id"]
    art = facts["artifacts"].get(rel) if rel else None
    sha = art["sha256"] if art else canonical_hash(jsonable(fallback))
    ref = f"runs:/{run_id}/{rel}" if art else f"runs:/{run_id}"
    exp = (facts["run"] or {}).get("experiment_id")
    return _src("mlflow_run", ref, sha, urls.mlflow_run(exp, run_id) if exp else None)


def _text_section(facts: Facts, key: str, urls: _Urls) -> dict[str, Any]:
    import yaml

    text = facts["artifacts"].get(POLICY_ARTIFACT, {}).get("text")
    try:
        value = (yaml.safe_load(text) or {}).get(key) if text else None
    except yaml.YAMLError:
        value = None
    value = (
        str(value).strip() if value else f"Not stated in the policy this version was governed under ({key} is empty)."
    )
    cited = {"policy_sha256": facts["model"]["tags"].get("mlgov.policy_sha256")}
    return {"text": value, "source": _run_source(facts, POLICY_ARTIFACT, cited, urls)}


def _dataset_path(facts: Facts, role: str) -> str:
    data_json = artifact_json(facts, "provenance/data.json") or {}
    return str((data_json.get("train" if role == "training" else "holdout") or {}).get("source") or "unknown")


def _dvc_description(facts: Facts, path: str, md5: str) -> tuple[int, list[dict[str, str]], dict[str, str]]:
    """(rows, columns, source) of the DVC object itself, when no Dagster record describes it."""
    from mlgov_assets.core.data.adult import read_adult_csv

    obj = dvc_cache_path(facts["paths"]["dvc_cache_dir"], md5) if re.fullmatch(r"[0-9a-f]{32}", md5) else None
    try:
        if obj is None:
            raise ValueError("not an md5")
        df = read_adult_csv(obj)
        columns = [{"name": str(c), "dtype": str(t)} for c, t in df.dtypes.items()]
        return len(df), columns, _src("dvc", f"{path} (DVC md5 {md5})", sha256_file(obj))
    except (OSError, TypeError, ValueError):  # the card states the gap instead of failing
        unavailable = canonical_hash({"dvc_md5": md5, "available": False})
        return 0, [], _src("dvc", f"{path} (DVC md5 {md5}): cache object unavailable", unavailable)


def _dataset(facts: Facts, role: str, urls: _Urls) -> dict[str, Any]:
    tags = facts["model"]["tags"]
    md5 = tags.get(data_md5_tag(role), "")
    data_json = artifact_json(facts, "provenance/data.json") or {}
    path = str(
        (data_json.get("train" if role == "training" else "holdout") or {}).get("source")
        or tags.get("mlgov.train_data_path")
        or "unknown"
    )
    node = _node(facts, DATA_ASSETS[role])
    if node is not None:
        rows, columns = int(node["metadata"].get("row_count") or 0), node.get("columns") or []
        source = _mat_source(node, urls)
    else:
        rows, columns, source = _dvc_description(facts, path, md5)
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


def _gate_entry(facts: Facts, g: str, urls: _Urls) -> dict[str, Any]:
    tags = facts["model"]["tags"]
    rel = f"gates/{g}.json"
    evidence = artifact_json(facts, rel) or {}
    values, thresholds = _gate_values(evidence)
    if not values:
        values = {"summary": tags.get(f"mlgov.gate.{g}.summary", "")}
    evals = (r for r in reversed(facts["decisions"]) if r["kind"] == "gate_evaluation")
    rec = next((r for r in evals if r["payload"].get("gate") == g), None)
    entry = {
        "name": g,
        "passed": tags[f"mlgov.gate.{g}"] == "passed",
        "severity": tags.get(f"mlgov.gate.{g}.severity") or "unknown",
        "values": values,
        "thresholds": thresholds,
        "policy_hash": tags.get(f"mlgov.gate.{g}.policy_sha256") or tags.get("mlgov.policy_sha256"),
        "evaluated_at": rec["time"] if rec else "unknown",
        "source": _run_source(facts, rel, evidence, urls),
    }
    run_id = (rec or {}).get("payload", {}).get("dagster_run_id")
    if run_id:
        entry["link"] = urls.dagster_run(run_id)
    return entry


def _first_json(facts: Facts, folder: str, prefer: Iterable[str]) -> tuple[str | None, Any]:
    prefer = tuple(prefer)
    names = sorted(
        (p for p in facts["artifacts"] if p.startswith(folder + "/") and p.endswith(".json")),
        key=lambda p: (not any(w in p for w in prefer), p),
    )
    for p in names:
        data = json_or_none(facts["artifacts"][p].get("text"))
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


def _fairness(facts: Facts, urls: _Urls) -> dict[str, Any]:
    """From a fairness report logged under ``fairness/``; "not available" otherwise."""
    rel, whole = _first_json(facts, "fairness", ("report",))
    if rel is None:
        return {"not_available": "no fairness report was logged to this version's run (fairness/*.json)"}
    data = whole["report"] if isinstance(whole.get("report"), dict) else whole  # {"report": …, "verdict": …}
    rows = _fairness_rows(data)
    if rows is None:
        return {"not_available": f"{rel} is in an unrecognised format (sha256 {facts['artifacts'][rel]['sha256']})"}
    groups, summary = rows
    verdict = whole.get("verdict") if isinstance(whole.get("verdict"), dict) else None
    if verdict is not None and "passed" in verdict:
        summary = {"fairness gate passed": bool(verdict["passed"]), **summary}
    return {"groups": jsonable(groups), "summary": jsonable(summary), "source": _run_source(facts, rel, whole, urls)}


def _explanations(facts: Facts, urls: _Urls, top: int = 10) -> dict[str, Any]:
    """Top features from an explanation summary under ``explanations/``; "not available" otherwise."""
    rel, data = _first_json(facts, "explanations", ("summary", "global", "importance"))
    if rel is None:
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
        "top_features": jsonable(feats),
        "source": _run_source(facts, rel, data, urls),
    }


def _drift_alert(r: Mapping[str, Any], log_name: str) -> dict[str, Any]:
    p = r["payload"]
    drifted = p.get("drifted_columns")
    if drifted is None and isinstance(p.get("columns"), dict):  # {column: drifted?}
        drifted = [c for c, flag in p["columns"].items() if flag]
    return {
        "batch": str(p.get("batch") or p.get("batch_id") or f"record {r['index']}"),
        "time": r["time"],
        "dataset_drift": bool(p.get("dataset_drift", True)),
        "drifted_columns": [str(c) for c in drifted or []],
        "source": _src("decision_log", f"{log_name}#{r['index']}", r["hash"]),
    }


def _drift(facts: Facts, log_name: str) -> Any:
    """Drift history while the version was champion: monitored batches and drift alerts."""
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
    return out + [_drift_alert(r, log_name) for r in facts["decisions"] if r["kind"] == "drift_alert"]


def _model(facts: Facts, settings: Settings) -> dict[str, Any]:
    m, tags = facts["model"], facts["model"]["tags"]
    name, version = m["name"], m["version"]
    digest = tags.get("mlgov.artifact_manifest_sha256") or canonical_hash(tags.get("mlgov.artifact_manifest") or "")
    return {
        "name": name,
        "version": version,
        "run_id": m["run_id"],
        "registered_at": iso_ms(m["created"]) or "unknown",
        "artifact_manifest_digest": digest,
        "source": _src(
            "mlflow_model_version",
            f"models:/{name}/{version}",
            digest,
            settings.mlflow_model_version_url(name, version),
        ),
    }


def _code(facts: Facts, urls: _Urls) -> dict[str, Any]:
    m, tags = facts["model"], facts["model"]["tags"]
    dagster = facts["dagster"] or {}
    run = dagster.get("run")
    code_versions = {
        n["asset"]: n["code_version"] for n in dagster.get("materializations", []) if n.get("code_version")
    }
    if run:
        cited = {"run_id": run["run_id"], "code_versions": code_versions}
        source = _src("dagster_run", run["run_id"], canonical_hash(cited), urls.dagster_run(run["run_id"]))
    else:
        cited = {k: tags.get(k) for k in ("mlgov.git_commit", "mlgov.git_dirty", "mlgov.code_version")}
        source = _src("mlflow_run", f"runs:/{m['run_id']}", canonical_hash(cited))
    if not code_versions and tags.get("mlgov.code_version"):
        code_versions = {"training": tags["mlgov.code_version"]}
    return {
        "git_commit": tags.get("mlgov.git_commit", "unknown"),
        "git_dirty": tags.get("mlgov.git_dirty") == "true",
        "code_versions": code_versions,
        "source": source,
    }


def _environment(facts: Facts, urls: _Urls) -> dict[str, Any]:
    env_rel = "provenance/environment.json"
    env = artifact_json(facts, env_rel) or {}
    return {
        "uv_lock_sha256": env.get("uv_lock_sha256"),
        "python_version": str(env.get("python") or "unknown"),
        "packages": {k: v for k, v in (env.get("packages") or {}).items() if v},
        "source": _run_source(facts, env_rel, env, urls),
    }


def _metrics(facts: Facts, urls: _Urls) -> dict[str, Any]:
    m = facts["model"]
    model_node = next(iter(model_nodes(facts["dagster"] or {})), None)
    holdout = f"holdout ({_dataset_path(facts, 'holdout')}, DVC md5 {m['tags'].get('mlgov.holdout_data_md5')})"
    return {
        "split": holdout,
        "values": dict(sorted(m["metrics"].items())),
        "source": _mat_source(model_node, urls) if model_node else _run_source(facts, None, m["metrics"], urls),
    }


def _decisions(facts: Facts, log_name: str) -> list[dict[str, Any]]:
    keys = ("index", "kind", "actor", "reason", "time")
    return [
        {**{k: r[k] for k in keys}, "source": _src("decision_log", f"{log_name}#{r['index']}", r["hash"])}
        for r in facts["decisions"]
        if r["kind"] != "gate_evaluation"
    ]


def build_bundle(facts: Facts, settings: Settings, *, dagster_url: str = DEFAULT_DAGSTER_URL) -> EvidenceBundle:
    """The evidence bundle for the version the facts describe; MLflow links from ``settings``.

    Raises BundleError if the facts do not make a valid bundle (every problem named).
    """
    from mlgov_assets.core.audit.modelcard.schema import SCHEMA_VERSION, parse_bundle

    urls = _Urls(settings, dagster_url)
    m = facts["model"]
    log_name = Path(facts["log"]["path"]).name
    bundle = {
        "schema_version": SCHEMA_VERSION,
        "model": _model(facts, settings),
        "intended_use": _text_section(facts, "intended_use", urls),
        "limitations": _text_section(facts, "limitations", urls),
        "data": [_dataset(facts, "training", urls), _dataset(facts, "holdout", urls)],
        "code": _code(facts, urls),
        "environment": _environment(facts, urls),
        "hyperparameters": {
            "values": dict(sorted(m["params"].items())),
            "source": _run_source(facts, None, m["params"], urls),
        },
        "metrics": _metrics(facts, urls),
        "gates": [_gate_entry(facts, g, urls) for g in gate_names(m["tags"])],
        "decisions": _decisions(facts, log_name),
        "fairness": _fairness(facts, urls),
        "explanations": _explanations(facts, urls),
        "drift": _drift(facts, log_name),
    }
    return parse_bundle(jsonable(bundle))
