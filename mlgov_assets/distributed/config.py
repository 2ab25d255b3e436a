"""Where the Celery executor and its workers meet: the broker and result backend, one fact read
from the environment by the run worker (the executor) and every Celery worker alike.

``MLGOV_CELERY_BROKER`` (default RabbitMQ ``amqp://guest:guest@127.0.0.1:5672//``, what Dagster's
Helm chart uses; ``redis://127.0.0.1:6379/N`` works too) and ``MLGOV_CELERY_BACKEND`` (default
``rpc://``: results travel back through the broker). Importing this module imports no Celery.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagster import ExecutorDefinition

DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_BACKEND = "rpc://"
#: The Celery queue the executor submits steps to and the workers consume (dagster-celery's default).
QUEUE = "dagster"
#: The module Celery workers are started with (``celery -A WORKER_MODULE worker -Q dagster``).
WORKER_MODULE = "mlgov_assets.distributed.worker"


#: Celery settings on top of dagster-celery's defaults. A step's message is acknowledged only when the
#: step ends (``task_acks_late``) and requeued when its worker process dies (``task_reject_on_worker_lost``):
#: a worker killed mid-step hands the step to another worker instead of leaving the run waiting for a
#: result that never comes. Steps are idempotent (atomic asset writes; the promotion is a recoverable
#: transaction), so running one again is safe.
TASK_SETTINGS: dict[str, Any] = {"task_acks_late": True, "task_reject_on_worker_lost": True}


@dataclass(frozen=True)
class CeleryConfig:
    broker: str = DEFAULT_BROKER
    backend: str = DEFAULT_BACKEND

    @classmethod
    def from_env(cls) -> CeleryConfig:
        return cls(
            broker=os.environ.get("MLGOV_CELERY_BROKER") or DEFAULT_BROKER,
            backend=os.environ.get("MLGOV_CELERY_BACKEND") or DEFAULT_BACKEND,
        )

    def app_args(self) -> dict[str, Any]:
        """The arguments of ``dagster_celery.make_app`` (the worker's app), matching
        :meth:`executor_config` (the executor's app): a worker and the executor on different
        brokers would never meet."""
        from dagster_celery.config import DEFAULT_CONFIG, dict_wrapper

        source = dict_wrapper({**DEFAULT_CONFIG, **TASK_SETTINGS})  # type: ignore[no-untyped-call]
        return {"broker": self.broker, "backend": self.backend, "config_source": source}

    def executor_config(self) -> dict[str, Any]:
        return {"broker": self.broker, "backend": self.backend, "config_source": dict(TASK_SETTINGS)}


def worker_command(concurrency: int = 1, name: str | None = None) -> list[str]:
    """The command line of one Celery worker (run from the project's virtual environment)."""
    cmd = ["celery", "-A", WORKER_MODULE, "worker", "-Q", QUEUE, "-c", str(concurrency), "--loglevel", "INFO"]
    if name:
        cmd += ["-n", name]
    return cmd


def celery_executor_def(config: CeleryConfig | None = None) -> ExecutorDefinition:
    """The Celery executor bound to ``config`` (default: the environment's). Imports dagster-celery."""
    from dagster_celery import celery_executor

    return celery_executor.configured((config or CeleryConfig.from_env()).executor_config())


def location_executor() -> ExecutorDefinition:
    """The code location's executor: in-process in the embedded profile (one process per run; the
    multiprocess and Celery executors re-import the code location per step, 2-3 s each), the Celery
    executor in the production profile (every step on a worker)."""
    from dagster import in_process_executor

    if os.environ.get("MLGOV_PROFILE", "embedded") != "prod":
        return in_process_executor
    return celery_executor_def()
