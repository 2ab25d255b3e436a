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
        # the run that gated and promoted it: its own gate verdicts are cited (artifacts still verified)
        assert meta["evaluation"].value == "cited", meta["fresh_because"].value
        assert meta["cited_run_id"].value == result.run_id
        assert meta["fresh_because"].value == "n/a"
        assert "cited" in meets.description and result.run_id[:8] in meets.description
        assert verified.metadata["integrity"].value == "verified"

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
        # a checks-only run promoted nothing: re-evaluated from scratch (the holdout scored again)
        assert meets.metadata["evaluation"].value == "fresh"
        assert "promoted no version" in meets.metadata["fresh_because"].value
        assert meets.metadata["metrics_reproduced"].value is True
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


def _evidence_of(result, champion: int):
    """The RunEvidence a path run's champion check gathered (from the run's own check results)."""
    from mlgov_assets.core.monitoring.reevaluation import RunEvidence, RunGateCheck

    gates = {"check_candidate_model_metric_floors": "metric_floors"}
    gates["check_candidate_model_beats_champion"] = "champion_comparison"
    checks = [
        RunGateCheck(
            gate=gates[c.check_name],
            check=c.check_name,
            model_version=c.metadata["model_version"].value,
            policy_sha256=c.metadata["policy_sha256"].value,
            passed=c.passed,
        )
        for c in result.get_asset_check_evaluations()
        if c.check_name in gates and c.asset_key.path[-1] == "candidate_model"
    ]
    assert len(checks) == 2
    sha = check_results(result)["champion_meets_current_policy"].metadata["policy_sha256"].value
    return RunEvidence(run_id=result.run_id, promoted_version=champion, policy_sha256=sha, gate_checks=checks)


def test_a_citation_needs_every_key_and_still_verifies_the_artifacts(env):
    from mlgov_assets.core.monitoring.reevaluation import reevaluate_champion

    with instance_for_test() as instance:
        result = run_path(env, instance)
        assert result.success
        champion = env.registry().champion_version()
        evidence = _evidence_of(result, champion)

        def again(ev):
            mlgov = env.defs().resources["mlgov"].for_project("adult")
            return reevaluate_champion(
                mlgov.settings(), mlgov.project(), mlgov.policy(), mlgov.registry(), actor="test", evidence=ev
            )

        cited = again(evidence)
        assert cited.passed and cited.mode == "cited" and cited.cited is not None
        assert cited.cited.dagster_run_id == result.run_id and cited.metrics is None
        # another run's promotion, or none: scored from scratch
        fresh = again(evidence.model_copy(update={"promoted_version": champion + 1}))
        assert fresh.mode == "fresh" and fresh.passed and fresh.reproduced is True
        assert fresh.fresh_because is not None and f"is v{champion}" in fresh.fresh_because
        # a changed artifact byte fails the cited verdict too: verification is never skipped
        reg = env.registry()
        model_dir = Path(reg.version_info(champion).tags["mlgov.model_dir"])
        path = max((p for p in model_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
        os.chmod(path, path.stat().st_mode | stat.S_IWUSR)
        original = path.read_bytes()
        data = bytearray(original)
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        broken = again(evidence)
        assert not broken.passed and str(broken.integrity).startswith("FAILED") and path.name in str(broken.integrity)
        path.write_bytes(original)
        assert again(evidence).mode == "cited"

        # a policy change (still passing) after the run: its verdicts are not cited
        env.use_policy(drop=("fairness", "explanations"), metric_floors={"roc_auc": {"min": 0.5}})
        changed = again(evidence)
        assert changed.mode == "fresh" and changed.passed and changed.reproduced is True
        assert changed.fresh_because is not None and "policy" in changed.fresh_because
        # back to the run's policy: the registry now holds verdicts under the other one, so no citation
        env.use_policy(drop=("fairness", "explanations"))
        back = again(evidence)
        assert back.mode == "fresh" and back.passed
        assert back.fresh_because is not None and "registry's" in back.fresh_because
