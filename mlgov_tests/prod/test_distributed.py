"""Distributed execution in the prod profile, against the real stack: PostgreSQL Dagster, the MLflow
server, RabbitMQ (a vhost of this session), ``dagster code-server``, the daemon (sensors + queued run
coordinator) and two Celery workers, all started through ``deploy/stack``'s process table.

One scenario (the stack starts once, ~1 min): the governed path launched through the queue runs every
step on a worker; 20 batches landed at once become 20 monitoring runs, none lost or duplicated, no
lock/deadlock/duplicate-key error anywhere; a worker SIGKILLed mid-step hands the step to the other
worker, the run succeeds, nothing is half-written, and the next run needs no repair.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mlgov_tests.conftest import Env
from mlgov_tests.prod.conftest import Broker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3000)]  # ~16 min on a busy 2-core machine

WORKERS = ("celery-worker-1", "celery-worker-2")
BAD = re.compile(r"database is locked|deadlock detected|duplicate key value|UniqueViolation", re.IGNORECASE)


@contextmanager
def stack(settings, names: tuple[str, ...]) -> Iterator[dict[str, int]]:
    """Start the named processes of the prod process table (in table order), stop them afterwards."""
    from mlgov_assets.deploy.stack import PROCESSES, start, stop, wait_healthy

    run_dir = settings.prod_dir
    procs = [p for p in (build(settings) for build in PROCESSES) if p.name in names]
    assert {p.name for p in procs} == set(names)
    pids: dict[str, int] = {}
    try:
        for proc in procs:
            pids[proc.name] = start(proc, run_dir)
            wait_healthy(proc, run_dir, pids[proc.name])
        yield pids
    finally:
        for proc in reversed(procs):
            stop(proc.name, run_dir, grace=5)


def children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return {int(x) for x in out.split()}


def wait_runs(instance, job: str, n: int, timeout: float) -> list:
    """Until ``n`` runs of ``job`` have finished (or ``timeout``): all of that job's runs."""
    from dagster import DagsterRunStatus, RunsFilter

    done = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + timeout
    while True:
        runs = instance.get_runs(filters=RunsFilter(job_name=job))
        if sum(r.status in done for r in runs) >= n or time.monotonic() > deadline:
            return runs
        time.sleep(3)


def step_pids(instance, run_id: str, event: str) -> dict[str, list[int]]:
    from dagster import DagsterEventType

    out: dict[str, list[int]] = {}
    for rec in instance.get_records_for_run(run_id, of_type=DagsterEventType(event), limit=10_000).records:
        entry = rec.event_log_entry
        out.setdefault(entry.step_key, []).append(entry.dagster_event.pid)
    return out


def land_batches(env: Env, names: list[str], seed0: int) -> None:
    from mlgov_assets.core.monitoring.batches import simulate_batch
    from mlgov_tests.core.monitoring.helpers import ADULT, read_adult

    holdout = read_adult(env.project / "data" / "adult.test")
    landing = env.settings().landing_dir
    landing.mkdir(parents=True, exist_ok=True)
    past = time.time() - 60  # past the landing sensor's settle time
    for i, name in enumerate(names):
        frame, _ = simulate_batch(ADULT, "none", holdout, 400, seed0 + i)
        tmp = landing / f".{name}.tmp"
        frame.to_csv(tmp, index=False)
        os.utime(tmp, (past, past))
        tmp.rename(landing / f"{name}.csv")


def event_log_problems(instance, run_ids) -> list[str]:
    return [
        f"{rid}: {e.user_message[:200]}"
        for rid in run_ids
        for e in instance.all_logs(rid)
        if BAD.search(e.user_message or "") or (e.error_info and BAD.search(e.error_info.to_string()))
    ]


def test_distributed_stack_governed_path_20_batches_and_a_killed_worker(
    prod_env: Env, celery_broker: Broker, monkeypatch: pytest.MonkeyPatch
):
    from dagster import DagsterRunStatus

    from mlgov_assets.core.audit.decision_log import verify
    from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringPaths
    from mlgov_assets.deploy.stack import workspace_file
    from mlgov_assets.instance import get_instance
    from mlgov_tests.prod.conftest import free_port

    monkeypatch.setenv("MLGOV_CELERY_BROKER", celery_broker.url)
    monkeypatch.setenv("MLGOV_CODE_SERVER_PORT", str(free_port()))
    monkeypatch.setenv("MLGOV_PROJECTS", "adult")
    # the killed-01 batch's drift report pauses mid-step (core/faults), so the kill below lands mid-step
    # however fast the machine (on a quiet one the step takes ~1 s)
    monkeypatch.setenv("MLGOV_FAULT", "monitor.batch_drift_report.killed-01:pause")
    settings = prod_env.settings()
    instance = get_instance(settings)  # the prod dagster.yaml; MLGOV_*/DAGSTER_HOME exported for the children
    ws = workspace_file(settings)
    assert "grpc_server" in ws.read_text()
    names = ("code-server", *WORKERS, "dagster-daemon")
    with stack(settings, names) as pids:
        workers = {n: pids[n] for n in WORKERS}

        # 1) the governed path through the queue: the daemon launches it from the code server; every step on a worker
        launch = subprocess.run(
            [
                str(Path(sys.executable).parent / "dagster"),
                "job",
                "launch",
                "-w",
                str(ws),
                "-j",
                "adult__governed_training",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert launch.returncode == 0, launch.stderr[-3000:]
        (run,) = wait_runs(instance, "adult__governed_training", 1, timeout=900)
        assert run.status == DagsterRunStatus.SUCCESS, [e.user_message for e in instance.all_logs(run.run_id)][-20:]
        assert prod_env.registry().champion_version() == 1
        started = step_pids(instance, run.run_id, "STEP_START")
        pool = set().union(*(children(p) for p in workers.values()))
        assert len(started) >= 15 and all(set(p) <= pool for p in started.values()), (started, pool)
        assert len({p for ps in started.values() for p in ps}) == 2  # both workers took steps
        run_worker = {
            e.dagster_event.pid
            for e in instance.all_logs(run.run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_START"
        }
        assert run_worker and not (run_worker & pool)  # the run worker is not a Celery worker

        # 2) 20 batches at once -> 20 monitoring runs through the landing sensor and the queue
        batch_ids = [f"burst-{i:02d}" for i in range(20)]
        land_batches(prod_env, batch_ids, seed0=100)
        runs = wait_runs(instance, "adult__monitor_batch", 20, timeout=1500)
        assert sorted(r.tags.get("dagster/partition") for r in runs) == batch_ids  # none lost, none twice
        assert all(r.status == DagsterRunStatus.SUCCESS for r in runs), [
            (r.tags["dagster/partition"], r.status) for r in runs
        ]
        ledger = BatchLedger(MonitoringPaths.of(settings))
        assert sorted(e["batch_id"] for e in ledger.entries()) == batch_ids
        assert event_log_problems(instance, [r.run_id for r in runs]) == []

        # 3) a worker SIGKILLed mid-step: the step is requeued to the other worker, the run succeeds
        land_batches(prod_env, ["killed-01"], seed0=500)
        victim_step = "adult__batch_drift_report"  # paused by MLGOV_FAULT for this batch only
        deadline, victim = time.monotonic() + 600, None
        while victim is None and time.monotonic() < deadline:
            mine = [
                r
                for r in wait_runs(instance, "adult__monitor_batch", 0, 0)
                if r.tags.get("dagster/partition") == "killed-01"
            ]
            if mine:
                pids_now = step_pids(instance, mine[0].run_id, "STEP_START").get(victim_step)
                if pids_now:
                    victim = next(n for n, p in workers.items() if pids_now[0] in children(p))
                    os.killpg(workers[victim], signal.SIGKILL)  # the worker and its pool process, no cleanup
                    killed_pid = pids_now[0]
            time.sleep(0.3)
        assert victim is not None, "the monitoring run of killed-01 never reached its drift report"
        runs = wait_runs(instance, "adult__monitor_batch", 21, timeout=600)
        (killed_run,) = [r for r in runs if r.tags.get("dagster/partition") == "killed-01"]
        assert killed_run.status == DagsterRunStatus.SUCCESS
        done = step_pids(instance, killed_run.run_id, "STEP_SUCCESS")[victim_step]
        assert killed_pid not in done, "the kill came after the step had finished: not mid-step"
        survivor = next(n for n in WORKERS if n != victim)
        assert set(done) <= children(workers[survivor])
        entry = ledger.get("killed-01")
        assert entry is not None and sorted(e["batch_id"] for e in ledger.entries()) == sorted(
            [*batch_ids, "killed-01"]
        )

        # the next run needs no repair (one worker left)
        land_batches(prod_env, ["after-01"], seed0=900)
        runs = wait_runs(instance, "adult__monitor_batch", 22, timeout=600)
        (after,) = [r for r in runs if r.tags.get("dagster/partition") == "after-01"]
        assert after.status == DagsterRunStatus.SUCCESS
        all_ids = [r.run_id for r in instance.get_runs()]
        assert event_log_problems(instance, all_ids) == []

    assert verify(settings.decision_log).ok
    logs = "".join((settings.prod_dir / f"{n}.log").read_text(errors="replace") for n in names)
    assert not BAD.search(logs), BAD.findall(logs)[:5]


def ps(*pids: int) -> str:
    """``ps -o pid,ppid,pgid,stat,cmd`` of ``pids`` (those still running)."""
    args = ["ps", "-o", "pid,ppid,pgid,stat,cmd", "-p", ",".join(map(str, pids)) or "1"]
    return subprocess.run(args, capture_output=True, text=True).stdout


def celery_ps() -> str:
    """Every Celery process of this machine (``ps -ef``), whatever its broker."""
    out = subprocess.run(["ps", "-eo", "pid,ppid,pgid,stat,cmd"], capture_output=True, text=True).stdout
    return "".join(line + "\n" for line in out.splitlines() if "celery" in line.lower())


def test_cli_train_in_prod_runs_every_step_on_the_workers(
    prod_env: Env, celery_broker: Broker, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """`mlgov train` in the prod profile: the command coordinates, the Celery workers execute every step
    (as for a run the UI launches); with no worker listening it refuses at once instead of waiting forever."""
    from mlgov_assets.cli import main
    from mlgov_assets.instance import get_instance

    monkeypatch.setenv("MLGOV_CELERY_BROKER", celery_broker.url)
    monkeypatch.setenv("MLGOV_PROJECTS", "adult")
    settings = prod_env.settings()
    instance = get_instance(settings)
    started = time.monotonic()
    assert main(["train"]) == 2
    assert "no Celery worker answers" in capsys.readouterr().err and time.monotonic() - started < 60
    assert prod_env.registry().champion_version() is None

    before = celery_ps()
    with stack(settings, WORKERS) as pids:
        # the workers' pool processes, watched during the run: Celery replaces a pool process that dies
        pool: set[int] = set()
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                pool.update(*(children(p) for p in pids.values()))
                time.sleep(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            code = main(["train", "--json"])
        finally:
            done.set()
            watcher.join()
        out, err = capsys.readouterr()
        steps = step_pids(instance, json.loads(out[out.index("{") :])["run_id"], "STEP_START") if "{" in out else {}
        seen = {p for ps_ in steps.values() for p in ps_}
        diagnostics = (
            f"exit {code}; stderr tail: {err[-1500:]}\nstep pids {sorted(seen)} (pytest pid {os.getpid()}), "
            f"workers {pids}, their pool processes seen {sorted(pool)}\n{ps(*seen)}"
            f"celery processes before the stack:\n{before}and now:\n{celery_ps()}{celery_broker.report()}"
        )
        assert code == 0, diagnostics
    assert len(steps) >= 15 and seen <= pool, diagnostics
    assert os.getpid() not in seen, diagnostics  # the CLI only coordinated
    assert prod_env.registry().champion_version() == 1
