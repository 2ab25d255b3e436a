"""The OpenLineage hook of the Dagster layer on real runs (a real instance, small prefixed assets): a
finished run's events are read back from the event log, valid against the spec, share the run id,
FAIL for a failed gate, are emitted once (sensor and CLI may both see a run end), and a failing
transport never fails anything. The governed path itself is covered in ``test_audit_cli.py``."""

from __future__ import annotations

import json

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    Output,
    SkipReason,
    asset,
    asset_check,
    build_run_status_sensor_context,
    define_asset_job,
)

from mlgov_assets.defs.lineage_events import emit_run, location_defs, read_run_view
from mlgov_tests.openlineage_schema import problems


@asset(key_prefix="demo")
def raw() -> Output[int]:
    return Output(1, metadata={"dvc_md5": "5d7c0f6e8a1b2c3d4e5f60718293a4b5", "secret_rows": "never exported"})


@asset(key_prefix="demo")
def model(raw: int) -> int:
    return raw + 1


def _gate(passed: bool):
    @asset_check(asset=model, blocking=True, name="metric_floors")
    def metric_floors() -> AssetCheckResult:
        return AssetCheckResult(
            passed=passed,
            severity=AssetCheckSeverity.ERROR,
            description="roc_auc 0.91 >= 0.85" if passed else "roc_auc 0.62 < 0.85",
            metadata={"policy_sha256": "c" * 64},
        )

    return metric_floors


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "state"
    monkeypatch.setenv("MLGOV_HOME", str(home))
    for key in ("MLGOV_OPENLINEAGE", "MLGOV_OPENLINEAGE_FILE", "MLGOV_OPENLINEAGE_URL"):
        monkeypatch.delenv(key, raising=False)
    return home


def _run(instance: DagsterInstance, passed: bool):
    defs = Definitions(
        assets=[raw, model], asset_checks=[_gate(passed)], jobs=[define_asset_job("demo__job", AssetSelection.all())]
    )
    return defs.resolve_job_def("demo__job").execute_in_process(instance=instance, raise_on_error=False)


def _events(home) -> list[dict]:
    return [json.loads(line) for line in (home / "openlineage" / "events.jsonl").read_text().splitlines()]


def test_a_failed_gate_run_is_emitted_once_valid_and_under_one_run_id(home):
    with DagsterInstance.ephemeral() as instance:
        result = _run(instance, passed=False)
        assert not result.success
        report = emit_run(instance, result.run_id)
        assert report is not None and report.ok and report.written > 0
        assert emit_run(instance, result.run_id) is None  # already emitted (the sensor or the CLI came first)
    events = _events(home)
    assert len(events) == report.written and problems(events) == []
    assert {e["run"]["facets"]["mlgov_dagster"]["dagsterRunId"] for e in events} == {result.run_id}
    steps = [e for e in events if e["job"]["name"] != "demo__job"]
    assert {e["run"]["facets"]["parent"]["run"]["runId"] for e in steps} == {result.run_id}
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("demo__job", "START"),
        ("demo/raw", "START"),
        ("demo/raw", "COMPLETE"),
        ("demo/model", "START"),
        ("demo/model", "COMPLETE"),
        ("demo/model.metric_floors", "START"),
        ("demo/model.metric_floors", "FAIL"),
        ("demo__job", "FAIL"),
    ]
    raw_out = events[2]["outputs"][0]
    assert (
        raw_out["name"] == "demo/raw"
        and raw_out["facets"]["mlgov_data"]["dvcMd5"] == "5d7c0f6e8a1b2c3d4e5f60718293a4b5"
    )
    assert [i["name"] for i in events[4]["inputs"]] == ["demo/raw"]
    assert "never exported" not in json.dumps(events)  # only whitelisted metadata travels
    gate = events[6]
    assert gate["run"]["facets"]["mlgov_gates"]["verdicts"][0]["description"] == "roc_auc 0.62 < 0.85"
    assert gate["run"]["facets"]["mlgov_gates"]["policySha256"] == "c" * 64
    assert gate["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"][0]["success"] is False


def test_the_run_reader_names_steps_by_what_they_materialize(home):
    with DagsterInstance.ephemeral() as instance:
        result = _run(instance, passed=True)
        view = read_run_view(instance, result.run_id)
    assert view is not None and view.run.status == "SUCCESS"
    steps = {s.step_key: s for s in view.steps}
    assert steps["demo__raw"].assets == ["raw"] and steps["demo__raw"].project == "demo"
    assert [m.metadata.get("dvc_md5") for m in steps["demo__raw"].materializations] == [
        "5d7c0f6e8a1b2c3d4e5f60718293a4b5"
    ]
    assert all(s.status == "success" for s in view.steps)


def test_a_step_that_raises_is_a_fail_event_with_its_error(home):
    @asset(key_prefix="demo", name="model")
    def broken_model(raw: int) -> int:
        raise ValueError("the training data has no positive labels")

    defs = Definitions(assets=[raw, broken_model], jobs=[define_asset_job("demo__job", AssetSelection.all())])
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("demo__job").execute_in_process(instance=instance, raise_on_error=False)
        report = emit_run(instance, result.run_id)
    assert report is not None and report.ok
    events = _events(home)
    assert problems(events) == []
    failed = [e for e in events if e["job"]["name"] == "demo/model"]
    assert [e["eventType"] for e in failed] == ["START", "FAIL"]
    assert (
        "ValueError: the training data has no positive labels" in failed[1]["run"]["facets"]["errorMessage"]["message"]
    )
    assert events[-1]["eventType"] == "FAIL" and "demo__model" in events[-1]["run"]["facets"]["errorMessage"]["message"]


@pytest.mark.parametrize("where", ["file", "http"])
def test_a_failing_transport_is_reported_and_never_raises(home, monkeypatch, caplog, where):
    if where == "file":
        home.mkdir(parents=True)
        (home / "openlineage").write_text("a file where the directory should be")
    else:
        monkeypatch.setenv("MLGOV_OPENLINEAGE_URL", "http://127.0.0.1:9")  # discard port: nothing answers
        monkeypatch.setenv("MLGOV_OPENLINEAGE_TIMEOUT", "1")
    with DagsterInstance.ephemeral() as instance:
        result = _run(instance, passed=True)
        assert result.success
        with caplog.at_level("WARNING", logger="mlgov.openlineage"):
            report = emit_run(instance, result.run_id)
    assert report is not None and report.errors
    assert "OpenLineage emission failed (the run is unaffected)" in caplog.text


def test_off_means_nothing_is_written(home, monkeypatch):
    monkeypatch.setenv("MLGOV_OPENLINEAGE", "off")
    with DagsterInstance.ephemeral() as instance:
        result = _run(instance, passed=True)
        assert emit_run(instance, result.run_id) is None
    assert not (home / "openlineage").exists()


def test_the_location_sensors_emit_every_finished_run(home):
    sensors = {s.name: s for s in location_defs().sensors or []}
    assert set(sensors) == {"openlineage_after_success", "openlineage_after_failure", "openlineage_after_canceled"}
    with DagsterInstance.ephemeral() as instance:
        result = _run(instance, passed=True)
        run = instance.get_run_by_id(result.run_id)
        event = (
            instance.get_records_for_run(result.run_id, of_type=DagsterEventType.RUN_SUCCESS)
            .records[0]
            .event_log_entry.dagster_event
        )
        ctx = build_run_status_sensor_context(
            sensor_name="openlineage_after_success", dagster_instance=instance, dagster_run=run, dagster_event=event
        )
        first = sensors["openlineage_after_success"](ctx)
        again = sensors["openlineage_after_success"](ctx)
    assert isinstance(first, SkipReason) and "event(s) written" in (first.skip_message or "")
    assert isinstance(again, SkipReason) and "already emitted" in (again.skip_message or "")
    assert len(_events(home)) == 8


def test_the_code_location_has_the_sensors_and_loads_no_openlineage():
    import subprocess
    import sys

    code = (
        "import sys, mlgov_assets.definitions as d; "
        "names = {s.name for s in d.defs.sensors}; "
        "print('openlineage_after_success' in names, 'openlineage' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False"]
