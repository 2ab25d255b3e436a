"""The single code location (workspace.yaml points here): each stage's ``Definitions``, merged.

Every code-server start and run worker imports this module, so nothing it imports may import
mlflow, sklearn, shap, fairlearn, evidently, pandera or matplotlib at module level (a test
enforces it).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from types import ModuleType

from dagster import Definitions, in_process_executor

from mlgov_assets.core.settings import apply_quiet_env

from .io_manager import MlgovIOManager
from .resources import MlgovResource, TrainingLock

apply_quiet_env()


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Definitions are long-lived objects: collecting while building them is wasted work (~0.15 s here)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _stages() -> tuple[ModuleType, ...]:
    """The graph's stages, left to right; each module exports its own ``defs``."""
    from .defs import audit, data, fairness, features, governance, jobs, monitoring, training

    return (data, features, training, fairness, governance, monitoring, audit, jobs)


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


with _gc_paused():
    STAGES = _stages()
    defs = build_definitions()
