"""Stage 4a — fairness and explanations: reports as assets, with blocking gates.

The candidate's gates block promotion. The unmitigated challenger is evaluated by the same gates
and shown beside it (ERROR severity, not blocking: it is evidence, never promoted from here), so
a reviewer sees the refused model next to the one that may ship.
"""

import base64
import json

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    MetadataValue,
    Output,
    asset,
    asset_check,
)

from ..resources import MlgovResource
from .common import CODE_VERSIONS, json_md, rows_table, table_metadata
from .governance import _actor, _run_id
from .training import candidate_model

FAIRNESS_CODE = CODE_VERSIONS["fairness"]


def _fairness_for(mlgov: MlgovResource, version: int, holdout: pd.DataFrame) -> dict:
    """Fairness report + gate verdict of one registered version on the holdout."""
    from mlgov_assets.core.data.features import MODEL_FEATURES, TARGET
    from mlgov_assets.core.governance.fairness import (
        FairnessRule,
        evaluate_fairness_gate,
        fairness_report,
        intersection_key,
    )
    from mlgov_assets.core.models.scoring import holdout_metrics, score_frame

    policy, registry = mlgov.policy(), mlgov.registry()
    fz = policy.fairness
    model = registry.load_governed(version)
    scored = score_frame(model, holdout[MODEL_FEATURES + fz.sensitive_features])
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
        di_band=tuple(fz.four_fifths_band),
    )
    rules = [
        FairnessRule(
            feature=intersection_key(r.feature.replace("×", "|").split("|")),
            metric=r.metric,
            comparison="min" if r.min is not None else "max",
            threshold=r.min if r.min is not None else r.max,
            bound=r.bound,
        )
        for r in fz.rules
    ]
    verdict = evaluate_fairness_gate(report, rules)
    return {
        "version": version,
        "metrics": holdout_metrics(holdout[TARGET].to_numpy(), scored),
        "report": report.to_dict(),
        "verdict": verdict.to_dict(),
        "_report": report,
        "_verdict": verdict,
    }


def _log_fairness(registry, version: int, item: dict, tradeoff_md: str) -> None:
    from mlgov_assets.core.governance.fairness import render_html, render_markdown

    run_id = registry.version_info(version)["run_id"]
    registry.client.log_text(
        run_id,
        json.dumps({k: item[k] for k in ("report", "verdict", "metrics")}, indent=1, default=str),
        "fairness/report.json",
    )
    registry.client.log_text(
        run_id, render_markdown(item["_report"], item["_verdict"]) + "\n\n" + tradeoff_md, "fairness/report.md"
    )
    registry.client.log_text(run_id, render_html(item["_report"], item["_verdict"]), "fairness/report.html")


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
    challenger_model: dict,
    candidate_model: dict,
    holdout_features: pd.DataFrame,
) -> Output[dict]:
    from mlgov_assets.core.governance.fairness import compare_tradeoff

    policy, registry = mlgov.policy(), mlgov.registry()
    if policy.fairness is None:
        return Output({"configured": False}, metadata={"note": "the policy has no fairness section"})
    versions = {"candidate": candidate_model["version"], "challenger": challenger_model["version"]}
    items = {
        role: _fairness_for(mlgov, v, holdout_features)
        for role, v in versions.items()
        if role == "candidate" or v != versions["candidate"]
    }
    items.setdefault("challenger", items["candidate"])
    labels = {f"v{it['version']} ({role})": (it["metrics"], it["_report"]) for role, it in items.items()}
    tradeoff = compare_tradeoff(labels)
    for it in {it["version"]: it for it in items.values()}.values():
        _log_fairness(registry, it["version"], it, tradeoff["markdown"])
    out = {
        "configured": True,
        "policy_sha256": policy.sha256,
        "tradeoff": tradeoff["rows"],
        **{role: {k: it[k] for k in ("version", "metrics", "report", "verdict")} for role, it in items.items()},
    }
    cand = items["candidate"]
    return Output(
        out,
        metadata={
            "candidate_version": cand["version"],
            "challenger_version": items["challenger"]["version"],
            "candidate_passed": cand["verdict"]["passed"],
            "accuracy_fairness_tradeoff": MetadataValue.md(tradeoff["markdown"]),
            "candidate_groups": rows_table(cand["report"]["features"][policy.fairness.sensitive_features[0]]["groups"]),
            "policy_sha256": policy.sha256,
        },
    )


def _fairness_check(context, mlgov: MlgovResource, report: dict, role: str) -> AssetCheckResult:
    from mlgov_assets.core.governance.gates import GateResult
    from mlgov_assets.core.governance.promotion import record_gates

    policy = mlgov.policy()
    if not report.get("configured"):
        return AssetCheckResult(passed=True, description="no fairness section in the policy: nothing to gate")
    item = report[role]
    verdict = item["verdict"]
    failed = [f"{r['feature']} {r['metric']} {r['reason']}" for r in verdict["rules"] if not r["passed"]]
    summary = "all fairness rules met" if verdict["passed"] else "fairness rules breached: " + "; ".join(failed)
    result = GateResult(
        "fairness",
        verdict["passed"],
        summary,
        policy.sha256,
        verdict["rules"],
        {"small_groups": {k: f["small_groups"] for k, f in item["report"]["features"].items()}},
    )
    record_gates(
        mlgov.registry(), policy, item["version"], [result], actor=_actor(context), dagster_run_id=_run_id(context)
    )
    return AssetCheckResult(
        passed=verdict["passed"],
        severity=AssetCheckSeverity.ERROR,
        description=f"v{item['version']}: {summary}",
        metadata={
            "model_version": item["version"],
            "policy_sha256": policy.sha256,
            "rules": rows_table(
                [
                    {
                        k: r.get(k)
                        for k in (
                            "feature",
                            "metric",
                            "bound",
                            "comparison",
                            "threshold",
                            "value",
                            "lower",
                            "upper",
                            "passed",
                        )
                    }
                    for r in verdict["rules"]
                ]
            ),
            "per_group": rows_table(
                [
                    {k: g.get(k) for k in ("feature", "group", "count", "selection_rate", "tpr", "fpr", "small_group")}
                    for g in verdict["groups"]
                ]
            ),
            "evidence": json_md(verdict),
        },
    )


@asset_check(
    asset=fairness_report,
    blocking=True,
    description="The candidate meets every fairness rule of the policy, judged on the confidence bound the "
    "policy names; groups under the minimum size are reported, not gated.",
)
def check_fairness_report_candidate(context, mlgov: MlgovResource, fairness_report: dict) -> AssetCheckResult:
    return _fairness_check(context, mlgov, fairness_report, "candidate")


@asset_check(
    asset=fairness_report,
    blocking=False,
    description="The same fairness rules applied to the unmitigated challenger, shown for comparison "
    "(ERROR when breached; not blocking because the challenger is promoted only as the candidate).",
)
def check_fairness_report_challenger(context, mlgov: MlgovResource, fairness_report: dict) -> AssetCheckResult:
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
    context: AssetExecutionContext, mlgov: MlgovResource, train_features: pd.DataFrame
) -> Output[dict]:
    from mlgov_assets.core.data.features import TARGET
    from mlgov_assets.core.governance.fairness import pretraining_bias

    policy = mlgov.policy()
    from mlgov_assets.core.data.adult import SENSITIVE

    sensitive = policy.fairness.sensitive_features if policy.fairness else SENSITIVE
    bias = pretraining_bias(train_features, TARGET, 1, sensitive)
    rows = [{"feature": f, **r} for f, groups in bias.items() if isinstance(groups, list) for r in groups]
    return Output(
        bias,
        metadata={
            "bias": rows_table(rows) if rows else json_md(bias),
            "dataset": str(train_features.attrs.get("source")),
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
    context: AssetExecutionContext, mlgov: MlgovResource, candidate_model: dict, holdout_features: pd.DataFrame
) -> Output[pd.DataFrame]:
    from mlgov_assets.core.data.features import MODEL_FEATURES
    from mlgov_assets.core.governance.explanations import (
        explain_pipeline,
        local_reasons_frame,
        model_raw_output,
        plot_importance_png,
    )
    from mlgov_assets.core.governance.policy import Explanations
    from mlgov_assets.core.models.scoring import explained_pipeline, score_frame

    policy, registry = mlgov.policy(), mlgov.registry()
    ex = policy.explanations or Explanations()  # no section: report with the documented defaults
    version = candidate_model["version"]
    model = registry.load_governed(version)
    pipeline = explained_pipeline(model)
    X = holdout_features[MODEL_FEATURES]
    expl = explain_pipeline(pipeline, X, top_k_reasons=ex.top_k_reasons, max_rows=ex.max_rows)
    raw = model_raw_output(pipeline, X.iloc[expl.positions])
    frame = local_reasons_frame(expl)
    cols = [c for c in [*MODEL_FEATURES, "sex", "race"] if c in holdout_features.columns]
    frame["decision"] = score_frame(model, holdout_features[cols].iloc[expl.positions])["decision"].to_numpy()
    shap = expl.shap_values.add_prefix("shap_").reset_index(drop=True)
    out = pd.concat([frame.reset_index(drop=True), shap], axis=1)
    out["base_value"], out["model_raw_output"] = expl.base_values, raw
    importance = {k: float(v) for k, v in expl.importance.items()}
    out.attrs = {
        "model_version": version,
        "method": expl.method,
        "method_note": expl.method_note,
        "importance": importance,
    }
    png = plot_importance_png(expl.importance, max_features=15)
    run_id = registry.version_info(version)["run_id"]
    registry.client.log_text(
        run_id,
        json.dumps({"importance": importance, "method": expl.method_note}, indent=1),
        "explanations/importance.json",
    )
    registry.log_bytes(run_id, png, "explanations/importance.png")
    img = base64.b64encode(png).decode()
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


@asset_check(
    asset=explanations,
    blocking=True,
    description="SHAP sanity: base value + sum of SHAP values equals the model's raw output (log-odds) on "
    "every explained row, within the policy's tolerance. Recomputed from the stored values.",
)
def check_explanations_additivity(context, mlgov: MlgovResource, explanations: pd.DataFrame) -> AssetCheckResult:
    from mlgov_assets.core.governance.gates import GateResult
    from mlgov_assets.core.governance.policy import Explanations
    from mlgov_assets.core.governance.promotion import record_gates

    policy = mlgov.policy()
    tol = (policy.explanations or Explanations()).additivity_tolerance
    shap_cols = [c for c in explanations.columns if c.startswith("shap_")]
    err = np.abs(explanations["base_value"] + explanations[shap_cols].sum(axis=1) - explanations["model_raw_output"])
    bad = explanations.loc[~(err <= tol), "row_id"].tolist()
    passed = not bad
    summary = (
        f"additive on all {len(err)} rows (max error {err.max():.2e} <= {tol})"
        if passed
        else f"{len(bad)} rows break additivity (max error {err.max():.3g} > {tol}), e.g. rows {bad[:10]}"
    )
    version = int(explanations.attrs.get("model_version"))
    result = GateResult(
        "explanation_additivity",
        passed,
        summary,
        policy.sha256,
        [{"rows": len(err), "max_abs_error": float(err.max()), "tolerance": tol, "rows_over": len(bad)}],
        {"failing_rows": bad[:50]},
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


@asset_check(
    asset=explanations,
    blocking=False,
    description="Attribution stability against the champion: nDCG of the global feature ranking "
    "(SageMaker Clarify's attribution drift) must be >= the policy's ndcg_min; WARN otherwise.",
)
def check_explanations_attribution_stability(
    context, mlgov: MlgovResource, explanations: pd.DataFrame
) -> AssetCheckResult:
    from mlgov_assets.core.governance.explanations import ndcg_ranking

    policy, registry = mlgov.policy(), mlgov.registry()
    ex = policy.explanations
    champ = registry.champion_version()
    current = explanations.attrs.get("importance", {})
    if champ is None:
        return AssetCheckResult(
            passed=True, severity=AssetCheckSeverity.WARN, description="no champion to compare with"
        )
    try:
        ref = json.loads(
            registry._mlflow.artifacts.load_text(
                f"runs:/{registry.version_info(champ)['run_id']}/explanations/importance.json"
            )
        )["importance"]
    except Exception:
        return AssetCheckResult(
            passed=True,
            severity=AssetCheckSeverity.WARN,
            description=f"champion v{champ} has no stored importance to compare with",
        )
    from mlgov_assets.core.governance.policy import Explanations

    ex = ex or Explanations()
    score = ndcg_ranking(current, ref, k=ex.ndcg_top_k)
    threshold = ex.ndcg_min
    rank = lambda d: [k for k, _ in sorted(d.items(), key=lambda kv: -kv[1])]
    return AssetCheckResult(
        passed=score >= threshold,
        severity=AssetCheckSeverity.WARN,
        description=f"nDCG {score:.4f} vs champion v{champ} (policy minimum {threshold})",
        metadata={
            "ndcg": score,
            "threshold": threshold,
            "champion_version": champ,
            "candidate_ranking": json_md(rank(current)),
            "champion_ranking": json_md(rank(ref)),
        },
    )


ASSETS = [candidate_model, training_data_bias, fairness_report, explanations]
CHECKS = [
    check_fairness_report_candidate,
    check_fairness_report_challenger,
    check_explanations_additivity,
    check_explanations_attribution_stability,
]
JOBS: list = []
SENSORS: list = []
SCHEDULES: list = []
