"""``deploy/stack``'s process handling on real processes (no services needed): detached start with a pid
file and log, SIGTERM then KILL for a process that ignores SIGTERM, a reused pid never signalled, and
the process's whole group stopped (children that outlive it, also once it is gone)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator

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


def _leader(tmp_path, then: str) -> str:
    """A process that starts a SIGTERM-ignoring child in its own group (as a Celery worker starts its
    pool process), records the child's pid, then runs ``then``."""
    child = f"import subprocess, sys; c = subprocess.Popen([sys.executable, '-c', {STUBBORN!r}])"
    return f"{child}; open({str(tmp_path / 'child.pid')!r}, 'w').write(str(c.pid)); {then}"


@pytest.fixture
def child(tmp_path) -> Iterator[Callable[[], int]]:
    """``child()``: the pid the leader recorded (waited for); killed afterwards whatever the outcome."""
    seen: list[int] = []

    def read() -> int:
        deadline = time.monotonic() + 30
        while not (tmp_path / "child.pid").exists() or not (tmp_path / "child.pid").read_text():
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.1)
        seen.append(int((tmp_path / "child.pid").read_text()))
        return seen[-1]

    yield read
    for pid in seen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _gone(pid: int) -> bool:
    from mlgov_assets.deploy.stack import _is_zombie, _start_ticks

    return _start_ticks(pid) is None or _is_zombie(pid)


def test_stop_kills_the_children_that_outlive_the_process(tmp_path, child):
    proc = Process(name="worker", argv=[sys.executable, "-c", _leader(tmp_path, "import time; time.sleep(99)")])
    pid = start(proc, tmp_path)
    kid = child()
    assert stop(proc.name, tmp_path, grace=1.0)  # the leader dies of SIGTERM at once; its child ignores it
    assert _gone(pid) and _gone(kid)


def test_stop_kills_an_orphaned_group_whose_process_is_gone(tmp_path, child):
    proc = Process(name="worker", argv=[sys.executable, "-c", _leader(tmp_path, "import os; os._exit(0)")])
    pid = start(proc, tmp_path)
    kid = child()
    os.waitpid(pid, 0)  # the recorded process exited (and is reaped): only its child is left
    assert not state(proc, tmp_path).running and not _gone(kid)
    assert stop(proc.name, tmp_path, grace=1.0)  # `mlgov prod down` after a worker died
    assert _gone(kid)
    assert stop(proc.name, tmp_path) is False
