"""``deploy/stack``'s process handling on real processes (no services needed): detached start with a pid
file and log, SIGTERM then KILL for a process that ignores SIGTERM, a reused pid never signalled."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

from mlgov_assets.deploy.stack import Process, start, state, stop, wait_healthy

STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(99)"


def test_a_process_ignoring_sigterm_is_killed_after_the_grace(tmp_path):
    proc = Process(name="stubborn", argv=[sys.executable, "-c", STUBBORN])
    pid = start(proc, tmp_path)
    wait_healthy(proc, tmp_path, pid)  # alive for the grace period
    assert start(proc, tmp_path) == pid  # already running: not started twice
    assert state(proc, tmp_path).healthy
    t0 = time.monotonic()
    assert stop(proc.name, tmp_path, grace=1.0)
    assert 1.0 <= time.monotonic() - t0 < 10
    assert not (tmp_path / "stubborn.pid").exists()
    assert not state(proc, tmp_path).running
    assert "up" in (tmp_path / "stubborn.log").read_text()


def test_a_recorded_pid_of_another_process_is_never_signalled(tmp_path):
    # this very test process, recorded with a different start time: a pid reused after a reboot
    (tmp_path / "ghost.pid").write_text(json.dumps({"pid": os.getpid(), "start_ticks": 1, "argv": ["x"]}))
    assert stop("ghost", tmp_path) is False  # no signal sent (we are still here), record cleaned
    assert not (tmp_path / "ghost.pid").exists()


def test_a_process_that_exits_while_starting_is_reported_with_its_log(tmp_path):
    from mlgov_assets.core.errors import MlgovError

    proc = Process(name="crash", argv=[sys.executable, "-c", "raise SystemExit(3)"], health="http://127.0.0.1:9/")
    pid = start(proc, tmp_path)
    with pytest.raises(MlgovError, match=r"crash exited while starting: see .*crash\.log"):
        wait_healthy(proc, tmp_path, pid)
    stop(proc.name, tmp_path)
