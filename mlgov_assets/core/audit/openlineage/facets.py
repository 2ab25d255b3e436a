"""mlgov's custom OpenLineage facets: what an auditor needs that the standard facets cannot say.

Each is an ``attrs`` class of ``openlineage-python``'s facet bases, so every instance carries
``_producer`` (:data:`PRODUCER`) and ``_schemaURL`` (its schema in ``schemas/``, at
:data:`SCHEMA_BASE`). Keys in an event are ``mlgov_<name>`` (OpenLineage's convention for custom
facets: a prefix naming the producer). Facets carry identifiers, hashes and verdicts — never data
values; free text (descriptions, reasons) is capped by the builder.
"""

from __future__ import annotations

from pathlib import Path

import attr
from openlineage.client.generated.base import DatasetFacet, RunFacet
from openlineage.client.utils import RedactMixin

__all__ = [
    "PRODUCER",
    "SCHEMAS_DIR",
    "SCHEMA_BASE",
    "GateVerdict",
    "MlgovDagsterRunFacet",
    "MlgovDataDatasetFacet",
    "MlgovDecisionRunFacet",
    "MlgovGatesRunFacet",
    "MlgovModelDatasetFacet",
]

#: The producer URI of every event and facet (mlgov has no public home yet: a reserved domain, so it
#: never resolves to someone else's page; change it here when the project is published).
PRODUCER = "https://mlgov.invalid/openlineage/mlgov/0.1.0"
#: Where the custom facets' JSON schemas are published; the files ship in :data:`SCHEMAS_DIR`.
SCHEMA_BASE = "https://mlgov.invalid/openlineage/spec/facets/1-0-0/"
SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"


def _schema(name: str) -> str:
    return f"{SCHEMA_BASE}{name}.json#/$defs/{name}"


@attr.define
class MlgovDataDatasetFacet(DatasetFacet):
    """A Dagster asset's stored value: DVC md5 of its source file, sha256 of the stored bytes, rows,
    Dagster data and code versions."""

    dvcMd5: str | None = attr.field(default=None)
    sha256: str | None = attr.field(default=None)
    rowCount: int | None = attr.field(default=None)
    dataVersion: str | None = attr.field(default=None)
    codeVersion: str | None = attr.field(default=None)
    path: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return _schema("MlgovDataDatasetFacet")


@attr.define
class MlgovModelDatasetFacet(DatasetFacet):
    """A registered MLflow model version and what it was trained and judged under."""

    modelName: str
    modelVersion: int
    modelUri: str
    mlflowRunId: str | None = attr.field(default=None)
    trainDataMd5: str | None = attr.field(default=None)
    holdoutDataMd5: str | None = attr.field(default=None)
    policySha256: str | None = attr.field(default=None)
    aliases: list[str] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return _schema("MlgovModelDatasetFacet")


@attr.define
class GateVerdict(RedactMixin):
    """One gate (Dagster asset check) evaluation."""

    asset: str
    check: str
    passed: bool
    severity: str
    blocking: bool
    gate: str | None = attr.field(default=None)
    description: str | None = attr.field(default=None)


@attr.define
class MlgovGatesRunFacet(RunFacet):
    """The gate verdicts of a run and the policy hash they were judged under."""

    verdicts: list[GateVerdict]
    policySha256: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return _schema("MlgovGatesRunFacet")


@attr.define
class MlgovDagsterRunFacet(RunFacet):
    """The Dagster run (and step) an event describes: every event of one Dagster run names its id."""

    dagsterRunId: str
    dagsterJob: str
    project: str | None = attr.field(default=None)
    stepKey: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return _schema("MlgovDagsterRunFacet")


@attr.define
class MlgovDecisionRunFacet(RunFacet):
    """A decision-log record (promotion, rollback, approval, …): where to verify it (index, hash)."""

    kind: str
    recordIndex: int
    recordHash: str
    time: str
    modelVersion: str | None = attr.field(default=None)
    policySha256: str | None = attr.field(default=None)
    reason: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return _schema("MlgovDecisionRunFacet")
