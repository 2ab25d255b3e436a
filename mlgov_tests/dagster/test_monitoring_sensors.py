"""Monitoring sensors on a real instance (instance_for_test + build_sensor_context), and the helpers the
other monitoring tests share: a lean policy, landing files, sensor ticks, and
running a sensor's RunRequest in-process the way the daemon would launch it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    SkipReason,
    build_sensor_context,
    instance_for_test,
)

from mlgov_assets.core.integrity import md5_file
from mlgov_assets.core.monitoring.batches import labels_filename, simulate_batch
from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringPaths
from mlgov_assets.core.monitoring.retraining import read_retrain_requests
from mlgov_tests.conftest import check_results
from mlgov_tests.core.monitoring.helpers import ADULT, read_adult

#: The default policy's thresholds for drift and monitoring, without the fairness section and with
#: explanations on a subsample, so a whole governed path costs seconds, not a minute. The
#: comparison is a template: tests choose one the retrained model can meet, or one it cannot.
POLICY = """\
policy_version: 1
description: monitoring test policy
metric_floors:
  roc_auc: {{min: 0.90}}
  accuracy: {{min: 0.84}}
  log_loss: {{max: 0.33}}
champion_comparison:
  roc_auc:
    greater_is_better: true
    {comparison}
explanations:
  additivity_tolerance: 1.0e-6
  max_rows: 200
drift:
  bins: 10
  numeric_method: wasserstein
  categorical_method: jensenshannon
  wasserstein_threshold: 0.1
  jensenshannon_threshold: 0.1
  psi_warn: 0.1
  psi_act: 0.25
  p_value: 0.05
  dataset_drift_share: 0.5
  prediction_psi_act: 0.25
monitoring:
  performance_tolerance: {{accuracy: 0.05, roc_auc: 0.05}}
  min_batch_rows: 200
  summary_last_n_batches: 20
  retrain_on: [dataset_drift, performance]
"""
#: Floors still apply; the comparison only asks for the threshold, which any model above the floors
#: meets. (The default's +0.0005 over the champion may or may not be met by a model retrained on
#: reference + drifted rows, which would make a "champion moves" test flaky.)
MEETABLE = POLICY.format(comparison="threshold: 0.90")
#: +0.05 ROC AUC over the champion: no retrained Adult model gets there, so the gate refuses it.
IMPOSSIBLE = POLICY.format(comparison="threshold: 0.90\n    min_absolute_change: 0.05")


def land(landing: Path, name: str, frame: pd.DataFrame) -> Path:
    """Write a landing file, dated a minute ago (past the sensor's settle time)."""
    landing.mkdir(parents=True, exist_ok=True)
    path = landing / name
    frame.to_csv(path, index=False)
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


def tick(defs, name: str, instance, cursor=None):
    """One sensor evaluation, as the daemon does it (returns the SensorResult)."""
    context = build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources={"mlgov": defs.resources["mlgov"]}
    )
    return defs.resolve_sensor_def(name)(context)


def execute(defs, instance, request, sensor_name: str):
    """Launch a sensor's RunRequest in-process, tagged as the daemon tags it (run key + sensor name),
    after applying nothing else: dynamic partitions must already exist."""
    sensor = defs.resolve_sensor_def(sensor_name)
    job_name = request.job_name or sensor.job_name
    tags = {**request.tags, "dagster/run_key": request.run_key, "dagster/sensor_name": sensor_name}
    return defs.resolve_job_def(job_name).execute_in_process(
        run_config=request.run_config,
        instance=instance,
        partition_key=request.partition_key,
        asset_selection=request.asset_selection,
        tags=tags,
        raise_on_error=False,
    )


def apply_partitions(instance, result) -> None:
    for req in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))


def stored(env, instance, asset: str, batch_id: str, wanted: type = dict):
    """A batch asset's value as its op stored it (where the IO manager keeps asset values)."""
    from mlgov_assets.defs.monitoring.batch_job import BatchStore
    from mlgov_assets.defs.scope import ProjectScope
    from mlgov_assets.io_manager import MlgovIOManager

    io = MlgovIOManager(base_dir=str(env.home / "assets"))
    return BatchStore(io, ProjectScope("adult", env.project), batch_id, instance).load(asset, wanted)


def materialized_partitions(instance, asset: str) -> set[str]:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(["adult", asset])), limit=1000
    ).records
    return {r.partition_key for r in records}


# =========================================================================== sensor tests
# The landing sensor needs no champion: these run on a real instance and a real temp project,
# with the ledger standing in for finished batch runs where a test needs one.

DATA = Path(__file__).resolve().parents[2] / "data"
LANDING = "adult__batch_landing_sensor"
RETRAIN = "adult__retrain_on_breach_sensor"


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    return read_adult(DATA / "adult.test")


def _requests(result) -> list:
    return list(result.run_requests or []) if not isinstance(result, SkipReason) else []


def test_monitoring_definitions_are_on_by_default_and_wired(env):
    defs = env.defs()
    for name in (LANDING, RETRAIN):
        sensor = defs.resolve_sensor_def(name)
        assert sensor.default_status == DefaultSensorStatus.RUNNING
        assert 3 <= sensor.minimum_interval_seconds <= 15  # every daemon loop (5 s), never a busy loop
    assert defs.resolve_sensor_def(RETRAIN).job_name == "adult__governed_training"
    for name in ("adult__daily_monitoring_summary_schedule", "adult__champion_reevaluation_schedule"):
        assert defs.resolve_schedule_def(name).default_status == DefaultScheduleStatus.RUNNING
    job = defs.resolve_job_def("adult__monitor_batch")
    assert job.partitions_def.name == "adult__batches"
    names = ("batch_data", "batch_scores", "batch_drift", "batch_performance", "batch_drift_report")
    assert {n.name for n in job.nodes} == {f"adult__{n}" for n in names}
    assert {n.name for n in defs.resolve_job_def("adult__batch_labels").nodes} == {"adult__batch_performance"}
    # the batch assets are external: in the lineage with their checks, never in the UI's "Materialize all"
    graph = defs.get_repository_def().asset_graph
    for name in names:
        node = graph.get(AssetKey(["adult", name]))
        assert not node.is_executable and node.partitions_def.name == "adult__batches"
    # the drift verdict is judged before scoring: from the batch and the champion, not the scores
    assert graph.get(AssetKey(["adult", "batch_drift"])).parent_keys == {
        AssetKey(["adult", "batch_data"]),
        AssetKey(["adult", "champion"]),
    }
    assert graph.get(AssetKey(["adult", "batch_scores"])).parent_keys == {
        AssetKey(["adult", "batch_data"]),
        AssetKey(["adult", "batch_drift"]),
        AssetKey(["adult", "champion"]),
    }
    checks = {(k.asset_key.path[-1], k.name) for k in graph.asset_check_keys if k.asset_key.path[0] == "adult"}
    assert {
        ("batch_data", "check_batch_data_schema"),
        ("batch_drift", "check_batch_drift_within_policy"),
        ("batch_performance", "check_batch_performance_within_tolerance"),
    } <= checks


def test_a_new_file_is_one_partition_and_one_run_and_the_same_file_again_nothing(env, holdout):
    defs = env.defs()
    landing = env.settings().landing_dir
    batch, _ = simulate_batch(ADULT, "none", holdout, 300, 0)
    path = land(landing, "b-1.csv", batch)
    land(landing, "README.txt", batch)
    with instance_for_test() as instance:
        first = tick(defs, LANDING, instance)
        [req] = _requests(first)
        assert (req.job_name, req.partition_key) == ("adult__monitor_batch", "b-1")
        md5 = md5_file(path)
        assert req.run_key == f"batch-b-1-{md5[:12]}"
        [add] = first.dynamic_partitions_requests
        assert (add.partitions_def_name, list(add.partition_keys)) == ("adult__batches", ["b-1"])
        apply_partitions(instance, first)
        assert instance.get_dynamic_partitions("adult__batches") == ["b-1"]
        assert json.loads(first.cursor)["README.txt"]["outcome"] == "refused"

        # the same file again: nothing (cursor), for as many ticks as it takes
        cursor = first.cursor
        for _ in range(2):
            again = tick(defs, LANDING, instance, cursor)
            assert not _requests(again) and not again.dynamic_partitions_requests
            cursor = again.cursor
        # a daemon restart before the run finished: the same run key again, which Dagster launches once
        restarted = tick(defs, LANDING, instance, None)
        assert [r.run_key for r in _requests(restarted)] == [req.run_key]
        assert not restarted.dynamic_partitions_requests  # the partition already exists

        # once the ledger has the batch done, even a fresh cursor asks for nothing
        BatchLedger(MonitoringPaths.of(env.settings())).update("b-1", md5=md5, status="scored", drift={"breach": False})
        assert not _requests(tick(defs, LANDING, instance, None))


def test_delayed_labels_request_only_the_performance_asset(env, holdout):
    defs = env.defs()
    landing = env.settings().landing_dir
    batch, labels = simulate_batch(ADULT, "none", holdout, 300, 1, with_labels=True)
    path = land(landing, "b-2.csv", batch)
    with instance_for_test() as instance:
        first = tick(defs, LANDING, instance)
        apply_partitions(instance, first)
        BatchLedger(MonitoringPaths.of(env.settings())).update(
            "b-2", md5=md5_file(path), status="scored", drift={"breach": False}
        )  # its batch run finished
        land(landing, labels_filename("b-2"), labels)
        later = tick(defs, LANDING, instance, first.cursor)
        [req] = _requests(later)
        assert (req.job_name, req.partition_key) == ("adult__batch_labels", "b-2")
        assert req.run_key.startswith("labels-b-2-") and not later.dynamic_partitions_requests
        assert not _requests(tick(defs, LANDING, instance, later.cursor))


def test_a_schema_broken_batch_is_quarantined_never_scored_and_triggers_no_retraining(env, holdout):
    defs = env.defs()
    landing = env.settings().landing_dir
    path = land(landing, "broken-1.csv", simulate_batch(ADULT, "broken", holdout, 300, 3)[0])
    with instance_for_test() as instance:
        result = tick(defs, LANDING, instance)
        apply_partitions(instance, result)
        [req] = _requests(result)
        run = execute(defs, instance, req, LANDING)
        assert not run.success
        check = check_results(run)["check_batch_data_schema"]
        assert not check.passed and check.severity.value == "ERROR"
        assert "occupation" in check.description and "column_in_dataframe" in check.description
        evidence = check.metadata["evidence"].value
        assert {f["column"] for f in evidence["failures"]} >= {"occupation", "age", "workclass", "hours_per_week"}
        qdir = MonitoringPaths.of(env.settings()).quarantine_dir("broken-1")
        assert check.metadata["quarantine_dir"].value == str(qdir)
        report = json.loads((qdir / "failure_report.json").read_text())
        assert report["batch_id"] == "broken-1" and not report["report"]["passed"]
        assert (qdir / "broken-1.csv").exists() and not path.exists()
        # never scored: the blocking check stopped everything downstream
        assert materialized_partitions(instance, "batch_data") == {"broken-1"}
        for asset in ("batch_scores", "batch_drift", "batch_performance", "batch_drift_report"):
            assert materialized_partitions(instance, asset) == set()
        entry = BatchLedger(MonitoringPaths.of(env.settings())).get("broken-1")
        assert entry["status"] == "quarantined" and "drift" not in entry and entry.get("champion_version") is None
        # and no retraining: nothing to request, now or on later ticks
        retrain = tick(defs, RETRAIN, instance)
        assert not _requests(retrain) and not read_retrain_requests(MonitoringPaths.of(env.settings()))
        # its file left the landing folder: the next landing tick has nothing to do either
        assert not _requests(tick(defs, LANDING, instance, result.cursor))


def test_a_retraining_request_becomes_a_valid_governed_training_run_config(env):
    """Core records the request; the Dagster layer alone knows the job's op names."""
    from dagster import validate_run_config

    from mlgov_assets.core.monitoring.retraining import RetrainRequest
    from mlgov_assets.defs.monitoring.sensors import RETRAIN_JOB, retrain_run_config, retrain_run_tags

    params = {"learning_rate": 0.15, "max_iter": 60, "max_depth": None, "random_state": 0}
    req = RetrainRequest(
        at="2026-01-01T00:00:00+00:00",
        run_key="retrain-" + "a" * 24,
        champion_version=3,
        trigger_batch_ids=["drifted"],
        dataset="data/generated/retrain-" + "a" * 24 + ".csv",
        params=params,
        trigger=RETRAIN,
        policy_sha256="p",
    )
    config = retrain_run_config(req)
    assert config == {
        "ops": {
            "training_data": {"config": {"path": req.dataset}},
            "challenger_model": {"config": params},
        }
    }
    assert retrain_run_config(req.model_copy(update={"params": {}})) == {
        "ops": {"training_data": {"config": {"path": req.dataset}}}
    }
    validate_run_config(env.defs().resolve_job_def(f"adult__{RETRAIN_JOB}"), config)  # raises if an op name drifted
    assert retrain_run_tags(req) == {
        "mlgov/trigger": RETRAIN,
        "mlgov/retrain_key": req.run_key,
        "mlgov/retrain_batches": "drifted",
        "mlgov/retrain_champion": "3",
    }


def test_one_shot_ticks_keep_the_cursor_where_the_daemon_reads_it(env, holdout):
    """``mlgov monitor --once`` evaluates the real sensor: the cursor lands in the instance's
    instigator state under the daemon's selector, and the next one-shot tick starts from it."""
    from dagster._core.definitions.selector import InstigatorSelector

    from mlgov_assets.defs.monitoring.once import evaluate_once

    defs = env.defs()
    land(env.settings().landing_dir, "b-9.csv", simulate_batch(ADULT, "none", holdout, 300, 9)[0])
    with instance_for_test() as instance:
        first = evaluate_once(defs, instance, LANDING, project_dir=env.project)
        assert [(r.job_name, r.partition_key) for r in first.requests] == [("adult__monitor_batch", "b-9")]
        assert instance.get_dynamic_partitions("adult__batches") == ["b-9"]
        selector = InstigatorSelector(location_name="mlgov", repository_name="__repository__", name=LANDING)
        [state] = [s for s in instance.all_instigator_state() if s.selector_id == selector.get_id()]
        assert state.instigator_data.cursor == first.cursor
        assert json.loads(first.cursor)["b-9.csv"]["outcome"] == "requested"
        again = evaluate_once(defs, instance, LANDING, project_dir=env.project)
        assert not again.requests and again.skip_message  # the stored cursor was read back
