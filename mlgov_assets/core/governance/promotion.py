"""Governance decisions: record gate verdicts, promote, roll back — each one written to the
model version (tags), the MLflow run (evidence JSON) and the hash-chained decision log.

These are the only functions that move the ``champion`` alias; in the product they run inside
the ``champion`` asset (UI "Materialize", ``mlgov train``, ``mlgov promote``/``rollback``), so
every alias move is also a Dagster materialization with its run id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, SerializerFunctionWrapHandler, model_serializer

from mlgov_assets.core.audit.decision_log import DecisionLog, LogIntegrityError
from mlgov_assets.core.errors import MlgovError
from mlgov_assets.core.faults import fault_point
from mlgov_assets.core.governance.gates import GateResult
from mlgov_assets.core.governance.policy import Policy
from mlgov_assets.core.governance.transaction import (
    HEAD_TAG,
    Intent,
    execute,
    explained_write_errors,
    promotion_lock,
    recover,
)
from mlgov_assets.core.integrity import canonical_hash
from mlgov_assets.core.models.registry import ChampionChanged, ChampionState, PromotionRefused

if TYPE_CHECKING:
    from mlgov_assets.core.models.registry import Registry

__all__ = [
    "HEAD_TAG",
    "ChampionChanged",
    "ChampionOutcome",
    "GateStatus",
    "PromotionDecision",
    "PromotionRefused",
    "StatusReport",
    "VersionStatus",
    "promote",
    "promote_locked",
    "record_gates",
    "recover_for_status",
    "rollback",
    "status",
]


STATUS_LOCK_WAIT_SECONDS = 5.0  # status never waits long behind a promotion in progress


class PromotionDecision(BaseModel):
    """What a promotion or rollback did: ``promoted`` False means nothing moved."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    promoted: bool
    champion: int | None  # None only when staged for approval before any champion existed
    previous: int | None
    reason: str
    kind: Literal["promotion", "override", "rollback"] | None = None

    @model_serializer(mode="wrap")
    def _omit_kind_when_unmoved(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        if self.kind is None:  # ``kind`` appears only when the alias moved
            out.pop("kind", None)
        if out.get("staged", 0) is None:  # ``staged`` only in approval mode
            out.pop("staged")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``kind`` only when the alias moved)."""
        return self.model_dump()


class ChampionOutcome(PromotionDecision):
    """What the ``champion`` asset returns: the decision and the registered model it concerns
    (approval mode: ``staged``, the version now awaiting approval)."""

    model_name: str
    staged: int | None = None


class GateStatus(BaseModel):
    """One gate's recorded verdict on a version, and whether the current policy is the one it was judged by."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: Literal["passed", "failed"]
    summary: str
    severity: str
    policy_sha256: str
    current_policy: bool


class VersionStatus(BaseModel):
    """A registered version as ``mlgov status`` shows it: data, code, variant, gates, promotable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    aliases: list[str]
    metrics: dict[str, float]
    train_data_md5: str | None
    git_commit: str | None
    variant: str | None
    gates: dict[str, GateStatus]
    promotable: bool


class PolicyRef(BaseModel):
    """The policy file a status was computed under."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    sha256: str


class StatusReport(BaseModel):
    """The champion, every version with its gate verdicts, and named ``sections`` other parts of mlgov
    add (monitoring, audit). :meth:`to_dict` flattens the sections beside the fields (``mlgov status --json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_name: str
    policy: PolicyRef
    champion: VersionStatus | None
    history: list[int]
    versions: list[VersionStatus]
    state_dir: str
    sections: dict[str, JsonValue] = Field(default_factory=dict)

    def with_sections(self, sections: Mapping[str, JsonValue]) -> StatusReport:
        """A copy with ``sections`` added (validated as JSON). Raises ValueError if a name shadows a field."""
        clash = sorted(set(sections) & (set(type(self).model_fields) - {"sections"}))
        if clash:
            raise ValueError(f"status section name(s) {clash} clash with the report's own fields")
        return StatusReport.model_validate({**self.model_dump(), "sections": {**self.sections, **sections}})

    def to_dict(self) -> dict[str, JsonValue]:
        """The JSON form: the fields, then each section under its name."""
        out: dict[str, JsonValue] = self.model_dump(mode="json", exclude={"sections"})
        return out | self.sections


def _log(registry: Registry) -> DecisionLog:
    return DecisionLog(registry.settings.decision_log)


def record_gates(
    registry: Registry,
    policy: Policy,
    version: int,
    results: list[GateResult],
    *,
    actor: str,
    severity: str = "ERROR",
    dagster_run_id: str | None = None,
) -> None:
    """Write each gate verdict onto the model version and append it to the decision log."""
    for r in results:
        evidence = r.to_dict() | {"dagster_run_id": dagster_run_id}
        registry.record_gate(
            version,
            r.gate,
            passed=r.passed,
            severity=severity,
            policy_sha256=policy.sha256,
            summary=r.summary,
            evidence=evidence,
        )
        _log(registry).append(
            "gate_evaluation",
            actor=actor,
            reason=f"{r.gate}: {'passed' if r.passed else 'FAILED'} — {r.summary}",
            model_name=registry.name,
            model_version=version,
            payload={
                "gate": r.gate,
                "passed": r.passed,
                "severity": severity,
                "rows": r.rows,
                "details": r.details,
                "dagster_run_id": dagster_run_id,
            },
            evidence_hashes={"policy_sha256": policy.sha256, "evidence_sha256": canonical_hash(evidence)},
        )


def require_log_ok(registry: Registry, *, actor: str) -> None:
    """Finish what a dead process left (see ``transaction.recover``), then refuse to move the alias
    while the decision log is broken: a move must be recordable."""
    try:
        recover(registry, actor=actor)
    except LogIntegrityError as exc:
        raise PromotionRefused(f"no promotion or rollback while the decision log is damaged: {exc}") from exc
    res = _log(registry).verify()
    if not res.ok:
        raise PromotionRefused(
            f"the decision log is broken (record {res.first_bad_index}: {res.problem}); no promotion or "
            "rollback until it is repaired — `mlgov audit verify` names the damage, "
            "`mlgov audit repair --reason TEXT` repairs an interrupted append"
        )


def _recompare(
    registry: Registry,
    policy: Policy,
    version: int,
    current: int | None,
    *,
    actor: str,
    dagster_run_id: str | None,
) -> None:
    """Re-run the champion comparison for ``version`` against the champion that is champion now."""
    from mlgov_assets.core.governance.gates import champion_comparison

    cand = registry.version_info(version).metrics
    base = registry.version_info(current).metrics if current is not None else None
    result = champion_comparison(version, cand, current, base, policy.champion_comparison, policy.sha256)
    record_gates(registry, policy, version, [result], actor=actor, dagster_run_id=dagster_run_id)


def stale_comparison(registry: Registry, policy: Policy, version: int, current: int | None) -> str | None:
    """Why ``version``'s required champion comparison no longer holds (it was made against another
    champion than ``current``), or None when it holds or the policy does not require it."""
    compared = registry.gate_details(version, "champion_comparison").get("compared_champion_version", "never")
    if compared == current or "champion_comparison" not in policy.required_model_gates():
        return None
    return f"version {version} was compared with champion {compared}, but the champion is now {current}"


def ensure_compared_with_current(
    registry: Registry,
    policy: Policy,
    version: int,
    current: int | None,
    *,
    reevaluate: bool,
    overriding: bool,
    actor: str,
    dagster_run_id: str | None,
) -> None:
    """The champion comparison must be against today's champion: re-run it or raise ChampionChanged."""
    stale = stale_comparison(registry, policy, version, current)
    if stale is None:
        return
    if not reevaluate and not overriding:
        raise ChampionChanged(
            f"{stale}: re-evaluate it against the new champion (re-run the path, or "
            f"`mlgov promote --version {version}`)"
        )
    _recompare(registry, policy, version, current, actor=actor, dagster_run_id=dagster_run_id)


def refuse_promotion(
    registry: Registry, policy: Policy, version: int, blockers: list[str], *, actor: str, dagster_run_id: str | None
) -> PromotionRefused:
    """Log a refused promotion; returns the exception for the caller to raise."""
    _log(registry).append(
        "rejection",
        actor=actor,
        reason="; ".join(blockers),
        model_name=registry.name,
        model_version=version,
        payload={"blockers": blockers, "dagster_run_id": dagster_run_id},
        evidence_hashes={"policy_sha256": policy.sha256},
    )
    return PromotionRefused(f"version {version} may not become champion: " + "; ".join(blockers))


def promote(
    registry: Registry,
    policy: Policy,
    version: int,
    *,
    actor: str,
    reason: str,
    reevaluate: bool = False,
    override_justification: str = "",
    dagster_run_id: str | None = None,
) -> PromotionDecision:
    """Make ``version`` champion if it passed every gate the current policy requires.

    The champion comparison must be against today's champion: otherwise ``reevaluate=True``
    re-runs it, else :class:`ChampionChanged` is raised. The whole decision and the move run under
    the promotion lock as one crash-safe transaction (``transaction``). A refusal is logged and
    raised as :class:`PromotionRefused`; an override (failed gates promoted anyway) needs
    ``override_justification`` and is recorded as such.
    """
    if version < 1 or version not in registry.versions():
        raise PromotionRefused(f"version {version} of {registry.name} is not registered (have {registry.versions()})")
    with (
        explained_write_errors(f"promotion of version {version}"),
        promotion_lock(registry, purpose=f"promote version {version} of {registry.name} ({actor})"),
    ):
        fault_point("promotion.locked")
        require_log_ok(registry, actor=actor)
        return promote_locked(
            registry,
            policy,
            version,
            actor=actor,
            reason=reason,
            reevaluate=reevaluate,
            override_justification=override_justification,
            dagster_run_id=dagster_run_id,
        )


def promote_locked(
    registry: Registry,
    policy: Policy,
    version: int,
    *,
    actor: str,
    reason: str,
    reevaluate: bool = False,
    override_justification: str = "",
    dagster_run_id: str | None = None,
    approval: tuple[str, list[str]] | None = None,
) -> PromotionDecision:
    """:func:`promote`'s decision and move; the caller holds the promotion lock and has recovered.
    ``approval`` (request hash, approval hashes): the move the approvals complete, cited in its record."""
    state = registry.champion_state()
    current = state.champion
    if current == version:
        return PromotionDecision(
            promoted=False,
            champion=version,
            previous=current,
            reason=f"version {version} is already champion (nothing to do)",
        )
    justification = override_justification.strip()
    ensure_compared_with_current(
        registry,
        policy,
        version,
        current,
        reevaluate=reevaluate,
        overriding=bool(justification),
        actor=actor,
        dagster_run_id=dagster_run_id,
    )
    blockers = registry.promotion_blockers(version, policy.required_model_gates(), policy.sha256)
    if blockers and not justification:
        raise refuse_promotion(registry, policy, version, blockers, actor=actor, dagster_run_id=dagster_run_id)
    intent = Intent(
        op="override" if blockers else "promotion",
        before=state,
        after=ChampionState(
            champion=version,
            previous=current if current is not None else state.previous,
            history=[*state.history, version],
        ),
        reason=justification if blockers else reason,
        request_reason=reason,
        blockers=blockers,
        dagster_run_id=dagster_run_id,
        policy_sha256=policy.sha256,
        approval_request=approval[0] if approval else None,
        approvals=approval[1] if approval else [],
    )
    execute(registry, intent, actor=actor)
    return PromotionDecision(promoted=True, champion=version, previous=current, kind=intent.op, reason=intent.reason)


def rollback(
    registry: Registry, policy: Policy, *, actor: str, reason: str, dagster_run_id: str | None = None
) -> PromotionDecision:
    """Champion back to the one before it (the promotion history's previous entry), as the same
    crash-safe transaction as a promotion."""
    if not reason.strip():
        raise ValueError("rollback needs a reason (it is recorded in the decision log)")
    with (
        explained_write_errors("rollback"),
        promotion_lock(registry, purpose=f"roll back the champion of {registry.name} ({actor})"),
    ):
        fault_point("promotion.locked")
        require_log_ok(registry, actor=actor)
        state = registry.champion_state()
        history, current = state.history, state.champion
        if current is None or len(history) < 2:
            raise PromotionRefused("nothing to roll back to: there is no previous champion")
        if history[-1] != current:
            raise PromotionRefused(
                f"the promotion history {history} disagrees with the champion alias ({current}); "
                "refusing to guess where to roll back to (`mlgov audit verify` compares both with the log)"
            )
        target = history[-2]
        intent = Intent(
            op="rollback",
            before=state,
            after=ChampionState(champion=target, previous=current, history=history[:-1]),
            reason=reason,
            request_reason=reason,
            blockers=[],
            dagster_run_id=dagster_run_id,
            policy_sha256=policy.sha256,
        )
        execute(registry, intent, actor=actor)
    return PromotionDecision(promoted=True, champion=target, previous=current, kind="rollback", reason=reason)


def recover_for_status(registry: Registry, *, actor: str) -> list[str]:
    """What ``status`` and the audit run first: the same recovery as a promotion, with a short wait
    for the lock (a promotion in progress is left alone) and never failing the report."""
    try:
        with promotion_lock(registry, purpose=f"recovery for {actor}", timeout=STATUS_LOCK_WAIT_SECONDS):
            return recover(registry, actor=actor)
    except (MlgovError, OSError) as exc:
        return [f"recovery not done: {exc}"]


def _version_status(registry: Registry, policy: Policy, version: int) -> VersionStatus:
    info = registry.version_info(version)
    gates = {
        name: GateStatus(
            verdict="passed" if g.passed else "failed",
            summary=g.summary,
            severity=g.severity,
            policy_sha256=g.policy_sha256,
            current_policy=g.policy_sha256 == policy.sha256,
        )
        for name, g in sorted(registry.gate_records(version).items())
    }
    return VersionStatus(
        version=version,
        aliases=info.aliases,
        metrics=info.metrics,
        train_data_md5=info.tags.get("mlgov.train_data_md5"),
        git_commit=info.tags.get("mlgov.git_commit"),
        variant=info.tags.get("mlgov.variant"),
        gates=gates,
        promotable=not registry.promotion_blockers(version, policy.required_model_gates(), policy.sha256),
    )


def status(registry: Registry, policy: Policy) -> StatusReport:
    """Champion, its metrics and data md5, and every gate's verdict, for people and machines
    (after completing any move a dead process left unfinished)."""
    recover_for_status(registry, actor="mlgov status")
    champ = registry.champion_version()
    versions = [_version_status(registry, policy, v) for v in registry.versions()]
    return StatusReport(
        model_name=registry.name,
        policy=PolicyRef(path=policy.path, sha256=policy.sha256),
        champion=next((v for v in versions if v.version == champ), None),
        history=registry.champion_history(),
        versions=versions,
        state_dir=str(registry.settings.home),
    )
