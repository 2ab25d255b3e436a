"""Dagster runs left STARTED by a dead process: marked failed by the next CLI process.

The CLI executes jobs in its own process (``execute_in_process``), which the daemon's run monitoring
does not watch; a run whose process was killed would stay STARTED for ever. ``run_job`` tags each
run with its process (``mlgov/pid``, ``mlgov/host``); :func:`fail_dead_runs` reports the ones whose
process no longer exists as failed, at most ``SWEEP_LIMIT`` per call, each logged.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING

from mlgov_assets.core.locks import pid_alive

if TYPE_CHECKING:
    from dagster import DagsterInstance

__all__ = ["HOST_TAG", "PID_TAG", "SWEEP_LIMIT", "fail_dead_runs", "process_tags"]

PID_TAG, HOST_TAG = "mlgov/pid", "mlgov/host"
SWEEP_LIMIT = 50  # runs inspected per call (the sweep runs before every CLI job)
_LOG = logging.getLogger("mlgov.recovery")


def process_tags() -> dict[str, str]:
    """The tags naming the process that executes a run in-process."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def fail_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark runs STARTED by a process of this host that no longer exists as failed; their ids."""
    from dagster import DagsterRunStatus, RunsFilter

    here = socket.gethostname()
    found = instance.get_runs(
        RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING]), limit=SWEEP_LIMIT
    )
    failed = []
    for run in found:
        pid = run.tags.get(PID_TAG, "")
        if run.tags.get(HOST_TAG) != here or not pid.isdigit() or pid_alive(int(pid)) or int(pid) == os.getpid():
            continue
        message = f"the process that executed this run (pid {pid}) died; marked failed by pid {os.getpid()}"
        instance.report_run_failed(run, message)
        _LOG.warning("mlgov recovery: dagster run %s: %s", run.run_id, message)
        failed.append(run.run_id)
    return failed
