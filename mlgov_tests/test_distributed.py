"""The executor choice per profile, without servers: embedded stays in-process and Celery-free;
prod runs every step through the Celery executor on the configured broker."""

from __future__ import annotations

import subprocess
import sys

import pytest

CELERY = ("celery", "dagster_celery", "kombu")


def test_embedded_profile_imports_no_celery():
    code = f"import sys, mlgov_assets.definitions; print(','.join(m for m in {CELERY!r} if m in sys.modules))"
    env = {k: v for k, v in __import__("os").environ.items() if k != "MLGOV_PROFILE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "", f"importing mlgov_assets.definitions pulled in: {out.stdout}"


def test_embedded_profile_executes_in_process(monkeypatch: pytest.MonkeyPatch):
    from dagster import in_process_executor

    from mlgov_assets.distributed.config import location_executor

    monkeypatch.delenv("MLGOV_PROFILE", raising=False)
    assert location_executor() is in_process_executor


def test_prod_profile_executes_on_celery_with_the_configured_broker(monkeypatch: pytest.MonkeyPatch):
    from mlgov_assets.distributed.config import location_executor

    monkeypatch.setenv("MLGOV_PROFILE", "prod")
    monkeypatch.setenv("MLGOV_CELERY_BROKER", "redis://127.0.0.1:6379/7")
    monkeypatch.delenv("MLGOV_CELERY_BACKEND", raising=False)
    executor = location_executor()
    assert executor.name == "celery"
    configured = executor.config_schema.resolve_config({})  # type: ignore[attr-defined]
    assert configured.success
    assert {k: configured.value["config"][k] for k in ("broker", "backend")} == {
        "broker": "redis://127.0.0.1:6379/7",
        "backend": "rpc://",
    }


JOB = "adult__governed_training"


def test_a_prod_cli_run_sends_its_steps_to_the_current_broker_whatever_was_imported(monkeypatch: pytest.MonkeyPatch):
    """``mlgov_assets.definitions`` imported earlier in this process (as a test session's collection
    does, embedded) keeps ``defs`` with the executor of THAT environment: a prod CLI run must still get
    the Celery executor on the broker of now (CI saw every step of `mlgov train` run in the pytest process)."""
    import mlgov_assets.definitions as location
    from mlgov_assets.core.settings import DEFAULT_PROJECT_DIR
    from mlgov_assets.distributed.cli_runs import _celery_job

    monkeypatch.delenv("MLGOV_PROFILE", raising=False)
    assert location.location_defs().resolve_job_def(JOB).executor_def.name == "in_process"
    monkeypatch.setenv("MLGOV_PROFILE", "prod")
    for broker in ("redis://127.0.0.1:6379/9", "redis://127.0.0.1:6379/10"):  # one process, two brokers in turn
        monkeypatch.setenv("MLGOV_CELERY_BROKER", broker)
        executor = _celery_job(JOB, DEFAULT_PROJECT_DIR).get_definition().executor_def
        assert executor.name == "celery"
        assert executor.config_schema.resolve_config({}).value["config"]["broker"] == broker  # type: ignore[attr-defined]


def test_a_prod_cli_run_whose_steps_would_run_in_process_is_refused(monkeypatch: pytest.MonkeyPatch):
    import mlgov_assets.definitions as location
    from mlgov_assets.core.errors import ConfigError
    from mlgov_assets.core.settings import DEFAULT_PROJECT_DIR
    from mlgov_assets.distributed.cli_runs import _celery_job

    monkeypatch.delenv("MLGOV_PROFILE", raising=False)
    embedded = location.location_defs()
    monkeypatch.setenv("MLGOV_PROFILE", "prod")
    monkeypatch.setattr(location, "location_defs", lambda: embedded)  # a location built for another profile
    with pytest.raises(ConfigError, match=r"its executor is 'in_process'.*would run in this process"):
        _celery_job(JOB, DEFAULT_PROJECT_DIR)
