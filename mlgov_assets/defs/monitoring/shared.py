"""What the monitoring stage's modules share: the batch partitions, group, code version, tags."""

from dagster import AssetKey, DynamicPartitionsDefinition

from mlgov_assets.core.provenance import source_version
from mlgov_assets.core.settings import PACKAGE_DIR

from ...resources import MlgovResource

BATCHES_NAME = "batches"
BATCHES = DynamicPartitionsDefinition(name=BATCHES_NAME)
GROUP = "monitoring"
CHAMPION = AssetKey("champion")
#: Every module of core.monitoring and of this stage: editing monitoring logic marks its assets stale.
CODE_VERSION = source_version(
    *sorted(
        str(p.relative_to(PACKAGE_DIR))
        for folder in ("core/monitoring", "defs/monitoring")
        for p in (PACKAGE_DIR / folder).glob("*.py")
    )
)
RUN_KEY_TAG = "dagster/run_key"
SENSOR_NAME_TAG = "dagster/sensor_name"
PARTITION_TAG = "dagster/partition"
#: How often the landing and retraining sensors tick: just under the daemon's sensor loop, which runs
#: every 5 s at most (Dagster's ``MIN_INTERVAL_LOOP_TIME``), so every loop evaluates them (an interval of
#: exactly 5 s skips a loop whenever the previous tick started a moment late). A tick that finds nothing
#: lists a folder and reads the ledger's small JSON files: milliseconds, no MLflow (benchmarks/mttd.py).
SENSOR_INTERVAL_SECONDS = 4
#: A landed file younger than this is left for the next tick (a non-atomic writer may still be writing).
LANDING_SETTLE_SECONDS = 2.0
#: How long a retraining tick waits for the verdicts (drift; performance when labelled) of a batch run
#: in flight (less than a loop, so the tick ends before the next one is due): the breach is then
#: requested within moments of its verdict instead of on the next loop.
VERDICT_WAIT_SECONDS = 4.0
LANDING_SENSOR = "batch_landing_sensor"
RETRAIN_SENSOR = "retrain_on_breach_sensor"


def webhook(mlgov: MlgovResource) -> str | None:
    return mlgov.policy().monitoring.webhook_url
