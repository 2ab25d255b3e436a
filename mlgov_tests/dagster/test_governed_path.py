"""The governed training path end to end: real Dagster instance, real MLflow store, real DVC
repo, all in temporary directories."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
from dagster import AssetKey, instance_for_test

from mlgov_assets.core.audit.decision_log import DecisionLog
from mlgov_assets.core.integrity import md5_file, sha256_file, verify_dvc_cached
from mlgov_assets.core.project.reader import read_raw
from mlgov_tests.conftest import check_results, run_path

SHIPPED_TRAIN_MD5 = "5d7c39d7b8804f071cdd1f2a7c460872"  # data/README.md, shared/README.md


def test_whole_path_ends_with_a_champion_carrying_its_lineage(trained):
    env, result = trained.env, trained.result
    with instance_for_test(temp_dir=str(trained.instance_dir)) as instance:
        assert result.success
        assert all(c.passed for c in result.get_asset_check_evaluations())
        reg = env.registry()
        champ = reg.champion_version()
        assert champ == 1
        tags = reg.version_info(champ).tags
        assert tags["mlgov.train_data_md5"] == md5_file(env.project / "data" / "adult.data") == SHIPPED_TRAIN_MD5
        assert tags["mlgov.git_commit"] == env.commit
        assert tags["mlgov.git_dirty"] == "false"
        assert tags["mlgov.policy_sha256"] == env.policy_obj().sha256
        assert tags["mlgov.dagster_run_id"] == result.run_id
        # the project spec it was trained under: named, hashed and recorded next to the policy
        spec = env.settings().project_spec
        assert tags["mlgov.project"] == "adult"
        assert tags["mlgov.project_sha256"] == hashlib.sha256(spec.read_bytes()).hexdigest()
        assert reg.artifact_text(reg.version_info(champ).run_id, "project/project.yaml") == spec.read_text()
        # the training data's DataVersion is the DVC md5, and the bytes are in the DVC cache
        mat = instance.get_latest_materialization_event(AssetKey(["adult", "training_data"])).asset_materialization
        assert mat.tags["dagster/data_version"] == SHIPPED_TRAIN_MD5
        ok, detail = verify_dvc_cached(env.project / ".dvc" / "cache", SHIPPED_TRAIN_MD5)
        assert ok, detail
        # feature assets carry row counts and column schemas
        mat = instance.get_latest_materialization_event(AssetKey(["adult", "train_features"])).asset_materialization
        assert mat.metadata["dagster/row_count"].value == 32561
        assert {c.name for c in mat.metadata["dagster/column_schema"].schema.columns} >= {"age", "label", "sex"}
        # the promotion is in the hash-chained decision log
        log = DecisionLog(env.settings().decision_log)
        assert log.verify().ok
        assert [r["kind"] for r in log.records()].count("promotion") == 1


def test_identical_rematerialization_creates_no_second_version_or_promotion(trained):
    env = trained.env
    with instance_for_test(temp_dir=str(trained.instance_dir)) as instance:
        second = run_path(env, instance)
        assert second.success
        assert second.output_for_node("champion")["promoted"] is False
        reg = env.registry()
        assert reg.versions() == [1]
        assert reg.champion_history() == [1]
        kinds = [r["kind"] for r in DecisionLog(env.settings().decision_log).records()]
        assert kinds.count("promotion") == 1


def _corrupt(env) -> str:
    from mlgov_tests.core._adult_fixtures import adult_project

    df = read_raw(adult_project(), env.project / "data" / "adult.data")
    df.loc[5, "age"] = "7"  # out of range (17-90)
    df.loc[11, "workclass"] = "Pirate"  # not a category in the project spec
    df.loc[17, "income"] = None  # NaN label
    df = df.drop(columns=["hours_per_week"])  # missing column
    path = env.project / "data" / "generated" / "corrupt.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return "data/generated/corrupt.csv"


def test_corrupted_data_fails_the_validation_gate_and_changes_nothing(trained):
    env = trained.env
    with instance_for_test(temp_dir=str(trained.instance_dir)) as instance:
        reg = env.registry()
        before = (reg.versions(), reg.champion_version())
        result = run_path(env, instance, dataset=_corrupt(env))
        assert not result.success
        check = check_results(result)["check_training_data_schema"]
        assert not check.passed
        assert check.severity.value == "ERROR"
        text = check.description
        for fragment in (
            "'age'",
            "greater_than_or_equal_to(17)",
            "'workclass'",
            "isin",
            "'hours_per_week'",
            "column_in_dataframe",
            "'income'",
            "not_nullable",
            "rows [5]",
            "rows [11]",
            "rows [17]",
        ):
            assert fragment in text, (fragment, text)
        assert "corrupt.csv" in text  # names the file
        # nothing downstream ran: no features, no new model, champion unchanged
        materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
        assert "training_data" in materialized  # written, then audited (write -> audit -> publish)
        assert not materialized & {"train_features", "challenger_model", "candidate_model", "champion"}
        assert (reg.versions(), reg.champion_version()) == before


def test_below_floor_and_not_better_challengers_are_refused(trained):
    env = trained.env
    with instance_for_test(temp_dir=str(trained.instance_dir)) as instance:
        reg = env.registry()
        # 1) below the policy floors (tiny model): refused with the failing metric named
        weak = run_path(env, instance, params={"max_iter": 15, "max_leaf_nodes": 4})
        assert not weak.success
        checks = check_results(weak)
        assert not checks["check_challenger_model_metric_floors"].passed
        assert "roc_auc" in checks["check_challenger_model_metric_floors"].description
        assert reg.champion_version() == 1
        weak_version = max(reg.versions())
        assert reg.gate_records(weak_version)["metric_floors"].passed is False
        assert "mlgov.gate.metric_floors.summary" in reg.version_info(weak_version).tags
        # 2) above the floors but not better than the champion by the policy's margin
        same_ish = run_path(env, instance, params={"max_iter": 60, "learning_rate": 0.15, "random_state": 1})
        checks = check_results(same_ish)
        assert checks["check_challenger_model_metric_floors"].passed
        assert not checks["check_challenger_model_beats_champion"].passed
        assert not same_ish.success
        assert reg.champion_version() == 1
        assert reg.champion_history() == [1]


def test_a_better_challenger_is_promoted_and_rollback_restores_the_previous(env):
    with instance_for_test() as instance:
        assert run_path(env, instance, params={"max_iter": 40, "learning_rate": 0.1}).success
        reg = env.registry()
        first = reg.champion_version()
        better = run_path(env, instance, params={"max_iter": 200, "learning_rate": 0.1})
        assert better.success, [c.description for c in better.get_asset_check_evaluations()]
        second = reg.champion_version()
        assert second != first
        assert reg.champion_history() == [first, second]
        rb = run_path(
            env,
            instance,
            job="adult__champion_decision",
            run_config={"ops": {"champion": {"config": {"action": "rollback", "reason": "incident 42"}}}},
        )
        assert rb.success
        assert reg.champion_version() == first
        last = DecisionLog(env.settings().decision_log).records()[-1]
        assert (last["kind"], last["reason"], last["model_version"]) == ("rollback", "incident 42", str(first))


def test_stored_asset_values_are_data_not_pickles(trained):
    env = trained.env  # the governed path ran once (asserted successful where the world is built)
    stored = sorted(p.suffix for p in (env.home / "assets").rglob("*") if p.is_file())
    assert stored and set(stored) <= {".parquet", ".json"}
    # the lineage travels in a JSON sidecar naming the table's bytes, not in DataFrame.attrs
    table = env.home / "assets" / "adult" / "train_features.parquet"
    side = json.loads((env.home / "assets" / "adult" / "train_features.lineage.json").read_text())
    assert side["lineage"]["dvc_md5"] == SHIPPED_TRAIN_MD5 and side["table_sha256"] == sha256_file(table)
    assert len(pd.read_parquet(table)) == 32561


def test_a_split_holdout_is_cut_from_the_training_file_and_recorded(env):
    """A spec without a holdout file: both data assets cut the training file with the seeded split,
    both carry its record, and the holdout's source asset observes the training file."""
    import yaml
    from dagster import build_sensor_context

    from mlgov_assets.core.settings import DEFAULT_PROJECT_SPEC
    from mlgov_assets.definitions import build_definitions
    from mlgov_assets.defs.data import source_files_sensor
    from mlgov_assets.defs.scope import ProjectScope
    from mlgov_assets.io_manager import MlgovIOManager
    from mlgov_assets.resources import MlgovResource

    doc = yaml.safe_load(DEFAULT_PROJECT_SPEC.read_text())
    doc["data"]["holdout"] = {"fraction": 0.25, "seed": 5}
    doc["policy"] = str(env.policy)
    spec = env.project / "split.yaml"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    mlgov = MlgovResource(
        home=str(env.home), project_dir=str(env.project), policy_path=str(env.policy), project_spec=str(spec)
    )
    defs = build_definitions(mlgov, MlgovIOManager(base_dir=str(env.home / "assets")))
    with instance_for_test() as instance:
        result = defs.resolve_job_def("adult__governed_training").execute_in_process(
            instance=instance,
            asset_selection=[AssetKey(["adult", "training_data"]), AssetKey(["adult", "holdout_data"])],
            raise_on_error=False,
        )
        assert result.success
        checks = check_results(result)
        assert set(checks) == {"check_training_data_schema", "check_holdout_data_schema"}
        assert all(c.passed for c in checks.values())
        sides = {
            role: json.loads((env.home / "assets" / "adult" / f"{role}_data.lineage.json").read_text())["lineage"]
            for role in ("training", "holdout")
        }
        assert sides["training"]["split"] == sides["holdout"]["split"] is not None
        assert sides["training"]["source"] == sides["holdout"]["source"] == "data/adult.data"
        assert sides["holdout"]["dvc_md5"] == SHIPPED_TRAIN_MD5 and sides["holdout"]["role"] == "holdout"
        record = sides["holdout"]["split"]
        rows = {
            role: len(pd.read_parquet(env.home / "assets" / "adult" / f"{role}_data.parquet"))
            for role in ("training", "holdout")
        }
        assert rows["holdout"] == record["holdout_rows"] and rows["training"] + rows["holdout"] == 32561
        assert abs(rows["holdout"] / 32561 - 0.25) < 0.001 and (record["seed"], record["fraction"]) == (5, 0.25)
        # the holdout's source asset observes the training file
        ctx = build_sensor_context(instance=instance, resources={"mlgov": mlgov})
        sensor = source_files_sensor(ProjectScope("adult", spec))
        events = {e.asset_key.to_user_string(): e.tags["dagster/data_version"] for e in sensor(ctx).asset_events}
        assert events == {"adult/training_file": SHIPPED_TRAIN_MD5, "adult/holdout_file": SHIPPED_TRAIN_MD5}
