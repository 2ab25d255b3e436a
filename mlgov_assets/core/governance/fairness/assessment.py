"""The fairness stage's result: each model's report and gate verdict, and the trade-off between them."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mlgov_assets.core.governance.fairness.gate import GateVerdict
from mlgov_assets.core.governance.fairness.results import FairnessReport, _Result


class ModelFairness(_Result):
    """One registered version's holdout metrics, fairness report and gate verdict."""

    version: int
    metrics: dict[str, float]
    report: FairnessReport
    verdict: GateVerdict

    def failed_summary(self) -> str:
        """One line for a check description: all met, or which rules were breached and why."""
        if self.verdict.passed:
            return "all fairness rules met"
        failed = [f"{r.feature} {r.metric} {r.reason}" for r in self.verdict.failed_rules]
        return "fairness rules breached: " + "; ".join(failed)


class FairnessAssessment(_Result):
    """The candidate and the unmitigated challenger side by side (``configured`` False: no policy section)."""

    configured: bool
    policy_sha256: str = ""
    tradeoff: list[dict[str, Any]] = Field(default_factory=list)
    candidate: ModelFairness | None = None
    challenger: ModelFairness | None = None

    def for_role(self, role: str) -> ModelFairness:
        item = self.candidate if role == "candidate" else self.challenger if role == "challenger" else None
        if item is None:
            raise KeyError(f"no fairness result for {role!r}")
        return item
