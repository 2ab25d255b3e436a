"""Promotions from two processes at once in the prod profile (database lock + compare-and-set through
the MLflow server): exactly one alias move, the other refused with a clear message, and the decision
log stays verifiable; a promoter killed while holding the lock never blocks the next one."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlgov_assets.core.audit.decision_log import DecisionLog
from mlgov_assets.core.governance.promotion import promote
from mlgov_tests.core.governance import _promo_harness as h

REPO = Path(__file__).resolve().parents[2]
KILLED = 137


def racer(version: int, start_at: float, **env: str) -> subprocess.Popen[str]:
    import os

    return subprocess.Popen(
        [sys.executable, "-m", "mlgov_tests.prod._promoter", str(version), str(start_at)],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cli(capsys, *argv: str) -> tuple[int, str]:
    from mlgov_assets.cli import main

    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture
def champion_one(prod_env):
    """Versions 1..3 on the server, gates passed; 1 is champion; 2 and 3 were compared with it."""
    reg = prod_env.registry()
    h.make_versions(reg, prod_env.policy, 3)
    h.compared_with_current(reg, prod_env.policy, 1)
    promote(reg, prod_env.policy_obj(), 1, actor="setup", reason="setup")
    for v in (2, 3):
        h.compared_with_current(reg, prod_env.policy, v)
    return prod_env


@pytest.mark.slow
def test_two_promotions_at_once_move_the_alias_exactly_once(champion_one, capsys):
    env = champion_one
    start_at = time.time() + 4.0  # both processes are up (imports done) before either promotes
    procs = {v: racer(v, start_at) for v in (2, 3)}
    outs = {v: (p.wait(timeout=300), *p.communicate()) for v, p in procs.items()}
    won = [v for v, (code, _, _) in outs.items() if code == 0]
    lost = [v for v, (code, _, _) in outs.items() if code != 0]
    assert len(won) == 1 and len(lost) == 1, outs
    winner, loser = won[0], lost[0]
    assert json.loads(outs[winner][1])["promoted"] is True
    code, _, err = outs[loser]
    assert code == 1, outs
    assert "ChampionChanged" in err and f"compared with champion 1, but the champion is now {winner}" in err, err
    reg = env.registry()
    assert reg.champion_state().champion == winner
    assert reg.champion_history() == [1, winner]  # one move after the setup's, not two
    records = DecisionLog(env.settings().decision_log).read()
    assert [r.model_version for r in records if r.kind == "promotion"] == ["1", str(winner)]
    assert DecisionLog(env.settings().decision_log).verify().ok
    code, out = cli(capsys, "audit", "verify")
    assert code == 0 and "VERIFIED" in out, out[-3000:]


@pytest.mark.slow
def test_a_promoter_killed_holding_the_database_lock_does_not_block_the_next(champion_one, capsys):
    env = champion_one
    killed = racer(2, 0, MLGOV_FAULT="promotion.locked")  # dies as SIGKILL would, inside the lock
    assert killed.wait(timeout=300) == KILLED, killed.communicate()
    started = time.monotonic()
    nxt = racer(2, 0, MLGOV_LOCK_TIMEOUT="15")
    code = nxt.wait(timeout=300)
    out, err = nxt.communicate()
    assert code == 0 and json.loads(out)["promoted"] is True, err
    assert time.monotonic() - started < 60
    assert env.registry().champion_version() == 2
    assert cli(capsys, "audit", "verify")[0] == 0
