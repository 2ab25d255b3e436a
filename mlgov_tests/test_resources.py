"""The training lock is held for a whole run by every run that needs it, however launched."""

from __future__ import annotations

import fcntl

from dagster import Definitions, asset, define_asset_job, in_process_executor

from mlgov_assets.resources import TrainingLock


def _try_lock(path) -> bool:
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fh, fcntl.LOCK_UN)
        return True


def test_training_lock_is_held_from_run_start_to_run_end(tmp_path):
    lock_file = tmp_path / "locks" / "training.lock"
    seen = {}

    @asset
    def first(training_lock: TrainingLock) -> int:
        seen["first"] = _try_lock(lock_file)
        return 1

    @asset
    def second(first: int) -> int:  # does not require the lock itself: still inside the run
        seen["second"] = _try_lock(lock_file)
        return 2

    defs = Definitions(
        assets=[first, second],
        resources={"training_lock": TrainingLock(home=str(tmp_path))},
        jobs=[define_asset_job("j")],
        executor=in_process_executor,
    )
    from dagster import mem_io_manager

    defs = Definitions.merge(defs, Definitions(resources={"io_manager": mem_io_manager}))
    assert defs.resolve_job_def("j").execute_in_process().success
    assert seen == {"first": False, "second": False}  # another holder would have had to wait
    assert _try_lock(lock_file)  # released when the run ended
