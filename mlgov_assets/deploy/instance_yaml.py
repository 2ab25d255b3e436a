"""The Dagster instance configuration of the production profile (``MLGOV_PROFILE=prod``).

The ONE place the prod ``dagster.yaml`` is made: the shipped ``dagster.yaml`` (telemetry off, the run
queue with one training run at a time, run monitoring, local compute logs) with its storage replaced
by PostgreSQL (runs, event logs, schedules). Extend :func:`prod_instance_config` (run launcher,
executor, …) rather than writing another file. The password is never written: the file names the
``MLGOV_PG_PASSWORD`` environment variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlgov_assets.core.settings import DEFAULT_PROJECT_DIR, Settings

__all__ = ["PASSWORD_ENV", "prod_instance_config", "render_prod_instance_yaml", "shipped_instance_yaml"]

PASSWORD_ENV = "MLGOV_PG_PASSWORD"


def shipped_instance_yaml(settings: Settings) -> Path:
    """The project's ``dagster.yaml`` (the embedded profile's instance), else the package's."""
    src = settings.project_dir / "dagster.yaml"
    return src if src.exists() else DEFAULT_PROJECT_DIR / "dagster.yaml"


def postgres_storage(settings: Settings) -> dict[str, Any]:
    """dagster-postgres run, event-log and schedule storage on ``Services.dagster_db``."""
    services = settings.services
    if services is None:
        raise ValueError("the prod instance needs the prod profile's services (MLGOV_PROFILE=prod)")
    return {
        "postgres": {
            "postgres_db": {
                "hostname": services.pg_host,
                "port": services.pg_port,
                "username": services.pg_user,
                "password": {"env": PASSWORD_ENV},
                "db_name": services.dagster_db,
                # SQLAlchemy 2.1 maps bare postgresql:// to psycopg3, which is not shipped
                "scheme": "postgresql+psycopg2",
            }
        }
    }


def prod_instance_config(settings: Settings) -> dict[str, Any]:
    """The prod instance as a mapping: the shipped instance, storage on PostgreSQL."""
    import yaml

    config: dict[str, Any] = yaml.safe_load(shipped_instance_yaml(settings).read_text(encoding="utf-8")) or {}
    config["storage"] = postgres_storage(settings)
    # Runs start as processes on the daemon's host (``dagster api execute_run``, from the code
    # server's pointer); their steps go to the Celery workers (the prod executor, ``distributed``).
    # On Kubernetes this is dagster-k8s's K8sRunLauncher instead (docs/deploy.md).
    config["run_launcher"] = {"module": "dagster._core.launcher", "class": "DefaultRunLauncher"}
    return config


def render_prod_instance_yaml(settings: Settings) -> str:
    """The prod ``dagster.yaml`` text (what ``instance.prepare_environment`` writes in prod)."""
    import yaml

    header = (
        "# Written by mlgov (MLGOV_PROFILE=prod) from dagster.yaml: the same instance, storage on PostgreSQL.\n"
        "# Do not edit: mlgov_assets/deploy/instance_yaml.py renders it on every start.\n"
    )
    return header + yaml.safe_dump(prod_instance_config(settings), sort_keys=False)
