"""The pure core's tests. Under pytest-xdist (``make test-fast``: one worker per core) each worker's main
thread runs OpenMP (HistGradientBoosting) and BLAS with one thread: two workers on two cores with two
OpenMP threads each oversubscribe the machine and spin-wait against each other. Threads a test starts
keep OpenMP's default (the limit is per thread), so the serving test that checks a scoring thread sets
its own limit still sees the default first."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _one_thread_per_xdist_worker() -> Iterator[None]:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    import sklearn.ensemble  # noqa: F401 - loads the OpenMP runtime, so the limit reaches it
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
