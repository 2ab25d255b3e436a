"""Late labels through ``mlgov monitor --once`` (in-process CLI, persistent instance under the test's
MLGOV_HOME): a labels file that contradicts the labels a batch already has is refused and alerted
(exit 1), the batch's performance verdict stays as it was, no retraining is requested, and the same
file is not processed again on the next pass; a file naming unknown row ids is a refusal too."""

from __future__ import annotations

import json

from mlgov_assets.cli import main
from mlgov_assets.core.monitoring.batches import labels_filename, read_labels, simulate_batch
from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringPaths, read_jsonl
from mlgov_assets.core.monitoring.retraining import read_retrain_requests
from mlgov_tests.core.monitoring.helpers import ADULT, land, read_adult
from mlgov_tests.dagster.test_monitoring_sensors import MEETABLE

FLIP = {">50K": "<=50K", "<=50K": ">50K"}


def _monitor(capsys) -> tuple[int, dict]:
    capsys.readouterr()
    rc = main(["monitor", "--once", "--json"])
    return rc, json.loads(capsys.readouterr().out)


def test_a_conflicting_labels_file_is_refused_alerted_and_retrains_nothing(env, capsys, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(env.home / "dagster"))
    landing = env.home / "incoming"
    monkeypatch.setenv("MLGOV_LANDING_DIR", str(landing))
    env.write_policy(MEETABLE)  # retrain_on: dataset_drift and performance
    assert main(["train", "--set", "max_iter=60", "--set", "learning_rate=0.15"]) == 0
    sim = ["simulate", "--kind", "none", "--rows", "1500", "--seed", "2", "--batch-id", "calm-1", "--labels"]
    assert main(sim) == 0
    paths = MonitoringPaths.of(env.settings())
    ledger = BatchLedger(paths)

    # 1) the batch and its true labels: judged, no breach, nothing to retrain
    rc, report = _monitor(capsys)
    assert rc == 0, report
    before = ledger.get("calm-1")
    assert before["performance"]["status"] == "ok" and before["performance"]["n_labelled"] == 1500
    assert before["labels"]["decision"]["decision"] == "applied"

    # 2) a second labels file under the same name: every label flipped (applied, it would be a breach);
    #    and a batch carrying its own labels, landing together with a labels file that contradicts them
    labels_path = landing / labels_filename("calm-1")
    truth = read_labels(ADULT, labels_path)
    land(landing, labels_path.name, truth.assign(income=truth["income"].map(FLIP)))
    batch, own = simulate_batch(ADULT, "none", read_adult(env.project / "data" / "adult.test"), 1500, 3, True)
    land(landing, "inline-1.csv", batch.assign(income=own["income"].to_numpy()))
    land(landing, labels_filename("inline-1"), own.assign(income=own["income"].map(FLIP)))
    rc, report = _monitor(capsys)
    assert rc == 1  # documented: a labels file refused (or held) is a refusal a person should look at
    [inline] = report["batches"]
    assert inline["batch_id"] == "inline-1" and inline["success"] and inline["performance"]["status"] == "ok"
    assert inline["labels"]["decision"]["decision"] == "refused" and inline["labels"]["n_labelled"] == 1500
    [outcome] = report["labels"]
    assert outcome["batch_id"] == "calm-1" and outcome["success"]  # the step did not crash
    decision = outcome["labels"]["decision"]
    assert decision["decision"] == "refused" and decision["rule"] == "conflict" and decision["count"] == 1500
    after = ledger.get("calm-1")
    assert after["performance"] == before["performance"]  # performance exactly as it was
    assert after["labels"]["file_md5"] == before["labels"]["file_md5"]  # the labels too
    assert read_retrain_requests(paths) == [] and report["retraining"]["runs"] == []
    assert report["retraining"]["decision"]["kind"] == "none"
    alerts = read_jsonl(paths.alerts)
    refused = {a["batch_id"]: a for a in alerts if a["kind"] == "labels_refused"}
    assert sorted(refused) == ["calm-1", "inline-1"]
    assert refused["calm-1"]["evidence"]["labels_file"]["sha256"] == decision["sha256"]
    assert not [a for a in alerts if a["kind"] in ("performance_breach", "retrain_requested")]
    # the refusals are governance evidence: in the hash-chained decision log too
    from mlgov_assets.core.audit.decision_log.records import read_records

    logged = read_records(env.settings().decision_log, kinds=["labels_refusal"])
    assert len(logged) == len(refused)

    # 3) the next pass does not take the refused files up again as if new (nor the one that came
    #    with its batch, which the landing scan looks at again once the batch is done)
    rc, report = _monitor(capsys)
    assert rc == 0 and report["labels"] == [] and report["batches"] == []
    assert len(read_jsonl(paths.alerts)) == len(alerts) and read_retrain_requests(paths) == []
    rc = main(["monitor", "--once"])
    assert rc == 0

    # 4) a labels file naming rows the batch does not have: a refusal naming them, not a crashed step
    land(landing, labels_path.name, truth.assign(row_id=truth["row_id"] + 1000))
    rc, report = _monitor(capsys)
    assert rc == 1
    [outcome] = report["labels"]
    decision = outcome["labels"]["decision"]
    assert outcome["success"] and decision["rule"] == "unknown_row_ids" and decision["count"] == 1000
    assert decision["row_ids"] == list(range(1500, 1510))  # capped: policy labels.max_examples
    assert ledger.get("calm-1")["performance"] == before["performance"]
