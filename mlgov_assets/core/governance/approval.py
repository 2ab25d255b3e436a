"""Staged promotion with human approval (policy ``promotion.mode: approval``): four eyes before production.

A candidate that passed every gate does not become champion: it gets the registry alias ``staging``
and an ``approval_request`` record in the decision log, bound to an **evidence digest** (sha256 over
the model artifacts' sha256 manifest, every gate verdict recorded under the current policy, the
policy sha256 and the training data md5). :func:`decide` records an ``approval`` or an
``approval_rejection``; when ``approvals_required`` distinct people have approved, the champion moves
once, through the promotion transaction, and its ``promotion`` record cites the request and every
approval. Refused (exit 1, nothing recorded): the trainer or requester approving their own version
(separation of duties), someone outside ``approvers``, a second approval by the same person, no
pending request. Recorded as ``approval_lapsed`` and refused: an expired request, an approval whose
evidence changed since the request (void; the message names what changed), a request superseded by
a newer one. Everything runs under the promotion lock, after the same recovery as a promotion.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.audit.decision_log import DecisionLog, Record
from mlgov_assets.core.errors import Refusal
from mlgov_assets.core.governance.approval_evidence import (
    ApprovalRequest,
    Evidence,
    PendingApproval,
    approvals_of,
    current_evidence,
    open_requests,
)
from mlgov_assets.core.governance.policy import Policy
from mlgov_assets.core.governance.promotion import (
    PromotionDecision,
    PromotionRefused,
    ensure_compared_with_current,
    promote,
    promote_locked,
    refuse_promotion,
    require_log_ok,
    stale_comparison,
)
from mlgov_assets.core.governance.transaction import explained_write_errors, promotion_lock

if TYPE_CHECKING:
    from mlgov_assets.core.models.registry import Registry

__all__ = [
    "STAGING",
    "ApprovalOutcome",
    "ApprovalRefused",
    "ApprovalRequest",
    "Evidence",
    "PendingApproval",
    "champion_step",
    "current_evidence",
    "decide",
    "pending",
    "request_approval",
    "staged_version",
]

STAGING = "staging"
STATUS_TAG = "mlgov.approval_status"


class ApprovalRefused(Refusal):
    """An approval or rejection that may not be recorded (exit 1)."""


class ApprovalOutcome(BaseModel):
    """What a request, approval or rejection did (``mlgov approve --json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["requested", "already_requested", "already_champion", "approved", "rejected", "promoted"]
    model_name: str
    version: int
    approved_by: list[str]
    approvals_required: int
    champion: int | None
    promoted: bool
    expires_at: str | None
    message: str


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


def _log(registry: Registry) -> DecisionLog:
    return DecisionLog(registry.settings.decision_log)


def pending(registry: Registry, *, now: datetime | None = None) -> list[PendingApproval]:
    """Every open approval request of the registry's model (read-only; no lock)."""
    records = _log(registry).read(model_name=registry.name)
    at = _now(now)
    return [
        PendingApproval(
            version=req.version,
            request_index=rec.index,
            approved_by=[a.actor for a in approvals_of(records, rec.hash)],
            approvals_required=req.approvals_required,
            requested_by=req.requested_by,
            trained_by=req.trained_by,
            expires_at=req.expires_at,
            expired=at > datetime.fromisoformat(req.expires_at),
            evidence_sha256=req.evidence_sha256,
        )
        for rec, req in open_requests(records, registry.name)
    ]


# --------------------------------------------------------------------------- registry side


def _alias(registry: Registry, alias: str) -> int | None:
    from mlflow.exceptions import MlflowException

    try:
        return int(registry.client.get_model_version_by_alias(registry.name, alias).version)
    except MlflowException:
        return None


def staged_version(registry: Registry) -> int | None:
    """The version the ``staging`` alias names (approval mode: awaiting approval), or None."""
    return _alias(registry, STAGING)


def _unstage(registry: Registry, version: int) -> None:
    if _alias(registry, STAGING) == version:
        registry.client.delete_registered_model_alias(registry.name, STAGING)


def _tag(registry: Registry, version: int, text: str) -> None:
    registry.client.set_model_version_tag(registry.name, str(version), STATUS_TAG, text[:4000])


def _close(registry: Registry, rec: Record, req: ApprovalRequest, why: str, *, actor: str) -> None:
    """Record that the request ``rec`` lapsed (expired, void or superseded) and unstage its version."""
    _log(registry).append(
        "approval_lapsed",
        actor=actor,
        reason=why,
        model_name=registry.name,
        model_version=req.version,
        payload={"request_hash": rec.hash, "request_index": rec.index},
        evidence_hashes={"policy_sha256": req.evidence.policy_sha256, "evidence_sha256": req.evidence_sha256},
    )
    _unstage(registry, req.version)
    _tag(registry, req.version, f"lapsed: {why}")


# --------------------------------------------------------------------------- request


def request_approval(
    registry: Registry,
    policy: Policy,
    version: int,
    *,
    actor: str,
    requested_by: str,
    reevaluate: bool = False,
    dagster_run_id: str | None = None,
    now: datetime | None = None,
) -> ApprovalOutcome:
    """Stage ``version`` (alias ``staging``) and open an approval request, if it passed every gate
    (else the refusal is logged and raised, as for a promotion). An identical open request is
    returned as it is; any other open request of the model is closed as superseded."""
    rules = policy.promotion
    if version < 1 or version not in registry.versions():
        raise PromotionRefused(f"version {version} of {registry.name} is not registered (have {registry.versions()})")
    with (
        explained_write_errors(f"approval request for version {version}"),
        promotion_lock(registry, purpose=f"request approval of version {version} of {registry.name} ({actor})"),
    ):
        require_log_ok(registry, actor=actor)
        current = registry.champion_version()
        if current == version:
            return _outcome(registry, "already_champion", version, [], rules.approvals_required, None, current)
        ensure_compared_with_current(
            registry,
            policy,
            version,
            current,
            reevaluate=reevaluate,
            overriding=False,
            actor=actor,
            dagster_run_id=dagster_run_id,
        )
        blockers = registry.promotion_blockers(version, policy.required_model_gates(), policy.sha256)
        if blockers:
            raise refuse_promotion(registry, policy, version, blockers, actor=actor, dagster_run_id=dagster_run_id)
        ev, at = current_evidence(registry, policy.sha256, version), _now(now)
        records = _log(registry).read(model_name=registry.name)
        for rec, req in open_requests(records, registry.name):
            fresh = at <= datetime.fromisoformat(req.expires_at)
            if req.version == version and req.evidence_sha256 == ev.sha256 and fresh:
                registry.client.set_registered_model_alias(registry.name, STAGING, str(version))
                names = [a.actor for a in approvals_of(records, rec.hash)]
                return _outcome(registry, "already_requested", version, names, req.approvals_required, req, current)
            why = f"superseded by a new approval request for version {version}" if fresh else "expired"
            _close(registry, rec, req, why, actor=actor)
        req = ApprovalRequest(
            version=version,
            evidence=ev,
            evidence_sha256=ev.sha256,
            approvals_required=rules.approvals_required,
            approvers=rules.approvers,
            approver_groups=rules.groups_named(),
            separation_of_duties=rules.separation_of_duties,
            trained_by=registry.version_info(version).tags.get("mlgov.trained_by"),
            requested_by=requested_by,
            requested_at=at.isoformat(),
            expires_at=(at + timedelta(hours=rules.expires_after_hours)).isoformat(),
            staging_before=_alias(registry, STAGING),
            dagster_run_id=dagster_run_id,
        )
        _log(registry).append(
            "approval_request",
            actor=actor,
            reason=f"version {version} passed every gate of policy {policy.sha256[:12]}: staged; "
            f"{rules.approvals_required} approval(s) needed before it becomes champion",
            model_name=registry.name,
            model_version=version,
            payload=req.model_dump(mode="json"),
            evidence_hashes={"policy_sha256": policy.sha256, "evidence_sha256": ev.sha256},
        )
        registry.client.set_registered_model_alias(registry.name, STAGING, str(version))
        _tag(registry, version, f"pending: 0/{rules.approvals_required} approvals, expires {req.expires_at}")
    return _outcome(registry, "requested", version, [], rules.approvals_required, req, current)


def _outcome(
    registry: Registry,
    action: str,
    version: int,
    names: list[str],
    required: int,
    req: ApprovalRequest | None,
    champion: int | None,
    message: str = "",
) -> ApprovalOutcome:
    words = {
        "requested": f"version {version} is staged; it needs {required} approval(s): mlgov approve --version {version}",
        "already_requested": f"version {version} is already staged and awaiting approval ({len(names)}/{required})",
        "already_champion": f"version {version} is already champion (nothing to do)",
    }
    return ApprovalOutcome.model_validate(
        {
            "action": action,
            "model_name": registry.name,
            "version": version,
            "approved_by": names,
            "approvals_required": required,
            "champion": champion,
            "promoted": action == "promoted",
            "expires_at": req.expires_at if req else None,
            "message": message or words.get(action, action),
        }
    )


# --------------------------------------------------------------------------- approve / reject


def _who_may_not(req: ApprovalRequest, policy: Policy, actor: str, names: list[str], what: str) -> str | None:
    rules = policy.promotion
    if rules.separation_of_duties and actor in (req.trained_by, req.requested_by):
        role = "trained" if actor == req.trained_by else "requested the promotion of"
        return f"{actor} {role} version {req.version}: separation of duties forbids them to {what} it"
    if rules.approver_basis(actor) is None:
        return f"{actor} is not an approver under the policy (approvers: {', '.join(rules.approvers)})"
    if actor in names:
        return f"{actor} has already approved version {req.version}: approvals must come from distinct people"
    return None


def _ready_to_move(registry: Registry, policy: Policy, version: int) -> str | None:
    """Why the final approval could not move the champion now (checked before it is recorded)."""
    stale = stale_comparison(registry, policy, version, registry.champion_version())
    if stale:
        return f"{stale}: re-evaluate it (`mlgov promote --version {version}` requests approval afresh)"
    blockers = registry.promotion_blockers(version, policy.required_model_gates(), policy.sha256)
    return "; ".join(blockers) or None


def decide(
    registry: Registry,
    policy: Policy,
    version: int,
    decision: Literal["approve", "reject"],
    *,
    actor: str,
    reason: str,
    via: str = "",
    dagster_run_id: str | None = None,
    now: datetime | None = None,
) -> ApprovalOutcome:
    """Record ``actor``'s approval or rejection of the pending request for ``version``; the approval
    that completes the quorum moves the champion (once, citing every approval). Raises
    :class:`ApprovalRefused` (exit 1) with one sentence when it may not be recorded."""
    if not reason.strip() or not actor.strip():
        raise ApprovalRefused(f"an {decision} needs a reason and an identity (both are recorded)")
    with (
        explained_write_errors(f"{decision} of version {version}"),
        promotion_lock(registry, purpose=f"{decision} version {version} of {registry.name} ({actor})"),
    ):
        require_log_ok(registry, actor=actor)
        log = _log(registry)
        records = log.read(model_name=registry.name)
        found = [(r, q) for r, q in open_requests(records, registry.name) if q.version == version]
        if not found:
            others = sorted({q.version for _, q in open_requests(records, registry.name)})
            hint = f" (pending: version(s) {others})" if others else ""
            raise ApprovalRefused(f"no pending approval request for version {version} of {registry.name}{hint}")
        rec, req = found[-1]
        if _now(now) > datetime.fromisoformat(req.expires_at):
            _close(registry, rec, req, f"expired at {req.expires_at} before enough approvals", actor=actor)
            raise ApprovalRefused(
                f"the approval request for version {version} expired at {req.expires_at} and has lapsed; "
                f"`mlgov promote --version {version}` requests approval again"
            )
        prior = approvals_of(records, rec.hash)
        names = [a.actor for a in prior]
        # quorum already recorded (the final approver's process died before the move): anyone's
        # `approve` completes the move on the recorded approvals, adding none
        interrupted = decision == "approve" and len(prior) >= req.approvals_required
        problem = None if interrupted else _who_may_not(req, policy, actor, names, decision)
        if problem:
            raise ApprovalRefused(problem)
        cite = {"request_hash": rec.hash, "request_index": rec.index, "via": via, "dagster_run_id": dagster_run_id}
        hashes = {"policy_sha256": req.evidence.policy_sha256, "evidence_sha256": req.evidence_sha256}
        if decision == "reject":
            log.append(
                "approval_rejection",
                actor=actor,
                reason=reason,
                model_name=registry.name,
                model_version=version,
                payload=cite,
                evidence_hashes=hashes,
            )
            _unstage(registry, version)
            _tag(registry, version, f"rejected by {actor}: {reason}")
            return _outcome(
                registry,
                "rejected",
                version,
                names,
                req.approvals_required,
                req,
                registry.champion_version(),
                f"version {version} rejected by {actor}; the request is closed and the champion unchanged",
            )
        ev = current_evidence(registry, policy.sha256, version)
        if ev.sha256 != req.evidence_sha256:
            changed = "; ".join(req.evidence.changes(ev))
            _close(registry, rec, req, f"void: changed since the request: {changed}", actor=actor)
            raise ApprovalRefused(
                f"approval void: {changed} changed since version {version}'s approval request (record "
                f"{rec.index}); the request has lapsed: re-run the training path (or `mlgov promote "
                f"--version {version}`) to request approval of the evidence as it is now"
            )
        final = len(prior) + 1 >= req.approvals_required
        blocked = _ready_to_move(registry, policy, version) if final else None
        if blocked:
            raise ApprovalRefused(f"version {version} cannot become champion now: {blocked}")
        if not interrupted:
            prior = [
                *prior,
                log.append(
                    "approval",
                    actor=actor,
                    reason=reason,
                    model_name=registry.name,
                    model_version=version,
                    payload=cite | {"evidence": ev.model_dump(), "approver_basis": req.approver_basis(actor)},
                    evidence_hashes=hashes,
                ),
            ]
            names = [*names, actor]
        if not final:
            _tag(registry, version, f"pending: {len(names)}/{req.approvals_required} approvals ({', '.join(names)})")
            return _outcome(
                registry,
                "approved",
                version,
                names,
                req.approvals_required,
                req,
                registry.champion_version(),
                f"approval {len(names)} of {req.approvals_required} for version {version} recorded; champion unchanged",
            )
        moved = promote_locked(
            registry,
            policy,
            version,
            actor=actor,
            reason=f"approved by {', '.join(names)} (evidence {req.evidence_sha256[:12]})",
            dagster_run_id=dagster_run_id,
            approval=(rec.hash, [a.hash for a in prior]),
        )
        _unstage(registry, version)
        _tag(registry, version, f"approved by {', '.join(names)}; champion")
    return _outcome(
        registry,
        "promoted",
        version,
        names,
        req.approvals_required,
        req,
        moved.champion,
        f"version {version} is champion: approved by {', '.join(names)}",
    )


def champion_step(
    registry: Registry,
    policy: Policy,
    version: int,
    *,
    actor: str,
    requested_by: str,
    reason: str,
    reevaluate: bool = False,
    dagster_run_id: str | None = None,
) -> tuple[PromotionDecision, ApprovalOutcome | None]:
    """What the ``champion`` step does with a version that should become champion: promote it
    (``automatic``) or stage it and request approval (``approval``; the champion does not move)."""
    if policy.promotion.mode == "automatic":
        moved = promote(
            registry, policy, version, actor=actor, reason=reason, reevaluate=reevaluate, dagster_run_id=dagster_run_id
        )
        return moved, None
    out = request_approval(
        registry,
        policy,
        version,
        actor=actor,
        requested_by=requested_by,
        reevaluate=reevaluate,
        dagster_run_id=dagster_run_id,
    )
    unmoved = PromotionDecision(promoted=False, champion=out.champion, previous=out.champion, reason=out.message)
    return unmoved, out
