"""Re-evaluating the champion against the current policy, from scratch (a daily schedule)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.data.adult import read_adult_csv
from mlgov_assets.core.integrity import md5_file
from mlgov_assets.core.monitoring.alerts import raise_alert
from mlgov_assets.core.monitoring.ledger import Log, MonitoringError, MonitoringPaths, utc_now
from mlgov_assets.core.monitoring.scoring import load_verified

if TYPE_CHECKING:
    from mlgov_assets.core.governance.gates import GateResult
    from mlgov_assets.core.governance.policy import Policy
    from mlgov_assets.core.models.registry import Registry, VersionInfo
    from mlgov_assets.core.settings import Settings

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class HoldoutCheck(BaseModel):
    model_config = _FROZEN

    path: str
    md5: str
    recorded_md5: str | None
    same_as_recorded: bool


class MetricsCheck(BaseModel):
    model_config = _FROZEN

    recorded: dict[str, float]
    recomputed: dict[str, float]
    max_abs_diff: float


class GateVerdict(BaseModel):
    model_config = _FROZEN

    gate: str
    passed: bool
    summary: str
    recorded_now: bool


class Reevaluation(BaseModel):
    """The champion re-evaluated: integrity, a fresh holdout evaluation, the current policy's gates."""

    model_config = _FROZEN

    champion: int | None
    passed: bool
    summary: str
    at: str
    policy_sha256: str | None = None
    problems: list[str] = []
    integrity: str | None = None
    holdout: HoldoutCheck | None = None
    metrics: MetricsCheck | None = None
    reproduced: bool | None = None
    gates: list[GateVerdict] = []
    not_reevaluated_here: list[str] = []


def _recompute_holdout(settings: Settings, model: Any, holdout_rel: str) -> tuple[str, dict[str, float]]:
    """(md5, metrics) of the model on the canonical holdout, validated and featurized as in training."""
    from mlgov_assets.core.data.adult import SENSITIVE
    from mlgov_assets.core.data.features import MODEL_FEATURES, TARGET, build_features
    from mlgov_assets.core.data.schemas import RawAdultSchema, validate
    from mlgov_assets.core.models.scoring import holdout_metrics, score_frame

    holdout_path = Path(settings.project_dir) / holdout_rel
    report = validate(read_adult_csv(holdout_path), RawAdultSchema, source=holdout_rel)
    if not report.passed:
        raise MonitoringError(f"the holdout {holdout_rel} fails its schema: {report.summary()}")
    if report.validated is None:
        raise MonitoringError(f"the holdout {holdout_rel} passed validation but no validated frame came back")
    table = build_features(report.validated)
    scored = score_frame(model, table[MODEL_FEATURES + list(SENSITIVE)])
    return md5_file(holdout_path), holdout_metrics(table[TARGET].to_numpy(), scored)


def _reproduce(
    settings: Settings, model: Any, info: VersionInfo, holdout_rel: str
) -> tuple[HoldoutCheck, MetricsCheck]:
    """The holdout as evaluated now vs as recorded at registration, and the metrics on both."""
    holdout_md5, recomputed = _recompute_holdout(settings, model, holdout_rel)
    recorded_md5 = info.tags.get("mlgov.holdout_data_md5")
    diffs = [abs(recomputed[k] - info.metrics[k]) for k in recomputed if k in info.metrics]
    holdout = HoldoutCheck(
        path=holdout_rel, md5=holdout_md5, recorded_md5=recorded_md5, same_as_recorded=holdout_md5 == recorded_md5
    )
    return holdout, MetricsCheck(recorded=info.metrics, recomputed=recomputed, max_abs_diff=max(diffs, default=0.0))


def _record_changed(
    registry: Registry, policy: Policy, champion: int, results: list[GateResult], actor: str, run_id: str | None
) -> list[GateResult]:
    """Write the gate verdicts that changed (new policy hash or outcome) to registry and decision log."""
    from mlgov_assets.core.governance.promotion import record_gates

    records = registry.gate_records(champion)
    changed = [
        r
        for r in results
        if r.gate not in records or records[r.gate].policy_sha256 != policy.sha256 or records[r.gate].passed != r.passed
    ]
    if changed:
        record_gates(registry, policy, champion, changed, actor=actor, dagster_run_id=run_id)
    return changed


def reevaluate_champion(
    settings: Settings,
    policy: Policy,
    registry: Registry,
    *,
    actor: str,
    holdout_rel: str,
    dagster_run_id: str | None = None,
    log: Log | None = None,
) -> Reevaluation:
    """Re-run the champion's model gates against the *current* policy, from scratch.

    Loads the champion verified, re-scores the holdout (``holdout_rel``, the caller's), checks the
    recorded metrics reproduce, and evaluates the current metric gates. Verdicts are recorded only
    when they changed. Never demotes: a failure is an ERROR alert for a person.
    """
    from mlgov_assets.core.governance.gates import evaluate_model_gates
    from mlgov_assets.core.integrity import IntegrityError

    paths = MonitoringPaths.of(settings)
    champion = registry.champion_version()
    if champion is None:
        return Reevaluation(champion=None, passed=True, summary="no champion to re-evaluate", at=utc_now())
    info = registry.version_info(champion)
    base: dict[str, Any] = {"champion": champion, "policy_sha256": policy.sha256, "at": utc_now()}
    try:
        model = load_verified(registry, champion)
    except IntegrityError as exc:
        summary = f"champion v{champion} failed artifact verification"
        failed = Reevaluation(**base, integrity=f"FAILED: {exc}", passed=False, summary=summary, problems=[summary])
        _reevaluation_alert(paths, policy, failed, log)
        return failed
    holdout, metrics = _reproduce(settings, model, info, holdout_rel)
    reproduced = bool(holdout.same_as_recorded and metrics.max_abs_diff < 1e-9)
    drifted = f"recorded holdout metrics do not reproduce (max diff {metrics.max_abs_diff:.3g})"
    problems = [drifted] if holdout.same_as_recorded and not reproduced else []
    results = evaluate_model_gates(policy, champion, metrics.recomputed, champion, metrics.recorded)
    changed = _record_changed(registry, policy, champion, results, actor, dagster_run_id)
    problems += [f"{r.gate}: {r.summary}" for r in results if not r.passed]
    result = Reevaluation(
        **base,
        integrity="verified",
        holdout=holdout,
        metrics=metrics,
        reproduced=reproduced,
        gates=[
            GateVerdict(gate=r.gate, passed=r.passed, summary=r.summary, recorded_now=r in changed) for r in results
        ],
        not_reevaluated_here=[g for g in policy.required_model_gates() if g not in {r.gate for r in results}],
        problems=problems,
        passed=not problems,
        summary=f"champion v{champion}: " + "; ".join(problems)
        if problems
        else f"champion v{champion} meets the current policy ({policy.sha256[:12]}) on a fresh evaluation",
    )
    if not result.passed:
        _reevaluation_alert(paths, policy, result, log)
    return result


def _reevaluation_alert(paths: MonitoringPaths, policy: Policy, result: Reevaluation, log: Log | None) -> None:
    raise_alert(
        paths,
        "champion_reevaluation_failed",
        result.summary,
        severity="ERROR",
        identity={"champion": result.champion, "policy": policy.sha256, "problems": result.problems},
        webhook_url=policy.monitoring.webhook_url,
        log=log,
        evidence=result.model_dump(mode="json", exclude_none=True),
    )
