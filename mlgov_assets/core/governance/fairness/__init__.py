"""Fairness: disaggregated reports with bootstrap CIs, the blocking gate, pre-training bias.

``report`` builds the :class:`FairnessReport` (Fairlearn points, ``bootstrap`` intervals),
``gate`` judges the policy's :class:`~mlgov_assets.core.governance.policy.FairnessRule` s on it,
``bias`` measures the training labels, ``render`` writes Markdown/HTML and the trade-off table.
Heavy imports (fairlearn) happen inside functions so the Dagster code location loads fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlgov_assets.core.governance.fairness.assessment import FairnessAssessment, ModelFairness
    from mlgov_assets.core.governance.fairness.bias import PretrainingBias, pretraining_bias
    from mlgov_assets.core.governance.fairness.bootstrap import GROUP_METRICS, SUMMARY_METRICS
    from mlgov_assets.core.governance.fairness.gate import GateVerdict, RuleVerdict, evaluate_fairness_gate
    from mlgov_assets.core.governance.fairness.render import Tradeoff, compare_tradeoff, render_html, render_markdown
    from mlgov_assets.core.governance.fairness.report import fairness_report, intersection_key
    from mlgov_assets.core.governance.fairness.results import FairnessReport, FeatureFairness, GroupRow, SummaryValue

#: Where each name lives: imported on first use, so importing one submodule (the code location imports
#: ``assessment`` and ``bias``) does not load numpy and pandas through the others.
_HOME = {
    "FairnessAssessment": "assessment",
    "ModelFairness": "assessment",
    "PretrainingBias": "bias",
    "pretraining_bias": "bias",
    "GROUP_METRICS": "bootstrap",
    "SUMMARY_METRICS": "bootstrap",
    "GateVerdict": "gate",
    "RuleVerdict": "gate",
    "evaluate_fairness_gate": "gate",
    "Tradeoff": "render",
    "compare_tradeoff": "render",
    "render_html": "render",
    "render_markdown": "render",
    "fairness_report": "report",
    "intersection_key": "report",
    "FairnessReport": "results",
    "FeatureFairness": "results",
    "GroupRow": "results",
    "SummaryValue": "results",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
