"""Landing-folder planning, the validation gate, quarantine and labels from both sources."""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import pandas as pd
import pytest

from mlgov_assets.core.monitoring.batches import labels_filename
from mlgov_assets.core.monitoring.intake import accept_batch
from mlgov_assets.core.monitoring.labels import record_labels
from mlgov_assets.core.monitoring.landing import find_batch_file, plan_landing, settle_delay
from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringError, MonitoringPaths, read_jsonl
from mlgov_assets.core.monitoring.retrain_plan import breach_reasons
from mlgov_tests.core.monitoring.helpers import ADULT, land, sim

# --------------------------------------------------------------------------- landing plan


def test_plan_landing_new_same_again_changed_and_refused(settings, holdout):
    ledger = BatchLedger(MonitoringPaths.of(settings))
    batch, _ = sim("none", holdout)
    land(settings.landing_dir, "b1.csv", batch)
    land(settings.landing_dir, "notes.txt", batch)
    land(settings.landing_dir, "bad..id.csv", batch)
    plan = plan_landing(settings.landing_dir, ledger, {})
    assert [f.batch_id for f in plan.new_batches] == ["b1"]
    assert plan.new_batches[0].md5 == hashlib.md5((settings.landing_dir / "b1.csv").read_bytes()).hexdigest()
    assert plan.new_batches[0].run_key == f"batch-b1-{plan.new_batches[0].md5[:12]}"
    assert {f for f, _ in plan.refused} == {"notes.txt", "bad..id.csv"}
    assert "'..'" in dict(plan.refused)["bad..id.csv"]

    again = plan_landing(settings.landing_dir, ledger, plan.seen)
    assert not again.new_batches and not again.refused  # same files: nothing, and refusals are not repeated
    # the stored cursor is JSON (what the sensor keeps) and reads back as the same plan
    cursor = json.loads(plan.cursor())
    assert cursor["b1.csv"]["outcome"] == "requested" and cursor["notes.txt"] == {
        "size": (settings.landing_dir / "notes.txt").stat().st_size,
        "mtime_ns": (settings.landing_dir / "notes.txt").stat().st_mtime_ns,
        "outcome": "refused",
    }
    assert plan_landing(settings.landing_dir, ledger, cursor).seen == again.seen

    # the ledger finished b1 with these bytes: a fresh cursor (daemon restart) still does nothing
    ledger.update("b1", md5=plan.new_batches[0].md5, status="scored", drift={"breach": False})
    assert not plan_landing(settings.landing_dir, ledger, {}).new_batches

    # other bytes under a finished batch id are refused, never processed (batches are immutable)
    land(settings.landing_dir, "b1.csv", sim("none", holdout, seed=9)[0])
    changed = plan_landing(settings.landing_dir, ledger, again.seen)
    assert not changed.new_batches
    assert "immutable" in dict(changed.refused)["b1.csv"]


def test_plan_landing_labels_wait_ride_along_or_request(settings, holdout):
    ledger = BatchLedger(MonitoringPaths.of(settings))
    batch, labels = sim("none", holdout, labels=True)
    land(settings.landing_dir, labels_filename("b2"), labels)
    first = plan_landing(settings.landing_dir, ledger, {})
    assert not first.new_labels and [f for f, _ in first.waiting] == ["b2.labels.csv"]

    land(settings.landing_dir, "b2.csv", batch)
    second = plan_landing(settings.landing_dir, ledger, first.seen)
    assert [f.batch_id for f in second.new_batches] == ["b2"] and not second.new_labels  # rides along
    assert second.seen["b2.labels.csv"].outcome == "with_batch"

    # the batch run finished without consuming them (e.g. it ran before they landed): request them once
    ledger.update("b2", md5=second.new_batches[0].md5, status="scored", drift={"breach": False})
    third = plan_landing(settings.landing_dir, ledger, second.seen)
    assert [f.name for f in third.new_labels] == ["b2.labels.csv"]
    assert third.new_labels[0].run_key.startswith("labels-b2-")
    assert not plan_landing(settings.landing_dir, ledger, third.seen).new_labels
    # once the ledger recorded these labels, even a fresh cursor leaves them alone
    ledger.update("b2", labels={"file_md5": third.new_labels[0].md5, "n_labelled": len(labels)})
    assert not plan_landing(settings.landing_dir, ledger, {}).new_labels


def test_plan_landing_leaves_fresh_files_to_settle(settings, holdout):
    ledger = BatchLedger(MonitoringPaths.of(settings))
    land(settings.landing_dir, "b3.csv", sim("none", holdout)[0], age_s=0)
    plan = plan_landing(settings.landing_dir, ledger, {}, settle_seconds=5)
    assert not plan.new_batches and plan.seen["b3.csv"].outcome == "settling"
    later = plan_landing(settings.landing_dir, ledger, plan.seen, settle_seconds=5, now=time.time() + 10)
    assert [f.batch_id for f in later.new_batches] == ["b3"]


def test_settle_delay_is_the_time_until_the_youngest_file_has_settled(settings, holdout):
    """The landing sensor sleeps this long, then scans: the same settle rule, without a loop in between."""
    ledger = BatchLedger(MonitoringPaths.of(settings))
    assert settle_delay(settings.landing_dir, 2.0) == 0.0  # no folder yet
    land(settings.landing_dir, "old.csv", sim("none", holdout)[0], age_s=60)
    assert settle_delay(settings.landing_dir, 2.0) == 0.0
    path = land(settings.landing_dir, "b4.csv", sim("none", holdout)[0], age_s=0)
    now = path.stat().st_mtime
    assert settle_delay(settings.landing_dir, 2.0, now=now + 0.5) == pytest.approx(1.5)
    assert settle_delay(settings.landing_dir, 2.0, now=now - 10) == 2.0  # dated in the future: bounded
    assert settle_delay(settings.landing_dir, 0.0, now=now) == 0.0
    # a hidden file (a writer's temporary) is not waited for
    land(settings.landing_dir, ".b5.csv.tmp", sim("none", holdout)[0], age_s=0)
    assert settle_delay(settings.landing_dir, 2.0, now=now + 2.0) == 0.0
    # after the delay the scan takes the file; written again meanwhile, it is younger and still waits
    assert [
        f.batch_id
        for f in plan_landing(settings.landing_dir, ledger, {}, settle_seconds=2.0, now=now + 2.0).new_batches
    ] == ["b4", "old"]
    assert (
        plan_landing(settings.landing_dir, ledger, {}, settle_seconds=2.0, now=now + 1.0).seen["b4.csv"].outcome
        == "settling"
    )


# --------------------------------------------------------------------------- accepting batches


def test_valid_batch_is_archived_and_recorded(settings, holdout):
    batch, _ = sim("none", holdout, rows=300, seed=4)
    land(settings.landing_dir, "ok1.csv", batch)
    acc = accept_batch(settings, ADULT, "ok1")
    assert acc.intake.valid and acc.intake.quarantine_dir is None and acc.intake.batch_id == "ok1"
    assert list(acc.frame["row_id"]) == list(range(300))
    assert acc.frame["age"].dtype.kind == "i"  # validated and typed
    archived = pd.read_parquet(BatchLedger(MonitoringPaths.of(settings)).rows_path("ok1"))
    pd.testing.assert_frame_equal(
        archived.drop(columns=["row_id"]).reset_index(drop=True),
        batch.reset_index(drop=True)[archived.columns[1:]],
        check_dtype=False,
    )
    entry = BatchLedger(MonitoringPaths.of(settings)).get("ok1")
    assert entry["status"] == "validated" and entry["rows"] == 300 and entry["validation"]["passed"]


def test_broken_batch_is_quarantined_with_its_report_and_alerted(settings, holdout):
    batch, _ = sim("broken", holdout, rows=300, seed=5)
    src = land(settings.landing_dir, "bad1.csv", batch)
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    acc = accept_batch(settings, ADULT, "bad1")
    assert not acc.intake.valid and acc.intake.md5 == md5
    qdir = MonitoringPaths.of(settings).quarantine_dir("bad1")
    assert acc.intake.quarantine_dir == qdir
    assert not src.exists() and (qdir / "bad1.csv").exists()  # moved out of the landing folder
    report = json.loads((qdir / "failure_report.json").read_text())
    assert report["md5"] == md5
    failed = {(f["column"], f["check"].split("(")[0]) for f in report["report"]["failures"]}
    assert ("occupation", "column_in_dataframe") in failed and ("workclass", "isin ") in failed
    assert any(c == "age" for c, _ in failed) and any(c == "hours_per_week" for c, _ in failed)
    entry = BatchLedger(MonitoringPaths.of(settings)).get("bad1")
    assert entry["status"] == "quarantined" and not breach_reasons(entry, ["dataset_drift", "performance"])
    alerts = read_jsonl(MonitoringPaths.of(settings).alerts)
    assert [(a["kind"], a["severity"], a["batch_id"]) for a in alerts] == [("batch_quarantined", "ERROR", "bad1")]
    with pytest.raises(MonitoringError, match="quarantined"):
        find_batch_file(settings.landing_dir, "bad1", BatchLedger(MonitoringPaths.of(settings)))


def test_unreadable_file_is_quarantined_too(settings):
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    (settings.landing_dir / "junk.parquet").write_bytes(b"not parquet at all")
    acc = accept_batch(settings, ADULT, "junk")
    assert not acc.intake.valid and "unreadable" in acc.intake.summary
    assert acc.intake.quarantine_dir is not None and (acc.intake.quarantine_dir / "junk.parquet").exists()


def test_a_batch_without_labels_validates_and_labels_come_from_both_sources(settings, holdout):
    batch, labels = sim("none", holdout, rows=250, seed=6, labels=True)
    inline = batch.assign(income=labels["income"].to_numpy()).copy()
    inline.loc[:99, "income"] = None  # first 100 rows unlabelled in the file
    land(settings.landing_dir, "lab1.csv", inline)
    acc = accept_batch(settings, ADULT, "lab1")
    assert acc.intake.valid
    y, info = record_labels(settings, ADULT, "lab1", acc.frame)
    assert info.inline == 150 and info.n_labelled == 150 and info.file is None
    delayed = labels.iloc[:120].copy()  # fills the 100 unlabelled rows, agrees on 20 (conflicts: test_labels.py)
    land(settings.landing_dir, labels_filename("lab1"), delayed)
    y, info = record_labels(settings, ADULT, "lab1", acc.frame)
    assert info.n_labelled == 250 and info.conflicts == 0 and info.from_file == 120
    assert info.file == "lab1.labels.csv" and info.decision is not None and info.decision.applied
    np.testing.assert_array_equal(y.to_numpy(), (labels["income"] == ">50K").astype(float).to_numpy())
