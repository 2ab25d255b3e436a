"""The real ``mlgov`` CLI killed at chosen points (``MLGOV_FAULT``): the next command recovers.

A real project, state directory, MLflow store and Dagster instance in tmp; versions are tiny models
whose gates passed (training is covered elsewhere), promoted through the core. Each killed command
is a subprocess that dies with ``os._exit(137)`` (no cleanup, as SIGKILL) inside the champion step.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mlgov_assets.core.audit.decision_log import DecisionLog
from mlgov_assets.core.governance.promotion import promote
from mlgov_tests.core.governance import _promo_harness as h

KILLED = 137


def _mlgov(*args: str, fault: str | None = None, lock_timeout: str = "30") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MLGOV_FAULT"} | {"MLGOV_LOCK_TIMEOUT": lock_timeout}
    if fault:
        env["MLGOV_FAULT"] = fault
    cmd = [sys.executable, "-m", "mlgov_assets.cli", *args]
    # a hang (the bug this guards against) fails the test instead of blocking the suite
    return subprocess.run(cmd, cwd=h.REPO, env=env, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture
def champion_two(env):
    """Versions 1..3 with passed gates; 1 then 2 promoted (champion 2, history [1, 2])."""
    reg = env.registry()
    h.make_versions(reg, env.policy, 3)
    for v in (1, 2):
        h.compared_with_current(reg, env.policy, v)
        promote(reg, env.policy_obj(), v, actor="setup", reason="setup")
    return env


def _runs_by_status(env) -> dict[str, list[str]]:
    from mlgov_assets.instance import get_instance

    out: dict[str, list[str]] = {}
    for run in get_instance(env.settings()).get_runs():
        out.setdefault(run.status.value, []).append(run.run_id)
    return out


def test_killed_at_the_start_of_the_champion_step_nothing_stays_held(champion_two):
    env = champion_two
    res = _mlgov("rollback", "--reason", "bad model", fault="promotion.locked")
    assert res.returncode == KILLED, res.stderr[-2000:]
    assert len(_runs_by_status(env).get("STARTED", [])) == 1  # the killed run, left behind
    res = _mlgov("rollback", "--reason", "bad model", lock_timeout="20")  # no slot, no lock held: no hang
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]
    assert "rolled back" in res.stdout and "promoted" not in res.stdout
    runs = _runs_by_status(env)
    assert "STARTED" not in runs and len(runs["FAILURE"]) == 1 and len(runs["SUCCESS"]) == 1
    assert env.registry().champion_state().champion == 1
    assert _mlgov("audit", "verify").returncode == 0


def test_killed_between_alias_and_log_status_and_audit_complete_it(champion_two):
    env = champion_two
    h.compared_with_current(env.registry(), env.policy, 3)
    res = _mlgov("promote", "--version", "3", "--reason", "better", fault="promotion.after_alias")
    assert res.returncode == KILLED, res.stderr[-2000:]
    log = DecisionLog(env.settings().decision_log)
    assert log.read()[-1].kind == "promotion_intent"  # champion moved, no promotion record yet
    res = _mlgov("status")
    assert res.returncode == 0 and "completed and committed" in res.stderr
    last = log.read()[-1]
    assert (last.kind, last.model_version, last.payload["recovered"]) == ("promotion", "3", True)
    res = _mlgov("audit", "verify")
    assert res.returncode == 0 and "VERIFIED" in res.stdout, res.stdout + res.stderr


def test_a_damaged_log_is_one_sentence_then_a_recorded_repair(champion_two):
    env = champion_two
    path = env.settings().decision_log
    path.write_bytes(path.read_bytes()[:-20])  # a witnessed record torn
    res = _mlgov("audit", "verify")
    assert res.returncode == 1 and "Traceback" not in res.stderr and "LogIntegrityError" not in res.stdout + res.stderr
    assert "BROKEN" in res.stdout or "REFUSED" in res.stderr
    res = _mlgov("rollback", "--reason", "r")
    assert res.returncode == 1 and "audit repair" in res.stdout
    res = _mlgov("audit", "repair", "--reason", "torn by a disk fault")
    assert res.returncode == 0 and "log repaired" in res.stdout, res.stdout + res.stderr
    assert DecisionLog(path).read()[-1].kind == "log_repair"
    assert _mlgov("audit", "verify").returncode == 0
