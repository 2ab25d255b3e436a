"""The CLI's typed results: a run's verdict (:class:`RunSummary`) and the ``mlgov status`` extension point.

Imported when a command runs, not when the parser is built (it loads the governance core).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, JsonValue

from mlgov_assets.core.governance.promotion import ChampionOutcome
from mlgov_assets.core.settings import Settings

__all__ = ["AcceptedData", "CardRef", "CardsRunSummary", "CheckVerdict", "RunSummary", "StatusHook", "StepFailure"]

#: A subcommand module's ``status_hook``: the named sections it adds to ``mlgov status`` (JSON values;
#: a hook reports its own failure inside its section rather than raising).
StatusHook = Callable[[Settings], dict[str, JsonValue]]


class CheckVerdict(BaseModel):
    """One asset check evaluated in a run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    check: str
    asset: str
    passed: bool
    severity: str  # "ERROR" or "WARN" (Dagster's AssetCheckSeverity value)
    blocking: bool
    description: str | None

    @property
    def refuses(self) -> bool:
        """A failed blocking ERROR check: Dagster fails its step, and that failure is a governance no."""
        return not self.passed and self.severity == "ERROR" and self.blocking


class StepFailure(BaseModel):
    """A failed step: ``refused`` (a governance no) or broken, with the user's error message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    step: str | None
    refused: bool
    error: str


class RunSummary(BaseModel):
    """The CLI's verdict on a run: which gates passed or failed, which steps failed and why, and
    the ``champion`` asset's outcome when the run materialized it. ``--json`` prints
    ``model_dump(mode="json")``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    success: bool
    checks: list[CheckVerdict]
    failed_steps: list[StepFailure]
    refused_by: list[CheckVerdict]
    champion: ChampionOutcome | None


class AcceptedData(BaseModel):
    """A data file ``mlgov data add`` / ``mlgov train --accept-data-change`` DVC-tracked at its bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    md5: str
    previous_md5: str | None  # what its .dvc file recorded before (None: it was not tracked)
    dvc_file_rewritten: bool


class CardRef(BaseModel):
    """One version's model card as the ``model_cards`` asset reports it (its Markdown left out)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    bundle_sha256: str
    rebuilt: bool
    run_id: str | None
    artifact: str
    overrides: int


class CardsRunSummary(RunSummary):
    """``mlgov audit cards``: the refresh run's summary and the cards it published."""

    cards: list[CardRef]
