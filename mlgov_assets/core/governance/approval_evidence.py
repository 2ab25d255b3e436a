"""What an approval approves, and the approval records as the decision log holds them.

An approval binds to an **evidence digest**: sha256 over the model artifacts' sha256 manifest (re-hashed
from disk), every gate verdict recorded under the current policy, the policy sha256 and the training
data md5. :class:`Evidence` keeps the parts, so a void approval can say which one changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError

from mlgov_assets.core.audit.decision_log import Record
from mlgov_assets.core.errors import MlgovError
from mlgov_assets.core.governance.policy import Promotion
from mlgov_assets.core.integrity import canonical_hash, manifest_digest

if TYPE_CHECKING:
    from mlgov_assets.core.models.registry import Registry

__all__ = [
    "CLOSING",
    "PARTS",
    "ApprovalRequest",
    "Evidence",
    "PendingApproval",
    "approvals_of",
    "current_evidence",
    "open_requests",
    "request_of",
]

CLOSING = ("approval_rejection", "approval_lapsed")

#: What each part of the evidence is, in the words a refusal uses.
PARTS = {
    "artifacts_sha256": "the model artifacts (sha256 manifest)",
    "gates_sha256": "the gate verdicts",
    "policy_sha256": "the policy",
    "data_md5": "the training data (md5)",
}


class Evidence(BaseModel):
    """What an approval approves: the parts of the evidence digest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    artifacts_sha256: str
    gates_sha256: str
    policy_sha256: str
    data_md5: str

    @property
    def sha256(self) -> str:
        return canonical_hash(self.model_dump())

    def changes(self, now: Evidence) -> list[str]:
        """Which parts differ between this (approved) evidence and ``now``, in words."""
        mine, theirs = self.model_dump(), now.model_dump()
        return [f"{PARTS[k]} ({mine[k][:12]} -> {theirs[k][:12]})" for k in PARTS if mine[k] != theirs[k]]


class ApprovalRequest(BaseModel):
    """The payload of an ``approval_request`` record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    evidence: Evidence
    evidence_sha256: str
    approvals_required: int
    approvers: list[str]
    #: the groups ``approvers`` names, with their members when the request was made
    approver_groups: dict[str, list[str]] = {}
    separation_of_duties: bool
    trained_by: str | None
    requested_by: str
    requested_at: str
    expires_at: str
    staging_before: int | None
    dagster_run_id: str | None

    def approver_basis(self, actor: str) -> str | None:
        """Why ``actor`` could approve under the rules recorded in this request (None: they could not)."""
        rules = Promotion(mode="approval", approvers=self.approvers, approver_groups=self.approver_groups)
        return rules.approver_basis(actor)


class PendingApproval(BaseModel):
    """An open request as ``mlgov status`` shows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    request_index: int
    approved_by: list[str]
    approvals_required: int
    requested_by: str
    trained_by: str | None
    expires_at: str
    expired: bool
    evidence_sha256: str


def current_evidence(registry: Registry, policy_sha256: str, version: int) -> Evidence:
    """The evidence of ``version`` as it is now (artifacts re-hashed from disk)."""
    try:
        artifacts = manifest_digest(registry.verify_artifacts(version))
    except (MlgovError, OSError) as exc:  # tampered or missing files: the digest cannot match
        artifacts = "unverifiable: " + canonical_hash({"problem": str(exc)})
    gates = {
        name: {"passed": g.passed, "policy_sha256": g.policy_sha256, "summary": g.summary}
        for name, g in sorted(registry.gate_records(version).items())
        if g.policy_sha256 == policy_sha256
    }
    tags = registry.version_info(version).tags
    return Evidence(
        artifacts_sha256=artifacts,
        gates_sha256=canonical_hash(gates),
        policy_sha256=policy_sha256,
        data_md5=tags.get("mlgov.train_data_md5", ""),
    )


# --------------------------------------------------------------------------- reading the log


def request_of(rec: Record) -> ApprovalRequest | None:
    try:
        return ApprovalRequest.model_validate(rec.payload)
    except ValidationError:
        return None


def open_requests(records: list[Record], model_name: str) -> list[tuple[Record, ApprovalRequest]]:
    """Requests of ``model_name`` that no rejection, lapse or promotion closed, oldest first."""
    closed = {r.payload.get("request_hash") for r in records if r.kind in CLOSING}
    closed |= {r.payload.get("approval_request") for r in records if r.kind == "promotion"}
    out = []
    for r in records:
        if r.kind == "approval_request" and r.model_name == model_name and r.hash not in closed:
            req = request_of(r)
            if req is not None:
                out.append((r, req))
    return out


def approvals_of(records: list[Record], request_hash: str) -> list[Record]:
    return [r for r in records if r.kind == "approval" and r.payload.get("request_hash") == request_hash]
