"""The fairness report's result types: JSON-serialisable evidence (``to_dict``) for gates and reports."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Bound = Literal["point", "lower", "upper"]


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what assets, MLflow artifacts and the gate evidence store)."""
        return self.model_dump(mode="json")


class SummaryValue(_Result):
    """A summary metric with its bootstrap interval (None where not computable)."""

    value: float | None
    lower: float | None = None
    upper: float | None = None

    def bound(self, which: Bound) -> float | None:
        return {"point": self.value, "lower": self.lower, "upper": self.upper}[which]


class GroupRow(_Result):
    """One group's count, rates with intervals (None for small groups) and disparate impact."""

    feature: str
    group: str
    count: int
    small_group: bool
    selection_rate: float | None
    selection_rate_lower: float | None = None
    selection_rate_upper: float | None = None
    tpr: float | None
    tpr_lower: float | None = None
    tpr_upper: float | None = None
    fpr: float | None
    fpr_lower: float | None = None
    fpr_upper: float | None = None
    fnr: float | None
    fnr_lower: float | None = None
    fnr_upper: float | None = None
    precision: float | None
    precision_lower: float | None = None
    precision_upper: float | None = None
    accuracy: float | None
    accuracy_lower: float | None = None
    accuracy_upper: float | None = None
    disparate_impact: float | None
    di_within_band: bool | None

    def estimate(self, metric: str) -> tuple[float | None, float | None, float | None]:
        """``(value, lower, upper)`` of one of the group metrics."""
        return getattr(self, metric), getattr(self, f"{metric}_lower"), getattr(self, f"{metric}_upper")


class FeatureFairness(_Result):
    """Disaggregated metrics for one sensitive feature or one intersection of features."""

    name: str
    columns: list[str]
    groups: list[GroupRow]
    small_groups: list[str]
    gated_groups: list[str]
    summary: dict[str, SummaryValue]
    note: str | None = None


class ReportConfig(_Result):
    """How a report was computed (recorded with it)."""

    min_group_size: int
    n_boot: int
    ci_level: float
    random_state: int
    di_band: tuple[float, float]
    features: list[str]
    intersections: list[list[str]]
    ci_method: str
    point_method: str


class FairnessReport(_Result):
    """Everything the fairness gate and the rendered reports need."""

    n_rows: int
    overall: dict[str, float | None]
    features: dict[str, FeatureFairness]
    config: ReportConfig

    def group_table(self) -> list[GroupRow]:
        """All per-group rows of all features, flat (the gate's evidence table)."""
        return [g for f in self.features.values() for g in f.groups]
