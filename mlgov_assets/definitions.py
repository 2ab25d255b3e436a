"""The single code location (workspace.yaml points here): each stage's ``Definitions``, merged.

Every code-server start and run worker imports this module, so nothing it imports may import
mlflow, sklearn, shap, fairlearn, evidently, pandera or matplotlib at module level (a test
enforces it).
"""

from __future__ import annotations

import contextlib
import gc
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

from dagster import AssetChecksDefinition, AssetsDefinition, BetaWarning, Definitions

from mlgov_assets.core.settings import apply_quiet_env

from .defs.common import hooked_code_versions
from .defs.scope import ProjectScope, location_projects, project_assets
from .distributed.config import executor_key, location_executor
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
    """The graph's stages, left to right; each module exports its own ``defs`` (asset and check
    templates) and, where it has jobs, sensors or schedules, ``project_defs(scope)``."""
    from .defs import approval, audit, champion_checks, data, fairness, features, governance, jobs, monitoring, training

    return (data, features, training, fairness, governance, champion_checks, monitoring, audit, jobs, approval)


def project_definitions(scope: ProjectScope, project_dir: Path) -> Definitions:
    """One project's part of the code location: every stage's templates under its key prefix and
    groups, and its jobs, sensors and schedules."""
    templates = Definitions.merge(*(stage.defs for stage in STAGES))
    assets = [a for a in templates.assets or () if isinstance(a, AssetsDefinition)]
    checks = [c for c in templates.asset_checks or () if isinstance(c, AssetChecksDefinition)]
    keys = [k for a in (*assets, *checks) for k in (*a.keys, *(c.asset_key for c in a.check_keys))]
    keys += [d.asset_key for a in assets for spec in a.specs for d in spec.deps]
    copied, copied_checks = project_assets(
        scope, assets, checks, all_keys=set(keys), code_versions=hooked_code_versions(scope.spec, project_dir)
    )
    own = [stage.project_defs(scope) for stage in STAGES if hasattr(stage, "project_defs")]
    return Definitions.merge(Definitions(assets=copied, asset_checks=copied_checks), *own)


def build_definitions(
    mlgov: MlgovResource | None = None,
    io_manager: MlgovIOManager | None = None,
    projects: Sequence[ProjectScope] | None = None,
) -> Definitions:
    """The code location's definitions: every project of :func:`location_projects` (or ``projects``)
    side by side; tests pass a resource on a temporary home and project."""
    mlgov = mlgov or MlgovResource()
    settings = mlgov.settings()
    scopes = projects if projects is not None else location_projects(settings.project_dir)
    runtime = Definitions(
        resources={
            "mlgov": mlgov,
            "io_manager": io_manager or MlgovIOManager(),
            "training_lock": TrainingLock(home=str(settings.location)),
        },
        # embedded: one process per run (the multiprocess executor costs 2-3 s per step here: each
        # step re-imports the code location); prod: the Celery executor, every step on a worker
        executor=location_executor(),
    )
    from .defs import lineage_events  # location-wide: OpenLineage events of every run (no openlineage import)

    projects_defs = (project_definitions(scope, settings.project_dir) for scope in scopes)
    return Definitions.merge(*projects_defs, lineage_events.location_defs(), runtime)


_BUILT: dict[tuple[tuple[ProjectScope, ...], tuple[str, ...]], Definitions] = {}


def location_defs() -> Definitions:
    """The code location for this process's current environment. Commands run in-process (the CLI, and
    tests running many commands), so a command may select a project, a profile or a Celery broker the
    module's ``defs`` was not built with (its executor is fixed when it is built): that location is
    built once and kept. The CLI's runs in prod point the workers here too (``distributed/cli_runs``)."""
    key = (tuple(location_projects()), executor_key())
    if key == (LOCATION, LOCATION_EXECUTOR):
        return defs
    if key not in _BUILT:
        with _quiet_build():
            _BUILT[key] = build_definitions(projects=key[0])
    return _BUILT[key]


@contextlib.contextmanager
def _quiet_build() -> Iterator[None]:
    with _gc_paused(), warnings.catch_warnings():
        # copying a check definition per project passes Dagster's beta `execution_type` through unchanged
        warnings.filterwarnings("ignore", category=BetaWarning)
        yield


with _quiet_build():
    STAGES = _stages()
    LOCATION = tuple(location_projects())
    LOCATION_EXECUTOR = executor_key()
    defs = build_definitions(projects=LOCATION)
