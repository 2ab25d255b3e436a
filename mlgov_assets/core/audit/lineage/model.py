"""The lineage chain's vocabulary: the links, the tags they read, and the typed results.

Every check is a pure function of the facts (:class:`~.facts.Facts`) that :func:`~.gather.gather`
reads from the registry, the decision log, git, DVC and Dagster. Statuses:
``ok``; ``warn`` (true but worth a look; does not fail an audit); ``fail`` (a mismatch, named);
``skipped`` (the evidence for the link was not provided, e.g. no Dagster instance).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from mlgov_assets.core.errors import InputError

__all__ = [
    "DATA_ASSETS",
    "LINKS",
    "MODEL_ASSETS",
    "AuditReport",
    "Link",
    "LinkStatus",
    "ModelRefError",
    "PublishedHead",
    "WitnessedLog",
]

LINKS = (
    "model_version",
    "model_artifacts",
    "mlflow_run",
    "dagster_run",
    "materializations",
    "training_data",
    "git_commit",
    "policy",
    "checks",
    "decision_log",
)
REQUIRED_TAGS = (
    "mlgov.train_data_md5",
    "mlgov.holdout_data_md5",
    "mlgov.git_commit",
    "mlgov.policy_sha256",
    "mlgov.dagster_run_id",
    "mlgov.artifact_manifest",
    "mlgov.artifact_manifest_sha256",
    "mlgov.model_dir",
)
#: Tags written on both the MLflow run and the model version: the two copies must agree.
SHARED_TAGS = (
    "mlgov.train_data_md5",
    "mlgov.holdout_data_md5",
    "mlgov.git_commit",
    "mlgov.git_dirty",
    "mlgov.dagster_run_id",
    "mlgov.policy_sha256",
    "mlgov.fingerprint",
    "mlgov.code_version",
    "mlgov.artifact_manifest_sha256",
    "mlgov.model_dir",
)
#: Assets whose materialization IS a registered version: the challenger, or the mitigated candidate.
MODEL_ASSETS = ("challenger_model", "candidate_model")
DATA_ASSETS = {"training": "training_data", "holdout": "holdout_data"}
POLICY_ARTIFACT = "policy/policy.yaml"
#: The project spec a version was trained under, as its run stored it (absent on older versions).
PROJECT_ARTIFACT = "project/project.yaml"
#: Run artifacts whose text the audit and the card read (others under SCANNED_FOLDERS are hashed only).
TEXT_ARTIFACTS = (
    POLICY_ARTIFACT,
    PROJECT_ARTIFACT,
    "provenance/environment.json",
    "provenance/data.json",
    "integrity/model_manifest.json",
)
SCANNED_FOLDERS = ("gates", "fairness", "explanations", "monitoring")

LinkStatus = Literal["ok", "warn", "fail", "skipped"]


class ModelRefError(InputError, LookupError):
    """A MODEL_REF that is malformed or names no registered version (a usage error: exit 2)."""


class Link(BaseModel):
    """One verified link of the chain. ``problems`` (fail) and ``warnings`` name every finding."""

    model_config = ConfigDict(extra="forbid")

    name: str
    status: LinkStatus
    summary: str
    problems: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    evidence: dict[str, Any] = Field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = jsonable(self.model_dump())
        return result


def make_link(
    name: str,
    ok_summary: str,
    problems: list[str],
    warnings: list[str] | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> Link:
    """A link whose status and summary follow from its findings: fail > warn > ok."""
    warnings = warnings or []
    status: LinkStatus = "fail" if problems else ("warn" if warnings else "ok")
    summary = "; ".join(problems) if problems else ("; ".join(warnings) if warnings else ok_summary)
    return Link(
        name=name, status=status, summary=summary, problems=problems, warnings=warnings, evidence=dict(evidence or {})
    )


class AuditReport(BaseModel):
    """The verified chain for one model version; ``ok`` is False if any link failed."""

    model_config = ConfigDict(extra="forbid")

    model_name: str
    version: int
    ref: str
    aliases: list[str]
    links: list[Link]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return not self.broken

    @computed_field  # type: ignore[prop-decorator]
    @property
    def broken(self) -> list[str]:
        return [link.name for link in self.links if link.status == "fail"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "version": self.version,
            "ref": self.ref,
            "aliases": self.aliases,
            "ok": self.ok,
            "broken": self.broken,
            "links": [link.to_dict() for link in self.links],
        }


class PublishedHead(BaseModel):
    """A decision-log head published on a model version (an external witness); ``head`` None if unreadable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    head: dict[str, Any] | None
    raw: str | None = None


class WitnessedLog(BaseModel):
    """The decision log verified against its head anchor and every published head."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    ok: bool
    count: int
    first_bad_index: int | None
    problem: str | None
    last_hash: str | None
    witnesses_checked: int
    witness_problems: list[str]

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


# --------------------------------------------------------------------------- JSON helpers


def jsonable(obj: Any) -> Any:
    """Plain JSON types with NaN/inf -> None (canonical JSON refuses them) and tuples -> lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    try:  # numpy scalars
        return jsonable(obj.item())
    except AttributeError:
        return str(obj)


def iso_ms(ms: int | float | None) -> str | None:
    """An epoch-milliseconds timestamp as ISO 8601 UTC (seconds)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def json_or_none(text: str | None) -> Any:
    """Parsed JSON, or None if ``text`` is None or not JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None
