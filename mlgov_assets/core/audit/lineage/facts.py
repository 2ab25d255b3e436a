"""The facts: everything :func:`~.gather.gather` reads about one registered version, typed.

Every check in ``verify``/``gates``/``audit`` and the bundle builder is a pure function of a
:class:`Facts`. Sections reuse the types that already define them (``VersionInfo`` for the version,
``Record`` for decisions, ``PublishedHead`` for witnesses, the card schema's ``Column``); JSON that
mlgov only carries along (Dagster metadata values) is a pydantic ``JsonValue``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from mlgov_assets.core.audit.decision_log.records import Record
from mlgov_assets.core.audit.lineage.model import PublishedHead, json_or_none
from mlgov_assets.core.audit.modelcard.schema import Column
from mlgov_assets.core.models.registry import VersionInfo

__all__ = [
    "ArtifactFact",
    "CheckEvaluation",
    "DagsterLineage",
    "DagsterRun",
    "Facts",
    "GitFacts",
    "GitHead",
    "LogFacts",
    "Materialization",
    "MonitoredBatch",
    "PathFacts",
    "ProjectFacts",
    "RunFacts",
]


class _Fact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunFacts(_Fact):
    """The MLflow run that produced the version (only its ``mlgov.*`` tags)."""

    run_id: str
    experiment_id: str
    status: str
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]


class ArtifactFact(_Fact):
    """One run artifact: its sha256 and size; ``text`` kept for JSON/YAML files under 2 MB."""

    sha256: str
    size: int
    text: str | None = None


class LogFacts(_Fact):
    """The decision log as read: ``read_error`` is set (and ``count`` 0) when it could not be."""

    path: str
    read_error: str | None
    count: int
    known_policy_hashes: list[str] = Field(description="every policy hash a version or decision was governed under")


class GitHead(_Fact):
    """The project checkout now (``commit`` "unknown" outside git)."""

    commit: str
    dirty: bool


class GitFacts(_Fact):
    current: GitHead
    recorded_commit_exists: bool | None = Field(description="None when the recorded commit cannot be checked")


class PathFacts(_Fact):
    project_dir: str
    dvc_cache_dir: str
    generated_dvc_cache_dir: str | None = None  # the generated datasets' DVC cache (state directory)
    policy_path: str
    policy_path_source: str

    @property
    def dvc_caches(self) -> list[str]:
        """Every DVC cache a recorded md5 may be found in, searched in this order."""
        return [self.dvc_cache_dir, *([self.generated_dvc_cache_dir] if self.generated_dvc_cache_dir else [])]


class ProjectFacts(_Fact):
    """The project spec as it is now (settings' ``project_spec``): compared with the version's
    ``mlgov.project_sha256`` tag, so a card never describes a spec the version was not trained under."""

    path: str
    sha256: str | None = Field(description="sha256 of the spec's bytes; None when it cannot be read")
    text: str | None = None


class MonitoredBatch(_Fact):
    """A production batch the version scored as champion, from the monitoring ledger."""

    batch_id: str
    time: str
    judged: bool
    verdict: str | None
    dataset_drift: bool
    drifted_columns: list[str]
    path: str = Field(description="the batch's state.json, relative to $MLGOV_HOME")
    sha256: str


class DagsterRun(_Fact):
    run_id: str
    job_name: str
    status: str
    start_time: float | None = None
    end_time: float | None = None


class Materialization(_Fact):
    """One materialization in the version's lineage (``role`` "model" or "input")."""

    asset: str
    role: str
    storage_id: int
    run_id: str
    timestamp: float | None = None
    data_version: str | None = None
    code_version: str | None = None
    sha256: str | None = None
    stored_at: str | None = None
    is_latest: bool = False
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    columns: list[Column] = Field(default_factory=list)
    inputs: dict[str, int] = Field(default_factory=dict)


class CheckEvaluation(_Fact):
    """A Dagster check evaluation that targeted one of the lineage's materializations."""

    asset: str
    check: str
    passed: bool
    severity: str
    blocking: bool
    role: str
    gate: str | None = None
    run_id: str | None = None
    target_storage_id: int | None = None
    description: str | None = None
    metadata: dict[str, JsonValue] = Field(default_factory=dict)


class DagsterLineage(_Fact):
    """The Dagster view of the training run (``run`` None, with ``problems``, if it is not found)."""

    run: DagsterRun | None
    materializations: list[Materialization] = Field(default_factory=list)
    checks: list[CheckEvaluation] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)

    def model_nodes(self) -> list[Materialization]:
        """The materializations that ARE the model version (challenger and/or candidate)."""
        return [n for n in self.materializations if n.role == "model"]

    def node(self, asset: str) -> Materialization | None:
        return next((n for n in self.materializations if n.asset == asset), None)


class Facts(_Fact):
    """Everything the audit and the card need about one version. ``dagster`` None: no instance given."""

    model: VersionInfo
    run: RunFacts | None
    artifacts: dict[str, ArtifactFact]
    decisions: list[Record] = Field(description="records about the version, in log order")
    champion_history: list[int]
    monitoring: list[MonitoredBatch] = Field(default_factory=list)
    log: LogFacts
    witnesses: list[PublishedHead]
    git: GitFacts
    paths: PathFacts
    dagster: DagsterLineage | None = None
    project: ProjectFacts | None = None

    @property
    def tags(self) -> dict[str, str]:
        """The version's tags."""
        return self.model.tags

    def artifact_text(self, rel: str) -> str | None:
        art = self.artifacts.get(rel)
        return art.text if art is not None else None

    def artifact_json(self, rel: str) -> Any:
        """The parsed text of a run artifact (None if absent or not JSON)."""
        return json_or_none(self.artifact_text(rel))
