"""The Celery worker module of the production profile: ``celery -A mlgov_assets.distributed.worker
worker -Q dagster -c 1`` (``mlgov prod up`` starts two). Each step the Celery executor submits runs
here, in a worker process that imports the code location (``mlgov_assets.definitions``) and writes to
the same Dagster instance (``DAGSTER_HOME``), asset store and MLflow server as the webserver and daemon:
start it with the same ``MLGOV_*`` environment (``mlgov_assets.instance.prepare_environment``).
"""

from __future__ import annotations

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from mlgov_assets.core.settings import Services

from .config import worker_app_args

app = make_app(worker_app_args(Services.from_env()))  # type: ignore[no-untyped-call]

execute_plan = create_task(app)  # type: ignore[no-untyped-call]
