"""Stage 4 — governance: blocking model gates and the champion, the only writer of the alias."""

import getpass
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    AssetsDefinition,
    Config,
    Definitions,
    Failure,
    MetadataValue,
    Output,
    asset,
    asset_check,
)

from ..resources import MlgovResource
from .common import CODE_VERSIONS, json_md, rows_table
from .scope import scoped, sibling
from .training import candidate_model, challenger_model

#: Failure metadata key marking a governance refusal (vs. a breakage): the CLI exits 1, not 2.
REFUSED = "mlgov/refused"


@dataclass(frozen=True)
class ModelUnderReview:
    """A registered version and its holdout metrics, as its model asset's materialization recorded them."""

    version: int
    metrics: dict[str, float]


AnyContext = AssetExecutionContext | AssetCheckExecutionContext


def _run_id(context: AnyContext) -> str:
    return context.run.run_id


def _meta_number(meta: Mapping[str, MetadataValue], key: str) -> float:
    """A numeric materialization metadata value (the model's version or a holdout metric)."""
    value = meta[key].value
    if not isinstance(value, int | float | str):
        raise Failure(description=f"materialization metadata {key!r} is not a number: {value!r}")
    return float(value)


def _actor(context: AnyContext) -> str:
    return f"{getpass.getuser()} (dagster run {_run_id(context)[:8]})"


def _gate_check(
    context: AssetCheckExecutionContext, mlgov: MlgovResource, challenger: ModelUnderReview, gate: str
) -> AssetCheckResult:
    from mlgov_assets.core.governance.gates import evaluate_model_gates
    from mlgov_assets.core.governance.promotion import record_gates

    policy, registry = mlgov.policy(), mlgov.registry()
    champ = registry.champion_version()
    champ_metrics = registry.version_info(champ).metrics if champ is not None else None
    results = evaluate_model_gates(policy, challenger.version, challenger.metrics, champ, champ_metrics)
    result = next(r for r in results if r.gate == gate)
    record_gates(registry, policy, challenger.version, [result], actor=_actor(context), dagster_run_id=_run_id(context))
    return AssetCheckResult(
        passed=result.passed,
        severity=AssetCheckSeverity.ERROR,
        description=result.summary,
        metadata={
            "model_version": challenger.version,
            "policy_sha256": policy.sha256,
            "policy_path": policy.path,
            "champion_version": champ if champ is not None else "none",
            "results": rows_table(result.rows),
            "evidence": json_md(result.to_dict()),
        },
    )


#: The check name's suffix of each metric gate (``check_<model asset>_<suffix>``).
GATE_CHECK_SUFFIX = {"metric_floors": "metric_floors", "champion_comparison": "beats_champion"}


def gate_check_name(asset_name: str, gate: str) -> str:
    """The name of the check judging ``gate`` on the model asset ``asset_name`` (unprefixed)."""
    return f"check_{asset_name}_{GATE_CHECK_SUFFIX[gate]}"


def _model_gate_checks(asset: AssetsDefinition, blocking: bool, role: str) -> list[AssetChecksDefinition]:
    """The metric-floor and champion-comparison gates for one model asset. Blocking on the
    candidate (what can be promoted); shown, not blocking, on the unmitigated challenger."""
    name = asset.key.to_user_string()
    note = "" if blocking else " Shown for comparison: not blocking, the candidate's gates decide promotion."

    @asset_check(
        asset=asset,
        name=gate_check_name(name, "metric_floors"),
        blocking=blocking,
        description=f"The {role}'s holdout metrics meet the policy's absolute floors (metric_floors).{note}",
    )
    def floors(context: AssetCheckExecutionContext, mlgov: MlgovResource) -> AssetCheckResult:
        mlgov = scoped(mlgov, context)
        return _gate_check(context, mlgov, _model_of(context, asset), "metric_floors")

    @asset_check(
        asset=asset,
        name=gate_check_name(name, "champion_comparison"),
        blocking=blocking,
        description=f"The {role} beats the current champion as the policy's champion_comparison requires "
        f"(MLflow MetricThreshold semantics).{note}",
    )
    def beats(context: AssetCheckExecutionContext, mlgov: MlgovResource) -> AssetCheckResult:
        mlgov = scoped(mlgov, context)
        return _gate_check(context, mlgov, _model_of(context, asset), "champion_comparison")

    return [floors, beats]


def _materialization(context: AnyContext, key: AssetKey) -> AssetMaterialization | None:
    """This run's materialization of ``key``; run on its own (a check or the champion alone),
    the latest one. Never another concurrent run's."""
    from dagster import DagsterEventType

    records = context.instance.get_records_for_run(
        _run_id(context), of_type=DagsterEventType.ASSET_MATERIALIZATION
    ).records
    for rec in reversed(records):
        ev = rec.event_log_entry.dagster_event
        if ev is not None and ev.asset_key == key:
            found: AssetMaterialization = ev.step_materialization_data.materialization
            return found
    event = context.instance.get_latest_materialization_event(key)
    return event.asset_materialization if event is not None else None


def _model_of(context: AssetCheckExecutionContext, asset: AssetsDefinition) -> ModelUnderReview:
    """The model this run materialized for ``asset`` (from its materialization metadata)."""
    mat = _materialization(context, sibling(context, asset.key.path[-1]))
    if mat is None:
        raise Failure(description=f"{asset.key.to_user_string()} has not been materialized yet")
    meta = mat.metadata
    return ModelUnderReview(
        version=int(_meta_number(meta, "model_version")),
        metrics={k.split("/", 1)[1]: _meta_number(meta, k) for k in meta if k.startswith("holdout/")},
    )


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
    # No override here: promoting despite a failed gate is possible only through
    # `mlgov promote --override "<justification>"` (recorded as an override), never a Launchpad field.


def _challenger_version(context: AssetExecutionContext) -> int:
    """The candidate this run materialized; run on its own, the latest materialized one.
    (A dependency, not an IO-managed input: rollback and promote-by-version need no model.)"""
    mat = _materialization(context, sibling(context, candidate_model.key.path[-1]))
    if mat is None:
        raise Failure(description="no candidate_model has been materialized yet: run the governed training path first")
    return int(_meta_number(mat.metadata, "model_version"))


@asset(
    group_name="governance",
    code_version=CODE_VERSIONS["governance"],
    deps=[candidate_model, "fairness_report", "explanations"],
    kinds={"mlflow"},
    owners=["team:model-risk"],
    tags={"mlgov/stage": "promotion"},
    description="The registry's `champion` alias. Moves only if the version passed every gate the current "
    "policy requires (re-checked from the registry, so it also holds when run alone), serialized "
    "(a file lock the OS frees if its holder dies) as one crash-safe transaction, compare-and-set "
    "against the champion the gates compared with. "
    "Every move is recorded in the hash-chained decision log.",
)
def champion(context: AssetExecutionContext, config: ChampionConfig, mlgov: MlgovResource) -> Output[dict[str, Any]]:
    from mlgov_assets.core.governance.approval import champion_step
    from mlgov_assets.core.governance.promotion import ChampionChanged, ChampionOutcome, PromotionRefused, rollback
    from mlgov_assets.core.provenance import identity

    mlgov = scoped(mlgov, context)
    policy, registry = mlgov.policy(), mlgov.registry()
    actor = f"{config.actor} via {_actor(context)}" if config.actor else _actor(context)
    staged = None
    try:
        if config.action == "rollback":
            decision = rollback(registry, policy, actor=actor, reason=config.reason, dagster_run_id=context.run_id)
        else:
            version = _challenger_version(context) if config.action == "promote_challenger" else config.version
            decision, staged = champion_step(  # approval mode: stage it and request approval instead
                registry,
                policy,
                version,
                actor=actor,
                requested_by=config.actor or identity(),
                reason=config.reason or f"passed every gate of policy {policy.sha256[:12]}",
                reevaluate=config.action == "promote_version",
                dagster_run_id=context.run_id,
            )
    except (PromotionRefused, ChampionChanged, ValueError) as exc:
        raise Failure(description=str(exc), metadata={"policy_sha256": policy.sha256, REFUSED: True}) from exc
    context.log.info(f"champion: {decision}")
    if staged is not None:  # the pending request where an auditor looks: the candidate's page too
        context.log_event(candidate_observation(sibling(context, "candidate_model"), mlgov, staged.message))
    result, champ = decision.to_dict(), decision.champion
    reference = _champion_reference(context, mlgov, champ) if decision.promoted and champ is not None else None
    outcome = ChampionOutcome(**result, model_name=registry.name, staged=staged.version if staged else None)
    return Output(
        outcome.model_dump(),
        metadata={
            "champion_version": champ if champ is not None else "none",
            "previous_version": decision.previous if decision.previous is not None else "none",
            "promoted": decision.promoted,
            "action": config.action,
            "reason": decision.reason,
            "policy_sha256": policy.sha256,
            "model_uri": f"models:/{registry.name}@champion",
            "mlflow_ui": MetadataValue.url(mlgov.settings().mlflow_model_version_url(registry.name, champ or "")),
            "result": json_md(result),
            "reference_profile": reference or "unchanged",
            **approval_metadata(mlgov),
        },
    )


def _champion_reference(context: AssetExecutionContext, mlgov: MlgovResource, version: int) -> str:
    """Build the new champion's drift reference now rather than on its first batch (before that
    batch's verdict). The alias has moved already: a failure here is a warning, not a failed
    promotion (the first batch then builds it, as in a home promoted before this existed)."""
    from mlgov_assets.core.errors import MlgovError
    from mlgov_assets.core.monitoring.drift_assessment import prepare_champion_reference

    try:
        ref = prepare_champion_reference(mlgov.settings(), mlgov.project(), mlgov.policy(), mlgov.registry(), version)
    except (MlgovError, OSError, ValueError) as exc:
        context.log.warning(f"champion v{version}: drift reference not prepared ({exc}); its first batch builds it")
        return f"not prepared: {exc}"[:500]
    context.log.info(f"champion v{version}: drift reference {ref.path} (md5 {ref.md5}) profiled")
    return f"{ref.path} md5 {ref.md5} fingerprint {ref.fingerprint}"


def candidate_observation(key: AssetKey, mlgov: MlgovResource, message: str) -> AssetObservation:
    """Approval mode: the state of the approval request, recorded on the candidate's asset page."""
    return AssetObservation(asset_key=key, description=message, metadata=approval_metadata(mlgov))


def approval_metadata(mlgov: MlgovResource) -> dict[str, Any]:
    """Approval mode: what awaits approval, where an auditor looks (the champion's materializations)."""
    from mlgov_assets.core.governance.approval import pending

    policy = mlgov.policy()
    if policy.promotion.mode != "approval":
        return {}
    waiting = pending(mlgov.registry())
    last = waiting[-1] if waiting else None
    return {
        "approval_pending": last is not None,
        "staging_version": last.version if last else "none",
        "approvals": f"{len(last.approved_by)}/{last.approvals_required} ({', '.join(last.approved_by) or 'none yet'})"
        if last
        else "none pending",
        "approval_expires_at": last.expires_at if last else "none",
        "approve_with": f"mlgov approve --version {last.version} --reason TEXT, or the approve_candidate job"
        if last
        else "nothing to approve",
    }


defs = Definitions(assets=[champion], asset_checks=[*CHALLENGER_CHECKS, *CANDIDATE_CHECKS])
