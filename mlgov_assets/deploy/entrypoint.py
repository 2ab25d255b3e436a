"""The container entrypoint of every mlgov service (compose.yaml, the Helm values in docs/deploy.md):
``python -m mlgov_assets.deploy.entrypoint COMMAND [ARGS...]``.

It does what ``mlgov prod up`` does before starting a process: the Dagster instance file for the
profile (``instance.prepare_environment``: the prod ``dagster.yaml`` on PostgreSQL, ``DAGSTER_HOME``
and the ``MLGOV_*`` locations exported) and, in prod, the code-server workspace; then it replaces
itself with ``COMMAND`` (the webserver, the daemon, the code server, a Celery worker, the MLflow
server), so every container sees the same instance and state as the processes of one machine.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m mlgov_assets.deploy.entrypoint COMMAND [ARGS...]")
    from mlgov_assets.core.settings import get_settings
    from mlgov_assets.instance import prepare_environment

    settings = get_settings()
    prepare_environment(settings)
    if settings.is_prod:
        from mlgov_assets.deploy.workspace import write_prod_workspace

        os.environ["MLGOV_WORKSPACE"] = str(write_prod_workspace(settings))
    sys.stdout.flush()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
