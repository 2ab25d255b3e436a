"""Approval mode end to end through `mlgov` (real Dagster instance, MLflow store and decision log in tmp):
train -> staged, champion unchanged; the trainer's approval refused; one approval of two -> unchanged;
the second approver -> champion, once, citing both; the auditor's views (status, the champion asset's
metadata, `mlgov audit verify`) show it."""

from __future__ import annotations

import getpass
import json

import pytest
from dagster import AssetKey

from mlgov_assets.cli import main
from mlgov_assets.core.audit.decision_log import DecisionLog
from mlgov_tests.conftest import CORE_ONLY

APPROVAL = {"mode": "approval", "approvals_required": 2, "expires_after_hours": 48}


@pytest.fixture
def approval_env(env, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(env.home / "dagster"))
    monkeypatch.delenv("MLGOV_ACTOR", raising=False)
    env.use_policy(drop=CORE_ONLY, promotion=APPROVAL)
    return env


def _json(capsys) -> dict:
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])


def _as(monkeypatch, who: str | None) -> None:
    if who is None:
        monkeypatch.delenv("MLGOV_ACTOR", raising=False)
    else:
        monkeypatch.setenv("MLGOV_ACTOR", who)


def _champion_meta(env) -> dict:
    from mlgov_assets.instance import get_instance

    event = get_instance(env.settings()).get_latest_materialization_event(AssetKey(["adult", "champion"]))
    assert event is not None and event.asset_materialization is not None
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _candidate_observations(env) -> list[dict]:
    """The approval request's state as recorded on the candidate's asset page (observations)."""
    from dagster import DagsterEventType, EventRecordsFilter

    from mlgov_assets.instance import get_instance

    records = get_instance(env.settings()).get_event_records(
        EventRecordsFilter(DagsterEventType.ASSET_OBSERVATION, asset_key=AssetKey(["adult", "candidate_model"])),
        ascending=True,
    )
    events = [r.event_log_entry.dagster_event for r in records]
    obs = [e.asset_observation_data.asset_observation for e in events if e is not None and e.asset_observation_data]
    return [{k: v.value for k, v in o.metadata.items()} for o in obs]


def test_approval_mode_end_to_end(approval_env, monkeypatch, capsys):
    env = approval_env
    reg = env.registry()
    assert main(["train", "--set", "max_iter=60", "--set", "learning_rate=0.15"]) == 0
    out = capsys.readouterr().out
    assert "staged: version 1 awaits approval" in out
    assert reg.champion_version() is None and reg.version_info(1).aliases == ["staging"]
    assert reg.version_info(1).tags["mlgov.trained_by"] == getpass.getuser()
    meta = _champion_meta(env)
    assert meta["approval_pending"] is True and meta["staging_version"] == 1
    (seen,) = _candidate_observations(env)  # the candidate's own page says it waits
    assert seen["approval_pending"] is True and seen["approvals"].startswith("0/2")

    assert main(["status", "--json"]) == 0
    (req,) = _json(capsys)["approvals"]
    assert (req["version"], req["approved_by"], req["approvals_required"]) == (1, [], 2)
    assert main(["status"]) == 0
    assert "approval pending: version 1 [staging] 0/2 approvals" in capsys.readouterr().out

    # the trainer (the OS user who ran `mlgov train`) may not approve their own model
    assert main(["approve", "--version", "1", "--reason", "mine", "--json"]) == 1
    refused = _json(capsys)
    assert refused["refused"] is True and "separation of duties" in refused["error"]

    _as(monkeypatch, "alice")
    assert main(["approve", "--version", "1", "--reason", "metrics and fairness reviewed", "--json"]) == 0
    first = _json(capsys)
    assert (first["action"], first["approved_by"], first["promoted"]) == ("approved", ["alice"], False)
    assert reg.champion_version() is None
    assert main(["approve", "--version", "1", "--reason", "again"]) == 1
    assert "already approved" in capsys.readouterr().err

    _as(monkeypatch, "bob")
    assert main(["approve", "--version", "1", "--reason", "second pair of eyes", "--json"]) == 0
    second = _json(capsys)
    assert (second["action"], second["approved_by"], second["champion"]) == ("promoted", ["alice", "bob"], 1)
    assert reg.champion_version() == 1 and reg.version_info(1).aliases == ["champion"]

    log = DecisionLog(env.settings().decision_log)
    approvals = log.read(kinds=["approval"])
    assert [a.actor for a in approvals] == ["alice", "bob"]
    (promotion,) = log.read(kinds=["promotion"])
    assert promotion.payload["approvals"] == [a.hash for a in approvals]
    assert "as OS user" in approvals[0].payload["via"]
    meta = _champion_meta(env)
    assert meta["champion_version"] == 1 and meta["approval_pending"] is False
    assert [o["approval_pending"] for o in _candidate_observations(env)] == [True, True, False]

    assert main(["audit", "verify", "--json"]) == 0
    assert main(["audit", "champion", "--json"]) == 0
    capsys.readouterr()
    assert main(["audit", "cards", "--json"]) == 0  # the card lists who approved
    card = reg.artifact_text(reg.version_info(1).run_id, "model_card/model_card.md")
    assert card is not None and "Approved by: alice, bob." in card
    capsys.readouterr()
    assert main(["reject", "--version", "1", "--reason", "too late"]) == 1
    assert "no pending approval request for version 1" in capsys.readouterr().err


def test_the_champion_stays_auditable_while_a_newer_version_waits_for_approval(approval_env, monkeypatch, capsys):
    assert main(["train", "--set", "max_iter=60", "--set", "learning_rate=0.15"]) == 0
    for who in ("alice", "bob"):
        _as(monkeypatch, who)
        assert main(["approve", "--version", "1", "--reason", "reviewed"]) == 0
    _as(monkeypatch, None)
    assert main(["train", "--set", "max_iter=120", "--set", "learning_rate=0.15"]) == 0  # v2: staged
    reg = approval_env.registry()
    assert reg.champion_version() == 1 and reg.version_info(2).aliases == ["staging"]
    capsys.readouterr()
    assert main(["audit", "champion", "--json"]) == 0  # v1's lineage, not the newer staged run's
    assert main(["audit", "verify", "--json"]) == 0


def test_the_approval_api_takes_identity_only_from_the_proxy_header(approval_env, monkeypatch, capsys):
    """Behind an authenticating proxy: the approver is whoever the proxy's header names (separation of
    duties, quorum and groups checked on that identity by the same job as `mlgov approve`); a request
    without the header, or not from the proxy, is refused and records nothing."""
    from fastapi.testclient import TestClient

    from mlgov_assets.approval_api import create_app

    env = approval_env
    env.use_policy(
        drop=CORE_ONLY,
        promotion=APPROVAL | {"approvers": ["group:model-risk"], "approver_groups": {"model-risk": ["alice", "bob"]}},
    )
    assert main(["train", "--set", "max_iter=60", "--set", "learning_rate=0.15"]) == 0
    reg, trainer = env.registry(), getpass.getuser()
    log = DecisionLog(env.settings().decision_log)
    api = TestClient(create_app("X-Forwarded-User", trusted_proxies=["testclient"]))
    direct = TestClient(create_app("X-Forwarded-User", trusted_proxies=["10.0.0.5"]))
    body = {"decision": "approve", "reason": "reviewed the evidence"}

    assert direct.post("/approvals/1", json=body, headers={"X-Forwarded-User": "alice"}).status_code == 403
    assert api.post("/approvals/1", json=body).status_code == 401  # no identity from the proxy
    assert api.post("/approvals/1", json=body, headers={"X-Forwarded-User": "al\x07ice"}).status_code == 401
    assert api.post("/approvals/1", json={"decision": "maybe", "reason": "x"}).status_code == 422
    assert log.read(kinds=["approval"]) == []

    own = api.post("/approvals/1", json=body, headers={"X-Forwarded-User": trainer})
    assert own.status_code == 409 and "separation of duties" in own.json()["error"]
    outsider = api.post("/approvals/1", json=body, headers={"X-Forwarded-User": "mallory"})
    assert outsider.status_code == 409 and "not an approver" in outsider.json()["error"]

    pending = api.get("/approvals", headers={"X-Forwarded-User": "alice"}).json()
    assert [(p["version"], p["approved_by"]) for p in pending["approvals"]] == [(1, [])]
    first = api.post("/approvals/1", json=body, headers={"X-Forwarded-User": "alice"})
    assert first.status_code == 200 and first.json()["action"] == "approved" and reg.champion_version() is None
    second = api.post("/approvals/1", json=body, headers={"X-Forwarded-User": "bob"})
    assert second.status_code == 200 and second.json()["promoted"] and reg.champion_version() == 1
    approvals = log.read(kinds=["approval"])
    assert [(a.actor, a.payload["approver_basis"]) for a in approvals] == [
        ("alice", "group:model-risk"),
        ("bob", "group:model-risk"),
    ]
    assert all("identity from header X-Forwarded-User" in a.payload["via"] for a in approvals)
    capsys.readouterr()
    assert main(["audit", "verify", "--json"]) == 0
