"""Monitoring orchestration without Dagster or MLflow: landing-folder planning, the batch ledger,
quarantine, alerts (with a loopback webhook), the reference-profile cache, performance verdicts
(vs scikit-learn), the retraining planner and dataset builder (real DVC repo), summary and status."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov_assets.core.monitoring import service as mon
from mlgov_assets.core.data.adult import COLUMNS, LABEL, read_adult_csv
from mlgov_assets.core.monitoring.batches import labels_filename, retrain_run_key, simulate_batch
from mlgov_assets.core.settings import get_settings

DATA = Path(__file__).resolve().parents[3] / "data"


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    return read_adult_csv(DATA / "adult.test")


@pytest.fixture
def settings(tmp_path):
    return get_settings(
        home=tmp_path / "state",
        project_dir=tmp_path / "project",
        landing_dir=tmp_path / "landing",
        policy_path=DATA.parent / "mlgov_assets" / "policies" / "default.yaml",
    ).ensure()


def land(landing: Path, name: str, frame: pd.DataFrame, *, age_s: float = 60.0) -> Path:
    """Write a landing file as a producer would, dated ``age_s`` seconds ago (past the settle time)."""
    landing.mkdir(parents=True, exist_ok=True)
    path = landing / name
    frame.to_csv(path, index=False)
    past = time.time() - age_s
    os.utime(path, (past, past))
    return path


def sim(kind: str, holdout: pd.DataFrame, rows: int = 400, seed: int = 0, labels: bool = False):
    return simulate_batch(kind, holdout, rows, seed, with_labels=labels)


# --------------------------------------------------------------------------- landing plan


def test_plan_landing_new_same_again_changed_and_refused(settings, holdout):
    ledger = mon.BatchLedger(mon.MonitoringPaths.of(settings))
    batch, _ = sim("none", holdout)
    land(settings.landing_dir, "b1.csv", batch)
    land(settings.landing_dir, "notes.txt", batch)
    land(settings.landing_dir, "bad..id.csv", batch)
    plan = mon.plan_landing(settings.landing_dir, ledger, {})
    assert [f.batch_id for f in plan.new_batches] == ["b1"]
    assert plan.new_batches[0].md5 == hashlib.md5((settings.landing_dir / "b1.csv").read_bytes()).hexdigest()
    assert plan.new_batches[0].run_key == f"batch-b1-{plan.new_batches[0].md5[:12]}"
    assert {f for f, _ in plan.refused} == {"notes.txt", "bad..id.csv"}
    assert "'..'" in dict(plan.refused)["bad..id.csv"]

    again = mon.plan_landing(settings.landing_dir, ledger, plan.seen)
    assert not again.new_batches and not again.refused  # same files: nothing, and refusals are not repeated

    # the ledger finished b1 with these bytes: a fresh cursor (daemon restart) still does nothing
    ledger.update("b1", md5=plan.new_batches[0].md5, status="scored", drift={"breach": False})
    assert not mon.plan_landing(settings.landing_dir, ledger, {}).new_batches

    # other bytes under a finished batch id are refused, never processed (batches are immutable)
    land(settings.landing_dir, "b1.csv", sim("none", holdout, seed=9)[0])
    changed = mon.plan_landing(settings.landing_dir, ledger, again.seen)
    assert not changed.new_batches
    assert "immutable" in dict(changed.refused)["b1.csv"]


def test_plan_landing_labels_wait_ride_along_or_request(settings, holdout):
    ledger = mon.BatchLedger(mon.MonitoringPaths.of(settings))
    batch, labels = sim("none", holdout, labels=True)
    land(settings.landing_dir, labels_filename("b2"), labels)
    first = mon.plan_landing(settings.landing_dir, ledger, {})
    assert not first.new_labels and [f for f, _ in first.waiting] == ["b2.labels.csv"]

    land(settings.landing_dir, "b2.csv", batch)
    second = mon.plan_landing(settings.landing_dir, ledger, first.seen)
    assert [f.batch_id for f in second.new_batches] == ["b2"] and not second.new_labels  # rides along
    assert second.seen["b2.labels.csv"]["outcome"] == "with_batch"

    # the batch run finished without consuming them (e.g. it ran before they landed): request them once
    ledger.update("b2", md5=second.new_batches[0].md5, status="scored", drift={"breach": False})
    third = mon.plan_landing(settings.landing_dir, ledger, second.seen)
    assert [f.name for f in third.new_labels] == ["b2.labels.csv"]
    assert third.new_labels[0].run_key.startswith("labels-b2-")
    assert not mon.plan_landing(settings.landing_dir, ledger, third.seen).new_labels
    # once the ledger recorded these labels, even a fresh cursor leaves them alone
    ledger.update("b2", labels={"file_md5": third.new_labels[0].md5, "n_labelled": len(labels)})
    assert not mon.plan_landing(settings.landing_dir, ledger, {}).new_labels


def test_plan_landing_leaves_fresh_files_to_settle(settings, holdout):
    ledger = mon.BatchLedger(mon.MonitoringPaths.of(settings))
    land(settings.landing_dir, "b3.csv", sim("none", holdout)[0], age_s=0)
    plan = mon.plan_landing(settings.landing_dir, ledger, {}, settle_seconds=5)
    assert not plan.new_batches and plan.seen["b3.csv"]["outcome"] == "settling"
    later = mon.plan_landing(settings.landing_dir, ledger, plan.seen, settle_seconds=5, now=time.time() + 10)
    assert [f.batch_id for f in later.new_batches] == ["b3"]


# --------------------------------------------------------------------------- accepting batches


def test_valid_batch_is_archived_and_recorded(settings, holdout):
    batch, _ = sim("none", holdout, rows=300, seed=4)
    land(settings.landing_dir, "ok1.csv", batch)
    acc = mon.accept_batch(settings, "ok1")
    assert acc.valid and acc.quarantine_dir is None
    assert list(acc.frame["row_id"]) == list(range(300))
    assert acc.frame["age"].dtype.kind == "i"  # validated and typed
    archived = pd.read_parquet(mon.BatchLedger(mon.MonitoringPaths.of(settings)).rows_path("ok1"))
    pd.testing.assert_frame_equal(
        archived.drop(columns=["row_id"]).reset_index(drop=True),
        batch.reset_index(drop=True)[archived.columns[1:]],
        check_dtype=False,
    )
    entry = mon.BatchLedger(mon.MonitoringPaths.of(settings)).get("ok1")
    assert entry["status"] == "validated" and entry["rows"] == 300 and entry["validation"]["passed"]


def test_broken_batch_is_quarantined_with_its_report_and_alerted(settings, holdout):
    batch, _ = sim("broken", holdout, rows=300, seed=5)
    src = land(settings.landing_dir, "bad1.csv", batch)
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    acc = mon.accept_batch(settings, "bad1")
    assert not acc.valid
    qdir = mon.MonitoringPaths.of(settings).quarantine_dir("bad1")
    assert acc.quarantine_dir == qdir
    assert not src.exists() and (qdir / "bad1.csv").exists()  # moved out of the landing folder
    report = json.loads((qdir / "failure_report.json").read_text())
    assert report["md5"] == md5
    failed = {(f["column"], f["check"].split("(")[0]) for f in report["report"]["failures"]}
    assert ("occupation", "column_in_dataframe") in failed and ("workclass", "isin ") in failed
    assert any(c == "age" for c, _ in failed) and any(c == "hours_per_week" for c, _ in failed)
    entry = mon.BatchLedger(mon.MonitoringPaths.of(settings)).get("bad1")
    assert entry["status"] == "quarantined" and not mon.breach_reasons(entry, ["dataset_drift", "performance"])
    alerts = mon.read_jsonl(mon.MonitoringPaths.of(settings).alerts)
    assert [(a["kind"], a["severity"], a["batch_id"]) for a in alerts] == [("batch_quarantined", "ERROR", "bad1")]
    with pytest.raises(mon.MonitoringError, match="quarantined"):
        mon.find_batch_file(settings.landing_dir, "bad1", mon.BatchLedger(mon.MonitoringPaths.of(settings)))


def test_unreadable_file_is_quarantined_too(settings):
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    (settings.landing_dir / "junk.parquet").write_bytes(b"not parquet at all")
    acc = mon.accept_batch(settings, "junk")
    assert not acc.valid and "unreadable" in acc.summary
    assert (acc.quarantine_dir / "junk.parquet").exists()


def test_a_batch_without_labels_validates_and_labels_come_from_both_sources(settings, holdout):
    batch, labels = sim("none", holdout, rows=250, seed=6, labels=True)
    inline = batch.assign(income=labels["income"].to_numpy()).copy()
    inline.loc[:99, "income"] = None  # first 100 rows unlabelled in the file
    land(settings.landing_dir, "lab1.csv", inline)
    acc = mon.accept_batch(settings, "lab1")
    assert acc.valid
    y, info = mon.collect_labels(settings.landing_dir, acc.frame)
    assert info["inline"] == 150 and info["n_labelled"] == 150 and info["file"] is None
    delayed = labels.iloc[:120].copy()
    delayed.loc[110, "income"] = "<=50K" if delayed.loc[110, "income"] == ">50K" else ">50K"  # one disagreement
    land(settings.landing_dir, labels_filename("lab1"), delayed)
    y, info = mon.collect_labels(settings.landing_dir, acc.frame)
    assert info["n_labelled"] == 250 and info["conflicts"] == 1 and info["from_file"] == 120
    expected = (labels["income"] == ">50K").astype(float).to_numpy()
    expected[110] = 1 - expected[110]  # the later (delayed) label wins
    np.testing.assert_array_equal(y.to_numpy(), expected)


# --------------------------------------------------------------------------- alerts and webhook


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):  # keep pytest output clean
        pass


def test_alerts_are_logged_once_and_posted_to_the_webhook(tmp_path):
    paths = mon.MonitoringPaths(tmp_path / "monitoring")
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received.clear()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    try:
        rec = mon.raise_alert(
            paths,
            "dataset_drift",
            "batch x drifted",
            batch_id="x",
            evidence={"share": np.float64(0.6)},
            webhook_url=url,
        )
        dup = mon.raise_alert(paths, "dataset_drift", "batch x drifted", batch_id="x", webhook_url=url)
    finally:
        server.shutdown()
    assert rec["webhook"] == {"ok": True, "status": 204} and dup is None
    assert len(_Hook.received) == 1
    ctype, payload = _Hook.received[0]
    assert ctype == "application/json" and payload["kind"] == "dataset_drift" and payload["evidence"]["share"] == 0.6
    lines = mon.read_jsonl(paths.alerts)
    assert len(lines) == 1 and lines[0]["alert_id"] == rec["alert_id"]


def test_an_unreachable_webhook_is_logged_not_raised(tmp_path):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now

    class Log:
        messages: list = []

        def warning(self, m):
            self.messages.append(m)

    log = Log()
    t0 = time.perf_counter()
    rec = mon.raise_alert(
        mon.MonitoringPaths(tmp_path / "m"),
        "performance_breach",
        "b",
        webhook_url=f"http://127.0.0.1:{port}/",
        log=log,
        timeout=1.0,
    )
    assert time.perf_counter() - t0 < 2.0
    assert rec["webhook"]["ok"] is False and any("webhook" in m for m in log.messages)


# --------------------------------------------------------------------------- reference profile cache


def test_reference_profile_is_built_once_per_reference_md5(settings, monkeypatch):
    from mlgov_assets.core.integrity import md5_file
    from mlgov_assets.core.monitoring.drift import ReferenceProfile

    paths = mon.MonitoringPaths.of(settings)
    ref = mon.Reference("data/adult.data", md5_file(DATA / "adult.data"), DATA / "adult.data", "project")
    builds = []
    real_build = ReferenceProfile.build.__func__
    monkeypatch.setattr(
        ReferenceProfile, "build", classmethod(lambda cls, *a, **k: builds.append(1) or real_build(cls, *a, **k))
    )
    p1, meta = mon.reference_profile(paths, ref, bins=10)
    p2, _ = mon.reference_profile(paths, ref, bins=10)
    assert len(builds) == 1 and p1.fingerprint == p2.fingerprint
    assert (paths.reference / ref.md5 / "profile-b10.json").exists()
    raw = read_adult_csv(DATA / "adult.data")
    assert meta["rows"] == len(raw) and meta["positive_rate"] == pytest.approx((raw[LABEL] == ">50K").mean())
    # the champion's scores are attached per champion, on top of the same data profile
    with_pred = mon.profile_with_champion(paths, ref, p1, champion=7, load_model=lambda v: _ToyModel())
    assert with_pred.prediction is not None and with_pred.data_fingerprint == p1.fingerprint
    assert with_pred.fingerprint != p1.fingerprint
    again = mon.profile_with_champion(paths, ref, p1, champion=7, load_model=lambda v: pytest.fail("re-scored"))
    assert again.fingerprint == with_pred.fingerprint


class _ToyModel:
    """A fit-free stand-in with the sklearn interface (score rises with age and hours)."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        z = (X["age"].to_numpy(float) - 40) / 12 + (X["hours_per_week"].to_numpy(float) - 40) / 10
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])


# --------------------------------------------------------------------------- performance


def test_performance_report_matches_sklearn_and_judges_the_breach(holdout):
    from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score

    rng = np.random.default_rng(0)
    n = 600
    y = pd.Series(rng.integers(0, 2, n).astype(float), index=pd.RangeIndex(n, name="row_id"))
    champ = np.clip(0.35 * y.to_numpy() + rng.uniform(0, 0.65, n), 0, 1)
    shadow = np.clip(0.15 * y.to_numpy() + rng.uniform(0, 0.85, n), 0, 1)
    scores = pd.DataFrame(
        {
            "row_id": np.arange(n),
            "champion_score": champ,
            "champion_decision": (champ >= 0.5).astype(int),
            "shadow_score": shadow,
            "shadow_decision": (shadow >= 0.5).astype(int),
        }
    )
    y.iloc[:50] = np.nan  # unlabelled rows are ignored
    holdout_metrics = {"accuracy": 0.95, "roc_auc": 0.9}
    rep = mon.performance_report(
        y,
        scores,
        champion_metrics=holdout_metrics,
        tolerance={"accuracy": 0.05, "roc_auc": 0.05},
        min_rows=200,
        alpha=0.05,
        reference_positive_rate=0.24,
    )
    yt, s = y.iloc[50:].to_numpy().astype(int), champ[50:]
    assert rep["n_labelled"] == 550
    assert rep["champion"]["accuracy"] == pytest.approx(accuracy_score(yt, s >= 0.5))
    assert rep["champion"]["precision"] == pytest.approx(precision_score(yt, s >= 0.5))
    assert rep["champion"]["recall"] == pytest.approx(recall_score(yt, s >= 0.5))
    assert rep["champion"]["roc_auc"] == pytest.approx(roc_auc_score(yt, s))
    assert rep["shadow"]["roc_auc"] == pytest.approx(roc_auc_score(yt, shadow[50:]))
    expected_breach = {m for m, ref in holdout_metrics.items() if ref - rep["champion"][m] > 0.05}
    assert rep["breach"] == bool(expected_breach) and set(rep["breached_metrics"]) == expected_breach
    assert rep["concept"]["positive_rate"] == pytest.approx(yt.mean())
    assert rep["concept"]["calibration_gap"] == pytest.approx(yt.mean() - s.mean())
    a_ok, b_ok = (s >= 0.5) == yt, (shadow[50:] >= 0.5) == yt
    assert (rep["mcnemar"]["b"], rep["mcnemar"]["c"]) == (int((a_ok & ~b_ok).sum()), int((~a_ok & b_ok).sum()))
    assert rep["mcnemar"]["promotes"] is False
    # a mitigated model decides by its own thresholds: accuracy follows the decisions, AUC the scores
    flipped = scores.assign(champion_decision=1 - scores["champion_decision"])
    rep2 = mon.performance_report(
        y,
        flipped,
        champion_metrics=holdout_metrics,
        tolerance={"accuracy": 0.05},
        min_rows=200,
        alpha=0.05,
        reference_positive_rate=None,
    )
    assert rep2["champion"]["accuracy"] == pytest.approx(1 - rep["champion"]["accuracy"])
    assert rep2["champion"]["roc_auc"] == pytest.approx(rep["champion"]["roc_auc"])
    # too few labelled rows: reported, not judged
    small = mon.performance_report(
        y.iloc[:250],
        scores,
        champion_metrics={"accuracy": 1.0},
        tolerance={"accuracy": 0.0},
        min_rows=300,
        alpha=0.05,
        reference_positive_rate=None,
    )
    assert (
        small["n_labelled"] == 200
        and not small["judged"]
        and not small["breach"]
        and "min_batch_rows" in small["reason"]
    )


# --------------------------------------------------------------------------- retraining planner


def _scored(ledger, batch_id, *, champion, drift=False, perf=False, labelled=0, fingerprint="fp-ref"):
    ledger.update(
        batch_id,
        status="scored",
        champion_version=champion,
        md5="m" + batch_id,
        reference={"fingerprint": fingerprint, "path": "data/adult.data", "md5": "r", "read_from": "x"},
        drift={"breach": drift, "judged": True},
        performance={"breach": perf, "labelled": bool(labelled)},
        labels={"n_labelled": labelled},
    )
    if labelled:
        pd.DataFrame({"row_id": np.arange(labelled), "income": ">50K"}).to_parquet(ledger.labels_path(batch_id))


CHAMP_INFO = {
    "tags": {"mlgov.train_data_path": "data/adult.data"},
    "params": {"learning_rate": "0.15", "max_iter": "60", "max_depth": "None", "random_state": "0"},
}


def test_retraining_plan_is_decided_once_per_breach_and_champion(tmp_path):
    ledger = mon.BatchLedger(mon.MonitoringPaths(tmp_path / "m"))
    kw = {"champion": 3, "champion_info": CHAMP_INFO, "project_dir": tmp_path, "retrain_on": ["dataset_drift", "performance"]}
    _scored(ledger, "old", champion=2, drift=True, labelled=10)  # a breach against an earlier champion
    _scored(ledger, "calm", champion=3, labelled=20)
    assert mon.plan_retraining(ledger, [], **kw).kind == "none"

    _scored(ledger, "drifted", champion=3, drift=True)  # unlabelled itself; labelled rows exist elsewhere
    d = mon.plan_retraining(ledger, [], **kw)
    assert d.kind == "request" and d.plan.trigger_batch_ids == ["drifted"]
    assert d.plan.run_key == retrain_run_key(
        {"batch_ids": ["drifted"], "reference_fingerprint": "fp-ref", "champion_version": 3}
    )
    assert sorted(d.plan.training_batch_ids) == ["calm", "old"] and d.plan.new_labelled_rows == 30
    assert d.plan.params == {"learning_rate": 0.15, "max_iter": 60, "max_depth": None, "random_state": 0}
    assert d.plan.run_config() == {
        "ops": {
            "training_data": {"config": {"path": f"data/generated/{d.plan.run_key}.csv"}},
            "challenger_model": {"config": d.plan.params},
        }
    }
    # the same decision again (new tick, fresh cursor): the same key
    assert mon.plan_retraining(ledger, [], **kw).plan.run_key == d.plan.run_key
    # once requested, that breach is handled for this champion ...
    requested = [{"champion_version": 3, "trigger_batch_ids": ["drifted"], "run_key": d.plan.run_key}]
    assert mon.plan_retraining(ledger, requested, **kw).kind == "none"
    # ... a new breach gets its own request; retrain_on decides which breaches count
    _scored(ledger, "slow", champion=3, perf=True, labelled=5)
    d2 = mon.plan_retraining(ledger, requested, **kw)
    assert d2.plan.trigger_batch_ids == ["slow"] and d2.plan.reasons == {"slow": ["performance"]}
    assert mon.plan_retraining(ledger, requested, **{**kw, "retrain_on": ["dataset_drift"]}).kind == "none"
    # batches already inside the champion's training data are not counted twice
    manifest = tmp_path / "data" / "generated" / "prev.manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"included_batch_ids": ["old", "calm", "slow"]}))
    info = {**CHAMP_INFO, "tags": {"mlgov.train_data_path": "data/generated/prev.csv"}}
    assert mon.plan_retraining(ledger, requested, **{**kw, "champion_info": info}).kind == "pending_labels"


def test_unlaunched_requests_are_re_emitted_only_without_a_run():
    reqs = [
        {"run_key": "k1", "champion_version": 3},
        {"run_key": "k2", "champion_version": 3},
        {"run_key": "k0", "champion_version": 2},
    ]
    assert [r["run_key"] for r in mon.unlaunched_requests(reqs, 3, lambda k: k == "k1")] == ["k2"]
    assert mon.unlaunched_requests(reqs, 3, lambda k: False, skip={"k1", "k2"}) == []


def test_retraining_dataset_is_reference_plus_labelled_rows_and_dvc_versioned(env, holdout):
    from mlgov_assets.core.data.schemas import RawAdultSchema, validate
    from mlgov_assets.core.integrity import md5_file

    s = env.settings().ensure()
    ledger = mon.BatchLedger(mon.MonitoringPaths.of(s))
    batch, labels = simulate_batch("covariate", holdout, 300, 11, with_labels=True)
    land(s.landing_dir, "cov1.csv", batch)
    assert mon.accept_batch(s, "cov1").valid
    partial = labels.iloc[::2]  # only every second row got its label
    partial.to_parquet(ledger.labels_path("cov1"), index=False)
    land(s.landing_dir, "unl1.csv", simulate_batch("none", holdout, 200, 12)[0])
    assert mon.accept_batch(s, "unl1").valid  # unlabelled: contributes nothing
    ref_path = env.project / "data" / "adult.data"
    plan = mon.RetrainPlan(
        run_key="retrain-" + "a" * 24,
        champion_version=1,
        trigger_batch_ids=["cov1"],
        reasons={"cov1": ["dataset_drift"]},
        training_batch_ids=["cov1"],
        new_labelled_rows=150,
        reference={"path": "data/adult.data", "md5": md5_file(ref_path), "read_from": str(ref_path)},
        params={},
    )
    out = mon.build_retraining_dataset(s, plan)
    csv = env.project / plan.dataset_rel
    written = read_adult_csv(csv)
    reference = read_adult_csv(ref_path)
    assert len(written) == len(reference) + 150 == out["rows"]
    tail = written.iloc[len(reference) :].reset_index(drop=True)
    expected = batch.iloc[::2].assign(income=partial["income"].to_numpy())[COLUMNS].reset_index(drop=True)
    pd.testing.assert_frame_equal(tail, expected)
    assert validate(written, RawAdultSchema, source="generated").passed
    assert out["md5"] == hashlib.md5(csv.read_bytes()).hexdigest()
    assert (csv.parent / (csv.name + ".dvc")).exists() and out["md5"] in (csv.parent / (csv.name + ".dvc")).read_text()
    # simulated rows come from adult.test: the overlap with the holdout is counted, not hidden
    overlap = len(expected.merge(read_adult_csv(env.project / "data" / "adult.test").drop_duplicates(), on=COLUMNS))
    assert out["holdout_overlap_rows"] == overlap > 0
    assert out["included_batch_ids"] == ["cov1"]
    # written once per run key: a re-emitted request trains on the same bytes
    again = mon.build_retraining_dataset(s, plan)
    assert again["md5"] == out["md5"] and not again["added_to_dvc_now"]


# --------------------------------------------------------------------------- summary and status


def test_summary_and_status_report_the_last_batches(settings):
    ledger = mon.BatchLedger(mon.MonitoringPaths.of(settings))
    for i, (drift, perf) in enumerate([(False, None), (True, 0.80), (False, 0.86), (True, None)]):
        ledger.update(
            f"s{i}",
            status="scored",
            champion_version=1,
            created_at=f"2026-01-0{i + 1}T00:00:00+00:00",
            drift={
                "judged": True,
                "breach": drift,
                "verdict": "drift" if drift else "ok",
                "drifted_columns": ["age", "hours_per_week"] if drift else [],
            },
            performance={
                "labelled": perf is not None,
                "n_labelled": 300 if perf else 0,
                "status": "ok" if perf else "awaiting labels",
                "champion": {"accuracy": perf},
            },
        )
    ledger.update("q", status="quarantined", created_at="2026-01-05T00:00:00+00:00")
    summary = mon.monitoring_summary(settings, last_n=4)
    assert [r["batch_id"] for r in summary["batches"]] == ["s1", "s2", "s3", "q"]
    assert summary["counts"]["dataset_drift"] == 2 and summary["counts"]["quarantined"] == 1
    assert summary["drift_rate"] == pytest.approx(2 / 3)
    assert summary["mean_accuracy"] == pytest.approx((0.80 + 0.86) / 2)
    assert summary["most_drifted_columns"][0] == ("age", 2) or summary["most_drifted_columns"][0] == ["age", 2]
    status = mon.monitoring_status(settings)
    assert status["batches"] == 5 and status["quarantined"] == 1
    assert status["latest_drift"]["batch_id"] == "s3" and status["latest_drift"]["breach"] is True
    assert status["latest_performance"]["batch_id"] == "s2"
