"""Re-evaluating the champion against the current policy, from scratch (a daily schedule)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.governance.policy import METRIC_GATES
from mlgov_assets.core.integrity import md5_file
from mlgov_assets.core.monitoring.alerts import raise_alert
from mlgov_assets.core.monitoring.ledger import Log, MonitoringError, MonitoringPaths, utc_now
from mlgov_assets.core.monitoring.scoring import load_verified

if TYPE_CHECKING:
    from mlgov_assets.core.governance.gates import GateResult
    from mlgov_assets.core.governance.policy import Policy
    from mlgov_assets.core.models.registry import GateRecord, Registry, VersionInfo
    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.settings import Settings

_FROZEN = ConfigDict(extra="forbid", frozen=True)
HOLDOUT_MD5_TAG = "mlgov.holdout_data_md5"  # written at registration (core.models.registration)


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


class RunGateCheck(BaseModel):
    """One model gate's check as a Dagster run evaluated it (from the run's own event log)."""

    model_config = _FROZEN

    gate: str
    check: str
    model_version: int
    policy_sha256: str
    passed: bool


class RunEvidence(BaseModel):
    """What the run that is checking the champion did before: the version its champion step promoted
    (None: it promoted nothing, e.g. a checks-only run), under which policy, and the candidate's gate
    checks it evaluated. The key to citing that run's verdicts instead of re-scoring the holdout."""

    model_config = _FROZEN

    run_id: str
    promoted_version: int | None
    policy_sha256: str | None
    gate_checks: list[RunGateCheck] = []


class CitedEvidence(BaseModel):
    """The gate evidence a same-run champion check cites (see :func:`reevaluate_champion`)."""

    model_config = _FROZEN

    dagster_run_id: str
    version: int
    policy_sha256: str
    holdout_md5: str
    gate_checks: list[RunGateCheck]


class Reevaluation(BaseModel):
    """The champion re-evaluated: integrity, then either a fresh holdout evaluation and the current
    policy's gates (``mode="fresh"``), or, in the run that just gated and promoted it under the same
    policy and data, those gate verdicts cited (``mode="cited"``)."""

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
    mode: Literal["fresh", "cited"] = "fresh"
    cited: CitedEvidence | None = None
    fresh_because: str | None = None


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
    recorded_md5 = info.tags.get(HOLDOUT_MD5_TAG)
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


def citation_refused(
    evidence: RunEvidence | None,
    champion: int,
    policy: Policy,
    records: dict[str, GateRecord],
    holdout_md5: str,
    recorded_md5: str | None,
) -> str | None:
    """Why the champion's check may NOT cite this run's gate verdicts (None: it may).

    Citing needs every key to match: this run promoted exactly the current champion, under the
    current policy (sha256), on the holdout file the version was registered with (md5); and for every
    metric gate, this run's own check of that version under that policy passed, and the registry's
    record of it is under that policy and passed. Anything else is re-evaluated from scratch."""
    if evidence is None:
        return "not run in a Dagster run"
    if evidence.promoted_version is None:
        return f"run {evidence.run_id[:8]} promoted no version"
    if evidence.promoted_version != champion:
        return f"run {evidence.run_id[:8]} promoted v{evidence.promoted_version}, the champion is v{champion}"
    if evidence.policy_sha256 != policy.sha256:
        was = str(evidence.policy_sha256)[:12]
        return f"run {evidence.run_id[:8]} promoted under policy {was}, not {policy.sha256[:12]}"
    if recorded_md5 != holdout_md5:
        return f"the holdout's md5 {holdout_md5} differs from the one recorded at registration ({recorded_md5})"
    checks = {c.gate: c for c in evidence.gate_checks}
    for gate in METRIC_GATES:
        check, rec = checks.get(gate), records.get(gate)
        if check is None:
            return f"run {evidence.run_id[:8]} evaluated no {gate} check"
        if check.model_version != champion or check.policy_sha256 != policy.sha256 or not check.passed:
            return f"run {evidence.run_id[:8]}'s {check.check} is not a pass of v{champion} under {policy.sha256[:12]}"
        if rec is None or rec.policy_sha256 != policy.sha256 or not rec.passed:
            return f"the registry's {gate} record of v{champion} is not a pass under {policy.sha256[:12]}"
    return None


def reevaluate_champion(
    settings: Settings,
    project: Project,
    policy: Policy,
    registry: Registry,
    *,
    actor: str,
    dagster_run_id: str | None = None,
    log: Log | None = None,
    evidence: RunEvidence | None = None,
) -> Reevaluation:
    """Re-run the champion's model gates against the *current* policy, from scratch.

    Verifies every artifact's sha256, re-scores the project's holdout (:func:`read_holdout`) with the
    verified model, checks the recorded metrics reproduce, and evaluates the current metric gates.
    Verdicts are recorded only when they changed. Never demotes: a failure is an ERROR alert for a person.

    In the run that just evaluated the gates and promoted the champion (``evidence``; every key of
    :func:`citation_refused` matching), the artifacts are still verified but the gate verdicts this
    run recorded are cited instead of scoring the same holdout with the same model again; a
    scheduled run, a policy change or any mismatch re-evaluates fully.
    """
    from mlgov_assets.core.integrity import IntegrityError

    paths = MonitoringPaths.of(settings)
    champion = registry.champion_version()
    if champion is None:
        return Reevaluation(champion=None, passed=True, summary="no champion to re-evaluate", at=utc_now())
    info = registry.version_info(champion)
    base: dict[str, Any] = {"champion": champion, "policy_sha256": policy.sha256, "at": utc_now()}
    # the keys of a citation are read only when this run has evidence to cite
    holdout_md5 = md5_file(project.repo / holdout_source(project)) if evidence is not None else ""
    records = registry.gate_records(champion) if evidence is not None else {}
    refused = citation_refused(evidence, champion, policy, records, holdout_md5, info.tags.get(HOLDOUT_MD5_TAG))
    model: Any = None
    try:
        if refused is None:
            registry.verify_artifacts(champion)  # sha256 of every file; the model is not scored again
        else:
            model = load_verified(registry, champion)
    except IntegrityError as exc:
        summary = f"champion v{champion} failed artifact verification"
        failed = Reevaluation(**base, integrity=f"FAILED: {exc}", passed=False, summary=summary, problems=[summary])
        _reevaluation_alert(paths, policy, failed, log)
        return failed
    if refused is None and evidence is not None:
        return _cited(base, project, policy, records, evidence, holdout_md5)
    return _fresh(paths, base, project, policy, registry, model, info, actor, dagster_run_id, log, refused)


def _cited(
    base: dict[str, Any],
    project: Project,
    policy: Policy,
    records: dict[str, GateRecord],
    evidence: RunEvidence,
    holdout_md5: str,
) -> Reevaluation:
    """The champion's verdict citing the gate checks its own run evaluated (artifacts verified first)."""
    champion = base["champion"]
    cited = CitedEvidence(
        dagster_run_id=evidence.run_id,
        version=champion,
        policy_sha256=policy.sha256,
        holdout_md5=holdout_md5,
        gate_checks=[c for c in evidence.gate_checks if c.gate in METRIC_GATES],
    )
    return Reevaluation(
        **base,
        integrity="verified",
        holdout=HoldoutCheck(
            path=holdout_source(project), md5=holdout_md5, recorded_md5=holdout_md5, same_as_recorded=True
        ),
        gates=[
            GateVerdict(gate=g, passed=records[g].passed, summary=records[g].summary, recorded_now=False)
            for g in METRIC_GATES
        ],
        not_reevaluated_here=[g for g in policy.required_model_gates() if g not in METRIC_GATES],
        mode="cited",
        cited=cited,
        passed=True,
        summary=f"champion v{champion} meets the current policy ({policy.sha256[:12]}): artifacts verified, "
        f"the gate verdicts of run {evidence.run_id[:8]} (same version, policy and holdout) cited",
    )


def _fresh(
    paths: MonitoringPaths,
    base: dict[str, Any],
    project: Project,
    policy: Policy,
    registry: Registry,
    model: Any,
    info: VersionInfo,
    actor: str,
    dagster_run_id: str | None,
    log: Log | None,
    why: str | None,
) -> Reevaluation:
    """The champion scored on the holdout again, and the current metric gates judged from that."""
    from mlgov_assets.core.governance.gates import evaluate_model_gates

    champion = base["champion"]
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
        fresh_because=why,
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
