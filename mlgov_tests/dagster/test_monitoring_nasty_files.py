"""`mlgov monitor --once` against nasty landing files: the loop quarantines each once with its reason,
scores the good batch next to them, exits 1 (refusals), never 2, and the next pass is quiet. A batch
that fails in scoring is quarantined too (the Dagster wiring of ``quarantine_on_failure``)."""

from __future__ import annotations

import json
import os
import time

from mlgov_assets.cli import main
from mlgov_assets.core.monitoring import scoring
from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringPaths
from mlgov_tests.dagster.test_monitoring_sensors import MEETABLE

SECRET = "OUTSIDE-SECRET-41d2"


def _run(capsys, argv: list[str]) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(argv)
    return rc, capsys.readouterr().out


def _nasty(landing, outside, header: str) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "empty-1.csv").write_bytes(b"")
    (landing / "header-1.csv").write_text(header + "\n")
    (landing / "bom-1.csv").write_bytes(b"\xef\xbb\xbf" + header.encode() + b"\n")
    (landing / "link-1.csv").symlink_to(outside)
    os.mkfifo(landing / "fifo-1.csv")
    (landing / "huge-1.csv").write_text(header + "\n" + "Z" * (2 * 1024 * 1024) + "\n")
    (landing / "b.labels.csv").symlink_to(outside)
    past = time.time() - 60
    for entry in os.listdir(landing):
        os.utime(landing / entry, (past, past), follow_symlinks=False)


def test_nasty_files_are_quarantined_and_the_loop_goes_on(env, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DAGSTER_HOME", str(env.home / "dagster"))
    landing = env.home / "incoming"
    monkeypatch.setenv("MLGOV_LANDING_DIR", str(landing))
    env.write_policy(MEETABLE)
    assert main(["train", "--set", "max_iter=60", "--set", "learning_rate=0.15"]) == 0
    assert main(["simulate", "--kind", "none", "--rows", "600", "--seed", "2", "--batch-id", "calm-1"]) == 0
    assert main(["simulate", "--kind", "none", "--rows", "700", "--seed", "3", "--batch-id", "late-1"]) == 0
    header = (landing / "calm-1.csv").read_text().splitlines()[0]
    outside = tmp_path / "outside.csv"
    outside.write_text(f"{header}\n{SECRET}\n")
    _nasty(landing, outside, header)

    real = scoring.model_inputs

    def flaky(project, batch):  # a batch-caused scoring failure, for late-1 (700 rows) only
        if len(batch) == 700:
            raise ValueError("Found array with 0 sample(s) (shape=(0, 14))")
        return real(project, batch)

    monkeypatch.setattr(scoring, "model_inputs", flaky)

    rc, out = _run(capsys, ["monitor", "--once", "--json"])
    report = json.loads(out)
    assert rc == 1, report  # refusals, not an error: the loop is not wedged
    by_id = {b["batch_id"]: b for b in report["batches"]}
    assert by_id["calm-1"]["status"] == "scored" and by_id["calm-1"]["drift"]["verdict"] in ("ok", "warn")
    quarantined = {k for k, b in by_id.items() if b["status"] == "quarantined"}
    assert quarantined == {"empty-1", "header-1", "bom-1", "link-1", "fifo-1", "huge-1", "late-1"}
    assert "min_batch_rows" in by_id["header-1"]["validation"] and "byte-order mark" in by_id["bom-1"]["validation"]
    assert "symbolic link" in by_id["link-1"]["validation"] and "FIFO" in by_id["fifo-1"]["validation"]
    assert "scoring failed" in by_id["late-1"]["validation"]
    assert [r["file"] for r in report["found"]["refused"]] == ["b.labels.csv"]

    paths = MonitoringPaths.of(env.settings())
    evidence = paths.alerts.read_text() + out
    for batch_id in quarantined:
        evidence += (paths.quarantine_dir(batch_id) / "failure_report.json").read_text()
        assert BatchLedger(paths).get(batch_id)["status"] == "quarantined"
    assert SECRET not in evidence and "Z" * 1000 not in evidence
    assert outside.read_text() == f"{header}\n{SECRET}\n"
    assert max(len(line) for line in paths.alerts.read_text().splitlines()) < 300_000

    rc, out = _run(capsys, ["monitor", "--once", "--json"])  # nothing is retried as if new
    again = json.loads(out)
    assert rc == 0 and again["batches"] == [] and again["found"]["new_batches"] == []
