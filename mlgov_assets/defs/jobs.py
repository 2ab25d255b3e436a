"""Jobs that span stages, per project: the governed training path and the champion decision."""

from dagster import AssetSelection, Definitions, define_asset_job

from .data import SOURCE_NAMES
from .scope import ProjectScope

#: The UI groups (per project: ``<project>__<group>``) the governed path runs through, left to right.
PATH_GROUPS = ["data", "features", "training", "governance"]


def project_defs(scope: ProjectScope) -> Definitions:
    governed_training = define_asset_job(
        scope.named("governed_training"),
        # AssetSelection objects, not selection strings: see pyproject's antlr4 override note.
        # The source files are named explicitly so each run first observes their md5 (DataVersion).
        # The model cards (group "audit") come last, downstream of champion: they never block it.
        selection=AssetSelection.assets(*(scope.key(n) for n in SOURCE_NAMES))
        | AssetSelection.groups(*(scope.named(g) for g in [*PATH_GROUPS, "audit"])),
        description=f"The governed training path of {scope.name}: data -> validation gates -> features -> "
        "challenger (+ mitigated candidate) -> metric, fairness and explanation gates -> champion -> model cards.",
        tags={"mlgov/serial": "training", "mlgov/project": scope.name},
    )
    champion_decision = define_asset_job(
        scope.named("champion_decision"),
        selection=AssetSelection.assets(scope.key("champion")),
        description=f"Promote a version of {scope.name} or roll back, through the champion asset "
        "(used by mlgov promote/rollback).",
        tags={"mlgov/serial": "training", "mlgov/project": scope.name},
    )
    return Definitions(jobs=[governed_training, champion_decision])


defs = Definitions()
