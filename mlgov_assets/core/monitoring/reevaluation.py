"""Re-evaluating the champion against the current policy, from scratch (a daily schedule)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.integrity import md5_file
from mlgov_assets.core.monitoring.alerts import raise_alert
from mlgov_assets.core.monitoring.ledger import Log, MonitoringError, MonitoringPaths, utc_now
from mlgov_assets.core.monitoring.scoring import load_verified

if TYPE_CHECKING:
    from mlgov_assets.core.governance.gates import GateResult
    from mlgov_assets.core.governance.policy import Policy
    from mlgov_assets.core.models.registry import Registry, VersionInfo
    from mlgov_assets.core.project.project import Project
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


def holdout_source(project: Project) -> str:
    """The file the project's holdout comes from (relative to the repository): its holdout file, or
    the training file when the holdout is a seeded split of it."""
    return project.holdout_file or project.train_file


def read_holdout(project: Project) -> pd.DataFrame:
    """The project's raw holdout rows: its holdout file, or the holdout part of the seeded split of
    its training file (``core.data.split``, the same cut the data assets make)."""
    from mlgov_assets.core.project.reader import read_raw
    from mlgov_assets.core.project.spec import Split

    raw = read_raw(project, project.repo / holdout_source(project))
    split = project.spec.data.holdout
    if isinstance(split, Split):
        from mlgov_assets.core.data.split import split_holdout

        raw = split_holdout(project, raw, split).holdout
    return raw


def _recompute_holdout(project: Project, model: Any) -> tuple[str, dict[str, float]]:
    """(md5, metrics) of the model on the project's holdout, validated and featurized as in training."""
    from mlgov_assets.core.data.schemas import validate
    from mlgov_assets.core.models.scoring import holdout_metrics, score_frame
    from mlgov_assets.core.project.features import build_features
    from mlgov_assets.core.project.project import TARGET
    from mlgov_assets.core.project.schemas import raw_schema

    source = holdout_source(project)
    report = validate(read_holdout(project), raw_schema(project), source=source)
    if not report.passed:
        raise MonitoringError(f"the holdout {source} fails its schema: {report.summary()}")
    if report.validated is None:
        raise MonitoringError(f"the holdout {source} passed validation but no validated frame came back")
    table = build_features(project, report.validated)
    scored = score_frame(model, table[project.model_features + project.sensitive])
    return md5_file(project.repo / source), holdout_metrics(table[TARGET].to_numpy(), scored)


def _reproduce(project: Project, model: Any, info: VersionInfo) -> tuple[HoldoutCheck, MetricsCheck]:
    """The holdout as evaluated now vs as recorded at registration, and the metrics on both."""
    holdout_md5, recomputed = _recompute_holdout(project, model)
    recorded_md5 = info.tags.get("mlgov.holdout_data_md5")
    diffs = [abs(recomputed[k] - info.metrics[k]) for k in recomputed if k in info.metrics]
    holdout = HoldoutCheck(
        path=holdout_source(project),
        md5=holdout_md5,
        recorded_md5=recorded_md5,
        same_as_recorded=holdout_md5 == recorded_md5,
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
    project: Project,
    policy: Policy,
    registry: Registry,
    *,
    actor: str,
    dagster_run_id: str | None = None,
    log: Log | None = None,
) -> Reevaluation:
    """Re-run the champion's model gates against the *current* policy, from scratch.

    Loads the champion verified, re-scores the project's holdout (:func:`read_holdout`), checks the
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
    holdout, metrics = _reproduce(project, model, info)
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
