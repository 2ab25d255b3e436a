"""The single code location: wiring only (workspace.yaml points here).

Import cost matters: every code-server start and run worker pays it, so nothing here (or in the
modules it imports) imports mlflow, sklearn, shap, fairlearn, evidently, pandera or matplotlib at
module level; assets import them inside their bodies. A test enforces it.
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

from mlgov_assets.core.settings import apply_quiet_env

from .defs import audit, data, fairness, features, governance, monitoring, training
from .io_manager import MlgovIOManager
from .resources import MlgovResource, TrainingLock
from .sensors import source_files_sensor

apply_quiet_env()

PATH_GROUPS = ["data", "features", "training", "governance"]

governed_training_job = define_asset_job(
    "governed_training",
    # AssetSelection objects, not selection strings: see pyproject's antlr4 override note.
    # The source files are named explicitly so each run first observes their md5 (DataVersion).
    # The model cards (group "audit") come last, downstream of champion: they never block it.
    selection=AssetSelection.assets(*data.SOURCE_KEYS) | AssetSelection.groups(*PATH_GROUPS, "audit"),
    description="The governed training path: data -> validation gates -> features -> challenger (+ mitigated "
    "candidate) -> metric, fairness and explanation gates -> champion -> model cards.",
    tags={"mlgov/serial": "training"},
)
champion_job = define_asset_job(
    "champion_decision",
    selection=AssetSelection.assets("champion"),
    description="Promote a version or roll back, through the champion asset (used by mlgov promote/rollback).",
    tags={"mlgov/serial": "training"},
)

ASSETS = [
    data.adult_training_file,
    data.adult_holdout_file,
    data.training_data,
    data.holdout_data,
    features.train_features,
    features.holdout_features,
    training.challenger_model,
    governance.champion,
]
CHECKS = [
    data.check_training_data_schema,
    data.check_holdout_data_schema,
    features.check_train_features_schema,
    features.check_holdout_features_schema,
    *governance.CHALLENGER_CHECKS,
    *governance.CANDIDATE_CHECKS,
]
# later stages each export their own lists (ASSETS, CHECKS, JOBS, SENSORS, SCHEDULES)
STAGES = [fairness, monitoring, audit]
ASSETS += [a for st in STAGES for a in st.ASSETS]
CHECKS += [c for st in STAGES for c in st.CHECKS]


def build_definitions(mlgov: MlgovResource | None = None, io_manager: MlgovIOManager | None = None) -> Definitions:
    """Tests build isolated Definitions (temp home, temp project) with the same wiring."""
    return Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=[governed_training_job, champion_job, *[j for st in STAGES for j in st.JOBS]],
        sensors=[source_files_sensor, *[x for st in STAGES for x in st.SENSORS]],
        schedules=[x for st in STAGES for x in st.SCHEDULES],
        resources={
            "mlgov": mlgov or MlgovResource(),
            "io_manager": io_manager or MlgovIOManager(),
            "training_lock": TrainingLock(home=(mlgov or MlgovResource()).home),
        },
        # one process per run: the multiprocess executor costs 2-3 s per step here (each step
        # re-imports the code location) and the 2-core machine gains nothing from it
        executor=in_process_executor,
    )


defs = build_definitions()
