"""compose.yaml and the Dockerfile describe commands that exist: no Docker engine runs here, so each
service's command is checked outside a container — its executable is in the project's environment,
the modules it names import, its (sub)command answers ``--help`` — and the stack's shape holds
(ports on 127.0.0.1 only, two or more workers, the MLGOV_* names the settings read)."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: per executable: how many leading words name its subcommand (for ``--help``)
SUBCOMMAND_WORDS = {"dagster": 2, "dagster-daemon": 1, "dagster-webserver": 0, "mlflow": 1, "celery": 3}


def compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def mlgov_services() -> dict[str, list[str]]:
    return {
        name: shlex.split(svc["command"])
        for name, svc in compose()["services"].items()
        if svc.get("image") == "mlgov:latest"
    }


def dockerfile_cmd() -> list[str]:
    lines = (REPO / "Dockerfile").read_text().splitlines()
    (cmd,) = [line for line in lines if line.startswith("CMD ")]
    return list(json.loads(cmd[4:]))


def test_the_stack_has_every_service_and_binds_loopback_only():
    services = compose()["services"]
    assert {"postgres", "rabbitmq", "mlflow", "code-server", "webserver", "daemon"} <= set(services)
    workers = [n for n, c in mlgov_services().items() if c[0] == "celery"]
    assert len(workers) >= 2
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_the_environment_names_are_the_ones_the_settings_read(monkeypatch: pytest.MonkeyPatch):
    from mlgov_assets.core.settings import Services

    env = compose()["services"]["daemon"]["environment"]
    for key, value in env.items():
        monkeypatch.setenv(key, re.sub(r"\$\{[^}]*\}", "secret", str(value)))
    s = Services.from_env()
    assert (s.pg_host, s.pg_user, s.pg_password) == ("postgres", "mlgov", "secret")
    assert (s.dagster_db, s.mlflow_db, s.tracking_uri) == ("mlgov_dagster", "mlgov_mlflow", "http://mlflow:5000")
    assert (s.code_server_host, s.code_server_port) == ("code-server", 4266)
    assert s.celery_broker == "amqp://mlgov:secret@rabbitmq:5672//"
    assert env["MLGOV_PROFILE"] == "prod"


def test_webserver_and_daemon_load_the_workspace_the_entrypoint_writes(monkeypatch: pytest.MonkeyPatch, tmp_path):
    from mlgov_assets.core.settings import get_settings
    from mlgov_assets.deploy.workspace import write_prod_workspace

    monkeypatch.setenv("MLGOV_PROFILE", "prod")
    monkeypatch.setenv("MLGOV_HOME", str(tmp_path))
    monkeypatch.setenv("MLGOV_CODE_SERVER_HOST", "code-server")
    written = write_prod_workspace(get_settings())
    ws = yaml.safe_load(written.read_text())
    assert ws["load_from"][0]["grpc_server"] == {"host": "code-server", "port": 4266, "location_name": "mlgov"}
    services = mlgov_services()
    for name in ("webserver", "daemon"):
        cmd = services[name]
        path = Path(cmd[cmd.index("-w") + 1])
        assert path.relative_to("/state") == written.relative_to(tmp_path)  # MLGOV_HOME=/state in the image


@pytest.mark.parametrize("name", [*sorted(mlgov_services()), "Dockerfile CMD"])
def test_every_command_exists_in_the_project(name: str):
    cmd = dockerfile_cmd() if name == "Dockerfile CMD" else mlgov_services()[name]
    exe = BIN / cmd[0]
    assert exe.exists(), f"{name}: {cmd[0]} is not installed by uv.lock"
    for flag in ("-m", "-A"):  # the modules the command loads
        if flag in cmd:
            module = cmd[cmd.index(flag) + 1]
            assert importlib.util.find_spec(module) is not None, f"{name}: module {module} not found"
    words = cmd[1 : 1 + SUBCOMMAND_WORDS[cmd[0]]]
    out = subprocess.run([str(exe), *words, "--help"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, f"{name}: {' '.join([cmd[0], *words])} --help: {out.stderr[-2000:]}"
    options = {w.split("=")[0] for w in cmd if w.startswith("--")}
    missing = [o for o in options if o not in out.stdout]
    assert not missing, f"{name}: options {missing} unknown to {' '.join([cmd[0], *words])}"


def test_the_entrypoint_module_exists():
    lines = (REPO / "Dockerfile").read_text()
    assert '"-m", "mlgov_assets.deploy.entrypoint"' in lines
    assert importlib.util.find_spec("mlgov_assets.deploy.entrypoint") is not None


def test_the_entrypoint_writes_the_prod_instance_and_workspace_then_runs_the_command(tmp_path):
    import os

    env = {**os.environ, "MLGOV_PROFILE": "prod", "MLGOV_HOME": str(tmp_path), "MLGOV_CODE_SERVER_HOST": "code-server"}
    code = "import os; print(os.environ['DAGSTER_HOME']); print(os.environ['MLGOV_WORKSPACE'])"
    out = subprocess.run(
        [sys.executable, "-m", "mlgov_assets.deploy.entrypoint", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    home, workspace = out.stdout.split()
    instance = yaml.safe_load((Path(home) / "dagster.yaml").read_text())
    assert instance["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert "code-server" in Path(workspace).read_text()
