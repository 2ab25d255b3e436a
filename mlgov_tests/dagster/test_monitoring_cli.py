"""`mlgov simulate` and `mlgov monitor --once` through ``mlgov_assets.cli.main``, in-process, against
the persistent instance under the test's MLGOV_HOME (what a cron job without a daemon would do)."""

from __future__ import annotations

import json

import pandas as pd

from mlgov_assets.cli import main
from mlgov_assets.core.monitoring.batches import read_labels
from mlgov_assets.core.monitoring.ledger import MonitoringPaths
from mlgov_assets.core.monitoring.retraining import read_retrain_requests
from mlgov_tests.core.monitoring.helpers import ADULT, read_adult
from mlgov_tests.dagster.test_monitoring_sensors import MEETABLE


def _run(capsys, argv: list[str]) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(argv)
    return rc, capsys.readouterr().out


def test_simulate_writes_realistic_batches_into_the_landing_folder(env, capsys):
    rc, out = _run(capsys, ["simulate", "--kind", "covariate", "--rows", "800", "--seed", "3", "--labels"])
    assert rc == 0
    batch_path, labels_path = out.split()
    landing = env.home / "incoming"  # follows MLGOV_HOME
    assert batch_path.startswith(str(landing)) and labels_path.endswith(".labels.csv")
    batch = read_adult(batch_path)
    assert len(batch) == 800 and "income" not in batch.columns  # labels are delayed
    holdout = read_adult(env.project / "data" / "adult.test")
    assert pd.to_numeric(batch["age"]).mean() > pd.to_numeric(holdout["age"]).mean() + 5  # older applicants
    labels = read_labels(ADULT, labels_path)
    assert list(labels["row_id"]) == list(range(800))
    rc, out = _run(capsys, ["simulate", "--kind", "label", "--rows", "500", "--seed", "3", "--json"])
    doc = json.loads(out)
    assert rc == 0 and doc["labels"]  # label drift is only visible with labels: always written
    assert (read_labels(ADULT, doc["labels"])["income"] == ">50K").mean() > 0.4  # adult.test has ~0.24
    rc, _ = _run(capsys, ["simulate", "--kind", "none", "--batch-id", doc["batch_id"]])
    assert rc == 2  # batches are immutable: an existing id is refused


def test_monitor_once_does_what_the_sensors_do_retraining_included(env, capsys, monkeypatch):
    # the CLI points DAGSTER_HOME/MLGOV_* at the state dir for its process; keep that inside this test
    monkeypatch.setenv("DAGSTER_HOME", str(env.home / "dagster"))
    monkeypatch.setenv("MLGOV_LANDING_DIR", str(env.home / "incoming"))
    env.write_policy(MEETABLE)
    assert main(["train", "--set", "max_iter=60", "--set", "learning_rate=0.15"]) == 0
    for argv in (
        ["--kind", "covariate", "--rows", "2500", "--seed", "7", "--labels"],
        ["--kind", "broken", "--rows", "300", "--seed", "1", "--batch-id", "broken-1"],
        ["--kind", "none", "--rows", "1500", "--seed", "2", "--batch-id", "calm-1"],
    ):
        assert main(["simulate", *argv]) == 0

    rc, out = _run(capsys, ["monitor", "--once", "--json"])
    report = json.loads(out)
    assert rc == 1  # a batch was quarantined: a gate refused something, a person should look
    by_id = {b["batch_id"]: b for b in report["batches"]}
    assert len(by_id) == 3
    assert by_id["broken-1"]["status"] == "quarantined" and by_id["broken-1"]["drift"] is None
    assert by_id["calm-1"]["drift"]["verdict"] == "ok" and not by_id["calm-1"]["performance"]["labelled"]
    [cov] = [b for b in report["batches"] if b["batch_id"].startswith("sim-covariate-")]
    assert cov["drift"]["breach"] and cov["performance"]["n_labelled"] == 2500
    [run] = report["retraining"]["runs"]
    assert run["success"] and run["champion_after"] != run["champion_before"] == 1
    assert report["retraining"]["decision"]["plan"]["trigger_batch_ids"] == [cov["batch_id"]]
    # the run carries the sensor's run key: a daemon started later will not retrain again
    from dagster import DagsterInstance, RunsFilter

    instance = DagsterInstance.get()  # the persistent instance under $MLGOV_HOME/dagster
    try:
        [dagster_run] = instance.get_runs(filters=RunsFilter(tags={"dagster/run_key": run["run_key"]}))
        assert dagster_run.tags["mlgov/trigger"] == "mlgov monitor --once"
        assert set(instance.get_dynamic_partitions("adult__batches")) == set(by_id)
        every_run = {r.run_id: r for r in instance.get_runs()}
    finally:
        instance.dispose()
    # OpenLineage (issue 12): every run the commands executed, monitoring included, was emitted once
    from mlgov_tests.openlineage_schema import problems

    events = [json.loads(line) for line in (env.home / "openlineage" / "events.jsonl").read_text().splitlines()]
    assert problems(events) == []
    ends = [e for e in events if e["run"]["runId"] in every_run and e["eventType"] != "START"]
    assert sorted(e["run"]["runId"] for e in ends) == sorted(every_run)
    assert {e["job"]["name"] for e in ends} >= {"adult__governed_training", "adult__monitor_batch"}
    assert any(e["eventType"] == "FAIL" for e in ends)  # the broken batch's run failed its gate

    # a second pass finds nothing new and requests nothing
    rc, out = _run(capsys, ["monitor", "--once"])
    assert rc == 0 and "0 new batch(es)" in out and "3 already done" in out
    assert len(read_retrain_requests(MonitoringPaths.of(env.settings()))) == 1

    # mlgov status shows the latest verdicts
    rc, out = _run(capsys, ["status", "--json"])
    status = json.loads(out)["monitoring"]
    assert rc == 0 and status["batches"] == 3 and status["quarantined"] == 1
    assert status["latest_performance"]["batch_id"] == cov["batch_id"]
    assert status["last_retraining"]["run_key"] == run["run_key"]
    rc, out = _run(capsys, ["status"])
    assert "monitoring:" in out
