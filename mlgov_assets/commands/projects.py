"""``mlgov projects`` and ``--project NAME``: which governed project a command works on."""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from pydantic import JsonValue

from mlgov_assets.core.errors import ConfigError, MlgovError
from mlgov_assets.core.settings import get_settings

if TYPE_CHECKING:
    from mlgov_assets.core.settings import Settings


#: The variable ``--project`` sets for the command's process (and the Dagster runs it starts).
PROJECT_ENV = "MLGOV_PROJECT_SPEC"


def select_project(argv: list[str]) -> None:
    """``--project NAME`` (anywhere on the command line, for every command) selects the governed project
    for this process, the Dagster runs it starts included; without it, ``MLGOV_PROJECT_SPEC`` or the default."""
    from mlgov_assets.core.project.catalog import resolve_project

    for i, arg in enumerate(argv):
        if arg == "--project" or arg.startswith("--project="):
            value = arg.split("=", 1)[1] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else "")
            del argv[i : i + (1 if "=" in arg else 2)]
            if not value:
                raise ConfigError("--project needs a project name or a spec file")
            os.environ[PROJECT_ENV] = str(resolve_project(value, get_settings().project_dir))
            return


def project_rows() -> list[dict[str, JsonValue]]:
    """Every project of the code location: name, spec, registered model, champion, state directory."""
    from mlgov_assets.core.project.spec import load_project
    from mlgov_assets.defs.scope import location_projects

    rows: list[dict[str, JsonValue]] = []
    for scope in location_projects(get_settings().project_dir):
        try:
            spec, sha = load_project(scope.spec)
            s = get_settings(project_spec=scope.spec)
            rows.append(
                {
                    "project": scope.name,
                    "spec": str(scope.spec),
                    "spec_sha256": sha,
                    "registered_model": s.model_name,
                    "title": spec.title,
                    "champion": _champion_of(s),
                    "state": str(s.home),
                    "selected": s.project_spec == get_settings().project_spec,
                }
            )
        except MlgovError as exc:
            rows.append({"project": scope.name, "spec": str(scope.spec), "error": str(exc)})
    return rows


def status_hook(settings: Settings) -> dict[str, JsonValue]:
    """``mlgov status`` lists every project of the code location (``projects``) and what is left of an
    older state layout (``notices``)."""
    from mlgov_assets.instance import get_instance
    from mlgov_assets.upgrade import state_notices

    instance = get_instance(settings) if (settings.dagster_home / "history").exists() else None
    return {"projects": list(project_rows()), "notices": list(state_notices(settings, instance))}


def print_projects(rows: object) -> None:
    for r in rows if isinstance(rows, list) else []:
        if not isinstance(r, dict):
            continue
        champ = r.get("champion")
        state = r.get("error") or f"model {r['registered_model']}, champion {champ if champ else 'none'}"
        mark = "*" if r.get("selected") else " "
        print(f"{mark} {r['project']:<20} {state}  ({r['spec']})")


def cmd_projects(args: argparse.Namespace) -> int:
    """Every project of the code location: name, spec, registered model, current champion."""
    rows = project_rows()
    if args.json:
        print(json.dumps({"projects": rows}, indent=2))
    else:
        print_projects(rows)
    return 0


def _champion_of(settings: Settings) -> int | None:
    if not settings.is_prod and not (settings.mlflow_dir / "mlflow.db").exists():
        return None
    from mlgov_assets.core.models.registry import Registry

    return Registry(settings).champion_version()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pj = subparsers.add_parser(
        "projects",
        help="every governed project: spec, registered model, champion",
        description="List the projects mlgov knows (<repo>/projects/*.yaml, then the shipped ones).",
    )
    pj.add_argument("--json", action="store_true")
    pj.set_defaults(func=cmd_projects)
