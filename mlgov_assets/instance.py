"""The persistent Dagster instance under the mlgov state directory."""

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from mlgov_assets.core.integrity import atomic_write_bytes
from mlgov_assets.core.settings import DEFAULT_PROJECT_DIR, Settings, apply_quiet_env

if TYPE_CHECKING:
    from dagster import DagsterInstance


def prepare_environment(settings: Settings) -> Path:
    """Point DAGSTER_HOME at ``$MLGOV_HOME/dagster`` with the project's ``dagster.yaml`` and
    export the MLGOV_* locations so every process (webserver, daemon, code server, run
    workers) resolves the same state directory."""
    apply_quiet_env()
    settings.ensure()
    home = settings.dagster_home
    dst = home / "dagster.yaml"
    if settings.is_prod:  # PostgreSQL storage, same queue (deploy/instance_yaml is the one renderer)
        from mlgov_assets.deploy.instance_yaml import PASSWORD_ENV, render_prod_instance_yaml

        text = render_prod_instance_yaml(settings).encode("utf-8")
        if not dst.exists() or dst.read_bytes() != text:
            atomic_write_bytes(dst, text)
        os.environ.setdefault(PASSWORD_ENV, "")
        os.environ["MLGOV_PROFILE"] = "prod"
    else:
        src = settings.project_dir / "dagster.yaml"
        if not src.exists():
            src = DEFAULT_PROJECT_DIR / "dagster.yaml"
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            tmp = dst.with_suffix(".yaml.tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["MLGOV_HOME"] = str(settings.location)  # the location's: every project's state is below it
    os.environ["MLGOV_PROJECT_DIR"] = str(settings.project_dir)
    os.environ["MLGOV_POLICY"] = str(settings.policy_path)
    os.environ["MLGOV_LANDING_DIR"] = str(settings.landing_dir)
    os.environ["MLGOV_PROJECT_SPEC"] = str(settings.project_spec)
    if settings.generated_override is not None:
        os.environ["MLGOV_GENERATED_DIR"] = str(settings.generated_override)
    return home


def get_instance(settings: Settings) -> "DagsterInstance":
    """The Dagster instance under ``settings.home`` (environment prepared first)."""
    from dagster import DagsterInstance

    prepare_environment(settings)
    return DagsterInstance.get()
