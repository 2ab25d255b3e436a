"""The values of the per-batch assets: the rows plus what was decided about them, typed.

``batch_data`` is an :class:`AcceptedBatch` (the validation gate's verdict and the batch's identity),
``batch_scores`` a :class:`ScoredBatch` (which models scored it). Both are :class:`FramedTable` values:
the asset store keeps the rows as Parquet and the description in a JSON sidecar naming their sha256.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.framed import FramedTable

if TYPE_CHECKING:
    import pandas as pd

_FROZEN = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class BatchIntake(BaseModel):
    """The validation gate's verdict on one landed batch."""

    model_config = _FROZEN

    batch_id: str
    source: str
    """The landing file's name."""
    md5: str
    """md5 of the landing file's bytes (the batch's Dagster DataVersion)."""
    valid: bool
    summary: str
    """The validation report in one paragraph a person can act on."""
    validation: dict[str, Any]
    """The full validation report (``ValidationReport.to_dict()``), JSON evidence."""
    quarantine_dir: Path | None = None
    """Where an invalid batch was moved to, with its failure report."""


@dataclass(frozen=True)
class AcceptedBatch(FramedTable):
    """A batch after the validation gate: ``frame`` has ``row_id`` as a column (asset stores drop the
    index); an invalid batch has its rows (if readable) but must never be scored."""

    SIDECAR: ClassVar[str] = "batch"

    frame: pd.DataFrame
    intake: BatchIntake

    @property
    def table(self) -> pd.DataFrame:
        return self.frame

    @property
    def description(self) -> BatchIntake:
        return self.intake

    @classmethod
    def from_stored(cls, table: pd.DataFrame, description: Mapping[str, Any]) -> Self:
        return cls(frame=table, intake=BatchIntake.model_validate(description))


class PredictionDrift(BaseModel):
    """Drift of the champion's scores on a batch against its scores on its training data (PSI)."""

    model_config = _FROZEN

    verdict: str
    psi: float | None
    column: dict[str, Any]
    """The engine's row for the prediction (``ColumnDrift.to_dict()``)."""


class ScoringInfo(BaseModel):
    """Which registered models scored a batch, and the prediction drift of the champion's scores."""

    model_config = _FROZEN

    batch_id: str
    champion_version: int
    shadow_version: int | None
    """The latest challenger, scored in shadow; None when there is none or it failed verification."""
    shadow_gates: dict[str, bool]
    """The shadow's governance gates as registered (name -> passed); empty without a shadow."""
    prediction_drift: PredictionDrift | None = None
    """Judged after scoring (the covariate verdict, ``batch_drift``, comes before scoring)."""


@dataclass(frozen=True)
class ScoredBatch(FramedTable):
    """Per-row ``champion_score``/``champion_decision`` (and ``shadow_*`` in shadow), keyed by ``row_id``."""

    SIDECAR: ClassVar[str] = "scoring"

    frame: pd.DataFrame
    scoring: ScoringInfo

    @property
    def table(self) -> pd.DataFrame:
        return self.frame

    @property
    def description(self) -> ScoringInfo:
        return self.scoring

    @classmethod
    def from_stored(cls, table: pd.DataFrame, description: Mapping[str, Any]) -> Self:
        return cls(frame=table, scoring=ScoringInfo.model_validate(description))


def batch_id_of(batch: AcceptedBatch, scores: ScoredBatch) -> str:
    """The batch both values describe; raises :class:`MonitoringError` if they describe two."""
    from mlgov_assets.core.monitoring.ledger import MonitoringError

    if batch.intake.batch_id != scores.scoring.batch_id:
        raise MonitoringError(
            f"scores of batch {scores.scoring.batch_id} do not belong to batch {batch.intake.batch_id}; re-score it"
        )
    return batch.intake.batch_id
