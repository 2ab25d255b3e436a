"""Jobs that span stages: the governed training path and the champion decision."""

from dagster import AssetSelection, Definitions, define_asset_job

from .data import SOURCE_KEYS

#: The UI groups the governed path runs through, left to right.
PATH_GROUPS = ["data", "features", "training", "governance"]

governed_training_job = define_asset_job(
    "governed_training",
    # AssetSelection objects, not selection strings: see pyproject's antlr4 override note.
    # The source files are named explicitly so each run first observes their md5 (DataVersion).
    # The model cards (group "audit") come last, downstream of champion: they never block it.
    selection=AssetSelection.assets(*SOURCE_KEYS) | AssetSelection.groups(*PATH_GROUPS, "audit"),
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

defs = Definitions(jobs=[governed_training_job, champion_job])
