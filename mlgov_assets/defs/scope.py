"""Several governed projects in one code location.

Each stage module defines its assets and checks once, unprefixed (templates). For every project of
the location, :func:`project_assets` copies them under the project's key prefix (``adult/champion``,
``credit_default/champion``), its own UI groups (``adult__governance``) and its own batch partitions;
jobs, sensors and schedules are built per project by factories that take a :class:`ProjectScope`.
A step learns its project from its own asset key (:func:`scoped`), so one body serves every project.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import (
    AssetCheckExecutionContext,
    AssetChecksDefinition,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    DynamicPartitionsDefinition,
)

if TYPE_CHECKING:
    from ..resources import MlgovResource

#: Separates a project's name from a job, sensor, schedule, group or partitions name.
SEP = "__"
#: Restricts the code location to these projects (comma-separated names or spec files).
PROJECTS_ENV = "MLGOV_PROJECTS"


@dataclass(frozen=True)
class ProjectScope:
    """One project of the code location: where its names and keys live."""

    name: str
    spec: Path

    def key(self, *path: str) -> AssetKey:
        return AssetKey([self.name, *path])

    def named(self, base: str) -> str:
        """A job, sensor, schedule, group or partitions name of this project."""
        return scoped_name(self.name, base)

    @functools.cached_property
    def batches(self) -> DynamicPartitionsDefinition:
        """The project's production batches (each project has its own partition set)."""
        return DynamicPartitionsDefinition(name=self.named("batches"))


def scoped_name(project: str, base: str) -> str:
    return f"{project}{SEP}{base}"


def location_projects(project_dir: Path | None = None) -> list[ProjectScope]:
    """The projects one code location serves: ``MLGOV_PROJECTS`` if set, else every known project
    (``<repo>/projects/``, then the shipped ones), plus the selected ``MLGOV_PROJECT_SPEC``; by name,
    the selected spec wins."""
    from mlgov_assets.core.project.catalog import known_projects, resolve_project
    from mlgov_assets.core.settings import get_settings

    s = get_settings(project_dir=project_dir)
    if os.environ.get(PROJECTS_ENV):
        specs = [resolve_project(v.strip(), s.project_dir) for v in os.environ[PROJECTS_ENV].split(",") if v.strip()]
    else:
        specs = list(known_projects(s.project_dir).values())
    if s.project_spec.exists():
        specs.append(s.project_spec)
    found: dict[str, ProjectScope] = {}
    for spec in specs:
        name = get_settings(project_dir=s.project_dir, project_spec=spec).project_name
        found[name] = ProjectScope(name, spec)
    return list(found.values())


def project_of(context: AssetExecutionContext | AssetCheckExecutionContext) -> str | None:
    """The project of the running asset or check: its key's prefix (``None`` for an unprefixed template)."""
    if isinstance(context, AssetCheckExecutionContext):
        key = context.check_specs[0].asset_key
    else:
        key = context.asset_key
    return key.path[0] if len(key.path) > 1 else None


def scoped(mlgov: MlgovResource, context: AssetExecutionContext | AssetCheckExecutionContext) -> MlgovResource:
    """The resource for the project of the running step."""
    return mlgov.for_project(project_of(context))


def sibling(context: AssetExecutionContext | AssetCheckExecutionContext, name: str) -> AssetKey:
    """Another asset of the running step's project."""
    project = project_of(context)
    return AssetKey([project, name]) if project else AssetKey(name)


def project_assets(
    scope: ProjectScope,
    assets: Sequence[AssetsDefinition],
    checks: Sequence[AssetChecksDefinition],
    *,
    all_keys: Iterable[AssetKey],
    code_versions: dict[str, str] | None = None,
) -> tuple[list[AssetsDefinition], list[AssetsDefinition]]:
    """The stage templates copied into ``scope``: every key (and dependency) prefixed, groups renamed,
    batch partitions replaced by the project's own, code versions replaced where the project's hooks
    change them (``code_versions``: template code version -> the project's)."""
    replacements = {k: scope.key(*k.path) for k in all_keys}

    def copy(d: AssetsDefinition) -> AssetsDefinition:
        moved = d.with_attributes(asset_key_replacements=replacements)
        specs = []
        for spec in moved.specs:
            changes: dict[str, object] = {"group_name": scope.named(spec.group_name or "default")}
            if isinstance(spec.partitions_def, DynamicPartitionsDefinition):
                changes["partitions_def"] = scope.batches
            if code_versions and spec.code_version in code_versions:
                changes["code_version"] = code_versions[spec.code_version]
            specs.append(spec.replace_attributes(**changes))  # type: ignore[arg-type]
        checks_by_output = {
            out: c._replace(partitions_def=scope.batches)
            if isinstance(getattr(c, "partitions_def", None), DynamicPartitionsDefinition)
            else c
            for out, c in moved.node_check_specs_by_output_name.items()
        }
        return moved.__class__.dagster_internal_init(
            **{**moved.get_attributes_dict(), "specs": specs, "check_specs_by_output_name": checks_by_output}
        )

    return [copy(a) for a in assets], [copy(c) for c in checks]
