"""The retraining planner, re-emission of unlaunched requests, and the dataset builder (real DVC repo)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from mlgov_assets.core.models.registry import VersionInfo
from mlgov_assets.core.models.training import HyperParams
from mlgov_assets.core.monitoring.batches import retrain_run_key, simulate_batch
from mlgov_assets.core.monitoring.intake import accept_batch
from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringPaths
from mlgov_assets.core.monitoring.reference import ReferenceRecord
from mlgov_assets.core.monitoring.retrain_dataset import build_retraining_dataset
from mlgov_assets.core.monitoring.retrain_plan import RetrainPlan, plan_retraining, verdicts_pending
from mlgov_assets.core.monitoring.retraining import RetrainRequest, unlaunched_requests, unrequested_breaches
from mlgov_assets.core.project.project import open_project
from mlgov_assets.core.project.reader import read_raw
from mlgov_tests.core.monitoring.helpers import ADULT, land

COLUMNS = ADULT.columns

# --------------------------------------------------------------------------- retraining planner


def _scored(ledger, batch_id, *, champion, drift=False, perf=False, labelled=0, fingerprint="fp-ref", status="scored"):
    ledger.update(
        batch_id,
        status=status,
        champion_version=champion,
        md5="m" + batch_id,
        reference={
            "fingerprint": fingerprint,
            "path": "data/adult.data",
            "md5": "r",
            "read_from": "x",
            "source": "project",
        },
        drift={"breach": drift, "judged": True},
        performance={"breach": perf, "labelled": bool(labelled)},
        labels={"n_labelled": labelled},
    )
    if labelled:
        pd.DataFrame({"row_id": np.arange(labelled), "income": ">50K"}).to_parquet(ledger.labels_path(batch_id))


CHAMP_INFO = VersionInfo(
    name="m",
    version=3,
    run_id=None,
    tags={"mlgov.train_data_path": "data/adult.data"},
    params={"learning_rate": "0.15", "max_iter": "60", "max_depth": "None", "random_state": "0"},
)


def _request(run_key: str, champion: int, trigger_batch_ids: list[str] | None = None) -> RetrainRequest:
    return RetrainRequest(
        at="2026-01-01T00:00:00+00:00",
        run_key=run_key,
        champion_version=champion,
        trigger_batch_ids=trigger_batch_ids or [],
        dataset=f"data/generated/{run_key}.csv",
        trigger="test",
        policy_sha256="p",
    )


def test_a_drift_verdict_recorded_before_scoring_is_acted_on_with_its_labelled_rows(tmp_path):
    """The verdict (status ``assessed``) comes before the batch is scored: the request follows it,
    and the batch's own labelled rows are training data already (they need no scores)."""
    ledger = BatchLedger(MonitoringPaths(tmp_path / "m"))
    kw = {"champion": 3, "champion_info": CHAMP_INFO, "project_dir": tmp_path, "retrain_on": ["dataset_drift"]}
    _scored(ledger, "drifted", champion=3, drift=True, labelled=25, status="assessed")
    d = plan_retraining(ledger, [], **kw)
    assert d.kind == "request" and d.plan.trigger_batch_ids == ["drifted"]
    assert d.plan.training_batch_ids == ["drifted"] and d.plan.new_labelled_rows == 25
    # a batch that was refused (quarantined) is neither a breach nor training data
    ledger.update("refused", status="quarantined", drift={"breach": True}, labels={"n_labelled": 5})
    assert plan_retraining(ledger, [], **kw).plan.training_batch_ids == ["drifted"]


def test_retraining_plan_is_decided_once_per_breach_and_champion(tmp_path):
    ledger = BatchLedger(MonitoringPaths(tmp_path / "m"))
    kw = {
        "champion": 3,
        "champion_info": CHAMP_INFO,
        "project_dir": tmp_path,
        "retrain_on": ["dataset_drift", "performance"],
    }
    _scored(ledger, "old", champion=2, drift=True, labelled=10)  # a breach against an earlier champion
    _scored(ledger, "calm", champion=3, labelled=20)
    assert plan_retraining(ledger, [], **kw).kind == "none"

    _scored(ledger, "drifted", champion=3, drift=True)  # unlabelled itself; labelled rows exist elsewhere
    d = plan_retraining(ledger, [], **kw)
    assert d.kind == "request" and d.plan.trigger_batch_ids == ["drifted"]
    assert d.plan.run_key == retrain_run_key(
        {"batch_ids": ["drifted"], "reference_fingerprint": "fp-ref", "champion_version": 3}
    )
    assert sorted(d.plan.training_batch_ids) == ["calm", "old"] and d.plan.new_labelled_rows == 30
    recorded = {"learning_rate": 0.15, "max_iter": 60, "max_depth": None, "random_state": 0}
    assert d.plan.params == HyperParams.model_validate(recorded)
    assert d.plan.params.model_dump(exclude_unset=True) == d.plan.model_dump()["params"] == recorded
    assert d.plan.dataset == f"data/generated/{d.plan.run_key}.csv"
    assert d.message == "retrain: drifted (dataset_drift)"
    # the same decision again (new tick, fresh cursor): the same key
    assert plan_retraining(ledger, [], **kw).plan.run_key == d.plan.run_key
    # once requested, that breach is handled for this champion ...
    requested = [_request(d.plan.run_key, 3, ["drifted"])]
    assert plan_retraining(ledger, requested, **kw).kind == "none"
    # ... a new breach gets its own request; retrain_on decides which breaches count
    _scored(ledger, "slow", champion=3, perf=True, labelled=5)
    d2 = plan_retraining(ledger, requested, **kw)
    assert d2.plan.trigger_batch_ids == ["slow"] and d2.plan.reasons == {"slow": ["performance"]}
    assert plan_retraining(ledger, requested, **{**kw, "retrain_on": ["dataset_drift"]}).kind == "none"
    # batches already inside the champion's training data are not counted twice
    manifest = tmp_path / "data" / "generated" / "prev.manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"included_batch_ids": ["old", "calm", "slow"]}))
    info = CHAMP_INFO.model_copy(update={"tags": {"mlgov.train_data_path": "data/generated/prev.csv"}})
    assert plan_retraining(ledger, requested, **{**kw, "champion_info": info}).kind == "pending_labels"


def test_unrequested_breaches_are_what_the_planner_could_still_request(tmp_path):
    """The sensor's cheap check (no registry): with no unrequested breach the planner decides nothing."""
    ledger = BatchLedger(MonitoringPaths(tmp_path / "m"))
    on = ["dataset_drift", "performance"]
    kw = {"champion": 3, "champion_info": CHAMP_INFO, "project_dir": tmp_path, "retrain_on": on}
    _scored(ledger, "old", champion=2, drift=True, labelled=10)
    _scored(ledger, "calm", champion=3, labelled=20)
    _scored(ledger, "drifted", champion=3, perf=True)
    assert sorted(unrequested_breaches(ledger.entries(), [], on)) == ["drifted", "old"]
    assert unrequested_breaches(ledger.entries(), [], ["dataset_drift"]) == ["old"]
    # a request covers a breach only for the champion that scored the batch
    elsewhere = [_request("k1", 2, ["drifted"])]
    assert sorted(unrequested_breaches(ledger.entries(), elsewhere, on)) == ["drifted", "old"]
    assert plan_retraining(ledger, elsewhere, **kw).kind == "request"
    requested = [_request("k0", 2, ["old"]), _request("k1", 3, ["drifted"])]
    assert unrequested_breaches(ledger.entries(), requested, on) == []
    assert plan_retraining(ledger, requested, **kw).kind == "none"


def test_unlaunched_requests_are_re_emitted_only_without_a_run():
    reqs = [_request("k1", 3), _request("k2", 3), _request("k0", 2)]
    assert [r.run_key for r in unlaunched_requests(reqs, 3, lambda k: k == "k1")] == ["k2"]
    assert unlaunched_requests(reqs, 3, lambda k: False, skip={"k1", "k2"}) == []


def test_retraining_dataset_is_reference_plus_labelled_rows_and_dvc_versioned(env, holdout):
    from mlgov_assets.core.data.schemas import validate
    from mlgov_assets.core.integrity import md5_file
    from mlgov_assets.core.project.schemas import raw_schema

    s = env.settings().ensure()
    project = open_project(s.project_spec, s.project_dir)  # the Adult demo, data in the env's repository
    assert project.holdout_file == "data/adult.test"  # what the overlap is checked against
    ledger = BatchLedger(MonitoringPaths.of(s))
    batch, labels = simulate_batch(project, "covariate", holdout, 300, 11, with_labels=True)
    land(s.landing_dir, "cov1.csv", batch)
    assert accept_batch(s, project, "cov1").intake.valid
    partial = labels.iloc[::2]  # only every second row got its label
    partial.to_parquet(ledger.labels_path("cov1"), index=False)
    land(s.landing_dir, "unl1.csv", simulate_batch(project, "none", holdout, 200, 12)[0])
    assert accept_batch(s, project, "unl1").intake.valid  # unlabelled: contributes nothing
    ref_path = env.project / "data" / "adult.data"
    plan = RetrainPlan(
        run_key="retrain-" + "a" * 24,
        champion_version=1,
        trigger_batch_ids=["cov1"],
        reasons={"cov1": ["dataset_drift"]},
        training_batch_ids=["cov1"],
        new_labelled_rows=150,
        reference=ReferenceRecord(
            path="data/adult.data",
            md5=md5_file(ref_path),
            read_from=str(ref_path),
            source="project",
            fingerprint="fp",
        ),
        params={},
    )
    out = build_retraining_dataset(s, project, plan)
    csv = s.generated_dir / plan.dataset.removeprefix("data/generated/")  # the state directory's, not the checkout's
    written = read_raw(project, csv, header="present")
    reference = read_raw(project, ref_path)
    assert len(written) == len(reference) + 150 == out.rows
    tail = written.iloc[len(reference) :].reset_index(drop=True)
    expected = batch.iloc[::2].assign(income=partial["income"].to_numpy())[COLUMNS].reset_index(drop=True)
    pd.testing.assert_frame_equal(tail, expected)
    assert validate(written, raw_schema(project), source="generated").passed
    assert out.md5 == hashlib.md5(csv.read_bytes()).hexdigest()
    assert (csv.parent / (csv.name + ".dvc")).exists() and out.md5 in (csv.parent / (csv.name + ".dvc")).read_text()
    # simulated rows come from adult.test: the overlap with the holdout is counted, not hidden
    overlap = len(expected.merge(read_raw(project, env.project / "data" / "adult.test").drop_duplicates(), on=COLUMNS))
    assert out.holdout_overlap_rows == overlap > 0
    assert out.included_batch_ids == ["cov1"]
    # written once per run key: a re-emitted request trains on the same bytes
    again = build_retraining_dataset(s, project, plan)
    assert again.md5 == out.md5 and not again.added_to_dvc_now


def test_which_batches_may_still_record_a_verdict_retraining_acts_on():
    both = ["dataset_drift", "performance"]
    labelled = {"n_labelled": 40}
    assert verdicts_pending(None, both) and verdicts_pending({}, both)
    assert verdicts_pending({"status": "validated", "labels": labelled}, both)  # no drift verdict yet
    assert not verdicts_pending({"status": "quarantined"}, both)
    assert not verdicts_pending({"status": "assessed", "drift": {"breach": True}, "labels": labelled}, both)
    # no drift breach, labelled: the performance verdict (after scoring) is still to come
    calm = {"status": "assessed", "drift": {"breach": False}, "labels": labelled}
    assert verdicts_pending(calm, both)
    assert not verdicts_pending(calm, ["dataset_drift"])  # the policy does not act on performance
    assert not verdicts_pending({**calm, "performance": {"breach": False}}, both)
    assert not verdicts_pending({**calm, "labels": {"n_labelled": 0}}, both)
    assert not verdicts_pending({**calm, "status": "scored", "performance": {"breach": True}}, both)
