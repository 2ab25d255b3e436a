"""Staged promotion with human approval, against a real MLflow store and decision log.

Version 1 is champion (promoted automatically before the policy switched to approval mode);
version 2 passed every gate, was trained by ``carol`` and is put up for approval by ``ci``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from mlgov_assets.core.audit.decision_log import DecisionLog, Record
from mlgov_assets.core.audit.lineage.approvals import approval_problems, citation_problems
from mlgov_assets.core.audit.lineage.audit import verify_against_registry
from mlgov_assets.core.audit.lineage.gather import published_heads
from mlgov_assets.core.governance.approval import STAGING, ApprovalRefused, decide, pending, request_approval
from mlgov_assets.core.governance.policy import PolicyError, load_policy, parse_policy
from mlgov_assets.core.governance.promotion import promote, record_gates
from mlgov_assets.core.governance.transaction import consistency_problems
from mlgov_tests.core.governance import _promo_harness as h

APPROVAL = {"mode": "approval", "approvals_required": 2, "expires_after_hours": 24}


def _policy(path: Path, **promotion: object) -> Path:
    data = yaml.safe_load(path.read_text())
    data["promotion"] = {**APPROVAL, **promotion}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("approval")
    policy = _policy(h.write_policy(root / "policy.yaml"))
    home = root / "home"
    before = os.environ.get("MLGOV_ACTOR")
    os.environ["MLGOV_ACTOR"] = "carol"  # the trainer, recorded as mlgov.trained_by at registration
    try:
        h.make_versions(h.registry(home), policy, 2)
    finally:
        os.environ.pop("MLGOV_ACTOR") if before is None else os.environ.update(MLGOV_ACTOR=before)
    h.compared_with_current(h.registry(home), policy, 1)
    promote(h.registry(home), load_policy(policy), 1, actor="setup", reason="setup")
    h.compared_with_current(h.registry(home), policy, 2)
    return home, policy


@pytest.fixture
def store(template, tmp_path):
    home, policy = template
    shutil.copytree(home, tmp_path / "home")
    shutil.copyfile(policy, tmp_path / "policy.yaml")
    reg = h.registry(tmp_path / "home")
    return reg, tmp_path / "policy.yaml"


def _records(reg, *kinds: str) -> list[Record]:
    return DecisionLog(reg.settings.decision_log).read(model_name=reg.name, kinds=kinds or None)


def _request(reg, policy_path: Path, **kw):
    return request_approval(reg, load_policy(policy_path), 2, actor="ci (pipeline)", requested_by="ci", **kw)


def _approve(reg, policy_path: Path, who: str, **kw):
    return decide(reg, load_policy(policy_path), 2, "approve", actor=who, reason=f"{who} read the evidence", **kw)


@contextlib.contextmanager
def _tampered(reg, version: int = 2) -> Iterator[None]:
    """One artifact file of ``version`` changed (the store's copies share the template's model files:
    restored afterwards)."""
    model_dir = Path(reg.version_info(version).tags["mlgov.model_dir"])
    target = next(p for p in sorted(model_dir.rglob("*")) if p.is_file())
    original = target.read_bytes()
    target.write_bytes(original + b"\n")
    try:
        yield
    finally:
        target.write_bytes(original)


def _staging(reg) -> int | None:
    from mlgov_assets.core.governance.approval import _alias

    return _alias(reg, STAGING)


def test_policy_defaults_to_automatic_and_refuses_bad_keys():
    p = parse_policy("policy_version: 1\n")
    assert p.promotion.mode == "automatic" and p.promotion.separation_of_duties
    ok = parse_policy("policy_version: 1\npromotion: {mode: approval, approvals_required: 2, expires_after_hours: 8}")
    assert ok.promotion.approvals_required == 2 and ok.promotion.expires_after_hours == 8.0
    with pytest.raises(PolicyError, match="approvals_required"):
        parse_policy("policy_version: 1\npromotion: {approvals_required: 0}")
    with pytest.raises(PolicyError, match="unknown key"):
        parse_policy("policy_version: 1\npromotion: {quorum: 2}")


def test_gates_passed_stages_the_version_and_leaves_the_champion(store):
    reg, policy = store
    out = _request(reg, policy)
    assert out.action == "requested" and out.champion == 1
    assert reg.champion_version() == 1 and _staging(reg) == 2
    (req,) = _records(reg, "approval_request")
    assert req.payload["trained_by"] == "carol" and req.payload["approvals_required"] == 2
    assert [(p.version, p.approved_by, p.approvals_required) for p in pending(reg)] == [(2, [], 2)]
    assert _request(reg, policy).action == "already_requested"  # idempotent: one request
    assert len(_records(reg, "approval_request")) == 1


def test_one_approval_of_two_leaves_the_champion(store):
    reg, policy = store
    _request(reg, policy)
    out = _approve(reg, policy, "alice")
    assert out.action == "approved" and out.approved_by == ["alice"] and not out.promoted
    assert reg.champion_version() == 1 and _staging(reg) == 2
    with pytest.raises(ApprovalRefused, match="already approved"):
        _approve(reg, policy, "alice")


@pytest.mark.parametrize(("who", "role"), [("carol", "trained"), ("ci", "requested")])
def test_the_trainer_or_requester_may_not_approve(store, who, role):
    reg, policy = store
    _request(reg, policy)
    with pytest.raises(ApprovalRefused, match=f"{who} {role}.*separation of duties"):
        _approve(reg, policy, who)
    assert _records(reg, "approval") == []


def test_only_listed_approvers_may_approve(store):
    reg, policy = store
    _request(reg, policy)
    _policy(policy, approvers=["alice", "bob"])  # who may approve is checked before the evidence
    with pytest.raises(ApprovalRefused, match="mallory is not an approver"):
        _approve(reg, policy, "mallory")


def test_policy_groups_must_exist_and_have_members():
    with pytest.raises(PolicyError, match="approver_groups does not define"):
        parse_policy("policy_version: 1\npromotion: {mode: approval, approvers: ['group:risk']}\n")
    with pytest.raises(PolicyError, match="have no members"):
        parse_policy("policy_version: 1\npromotion: {approvers: ['group:risk'], approver_groups: {risk: []}}\n")
    p = parse_policy(
        "policy_version: 1\npromotion: {mode: approval, approvers: [alice, 'group:risk'],"
        " approver_groups: {risk: [bob, erin], unused: [zed]}}\n"
    ).promotion
    assert p.groups_named() == {"risk": ["bob", "erin"]}
    assert [p.approver_basis(a) for a in ("alice", "erin", "zed")] == ["named", "group:risk", None]


def test_group_members_approve_and_the_record_says_why(store):
    reg, policy = store
    _policy(policy, approvers=["alice", "group:model-risk"], approver_groups={"model-risk": ["bob", "erin"]})
    p = load_policy(policy)  # the gates judged under this policy (what a training run under it records)
    record_gates(reg, p, 2, [h._passed(p, g, 1) for g in p.required_model_gates()], actor="test setup")
    _request(reg, policy)
    with pytest.raises(ApprovalRefused, match="mallory is not an approver"):
        _approve(reg, policy, "mallory")
    _approve(reg, policy, "erin")
    out = _approve(reg, policy, "alice")
    assert out.promoted and reg.champion_version() == 2
    req = _records(reg, "approval_request")[-1]
    assert req.payload["approver_groups"] == {"model-risk": ["bob", "erin"]}
    assert [a.payload["approver_basis"] for a in _records(reg, "approval")] == ["group:model-risk", "named"]
    assert approval_problems(reg, _records(reg)) == []
    # an approval by someone outside the request's rules (a forged record) is named by the audit
    records = _records(reg)
    forged = [
        r if r.kind != "approval" or r.actor != "erin" else r.model_copy(update={"actor": "zed"}) for r in records
    ]
    assert any("zed, not approvers" in m for m in citation_problems(forged, reg.name, 2))


def test_second_approver_moves_the_champion_once_citing_both(store):
    reg, policy = store
    _request(reg, policy)
    _approve(reg, policy, "alice")
    out = _approve(reg, policy, "bob")
    assert out.action == "promoted" and out.promoted and out.approved_by == ["alice", "bob"]
    assert reg.champion_version() == 2 and _staging(reg) is None
    approvals = _records(reg, "approval")
    assert [a.actor for a in approvals] == ["alice", "bob"]
    moves = [r for r in _records(reg, "promotion") if r.model_version == "2"]
    assert len(moves) == 1
    assert moves[0].payload["approvals"] == [a.hash for a in approvals]
    assert moves[0].payload["approval_request"] == _records(reg, "approval_request")[0].hash
    assert consistency_problems(reg, _records(reg)) == [] and approval_problems(reg, _records(reg)) == []
    assert pending(reg) == []
    with pytest.raises(ApprovalRefused, match="no pending approval request for version 2"):
        _approve(reg, policy, "dave")
    assert len([r for r in _records(reg, "promotion") if r.model_version == "2"]) == 1


def test_a_policy_change_after_an_approval_voids_it(store):
    reg, policy = store
    _request(reg, policy)
    _approve(reg, policy, "alice")
    data = yaml.safe_load(policy.read_text())
    data["description"] = "tightened after review"
    policy.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ApprovalRefused, match=r"approval void: .*the policy .*changed since"):
        _approve(reg, policy, "bob")
    (lapsed,) = _records(reg, "approval_lapsed")
    assert lapsed.reason.startswith("void") and "the policy" in lapsed.reason
    assert reg.champion_version() == 1 and _staging(reg) is None and pending(reg) == []


def test_a_tampered_artifact_voids_the_approval_and_names_the_artifacts(store):
    reg, policy = store
    _request(reg, policy)
    with _tampered(reg), pytest.raises(ApprovalRefused, match=r"approval void: the model artifacts"):
        _approve(reg, policy, "alice")
    assert reg.champion_version() == 1


def test_a_rejection_ends_the_request(store):
    reg, policy = store
    _request(reg, policy)
    out = decide(reg, load_policy(policy), 2, "reject", actor="alice", reason="calibration looks off")
    assert out.action == "rejected" and reg.champion_version() == 1 and _staging(reg) is None
    assert [r.actor for r in _records(reg, "approval_rejection")] == ["alice"]
    with pytest.raises(ApprovalRefused, match="no pending approval request"):
        _approve(reg, policy, "bob")


def test_an_expired_request_lapses(store):
    reg, policy = store
    _request(reg, policy)
    later = datetime.now(UTC) + timedelta(hours=25)
    with pytest.raises(ApprovalRefused, match=r"expired .* lapsed"):
        _approve(reg, policy, "alice", now=later)
    (lapsed,) = _records(reg, "approval_lapsed")
    assert "expired" in lapsed.reason
    assert reg.champion_version() == 1 and _staging(reg) is None and pending(reg) == []


def test_audit_verifies_approvals_and_detects_an_edited_one(store):
    reg, policy = store
    _request(reg, policy)
    _approve(reg, policy, "alice")
    _approve(reg, policy, "bob")
    path = reg.settings.decision_log
    assert verify_against_registry(reg, path, published_heads(reg)).ok
    records = _records(reg)
    assert citation_problems(records, reg.name, 2) == []
    first = next(r for r in records if r.kind == "approval")
    missing = citation_problems([r for r in records if r.hash != first.hash], reg.name, 2)
    assert any("1 approval(s) missing" in m for m in missing) and any("1 distinct approval" in m for m in missing)
    lines = path.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if json.loads(line)["kind"] == "approval")
    edited = json.loads(lines[at]) | {"actor": "carol"}
    path.write_text("\n".join([*lines[:at], json.dumps(edited), *lines[at + 1 :]]) + "\n")
    res = verify_against_registry(reg, path, published_heads(reg))
    assert not res.ok and res.first_bad_index == at and "edited" in str(res.problem)


def test_audit_detects_a_champion_whose_approved_artifacts_changed(store):
    reg, policy = store
    _request(reg, policy)
    _approve(reg, policy, "alice")
    _approve(reg, policy, "bob")
    assert approval_problems(reg, _records(reg)) == []
    with _tampered(reg):
        problems = approval_problems(reg, _records(reg))
    assert any("no longer matches its approval: the model artifacts" in p for p in problems)


def test_a_final_approval_whose_move_died_is_completed_by_the_next_approve(store, monkeypatch):
    from mlgov_assets.core.governance import approval

    reg, policy = store
    _request(reg, policy)
    _approve(reg, policy, "alice")
    real = approval.promote_locked

    def dies(*args, **kwargs):
        raise RuntimeError("process killed between the approval record and the move")

    monkeypatch.setattr(approval, "promote_locked", dies)
    with pytest.raises(RuntimeError):
        _approve(reg, policy, "bob")
    assert reg.champion_version() == 1 and [a.actor for a in _records(reg, "approval")] == ["alice", "bob"]
    monkeypatch.setattr(approval, "promote_locked", real)
    out = _approve(reg, policy, "dave")  # adds no approval: completes the move on the recorded quorum
    assert out.action == "promoted" and out.approved_by == ["alice", "bob"] and reg.champion_version() == 2
    (move,) = [r for r in _records(reg, "promotion") if r.model_version == "2"]
    assert move.payload["approvals"] == [a.hash for a in _records(reg, "approval")]
    assert approval_problems(reg, _records(reg)) == []


def test_the_staged_version_is_the_shadow_in_batch_scoring(store):
    from mlgov_assets.core.monitoring.scoring import latest_challenger

    reg, policy = store
    _request(reg, policy)
    h.make_versions(reg, policy, 1)  # a newer version 3 is registered meanwhile
    assert latest_challenger(reg, 1) == 2  # the one awaiting approval, not merely the newest
    decide(reg, load_policy(policy), 2, "reject", actor="alice", reason="no")
    assert latest_challenger(reg, 1) == 3
