"""The champion carries its own checks (defs/champion_checks.py): evaluated when it materializes,
re-run by the policy sensor when the policy file changes, red when the champion no longer meets the
current policy or its artifact bytes changed. Real Dagster instance, MLflow store, model artifacts."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from dagster import DagsterInstance, build_sensor_context, instance_for_test

from mlgov_tests.conftest import check_results, run_path

pytestmark = pytest.mark.slow

SENSOR = "adult__champion_policy_sensor"


def _tick(env, instance: DagsterInstance, cursor: str | None):
    defs = env.defs()
    sensor = defs.resolve_sensor_def(SENSOR)
    with build_sensor_context(instance=instance, cursor=cursor, resources={"mlgov": defs.resources["mlgov"]}) as ctx:
        return sensor(ctx)


def _run_checks(env, instance: DagsterInstance):
    job = env.defs().resolve_job_def("adult__champion_checks")
    return job.execute_in_process(instance=instance, raise_on_error=False)


def test_champion_checks_pass_on_promotion_and_fail_under_a_stricter_policy(env):
    with instance_for_test() as instance:
        # no champion yet: the sensor only starts watching the policy
        first = _tick(env, instance, None)
        assert not first.run_requests and first.cursor == env.policy_obj().sha256

        result = run_path(env, instance)
        assert result.success
        checks = check_results(result)
        meets, verified = checks["champion_meets_current_policy"], checks["champion_artifact_verified"]
        assert meets.passed and verified.passed, (meets.description, verified.description)
        assert meets.severity.value == "ERROR" and verified.severity.value == "ERROR"
        assert meets.asset_key.path == ["adult", "champion"]
        meta = meets.metadata
        assert meta["policy_sha256"].value == env.policy_obj().sha256
        assert meta["gate/metric_floors"].value == "passed"
        champion = env.registry().champion_version()
        assert meta["champion_version"].value == champion

        # unchanged policy: nothing to do
        same = _tick(env, instance, first.cursor)
        assert not same.run_requests

        # a stricter policy: the sensor asks for the champion's checks, which go red with the evidence
        env.use_policy(drop=("fairness", "explanations"), metric_floors={"roc_auc": {"min": 0.999}})
        changed = _tick(env, instance, first.cursor)
        assert len(changed.run_requests) == 1 and changed.cursor == env.policy_obj().sha256
        run = _run_checks(env, instance)
        assert run.success  # a failed non-blocking check is a verdict, not a broken run
        meets = check_results(run)["champion_meets_current_policy"]
        assert not meets.passed and meets.severity.value == "ERROR"
        assert meets.metadata["policy_sha256"].value == env.policy_obj().sha256
        assert meets.metadata["gate/metric_floors"].value == "FAILED"
        assert "roc_auc" in meets.description
        assert check_results(run)["champion_artifact_verified"].passed
        # the daily job is the same checks, re-evaluated once (one step; no second re-evaluation asset)
        daily = (
            env.defs()
            .resolve_job_def("adult__reevaluate_champion")
            .execute_in_process(instance=instance, raise_on_error=False)
        )
        assert daily.success
        steps = [e.step_key for e in daily.all_events if e.event_type_value == "STEP_SUCCESS"]
        assert len(steps) == 1, steps
        assert not check_results(daily)["champion_meets_current_policy"].passed
        # never demotes
        assert env.registry().champion_version() == champion


def test_a_changed_champion_artifact_fails_its_verification_check(trained):
    env = trained.env
    with instance_for_test(temp_dir=str(trained.instance_dir)) as instance:
        reg = env.registry()
        model_dir = Path(reg.version_info(reg.champion_version()).tags["mlgov.model_dir"])
        path = max((p for p in model_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
        os.chmod(path, path.stat().st_mode | stat.S_IWUSR)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        run = _run_checks(env, instance)
        checks = check_results(run)
        verified, meets = checks["champion_artifact_verified"], checks["champion_meets_current_policy"]
        assert not verified.passed and "FAILED" in verified.description
        assert path.name in str(verified.metadata["integrity"].value)
        assert not meets.passed
