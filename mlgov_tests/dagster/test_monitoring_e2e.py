"""The monitoring loop end to end, in one scenario: real Dagster instance, real MLflow store, real
DVC repo. champion -> drifted batch (+ labels) -> exactly one retraining request -> new challenger
passes every gate -> champion moves; then under a policy whose comparison cannot be met, the
retrained challenger is refused and the champion stays."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, instance_for_test

from mlgov_assets.core.audit.decision_log import DecisionLog
from mlgov_assets.core.monitoring.batch_values import ScoredBatch
from mlgov_assets.core.monitoring.batches import labels_filename, retrain_run_key, simulate_batch
from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringPaths, read_jsonl
from mlgov_tests.conftest import check_results, run_path
from mlgov_tests.core.monitoring.helpers import ADULT, read_adult
from mlgov_tests.dagster.test_monitoring_sensors import (
    IMPOSSIBLE,
    MEETABLE,
    apply_partitions,
    execute,
    land,
    materialized_partitions,
    stored,
    tick,
)

DATA = Path(__file__).resolve().parents[2] / "data"
LANDING, RETRAIN = "adult__batch_landing_sensor", "adult__retrain_on_breach_sensor"


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    return read_adult(DATA / "adult.test")


def _land_and_process(defs, instance, landing: Path, files: dict[str, pd.DataFrame], cursor=None):
    """Files land; one landing-sensor tick; its runs launched as the daemon would. Returns runs by partition."""
    for name, frame in files.items():
        land(landing, name, frame)
    result = tick(defs, LANDING, instance, cursor)
    apply_partitions(instance, result)
    return {r.partition_key: execute(defs, instance, r, LANDING) for r in result.run_requests}, result.cursor


def _reference_files(paths: MonitoringPaths, champion: int) -> dict[str, int]:
    """The stored reference profiles a champion is judged with (data side, and its own scores): name -> mtime."""
    files = [
        *paths.reference.glob("*/profile-b10.json"),
        *paths.reference.glob(f"*/profile-b10-champion-v{champion}.json"),
    ]
    return {f"{f.parent.name}/{f.name}": f.stat().st_mtime_ns for f in files}


def _champion_metadata(instance):
    return instance.get_latest_materialization_event(AssetKey(["adult", "champion"])).asset_materialization.metadata


def _order(instance, run_id: str, first: tuple[str, str], then: tuple[str, str]) -> bool:
    """Whether, in the run's event log, event ``first`` (type, step suffix) comes before ``then``."""
    seen = [(e.dagster_event_type.value, e.step_key or "") for e in instance.all_logs(run_id) if e.dagster_event_type]

    def at(kind: str, step: str) -> int:
        return next(i for i, (k, s) in enumerate(seen) if k == kind and s.endswith(step))

    return at(*first) < at(*then)


def test_drift_retrains_once_and_the_champion_moves_only_through_the_gates(env, holdout):
    env.write_policy(MEETABLE)
    defs = env.defs()
    paths = MonitoringPaths.of(env.settings())
    landing = env.settings().landing_dir
    reg = env.registry()
    with instance_for_test() as instance:
        assert run_path(env, instance).success
        first = reg.champion_version()
        # the champion's drift reference was profiled at its promotion, not left to its first batch
        profiled = _reference_files(paths, first)
        assert profiled, "no reference profile stored at promotion"
        assert _champion_metadata(instance)["reference_profile"].value.startswith("data/adult.data md5 ")

        # 1) a covariate-drifted batch with its delayed labels, next to a schema-broken batch
        cov, labels = simulate_batch(ADULT, "covariate", holdout, 2500, 7, with_labels=True)
        runs, cursor = _land_and_process(
            defs,
            instance,
            landing,
            {
                "cov-1.csv": cov,
                labels_filename("cov-1"): labels,
                "broken-1.csv": simulate_batch(ADULT, "broken", holdout, 300, 1)[0],
            },
        )
        assert set(runs) == {"cov-1", "broken-1"}
        assert runs["cov-1"].success and not runs["broken-1"].success
        checks = check_results(runs["cov-1"])
        assert not checks["check_batch_drift_within_policy"].passed  # WARN: the breach, not a failure
        assert checks["check_batch_drift_within_policy"].severity.value == "WARN"
        drift = stored(env, instance, "batch_drift", "cov-1")
        assert drift["breach"] and {"age", "hours_per_week"} <= set(drift["drifted_columns"])
        # judged before scoring: the covariate verdict alone; prediction drift comes with the scores
        assert drift["champion_version"] == first and drift["prediction_verdict"] is None
        assert _order(instance, runs["cov-1"].run_id, ("STEP_SUCCESS", "batch_drift"), ("STEP_START", "batch_scores"))
        scores = stored(env, instance, "batch_scores", "cov-1", ScoredBatch)
        assert scores.scoring.champion_version == first and scores.scoring.prediction_drift.verdict == "drift"
        entry = BatchLedger(paths).get("cov-1")
        assert entry["status"] == "scored" and entry["champion_version"] == first
        assert entry["drift"]["breach"] and entry["drift"]["prediction_verdict"] == "drift"
        # the first batch used the profiles stored at promotion: none was rebuilt
        assert _reference_files(paths, first) == profiled
        perf = stored(env, instance, "batch_performance", "cov-1")
        assert perf["n_labelled"] == 2500 and perf["labels"]["file"] == "cov-1.labels.csv"
        report = stored(env, instance, "batch_drift_report", "cov-1")
        assert Path(report["html_path"]).stat().st_size > 10_000
        assert reg.client.get_run(report["mlflow_run_id"]).data.tags["mlgov.batch_id"] == "cov-1"
        mat = instance.get_latest_materialization_event(AssetKey(["adult", "batch_drift_report"])).asset_materialization
        assert mat.partition == "cov-1" and mat.metadata["evidently_html"].value == report["html_path"]
        assert materialized_partitions(instance, "batch_scores") == {"cov-1"}  # the broken batch was never scored

        # 2) exactly one retraining request, however often the sensor ticks
        r1 = tick(defs, RETRAIN, instance)
        [request] = r1.run_requests
        key = request.run_key
        assert key == retrain_run_key(
            {
                "batch_ids": ["cov-1"],
                "reference_fingerprint": drift["reference"]["fingerprint"],
                "champion_version": first,
            }
        )
        dataset = f"data/generated/{key}.csv"
        assert request.run_config["ops"]["training_data"]["config"]["path"] == dataset
        c = r1.cursor
        for _ in range(3):
            again = tick(defs, RETRAIN, instance, c)
            assert not again.run_requests
            c = again.cursor
        # a daemon restart before the launch (cursor lost): the same key, which Dagster launches once
        assert [r.run_key for r in tick(defs, RETRAIN, instance, None).run_requests] == [key]
        # the tick only decided and recorded: the training set is the retraining run's first work
        generated = env.settings().generated_dir  # under the state directory, not the checkout
        assert not (generated / f"{key}.csv").exists()

        # 3) the retraining run builds its training set, goes through every gate of the training path,
        # and the champion moves
        retrain = execute(defs, instance, request, RETRAIN)
        assert retrain.success, [
            (c.check_name, c.description) for c in retrain.get_asset_check_evaluations() if not c.passed
        ]
        # the new training set = reference + the labelled batch, a DVC-versioned dataset
        manifest = json.loads((generated / f"{key}.manifest.json").read_text())
        assert manifest["batches"] == {"cov-1": 2500} and manifest["rows"] == 32561 + 2500
        csv_md5 = hashlib.md5((generated / f"{key}.csv").read_bytes()).hexdigest()
        assert csv_md5 in (generated / f"{key}.csv.dvc").read_text()
        # ... and the run that built it records it: the data it read is the data the request named
        event = instance.get_latest_materialization_event(AssetKey(["adult", "training_data"]))
        assert event.run_id == retrain.run_id
        built = event.asset_materialization
        assert built.metadata["dvc_md5"].value == csv_md5 and built.metadata["retrain_run_key"].value == key
        assert built.metadata["path"].value == dataset
        assert all(c.passed for c in retrain.get_asset_check_evaluations() if c.severity.value == "ERROR")
        second = reg.champion_version()
        assert second != first
        tags = reg.version_info(second).tags
        assert (tags["mlgov.train_data_path"], tags["mlgov.train_data_md5"]) == (dataset, csv_md5)
        assert reg.version_info(second).params["max_iter"] == reg.version_info(first).params["max_iter"]
        assert [r["kind"] for r in DecisionLog(env.settings().decision_log).records()].count("promotion") == 2
        # the retrained champion's reference (the new dataset) was profiled when it was promoted
        assert _champion_metadata(instance)["reference_profile"].value.startswith(f"{dataset} md5 {csv_md5}")
        profiled2 = _reference_files(paths, second)
        assert any(csv_md5 in name for name in profiled2)
        # launched: neither a fresh cursor nor the old one asks again
        assert not tick(defs, RETRAIN, instance, None).run_requests
        assert not tick(defs, RETRAIN, instance, c).run_requests

        # 4) a policy the retrained model cannot meet: the retraining run is refused, the champion stays
        env.write_policy(IMPOSSIBLE)
        cov2, labels2 = simulate_batch(ADULT, "covariate", holdout, 2500, 8, with_labels=True)
        runs2, cursor = _land_and_process(
            defs, instance, landing, {"cov-2.csv": cov2, labels_filename("cov-2"): labels2}, cursor
        )
        assert set(runs2) == {"cov-2"} and runs2["cov-2"].success
        perf2 = stored(env, instance, "batch_performance", "cov-2")
        assert perf2["mcnemar"]["promotes"] is False  # champion vs shadow: a recommendation only
        assert _reference_files(paths, second) == profiled2  # used as stored, not rebuilt
        scores2 = stored(env, instance, "batch_scores", "cov-2", ScoredBatch)
        assert scores2.scoring.champion_version == second and scores2.scoring.shadow_version is not None
        assert scores2.scoring.batch_id == "cov-2" and len(scores2.frame) == 2500
        r2 = tick(defs, RETRAIN, instance)
        [request2] = r2.run_requests
        assert request2.run_key != key and request2.tags["mlgov/retrain_champion"] == str(second)
        refused = execute(defs, instance, request2, RETRAIN)
        assert not refused.success
        failed = [ch for ch in refused.get_asset_check_evaluations() if not ch.passed and ch.severity.value == "ERROR"]
        assert failed and all(ch.check_name.endswith("beats_champion") for ch in failed)
        assert reg.champion_version() == second
        assert not tick(defs, RETRAIN, instance, None).run_requests  # refused is final for this breach

        # alerts: drift, performance and both retraining requests, each once
        kinds = [a["kind"] for a in read_jsonl(paths.alerts)]
        assert kinds.count("retrain_requested") == 2 and kinds.count("batch_quarantined") == 1
        assert kinds.count("dataset_drift") == 2
        # drift verdicts and retraining requests are governance decisions: in the hash chain too
        log = DecisionLog(env.settings().decision_log)
        decided = [r["kind"] for r in log.records()]
        assert decided.count("retrain_request") == 2
        assert decided.count("drift_alert") == kinds.count("dataset_drift") + kinds.count("performance_breach")
        assert log.verify().ok
