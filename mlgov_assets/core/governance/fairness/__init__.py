"""Fairness: disaggregated reports with bootstrap CIs, the blocking gate, pre-training bias.

``report`` builds the :class:`FairnessReport` (Fairlearn points, ``bootstrap`` intervals),
``gate`` judges the policy's :class:`~mlgov_assets.core.governance.policy.FairnessRule` s on it,
``bias`` measures the training labels, ``render`` writes Markdown/HTML and the trade-off table.
Heavy imports (fairlearn) happen inside functions so the Dagster code location loads fast.
"""

from mlgov_assets.core.governance.fairness.assessment import FairnessAssessment, ModelFairness
from mlgov_assets.core.governance.fairness.bias import PretrainingBias, pretraining_bias
from mlgov_assets.core.governance.fairness.bootstrap import GROUP_METRICS, SUMMARY_METRICS
from mlgov_assets.core.governance.fairness.gate import GateVerdict, RuleVerdict, evaluate_fairness_gate
from mlgov_assets.core.governance.fairness.render import Tradeoff, compare_tradeoff, render_html, render_markdown
from mlgov_assets.core.governance.fairness.report import fairness_report, intersection_key
from mlgov_assets.core.governance.fairness.results import FairnessReport, FeatureFairness, GroupRow, SummaryValue

__all__ = [
    "GROUP_METRICS",
    "SUMMARY_METRICS",
    "FairnessAssessment",
    "FairnessReport",
    "FeatureFairness",
    "GateVerdict",
    "GroupRow",
    "ModelFairness",
    "PretrainingBias",
    "RuleVerdict",
    "SummaryValue",
    "Tradeoff",
    "compare_tradeoff",
    "evaluate_fairness_gate",
    "fairness_report",
    "intersection_key",
    "pretraining_bias",
    "render_html",
    "render_markdown",
]
