"""`mlgov serve` against a real trained champion: verified load, scores equal to the batch scorer's,
hot swap under concurrent load, a failing shadow, bad requests, live traffic -> landing batch ->
`mlgov monitor --once` (drift, labels by row id), a real uvicorn, a tampered artifact refused."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlgov_assets.cli import main
from mlgov_assets.core.models.registry import Registry
from mlgov_assets.core.monitoring.scoring import load_verified, model_inputs, score_model
from mlgov_assets.core.serving.options import ServeOptions
from mlgov_assets.core.serving.predlog import PredictionRecord, ShadowRecord, read_log
from mlgov_assets.core.serving.roller import land_labels
from mlgov_assets.core.serving.service import ScoringService
from mlgov_assets.serve.app import create_app
from mlgov_tests.conftest import CORE_ONLY, _make_env
from mlgov_tests.core.monitoring.helpers import ADULT, DATA, read_adult

pytestmark = pytest.mark.slow
NO_RETRAIN = {
    "performance_tolerance": {"accuracy": 0.05, "roc_auc": 0.05},
    "min_batch_rows": 200,
    "retrain_on": [],
}


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    return read_adult(DATA / "adult.test")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, project_template, holdout):
    """A champion trained by `mlgov train` (the governed path) and a second, different version of
    the same recipe registered beside it (the shadow challenger, and the target of a swap)."""
    from mlgov_assets.core.models.training import TARGET, HyperParams, fit
    from mlgov_assets.core.project.features import build_features

    mp = pytest.MonkeyPatch()
    env = _make_env(tmp_path_factory.mktemp("serve"), project_template, mp)
    env.use_policy(drop=CORE_ONLY, monitoring=NO_RETRAIN)
    mp.setenv("DAGSTER_HOME", str(env.home / "dagster"))
    mp.setenv("MLGOV_LANDING_DIR", str(env.home / "incoming"))
    assert main(["train", "--set", "max_iter=60", "--set", "learning_rate=0.15"]) == 0
    reg = env.registry()
    v1 = reg.champion_version()
    train = build_features(ADULT, read_adult(DATA / "adult.data").head(4000))
    assert TARGET in train.columns
    pipe = fit(train, HyperParams(max_iter=15, learning_rate=0.3), ADULT)
    v2 = reg.log_model_version(
        model=pipe,
        flavor="sklearn",
        run_name="serve-test-v2",
        params={"max_iter": 15},
        metrics={},
        tags={
            "mlgov.fingerprint": "serve-test-v2",
            "mlgov.variant": reg.version_info(v1).tags.get("mlgov.variant", ""),
        },
        input_example=train[ADULT.model_features].head(3),
        text_artifacts={},
        pip_requirements=["scikit-learn"],
    ).version
    yield env, v1, v2
    mp.undo()


def _service(env, loader=None, **opts) -> ScoringService:
    from mlgov_assets.core.project.project import open_project

    s = env.settings()
    extra = {} if loader is None else {"shadow_loader": loader}
    return ScoringService(
        s, open_project(s.project_spec, s.project_dir), env.policy_obj(), ServeOptions(**opts), Registry(s), **extra
    )


def _gone(pid: int, within: float = 20.0) -> bool:
    """The process ended (or is a zombie nobody reaped yet) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


def _rows(holdout: pd.DataFrame, start: int, n: int) -> list[dict[str, str]]:
    return holdout.drop(columns=[ADULT.label]).iloc[start : start + n].to_dict("records")


def _expected(reg: Registry, version: int, holdout: pd.DataFrame, start: int, n: int) -> np.ndarray:
    raw = holdout.drop(columns=[ADULT.label]).iloc[start : start + n].reset_index(drop=True)
    return score_model(load_verified(reg, version), model_inputs(ADULT, raw))[0]


def test_scores_reasons_log_and_metrics(trained, holdout, monkeypatch):
    from mlgov_assets.core.governance import explanations

    env, v1, v2 = trained
    built: list[int] = []
    original = explanations.tree_explainer

    def counting(pipeline):
        built.append(1)
        return original(pipeline)

    monkeypatch.setattr(explanations, "tree_explainer", counting)
    svc = _service(env, poll_seconds=3600)
    with TestClient(create_app(svc)) as client:
        ready = client.get("/ready").json()
        assert ready["ready"] and ready["champion_version"] == v1 and ready["shadow_version"] == v2
        one = client.post("/predict", json={"row": _rows(holdout, 0, 1)[0]}).json()
        assert one["model_version"] == v1 and one["request_id"] == str(one["predictions"][0]["row_id"])
        # the same number the batch scorer gives (same verified model, same features)
        assert one["predictions"][0]["score"] == pytest.approx(
            _expected(env.registry(), v1, holdout, 0, 1)[0], abs=1e-12
        )
        many = client.post("/predict?reasons=3", json={"rows": _rows(holdout, 0, 5)}).json()
        assert [p["score"] for p in many["predictions"]] == pytest.approx(
            list(_expected(env.registry(), v1, holdout, 0, 5))
        )
        assert "TreeExplainer" in many["explanation_method"]
        assert all(
            len(p["reasons"]) <= 3 and all(r["contribution"] < 0 for r in p["reasons"]) for p in many["predictions"]
        )
        assert any(p["reasons"] for p in many["predictions"])
        again = client.post("/predict?reasons=3", json={"rows": _rows(holdout, 0, 5)}).json()
        assert built == [1]  # the explainer is built once per champion version, not per request
        # the same reasons as an explainer built for this call alone
        uncached = explanations.local_reasons_frame(
            explanations.explain_pipeline(
                load_verified(env.registry(), v1),
                model_inputs(ADULT, holdout.drop(columns=[ADULT.label]).iloc[0:5].reset_index(drop=True))[
                    ADULT.model_features
                ],
                top_k_reasons=3,
            )
        )
        for i, p in enumerate(again["predictions"]):
            assert p["reasons"] == many["predictions"][i]["reasons"]
            assert [r["feature"] for r in p["reasons"]] == [
                uncached.iloc[i][f"reason_{j}"] for j in range(1, len(p["reasons"]) + 1)
            ]
            assert [r["contribution"] for r in p["reasons"]] == pytest.approx(
                [uncached.iloc[i][f"reason_{j}_shap"] for j in range(1, len(p["reasons"]) + 1)]
            )
        svc.drain()
        metrics = client.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert 'mlgov_serve_requests_total{status="200"} 3' in metrics.text
        assert (
            "mlgov_serve_rows_total 11" in metrics.text
            and 'mlgov_serve_shadow_total{outcome="scored"} 3' in metrics.text
        )
        assert "/predict" in client.get("/openapi.json").json()["paths"]
        assert client.get("/health").json() == {"status": "ok"}
    records = read_log(svc.log.path).records
    preds = {r.request_id: r for r in records if isinstance(r, PredictionRecord)}
    shadows = {r.request_id: r for r in records if isinstance(r, ShadowRecord)}
    assert set(preds) == set(shadows) == {one["request_id"], many["request_id"], again["request_id"]}
    assert preds[many["request_id"]].champion.version == v1 and shadows[many["request_id"]].shadow.version == v2
    assert shadows[many["request_id"]].shadow.scores == pytest.approx(
        list(_expected(env.registry(), v2, holdout, 0, 5))
    )


def test_the_shadow_scores_waiting_requests_together_one_line_each(trained, holdout):
    env, _, v2 = trained
    svc = _service(env, poll_seconds=3600, shadow_linger_seconds=1.0, shadow_batch=64)
    starts = [300, 301, 302, 303, 310]
    with TestClient(create_app(svc)) as client:
        ids = {}
        for start in starts:
            n = 5 if start == 310 else 1
            ids[client.post("/predict", json={"rows": _rows(holdout, start, n)}).json()["request_id"]] = (start, n)
        svc.drain()
        text = client.get("/metrics").text
    assert 'mlgov_serve_shadow_total{outcome="scored"} 5' in text
    shadows = {r.request_id: r for r in read_log(svc.log.path).records if isinstance(r, ShadowRecord)}
    assert set(ids) <= set(shadows)
    for rid, (start, n) in ids.items():  # each request's own rows, in order, whatever it was scored with
        assert shadows[rid].shadow.version == v2
        assert shadows[rid].shadow.scores == pytest.approx(list(_expected(env.registry(), v2, holdout, start, n)))
    assert len({shadows[rid].latency_ms for rid in ids}) < len(ids)  # some shared one model call


def test_bad_requests_get_4xx_and_the_worker_keeps_serving(trained, holdout):
    env, _, _ = trained
    svc = _service(env, poll_seconds=3600, max_rows=10, max_body_bytes=8192, shadow=False)
    row = _rows(holdout, 0, 1)[0]
    with TestClient(create_app(svc)) as client:
        cases = [
            (
                client.post("/predict", content=b'{"row": {', headers={"content-type": "application/json"}),
                400,
                "malformed JSON",
            ),
            (client.post("/predict", json={"row": {**row, "age": {"x": 1}}}), 422, "age"),
            (client.post("/predict", json={"row": {**row, "age": "forty"}}), 422, "age"),
            (client.post("/predict", json={"row": {**row, "favourite_colour": "blue"}}), 422, "favourite_colour"),
            (client.post("/predict", json={"rows": _rows(holdout, 0, 11)}), 422, "at most 10 rows"),
            (client.post("/predict", content=b"x" * 9000), 413, "over the limit"),
            (client.post("/predict?reasons=abc", json={"row": row}), 422, "reasons"),
        ]
        for response, status, needle in cases:
            assert response.status_code == status, response.text
            assert needle in response.text
        assert len(client.post("/predict", json={"row": {**row, "age": "x" * 3000}}).text) < 2000  # quoted, capped
        assert client.post("/predict", json={"row": row}).status_code == 200
        assert 'mlgov_serve_requests_total{status="422"}' in client.get("/metrics").text


def test_champion_swap_under_concurrent_load_loses_nothing_and_mixes_nothing(trained, holdout):
    env, v1, v2 = trained
    reg = env.registry()
    expected = {v: _expected(reg, v, holdout, 0, 40) for v in (v1, v2)}
    svc = _service(env, poll_seconds=3600, shadow=False)
    results: list[tuple[int, dict]] = []
    errors: list[str] = []

    def client_loop(client: TestClient, worker: int) -> None:
        for i in range(12):
            start = (worker * 7 + i) % 35
            r = client.post("/predict", json={"rows": _rows(holdout, start, 5)})
            if r.status_code != 200:
                errors.append(r.text)
            else:
                results.append((start, r.json()))

    with TestClient(create_app(svc)) as client:
        threads = [threading.Thread(target=client_loop, args=(client, w)) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        reg.move_champion(v2, expected_current=v1, history_op="push")
        svc.holder.poll()  # the poller's look: load + verify off the request path, then one swap
        assert svc.holder.champion is not None and svc.holder.champion.version == v2
        for t in threads:
            t.join(300)
        after = client.post("/predict", json={"rows": _rows(holdout, 0, 5)}).json()
        reg.move_champion(v1, expected_current=v2, history_op="pop")  # a rollback, also without a restart
        svc.holder.poll()
        back = client.post("/predict", json={"rows": _rows(holdout, 0, 5)}).json()
    assert not errors and len(results) == 48
    for start, body in results:  # every row of a response is the version the response names
        assert [p["score"] for p in body["predictions"]] == pytest.approx(
            list(expected[body["model_version"]][start : start + 5]), abs=1e-12
        )
    assert {body["model_version"] for _, body in results} <= {v1, v2}
    assert after["model_version"] == v2 and back["model_version"] == v1 and svc.holder.swaps == 2
    logged = {
        r.request_id: r.champion.version for r in read_log(svc.log.path).records if isinstance(r, PredictionRecord)
    }
    assert all(logged[b["request_id"]] == b["model_version"] for _, b in results)


def test_a_failing_or_slow_shadow_never_fails_or_slows_a_request(trained, holdout):
    from mlgov_tests.dagster.serve_faults import broken_loader, slow_loader

    env, _, _ = trained
    broken = _service(env, broken_loader, poll_seconds=3600)
    with TestClient(create_app(broken)) as client:
        ids = {client.post("/predict", json={"row": _rows(holdout, i, 1)[0]}).json()["request_id"] for i in range(5)}
        broken.drain()
        text = client.get("/metrics").text
    assert len(ids) == 5 and 'mlgov_serve_shadow_total{outcome="failed"} 5' in text
    shadows = [r for r in read_log(broken.log.path).records if isinstance(r, ShadowRecord) and r.request_id in ids]
    assert len(shadows) == 5 and all("exploded" in (r.shadow.error or "") for r in shadows)
    # one request per shadow call, no gathering: a queue of 2 must overflow behind a 3 s shadow
    slow = _service(env, slow_loader, poll_seconds=3600, shadow_queue=2, shadow_batch=1, shadow_linger_seconds=0)
    with TestClient(create_app(slow)) as client:
        t0 = time.perf_counter()
        for i in range(6):
            assert client.post("/predict", json={"row": _rows(holdout, i, 1)[0]}).status_code == 200
        elapsed = time.perf_counter() - t0
        slow.drain()
        text = client.get("/metrics").text
    assert elapsed < 9.0  # six 3 s shadow calls would be 18 s on the request path
    assert 'mlgov_serve_shadow_total{outcome="skipped"} 0' not in text  # queue of 2: some skipped
    assert 'mlgov_serve_shadow_total{outcome="failed"} 0' not in text


def test_the_shadow_is_another_process_restarted_after_sigkill_and_swapped(trained, holdout):
    env, v1, v2 = trained
    reg = env.registry()
    svc = _service(env, poll_seconds=3600, shadow_linger_seconds=0)
    assert svc.shadow is not None
    with TestClient(create_app(svc)) as client:
        first = client.post("/predict", json={"rows": _rows(holdout, 0, 3)}).json()["request_id"]
        svc.drain(120)
        pid = svc.shadow.pid
        assert pid is not None and pid != os.getpid() and not _gone(pid, 0.1)
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE  # it never takes a core from a request
        os.kill(pid, signal.SIGKILL)
        during = [client.post("/predict", json={"row": _rows(holdout, i, 1)[0]}) for i in range(5)]
        assert all(r.status_code == 200 for r in during)  # the dead shadow slows and fails nothing
        deadline = time.monotonic() + 120
        while (svc.shadow.restarts == 0 or svc.shadow.pid == pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert svc.shadow.restarts >= 1 and svc.shadow.pid not in (None, pid)
        after = client.post("/predict", json={"rows": _rows(holdout, 10, 3)}).json()["request_id"]
        svc.drain(120)
        svc.holder.set_shadow(v1)  # the hot swap: the child loads v1 (verified) before its next batch
        swapped = client.post("/predict", json={"rows": _rows(holdout, 20, 3)}).json()["request_id"]
        svc.drain(120)
        child = svc.shadow.pid
        text = client.get("/metrics").text
    assert child is not None and _gone(child, 0.5)  # stop() ended the child: no orphan
    shadows = {r.request_id: r for r in read_log(svc.log.path).records if isinstance(r, ShadowRecord)}
    assert shadows[first].shadow.scores == pytest.approx(list(_expected(reg, v2, holdout, 0, 3)))
    assert shadows[after].shadow.version == v2 and shadows[after].shadow.error is None  # resumed
    assert shadows[after].shadow.scores == pytest.approx(list(_expected(reg, v2, holdout, 10, 3)))
    assert shadows[swapped].shadow.version == v1
    assert shadows[swapped].shadow.scores == pytest.approx(list(_expected(reg, v1, holdout, 20, 3)))
    # the requests the killed child had not answered are failed lines naming its death, each counted
    died = [r for r in shadows.values() if "died" in (r.shadow.error or "")]
    assert all(r.shadow.version == v2 for r in died)
    assert f'mlgov_serve_shadow_total{{outcome="failed"}} {len(died)}' in text


def test_live_traffic_rolls_into_a_batch_that_monitor_once_checks(trained, holdout, capsys):
    env, v1, v2 = trained
    svc = _service(env, poll_seconds=3600, roll_rows=200, roll_seconds=3600)
    svc.roller.roll_rows = 200 + svc.recovered  # rows earlier tests logged but never rolled join this batch
    with TestClient(create_app(svc)) as client:
        bodies = [client.post("/predict", json={"rows": _rows(holdout, s, 100)}).json() for s in (100, 200)]
        svc.drain()
    batches = sorted(svc.settings.landing_dir.glob("serve-*.csv"))
    assert len(batches) == 1, batches
    batch_id = batches[0].name.removesuffix(".csv")
    past = time.time() - 120
    os.utime(batches[0], (past, past))
    # delayed labels keyed by the row ids the responses returned
    truth = holdout[ADULT.label].iloc[100:300].str.rstrip(".").tolist()
    ids = [p["row_id"] for b in bodies for p in b["predictions"]]
    [labels] = land_labels(svc.settings, ADULT, dict(zip(ids, truth, strict=True)))
    os.utime(labels, (past, past))
    capsys.readouterr()
    main(["monitor", "--once", "--json"])
    report = json.loads(capsys.readouterr().out)
    [entry] = [b for b in report["batches"] if b["batch_id"] == batch_id]
    assert entry["status"] != "quarantined", entry
    assert entry["drift"] is not None and entry["performance"]["n_labelled"] == 200
    from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringPaths

    ledger = BatchLedger(MonitoringPaths.of(svc.settings)).get(batch_id)
    assert ledger is not None and ledger["champion_version"] == v1 and ledger["shadow_version"] == v2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    return [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGKILL])
def test_real_uvicorn_serves_and_stops(trained, holdout, stop_with):
    import httpx

    _, v1, _ = trained
    port = _free_port()
    mlgov = Path(sys.executable).with_name("mlgov")
    proc = subprocess.Popen(
        [str(mlgov), "serve", "--port", str(port), "--poll-seconds", "0.5"],
        env=dict(os.environ),
        stderr=subprocess.PIPE,
    )
    children: list[int] = []
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        r = httpx.post(f"{base}/predict", json={"rows": _rows(holdout, 0, 3)}, timeout=30)
        assert r.status_code == 200 and r.json()["model_version"] == v1
        assert "mlgov_serve_ready 1" in httpx.get(f"{base}/metrics", timeout=5).text
        children = _children(proc.pid)
        assert children  # the shadow process (and multiprocessing's resource tracker)
    finally:
        proc.send_signal(stop_with)
        code = proc.wait(60)
        stderr = proc.stderr.read() if proc.stderr else b""
    # no orphan: after a graceful stop, and after the server is killed (the shadow watches its parent)
    assert all(_gone(c) for c in children), children
    if stop_with == signal.SIGTERM:
        # uvicorn shuts down gracefully on SIGTERM (the service's stop: shadow drained and ended, log
        # closed), then re-raises the signal, so the exit status is the signal's
        assert code in (0, -signal.SIGTERM) and b"Traceback" not in stderr, stderr[-2000:]


def test_a_tampered_champion_is_refused_and_ready_says_so(trained, holdout):
    env, v1, _ = trained
    reg = env.registry()
    model_dir = Path(reg.version_info(v1).tags["mlgov.model_dir"])
    victim = next(p for p in sorted(model_dir.rglob("*")) if p.is_file() and p.name != "MLmodel")
    original = victim.read_bytes()
    # a torn prediction-log line from an earlier crash, too
    log = env.settings().home / "serving" / "predictions.jsonl"
    with open(log, "ab") as fh:
        fh.write(b'{"kind": "prediction", "request_')
    try:
        victim.write_bytes(original + b"tampered")
        svc = _service(env, poll_seconds=3600)
        with TestClient(create_app(svc)) as client:
            ready = client.get("/ready")
            assert ready.status_code == 503 and "failed verification" in ready.json()["problem"]
            assert victim.name in ready.json()["problem"]
            refused = client.post("/predict", json={"row": _rows(holdout, 0, 1)[0]})
            assert refused.status_code == 503 and "not ready" in refused.json()["error"]
            assert "mlgov_serve_ready 0" in client.get("/metrics").text
            assert "mlgov_serve_log_skipped_lines 1" in client.get("/metrics").text
    finally:
        victim.write_bytes(original)
