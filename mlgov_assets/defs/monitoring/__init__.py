"""Stage 5 — monitoring: production batches as dynamic partitions, drift against the champion's
training data, shadow scoring, performance once labels arrive, drift-triggered retraining through
the same governed path, and the daily schedules.

``assets`` holds the per-batch assets (external ``AssetSpec``s, so the UI's "Materialize all" never
opens a partition dialog for them), their checks and compute functions, ``batch_job`` the per-batch op
jobs that compute, store and report them, ``sensors`` the landing and retraining sensors (and the
retraining run config), ``scheduled`` the daily assets and schedules, ``once`` one
daemon-like sensor tick for ``mlgov monitor --once``. All logic is in ``core.monitoring``.
Assets and checks are templates (see ``defs/scope.py``); jobs, sensors and schedules are built per project.
"""

from dagster import Definitions

from ..scope import ProjectScope
from .assets import BATCH_ASSETS, BATCH_CHECKS
from .scheduled import monitoring_summary, scheduled_defs
from .sensors import sensor_defs

defs = Definitions(assets=[*BATCH_ASSETS, monitoring_summary], asset_checks=list(BATCH_CHECKS))


def project_defs(scope: ProjectScope) -> Definitions:
    return Definitions.merge(sensor_defs(scope), scheduled_defs(scope))
