"""OpenLineage events (core): valid against the official spec (vendored, offline), one run id per
Dagster run, FAIL for a failed step or gate, custom facets with ``_producer``/``_schemaURL``, size caps,
and transports that never raise (unwritable file, HTTP down) but do deliver (file, HTTP)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from mlgov_assets.core.audit.lineage.facts import CheckEvaluation, DagsterRun, Materialization
from mlgov_assets.core.audit.openlineage.events import MAX_TEXT, EventContext, RunView, StepView, run_events
from mlgov_assets.core.audit.openlineage.facets import PRODUCER, SCHEMA_BASE
from mlgov_assets.core.audit.openlineage.transport import OpenLineageConfig, claim_run, emit, event_json, status
from mlgov_tests.openlineage_schema import problems

RUN_ID = "0b9f6d0e-1d7c-4f43-9d2a-5f3c8e7a1b20"
MD5 = "5d7c0f6e8a1b2c3d4e5f60718293a4b5"
POLICY = "a" * 64


def _node(asset: str, sid: int, **meta) -> Materialization:
    return Materialization(
        asset=asset,
        role="output",
        storage_id=sid,
        run_id=RUN_ID,
        timestamp=1000.0 + sid,
        data_version="dv" + str(sid),
        code_version="cv",
        sha256="b" * 64,
        metadata=meta,
        columns=[{"name": "age", "dtype": "int64"}],
        inputs={"adult/training_file": 1} if asset == "training_data" else {"adult/training_data": 2},
    )


def _check(passed: bool, *, blocking: bool = True, description: str = "roc_auc 0.91 >= 0.85") -> CheckEvaluation:
    return CheckEvaluation(
        asset="challenger_model",
        check="check_challenger_model_metric_floors",
        passed=passed,
        severity="ERROR",
        blocking=blocking,
        role="output",
        gate="metric_floors",
        run_id=RUN_ID,
        target_storage_id=3,
        description=description,
        metadata={"policy_sha256": POLICY},
    )


def view(*, check_passed: bool = True, description: str = "roc_auc 0.91 >= 0.85") -> RunView:
    status = "SUCCESS" if check_passed else "FAILURE"
    return RunView(
        run=DagsterRun(
            run_id=RUN_ID, job_name="adult__governed_training", status=status, start_time=999.0, end_time=1010.0
        ),
        engine="1.13.27",
        steps=[
            StepView(
                step_key="adult__training_data",
                project="adult",
                assets=["training_data"],
                status="success",
                start_time=1000.0,
                end_time=1002.5,
                materializations=[_node("training_data", 2, dvc_md5=MD5, row_count=32561, path="data/adult.data")],
            ),
            StepView(
                step_key="adult__challenger_model",
                project="adult",
                assets=["challenger_model"],
                status="success",
                start_time=1003.0,
                end_time=1004.0,
                materializations=[
                    _node(
                        "challenger_model",
                        3,
                        model_uri="models:/mlgov-adult-income/7",
                        model_version=7,
                        mlflow_run_id="r1",
                        train_data_md5=MD5,
                    )
                ],
            ),
            StepView(
                step_key="adult__challenger_model_check_challenger_model_metric_floors",
                project="adult",
                checks=["challenger_model.check_challenger_model_metric_floors"],
                status="success" if check_passed else "failure",
                start_time=1005.0,
                end_time=1006.0,
                error=None if check_passed else "1 blocking asset check failed with ERROR severity",
                evaluations=[_check(check_passed, description=description)],
            ),
            StepView(step_key="adult__champion", project="adult", assets=["champion"], status="skipped"),
        ],
    )


def as_json(events) -> list[dict]:
    return [json.loads(event_json(e)) for e in events]


def by_job(events: list[dict], name: str) -> list[dict]:
    return [e for e in events if e["job"]["name"] == name]


def test_events_of_a_run_are_valid_openlineage_and_share_its_run_id():
    events = as_json(run_events(EventContext(), view()))
    assert problems(events) == []
    assert events[0]["eventType"] == "START" and events[-1]["eventType"] == "COMPLETE"
    run_level = by_job(events, "adult__governed_training")
    assert {e["run"]["runId"] for e in run_level} == {RUN_ID}
    steps = [e for e in events if e["job"]["name"] != "adult__governed_training"]
    assert {e["run"]["facets"]["parent"]["run"]["runId"] for e in steps} == {RUN_ID}
    assert {e["run"]["facets"]["mlgov_dagster"]["dagsterRunId"] for e in events} == {RUN_ID}
    for name in ("adult/training_data", "adult/challenger_model"):
        pair = by_job(events, name)
        assert [e["eventType"] for e in pair] == ["START", "COMPLETE"]
        assert len({e["run"]["runId"] for e in pair}) == 1 and uuid.UUID(pair[0]["run"]["runId"])
    assert not by_job(events, "adult/champion")  # never started: no events
    # facets an auditor reads: the DVC md5, the model URI and version, the policy hash and the verdicts
    data = by_job(events, "adult/training_data")[1]
    assert data["outputs"][0]["name"] == "adult/training_data"
    assert data["outputs"][0]["facets"]["mlgov_data"]["dvcMd5"] == MD5
    assert data["inputs"] == [{"name": "adult/training_file", "namespace": "mlgov", "facets": {}, "inputFacets": {}}]
    model = by_job(events, "adult/challenger_model")[1]["outputs"][0]["facets"]["mlgov_model"]
    assert (model["modelUri"], model["modelVersion"], model["trainDataMd5"]) == ("models:/mlgov-adult-income/7", 7, MD5)
    gate = by_job(events, "adult/challenger_model.check_challenger_model_metric_floors")[1]
    assert gate["run"]["facets"]["mlgov_gates"]["policySha256"] == POLICY
    assert gate["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"][0]["success"] is True


def test_custom_facets_carry_producer_and_schema_url():
    events = as_json(run_events(EventContext(), view()))
    custom = [
        f
        for e in events
        for group in [e["run"]["facets"], *(d.get("facets", {}) for d in e.get("outputs", []))]
        for k, f in group.items()
        if k.startswith("mlgov_")
    ]
    assert len(custom) > 10
    for facet in custom:
        assert facet["_producer"] == PRODUCER
        assert facet["_schemaURL"].startswith(SCHEMA_BASE)


def test_a_failed_gate_is_a_fail_event_and_fails_the_run():
    events = as_json(run_events(EventContext(), view(check_passed=False)))
    assert problems(events) == []
    gate = by_job(events, "adult/challenger_model.check_challenger_model_metric_floors")
    assert [e["eventType"] for e in gate] == ["START", "FAIL"]
    assert "blocking asset check failed" in gate[1]["run"]["facets"]["errorMessage"]["message"]
    assert gate[1]["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"][0]["success"] is False
    assert events[-1]["eventType"] == "FAIL" and events[-1]["run"]["runId"] == RUN_ID
    verdicts = events[-1]["run"]["facets"]["mlgov_gates"]["verdicts"]
    assert verdicts[0]["passed"] is False and verdicts[0]["blocking"] is True


def test_a_step_that_never_finished_is_aborted():
    v = view()
    steps = [*v.steps[:1], v.steps[1].model_copy(update={"status": "incomplete", "end_time": None}), *v.steps[2:]]
    run = v.run.model_copy(update={"status": "CANCELED"})
    events = as_json(run_events(EventContext(), v.model_copy(update={"steps": steps, "run": run})))
    assert problems(events) == []
    assert [e["eventType"] for e in by_job(events, "adult/challenger_model")] == ["START", "ABORT"]
    assert events[-1]["eventType"] == "ABORT" and "canceled" in events[-1]["run"]["facets"]["errorMessage"]["message"]


def test_free_text_is_capped():
    events = as_json(run_events(EventContext(), view(check_passed=False, description="x" * 100_000)))
    assert problems(events) == []
    gate = by_job(events, "adult/challenger_model.check_challenger_model_metric_floors")[1]
    assert len(gate["run"]["facets"]["mlgov_gates"]["verdicts"][0]["description"]) == MAX_TEXT
    assert max(len(event_json(e)) for e in run_events(EventContext(), view(description="x" * 100_000))) < 20_000


def test_the_schema_check_can_fail():
    events = as_json(run_events(EventContext(), view()))
    bad = json.loads(json.dumps(events))
    bad[0]["eventType"] = "FINISHED"
    del bad[1]["run"]["facets"]["mlgov_dagster"]["dagsterRunId"]
    bad[2]["outputs"][0]["facets"]["mlgov_data"]["dvcMd5"] = "not-an-md5"
    del bad[3]["job"]["facets"]["jobType"]["_producer"]
    found = problems(bad)
    assert any("event 0" in p and "FINISHED" in p for p in found)
    assert any("event 1" in p and "dagsterRunId" in p for p in found)
    assert any("event 2" in p and "not-an-md5" in p for p in found)
    assert any("event 3" in p and "_producer" in p for p in found)


# --------------------------------------------------------------------------- transports


def _settings(tmp_path: Path):
    from mlgov_assets.core.settings import get_settings

    return get_settings(home=tmp_path / "state")


def test_configuration_defaults_and_overrides(tmp_path):
    s = _settings(tmp_path)
    cfg = OpenLineageConfig.from_env(s, {})
    assert cfg.enabled and cfg.file == s.location / "openlineage" / "events.jsonl" and cfg.url is None
    cfg = OpenLineageConfig.from_env(
        s,
        {
            "MLGOV_OPENLINEAGE": "off",
            "MLGOV_OPENLINEAGE_URL": "http://127.0.0.1:5000",
            "MLGOV_OPENLINEAGE_API_KEY": "k",
        },
    )
    assert not cfg.enabled and cfg.url == "http://127.0.0.1:5000" and "k" not in repr(cfg)
    assert emit(run_events(EventContext(), view()), cfg).written == 0  # off: nothing written
    shown = status(OpenLineageConfig.from_env(s, {"MLGOV_OPENLINEAGE_URL": "https://user:pw@marquez.example:5002/x"}))
    assert shown.url == "https://marquez.example:5002" and shown.runs_emitted == 0 and shown.file_bytes is None


def test_the_file_transport_appends_one_line_per_event(tmp_path):
    cfg = OpenLineageConfig.from_env(_settings(tmp_path), {})
    events = run_events(EventContext(), view())
    for _ in range(2):
        report = emit(events, cfg)
        assert report.ok and report.written == len(events)
    lines = cfg.file.read_text().splitlines()
    assert len(lines) == 2 * len(events)
    assert problems([json.loads(line) for line in lines]) == []


def test_an_unwritable_file_is_reported_and_logged_never_raised(tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the directory should be")
    cfg = OpenLineageConfig.from_env(_settings(tmp_path), {"MLGOV_OPENLINEAGE_FILE": str(blocker / "events.jsonl")})
    with caplog.at_level(logging.WARNING, logger="mlgov.openlineage"):
        report = emit(run_events(EventContext(), view()), cfg)
    assert not report.ok and report.written == 0 and "not-a-dir" in report.errors[0]
    assert "OpenLineage emission failed" in caplog.text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_http_down_is_reported_quickly_never_raised(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    cfg = OpenLineageConfig.from_env(
        _settings(tmp_path), {"MLGOV_OPENLINEAGE_URL": url, "MLGOV_OPENLINEAGE_TIMEOUT": "2"}
    )
    started = time.monotonic()
    report = emit(run_events(EventContext(), view()), cfg)
    assert time.monotonic() - started < 10  # no retries with back-off
    assert report.sent == 0 and report.errors and "HTTP" in report.errors[0]
    assert report.written > 0  # the file still has them


def test_http_delivers_every_event_with_the_bearer_token(tmp_path):
    received: list[tuple[str, str | None, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers.get("Authorization"), json.loads(body)))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {"MLGOV_OPENLINEAGE_URL": f"http://127.0.0.1:{server.server_port}", "MLGOV_OPENLINEAGE_API_KEY": "s3cret"}
        events = run_events(EventContext(), view())
        report = emit(events, OpenLineageConfig.from_env(_settings(tmp_path), env))
    finally:
        server.shutdown()
        server.server_close()
    assert report.ok and report.sent == len(events) == len(received)
    assert {r[0] for r in received} == {"/api/v1/lineage"} and {r[1] for r in received} == {"Bearer s3cret"}
    assert "s3cret" not in report.model_dump_json()
    assert problems([r[2] for r in received]) == []


def test_an_api_key_is_never_sent_over_plain_http_to_another_host(tmp_path):
    env = {"MLGOV_OPENLINEAGE_URL": "http://marquez.example.invalid:5000", "MLGOV_OPENLINEAGE_API_KEY": "s3cret"}
    report = emit(run_events(EventContext(), view()), OpenLineageConfig.from_env(_settings(tmp_path), env))
    assert report.sent == 0 and "plain HTTP" in report.errors[0]


@pytest.mark.parametrize("run_id", [RUN_ID, "../../etc/passwd"])
def test_a_run_is_claimed_once(tmp_path, run_id):
    cfg = OpenLineageConfig.from_env(_settings(tmp_path), {})
    assert claim_run(cfg, run_id) is True
    assert claim_run(cfg, run_id) is False
    assert all(p.parent == cfg.state_dir / "emitted" for p in (cfg.state_dir / "emitted").iterdir())
