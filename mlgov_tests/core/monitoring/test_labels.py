"""Late labels: a labels file that conflicts with recorded labels is refused or held (never applied),
unknown row ids and invalid files are refusals (never exceptions), a file is judged once, and a
retraining never uses rows whose labels are in dispute."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from mlgov_assets.core.governance.policy import PolicyError, load_policy, parse_policy
from mlgov_assets.core.monitoring.batches import labels_filename
from mlgov_assets.core.monitoring.intake import accept_batch
from mlgov_assets.core.monitoring.labels import (
    disputed_row_ids,
    label_file_decisions,
    labels_file_judged,
    quote,
    record_labels,
)
from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringPaths, read_jsonl
from mlgov_tests.core.monitoring.helpers import ADULT, land, sim

LABEL = ADULT.label
FLIP = {">50K": "<=50K", "<=50K": ">50K"}


def _policy(settings, **labels: object):
    base = load_policy(settings.policy_path)
    if not labels:
        return base
    text = settings.policy_path.read_text(encoding="utf-8")
    lines = "".join(f"  {k}: {v}\n" for k, v in labels.items())
    return parse_policy(text + f"\nlabels:\n{lines}", source="test-policy")


def _inline_batch(settings, holdout, batch_id: str, *, rows: int = 300, labelled: int = 200, seed: int = 5):
    """A batch whose first ``labelled`` rows carry their label inline; returns (frame, true labels)."""
    batch, labels = sim("none", holdout, rows=rows, seed=seed, labels=True)
    inline = batch.assign(**{LABEL: labels[LABEL].to_numpy()}).copy()
    inline.loc[labelled:, LABEL] = None
    land(settings.landing_dir, f"{batch_id}.csv", inline)
    acc = accept_batch(settings, ADULT, batch_id)
    assert acc.intake.valid
    return acc.frame, labels


def _state(settings, batch_id: str):
    ledger = BatchLedger(MonitoringPaths.of(settings))
    labels_file = ledger.labels_path(batch_id)
    return ledger.get(batch_id), labels_file.read_bytes() if labels_file.exists() else None


def _alerts(settings):
    return read_jsonl(MonitoringPaths.of(settings).alerts)


def _conflicting_file(settings, batch_id: str, labels: pd.DataFrame, flip_rows: list[int]) -> pd.DataFrame:
    """Every row labelled, ``flip_rows`` with the other label (they disagree with the inline labels)."""
    delayed = labels.copy()
    delayed.loc[flip_rows, LABEL] = delayed.loc[flip_rows, LABEL].map(FLIP)
    land(settings.landing_dir, labels_filename(batch_id), delayed)
    return delayed


def test_a_conflicting_labels_file_is_refused_alerted_and_changes_nothing(settings, holdout):
    frame, labels = _inline_batch(settings, holdout, "c1")
    policy = _policy(settings)
    assert policy.labels.on_conflict == "refuse"  # the default
    y_before, info_before = record_labels(settings, ADULT, "c1", frame, policy=policy)
    _, parquet_before = _state(settings, "c1")
    flips = list(range(3, 200, 7))  # 29 rows with an inline label
    _conflicting_file(settings, "c1", labels, flips)
    path = settings.landing_dir / labels_filename("c1")

    y, info = record_labels(settings, ADULT, "c1", frame, policy=policy)

    # nothing applied: the labels are the batch's own, byte for byte the same archive
    pd.testing.assert_series_equal(y, y_before)
    assert info.n_labelled == info_before.n_labelled == 200 and info.file is None
    entry, parquet = _state(settings, "c1")
    assert parquet == parquet_before
    # the evidence: count, a capped list of row ids, the file's sha256; no raw values
    d = info.decision
    assert d is not None and d.decision == "refused" and d.rule == "conflict" and info.not_applied == d
    assert d.count == len(flips) == info.conflicts and d.row_ids == flips[: policy.labels.max_examples]
    assert d.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and d.rows == 300
    assert label_file_decisions(entry)[d.sha256] == d
    assert entry["labels"]["decision"]["decision"] == "refused"
    # the disputed rows are recorded (for retraining to leave out)
    ledger = BatchLedger(MonitoringPaths.of(settings))
    assert disputed_row_ids(ledger, "c1").tolist() == flips and info.disputed == len(flips)
    # alerted, once, naming the file and rule, quoting no label values
    [alert] = [a for a in _alerts(settings) if a["kind"] == "labels_refused"]
    assert alert["severity"] == "ERROR" and alert["batch_id"] == "c1"
    assert "c1.labels.csv" in alert["summary"] and "labels.on_conflict" in alert["summary"]
    assert alert["evidence"]["labels_file"]["count"] == len(flips)
    assert alert["evidence"]["labels_file"]["sha256"] == d.sha256
    assert ">50K" not in alert["summary"]


def test_a_file_conflicting_with_an_earlier_labels_file_is_refused(settings, holdout):
    frame, labels = _inline_batch(settings, holdout, "c2", labelled=0)
    policy = _policy(settings)
    first = labels.iloc[:150]
    land(settings.landing_dir, labels_filename("c2"), first)
    y1, info1 = record_labels(settings, ADULT, "c2", frame, policy=policy)
    assert info1.decision is not None and info1.decision.applied and info1.n_labelled == 150
    _, parquet1 = _state(settings, "c2")
    # a second file (new bytes under the same name): rows 150.. are new, rows 10 and 20 contradict the first
    _conflicting_file(settings, "c2", labels, [10, 20])
    y2, info2 = record_labels(settings, ADULT, "c2", frame, policy=policy)
    assert info2.decision is not None and info2.decision.decision == "refused" and info2.decision.row_ids == [10, 20]
    pd.testing.assert_series_equal(y2, y1)  # not even its new rows are taken
    assert info2.file == "c2.labels.csv" and info2.file_md5 == info1.file_md5 and info2.n_labelled == 150
    assert _state(settings, "c2")[1] == parquet1


def test_hold_policy_holds_the_file_for_review_and_changes_nothing(settings, holdout):
    frame, labels = _inline_batch(settings, holdout, "h1")
    policy = _policy(settings, on_conflict="hold", max_examples=3)
    y_before, _ = record_labels(settings, ADULT, "h1", frame, policy=policy)
    _, parquet_before = _state(settings, "h1")
    flips = [0, 1, 2, 50, 60]
    _conflicting_file(settings, "h1", labels, flips)
    y, info = record_labels(settings, ADULT, "h1", frame, policy=policy)
    d = info.decision
    assert d is not None and d.decision == "held" and d.count == 5 and d.row_ids == [0, 1, 2]
    pd.testing.assert_series_equal(y, y_before)
    assert _state(settings, "h1")[1] == parquet_before
    assert disputed_row_ids(BatchLedger(MonitoringPaths.of(settings)), "h1").tolist() == flips
    [alert] = [a for a in _alerts(settings) if a["batch_id"] == "h1"]
    assert alert["kind"] == "labels_held" and alert["severity"] == "WARNING" and "held for review" in alert["summary"]
    with pytest.raises(PolicyError, match="on_conflict"):
        _policy(settings, on_conflict="overwrite")


def test_unknown_row_ids_are_a_refusal_naming_them_not_an_exception(settings, holdout):
    frame, labels = _inline_batch(settings, holdout, "u1", labelled=0)
    policy = _policy(settings, max_examples=4)
    extra = pd.DataFrame({"row_id": np.arange(300, 325), LABEL: ">50K"})  # 25 rows the batch does not have
    land(settings.landing_dir, labels_filename("u1"), pd.concat([labels.iloc[:100], extra], ignore_index=True))
    y, info = record_labels(settings, ADULT, "u1", frame, policy=policy)
    d = info.decision
    assert d is not None and d.decision == "refused" and d.rule == "unknown_row_ids"
    assert d.count == 25 and d.row_ids == [300, 301, 302, 303] and "25 row_id(s) not in batch u1" in d.reason
    assert info.n_labelled == 0 and y.isna().all()  # none of its 100 valid rows is taken either
    assert not BatchLedger(MonitoringPaths.of(settings)).labels_path("u1").exists()
    assert disputed_row_ids(BatchLedger(MonitoringPaths.of(settings)), "u1").size == 0  # no label is disputed
    [alert] = [a for a in _alerts(settings) if a["batch_id"] == "u1"]
    assert alert["kind"] == "labels_refused" and alert["evidence"]["labels_file"]["row_ids"] == [300, 301, 302, 303]


def test_an_invalid_labels_file_is_refused_with_its_raw_values_bounded(settings, holdout):
    frame, labels = _inline_batch(settings, holdout, "v1", labelled=0)
    policy = _policy(settings, max_quoted_chars=60)
    bad = labels.copy()
    bad.loc[5, LABEL] = "x" * 10_000  # a value no project label is, absurdly long
    land(settings.landing_dir, labels_filename("v1"), bad)
    _, info = record_labels(settings, ADULT, "v1", frame, policy=policy)
    d = info.decision
    assert d is not None and d.decision == "refused" and d.rule == "invalid" and info.n_labelled == 0
    assert len(d.reason) < 200 and "chars, sha256" in d.reason
    [alert] = [a for a in _alerts(settings) if a["batch_id"] == "v1"]
    assert len(alert["summary"]) < 200 and "x" * 100 not in str(alert)
    assert quote("short", 10) == "short"


def test_a_judged_file_is_not_judged_again_as_if_new(settings, holdout):
    frame, labels = _inline_batch(settings, holdout, "r1")
    policy = _policy(settings)
    _conflicting_file(settings, "r1", labels, [7, 8])
    path = settings.landing_dir / labels_filename("r1")
    _, first = record_labels(settings, ADULT, "r1", frame, policy=policy)  # at intake the file was not there yet
    entry1, parquet1 = _state(settings, "r1")
    n_alerts = len(_alerts(settings))
    ledger = BatchLedger(MonitoringPaths.of(settings))
    assert labels_file_judged(ledger, "r1", hashlib.md5(path.read_bytes()).hexdigest())
    # the performance step (or a re-run) meets the same bytes: same decision, no second alert, nothing changes
    for _ in range(2):
        _, again = record_labels(settings, ADULT, "r1", frame, policy=policy)
        assert again.decision == first.decision and again.n_labelled == first.n_labelled == 200
    entry2, parquet2 = _state(settings, "r1")
    assert len(_alerts(settings)) == n_alerts and parquet2 == parquet1
    assert entry2["label_files"] == entry1["label_files"]
    # a corrected file (new bytes) is judged anew: only the agreeing labels, applied
    labels.to_csv(path, index=False)
    _, fixed = record_labels(settings, ADULT, "r1", frame, policy=policy)
    assert fixed.decision is not None and fixed.decision.applied and fixed.n_labelled == 300
    assert not labels_file_judged(ledger, "r1", hashlib.md5(path.read_bytes()).hexdigest())
    assert fixed.disputed == 2  # the rows once disputed stay out of retraining


def test_a_retraining_never_uses_rows_whose_labels_are_in_dispute(env, holdout):
    from mlgov_assets.core.integrity import md5_file
    from mlgov_assets.core.monitoring.retrain_dataset import build_retraining_dataset
    from mlgov_assets.core.monitoring.retrain_plan import plan_retraining
    from mlgov_assets.core.monitoring.retraining import prepare_requested_dataset, record_retrain_request
    from mlgov_assets.core.project.project import open_project
    from mlgov_assets.core.project.reader import read_raw
    from mlgov_tests.core.monitoring.test_retraining import CHAMP_INFO

    s = env.settings().ensure()
    project = open_project(s.project_spec, s.project_dir)
    frame, labels = _inline_batch(s, holdout, "d1", labelled=300)
    flips = list(range(0, 300, 25))  # 12 rows
    _conflicting_file(s, "d1", labels, flips)
    _, info = record_labels(s, project, "d1", frame)
    assert info.decision is not None and info.decision.decision == "refused" and info.disputed == 12
    ref_path = env.project / "data" / "adult.data"
    reference = {"fingerprint": "fp", "path": "data/adult.data", "md5": md5_file(ref_path), "read_from": str(ref_path)}
    reference["source"] = "project"
    ledger = BatchLedger(MonitoringPaths.of(s))
    ledger.update("d1", status="scored", champion_version=3, drift={"breach": True}, reference=reference)

    decision = plan_retraining(
        ledger, [], champion=3, champion_info=CHAMP_INFO, project_dir=env.project, retrain_on=["dataset_drift"]
    )
    plan = decision.plan
    assert decision.kind == "request" and plan is not None
    assert plan.training_batch_ids == ["d1"] and plan.new_labelled_rows == 300 - 12
    out = build_retraining_dataset(s, project, plan)
    assert out.disputed_rows_excluded == 12 and out.disputed_by_batch == {"d1": 12}
    assert out.batches == {"d1": 288} and out.rows == len(read_raw(project, ref_path)) + 288
    from mlgov_assets.core.data.datasets import dataset_location

    _, where = dataset_location(env.project, plan.dataset, s.generated_dir)  # in the state dir, not the checkout
    written = read_raw(project, where, header="present")
    tail = written.iloc[-288:].reset_index(drop=True)
    kept = np.setdiff1d(np.arange(300), flips)
    rows = pd.read_parquet(ledger.rows_path("d1")).set_index("row_id")  # the batch as archived (raw strings)
    rows[LABEL] = labels.set_index("row_id")[LABEL]  # its own (inline) labels: the recorded ones
    expected = rows.loc[kept, project.columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(tail, expected)  # the disputed rows are not there, under either label
    # the request records the plan; the run building its dataset from the record gets the same data
    request = record_retrain_request(MonitoringPaths.of(s), plan, trigger="test", policy_sha256="p")
    assert request.plan() == plan
    again = prepare_requested_dataset(s, project, plan.dataset)
    assert again is not None and again.md5 == out.md5 and again.disputed_rows_excluded == 12
    # every labelled row in dispute: nothing left to retrain on, the planner waits for labels
    _conflicting_file(s, "d1", labels, list(range(300)))
    _, info = record_labels(s, project, "d1", frame)
    assert info.disputed == 300
    again = plan_retraining(
        ledger, [], champion=3, champion_info=CHAMP_INFO, project_dir=env.project, retrain_on=["dataset_drift"]
    )
    assert again.kind == "pending_labels"
