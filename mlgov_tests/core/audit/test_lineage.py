"""Lineage verification (pure): every link passes on consistent evidence and each kind of tampering
breaks exactly the link it should, named, with the offending file or record.

The facts are built here from real files — the real Adult bytes in a DVC-layout cache, a model
directory, a policy file, a real hash-chained decision log — and every expected hash is computed
independently with hashlib/json (not with mlgov's own helpers), so the checks are compared against
an independent computation.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from mlgov_assets.core.audit.decision_log import DecisionLog
from mlgov_assets.core.audit.lineage.audit import check_decision_log, verify_lineage, verify_with_witnesses
from mlgov_assets.core.audit.lineage.bundle import build_bundle
from mlgov_assets.core.audit.lineage.facts import Facts, MonitoredBatch
from mlgov_assets.core.audit.lineage.gates import check_gates
from mlgov_assets.core.audit.lineage.model import LINKS, ModelRefError
from mlgov_assets.core.audit.lineage.refs import parse_model_ref
from mlgov_assets.core.audit.lineage.verify import check_dagster_run, check_materializations, check_policy
from mlgov_assets.core.audit.modelcard import render_html, render_markdown, validate_bundle
from mlgov_assets.core.settings import DEFAULT_PROJECT_SPEC, get_settings
from mlgov_tests.conftest import dvc_cache_put

DATA = Path(__file__).resolve().parents[3] / "data"
POLICY_TEXT = (
    "policy_version: 1\nintended_use: Screening demo.\nlimitations: Dated census data.\n"
    "metric_floors:\n  roc_auc: {min: 0.9}\n"
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canon(obj: Any) -> str:
    """Independent canonical hash: sorted keys, compact separators, UTF-8."""
    return _sha(json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())


def _typed(facts: dict[str, Any]) -> Facts:
    """The test's (mutable) JSON view of the facts, as the typed facts the checks take."""
    return Facts.model_validate(facts)


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def facts(tmp_path: Path) -> dict[str, Any]:
    """A consistent lineage: version 3, promoted, trained by Dagster run R on the real Adult files."""
    project, cache = tmp_path / "project", tmp_path / "project" / ".dvc" / "cache"
    train_md5, holdout_md5 = dvc_cache_put(cache, DATA / "adult.data"), dvc_cache_put(cache, DATA / "adult.test")
    model_dir = tmp_path / "artifacts" / "model"
    (model_dir / "sub").mkdir(parents=True)
    files = {
        "MLmodel": b"flavors:\n  sklearn: {}\n",
        "model.skops": bytes(range(256)) * 40,
        "sub/conda.yaml": b"deps: []\n",
    }
    for rel, data in files.items():
        (model_dir / rel).write_bytes(data)
    manifest = {rel: _sha(data) for rel, data in files.items()}
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY_TEXT)
    policy_sha = _sha(POLICY_TEXT.encode())
    log = DecisionLog(tmp_path / "audit" / "decisions.jsonl")
    evidence = {  # the two gates the policy requires, as core.promotion.record_gates writes them
        "metric_floors": {
            "gate": "metric_floors",
            "passed": True,
            "summary": "all metric floors met",
            "policy_sha256": policy_sha,
            "details": {},
            "dagster_run_id": "run-r",
            "rows": [{"metric": "roc_auc", "value": 0.93, "rule": ">=", "threshold": 0.9, "passed": True}],
        },
        "champion_comparison": {
            "gate": "champion_comparison",
            "passed": True,
            "summary": "no champion yet",
            "policy_sha256": policy_sha,
            "details": {"compared_champion_version": None},
            "dagster_run_id": "run-r",
            "rows": [
                {
                    "metric": "roc_auc",
                    "challenger": 0.93,
                    "champion": None,
                    "threshold": 0.9,
                    "min_absolute_change": 0.0005,
                    "failures": [],
                }
            ],
        },
    }
    for gate, ev in evidence.items():
        log.append(
            "gate_evaluation",
            actor="ci",
            reason=f"{gate}: passed",
            model_name="m",
            model_version=3,
            payload={"gate": gate, "passed": True, "dagster_run_id": "run-r"},
            evidence_hashes={"policy_sha256": policy_sha, "evidence_sha256": _canon(ev)},
        )
    promo = log.append(
        "promotion",
        actor="ci",
        reason="passed every gate",
        model_name="m",
        model_version=3,
        payload={"previous": None},
        evidence_hashes={"policy_sha256": policy_sha},
    )
    stored = tmp_path / "assets"
    stored.mkdir()
    nodes = []
    for sid, (asset, dv) in enumerate(
        [
            ("training_data", train_md5),
            ("holdout_data", holdout_md5),
            ("train_features", "f" * 64),
            ("challenger_model", "c" * 64),
        ],
        start=10,
    ):
        value = stored / f"{asset}.json"
        value.write_text(json.dumps({"asset": asset}))
        nodes.append(
            {
                "asset": asset,
                "role": "model" if asset == "challenger_model" else "input",
                "storage_id": sid,
                "run_id": "run-r",
                "timestamp": 1.0,
                "data_version": dv,
                "code_version": f"cv-{asset}",
                "sha256": _sha(value.read_bytes()),
                "stored_at": str(value),
                "is_latest": True,
                "metadata": {
                    "row_count": 32561 if asset == "training_data" else 16281,
                    "model_version": 3,
                    "mlflow_run_id": "mlflow-run",
                }
                if asset != "challenger_model"
                else {"model_version": 3, "mlflow_run_id": "mlflow-run"},
                "columns": [{"name": "age", "dtype": "object"}],
                "inputs": {},
            }
        )
    tags = {
        "mlgov.train_data_md5": train_md5,
        "mlgov.holdout_data_md5": holdout_md5,
        "mlgov.git_commit": "a" * 40,
        "mlgov.git_dirty": "false",
        "mlgov.policy_sha256": policy_sha,
        "mlgov.dagster_run_id": "run-r",
        "mlgov.artifact_manifest": json.dumps(manifest, sort_keys=True),
        "mlgov.artifact_manifest_sha256": _canon(dict(sorted(manifest.items()))),
        "mlgov.model_dir": str(model_dir),
        "mlgov.code_version": "cv1",
        "mlgov.variant": "baseline",
        **{
            f"mlgov.gate.{g}{suffix}": value
            for g in evidence
            for suffix, value in (
                ("", "passed"),
                (".policy_sha256", policy_sha),
                (".severity", "ERROR"),
                (".summary", evidence[g]["summary"]),
            )
        },
    }
    texts = {
        "policy/policy.yaml": POLICY_TEXT,
        "integrity/model_manifest.json": json.dumps(manifest, indent=2),
        **{f"gates/{g}.json": json.dumps(ev, indent=2) for g, ev in evidence.items()},
        "provenance/data.json": json.dumps(
            {
                "train": {"source": "data/adult.data", "dvc_md5": train_md5},
                "holdout": {"source": "data/adult.test", "dvc_md5": holdout_md5},
            }
        ),
        "provenance/environment.json": json.dumps(
            {"python": "3.11.7", "uv_lock_sha256": "b" * 64, "packages": {"scikit-learn": "1.9.1"}}
        ),
    }
    return {
        "model": {
            "name": "m",
            "version": 3,
            "run_id": "mlflow-run",
            "aliases": ["champion"],
            "created": 1_700_000_000_000,
            "source": "models:/m-1",
            "tags": tags,
            "params": {"max_iter": "60", "random_state": "0"},
            "metrics": {"roc_auc": 0.93, "accuracy": 0.87},
        },
        "run": {
            "run_id": "mlflow-run",
            "experiment_id": "1",
            "status": "FINISHED",
            "start_time": 1,
            "end_time": 2,
            "artifact_uri": "file:///nowhere",
            "tags": {k: v for k, v in tags.items() if not k.startswith("mlgov.gate")},
            "params": {},
            "metrics": {"roc_auc": 0.93},
        },
        "artifacts": {rel: {"sha256": _sha(t.encode()), "size": len(t), "text": t} for rel, t in texts.items()},
        "decisions": log.read(),
        "champion_history": [3],
        "log": {"path": str(log.path), "read_error": None, "count": 3, "known_policy_hashes": [policy_sha]},
        "witnesses": [{"version": 3, "head": {"count": 3, "last_hash": promo.hash}, "raw": "x"}],
        "git": {"current": {"commit": "a" * 40, "dirty": False}, "recorded_commit_exists": True},
        "paths": {
            "project_dir": str(project),
            "dvc_cache_dir": str(cache),
            "policy_path": str(policy),
            "policy_path_source": "test",
        },
        "project": {  # the current spec (the version carries no project tags: registered before them)
            "path": str(DEFAULT_PROJECT_SPEC),
            "sha256": _sha(DEFAULT_PROJECT_SPEC.read_bytes()),
            "text": DEFAULT_PROJECT_SPEC.read_text(),
        },
        "dagster": {
            "run": {"run_id": "run-r", "job_name": "governed_training", "status": "SUCCESS"},
            "materializations": nodes,
            "checks": [
                {
                    "asset": "training_data",
                    "check": "check_training_data_schema",
                    "passed": True,
                    "severity": "ERROR",
                    "blocking": True,
                    "role": "data",
                    "gate": None,
                    "metadata": {},
                },
                {
                    "asset": "challenger_model",
                    "check": "check_challenger_model_metric_floors",
                    "passed": True,
                    "severity": "ERROR",
                    "blocking": True,
                    "role": "model",
                    "gate": "metric_floors",
                    "metadata": {"model_version": 3},
                },
            ],
            "problems": [],
        },
    }


def _ledger_batches(home: Path) -> list[MonitoredBatch]:
    """Batches written with core.monitoring's own ledger, read back by the lineage gatherer."""
    from types import SimpleNamespace

    from mlgov_assets.core.audit.lineage.gather import monitoring_batches
    from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringPaths

    ledger = BatchLedger(MonitoringPaths(home / "monitoring"))
    ledger.update(
        "b001",
        champion_version=3,
        landed_at="2026-01-05T00:00:00+00:00",
        drift={"judged": True, "verdict": "drift", "dataset_drift": True, "drifted_columns": ["age", "sex"]},
    )
    ledger.update("b002", champion_version=2, drift={"dataset_drift": False, "drifted_columns": []})  # another champion
    ledger.update("b003", champion_version=3)  # accepted, not yet scored: no drift verdict
    return monitoring_batches(SimpleNamespace(home=home), 3)


def _status(links) -> dict[str, str]:
    return {link.name: link.status for link in links}


def _only_broken(facts: dict, name: str) -> Any:
    links = verify_lineage(_typed(facts))
    assert [link.name for link in links if link.status == "fail"] == [name], [(x.name, x.summary) for x in links]
    return next(link for link in links if link.name == name)


# --------------------------------------------------------------------------- the whole chain


def test_consistent_lineage_verifies_every_link(facts):
    links = verify_lineage(_typed(facts))
    assert [link.name for link in links] == list(LINKS)
    assert _status(links) == dict.fromkeys(LINKS, "ok"), [(x.name, x.summary) for x in links]


def test_model_artifact_byte_flip_names_the_file(facts):
    _flip(Path(facts["model"]["tags"]["mlgov.model_dir"]) / "model.skops")
    link = _only_broken(facts, "model_artifacts")
    assert "model.skops" in link.summary and "changed" in link.summary


def test_extra_or_missing_artifact_and_disagreeing_manifests_are_named(facts):
    model_dir = Path(facts["model"]["tags"]["mlgov.model_dir"])
    (model_dir / "injected.py").write_text("print('hi')")
    (model_dir / "sub" / "conda.yaml").unlink()
    link = _only_broken(facts, "model_artifacts")
    assert "injected.py: unexpected extra file" in link.summary and "sub/conda.yaml: missing" in link.summary
    facts2 = copy.deepcopy(facts)
    (model_dir / "injected.py").unlink()
    (model_dir / "sub" / "conda.yaml").write_bytes(b"deps: []\n")
    facts2["artifacts"]["integrity/model_manifest.json"]["text"] = json.dumps({"MLmodel": "0" * 64})
    assert "differs from the version's tag" in _only_broken(facts2, "model_artifacts").summary


def test_training_data_byte_flip_in_the_dvc_cache_is_named(facts):
    md5 = facts["model"]["tags"]["mlgov.train_data_md5"]
    obj = Path(facts["paths"]["dvc_cache_dir"]) / "files" / "md5" / md5[:2] / md5[2:]
    _flip(obj)
    link = _only_broken(facts, "training_data")
    assert "training data" in link.summary and str(obj) in link.summary and "altered" in link.summary
    obj.unlink()
    assert "not found" in _only_broken(facts, "training_data").summary


def test_provenance_disagreeing_with_the_tag_is_named(facts):
    data = json.loads(facts["artifacts"]["provenance/data.json"]["text"])
    data["train"]["dvc_md5"] = "0" * 32
    facts["artifacts"]["provenance/data.json"]["text"] = json.dumps(data)
    assert "provenance/data.json records md5" in _only_broken(facts, "training_data").summary


def test_policy_file_and_stored_copy_are_both_checked(facts):
    path = Path(facts["paths"]["policy_path"])
    _flip(path)
    link = _only_broken(facts, "policy")
    assert str(path) in link.summary and "changed outside governance" in link.summary
    # the same file under a policy a later governed decision used: superseded, a warning
    facts["log"]["known_policy_hashes"].append(_sha(path.read_bytes()))
    assert check_policy(_typed(facts)).status == "warn"
    path.write_text(POLICY_TEXT)
    facts["artifacts"]["policy/policy.yaml"]["sha256"] = _sha(b"tampered copy")
    assert "stored policy copy" in _only_broken(facts, "policy").summary
    facts["artifacts"]["policy/policy.yaml"]["sha256"] = _sha(POLICY_TEXT.encode())
    path.unlink()
    assert check_policy(_typed(facts)).status == "warn"


def test_gate_evidence_altered_after_evaluation_is_detected(facts):
    ev = json.loads(facts["artifacts"]["gates/metric_floors.json"]["text"])
    ev["rows"][0]["value"] = 0.99
    facts["artifacts"]["gates/metric_floors.json"]["text"] = json.dumps(ev)
    link = _only_broken(facts, "checks")
    assert (
        "gate metric_floors" in link.summary and "altered after the evaluation" in link.summary and "#0" in link.summary
    )


def test_promotion_despite_a_failed_gate_needs_a_recorded_override(facts, tmp_path):
    facts["model"]["tags"]["mlgov.gate.metric_floors"] = "failed"
    ev = json.loads(facts["artifacts"]["gates/metric_floors.json"]["text"])
    ev["passed"] = False
    facts["artifacts"]["gates/metric_floors.json"]["text"] = json.dumps(ev)
    log = DecisionLog(tmp_path / "log2.jsonl")
    log.append(
        "gate_evaluation",
        actor="ci",
        reason="metric_floors: FAILED",
        model_name="m",
        model_version=3,
        payload={"gate": "metric_floors", "passed": False},
        evidence_hashes={"evidence_sha256": _canon(ev)},
    )
    cc = json.loads(facts["artifacts"]["gates/champion_comparison.json"]["text"])
    log.append(
        "gate_evaluation",
        actor="ci",
        reason="champion_comparison: passed",
        model_name="m",
        model_version=3,
        payload={"gate": "champion_comparison", "passed": True},
        evidence_hashes={"evidence_sha256": _canon(cc)},
    )
    log.append(
        "promotion", actor="ci", reason="why not", model_name="m", model_version=3, payload={}, evidence_hashes={}
    )
    facts["decisions"] = log.read()
    facts["dagster"]["checks"][1]["passed"] = False
    assert (
        "no override is recorded" in check_gates(_typed(facts)).summary and check_gates(_typed(facts)).status == "fail"
    )
    log.append(
        "override",
        actor="cro",
        reason="regulator-approved exception",
        model_name="m",
        model_version=3,
        payload={},
        evidence_hashes={},
    )
    facts["decisions"] = [r for r in log.read() if r.kind != "promotion"]
    link = check_gates(_typed(facts))
    assert link.status == "warn" and "OVERRIDE" in link.summary


def test_materializations_must_lead_to_the_recorded_data_and_stored_values_must_match(facts):
    facts["dagster"]["materializations"][0]["data_version"] = "0" * 32
    assert "training_data materialization #10 has data version" in _only_broken(facts, "materializations").summary
    facts["dagster"]["materializations"][0]["data_version"] = facts["model"]["tags"]["mlgov.train_data_md5"]
    stored = Path(facts["dagster"]["materializations"][2]["stored_at"])
    stored.write_text("{}")
    assert "stored value of train_features" in _only_broken(facts, "materializations").summary
    facts["dagster"]["materializations"][2]["is_latest"] = False  # overwritten by a later run: not comparable
    assert check_materializations(_typed(facts)).status == "ok"


def test_dagster_run_links(facts):
    facts["dagster"]["materializations"][3]["metadata"]["mlflow_run_id"] = "someone-else"
    assert "names MLflow run someone-else" in check_dagster_run(_typed(facts)).summary
    missing = {
        "run": None,
        "materializations": [],
        "checks": [],
        "problems": ["Dagster run run-r ... not in this instance"],
    }
    facts["dagster"] = missing
    assert (
        check_dagster_run(_typed(facts)).status == "fail"
        and "not in this instance" in check_dagster_run(_typed(facts)).summary
    )
    facts["dagster"] = None  # no instance given: stated as skipped, does not fail the audit
    links = _status(verify_lineage(_typed(facts)))
    assert links["dagster_run"] == links["materializations"] == "skipped"
    assert "fail" not in links.values()


def test_decision_log_truncation_with_a_rewritten_head_is_caught_by_the_published_witness(facts):
    log = Path(facts["log"]["path"])
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:2]))  # drop the promotion...
    Path(f"{log}.head").write_text(
        json.dumps({"count": 2, "last_hash": json.loads(lines[1])["hash"]})
    )  # ...and re-anchor
    assert not verify_with_witnesses(log, []).ok  # the witness file beside the log still records 3
    witness = log.parent / ".witness" / f"{log.name}.json"
    witness.write_text(Path(f"{log}.head").read_text())  # rewritten too: invisible locally
    assert verify_with_witnesses(log, []).ok
    res = verify_with_witnesses(log, facts["witnesses"])
    assert (res.ok, res.first_bad_index) == (False, 2) and "version 3" in str(res.problem)
    assert check_decision_log(_typed(facts)).status == "fail"


def test_a_crashing_check_is_a_failed_link_not_a_crash(facts):
    broken = _typed(facts).model_copy(update={"artifacts": None})  # not valid facts: a check crashes on it
    links = verify_lineage(broken)
    assert [link.name for link in links] == list(LINKS)
    assert any(link.status == "fail" and "could not be verified" in link.summary for link in links)


def test_model_refs():
    assert parse_model_ref("7", "m") == ("m", 7, None)
    assert parse_model_ref("champion", "m") == ("m", None, "champion")
    assert parse_model_ref("models:/other@champion", "m") == ("other", None, "champion")
    assert parse_model_ref("models:/m/12", "m") == ("m", 12, None)
    for bad in ("", "models:/m", "models:/m/x", "v7", "models:/a/b/c"):
        with pytest.raises(ModelRefError):
            parse_model_ref(bad, "m")


# --------------------------------------------------------------------------- the evidence bundle


def test_bundle_from_facts_is_valid_cites_sources_and_degrades(facts):
    groups = [
        {"group": g, "count": n, "selection_rate": r} for g, n, r in (("Female", 5421, 0.11), ("Male", 10860, 0.3))
    ]
    report = {
        "report": {"features": {"sex": {"groups": groups, "summary": {"demographic_parity_ratio": {"value": 0.37}}}}},
        "verdict": {"passed": False},
    }
    importance = {"age": 0.4, "capital_gain": 0.9, "hours_per_week": 0.1}
    for rel, obj in (
        ("fairness/report.json", report),
        ("explanations/importance.json", {"importance": importance, "method": "tree"}),
    ):
        text = json.dumps(obj)
        facts["artifacts"][rel] = {"sha256": _sha(text.encode()), "size": len(text), "text": text}
    facts["monitoring"] = _ledger_batches(Path(facts["paths"]["project_dir"]).parent / "state")
    log = DecisionLog(facts["log"]["path"])
    log.append(
        "drift_alert",
        actor="sensor",
        reason="drift",
        model_name="m",
        model_version=3,
        payload={"batch": "2026-01", "dataset_drift": True, "drifted_columns": ["age"]},
        evidence_hashes={},
    )
    facts["decisions"] = log.read()
    settings = dataclasses.replace(get_settings(), mlflow_ui_url="https://mlflow.example:8443/")
    bundle = build_bundle(_typed(facts), settings).to_json()
    assert validate_bundle(bundle) == []
    # MLflow links point at the configured UI
    assert bundle["model"]["source"]["url"] == "https://mlflow.example:8443/#/models/m/versions/3"
    assert bundle["hyperparameters"]["source"]["url"] == "https://mlflow.example:8443/#/experiments/1/runs/mlflow-run"
    # data rows: from the Dagster materialization metadata; provenance names the source
    assert [d["rows"] for d in bundle["data"]] == [32561, 16281]
    assert bundle["data"][0]["source"]["sha256"] == facts["dagster"]["materializations"][0]["sha256"]
    assert bundle["model"]["artifact_manifest_digest"] == facts["model"]["tags"]["mlgov.artifact_manifest_sha256"]
    assert bundle["intended_use"]["text"] == "Screening demo."
    assert bundle["intended_use"]["source"]["sha256"] == _sha(POLICY_TEXT.encode())
    assert (
        len(bundle["fairness"]["groups"]) == len(groups)
        and bundle["fairness"]["summary"]["fairness gate passed"] is False
    )
    assert [f["feature"] for f in bundle["explanations"]["top_features"]] == sorted(
        importance, key=lambda k: -importance[k]
    )
    ledger, alert = bundle["drift"]
    assert (ledger["batch"], ledger["dataset_drift"], ledger["drifted_columns"]) == ("b001", True, ["age", "sex"])
    assert ledger["source"]["kind"] == "monitoring_ledger" and ledger["source"]["sha256"] == _sha(
        (Path(facts["paths"]["project_dir"]).parent / "state" / ledger["source"]["ref"]).read_bytes()
    )
    assert alert["drifted_columns"] == ["age"]
    assert [d["kind"] for d in bundle["decisions"]] == ["promotion", "drift_alert"]
    gate = next(g for g in bundle["gates"] if g["name"] == "metric_floors")
    assert gate["source"]["sha256"] == facts["artifacts"]["gates/metric_floors.json"]["sha256"]
    assert gate["values"] == {"roc_auc": 0.93} and gate["thresholds"] == {"roc_auc": ">= 0.9"}
    md, page = render_markdown(bundle), render_html(bundle)
    assert "Screening demo." in md and "Screening demo." in page
    # without Dagster records and optional evidence: rows re-counted from the DVC object, gaps stated
    facts["dagster"] = None
    for rel in ("fairness/report.json", "explanations/importance.json"):
        del facts["artifacts"][rel]
    bare = build_bundle(_typed(facts), settings).to_json()
    assert validate_bundle(bare) == []
    independent_rows = sum(1 for line in (DATA / "adult.data").read_text().splitlines() if line.strip())
    assert bare["data"][0]["rows"] == independent_rows and bare["data"][0]["source"]["kind"] == "dvc"
    assert "not_available" in bare["fairness"] and "not_available" in bare["explanations"]
    assert "Not available" in render_markdown(bare)
    facts["model"]["aliases"], facts["champion_history"] = [], []
    assert "never been champion" in build_bundle(_typed(facts), settings).to_json()["drift"]["not_available"]


def test_bundle_describes_the_project_the_version_was_trained_under(facts, tmp_path):
    settings = get_settings()
    spec_sha = facts["project"]["sha256"]
    untagged = build_bundle(_typed(facts), settings).to_json()["project"]
    assert untagged["recorded_with_version"] is False and "not recorded" in untagged["source"]["ref"]
    facts["model"]["tags"] |= {"mlgov.project": "adult", "mlgov.project_sha256": spec_sha}
    bundle = build_bundle(_typed(facts), settings).to_json()
    assert validate_bundle(bundle) == []
    p = bundle["project"]
    assert (p["name"], p["spec_sha256"], p["recorded_with_version"]) == ("adult", spec_sha, True)
    assert p["source"] == {
        "kind": "project_spec",
        "ref": f"{DEFAULT_PROJECT_SPEC} (recorded with the version)",
        "sha256": spec_sha,
    }
    assert (p["target"], p["favourable"]) == ("income", ">50K")
    assert [(a["column"], a["judged_as"]) for a in p["protected"]] == [("sex", "sex"), ("race", "race")]
    assert [(e["column"], e["reason"]) for e in p["exclusions"]] == [
        ("fnlwgt", "sampling_weight"),
        ("education", "duplicate"),
    ]
    assert "fnlwgt" not in p["model_features"] and "sex" not in p["model_features"] and "age" in p["model_features"]
    assert p["holdout"] == "file data/adult.test" and "split" not in p
    md = render_markdown(bundle)
    assert "income (favourable: &gt;50K)" in md and "sampling_weight" in md
    assert "## Project" in md and spec_sha in md and "Excluded columns" in md
    # a split recorded in the holdout's lineage is shown
    data = json.loads(facts["artifacts"]["provenance/data.json"]["text"])
    data["holdout"]["split"] = {"fraction": 0.3, "seed": 7, "row_ids_sha256": "c" * 64}
    text = json.dumps(data)
    facts["artifacts"]["provenance/data.json"] = {"sha256": _sha(text.encode()), "size": len(text), "text": text}
    split = build_bundle(_typed(facts), settings).to_json()
    assert split["project"]["split"] == {"fraction": 0.3, "seed": 7, "row_ids_sha256": "c" * 64}
    assert "Holdout split record" in render_markdown(split) and "c" * 64 in render_markdown(split)
    # a spec that is not the one the version was trained under is never described as if it were
    facts["model"]["tags"]["mlgov.project_sha256"] = "d" * 64
    stale = build_bundle(_typed(facts), settings).to_json()
    assert validate_bundle(stale) == []
    assert "d" * 64 in stale["project"]["not_available"] and spec_sha in stale["project"]["not_available"]
    facts["model"]["tags"] |= {"mlgov.project": "credit", "mlgov.project_sha256": spec_sha}
    assert "project 'credit'" in build_bundle(_typed(facts), settings).to_json()["project"]["not_available"]


def test_bundle_prefers_the_spec_copy_stored_with_the_run(facts):
    settings = get_settings()
    stored = DEFAULT_PROJECT_SPEC.read_text().replace("name: adult\n", "name: adult_stored\n")
    assert stored != DEFAULT_PROJECT_SPEC.read_text()
    sha = _sha(stored.encode())
    facts["artifacts"]["project/project.yaml"] = {"sha256": sha, "size": len(stored), "text": stored}
    facts["model"]["tags"] |= {"mlgov.project": "adult_stored", "mlgov.project_sha256": sha}
    bundle = build_bundle(_typed(facts), settings).to_json()
    assert validate_bundle(bundle) == []
    p = bundle["project"]
    assert (p["name"], p["spec_sha256"], p["recorded_with_version"]) == ("adult_stored", sha, True)
    assert p["source"]["kind"] == "mlflow_run" and p["source"]["ref"] == "runs:/mlflow-run/project/project.yaml"
    assert p["source"]["sha256"] == sha
    # the stored copy must be the one the tag names
    facts["model"]["tags"]["mlgov.project_sha256"] = facts["project"]["sha256"]
    na = build_bundle(_typed(facts), settings).to_json()["project"]["not_available"]
    assert sha in na and facts["project"]["sha256"] in na


def test_a_reused_version_re_evaluated_under_a_new_policy_is_not_broken(facts):
    """The version's tag holds a later verdict (new policy) than its training run's Dagster check."""
    check = facts["dagster"]["checks"][1]
    check["passed"], check["run_id"] = False, "run-r"
    check["metadata"]["policy_sha256"] = "0" * 64  # the training run judged it under an older policy
    link = check_gates(_typed(facts))
    assert link.status == "warn" and "re-evaluated later" in link.summary
    check["metadata"].pop("policy_sha256")  # same policy, same run, different verdict: still broken
    link = check_gates(_typed(facts))
    assert link.status == "fail" and "the tag disagrees" in link.summary


def test_the_champion_alias_against_the_logs_committed_moves(facts):
    from mlgov_assets.core.audit.lineage.audit import registry_agreement

    assert registry_agreement(_typed(facts)) == []
    facts["model"]["aliases"] = []  # the log promoted 3, the registry does not name it
    assert any("does not name version 3" in p for p in registry_agreement(_typed(facts)))
    facts["model"]["aliases"], facts["champion_history"] = ["champion"], [3, 3]
    assert any("champion history [3, 3]" in p for p in registry_agreement(_typed(facts)))
