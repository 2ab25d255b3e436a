"""CLI runs in the production profile: the job's steps on the Celery workers, like a run the UI launches.

``mlgov train`` (and every command that runs a job) executes the job through ``execute_job`` with a
reconstructable pointer to the code location (``mlgov_assets.definitions:location_defs``: the location
of the CURRENT environment, whose executor — the Celery executor on ``MLGOV_CELERY_BROKER`` in prod —
sends every step to the workers, which re-import the location from the same pointer). Never the module's
``defs`` as it was first imported: a process that imported it under another profile or broker would run
the steps in-process, or send them to another broker's workers. A job whose executor is not Celery is
refused (its steps would run in the command's process). The command's own process coordinates the
run (as a run worker would) and reads the outputs back through the IO manager, so callers see the same
result as in the embedded profile. Importing this module imports nothing heavy.
"""

from __future__ import annotations

import atexit
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagster import DagsterInstance
    from dagster._core.definitions.reconstruct import ReconstructableJob
    from dagster._core.execution.execution_result import ExecutionResult

#: Where the workers (and this process) find the code location.
LOCATION_MODULE = "mlgov_assets.definitions"
LOCATION_ATTRIBUTE = "location_defs"
#: The executor a prod CLI run must have (dagster-celery's ``celery_executor``).
CELERY_EXECUTOR = "celery"

_OPEN = contextlib.ExitStack()
atexit.register(_OPEN.close)


def execute(
    job_name: str, run_config: dict[str, Any], instance: DagsterInstance, tags: dict[str, str], project_dir: Path
) -> ExecutionResult:
    """Run ``job_name`` of the location: in this process (embedded profile), or with the location's
    executor (Celery in prod) from a reconstructable pointer, the result kept open until the process
    exits so ``output_for_node`` can load outputs through the IO manager."""
    from dagster import execute_job

    from mlgov_assets.core.errors import ConfigError
    from mlgov_assets.core.settings import Services, current_profile
    from mlgov_assets.definitions import location_defs
    from mlgov_assets.distributed.config import workers_problem

    if current_profile() != "prod":
        job = location_defs().resolve_job_def(job_name)
        return job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False, tags=tags)
    if not any(j.name == job_name for j in location_defs().resolve_all_job_defs()):
        raise ConfigError(
            f"job {job_name} is not in the code location the workers load (MLGOV_PROJECTS / MLGOV_PROJECT_SPEC of "
            "this process differ from the location's): select a project the location serves"
        )
    problem = workers_problem(Services.from_env())
    if problem:
        raise ConfigError(f"cannot run {job_name} in the production profile: {problem}")
    result = execute_job(
        _celery_job(job_name, project_dir), instance, run_config=run_config, tags=tags, raise_on_error=False
    )
    return _OPEN.enter_context(result)


def _celery_job(job_name: str, project_dir: Path) -> ReconstructableJob:
    """The reconstructable job, resolved afresh for the current environment, and checked to run its
    steps on the Celery workers (refused otherwise: they would run in this process)."""
    from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository

    from mlgov_assets.core.errors import ConfigError

    # Dagster keeps the last resolved job per process, keyed by the pointer alone (which names no
    # profile or broker): an earlier command's job would bring its executor along
    ReconstructableJob.get_definition.cache_clear()
    ReconstructableJob.get_repository_definition.cache_clear()
    repo = ReconstructableRepository.for_module(LOCATION_MODULE, LOCATION_ATTRIBUTE, working_directory=str(project_dir))
    recon = repo.get_reconstructable_job(job_name)
    executor = recon.get_definition().executor_def.name
    if executor != CELERY_EXECUTOR:
        raise ConfigError(
            f"refusing to run {job_name}: its executor is {executor!r}, not the Celery executor, so its steps "
            "would run in this process instead of on the workers"
        )
    return recon
