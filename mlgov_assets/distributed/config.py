"""Where the Celery executor and its workers meet: the broker and result backend of
:class:`~mlgov_assets.core.settings.Services` (``MLGOV_CELERY_BROKER``/``_BACKEND``), read from the same
environment by the run worker (the executor) and every Celery worker. Importing this module imports
no Celery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlgov_assets.core.settings import Services, current_profile

if TYPE_CHECKING:
    from dagster import ExecutorDefinition

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


def worker_app_args(services: Services) -> dict[str, Any]:
    """The arguments of ``dagster_celery.make_app`` in a worker, matching :func:`executor_config` (a
    worker and the executor on different brokers would never meet)."""
    from dagster_celery.config import DEFAULT_CONFIG, dict_wrapper

    source = dict_wrapper({**DEFAULT_CONFIG, **TASK_SETTINGS})  # type: ignore[no-untyped-call]
    return {"broker": services.celery_broker, "backend": services.celery_backend, "config_source": source}


def executor_config(services: Services) -> dict[str, Any]:
    return {"broker": services.celery_broker, "backend": services.celery_backend, "config_source": dict(TASK_SETTINGS)}


def broker_problem(services: Services) -> str | None:
    """Why the Celery broker does not answer (a TCP connect to its host and port), or None."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(services.celery_broker)
    default = {"amqp": 5672, "pyamqp": 5672, "redis": 6379}.get(url.scheme.split("+")[0])
    host, port = url.hostname or "127.0.0.1", url.port or default
    if port is None:
        return None  # a transport without a TCP address of its own: nothing to check here
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        return f"the Celery broker {url.scheme}://{host}:{port} does not answer ({exc.strerror or exc})"
    return None


def worker_argv(celery: str, name: str, concurrency: int = 1) -> list[str]:
    """The command line of one Celery worker (``celery`` is the executable's path)."""
    return [
        celery,
        "-A",
        WORKER_MODULE,
        "worker",
        "-Q",
        QUEUE,
        "-c",
        str(concurrency),
        "-n",
        name,
        "--loglevel",
        "INFO",
    ]


def location_executor() -> ExecutorDefinition:
    """The code location's executor: in-process in the embedded profile (one process per run; the
    multiprocess and Celery executors re-import the code location per step, 2-3 s each), the Celery
    executor in the production profile (every step on a worker). Imports dagster-celery in prod only."""
    from dagster import in_process_executor

    if current_profile() != "prod":
        return in_process_executor
    from dagster_celery import celery_executor

    return celery_executor.configured(executor_config(Services.from_env()))


def executor_key() -> tuple[str, ...]:
    """What :func:`location_executor` depends on in this process's environment now: the profile and, in
    prod, the Celery broker and backend. A code location built under another key sends its steps
    elsewhere (in-process, or to another broker's workers), so it is rebuilt, never reused."""
    if current_profile() != "prod":
        return ("embedded",)
    services = Services.from_env()
    return ("prod", services.celery_broker, services.celery_backend)


def workers_problem(services: Services, timeout: float = 5.0) -> str | None:
    """Why no Celery worker would take a step (the broker is down, or no worker answers a ping on it),
    or None. A run submitted with no worker listening would wait forever instead of failing."""
    problem = broker_problem(services)
    if problem:
        return problem
    from celery import Celery

    app = Celery(broker=services.celery_broker)
    try:
        replies = app.control.ping(timeout=timeout)
    except Exception as exc:  # kombu/amqp raise many kinds; the message is what the user needs
        return f"the Celery broker {services.celery_broker.split('@')[-1]} refused the ping: {exc}"[:300]
    finally:
        app.close()
    if not replies:
        return f"no Celery worker answers on {services.celery_broker.split('@')[-1]} (start them: make prod-up)"
    return None
