"""The audit of approvals: a promotion made in approval mode is a link like any other, checked
against the decision log and the registry (``core/governance/approval``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mlgov_assets.core.audit.decision_log import Record
from mlgov_assets.core.governance.approval_evidence import PARTS, current_evidence, request_of
from mlgov_assets.core.governance.policy import file_sha256

if TYPE_CHECKING:
    from mlgov_assets.core.models.registry import Registry

__all__ = ["approval_problems", "citation_problems"]


def citation_problems(records: Sequence[Record], model_name: str, version: int | None = None) -> list[str]:
    """Promotions (of ``version``, or all) that cite approvals: the request and every approval exist,
    cite each other and the same evidence, and come from enough distinct people who did not train or
    request the version. Pure: the log alone."""
    by_hash = {r.hash: r for r in records}
    problems: list[str] = []
    for p in records:
        if p.kind != "promotion" or p.model_name != model_name or "approval_request" not in p.payload:
            continue
        if version is not None and p.model_version != str(version):
            continue
        where = f"promotion record {p.index} (version {p.model_version})"
        req_rec = by_hash.get(str(p.payload["approval_request"]))
        req = request_of(req_rec) if req_rec is not None and req_rec.kind == "approval_request" else None
        if req_rec is None or req is None or str(req.version) != p.model_version:
            problems.append(f"{where} cites an approval request that is not in the log for this version")
            continue
        cited = [by_hash.get(str(h)) for h in p.payload.get("approvals") or []]
        good = [
            a
            for a in cited
            if a is not None
            and a.kind == "approval"
            and a.payload.get("request_hash") == req_rec.hash
            and a.evidence_hashes.get("evidence_sha256") == req.evidence_sha256
        ]
        if len(good) != len(cited):
            problems.append(f"{where} cites {len(cited) - len(good)} approval(s) missing or not of its request")
        people = {a.actor for a in good}
        if len(people) < req.approvals_required:
            problems.append(f"{where} rests on {len(people)} distinct approval(s), {req.approvals_required} required")
        if req.separation_of_duties and people & {req.trained_by, req.requested_by}:
            problems.append(f"{where} was approved by the version's trainer or requester")
        outsiders = sorted(a for a in people if req.approver_basis(a) is None)
        if outsiders:
            problems.append(f"{where} was approved by {', '.join(outsiders)}, not approvers under its request's rules")
    return problems


def approval_problems(registry: Registry, records: Sequence[Record], policy_sha256: str | None = None) -> list[str]:
    """:func:`citation_problems` for every promotion of the registry's model, and the champion's
    evidence against what was approved (files always; verdicts unless a newer policy or a logged
    re-evaluation has judged it since)."""
    problems = citation_problems(records, registry.name)
    champion = registry.champion_version()
    moves = [r for r in records if r.kind == "promotion" and r.model_name == registry.name]
    last = next((r for r in reversed(moves) if r.model_version == str(champion)), None)
    if champion is None or last is None or "approval_request" not in last.payload:
        return problems
    req_rec = next((r for r in records if r.hash == last.payload["approval_request"]), None)
    req = request_of(req_rec) if req_rec is not None else None
    if req is None:
        return problems  # reported by the citation check
    path = registry.settings.policy_path
    policy_sha = policy_sha256 or (file_sha256(path) if path.is_file() else "")
    changed = req.evidence.changes(current_evidence(registry, policy_sha, champion))
    rejudged = policy_sha != req.evidence.policy_sha256 or any(
        r.kind == "gate_evaluation" and r.model_version == last.model_version and r.index > last.index for r in records
    )
    if rejudged:  # a newer policy or a logged re-evaluation may change the verdicts, never the files
        changed = [c for c in changed if c.startswith((PARTS["artifacts_sha256"], PARTS["data_md5"]))]
    if changed:
        problems.append(f"the champion's evidence no longer matches its approval: {'; '.join(changed)}")
    return problems
