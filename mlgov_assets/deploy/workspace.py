"""The production workspace: the webserver and daemon load the code location from a code server
(``dagster code-server start -m mlgov_assets.definitions``) over gRPC instead of importing it, so a
code change is one code-server restart (or a new image) and runs launch from the server's snapshot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlgov_assets.core.integrity import atomic_write_bytes
from mlgov_assets.core.settings import Services, Settings

__all__ = ["CODE_MODULE", "LOCATION_NAME", "code_server_argv", "prod_workspace_config", "write_prod_workspace"]

#: The code location every process loads (the embedded workspace.yaml names the same module and location).
CODE_MODULE = "mlgov_assets.definitions"
LOCATION_NAME = "mlgov"


def prod_workspace_config(services: Services) -> dict[str, Any]:
    return {
        "load_from": [
            {
                "grpc_server": {
                    "host": services.code_server_host,
                    "port": services.code_server_port,
                    "location_name": LOCATION_NAME,
                }
            }
        ]
    }


def code_server_argv(dagster: str, host: str, port: int) -> list[str]:
    """``dagster code-server start`` serving the code location (``dagster`` is the executable's path)."""
    return [
        dagster,
        "code-server",
        "start",
        "-h",
        host,
        "-p",
        str(port),
        "-m",
        CODE_MODULE,
        "--location-name",
        LOCATION_NAME,
    ]


def write_prod_workspace(settings: Settings) -> Path:
    """``$MLGOV_HOME/prod/workspace.yaml`` (rewritten only when it changes): the code server of
    ``settings.services``."""
    import yaml

    if settings.services is None:
        raise ValueError("the prod workspace needs the prod profile's services (MLGOV_PROFILE=prod)")
    text = "# Written by mlgov (MLGOV_PROFILE=prod): the code location served by `dagster code-server`.\n"
    text += yaml.safe_dump(prod_workspace_config(settings.services), sort_keys=False)
    path = settings.prod_dir / "workspace.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        atomic_write_bytes(path, text.encode("utf-8"))
    return path
