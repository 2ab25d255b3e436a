"""The prod profile's promotion lock is a PostgreSQL advisory lock (real server, real processes):
a holder killed with SIGKILL never blocks the next taker; a waiter gives up after the bounded wait
naming the holder; decision-log appends take the database lock too."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlgov_assets.core.locks import LockBusy, guard
from mlgov_assets.core.models.registry import promotion_guard
from mlgov_assets.core.settings import get_settings

REPO = Path(__file__).resolve().parents[2]


def hold(model: str, seconds: float = 60) -> subprocess.Popen[str]:
    """A subprocess holding ``model``'s promotion lock (returns once it holds it)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlgov_tests.prod._holder", model, str(seconds)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "held":
        proc.kill()
        raise AssertionError(f"holder did not take the lock: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return proc


def test_a_waiter_gives_up_after_the_bounded_wait_naming_the_holder(prod_lock_env, tmp_path):
    model = f"lock-{secrets.token_hex(3)}"
    settings = get_settings(home=tmp_path, model_name=model)
    holder = hold(model)
    try:
        started = time.monotonic()
        with pytest.raises(LockBusy) as err, promotion_guard(settings, purpose="second promotion", timeout=1.0):
            pass
        waited = time.monotonic() - started
        assert 1.0 <= waited < 4.0, waited
        msg = str(err.value)
        assert f"pid {holder.pid}" in msg and "test holder of " + model in msg, msg
        assert "gave up after 1 s" in msg and "MLGOV_LOCK_TIMEOUT" in msg
        assert not (settings.lock_dir / "promotion.lock").exists()  # no file lock in prod
    finally:
        holder.kill()
        holder.wait()


def test_a_holder_killed_with_sigkill_does_not_block_the_next_taker(prod_lock_env, tmp_path):
    model = f"lock-{secrets.token_hex(3)}"
    settings = get_settings(home=tmp_path, model_name=model)
    holder = hold(model)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    started = time.monotonic()
    with promotion_guard(settings, purpose="next promotion", timeout=10.0):
        taken = time.monotonic() - started
    assert taken < 3.0, f"the dead holder's lock lingered {taken:.1f} s"


def test_other_models_are_not_serialized_by_one_models_lock(prod_lock_env, tmp_path):
    holder = hold(f"lock-{secrets.token_hex(3)}")
    try:
        with promotion_guard(get_settings(home=tmp_path, model_name="another-model"), purpose="x", timeout=0.5):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_decision_log_appends_take_the_database_lock(prod_lock_env, tmp_path, monkeypatch):
    from mlgov_assets.core.audit.decision_log import DecisionLog
    from mlgov_assets.core.audit.decision_log.records import log_resource

    monkeypatch.setenv("MLGOV_HOME", str(tmp_path))
    log = DecisionLog(tmp_path / "audit" / "decisions.jsonl")
    log.path.parent.mkdir(parents=True)
    _append(log, "first")
    assert log_resource(log.path) == "mlgov:decision-log:audit/decisions.jsonl"  # the same on every host
    monkeypatch.setenv("MLGOV_LOCK_TIMEOUT", "0.5")
    with (
        guard(log_resource(log.path), path=None, purpose="another host appending"),
        pytest.raises(LockBusy, match="another host appending"),
    ):
        _append(log, "blocked")
    _append(log, "after")
    assert [r.reason for r in log.read()] == ["first", "after"]
    assert log.verify().ok


def _append(log, reason: str) -> None:
    log.append("rejection", actor="t", reason=reason, model_name="m", model_version=1, payload={}, evidence_hashes={})
