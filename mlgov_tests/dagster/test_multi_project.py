"""Several governed projects in one code location: prefixed keys, per-project groups, jobs, sensors,
schedules and partitions; two projects trained side by side in ONE Dagster instance and MLflow store,
each promoting its own champion; `mlgov status` lists both; an old state layout gets a notice."""

from __future__ import annotations

import json
import shutil

import pytest
from dagster import AssetKey, AssetSelection

from mlgov_assets.cli import main
from mlgov_tests.conftest import FAST_PARAMS, REPO, _git

PROJECTS = ("adult", "credit_default")


def test_each_project_has_its_own_graph_jobs_sensors_and_partitions(env):
    defs = env.defs()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for p in PROJECTS:
        assert {f"{p}/training_data", f"{p}/champion", f"{p}/batch_data", f"{p}/model_cards"} <= keys
        assert graph.get(AssetKey([p, "champion"])).group_name == f"{p}__governance"
        # the governed path of one project never touches another's assets
        job = defs.resolve_job_def(f"{p}__governed_training")
        selected = {k.path[0] for k in job.asset_layer.selected_asset_keys}
        assert selected == {p}
        upstream = AssetSelection.assets(AssetKey([p, "champion"])).upstream().resolve(graph)
        assert {k.path[0] for k in upstream} == {p}
        assert defs.resolve_job_def(f"{p}__monitor_batch").partitions_def.name == f"{p}__batches"
        for sensor in ("batch_landing_sensor", "retrain_on_breach_sensor", "source_files_sensor"):
            defs.resolve_sensor_def(f"{p}__{sensor}")
        defs.resolve_schedule_def(f"{p}__champion_reevaluation_schedule")
    assert not any(len(k.path) == 1 for k in graph.get_all_asset_keys())  # no unprefixed asset left


def test_the_location_can_be_restricted_to_some_projects(env, monkeypatch):
    monkeypatch.setenv("MLGOV_PROJECTS", "credit_default")
    from mlgov_assets.defs.scope import location_projects

    # the selected project (the default, Adult) is always served, so its commands keep working
    assert sorted(s.name for s in location_projects(env.project)) == ["adult", "credit_default"]
    monkeypatch.setenv("MLGOV_PROJECT_SPEC", str(REPO / "mlgov_assets" / "projects" / "credit_default.yaml"))
    assert [s.name for s in location_projects(env.project)] == ["credit_default"]


@pytest.fixture
def two_projects(env):
    """The Adult test project with the credit-default data DVC-tracked beside it."""
    from dvc.repo import Repo

    shutil.copyfile(REPO / "data" / "credit_default.csv", env.project / "data" / "credit_default.csv")
    with Repo(str(env.project)) as dvc:
        dvc.add([str(env.project / "data" / "credit_default.csv")])
    _git(env.project, "add", "-A")
    _git(env.project, "commit", "-qm", "credit data")
    return env


def test_two_projects_train_side_by_side_in_one_instance(two_projects, capsys, monkeypatch):
    from mlgov_assets.core.settings import get_settings
    from mlgov_assets.instance import get_instance

    env = two_projects
    instance = get_instance(env.settings())  # the persistent instance of the location
    defs = env.defs()
    try:
        for project, params in (("adult", FAST_PARAMS), ("credit_default", None)):
            cfg = {"ops": {"challenger_model": {"config": params}}} if params else {}
            result = defs.resolve_job_def(f"{project}__governed_training").execute_in_process(
                run_config=cfg, instance=instance, raise_on_error=False
            )
            assert result.success, [c.description for c in result.get_asset_check_evaluations() if not c.passed]
            assert {e.asset_key.path[0] for e in result.get_asset_materialization_events()} == {project}
        # one Dagster instance holds both projects' materializations
        for project in PROJECTS:
            assert instance.get_latest_materialization_event(AssetKey([project, "champion"])) is not None
    finally:
        instance.dispose()
    with monkeypatch.context() as m:  # the credit policy is in approval mode: two approvals make it champion
        m.delenv("MLGOV_POLICY")  # the Adult test policy would override credit's own for `--project credit_default`
        for who in ("alice", "bob"):
            m.setenv("MLGOV_ACTOR", who)
            assert main(["approve", "--project", "credit_default", "--version", "1", "--reason", "reviewed"]) == 0

    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    rows = {r["project"]: r for r in status["projects"]}
    assert set(rows) == set(PROJECTS)
    assert rows["adult"]["selected"] is True and rows["credit_default"]["selected"] is False
    assert rows["adult"]["champion"] == status["champion"]["version"]
    assert rows["credit_default"]["champion"] == 1 and rows["credit_default"]["registered_model"] == (
        "mlgov-credit-default"
    )
    # one MLflow store, one registered model per project; decision logs and ledgers per project
    adult = get_settings()
    credit = get_settings(project_spec=REPO / "mlgov_assets" / "projects" / "credit_default.yaml")
    assert adult.tracking_uri == credit.tracking_uri and adult.model_name != credit.model_name
    assert credit.home == adult.home / "projects" / "credit_default"
    assert credit.decision_log.exists() and credit.decision_log != adult.decision_log
    assert (adult.assets_dir / "credit_default" / "training_data.parquet").exists()

    capsys.readouterr()
    assert main(["status", "--project", "credit_default", "--json"]) == 0
    credit_status = json.loads(capsys.readouterr().out)
    assert credit_status["model_name"] == "mlgov-credit-default" and credit_status["champion"]["version"] == 1
    assert credit_status["notices"] == []


def test_an_old_state_layout_gets_a_notice_and_keeps_working(env, capsys):
    from dagster import AssetMaterialization

    from mlgov_assets.instance import get_instance

    old_project_home = env.home / "projects" / "credit_default" / "dagster"
    old_project_home.mkdir(parents=True)
    instance = get_instance(env.settings())
    try:  # history from before the prefixes: an unprefixed champion materialization
        instance.report_runless_asset_event(AssetMaterialization(asset_key="champion"))
    finally:
        instance.dispose()
    capsys.readouterr()
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "before projects were prefixed (champion)" in out and "Nothing to run" in out
    assert (
        f"project credit_default: its Dagster history from before the shared code location is in {old_project_home}"
        in (out.replace("\n", " "))
    )
