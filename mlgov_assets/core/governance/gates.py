"""Model gates as pure functions: holdout metric floors and the champion comparison.

Each returns a :class:`GateResult` with the evidence (values, thresholds, policy hash) that the
Dagster check puts in its metadata and the registry writes onto the model version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlgov_assets.core.governance.policy import ChampionThreshold, MetricFloor, Policy


class GateResult(BaseModel):
    """One gate's verdict with its evidence: a row per rule or metric, and gate-specific details."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gate: str
    passed: bool
    summary: str
    policy_sha256: str
    rows: list[dict[str, Any]] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The evidence as recorded on the model version and in the decision log."""
        return self.model_dump()


def metric_floors(metrics: Mapping[str, float], floors: Mapping[str, MetricFloor], policy_sha256: str) -> GateResult:
    """Every floor of the policy met by the holdout metrics (a missing metric fails)."""
    rows: list[dict[str, Any]] = []
    failed: list[str] = []
    for name, floor in sorted(floors.items()):
        value = metrics.get(name)
        if floor.min is not None:
            ok = value is not None and value >= floor.min
            rule, bound = ">=", floor.min
        else:
            assert floor.max is not None  # MetricFloor guarantees exactly one bound
            ok = value is not None and value <= floor.max
            rule, bound = "<=", floor.max
        rows.append({"metric": name, "value": value, "rule": rule, "threshold": bound, "passed": ok})
        if not ok:
            failed.append(f"{name}={value if value is None else round(value, 4)} (needs {rule} {bound})")
    summary = "all metric floors met" if not failed else "below policy floor: " + ", ".join(failed)
    return GateResult(gate="metric_floors", passed=not failed, summary=summary, policy_sha256=policy_sha256, rows=rows)


def _compare(name: str, t: ChampionThreshold, cand: float | None, base: float | None) -> dict[str, Any]:
    """MLflow ``MetricThreshold`` semantics (``mlflow.models.evaluation.validation._validate``):
    threshold: cand >= threshold (<= if lower is better); min_absolute_change: cand >= base + c
    (<= base - c); min_relative_change: (cand - base)/|base| >= c (sign flipped if lower is better).
    Without a champion only the threshold applies: there is nothing to beat yet."""
    failures: list[str] = []
    row: dict[str, Any] = {
        "metric": name,
        "challenger": cand,
        "champion": base,
        "greater_is_better": t.greater_is_better,
        "threshold": t.threshold,
        "min_absolute_change": t.min_absolute_change,
        "min_relative_change": t.min_relative_change,
        "failures": failures,
    }
    if cand is None:
        failures.append("challenger has no value")
        return row

    def ge(a: float, b: float) -> bool:
        return a >= b if t.greater_is_better else a <= b

    if t.threshold is not None and not ge(cand, t.threshold):
        failures.append(f"threshold {t.threshold}")
    if base is not None:
        sign = 1 if t.greater_is_better else -1
        if t.min_absolute_change is not None and not ge(cand, base + sign * t.min_absolute_change):
            failures.append(f"min_absolute_change {t.min_absolute_change} over champion {base:.4f}")
        if t.min_relative_change is not None:
            if base == 0:
                rel_ok = ge(cand, base + sign * 1e-10)
            else:
                rel = (cand - base) / abs(base) if t.greater_is_better else (base - cand) / abs(base)
                row["relative_change"] = rel
                rel_ok = rel >= t.min_relative_change
            if not rel_ok:
                failures.append(f"min_relative_change {t.min_relative_change} over champion {base:.4f}")
    return row


def champion_comparison(
    challenger_version: int,
    challenger_metrics: Mapping[str, float],
    champion_version: int | None,
    champion_metrics: Mapping[str, float] | None,
    thresholds: Mapping[str, ChampionThreshold],
    policy_sha256: str,
) -> GateResult:
    """The challenger beats the champion as ``thresholds`` require (self-comparison passes)."""
    details: dict[str, Any] = {"challenger_version": challenger_version, "compared_champion_version": champion_version}
    if champion_version is not None and champion_version == challenger_version:
        return GateResult(
            gate="champion_comparison",
            passed=True,
            summary=f"version {challenger_version} is the current champion",
            policy_sha256=policy_sha256,
            details=details,
        )
    rows = [
        _compare(name, t, challenger_metrics.get(name), (champion_metrics or {}).get(name))
        for name, t in sorted(thresholds.items())
    ]
    for r in rows:
        r["passed"] = not r["failures"]
    failed = [f"{r['metric']}: {', '.join(r['failures'])}" for r in rows if r["failures"]]
    if failed:
        summary = f"does not beat champion v{champion_version}: " + "; ".join(failed)
    elif champion_version is None:
        summary = "no champion yet: policy thresholds met"
    else:
        summary = f"beats champion v{champion_version} as the policy requires"
    return GateResult(
        gate="champion_comparison",
        passed=not failed,
        summary=summary,
        policy_sha256=policy_sha256,
        rows=rows,
        details=details,
    )


def evaluate_model_gates(
    policy: Policy,
    version: int,
    metrics: Mapping[str, float],
    champion_version: int | None,
    champion_metrics: Mapping[str, float] | None,
) -> list[GateResult]:
    """The metric-floor and champion-comparison gates of ``policy`` for one model version."""
    return [
        metric_floors(metrics, policy.metric_floors, policy.sha256),
        champion_comparison(
            version, metrics, champion_version, champion_metrics, policy.champion_comparison, policy.sha256
        ),
    ]
