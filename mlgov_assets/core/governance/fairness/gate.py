"""The fairness gate: policy rules judged on the report's summaries, at the bound each rule names.

A missing value fails closed: no interval (``n_boot=0``), a 0/0 rate, or fewer than two adequately
sized groups (unless the caller opts out with ``on_insufficient_groups="pass"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from mlgov_assets.core.errors import ConfigError
from mlgov_assets.core.governance.fairness.results import Bound, FairnessReport, GroupRow, _Result
from mlgov_assets.core.governance.policy import FairnessRule


class RuleVerdict(_Result):
    """One rule's outcome with the values it was judged on."""

    feature: str
    metric: str
    comparison: Literal["min", "max"]
    threshold: float
    bound: Bound
    value: float | None
    lower: float | None
    upper: float | None
    judged_value: float | None
    passed: bool
    reason: str | None
    small_groups_ignored: list[str]
    gated_groups: list[str]


class GateVerdict(_Result):
    """Outcome of the fairness gate: overall verdict, one row per rule, per-group evidence."""

    passed: bool
    rules: list[RuleVerdict]
    groups: list[GroupRow]

    @property
    def failed_rules(self) -> list[RuleVerdict]:
        return [r for r in self.rules if not r.passed]


def _judge(report: FairnessReport, rule: FairnessRule, on_insufficient_groups: Literal["fail", "pass"]) -> RuleVerdict:
    feature = rule.feature_key
    if feature not in report.features:
        raise ConfigError(f"fairness rule {rule}: feature {feature!r} not in report (has {list(report.features)})")
    ff = report.features[feature]
    sv = ff.summary[rule.metric]
    judged = sv.bound(rule.bound)
    if judged is None:
        insufficient = len(ff.gated_groups) < 2
        passed = insufficient and on_insufficient_groups == "pass"
        reason = ff.note if insufficient else f"{rule.bound} value not available (n_boot=0 or undefined rate)"
    else:
        passed = judged >= rule.threshold if rule.comparison == "min" else judged <= rule.threshold
        op = ">=" if rule.comparison == "min" else "<="
        reason = f"{rule.bound} {judged:.4f} {op} {rule.threshold} is {passed}"
    return RuleVerdict(
        feature=feature,
        metric=rule.metric,
        comparison=rule.comparison,
        threshold=rule.threshold,
        bound=rule.bound,
        value=sv.value,
        lower=sv.lower,
        upper=sv.upper,
        judged_value=judged,
        passed=bool(passed),
        reason=reason,
        small_groups_ignored=list(ff.small_groups),
        gated_groups=list(ff.gated_groups),
    )


def evaluate_fairness_gate(
    report: FairnessReport,
    rules: Sequence[FairnessRule],
    *,
    on_insufficient_groups: Literal["fail", "pass"] = "fail",
) -> GateVerdict:
    """Judge each rule on its chosen bound; the gate passes only if every rule passes.

    Raises :class:`ConfigError` when a rule names a feature the report does not have.
    """
    if on_insufficient_groups not in ("fail", "pass"):
        raise ValueError("on_insufficient_groups must be 'fail' or 'pass'")
    results = [_judge(report, rule, on_insufficient_groups) for rule in rules]
    return GateVerdict(passed=all(r.passed for r in results), rules=results, groups=report.group_table())
