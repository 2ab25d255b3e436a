"""Stage 4 — governance: blocking model gates and the champion, the only writer of the alias."""

import getpass
from typing import Literal

from dagster import (AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, AssetExecutionContext,
                     Config, Failure, MetadataValue, Output, asset, asset_check)

from ..resources import MlgovResource
from .common import CODE_VERSIONS, json_md, rows_table
from .training import candidate_model, challenger_model

PROMOTION_POOL = "mlgov_promotion"


def _run_id(context) -> str:
    return context.run.run_id if hasattr(context, "run") else context.run_id


def _actor(context) -> str:
    return f"{getpass.getuser()} (dagster run {_run_id(context)[:8]})"


def _gate_check(context: AssetCheckExecutionContext, mlgov: MlgovResource, challenger: dict, gate: str) -> AssetCheckResult:
    from ..core.gates import evaluate_model_gates
    from ..core.promotion import record_gates

    policy, registry = mlgov.policy(), mlgov.registry()
    champ = registry.champion_version()
    champ_metrics = registry.version_info(champ)["metrics"] if champ is not None else None
    result = next(r for r in evaluate_model_gates(policy, challenger["version"], challenger["metrics"], champ, champ_metrics)
                  if r.gate == gate)
    record_gates(registry, policy, challenger["version"], [result], actor=_actor(context), dagster_run_id=_run_id(context))
    return AssetCheckResult(
        passed=result.passed, severity=AssetCheckSeverity.ERROR, description=result.summary,
        metadata={"model_version": challenger["version"], "policy_sha256": policy.sha256, "policy_path": policy.path,
                  "champion_version": champ if champ is not None else "none", "results": rows_table(result.rows),
                  "evidence": json_md(result.to_dict())})


def _model_gate_checks(asset, blocking: bool, role: str):
    """The metric-floor and champion-comparison gates for one model asset. Blocking on the
    candidate (what can be promoted); shown, not blocking, on the unmitigated challenger."""
    name = asset.key.to_user_string()
    note = "" if blocking else " Shown for comparison: not blocking, the candidate's gates decide promotion."

    @asset_check(asset=asset, name=f"check_{name}_metric_floors", blocking=blocking,
                 description=f"The {role}'s holdout metrics meet the policy's absolute floors (metric_floors).{note}")
    def floors(context: AssetCheckExecutionContext, mlgov: MlgovResource) -> AssetCheckResult:
        return _gate_check(context, mlgov, _model_of(context, asset), "metric_floors")

    @asset_check(asset=asset, name=f"check_{name}_beats_champion", blocking=blocking,
                 description=f"The {role} beats the current champion as the policy's champion_comparison requires "
                             f"(MLflow MetricThreshold semantics).{note}")
    def beats(context: AssetCheckExecutionContext, mlgov: MlgovResource) -> AssetCheckResult:
        return _gate_check(context, mlgov, _model_of(context, asset), "champion_comparison")

    return [floors, beats]


def _model_of(context, asset) -> dict:
    """The model dict this run materialized for ``asset`` (from its materialization metadata)."""
    event = context.instance.get_latest_materialization_event(asset.key)
    meta = event.asset_materialization.metadata
    return {"version": int(meta["model_version"].value),
            "metrics": {k.split("/", 1)[1]: float(v.value) for k, v in meta.items() if k.startswith("holdout/")}}


CHALLENGER_CHECKS = _model_gate_checks(challenger_model, blocking=False, role="unmitigated challenger")
CANDIDATE_CHECKS = _model_gate_checks(candidate_model, blocking=True, role="candidate")


class ChampionConfig(Config):
    """Default: promote this run's challenger if it passed every gate. ``mlgov promote`` and
    ``mlgov rollback`` launch this same asset with ``action`` set, so every alias move is a
    materialization of ``champion``."""

    action: Literal["promote_challenger", "promote_version", "rollback"] = "promote_challenger"
    version: int = 0
    reason: str = ""
    actor: str = ""
    override_justification: str = ""


def _challenger_version(context: AssetExecutionContext) -> int:
    """The candidate this run materialized; run on its own, the latest materialized one.
    (A dependency, not an IO-managed input: rollback and promote-by-version need no model.)"""
    event = context.instance.get_latest_materialization_event(candidate_model.key)
    if event is None:
        raise Failure(description="no candidate_model has been materialized yet: run the governed training path first")
    if event.run_id != context.run_id:
        context.log.info(f"using the challenger materialized by run {event.run_id[:8]}")
    return int(event.asset_materialization.metadata["model_version"].value)


@asset(group_name="governance", code_version=CODE_VERSIONS["governance"], pool=PROMOTION_POOL,
       deps=[candidate_model, "fairness_report", "explanations"],
       kinds={"mlflow"}, owners=["team:model-risk"], tags={"mlgov/stage": "promotion"},
       description="The registry's `champion` alias. Moves only if the version passed every gate the current "
                   "policy requires (re-checked from the registry, so it also holds when run alone), serialized "
                   "(pool of 1 + file lock) and compare-and-set against the champion the gates compared with. "
                   "Every move is recorded in the hash-chained decision log.")
def champion(context: AssetExecutionContext, config: ChampionConfig, mlgov: MlgovResource) -> Output[dict]:
    from ..core.promotion import ChampionChanged, PromotionRefused, promote, rollback

    policy, registry = mlgov.policy(), mlgov.registry()
    actor = config.actor or _actor(context)
    try:
        if config.action == "rollback":
            result = rollback(registry, policy, actor=actor, reason=config.reason, dagster_run_id=context.run_id)
        else:
            version = _challenger_version(context) if config.action == "promote_challenger" else config.version
            result = promote(registry, policy, version, actor=actor,
                             reason=config.reason or f"passed every gate of policy {policy.sha256[:12]}",
                             expected_current="compared" if config.action == "promote_challenger" else registry.champion_version(),
                             override_justification=config.override_justification, dagster_run_id=context.run_id)
    except (PromotionRefused, ChampionChanged, ValueError) as exc:
        raise Failure(description=str(exc), metadata={"policy_sha256": policy.sha256}) from exc
    context.log.info(f"champion: {result}")
    champ = result["champion"]
    return Output(result | {"model_name": registry.name}, metadata={
        "champion_version": champ, "previous_version": result["previous"] if result["previous"] is not None else "none",
        "promoted": result["promoted"], "action": config.action, "reason": result["reason"],
        "policy_sha256": policy.sha256, "model_uri": f"models:/{registry.name}@champion",
        "mlflow_ui": MetadataValue.url(f"http://127.0.0.1:5000/#/models/{registry.name}/versions/{champ}"),
        "result": json_md(result)})

