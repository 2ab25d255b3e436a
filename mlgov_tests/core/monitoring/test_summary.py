"""The monitoring summary and the status for `mlgov status`."""

from __future__ import annotations

import pytest

from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringPaths
from mlgov_assets.core.monitoring.summary import monitoring_status, monitoring_summary

# --------------------------------------------------------------------------- summary and status


def test_summary_and_status_report_the_last_batches(settings):
    ledger = BatchLedger(MonitoringPaths.of(settings))
    for i, (drift, perf) in enumerate([(False, None), (True, 0.80), (False, 0.86), (True, None)]):
        ledger.update(
            f"s{i}",
            status="scored",
            champion_version=1,
            created_at=f"2026-01-0{i + 1}T00:00:00+00:00",
            drift={
                "judged": True,
                "breach": drift,
                "verdict": "drift" if drift else "ok",
                "drifted_columns": ["age", "hours_per_week"] if drift else [],
            },
            performance={
                "labelled": perf is not None,
                "n_labelled": 300 if perf else 0,
                "status": "ok" if perf else "awaiting labels",
                "champion": {"accuracy": perf},
            },
        )
    ledger.update("q", status="quarantined", created_at="2026-01-05T00:00:00+00:00")
    summary = monitoring_summary(settings, last_n=4)
    assert [r.batch_id for r in summary.batches] == ["s1", "s2", "s3", "q"]
    assert summary.counts.dataset_drift == 2 and summary.counts.quarantined == 1
    assert summary.drift_rate == pytest.approx(2 / 3)
    assert summary.mean_accuracy == pytest.approx((0.80 + 0.86) / 2)
    assert summary.most_drifted_columns[0] == ("age", 2) or summary.most_drifted_columns[0] == ["age", 2]
    status = monitoring_status(settings)
    assert status.batches == 5 and status.quarantined == 1
    assert status.latest_drift.batch_id == "s3" and status.latest_drift.breach is True
    assert status.latest_performance.batch_id == "s2"
