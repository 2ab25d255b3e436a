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
