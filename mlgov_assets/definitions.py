"""The single code location (workspace.yaml points here): each stage's ``Definitions``, merged.

Every code-server start and run worker imports this module, so nothing it imports may import
mlflow, sklearn, shap, fairlearn, evidently, pandera or matplotlib at module level (a test
enforces it).
"""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from mlgov_assets.core.settings import apply_quiet_env

from .defs import audit, data, fairness, features, governance, jobs, monitoring, training
from .io_manager import MlgovIOManager
from .resources import MlgovResource, TrainingLock

apply_quiet_env()

#: The graph's stages, left to right; each module exports its own ``defs``.
STAGES = (data, features, training, fairness, governance, monitoring, audit, jobs)


def build_definitions(mlgov: MlgovResource | None = None, io_manager: MlgovIOManager | None = None) -> Definitions:
    """The code location's definitions; tests pass a resource on a temporary home and project."""
    mlgov = mlgov or MlgovResource()
    runtime = Definitions(
        resources={
            "mlgov": mlgov,
            "io_manager": io_manager or MlgovIOManager(),
            "training_lock": TrainingLock(home=mlgov.home),
        },
        # one process per run: the multiprocess executor costs 2-3 s per step here (each step
        # re-imports the code location) and the 2-core machine gains nothing from it
        executor=in_process_executor,
    )
    return Definitions.merge(*(stage.defs for stage in STAGES), runtime)


defs = build_definitions()
