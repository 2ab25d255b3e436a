"""Stage 4a — fairness and explanations: reports as assets, with blocking gates.

The candidate's gates block promotion. The unmitigated challenger is evaluated by the same gates
and shown beside it (ERROR severity, not blocking: it is evidence, never promoted from here), so
a reviewer sees the refused model next to the one that may ship.
"""

import base64
import json
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Definitions,
    MetadataValue,
    Output,
    asset,
    asset_check,
)

from mlgov_assets.core.data.lineage import LineagedFrame
from mlgov_assets.core.governance.fairness.assessment import FairnessAssessment, ModelFairness
from mlgov_assets.core.governance.fairness.bias import PretrainingBias
from mlgov_assets.core.governance.policy import Explanations

from ..resources import MlgovResource
from .common import CODE_VERSIONS, json_md, rows_table, table_metadata
from .governance import _actor, _run_id
from .scope import scoped

if TYPE_CHECKING:
    from pandas import DataFrame

    from mlgov_assets.core.models.registry import Registry
else:
    # Dagster reads these annotations when the code location loads, which imports no pandas (the
    # steps do): at run time a table input or output is typed Any (the IO manager still stores
    # DataFrames and JSON values only)
    DataFrame = Any

FAIRNESS_CODE = CODE_VERSIONS["fairness"]


def _fairness_for(mlgov: MlgovResource, version: int, holdout: DataFrame) -> ModelFairness:
    """Fairness report + gate verdict of one registered version on the holdout."""
    from mlgov_assets.core.governance.fairness.gate import evaluate_fairness_gate
    from mlgov_assets.core.governance.fairness.report import fairness_report
    from mlgov_assets.core.models.scoring import holdout_metrics, score_frame
    from mlgov_assets.core.project.project import TARGET

    policy, registry, project = mlgov.policy(), mlgov.registry(), mlgov.project()
    fz = policy.fairness
    assert fz is not None  # the asset checks the section exists
    model = registry.load_governed(version)
    scored = score_frame(model, holdout[project.model_features + fz.sensitive_features])
    report = fairness_report(
        holdout[TARGET].to_numpy(),
        scored["decision"].to_numpy(),
        holdout[fz.sensitive_features],
        features=fz.sensitive_features,
        intersections=fz.intersections,
        min_group_size=fz.min_group_size,
        n_boot=fz.n_boot,
        ci_level=fz.confidence_level,
        random_state=0,
        di_band=(fz.four_fifths_band[0], fz.four_fifths_band[1]),
    )
    return ModelFairness(
        version=version,
        metrics=holdout_metrics(holdout[TARGET].to_numpy(), scored),
        report=report,
        verdict=evaluate_fairness_gate(report, fz.rules),
    )


def _log_fairness(registry: "Registry", item: ModelFairness, tradeoff_md: str) -> None:
    from mlgov_assets.core.governance.fairness.render import render_html, render_markdown

    run_id = registry.version_info(item.version).require_run_id()
    evidence = {"report": item.report.to_dict(), "verdict": item.verdict.to_dict(), "metrics": item.metrics}
    registry.client.log_text(run_id, json.dumps(evidence, indent=1, default=str), "fairness/report.json")
    registry.client.log_text(
        run_id, render_markdown(item.report, item.verdict) + "\n\n" + tradeoff_md, "fairness/report.md"
    )
    registry.client.log_text(run_id, render_html(item.report, item.verdict), "fairness/report.html")


@asset(
    group_name="governance",
    code_version=FAIRNESS_CODE,
    kinds={"fairlearn"},
    owners=["team:model-risk"],
    description="Fairlearn MetricFrame per sensitive feature and intersection (count, selection rate, TPR, FPR, "
    "FNR, precision, accuracy per group; demographic parity, equalized odds, disparate impact with "
    "bootstrap CIs) for the candidate and the unmitigated challenger, side by side; small groups "
    "flagged, not gated. Logged to each model's MLflow run (JSON, Markdown, HTML).",
)
def fairness_report(
    context: AssetExecutionContext,
    mlgov: MlgovResource,
    challenger_model: dict[str, Any],
    candidate_model: dict[str, Any],
    holdout_features: DataFrame,
) -> Output[FairnessAssessment]:
    from mlgov_assets.core.governance.fairness.render import compare_tradeoff

    mlgov = scoped(mlgov, context)
    policy, registry = mlgov.policy(), mlgov.registry()
    if policy.fairness is None:
        return Output(FairnessAssessment(configured=False), metadata={"note": "the policy has no fairness section"})
    cand = _fairness_for(mlgov, candidate_model["version"], holdout_features)
    chal = cand
    if challenger_model["version"] != cand.version:
        chal = _fairness_for(mlgov, challenger_model["version"], holdout_features)
    items = {"candidate": cand, "challenger": chal}
    tradeoff = compare_tradeoff({f"v{it.version} ({role})": (it.metrics, it.report) for role, it in items.items()})
    for it in {it.version: it for it in items.values()}.values():
        _log_fairness(registry, it, tradeoff.markdown)
    first = policy.fairness.sensitive_features[0]
    return Output(
        FairnessAssessment(
            configured=True, policy_sha256=policy.sha256, tradeoff=tradeoff.rows, candidate=cand, challenger=chal
        ),
        metadata={
            "candidate_version": cand.version,
            "challenger_version": chal.version,
            "candidate_passed": cand.verdict.passed,
            "accuracy_fairness_tradeoff": MetadataValue.md(tradeoff.markdown),
            "candidate_groups": rows_table([g.to_dict() for g in cand.report.features[first].groups]),
            "policy_sha256": policy.sha256,
        },
    )


_RULE_COLUMNS = ("feature", "metric", "bound", "comparison", "threshold", "value", "lower", "upper", "passed")
_GROUP_COLUMNS = ("feature", "group", "count", "selection_rate", "tpr", "fpr", "small_group")


def _fairness_check(
    context: AssetCheckExecutionContext, mlgov: MlgovResource, assessment: FairnessAssessment, role: str
) -> AssetCheckResult:
    from mlgov_assets.core.governance.gates import GateResult
    from mlgov_assets.core.governance.promotion import record_gates

    policy = mlgov.policy()
    if not assessment.configured:
        return AssetCheckResult(passed=True, description="no fairness section in the policy: nothing to gate")
    item = assessment.for_role(role)
    verdict, summary = item.verdict.to_dict(), item.failed_summary()
    result = GateResult(
        gate="fairness",
        passed=item.verdict.passed,
        summary=summary,
        policy_sha256=policy.sha256,
        rows=verdict["rules"],
        details={"small_groups": {k: f.small_groups for k, f in item.report.features.items()}},
    )
    record_gates(
        mlgov.registry(), policy, item.version, [result], actor=_actor(context), dagster_run_id=_run_id(context)
    )
    return AssetCheckResult(
        passed=item.verdict.passed,
        severity=AssetCheckSeverity.ERROR,
        description=f"v{item.version}: {summary}",
        metadata={
            "model_version": item.version,
            "policy_sha256": policy.sha256,
            "rules": rows_table([{k: r.get(k) for k in _RULE_COLUMNS} for r in verdict["rules"]]),
            "per_group": rows_table([{k: g.get(k) for k in _GROUP_COLUMNS} for g in verdict["groups"]]),
            "evidence": json_md(verdict),
        },
    )


@asset_check(
    asset=fairness_report,
    blocking=True,
    description="The candidate meets every fairness rule of the policy, judged on the confidence bound the "
    "policy names; groups under the minimum size are reported, not gated.",
)
def check_fairness_report_candidate(
    context: AssetCheckExecutionContext, mlgov: MlgovResource, fairness_report: FairnessAssessment
) -> AssetCheckResult:
    mlgov = scoped(mlgov, context)
    return _fairness_check(context, mlgov, fairness_report, "candidate")


@asset_check(
    asset=fairness_report,
    blocking=False,
    description="The same fairness rules applied to the unmitigated challenger, shown for comparison "
    "(ERROR when breached; not blocking because the challenger is promoted only as the candidate).",
)
def check_fairness_report_challenger(
    context: AssetCheckExecutionContext, mlgov: MlgovResource, fairness_report: FairnessAssessment
) -> AssetCheckResult:
    mlgov = scoped(mlgov, context)
    return _fairness_check(context, mlgov, fairness_report, "challenger")


@asset(
    group_name="features",
    code_version=FAIRNESS_CODE,
    kinds={"pandas"},
    owners=["team:model-risk"],
    description="Pre-training data bias of the training data: class imbalance (CI) and difference in positive "
    "label proportions (DPL) per sensitive group, as SageMaker Clarify defines them. Reported, not gated.",
)
def training_data_bias(
    context: AssetExecutionContext, mlgov: MlgovResource, train_features: LineagedFrame
) -> Output[PretrainingBias]:
    from mlgov_assets.core.governance.fairness.bias import pretraining_bias
    from mlgov_assets.core.project.project import TARGET

    mlgov = scoped(mlgov, context)
    policy = mlgov.policy()
    sensitive = policy.fairness.sensitive_features if policy.fairness else mlgov.project().sensitive
    bias = pretraining_bias(train_features.frame, TARGET, 1, sensitive)
    rows = [{"feature": f, **r.to_dict()} for f, facets in bias.features.items() for r in facets]
    return Output(
        bias,
        metadata={
            "bias": rows_table(rows) if rows else json_md(bias.to_dict()),
            "dataset": train_features.lineage.source,
        },
    )


@asset(
    group_name="governance",
    code_version=FAIRNESS_CODE,
    kinds={"shap"},
    owners=["team:model-risk"],
    description="SHAP TreeExplainer (exact for the ordinal-coded tree model) on the candidate over the whole "
    "holdout: per-decision SHAP values on the original features, base value and the model's raw "
    "output (so additivity is re-checkable), and adverse-action reasons (the features that pushed "
    "each score down most). Global importance plot in the UI and in MLflow.",
)
def explanations(
    context: AssetExecutionContext,
    mlgov: MlgovResource,
    candidate_model: dict[str, Any],
    holdout_features: DataFrame,
) -> Output[DataFrame]:
    from mlgov_assets.core.governance.explanations import explain_pipeline, local_reasons_frame, model_raw_output
    from mlgov_assets.core.models.scoring import explained_pipeline, score_frame

    mlgov = scoped(mlgov, context)
    policy, registry, project = mlgov.policy(), mlgov.registry(), mlgov.project()
    ex = policy.explanations or Explanations()  # no section: report with the documented defaults
    version = int(candidate_model["version"])
    model = registry.load_governed(version)
    pipeline = explained_pipeline(model)
    X = holdout_features[project.model_features]
    expl = explain_pipeline(pipeline, X, top_k_reasons=ex.top_k_reasons, max_rows=ex.max_rows)
    raw = model_raw_output(pipeline, X.iloc[expl.positions])
    frame = local_reasons_frame(expl)
    # a mitigated model also reads the sensitive columns it conditions on
    cols = [c for c in [*project.model_features, *project.sensitive] if c in holdout_features.columns]
    frame["decision"] = score_frame(model, holdout_features[cols].iloc[expl.positions])["decision"].to_numpy()
    shap = expl.shap_values.add_prefix(SHAP_PREFIX).reset_index(drop=True)
    import numpy as np
    import pandas as pd

    out = pd.concat([frame.reset_index(drop=True), shap], axis=1)
    out["base_value"], out["model_raw_output"] = expl.base_values, raw
    # the explained version travels with every row: the checks read it from the stored table
    out["model_version"] = np.full(len(out), version, dtype=np.int64)
    importance = {str(k): float(v) for k, v in expl.importance.items()}
    img = _log_importance(registry, version, importance, expl.method_note)
    return Output(
        out,
        metadata={
            **table_metadata(out),
            "model_version": version,
            "method": expl.method_note,
            "global_importance": MetadataValue.md(
                f"![importance](data:image/png;base64,{img})\n\n"
                + "\n".join(f"{i + 1}. `{k}` {v:.4f}" for i, (k, v) in enumerate(importance.items()))
            ),
        },
    )


SHAP_PREFIX = "shap_"


def _log_importance(registry: "Registry", version: int, importance: dict[str, float], method_note: str) -> str:
    """Log global importance (JSON + PNG) to the version's MLflow run; returns the PNG as base64."""
    from mlgov_assets.core.governance.explanations import plot_importance_png

    png = plot_importance_png(importance, max_features=15)
    run_id = registry.version_info(version).require_run_id()
    registry.client.log_text(
        run_id, json.dumps({"importance": importance, "method": method_note}, indent=1), "explanations/importance.json"
    )
    registry.log_bytes(run_id, png, "explanations/importance.png")
    return base64.b64encode(png).decode()


def _explained_version(explanations: DataFrame) -> int:
    versions = explanations["model_version"].unique()
    if len(versions) != 1:
        raise ValueError(f"explanations table mixes model versions {sorted(versions)}")
    return int(versions[0])


def _importance(explanations: DataFrame) -> dict[str, float]:
    """Global importance (mean |SHAP| per feature), recomputed from the stored per-row values."""
    cols = [c for c in explanations.columns if c.startswith(SHAP_PREFIX)]
    return {c[len(SHAP_PREFIX) :]: float(explanations[c].abs().mean()) for c in cols}


@asset_check(
    asset=explanations,
    blocking=True,
    description="SHAP sanity: base value + sum of SHAP values equals the model's raw output (log-odds) on "
    "every explained row, within the policy's tolerance. Recomputed from the stored values.",
)
def check_explanations_additivity(
    context: AssetCheckExecutionContext, mlgov: MlgovResource, explanations: DataFrame
) -> AssetCheckResult:
    from mlgov_assets.core.governance.gates import GateResult
    from mlgov_assets.core.governance.promotion import record_gates

    mlgov = scoped(mlgov, context)
    policy = mlgov.policy()
    tol = (policy.explanations or Explanations()).additivity_tolerance
    shap_cols = [c for c in explanations.columns if c.startswith(SHAP_PREFIX)]
    err = (explanations["base_value"] + explanations[shap_cols].sum(axis=1) - explanations["model_raw_output"]).abs()
    bad = explanations.loc[~(err <= tol), "row_id"].tolist()
    passed = not bad
    summary = (
        f"additive on all {len(err)} rows (max error {err.max():.2e} <= {tol})"
        if passed
        else f"{len(bad)} rows break additivity (max error {err.max():.3g} > {tol}), e.g. rows {bad[:10]}"
    )
    version = _explained_version(explanations)
    result = GateResult(
        gate="explanation_additivity",
        passed=passed,
        summary=summary,
        policy_sha256=policy.sha256,
        rows=[{"rows": len(err), "max_abs_error": float(err.max()), "tolerance": tol, "rows_over": len(bad)}],
        details={"failing_rows": bad[:50]},
    )
    record_gates(mlgov.registry(), policy, version, [result], actor=_actor(context), dagster_run_id=_run_id(context))
    return AssetCheckResult(
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        description=summary,
        metadata={
            "model_version": version,
            "max_abs_error": float(err.max()),
            "tolerance": tol,
            "failing_rows": json_md(bad[:50]),
            "policy_sha256": policy.sha256,
        },
    )


def _champion_importance(registry: "Registry", champ: int) -> dict[str, float] | None:
    """The champion's logged global importance, None when it has none."""
    try:
        run_id = registry.version_info(champ).run_id
        text = registry._mlflow.artifacts.load_text(f"runs:/{run_id}/explanations/importance.json")
        return {str(k): float(v) for k, v in json.loads(text)["importance"].items()}
    except Exception:
        return None


def _ranking(importance: dict[str, float]) -> list[str]:
    return [k for k, _ in sorted(importance.items(), key=lambda kv: -kv[1])]


@asset_check(
    asset=explanations,
    blocking=False,
    description="Attribution stability against the champion: nDCG of the global feature ranking "
    "(SageMaker Clarify's attribution drift) must be >= the policy's ndcg_min; WARN otherwise.",
)
def check_explanations_attribution_stability(
    context: AssetCheckExecutionContext, mlgov: MlgovResource, explanations: DataFrame
) -> AssetCheckResult:
    from mlgov_assets.core.governance.explanations import ndcg_ranking

    mlgov = scoped(mlgov, context)
    policy, registry = mlgov.policy(), mlgov.registry()
    champ = registry.champion_version()
    if champ is None:
        return AssetCheckResult(
            passed=True, severity=AssetCheckSeverity.WARN, description="no champion to compare with"
        )
    ref = _champion_importance(registry, champ)
    if ref is None:
        return AssetCheckResult(
            passed=True,
            severity=AssetCheckSeverity.WARN,
            description=f"champion v{champ} has no stored importance to compare with",
        )
    ex = policy.explanations or Explanations()
    current = _importance(explanations)
    score = ndcg_ranking(current, ref, k=ex.ndcg_top_k)
    return AssetCheckResult(
        passed=score >= ex.ndcg_min,
        severity=AssetCheckSeverity.WARN,
        description=f"nDCG {score:.4f} vs champion v{champ} (policy minimum {ex.ndcg_min})",
        metadata={
            "ndcg": score,
            "threshold": ex.ndcg_min,
            "champion_version": champ,
            "candidate_ranking": json_md(_ranking(current)),
            "champion_ranking": json_md(_ranking(ref)),
        },
    )


defs = Definitions(
    assets=[training_data_bias, fairness_report, explanations],
    asset_checks=[
        check_fairness_report_candidate,
        check_fairness_report_challenger,
        check_explanations_additivity,
        check_explanations_attribution_stability,
    ],
)
