"""What keeps the time from a landed batch to its retraining request short, on a real instance: the
landing sensor takes a file that settles during its tick (no second daemon loop), and the retraining
sensor waits, bounded, for the drift verdict of a batch run in flight instead of leaving it to the
next loop."""

from __future__ import annotations

import json
import threading
import time

import pytest
from dagster import DagsterRun, DagsterRunStatus, instance_for_test
from dagster._core.utils import make_new_run_id

from mlgov_assets.core.monitoring.batches import simulate_batch
from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringPaths
from mlgov_assets.defs.monitoring.sensors import await_batch_verdicts
from mlgov_assets.defs.monitoring.shared import LANDING_SETTLE_SECONDS
from mlgov_assets.defs.scope import location_projects
from mlgov_tests.core.monitoring.helpers import ADULT, read_adult
from mlgov_tests.dagster.test_monitoring_sensors import DATA, LANDING, tick

pytestmark = pytest.mark.slow


def _in_flight(instance, job: str, batch_id: str, status: DagsterRunStatus) -> None:
    run = DagsterRun(job_name=job, run_id=make_new_run_id(), status=status, tags={"dagster/partition": batch_id})
    instance.add_run(run)


def test_a_file_landing_just_before_a_tick_is_taken_by_that_tick(env):
    """Before: a file younger than the settle time was left for the next loop (5 s later)."""
    defs = env.defs()
    landing = env.settings().landing_dir
    landing.mkdir(parents=True, exist_ok=True)
    batch, _ = simulate_batch(ADULT, "none", read_adult(DATA / "adult.test"), 300, 0)
    with instance_for_test() as instance:
        path = landing / "fresh-1.csv"
        batch.to_csv(path, index=False)  # dated now: not settled yet
        result = tick(defs, LANDING, instance)
        done = time.time()
    assert [r.partition_key for r in result.run_requests] == ["fresh-1"]
    # the tick waited for the file to settle (the rule is unchanged), and not much longer
    assert LANDING_SETTLE_SECONDS <= done - path.stat().st_mtime < LANDING_SETTLE_SECONDS + 10


def test_a_file_still_being_written_is_not_taken(env):
    defs = env.defs()
    landing = env.settings().landing_dir
    landing.mkdir(parents=True, exist_ok=True)
    path = landing / "growing-1.csv"
    path.write_text("age,workclass\n")
    stop = threading.Event()

    def writer() -> None:  # a slow, non-atomic producer: appends every 0.3 s
        while not stop.wait(0.3):
            with path.open("a") as fh:
                fh.write("39,State-gov\n")

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with instance_for_test() as instance:
            result = tick(defs, LANDING, instance)
    finally:
        stop.set()
        thread.join()
    assert not result.run_requests
    assert json.loads(result.cursor)["growing-1.csv"]["outcome"] == "settling"


def test_the_retraining_tick_waits_for_a_verdict_in_flight_and_no_longer(env):
    [scope] = [p for p in location_projects() if p.name == "adult"]
    mlgov = env.defs().resources["mlgov"].for_project("adult")
    ledger = BatchLedger(MonitoringPaths.of(mlgov.settings()))
    job = scope.named("monitor_batch")
    with instance_for_test() as instance:
        # nothing in flight: no wait at all
        started = time.monotonic()
        assert await_batch_verdicts(instance, scope, mlgov, time.monotonic() + 5) == []
        assert time.monotonic() - started < 1

        # a run in flight that records no verdict holds the tick until the deadline only; a finished
        # run, or another job's, not at all
        _in_flight(instance, job, "b-2", DagsterRunStatus.STARTING)
        _in_flight(instance, job, "b-3", DagsterRunStatus.FAILURE)
        _in_flight(instance, scope.named("batch_labels"), "b-4", DagsterRunStatus.STARTED)
        started = time.monotonic()
        assert await_batch_verdicts(instance, scope, mlgov, time.monotonic() + 0.8) == ["b-2"]
        assert 0.75 <= time.monotonic() - started < 3

        # another run records its verdict 0.6 s into the tick: the tick goes on at once, not waiting
        # for the other batch in flight (a later tick takes that one)
        _in_flight(instance, job, "b-1", DagsterRunStatus.STARTED)
        timer = threading.Timer(0.6, lambda: ledger.update("b-1", status="scored", drift={"breach": True}))
        started = time.monotonic()
        timer.start()
        assert await_batch_verdicts(instance, scope, mlgov, time.monotonic() + 5) == ["b-2"]
        waited = time.monotonic() - started
        timer.join()
        assert 0.55 <= waited < 3
        # a verdict already recorded by a run still in flight (its report step): no wait
        started = time.monotonic()
        assert await_batch_verdicts(instance, scope, mlgov, time.monotonic() + 5) == ["b-2"]
        assert time.monotonic() - started < 1
        # a quarantined batch is done too
        ledger.update("b-2", status="quarantined")
        assert await_batch_verdicts(instance, scope, mlgov, time.monotonic() + 5) == []


def test_the_retraining_tick_waits_for_a_labelled_batch_s_performance_verdict(env):
    """A labelled batch without a drift breach may still breach on performance, judged after scoring:
    the tick waits for that verdict too, so a performance breach is not left to the next loop."""
    [scope] = [p for p in location_projects() if p.name == "adult"]
    mlgov = env.defs().resources["mlgov"].for_project("adult")
    assert "performance" in mlgov.policy().monitoring.retrain_on
    ledger = BatchLedger(MonitoringPaths.of(mlgov.settings()))
    job = scope.named("monitor_batch")
    with instance_for_test() as instance:
        ledger.update("p-1", status="assessed", drift={"breach": False}, labels={"n_labelled": 300})
        _in_flight(instance, job, "p-1", DagsterRunStatus.STARTED)
        timer = threading.Timer(0.6, lambda: ledger.update("p-1", status="scored", performance={"breach": True}))
        started = time.monotonic()
        timer.start()
        assert await_batch_verdicts(instance, scope, mlgov, time.monotonic() + 5) == []
        waited = time.monotonic() - started
        timer.join()
        assert 0.55 <= waited < 3
    with instance_for_test() as instance:
        # no labels and no drift breach: no verdict left to wait for
        ledger.update("p-2", status="assessed", drift={"breach": False}, labels={"n_labelled": 0})
        _in_flight(instance, job, "p-2", DagsterRunStatus.STARTED)
        started = time.monotonic()
        assert await_batch_verdicts(instance, scope, mlgov, time.monotonic() + 5) == []
        assert time.monotonic() - started < 1
        # a drift breach is enough to act on: the performance verdict is not awaited
        ledger.update("p-3", status="assessed", drift={"breach": True}, labels={"n_labelled": 300})
        _in_flight(instance, job, "p-3", DagsterRunStatus.STARTED)
        started = time.monotonic()
        assert await_batch_verdicts(instance, scope, mlgov, time.monotonic() + 5) == []
        assert time.monotonic() - started < 1
