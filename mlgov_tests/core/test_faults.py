"""core/faults: the pause mode holds the process at its point (a step caught mid-way), only where armed."""

from __future__ import annotations

import time

import pytest

from mlgov_assets.core import faults


def test_pause_holds_only_the_armed_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults, "PAUSE_SECONDS", 0.3)
    monkeypatch.setenv(faults.ENV, "monitor.batch_drift_report.killed-01:pause")
    started = time.monotonic()
    faults.fault_point("monitor.batch_drift_report.other-batch")
    assert time.monotonic() - started < 0.2
    faults.fault_point("monitor.batch_drift_report.killed-01")
    assert time.monotonic() - started >= 0.3
