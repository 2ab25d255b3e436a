"""Batch intake at the trust boundary: every refusal is quarantined once with a reason naming the
rule; links and special files are never followed; reports and alerts stay bounded."""

from __future__ import annotations

import json
import os
import threading

import pytest

from mlgov_assets.core.errors import InputError
from mlgov_assets.core.governance.policy import Ingestion, load_policy
from mlgov_assets.core.monitoring.intake import accept_batch
from mlgov_assets.core.monitoring.landing import find_batch_file, plan_landing
from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringError, MonitoringPaths, read_jsonl
from mlgov_assets.core.monitoring.quarantine import BatchQuarantined, bounded_report, quarantine_on_failure
from mlgov_tests.core.monitoring.helpers import ADULT, land, sim

SECRET = "TOP-SECRET-CONTENT-0xC0FFEE"


@pytest.fixture
def policy(settings):
    return load_policy(settings.policy_path)


def _text(holdout, rows=250, seed=1):
    batch, _ = sim("none", holdout, rows=rows, seed=seed)
    return batch.to_csv()  # with row_id, as producers and `mlgov simulate` write it


def _write(settings, name: str, content: bytes | str):
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    path = settings.landing_dir / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _quarantined(settings, batch_id: str, policy) -> tuple[dict, str]:
    """Accept ``batch_id``; assert it is quarantined once, moved out, and not found again; return
    the failure report and everything written about it (report, ledger, alerts)."""
    acc = accept_batch(settings, ADULT, batch_id, policy=policy)
    paths = MonitoringPaths.of(settings)
    ledger = BatchLedger(paths)
    assert not acc.intake.valid and acc.intake.quarantine_dir == paths.quarantine_dir(batch_id)
    assert ledger.get(batch_id)["status"] == "quarantined"
    assert not any(n.startswith(f"{batch_id}.") for n in os.listdir(settings.landing_dir))
    with pytest.raises(MonitoringError, match="quarantined"):
        find_batch_file(settings.landing_dir, batch_id, ledger)
    report = json.loads((paths.quarantine_dir(batch_id) / "failure_report.json").read_text())
    alerts = paths.alerts.read_text()
    assert [a["kind"] for a in read_jsonl(paths.alerts) if a["batch_id"] == batch_id] == ["batch_quarantined"]
    written = json.dumps(report) + alerts + json.dumps(ledger.get(batch_id))
    cap = policy.ingestion.max_report_bytes
    assert len(json.dumps(report)) <= cap and all(len(line) <= cap for line in alerts.splitlines())
    return report, written


def _rules(report: dict) -> set[tuple[str, str]]:
    return {(f["column"], f["check"]) for f in report["report"]["failures"]}


def test_empty_and_header_only_batches_are_quarantined_not_scored(settings, holdout, policy):
    _write(settings, "e1.csv", b"")
    report, _ = _quarantined(settings, "e1", policy)
    assert ("<file>", "not empty (a header and data rows)") in _rules(report)
    header = _text(holdout).splitlines()[0] + "\n"
    _write(settings, "e2.csv", header)
    report, _ = _quarantined(settings, "e2", policy)
    assert "header only" in report["summary"] and "min_batch_rows (200)" in report["summary"]


def test_a_batch_under_min_batch_rows_is_quarantined_with_that_reason(settings, holdout, policy):
    _write(settings, "small.csv", _text(holdout, rows=150))
    report, _ = _quarantined(settings, "small", policy)
    assert _rules(report) == {("<dataframe>", "at least monitoring.min_batch_rows (200) rows")}
    assert "150 rows" in report["summary"]


@pytest.mark.parametrize("position", [None, 3])
def test_an_unknown_column_is_refused_by_name_and_its_values_not_copied(settings, holdout, policy, position):
    batch, _ = sim("none", holdout, rows=250, seed=2)
    batch.insert(len(batch.columns) if position is None else position, "ssn", [f"999-{i:06d}" for i in range(250)])
    land(settings.landing_dir, "ssn1.csv", batch.reset_index())
    report, written = _quarantined(settings, "ssn1", policy)
    assert ("ssn", "column_in_schema") in _rules(report)
    assert "999-0" not in written


def test_a_duplicated_column_with_conflicting_values_is_refused(settings, holdout, policy):
    lines = _text(holdout).splitlines()
    body = [ln + (",Female" if ",Male," in ln else ",Male") for ln in lines[1:]]
    _write(settings, "dup1.csv", "\n".join([lines[0] + ",sex", *body]) + "\n")
    report, _ = _quarantined(settings, "dup1", policy)
    assert _rules(report) == {("sex", "unique column name")}


def test_ragged_rows_are_refused_with_line_numbers(settings, holdout, policy):
    lines = _text(holdout).splitlines()
    lines[10] = lines[10].rsplit(",", 2)[0]
    _write(settings, "rag1.csv", "\n".join(lines) + "\n")
    report, _ = _quarantined(settings, "rag1", policy)
    (failure,) = report["report"]["failures"]
    assert failure["column"] == "<row>" and failure["examples"][0]["line"] == 11


def test_a_bom_is_named(settings, holdout, policy):
    _write(settings, "bom1.csv", b"\xef\xbb\xbf" + _text(holdout).encode())
    report, _ = _quarantined(settings, "bom1", policy)
    assert "UTF-8 BOM" in report["summary"] and "byte-order mark" in report["summary"]


def test_a_symlink_is_quarantined_by_name_and_its_target_never_read(settings, tmp_path, policy):
    secret = tmp_path / "outside.csv"
    secret.write_text(f"age\n{SECRET}\n")
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    (settings.landing_dir / "link1.csv").symlink_to(secret)
    plan = plan_landing(settings.landing_dir, BatchLedger(MonitoringPaths.of(settings)))
    assert [f.batch_id for f in plan.new_batches] == ["link1"]  # to intake, which quarantines it unread
    report, written = _quarantined(settings, "link1", policy)
    assert "symbolic link" in report["summary"] and SECRET not in written
    assert secret.read_text() == f"age\n{SECRET}\n"  # the target is untouched
    assert (MonitoringPaths.of(settings).quarantine_dir("link1") / "link1.csv").is_symlink()


@pytest.mark.timeout(30)
def test_a_fifo_and_a_directory_are_quarantined_without_blocking(settings, policy):
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    os.mkfifo(settings.landing_dir / "pipe1.csv")
    (settings.landing_dir / "dir1.csv").mkdir()
    (settings.landing_dir / "dir1.csv" / "inner.csv").write_text(SECRET)
    plan = plan_landing(settings.landing_dir, BatchLedger(MonitoringPaths.of(settings)))
    assert sorted(f.batch_id for f in plan.new_batches) == ["dir1", "pipe1"]
    report, written = _quarantined(settings, "pipe1", policy)
    assert "FIFO" in report["summary"]
    report, written = _quarantined(settings, "dir1", policy)
    assert "directory" in report["summary"] and SECRET not in written


def test_hard_links_and_oversized_files_are_refused_unread(settings, holdout, tmp_path, policy):
    secret = tmp_path / "outside"
    secret.write_text(SECRET)
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    os.link(secret, settings.landing_dir / "hard1.csv")
    report, written = _quarantined(settings, "hard1", policy)
    assert "hard links" in report["summary"] and SECRET not in written
    _write(settings, "big1.csv", _text(holdout))
    small = policy.model_copy(update={"ingestion": Ingestion(max_file_bytes=1000)})
    report, _ = _quarantined(settings, "big1", small)
    assert ("<file>", "ingestion.max_file_bytes") in _rules(report)


def test_a_64_mb_field_is_quoted_not_copied(settings, holdout, policy):
    lines = _text(holdout).splitlines()
    fields = lines[5].split(",")
    fields[2] = "Z" * (64 * 1024 * 1024)
    lines[5] = ",".join(fields)
    _write(settings, "huge1.csv", "\n".join(lines) + "\n")
    report, written = _quarantined(settings, "huge1", policy)
    assert "lines of at most" in report["summary"] and "sha256" in report["summary"]
    assert "Z" * 1000 not in written and len(written) < 3 * policy.ingestion.max_report_bytes


def test_a_labels_symlink_is_refused_in_the_landing_plan(settings, tmp_path):
    secret = tmp_path / "outside"
    secret.write_text(SECRET)
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    (settings.landing_dir / "b1.labels.csv").symlink_to(secret)
    plan = plan_landing(settings.landing_dir, BatchLedger(MonitoringPaths.of(settings)))
    assert [name for name, _ in plan.refused] == ["b1.labels.csv"] and "symbolic link" in plan.refused[0][1]
    again = plan_landing(settings.landing_dir, BatchLedger(MonitoringPaths.of(settings)), plan.seen)
    assert not again.refused and not again.new_labels  # reported once


def test_a_failure_after_intake_quarantines_the_batch_once(settings, holdout, policy):
    _write(settings, "late1.csv", _text(holdout))
    acc = accept_batch(settings, ADULT, "late1", policy=policy)
    assert acc.intake.valid
    with pytest.raises(BatchQuarantined, match="0 sample") as info, quarantine_on_failure(settings, "late1", "scoring"):
        raise ValueError("Found array with 0 sample(s) " + "q" * 10_000)
    assert len(str(info.value)) < 1000 and info.value.__suppress_context__ and info.value.__cause__ is None
    paths = MonitoringPaths.of(settings)
    entry = BatchLedger(paths).get("late1")
    assert entry["status"] == "quarantined" and entry["validation"]["stage"] == "scoring"
    assert (paths.quarantine_dir("late1") / "late1.csv").exists() and not (settings.landing_dir / "late1.csv").exists()
    report = json.loads((paths.quarantine_dir("late1") / "failure_report.json").read_text())
    assert "scoring failed" in report["summary"] and "q" * 1000 not in json.dumps(report)
    assert any("test_ingestion.py" in frame for frame in report["report"]["traceback"])
    plan = plan_landing(settings.landing_dir, BatchLedger(paths))
    assert not plan.new_batches  # never taken up again


def test_system_errors_do_not_quarantine_the_batch(settings, holdout, policy):
    _write(settings, "ok2.csv", _text(holdout))
    accept_batch(settings, ADULT, "ok2", policy=policy)
    with pytest.raises(MonitoringError), quarantine_on_failure(settings, "ok2", "scoring"):
        raise MonitoringError("no champion yet")
    assert BatchLedger(MonitoringPaths.of(settings)).get("ok2")["status"] == "validated"
    with pytest.raises(InputError), quarantine_on_failure(settings, "ok2", "drift"):
        raise InputError("bad input found late")
    assert BatchLedger(MonitoringPaths.of(settings)).get("ok2")["status"] == "quarantined"


def test_bounded_report_fits_the_cap_and_says_what_it_left_out():
    failures = [
        {"column": f"c{i}", "check": "x" * 200, "count": 1, "examples": [{"value": "v" * 100}] * 5} for i in range(2000)
    ]
    report = {"source": "f.csv", "schema": "s", "rows": 0, "passed": False, "failures": failures}
    out = bounded_report(report, 65_536)
    assert len(json.dumps(out)) <= 65_536 // 2 and out["truncated"] == 2000 - len(out["failures"]) > 0


def test_landing_never_blocks_on_a_fifo_during_the_scan(settings):
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    os.mkfifo(settings.landing_dir / "p2.csv")
    done = threading.Event()

    def scan() -> None:
        plan_landing(settings.landing_dir, BatchLedger(MonitoringPaths.of(settings)))
        done.set()

    threading.Thread(target=scan, daemon=True).start()
    assert done.wait(10)
