"""The production stack on THIS machine, on loopback: ``mlgov prod up|down|status`` (``make prod-up``).

``up`` creates the databases if missing, writes the prod ``dagster.yaml`` (``instance_yaml``), starts
every process of :data:`PROCESSES` (detached, its own session) with its pid and log under
``$MLGOV_HOME/prod/``, and waits until each is healthy. ``down`` stops them in reverse order: SIGTERM
to the process group, KILL after a grace period. A pid file records the process's start time too, so a
reused pid is never signalled.

The process table is :data:`PROCESSES`: builders ``Settings -> Process``. Add a process (a code server,
Celery workers) by appending a builder; its health is an HTTP URL answering 2xx, or (None) being alive
for a few seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlgov_assets.core.errors import ConfigError, MlgovError
from mlgov_assets.core.integrity import atomic_write_bytes
from mlgov_assets.core.settings import DEFAULT_PROJECT_DIR, Services, Settings

__all__ = [
    "CELERY_WORKERS",
    "PROCESSES",
    "Process",
    "ProcessState",
    "artifacts_destination",
    "celery_worker",
    "code_server",
    "dagster_daemon",
    "dagster_webserver",
    "down",
    "mlflow_server",
    "mlflow_server_process",
    "start",
    "state",
    "status",
    "stop",
    "up",
    "wait_healthy",
    "workspace_file",
]

LOOPBACK = "127.0.0.1"
ALIVE_GRACE_SECONDS = 3.0
STOP_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class Process:
    """One long-running process of the stack."""

    name: str
    argv: list[str]
    #: an http(s) URL that answers 2xx when the process is ready; None: alive after a short grace
    health: str | None = None
    start_timeout: float = 120.0
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None


@dataclass(frozen=True)
class ProcessState:
    name: str
    pid: int | None
    running: bool
    healthy: bool
    log: Path

    def line(self) -> str:
        what = "healthy" if self.healthy else "running, not answering" if self.running else "stopped"
        return f"{self.name:<18} {what:<24} pid {self.pid or '-':<8} log {self.log}"


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _services(settings: Settings) -> Services:
    if settings.services is None:
        raise ConfigError("the production stack needs MLGOV_PROFILE=prod")
    return settings.services


def workspace_file(settings: Settings) -> Path:
    """The Dagster workspace the webserver and daemon load: in prod, the code server's
    (``deploy/workspace``); else the project's, else the package's."""
    if settings.is_prod:
        from mlgov_assets.deploy.workspace import write_prod_workspace

        return write_prod_workspace(settings)
    own = settings.project_dir / "workspace.yaml"
    return own if own.exists() else DEFAULT_PROJECT_DIR / "workspace.yaml"


def artifacts_destination(settings: Settings) -> str:
    """Where the MLflow server stores artifacts: ``MLGOV_MLFLOW_ARTIFACTS_DESTINATION`` (a directory or
    an ``s3://`` URI), default ``$MLGOV_HOME/prod/mlflow-artifacts`` (clients never read it directly)."""
    return os.environ.get("MLGOV_MLFLOW_ARTIFACTS_DESTINATION") or str(settings.prod_dir / "mlflow-artifacts")


def mlflow_server_process(
    services: Services, *, backend_db: str, artifacts: str, port: int, name: str = "mlflow-server"
) -> Process:
    """``mlflow server`` on loopback: PostgreSQL backend store, artifacts served (proxied) by itself."""
    return Process(
        name=name,
        argv=[
            _bin("mlflow"),
            "server",
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            services.sqlalchemy_url(backend_db),
            "--serve-artifacts",
            "--artifacts-destination",
            artifacts,
        ],
        health=f"http://{LOOPBACK}:{port}/health",
        start_timeout=300.0,  # a new database runs every migration first (~30 s on a quiet machine)
        # MLflow 3's GenAI job runner (a huey consumer per job type): mlgov runs no MLflow jobs
        env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"},
    )


def mlflow_server(settings: Settings) -> Process:
    services = _services(settings)
    return mlflow_server_process(
        services, backend_db=services.mlflow_db, artifacts=artifacts_destination(settings), port=services.mlflow_port
    )


def dagster_webserver(settings: Settings) -> Process:
    services = _services(settings)
    ws = workspace_file(settings)
    return Process(
        name="dagster-webserver",
        argv=[_bin("dagster-webserver"), "-h", LOOPBACK, "-p", str(services.dagster_port), "-w", str(ws)],
        health=f"http://{LOOPBACK}:{services.dagster_port}/server_info",
        cwd=ws.parent,
    )


def dagster_daemon(settings: Settings) -> Process:
    ws = workspace_file(settings)
    return Process(name="dagster-daemon", argv=[_bin("dagster-daemon"), "run", "-w", str(ws)], cwd=ws.parent)


def code_server(settings: Settings) -> Process:
    """``dagster code-server start`` serving the code location on loopback (healthy: gRPC answers)."""
    from mlgov_assets.deploy.workspace import code_server_argv

    services = _services(settings)
    return Process(
        name="code-server",
        argv=code_server_argv(_bin("dagster"), LOOPBACK, services.code_server_port),
        health=f"grpc://{LOOPBACK}:{services.code_server_port}",
        cwd=settings.project_dir,
    )


def celery_worker(number: int) -> Callable[[Settings], Process]:
    """The builder of Celery worker ``number``: ``celery -A mlgov_assets.distributed.worker worker -Q
    dagster -c 1`` (one step at a time; the stack runs :data:`CELERY_WORKERS` of them)."""

    def build(settings: Settings) -> Process:
        from mlgov_assets.distributed.config import worker_argv

        _services(settings)
        return Process(
            name=f"celery-worker-{number}",
            argv=worker_argv(_bin("celery"), f"mlgov-worker-{number}@%h"),
            cwd=settings.project_dir,
        )

    return build


#: Celery workers ``mlgov prod up`` starts (each runs one step at a time).
CELERY_WORKERS = 2

#: The stack, in start order (stopped in reverse): the code server and the workers before the
#: webserver and daemon that load it and launch runs onto them.
PROCESSES: list[Callable[[Settings], Process]] = [
    mlflow_server,
    code_server,
    *(celery_worker(n) for n in range(1, CELERY_WORKERS + 1)),
    dagster_webserver,
    dagster_daemon,
]


# ---------------------------------------------------------------------- one process
def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _pidfile(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def _recorded_pid(run_dir: Path, name: str) -> int | None:
    """The pid recorded for ``name`` if that very process (same start time) is still running."""
    try:
        rec = json.loads(_pidfile(run_dir, name).read_text())
        pid, ticks = int(rec["pid"]), int(rec["start_ticks"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if _start_ticks(pid) == ticks else None


def _answers(url: str) -> bool:
    if url.startswith("grpc://"):
        return _grpc_serving(url)
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _grpc_serving(url: str) -> bool:
    """A Dagster code server at ``grpc://host:port`` answers its health check with SERVING."""
    from urllib.parse import urlparse

    from dagster._grpc.client import DagsterGrpcClient

    parsed = urlparse(url)
    try:
        client = DagsterGrpcClient(host=parsed.hostname or LOOPBACK, port=parsed.port)
        return bool(client.health_check_query() == "SERVING")  # type: ignore[no-untyped-call]
    except Exception:  # not answering yet, in whatever way
        return False


def start(proc: Process, run_dir: Path) -> int:
    """Start ``proc`` detached (own session) unless it already runs; its pid file and log in ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    running = _recorded_pid(run_dir, proc.name)
    if running is not None:
        return running
    log = (run_dir / f"{proc.name}.log").open("ab")
    try:
        child = subprocess.Popen(
            proc.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=proc.cwd,
            env={**os.environ, **proc.env},
            start_new_session=True,
        )
    finally:
        log.close()
    record = {"pid": child.pid, "start_ticks": _start_ticks(child.pid), "argv": proc.argv[:2]}
    atomic_write_bytes(_pidfile(run_dir, proc.name), json.dumps(record).encode("utf-8"))
    return child.pid


def wait_healthy(proc: Process, run_dir: Path, pid: int) -> None:
    """Until ``proc`` answers its health URL (or, without one, stays alive a few seconds)."""
    deadline = time.monotonic() + (proc.start_timeout if proc.health else ALIVE_GRACE_SECONDS)
    while True:
        if _start_ticks(pid) is None or _is_zombie(pid):
            raise MlgovError(f"{proc.name} exited while starting: see {run_dir / f'{proc.name}.log'}")
        if proc.health and _answers(proc.health):
            return
        if time.monotonic() >= deadline:
            if proc.health is None:
                return
            raise MlgovError(
                f"{proc.name} did not answer {proc.health} within {proc.start_timeout:g} s: "
                f"see {run_dir / f'{proc.name}.log'}"
            )
        time.sleep(0.5)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def stop(name: str, run_dir: Path, *, grace: float = STOP_GRACE_SECONDS) -> bool:
    """SIGTERM the process group of ``name``, SIGKILL it after ``grace`` seconds if any of it is still
    running: the process itself, or children that outlived it (a Celery worker's pool processes, the code
    server's gRPC server), which keep its group. A group whose leader is already gone is stopped too.
    True if anything was running."""
    pid = _recorded_pid(run_dir, name)
    group = pid if pid is not None else _orphaned_group(run_dir, name)
    if group is None:
        _pidfile(run_dir, name).unlink(missing_ok=True)
        return False
    _signal_group(group, signal.SIGTERM)
    if not _wait_group_gone(group, grace):
        _signal_group(group, signal.SIGKILL)
        _wait_group_gone(group, STOP_GRACE_SECONDS)
    if pid is not None:
        _reap(pid)
    _pidfile(run_dir, name).unlink(missing_ok=True)
    return True


def _group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid`` (/proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_members(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def _orphaned_group(run_dir: Path, name: str) -> int | None:
    """The recorded process's group when the process itself is gone but members of its group still run
    (the kernel hands out no pid still in use as a group id, so that group is the recorded one's)."""
    try:
        pid = int(json.loads(_pidfile(run_dir, name).read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _start_ticks(pid) is not None:  # that pid now names another process: not ours
        return None
    return pid if _group_members(pid) else None


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # started with its own session: the group is its children too
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (tests start and stop in-process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def state(proc: Process, run_dir: Path) -> ProcessState:
    pid = _recorded_pid(run_dir, proc.name)
    running = pid is not None and not _is_zombie(pid)
    healthy = running and (_answers(proc.health) if proc.health else True)
    return ProcessState(proc.name, pid, running, healthy, run_dir / f"{proc.name}.log")


# ---------------------------------------------------------------------- the stack
def _table(settings: Settings) -> list[Process]:
    return [build(settings) for build in PROCESSES]


def up(settings: Settings, *, echo: Callable[[str], None] = print) -> list[ProcessState]:
    """Databases, the prod instance, then every process of the table, each waited for."""
    from mlgov_assets.deploy.postgres import ensure_database, postgres_problem
    from mlgov_assets.instance import prepare_environment

    services = _services(settings)
    problem = postgres_problem(services)
    if problem:
        raise MlgovError(f"{problem}: start PostgreSQL first (it is not part of `mlgov prod up`)")
    from mlgov_assets.distributed.config import broker_problem

    problem = broker_problem(services)
    if problem:
        raise MlgovError(f"{problem}: start RabbitMQ (or set MLGOV_CELERY_BROKER) first; the workers need it")
    for db in dict.fromkeys((services.dagster_db, services.mlflow_db, services.lock_db)):
        if ensure_database(services, db):
            echo(f"mlgov: created database {db}")
    prepare_environment(settings)  # the prod dagster.yaml, and MLGOV_*/DAGSTER_HOME for the children
    run_dir = settings.prod_dir
    states = []
    for proc in _table(settings):
        pid = start(proc, run_dir)
        echo(f"mlgov: {proc.name} pid {pid}: waiting until it is healthy")
        wait_healthy(proc, run_dir, pid)
        states.append(state(proc, run_dir))
    echo(
        f"mlgov: stack up (pids and logs in {run_dir}); MLflow {services.tracking_uri}, "
        f"Dagster http://{LOOPBACK}:{services.dagster_port}"
    )
    return states


def down(settings: Settings, *, echo: Callable[[str], None] = print) -> None:
    """Stop every process of the table, last started first."""
    for proc in reversed(_table(settings)):
        if stop(proc.name, settings.prod_dir):
            echo(f"mlgov: stopped {proc.name}")


def status(settings: Settings) -> list[ProcessState]:
    return [state(proc, settings.prod_dir) for proc in _table(settings)]
