"""Promotion and rollback as one crash-safe transaction, against a real MLflow store.

Each crash window is hit by killing a real subprocess (``MLGOV_FAULT=<point>`` -> ``os._exit(137)``,
no cleanup, as SIGKILL) at that point; the next process (status, promote, rollback) recovers
without hand repair, and the audit's registry-vs-log check agrees before (it sees the damage) and
after (consistent).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlgov_assets.core.audit.decision_log import DecisionLog, Record
from mlgov_assets.core.audit.lineage.audit import verify_against_registry
from mlgov_assets.core.audit.lineage.gather import published_heads
from mlgov_assets.core.governance.policy import load_policy
from mlgov_assets.core.governance.promotion import PromotionRefused, promote, rollback, status
from mlgov_assets.core.governance.transaction import consistency_problems
from mlgov_assets.core.locks import holding
from mlgov_tests.core.governance import _promo_harness as h

KILLED = 137


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, Path]:
    """Versions 1..3 registered, gates passed; 1 then 2 promoted (champion 2, history [1, 2]); 3 compared
    with champion 2, so it is ready to promote."""
    root = tmp_path_factory.mktemp("promo")
    policy = h.write_policy(root / "policy.yaml")
    home = root / "home"
    h.make_versions(h.registry(home), policy, 3)
    for v in (1, 2):
        h.compared_with_current(h.registry(home), policy, v)
        promote(h.registry(home), load_policy(policy), v, actor="setup", reason="setup")
    h.compared_with_current(h.registry(home), policy, 3)
    return home, policy


@pytest.fixture
def store(template, tmp_path) -> tuple[Path, Path]:
    """A copy of the template per test (every test changes its store)."""
    home, policy = template
    shutil.copytree(home, tmp_path / "home")
    return tmp_path / "home", policy


def _log(home: Path) -> DecisionLog:
    return DecisionLog(home / "audit" / "decisions.jsonl")


def _records(home: Path) -> list[Record]:
    return _log(home).read()


def _audit_ok(home: Path) -> tuple[bool, list[str]]:
    reg = h.registry(home)
    res = verify_against_registry(reg, reg.settings.decision_log, published_heads(reg))
    return res.ok, [*([res.problem] if res.problem else []), *res.witness_problems]


def _state(home: Path) -> tuple[int | None, list[int]]:
    st = h.registry(home).champion_state()
    return st.champion, st.history


def _killed(home: Path, policy: Path, fault: str, *args: str) -> None:
    res = h.run(home, policy, *args, fault=fault)
    assert res.returncode == KILLED, (res.returncode, res.stderr[-2000:])


def _recover(home: Path, policy: Path) -> None:
    status(h.registry(home), load_policy(policy))  # any later process: status recovers first


def test_a_clean_promotion_is_intent_then_commit_and_audits_clean(store):
    home, policy = store
    res = h.run(home, policy, "promote", "3")
    assert res.returncode == 0, res.stderr[-2000:]
    kinds = [r.kind for r in _records(home)][-2:]
    assert kinds == ["promotion_intent", "promotion"]
    commit = _records(home)[-1]
    assert commit.payload["intent_hash"] == _records(home)[-2].hash and commit.payload["recovered"] is False
    assert _state(home) == (3, [1, 2, 3]) and _audit_ok(home) == (True, [])


def test_killed_after_the_intent_nothing_moved_so_it_is_aborted(store):
    home, policy = store
    _killed(home, policy, "promotion.after_intent", "promote", "3")
    assert _state(home) == (2, [1, 2])
    ok, problems = _audit_ok(home)
    assert not ok and any("no commit" in p for p in problems)
    _recover(home, policy)
    last = _records(home)[-1]
    assert last.kind == "promotion_aborted" and "moved nothing" in last.reason
    assert _audit_ok(home) == (True, [])
    assert promote(h.registry(home), load_policy(policy), 3, actor="t", reason="again").promoted


def test_killed_between_history_and_alias_a_rollback_completes_it_first(store):
    home, policy = store
    _killed(home, policy, "promotion.after_history", "promote", "3")
    assert _state(home) == (2, [1, 2, 3])  # history and alias disagree
    assert not _audit_ok(home)[0]
    decision = rollback(h.registry(home), load_policy(policy), actor="t", reason="bad model")
    # the interrupted promotion of 3 was completed and committed, then rolled back 3 -> 2: a real move
    assert (decision.previous, decision.champion, decision.kind) == (3, 2, "rollback")
    kinds = [(r.kind, r.model_version, r.payload.get("recovered")) for r in _records(home)]
    assert ("promotion", "3", True) in kinds and kinds[-1] == ("rollback", "2", False)
    assert _state(home) == (2, [1, 2]) and _audit_ok(home) == (True, [])


@pytest.mark.parametrize("point", ["promotion.after_alias", "promotion.before_commit"])
def test_killed_between_the_alias_move_and_the_log_the_rerun_writes_the_record(store, point):
    home, policy = store
    _killed(home, policy, point, "promote", "3")
    assert _state(home)[0] == 3  # the champion moved with no promotion record ...
    ok, problems = _audit_ok(home)
    assert not ok and any("no commit" in p or "without a record" in p for p in problems)  # ... and audit says so
    again = promote(h.registry(home), load_policy(policy), 3, actor="t", reason="re-run")
    assert not again.promoted and "already champion" in again.reason
    commits = [r for r in _records(home) if r.kind == "promotion" and r.model_version == "3"]
    assert len(commits) == 1 and commits[0].payload["recovered"] is True
    assert _state(home) == (3, [1, 2, 3]) and _audit_ok(home) == (True, [])


@pytest.mark.parametrize("fault", ["decision_log.after_line", "decision_log.after_witness", "decision_log.torn_line"])
def test_killed_inside_the_intent_append_recovers_automatically(store, fault):
    home, policy = store
    before = _log(home).verify().count
    _killed(home, policy, fault, "promote", "3")
    assert not _log(home).verify().ok  # the window is real: the log is not consistent now
    _recover(home, policy)
    assert _log(home).verify().ok and _state(home) == (2, [1, 2])
    new = _records(home)[before:]
    if fault == "decision_log.torn_line":  # unwitnessed garbage: cut, its bytes kept and described
        assert [r.kind for r in new] == ["log_repair"]
        assert new[0].payload["dropped_bytes"] > 0 and len(str(new[0].payload["dropped_sha256"])) == 64
    else:  # the intent line was complete: anchors advanced (recorded), then the intent aborted
        assert [r.kind for r in new] == ["promotion_intent", "log_repair", "promotion_aborted"]
    assert _audit_ok(home) == (True, [])
    assert promote(h.registry(home), load_policy(policy), 3, actor="t", reason="again").promoted


def test_killed_inside_the_commit_append_is_completed(store):
    home, policy = store
    _killed(home, policy, "decision_log.after_line@2", "promote", "3")  # 1st append: intent; 2nd: commit
    assert not _log(home).verify().ok
    _recover(home, policy)
    assert _state(home) == (3, [1, 2, 3]) and _audit_ok(home) == (True, [])
    assert [r.kind for r in _records(home) if r.model_version == "3"][-2:] == ["promotion_intent", "promotion"]


def test_killed_inside_a_rollback_is_completed(store):
    home, policy = store
    _killed(home, policy, "promotion.after_alias", "rollback")
    assert _state(home) == (1, [1])
    _recover(home, policy)
    last = _records(home)[-1]
    assert (last.kind, last.payload["from_version"], last.payload["to_version"]) == ("rollback", 2, 1)
    assert _audit_ok(home) == (True, [])


def test_a_read_only_state_directory_gives_one_sentence_and_changes_nothing(store):
    home, policy = store
    log_bytes = (home / "audit" / "decisions.jsonl").read_bytes()
    res = h.run(home, policy, "promote", "3", fault="decision_log.before_line:erofs")
    assert res.returncode == 2
    message = res.stderr.strip().splitlines()[-1]
    assert "cannot write" in message and "did not move" in message and "Traceback" not in res.stderr
    assert (home / "audit" / "decisions.jsonl").read_bytes() == log_bytes
    assert _state(home) == (2, [1, 2]) and _audit_ok(home) == (True, [])


def test_a_live_holder_is_named_and_the_wait_is_bounded(store):
    home, policy = store
    lock = home / "locks" / "promotion.lock"
    with holding(lock, purpose="test holder"):
        env = {**os.environ, "MLGOV_LOCK_TIMEOUT": "1"}
        cmd = [sys.executable, "-m", "mlgov_tests.core.governance._promo_harness", str(home), str(policy), "rollback"]
        res = subprocess.run(cmd, cwd=h.REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 2
    assert f"pid {os.getpid()}" in res.stderr and "test holder" in res.stderr and "gave up after 1 s" in res.stderr
    assert _state(home) == (2, [1, 2])


def test_a_holder_killed_inside_the_lock_does_not_block_the_next_one(store):
    home, policy = store
    _killed(home, policy, "promotion.locked", "rollback")  # the start of the champion step
    res = h.run(home, policy, "rollback")
    assert res.returncode == 0, res.stderr[-2000:]
    assert _state(home) == (1, [1]) and _audit_ok(home) == (True, [])


def test_an_alias_moved_behind_the_logs_back_is_reported(store):
    home, _ = store
    reg = h.registry(home)
    reg.client.set_registered_model_alias(reg.name, "champion", "3")
    problems = consistency_problems(reg, _records(home))
    assert any("names version 3" in p and "make it 2" in p for p in problems)


def test_a_broken_log_refuses_promotion_with_a_sentence(store):
    home, policy = store
    path = home / "audit" / "decisions.jsonl"
    path.write_bytes(path.read_bytes()[:-20])  # a witnessed record torn: only `audit repair` may decide
    with pytest.raises(PromotionRefused, match="audit repair"):
        promote(h.registry(home), load_policy(policy), 3, actor="t", reason="r")
    assert _state(home) == (2, [1, 2])
    assert _log(home).repair(actor="t", reason="torn by a test") is not None
    assert _records(home)[-1].kind == "log_repair"
    assert promote(h.registry(home), load_policy(policy), 3, actor="t", reason="after repair").promoted


def test_an_mlflow_run_killed_mid_registration_is_ended_as_failed(store):
    home, policy = store
    _killed(home, policy, "registry.in_run", "register")
    reg = h.registry(home)
    exp = reg.client.get_experiment_by_name(reg.name)
    running = reg.client.search_runs([exp.experiment_id], filter_string="attributes.status = 'RUNNING'")
    assert len(running) == 1
    _recover(home, policy)
    run = reg.client.get_run(running[0].info.run_id)
    assert run.info.status == "FAILED" and "had died" in run.data.tags["mlgov.ended_by"]
