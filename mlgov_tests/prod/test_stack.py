"""``mlgov prod up|status|down`` on this machine: databases created, the MLflow server, the code server,
two Celery workers and the Dagster webserver + daemon started on loopback with pids and logs under
``$MLGOV_HOME/prod/``, healthy, then stopped (nothing left running)."""

from __future__ import annotations

import json
import urllib.request

import pytest
import yaml

from mlgov_tests.prod.conftest import free_port


def _alive(pid: int) -> bool:
    from mlgov_assets.deploy.stack import _is_zombie, _start_ticks

    return _start_ticks(pid) is not None and not _is_zombie(pid)


@pytest.mark.slow
def test_prod_up_status_down(pg_services, pg_database, prod_lock_env, celery_broker, tmp_path, monkeypatch, capsys):
    from mlgov_assets.cli import main
    from mlgov_assets.deploy.postgres import postgres_problem

    home = tmp_path / "state"
    mlflow_port, dagster_port = free_port(), free_port()
    env = {
        "MLGOV_HOME": str(home),
        "MLGOV_DAGSTER_DB": pg_database("stack_dagster", create=False),
        "MLGOV_MLFLOW_DB": pg_database("stack_mlflow", create=False),
        "MLGOV_LOCK_DB": pg_database("stack_lock", create=False),
        "MLGOV_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
        "MLGOV_DAGSTER_PORT": str(dagster_port),
        "MLGOV_CODE_SERVER_PORT": str(free_port()),
        "MLGOV_CELERY_BROKER": celery_broker.url,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert postgres_problem(pg_services) is None
    try:
        assert main(["prod", "up"]) == 0
        out = capsys.readouterr()
        assert "created database " + env["MLGOV_MLFLOW_DB"] in out.err
        assert out.out.count("healthy") == 6, out.out
        run_dir = home / "prod"
        pids = {p.stem: json.loads(p.read_text())["pid"] for p in run_dir.glob("*.pid")}
        assert set(pids) == {
            "mlflow-server",
            "code-server",
            "celery-worker-1",
            "celery-worker-2",
            "dagster-webserver",
            "dagster-daemon",
        }
        assert all(_alive(pid) for pid in pids.values())
        assert all((run_dir / f"{name}.log").exists() for name in pids)
        instance_yaml = yaml.safe_load((home / "dagster" / "dagster.yaml").read_text())
        assert instance_yaml["storage"]["postgres"]["postgres_db"]["db_name"] == env["MLGOV_DAGSTER_DB"]
        with urllib.request.urlopen(f"http://127.0.0.1:{dagster_port}/server_info", timeout=10) as resp:
            assert resp.status == 200
        assert main(["prod", "up"]) == 0  # idempotent: the running processes are kept
        assert {p.stem: json.loads(p.read_text())["pid"] for p in run_dir.glob("*.pid")} == pids
        capsys.readouterr()
        assert main(["prod", "status"]) == 0
    finally:
        assert main(["prod", "down"]) == 0
    assert not list((home / "prod").glob("*.pid"))
    assert not any(_alive(pid) for pid in pids.values())
    assert main(["prod", "status"]) == 1  # stopped: not healthy
