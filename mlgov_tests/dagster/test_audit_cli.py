"""Issue 5 end to end: `mlgov audit`, `mlgov audit verify`, `mlgov reproduce`, verified model loading,
overrides, and the model cards — on a real champion (real Dagster instance on disk, real MLflow
store, real git + DVC project), all in temporary directories.

One champion is trained per module (a Dagster run here costs ~10-20 s): the module fixture
materializes everything upstream of `model_cards`, which is what "Materialize all" does for the
governed path. The policy is the shipped default (fairness gates, ThresholdOptimizer mitigation,
SHAP additivity) with cheaper evidence settings (fewer bootstrap resamples, SHAP on a row sample),
so the champion is the fairness-mitigated candidate and its unmitigated challenger is another
version. Tests that tamper with bytes restore them before they end; the override test changes the
champion and therefore runs last (pytest keeps file order).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from dagster import (
    AssetKey,
    AssetSelection,
    DagsterEventType,
    DagsterRunStatus,
    RunRequest,
    SkipReason,
    build_run_status_sensor_context,
)

from mlgov_assets.core.audit.lineage.model import LINKS
from mlgov_assets.core.integrity import IntegrityError, dvc_cache_path
from mlgov_tests.conftest import FAST_PARAMS, REPO, Env, run_path

WEAK_PARAMS = {"max_iter": 15, "max_leaf_nodes": 4}  # below the default policy floors


def cheap_default_policy() -> str:
    """The shipped policy with fewer fairness bootstrap resamples and SHAP on 1,000 rows (speed only)."""
    import yaml

    policy = yaml.safe_load((REPO / "mlgov_assets" / "policies" / "default.yaml").read_text())
    if policy.get("fairness"):
        policy["fairness"]["n_boot"] = 20
    if policy.get("explanations") is not None:
        policy["explanations"]["max_rows"] = 1000
    return yaml.safe_dump(policy, sort_keys=False)


@pytest.fixture(scope="module")
def world(project_template, tmp_path_factory):
    """A project copy + state dir with one champion, trained by materializing model_cards' upstream."""
    root = tmp_path_factory.mktemp("audit")
    project = root / "project"
    shutil.copytree(project_template, project, symlinks=True)
    home, policy = root / "state", root / "policy.yaml"
    policy.write_text(cheap_default_policy())
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "MLGOV_HOME": home,
            "MLGOV_PROJECT_DIR": project,
            "MLGOV_POLICY": policy,
            "MLGOV_LANDING_DIR": home / "incoming",
            "DAGSTER_HOME": home / "dagster",
        }.items():
            mp.setenv(key, str(value))
        from mlgov_assets.instance import get_instance

        env = Env(project=project, home=home, policy=policy)
        instance = get_instance(env.settings())  # the persistent instance the CLI opens too
        defs = env.defs()
        keys = AssetSelection.assets(AssetKey(["adult", "model_cards"])).upstream().resolve(defs.resolve_asset_graph())
        job = defs.resolve_implicit_job_def_def_for_assets(list(keys))
        result = job.execute_in_process(
            run_config={"ops": {"challenger_model": {"config": FAST_PARAMS}}},
            instance=instance,
            asset_selection=list(keys),
            raise_on_error=False,
        )
        assert result.success, [c.description for c in result.get_asset_check_evaluations() if not c.passed]
        registry = env.registry()
        yield SimpleNamespace(
            env=env, instance=instance, run=result, registry=registry, champion=registry.champion_version()
        )
        instance.dispose()


def cli(capsys, *argv: str) -> tuple[int, str]:
    """Run `mlgov ARGV` in this process; (exit code, stdout + stderr)."""
    from mlgov_assets.cli import main

    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def cli_json(capsys, *argv: str) -> tuple[int, dict]:
    """`mlgov ARGV --json`: (exit code, the JSON document on stdout; Dagster logs go to stderr)."""
    from mlgov_assets.cli import main

    capsys.readouterr()
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def audit_json(capsys, ref: str) -> tuple[int, dict]:
    return cli_json(capsys, "audit", ref)


@contextmanager
def flipped_byte(path: Path):
    """Flip one byte in the middle of `path` (even a read-only DVC cache object), restore it after."""
    original, mode = path.read_bytes(), path.stat().st_mode
    os.chmod(path, mode | stat.S_IWUSR)
    data = bytearray(original)
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    try:
        yield path
    finally:
        path.write_bytes(original)
        os.chmod(path, mode)
        assert path.read_bytes() == original


def _model_file(world) -> Path:
    model_dir = Path(world.registry.version_info(world.champion).tags["mlgov.model_dir"])
    return max((p for p in model_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


# --------------------------------------------------------------------------- audit MODEL_REF


def test_audit_of_the_real_champion_verifies_every_link(world, capsys):
    code, report = audit_json(capsys, "champion")
    assert code == 0, report
    assert report["ok"] and report["broken"] == [] and report["version"] == world.champion
    assert [link["name"] for link in report["links"]] == list(LINKS)
    assert all(link["status"] in ("ok", "warn") for link in report["links"]), report["links"]
    links = {link["name"]: link for link in report["links"]}
    # independent of the implementation: the md5 of the shipped bytes, and the files in the model dir
    assert (
        links["training_data"]["evidence"]["training"]["md5"]
        == hashlib.md5((world.env.project / "data" / "adult.data").read_bytes()).hexdigest()
    )
    model_dir = Path(world.registry.version_info(world.champion).tags["mlgov.model_dir"])
    assert links["model_artifacts"]["evidence"]["files"] == sum(1 for p in model_dir.rglob("*") if p.is_file())
    assert links["dagster_run"]["evidence"]["run_id"] == world.run.run_id
    mats = {m["asset"]: m for m in links["materializations"]["evidence"]["materializations"]}
    assert {"training_data", "holdout_data", "train_features", "holdout_features", "candidate_model"} <= set(mats)
    assert mats["training_data"]["data_version"] == links["training_data"]["evidence"]["training"]["md5"]
    assert links["policy"]["evidence"]["current_sha256"] == hashlib.sha256(world.env.policy.read_bytes()).hexdigest()
    # every way of naming the champion resolves to the same version
    name = world.registry.name
    for ref in (f"models:/{name}@champion", f"models:/{name}/{world.champion}", str(world.champion)):
        code, other = audit_json(capsys, ref)
        assert (code, other["version"]) == (0, world.champion), ref
    # the unmitigated challenger (refused by the fairness gate, never promoted) verifies too
    challenger = int(world.registry.version_info(world.champion).tags["mlgov.base_version"])
    code, other = audit_json(capsys, str(challenger))
    assert (code, other["version"], other["aliases"]) == (0, challenger, [])
    code, out = cli(capsys, "audit", "models:/no-such-model/1")
    assert code == 2 and "no-such-model" in out


@pytest.mark.parametrize(
    "target, link", [("dvc_cache", "training_data"), ("model_artifact", "model_artifacts"), ("policy_file", "policy")]
)
def test_one_flipped_byte_breaks_the_named_link(world, capsys, target, link):
    paths = {
        "dvc_cache": lambda: dvc_cache_path(
            world.env.project / ".dvc" / "cache",
            world.registry.version_info(world.champion).tags["mlgov.train_data_md5"],
        ),
        "model_artifact": lambda: _model_file(world),
        "policy_file": lambda: world.env.policy,
    }
    path = paths[target]()
    with flipped_byte(path):
        code, report = audit_json(capsys, "champion")
        assert code == 1
        assert report["broken"] == [link], report["broken"]
        failed = next(x for x in report["links"] if x["name"] == link)
        assert str(path.name) in failed["summary"] or str(path) in failed["summary"], failed["summary"]
        code, text = cli(capsys, "audit", "champion")
        assert code == 1 and f"BROKEN: {link}" in text and "[FAIL]" in text
    assert audit_json(capsys, "champion")[0] == 0  # restored: the chain verifies again


def test_loading_a_model_whose_artifact_hash_does_not_match_is_refused(world):
    path = _model_file(world)
    leftovers = lambda: set(Path(tempfile.gettempdir()).glob("mlgov-verified-model-*"))
    before = leftovers()
    with flipped_byte(path):
        with pytest.raises(IntegrityError) as exc:
            world.registry.load_model(world.champion)
        assert path.name in str(exc.value) and "changed" in str(exc.value)
        assert leftovers() == before  # the private copy of refused bytes is removed, nothing was deserialized
    model = world.registry.load_model(world.champion)
    assert hasattr(model, "predict")
    del model  # a pyfunc model keeps its verified private copy while it lives (it may read files lazily)
    gc.collect()
    assert leftovers() == before


# --------------------------------------------------------------------------- audit verify (decision log)


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _tamper(kind: str, log: Path) -> int:
    """Apply one tampering to the log; return the index the verifier must name (from the definition)."""
    lines = _lines(log)
    n = len(lines)
    if kind == "edit":
        rec = json.loads(lines[1])
        rec["reason"] = rec["reason"] + " (edited)"
        lines[1] = (json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n").encode()
        expected = 1
    elif kind == "delete":
        del lines[1]
        expected = 1
    elif kind == "reorder":
        lines[0], lines[1] = lines[1], lines[0]
        expected = 0
    elif kind == "truncate":
        lines = lines[:-1]
        expected = n - 1
    elif kind == "truncate_and_rewrite_head":  # a consistent rewrite: only the published witness exposes it
        lines = lines[:-1]
        last = json.loads(lines[-1])
        Path(f"{log}.head").write_text(json.dumps({"count": n - 1, "last_hash": last["hash"]}))
        expected = n - 1
    else:
        raise AssertionError(kind)
    log.write_bytes(b"".join(lines))
    return expected


@pytest.mark.parametrize("kind", ["edit", "delete", "reorder", "truncate", "truncate_and_rewrite_head"])
def test_audit_verify_names_the_first_bad_record(world, capsys, kind):
    log = world.env.settings().decision_log
    head = Path(f"{log}.head")
    assert cli(capsys, "audit", "verify")[0] == 0
    saved = (log.read_bytes(), head.read_bytes())
    if kind == "truncate_and_rewrite_head":  # precondition: the last decision's head was published on a version
        published = [
            json.loads(v.tags["mlgov.decision_log_head"])
            for v in world.registry.client.search_model_versions(f"name = '{world.registry.name}'")
            if "mlgov.decision_log_head" in v.tags
        ]
        assert max(h["count"] for h in published) == len(_lines(log))
    try:
        expected = _tamper(kind, log)
        code, res = cli_json(capsys, "audit", "verify")
        assert (code, res["ok"], res["first_bad_index"]) == (1, False, expected), res
        code, text = cli(capsys, "audit", "verify")
        assert code == 1 and f"first bad record: index {expected}" in text
        # the lineage audit of the champion reports the broken log too (and, if a record no longer
        # parses, that the gate verdicts cannot be cross-checked against it)
        broken = audit_json(capsys, "champion")[1]["broken"]
        assert "decision_log" in broken and set(broken) <= {"decision_log", "checks"}, broken
    finally:
        log.write_bytes(saved[0])
        head.write_bytes(saved[1])
    assert cli(capsys, "audit", "verify")[0] == 0


# --------------------------------------------------------------------------- reproduce


def test_reproduce_yields_identical_holdout_predictions_and_a_certificate(world, capsys):
    log_path = world.env.settings().decision_log
    before = len(_lines(log_path))
    code, rep = cli_json(capsys, "reproduce", "champion")
    assert code == 0, rep
    assert rep["version"] == world.champion and rep["variant"] == "mitigated"
    assert rep["identical"] and rep["max_abs_diff"] == 0.0 and rep["differing_decisions"] == 0
    assert rep["code_identity"] == "identical", rep["code_notes"]
    assert rep["rows"] == 16281 and rep["metrics_reproduced"] == rep["metrics_recorded"]
    # the certificate is the new last record of the ORIGINAL home's log
    records = [json.loads(line) for line in _lines(log_path)]
    assert len(records) == before + 1
    cert = records[-1]
    assert (cert["kind"], cert["model_version"], cert["index"]) == (
        "reproducibility_certificate",
        str(world.champion),
        rep["certificate"]["index"],
    )
    # independently: the registered model's own outputs on the stored holdout hash to what the
    # certificate recorded (score, then decision, then P(decision=1), float64 little-endian)
    holdout = pd.read_parquet(world.env.home / "assets" / "adult" / "holdout_features.parquet")
    from mlgov_assets.core.project.project import open_project

    project = open_project(world.env.settings().project_spec, world.env.project)
    model = world.registry.load_governed(world.champion)
    X = holdout[[*project.model_features, *project.sensitive]]
    h = hashlib.sha256()
    for arr in (model.base_score(X), model.predict(X), model.predict_proba(X)[:, 1]):
        h.update(np.ascontiguousarray(arr, dtype="<f8").tobytes())
    assert cert["evidence_hashes"]["registered_predictions_sha256"] == h.hexdigest()
    assert cert["evidence_hashes"]["reproduced_predictions_sha256"] == h.hexdigest()
    assert cli(capsys, "audit", "verify")[0] == 0  # the certificate's head was witnessed on the version
    # `mlgov status --json` carries the audit state: log verified, its head, the certificate, the cards
    code, st = cli_json(capsys, "status")
    audit = st["audit"]
    assert code == 0 and audit["decision_log"]["ok"] and audit["head"]["count"] == len(records)
    assert audit["certificates"][str(world.champion)]["index"] == cert["index"]
    assert (
        audit["model_cards"][str(world.champion)]
        == world.registry.version_info(world.champion).tags["mlgov.model_card_sha256"]
    )


def test_reproduce_refuses_altered_training_data(world, capsys):
    md5 = world.registry.version_info(world.champion).tags["mlgov.train_data_md5"]
    log_path = world.env.settings().decision_log
    before = log_path.read_bytes()
    with flipped_byte(dvc_cache_path(world.env.project / ".dvc" / "cache", md5)):
        code, out = cli(capsys, "reproduce", str(world.champion))
    assert code == 1 and "REFUSED" in out and md5 in out
    assert log_path.read_bytes() == before  # no certificate


# --------------------------------------------------------------------------- cards, sensors, override (last)


def test_card_sensors_follow_governance_runs_only(world):
    from mlgov_assets.core.settings import DEFAULT_PROJECT_SPEC
    from mlgov_assets.defs.audit import project_defs
    from mlgov_assets.defs.scope import ProjectScope

    sensors = {s.name: s for s in project_defs(ProjectScope("adult", DEFAULT_PROJECT_SPEC)).sensors or []}
    model_cards_after_success = sensors["adult__model_cards_after_success"]
    model_cards_after_failure = sensors["adult__model_cards_after_failure"]
    run = world.instance.get_run_by_id(world.run.run_id)
    event = (
        world.instance.get_records_for_run(world.run.run_id, of_type=DagsterEventType.RUN_SUCCESS)
        .records[0]
        .event_log_entry.dagster_event
    )
    for sensor, status in (
        (model_cards_after_success, DagsterRunStatus.SUCCESS),
        (model_cards_after_failure, DagsterRunStatus.FAILURE),
    ):
        # a successful governed_training run builds the cards itself (they are in its selection);
        # a failed one (refused challenger) and any champion_decision run get a refresh
        after_training = SkipReason if status == DagsterRunStatus.SUCCESS else RunRequest
        for job_name, expected in (
            ("adult__governed_training", after_training),
            ("adult__champion_decision", RunRequest),
            ("adult__refresh_model_cards", SkipReason),
            ("credit_default__champion_decision", SkipReason),  # another project's run
        ):
            ctx = build_run_status_sensor_context(
                sensor_name=sensor.name,
                dagster_instance=world.instance,
                dagster_run=run._replace(job_name=job_name, status=status),
                dagster_event=event,
            )
            assert isinstance(sensor(ctx), expected), (sensor.name, job_name)


def _card(world, version: int) -> tuple[str, dict]:
    import mlflow

    run_id = world.registry.version_info(version).run_id
    md = mlflow.artifacts.load_text(f"runs:/{run_id}/model_card/model_card.md")
    bundle = json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/model_card/evidence_bundle.json"))
    return md, bundle


# --------------------------------------------------------------------------- OpenLineage (issue 12)


def _link(report: dict, name: str) -> dict:
    return next(link for link in report["links"] if link["name"] == name)


def test_export_lineage_names_what_the_audit_of_the_champion_verified(world, capsys, tmp_path):
    from mlgov_tests.openlineage_schema import problems

    code, audit = audit_json(capsys, "champion")
    assert code == 0, audit["broken"]
    md5 = _link(audit, "training_data")["evidence"]["training"]["md5"]
    policy = _link(audit, "policy")["evidence"]["recorded_sha256"]
    code, doc = cli_json(capsys, "audit", "export-lineage", "champion")
    assert code == 0 and doc["ok"] and doc["version"] == audit["version"] == world.champion
    events = doc["event_list"]
    assert len(events) == doc["events"] and problems(events) == []
    jobs = [e["job"]["name"] for e in events]
    for stage in ("adult/training_data", "adult/train_features", "adult/challenger_model", "adult/registration"):
        assert stage in jobs, stage  # data -> validated data -> features -> model -> registration
    assert any(j.startswith("adult/challenger_model.check_") for j in jobs)  # the gates
    registered = next(e for e in events if e["job"]["name"] == "adult/registration" and e["eventType"] == "COMPLETE")
    model = registered["outputs"][0]["facets"]["mlgov_model"]
    assert (model["modelVersion"], model["trainDataMd5"], model["policySha256"]) == (world.champion, md5, policy)
    assert model["modelUri"] == f"models:/{world.registry.name}/{world.champion}" and "champion" in model["aliases"]
    data = next(e for e in events if e["job"]["name"] == "adult/training_data" and e["eventType"] == "COMPLETE")
    assert data["outputs"][0]["facets"]["mlgov_data"]["dvcMd5"] == md5
    gates = [e["run"]["facets"]["mlgov_gates"] for e in events if "mlgov_gates" in e["run"]["facets"]]
    assert gates and {g["policySha256"] for g in gates} == {policy}
    promoted = [e for e in events if f"models:/{world.registry.name}@champion" in [o["name"] for o in e["outputs"]]]
    assert promoted and promoted[-1]["run"]["facets"]["mlgov_decision"]["kind"] in ("promotion", "override")
    # --out FILE: the same events, one JSON line each; a bad MODEL_REF is a usage error
    out = tmp_path / "chain.jsonl"
    code, text = cli(capsys, "audit", "export-lineage", "champion", "--out", str(out))
    assert code == 0 and str(out) in text
    assert [json.loads(line) for line in out.read_text().splitlines()] == events
    assert cli(capsys, "audit", "export-lineage", "99")[0] == 2
    assert cli(capsys, "audit", "export-lineage")[0] == 2
    # --emit: through the configured transport too (here the file; MLGOV_OPENLINEAGE_URL for Marquez)
    os.environ["MLGOV_OPENLINEAGE_FILE"] = str(tmp_path / "emitted.jsonl")
    code, doc = cli_json(capsys, "audit", "export-lineage", "champion", "--emit")
    assert code == 0 and doc["emitted"]["written"] == len(events) and not doc["emitted"]["errors"]
    assert [json.loads(line) for line in (tmp_path / "emitted.jsonl").read_text().splitlines()] == events


def test_the_governed_run_emits_openlineage_events_the_export_agrees_with(world, capsys):
    from mlgov_assets.defs.lineage_events import emit_run
    from mlgov_tests.openlineage_schema import problems

    report = emit_run(world.instance, world.run.run_id, world.env.settings())
    assert report is not None and report.ok and report.written > 20
    events = [json.loads(line) for line in Path(report.file).read_text().splitlines()]
    mine = [e for e in events if e["run"]["facets"]["mlgov_dagster"]["dagsterRunId"] == world.run.run_id]
    assert len(mine) == report.written and problems(mine) == []
    assert {e["run"]["facets"].get("parent", {}).get("run", {}).get("runId", e["run"]["runId"]) for e in mine} == {
        world.run.run_id
    }
    assert mine[0]["eventType"] == "START" and mine[-1]["eventType"] == "COMPLETE"
    names = {e["job"]["name"] for e in mine}
    assert {"adult/training_data", "adult/challenger_model", "adult/champion"} <= names
    model = next(e for e in mine if e["job"]["name"] == "adult/challenger_model" and e["eventType"] == "COMPLETE")
    assert model["outputs"][0]["facets"]["mlgov_model"]["modelUri"].startswith(f"models:/{world.registry.name}/")
    # the exported chain names the same runs as the live events (one run id per materialization)
    _, doc = cli_json(capsys, "audit", "export-lineage", "champion")
    exported = {(e["job"]["name"], e["run"]["runId"]) for e in doc["event_list"]}
    live = {(e["job"]["name"], e["run"]["runId"]) for e in mine}
    assert ("adult/training_data", next(r for j, r in live if j == "adult/training_data")) in exported


def test_override_needs_a_justification_is_recorded_and_shown_in_the_card(world, capsys):
    from mlgov_assets.core.audit.modelcard.schema import bundle_digest

    first = world.champion
    reg, log = world.registry, world.env.settings().decision_log
    # the card built during the module's training run describes the champion's evidence and promotion
    md1, bundle1 = _card(world, first)
    assert f"Model card: {reg.name} version {first}" in md1
    assert bundle_digest(bundle1) == reg.version_info(first).tags["mlgov.model_card_sha256"]
    assert "promotion" in [d["kind"] for d in bundle1["decisions"]]
    assert "groups" in bundle1["fairness"] and bundle1["explanations"]["top_features"]  # recorded -> shown
    # a weak challenger: its candidate falls below the floors, is refused, and is still registered
    weak = run_path(world.env, world.instance, params=WEAK_PARAMS)
    assert not weak.success
    target = max(reg.versions())
    assert reg.champion_version() == first and reg.gate_records(target)["metric_floors"].passed is False
    # an override without a written justification is refused (usage error) and changes nothing
    code, out = cli(capsys, "promote", "--version", str(target), "--override", "   ")
    assert code == 2 and "justification" in out and reg.champion_version() == first
    # no override: the failed gate refuses the promotion (logged as a rejection)
    code, out = cli(capsys, "promote", "--version", str(target))
    assert code == 1 and reg.champion_version() == first
    assert json.loads(_lines(log)[-1])["kind"] == "rejection"
    # with a justification: promoted, recorded as an override with who and why
    why = "Regulator-approved exception REF-2026-17: interim model while the data fix ships"
    code, out = cli(capsys, "promote", "--version", str(target), "--override", why, "--reason", "incident 99")
    assert code == 0, out
    assert reg.champion_version() == target
    rec = json.loads(_lines(log)[-1])
    assert (rec["kind"], rec["reason"], rec["model_version"]) == ("override", why, str(target))
    assert any("metric_floors" in b for b in rec["payload"]["blockers_overridden"])
    assert "mlgov promote --override" in rec["actor"]
    # the audit of the overridden champion passes, flagging the override (a warning, not a break)
    code, report = audit_json(capsys, "champion")
    assert code == 0 and report["version"] == target, report["broken"]
    checks = next(x for x in report["links"] if x["name"] == "checks")
    assert checks["status"] == "warn" and "OVERRIDE" in checks["summary"]
    assert cli(capsys, "audit", "verify")[0] == 0
    # the refreshed cards show it: the evidence bundle, the Markdown, and the Dagster UI metadata
    code, out = cli_json(capsys, "audit", "cards")
    assert code == 0, out
    cards = {c["version"]: c for c in out["cards"]}
    assert set(cards) == set(reg.versions())
    assert cards[target]["rebuilt"] and cards[target]["overrides"] == 1
    md2, bundle2 = _card(world, target)
    override = next(d for d in bundle2["decisions"] if d["kind"] == "override")
    assert override["reason"] == why and override["source"]["sha256"] == rec["hash"]
    assert "OVERRIDE" in md2 and why.split(":")[0] in md2
    assert any(g["name"] == "metric_floors" and g["passed"] is False for g in bundle2["gates"])
    assert "not_available" in bundle2["explanations"]  # never explained: stated, not hidden
    mat = world.instance.get_latest_materialization_event(AssetKey(["adult", "model_cards"])).asset_materialization
    assert f"Model card: {reg.name} version {target}" in mat.metadata["champion_card"].value
    assert "OVERRIDE" in mat.metadata["champion_card"].value
    # unchanged evidence -> nothing republished on the next refresh
    code, out = cli_json(capsys, "audit", "cards")
    assert code == 0 and not any(c["rebuilt"] for c in out["cards"])
