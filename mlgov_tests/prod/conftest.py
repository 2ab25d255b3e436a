"""Fixtures of the production-profile suite: real PostgreSQL, a real ``mlflow server``.

* ``pg_services`` (session): the PostgreSQL of ``MLGOV_PG_*`` (default 127.0.0.1:5432, user postgres)
  checked once; missing → every test here skips with ONE line naming the service and how to start
  it, or fails when ``MLGOV_REQUIRE_SERVICES=1`` (CI).
* ``pg_database`` (session): a factory ``pg_database(purpose) -> name`` of fresh databases, all dropped
  when the session ends.
* ``prod_dagster_db`` / ``prod_lock_db`` (session): the Dagster instance's database (also the lock
  database, as in a deployment).
* ``mlflow_server`` (session): ``mlflow server`` on a free loopback port against its own fresh database
  and a temporary artifact destination, started once (first start migrates: ~30 s), stopped at the end.
* ``prod_lock_env`` (function): ``MLGOV_PROFILE=prod`` + the PostgreSQL settings (locks only; no MLflow).
* ``prod_env`` / ``prod_full_env`` (function): the root conftest's ``env`` / ``full_env`` (project copy,
  state dir) switched to the prod profile: Dagster on ``prod_dagster_db``, MLflow through
  ``mlflow_server``, and a registered model name of its own (tests share the server's database).
* ``prod_instance`` (function): the Dagster instance ``prepare_environment`` writes for ``prod_env``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlgov_assets.core.settings import Services
from mlgov_tests.conftest import Env

REQUIRE_ENV = "MLGOV_REQUIRE_SERVICES"
PG_HINT = "start it: `sudo service postgresql start` (trust auth for user postgres on 127.0.0.1:5432)"


def service_missing(service: str, problem: str, hint: str) -> None:
    """Skip with one line naming ``service`` and how to start it; fail instead under CI's
    ``MLGOV_REQUIRE_SERVICES=1`` (a missing service is never a silent pass there)."""
    line = f"{service} unavailable ({problem}); {hint}"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 and {line}", pytrace=False)
    pytest.skip(line)


HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL checked once at collection: when it is missing (and not required), this suite is
    left out with ONE line naming the service and how to start it (fixtures fail it under CI)."""
    ours = [item for item in items if HERE in Path(str(item.path)).resolve().parents]
    if not ours or os.environ.get(REQUIRE_ENV) == "1":
        return
    from mlgov_assets.deploy.postgres import postgres_problem

    problem = postgres_problem(Services.from_env())
    if problem is None:
        return
    items[:] = [item for item in items if item not in ours]
    config.hook.pytest_deselected(items=ours)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    line = f"mlgov_tests/prod: {len(ours)} test(s) not run: PostgreSQL unavailable ({problem}); {PG_HINT}"
    if reporter is not None:
        reporter.write_line(line)
    else:  # pragma: no cover - pytest without its terminal reporter
        print(line)


@pytest.fixture(scope="session")
def pg_services() -> Services:
    """The PostgreSQL server the suite uses (``MLGOV_PG_*``, loopback defaults), checked once."""
    from mlgov_assets.deploy.postgres import postgres_problem

    services = Services.from_env()
    problem = postgres_problem(services)
    if problem:
        service_missing("PostgreSQL", problem, PG_HINT)
    return services


@pytest.fixture(scope="session")
def pg_database(pg_services: Services) -> Iterator[Callable[..., str]]:
    """``make(purpose) -> database name``: a new, empty database (``create=False``: only a fresh name,
    for code that creates it itself); every one dropped after the session."""
    from mlgov_assets.deploy.postgres import create_database, drop_database

    token = f"{os.getpid()}_{secrets.token_hex(3)}"
    made: list[str] = []

    def make(purpose: str, *, create: bool = True) -> str:
        name = f"mlgov_test_{token}_{purpose}"[:63]
        made.append(name)
        if create:
            create_database(pg_services, name)
        return name

    yield make
    for name in made:
        drop_database(pg_services, name)


@pytest.fixture(scope="session")
def prod_dagster_db(pg_database: Callable[..., str]) -> str:
    return pg_database("dagster")


@pytest.fixture(scope="session")
def prod_lock_db(prod_dagster_db: str) -> str:
    """The advisory locks' database: the Dagster one (the deployment default)."""
    return prod_dagster_db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class MlflowServer:
    url: str
    database: str
    artifacts: Path
    run_dir: Path
    pid: int


@pytest.fixture(scope="session")
def mlflow_server(
    pg_services: Services, pg_database: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """``mlflow server`` (PostgreSQL store, served artifacts) on a free loopback port, once per session."""
    from mlgov_assets.deploy.stack import mlflow_server_process, start, stop, wait_healthy

    root = tmp_path_factory.mktemp("mlflow-server")
    db = pg_database("mlflow")
    port = free_port()
    proc = mlflow_server_process(pg_services, backend_db=db, artifacts=str(root / "artifacts"), port=port)
    pid = start(proc, root)
    try:
        wait_healthy(proc, root, pid)
    except Exception as exc:
        stop(proc.name, root)
        log = (root / f"{proc.name}.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"mlflow server did not start: {exc}\n{log}") from None
    yield MlflowServer(url=f"http://127.0.0.1:{port}", database=db, artifacts=root / "artifacts", run_dir=root, pid=pid)
    stop(proc.name, root)


def _pg_env(monkeypatch: pytest.MonkeyPatch, services: Services, lock_db: str) -> None:
    monkeypatch.setenv("MLGOV_PROFILE", "prod")
    monkeypatch.setenv("MLGOV_PG_HOST", services.pg_host)
    monkeypatch.setenv("MLGOV_PG_PORT", str(services.pg_port))
    monkeypatch.setenv("MLGOV_PG_USER", services.pg_user)
    monkeypatch.setenv("MLGOV_PG_PASSWORD", services.pg_password)
    monkeypatch.setenv("MLGOV_LOCK_DB", lock_db)


@pytest.fixture
def prod_lock_env(pg_services: Services, prod_lock_db: str, monkeypatch: pytest.MonkeyPatch) -> Services:
    """The prod profile's locks only (PostgreSQL; no MLflow server needed); returns the services."""
    _pg_env(monkeypatch, pg_services, prod_lock_db)
    return Services.from_env()


def to_prod(
    e: Env,
    monkeypatch: pytest.MonkeyPatch,
    services: Services,
    dagster_db: str,
    server: MlflowServer,
) -> Env:
    """Switch an ``Env`` to the prod profile (a registered model of its own on the shared server)."""
    _pg_env(monkeypatch, services, dagster_db)
    monkeypatch.setenv("MLGOV_DAGSTER_DB", dagster_db)
    monkeypatch.setenv("MLGOV_MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("MLGOV_MODEL_NAME", f"mlgov-adult-{secrets.token_hex(4)}")
    return e


@pytest.fixture
def prod_env(
    env: Env,
    pg_services: Services,
    prod_dagster_db: str,
    mlflow_server: MlflowServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Env:
    """``env`` (CORE_ONLY policy) in the prod profile."""
    return to_prod(env, monkeypatch, pg_services, prod_dagster_db, mlflow_server)


@pytest.fixture
def prod_full_env(
    full_env: Env,
    pg_services: Services,
    prod_dagster_db: str,
    mlflow_server: MlflowServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Env:
    """``full_env`` (the shipped policy) in the prod profile."""
    return to_prod(full_env, monkeypatch, pg_services, prod_dagster_db, mlflow_server)


@pytest.fixture
def prod_instance(prod_env: Env) -> Iterator[object]:
    """The Dagster instance of ``prod_env``: the prod ``dagster.yaml`` (PostgreSQL storage)."""
    from mlgov_assets.instance import get_instance

    instance = get_instance(prod_env.settings())
    try:
        yield instance
    finally:
        instance.dispose()


RABBIT_HINT = "start it: `sudo service rabbitmq-server start` (guest/guest on 127.0.0.1:5672; rabbitmqctl on PATH)"


def broker_processes(broker: str) -> list[int]:
    """Pids of this user's processes started with ``MLGOV_CELERY_BROKER=broker`` in their environment
    (Celery workers and their pool processes, whatever their parent or process group)."""
    needle = f"MLGOV_CELERY_BROKER={broker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def rabbit_report(ctl: str, vhost: str) -> str:
    """The vhost's consumers and queues (``rabbitmqctl``), for assertion messages."""
    import subprocess

    out = []
    for args in (("list_consumers",), ("list_queues", "name", "messages", "messages_unacknowledged")):
        res = subprocess.run([ctl, args[0], "-q", "-p", vhost, *args[1:]], capture_output=True, text=True, timeout=60)
        out.append(f"$ rabbitmqctl {' '.join(args)} -p {vhost}\n{res.stdout}{res.stderr}")
    return "\n".join(out)


@dataclass(frozen=True)
class Broker:
    """A RabbitMQ virtual host of one test's own: ``url`` (the Celery broker URL), ``vhost``, ``ctl``."""

    url: str
    vhost: str
    ctl: str

    def report(self) -> str:
        return rabbit_report(self.ctl, self.vhost)


@pytest.fixture
def celery_broker() -> Iterator[Broker]:
    """A RabbitMQ virtual host of this test's own (``rabbitmqctl add_vhost``; deleted afterwards), so
    no test's workers take another test's steps. Afterwards no process started with this broker may be
    left running (they are killed, and the test fails). Missing RabbitMQ → one skip line (a failure
    under ``MLGOV_REQUIRE_SERVICES=1``)."""
    import shutil
    import signal
    import subprocess
    import time

    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=3).close()
    except OSError as exc:
        service_missing("RabbitMQ", f"127.0.0.1:5672: {exc.strerror or exc}", RABBIT_HINT)
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        service_missing("RabbitMQ", "rabbitmqctl not found (needed for a vhost per test)", RABBIT_HINT)
    vhost = f"mlgov_test_{os.getpid()}_{secrets.token_hex(3)}"

    def run(*args: str) -> None:
        subprocess.run([str(ctl), *args], check=True, capture_output=True, timeout=120)

    try:
        run("add_vhost", vhost)
        run("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        service_missing("RabbitMQ", f"rabbitmqctl add_vhost failed: {exc}", RABBIT_HINT)
    broker = Broker(url=f"amqp://guest:guest@127.0.0.1:5672/{vhost}", vhost=vhost, ctl=str(ctl))
    yield broker
    deadline = time.monotonic() + 10  # a stopped process group may take a moment to go
    while (left := broker_processes(broker.url)) and time.monotonic() < deadline:
        time.sleep(0.5)
    ps = subprocess.run(
        ["ps", "-o", "pid,ppid,pgid,stat,cmd", "-p", ",".join(map(str, left)) or "1"], capture_output=True, text=True
    )
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    run("delete_vhost", vhost)
    assert not left, f"processes left running on the test's broker {vhost}:\n{ps.stdout}"
