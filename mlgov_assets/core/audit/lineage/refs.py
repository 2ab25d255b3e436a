"""MODEL_REF parsing and resolution (``models:/NAME@alias``, ``models:/NAME/N``, ``N``, ``champion``).

A parser of our own because MLflow resolves these URIs only while loading a model, and an audit
must name the version before touching any bytes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mlgov_assets.core.audit.lineage.model import ModelRefError

if TYPE_CHECKING:
    from mlgov_assets.core.models.registry import Registry

__all__ = ["parse_model_ref", "resolve_version"]

_REF = re.compile(r"^models:/(?P<name>[^/@\s]+)(?:/(?P<version>\d+)|@(?P<alias>[A-Za-z0-9_.-]+))$")


def parse_model_ref(ref: str, default_name: str) -> tuple[str, int | None, str | None]:
    """(name, version, alias) with exactly one of version and alias set; raises ModelRefError."""
    text = (ref or "").strip()
    if text.isdigit():
        return default_name, int(text), None
    if text in ("champion", "previous-champion"):
        return default_name, None, text
    m = _REF.match(text)
    if not m:
        raise ModelRefError(
            f"MODEL_REF {ref!r}: expected models:/NAME@champion, models:/NAME/N, a version number, or 'champion'"
        )
    version = int(m["version"]) if m["version"] else None
    return m["name"], version, m["alias"]


def resolve_version(registry: Registry, ref: str) -> int:
    """The version number ``ref`` names in ``registry`` (whose model name must match)."""
    from mlflow.exceptions import MlflowException

    name, version, alias = parse_model_ref(ref, registry.name)
    if name != registry.name:
        raise ModelRefError(f"MODEL_REF {ref!r} names model {name!r}, but this registry governs {registry.name!r}")
    try:
        if alias is not None:
            return int(registry.client.get_model_version_by_alias(name, alias).version)
        assert version is not None
        registry.client.get_model_version(name, str(version))
        return version
    except MlflowException as exc:
        what = f"alias {alias!r}" if alias else f"version {version}"
        known = registry.versions()
        raise ModelRefError(f"model {name!r} has no {what} (registered versions: {known or 'none'})") from exc
