"""Stage 5 — monitoring: production batches as dynamic partitions, drift against the champion's
training data, shadow scoring, performance once labels arrive, drift-triggered retraining through
the same governed path, and the daily schedules.

``assets`` holds the per-batch assets and checks, ``sensors`` the landing and retraining sensors
(and the retraining run config), ``scheduled`` the daily assets and schedules, ``once`` one
daemon-like sensor tick for ``mlgov monitor --once``. All logic is in ``core.monitoring``.
"""

from dagster import Definitions

from .assets import BATCH_ASSETS, BATCH_CHECKS
from .scheduled import (
    champion_reevaluation,
    champion_reevaluation_schedule,
    daily_summary_schedule,
    monitoring_summary,
    reevaluation_job,
    summary_job,
)
from .sensors import batch_labels_job, batch_landing_sensor, monitor_batch_job, retrain_on_breach_sensor

defs = Definitions(
    assets=[*BATCH_ASSETS, monitoring_summary, champion_reevaluation],
    asset_checks=list(BATCH_CHECKS),
    jobs=[monitor_batch_job, batch_labels_job, summary_job, reevaluation_job],
    sensors=[batch_landing_sensor, retrain_on_breach_sensor],
    schedules=[daily_summary_schedule, champion_reevaluation_schedule],
)
