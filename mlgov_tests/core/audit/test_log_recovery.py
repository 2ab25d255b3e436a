"""The decision log survives an append interrupted at any point; damage only `repair` may decide.

Interruptions are produced by the fault hook (an OSError at the point, as a full disk or a
permission change would raise) and, for the torn line, by writing the bytes a killed writer leaves.
Kills of real processes at these points are in ``mlgov_tests/core/governance/test_transaction.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlgov_assets.core.audit.decision_log import (
    DecisionLog,
    LogIntegrityError,
    head_path,
    read_records,
    verify,
    witness_path,
)
from mlgov_assets.core.faults import ENV


def _append(log: DecisionLog, i: int, kind: str = "drift_alert") -> None:
    log.append(
        kind, actor="t", reason=f"decision {i}", model_name="m", model_version=1, payload={"i": i}, evidence_hashes={}
    )


@pytest.fixture
def log(tmp_path: Path) -> DecisionLog:
    out = DecisionLog(tmp_path / "audit" / "decisions.jsonl")
    for i in range(4):
        _append(out, i)
    return out


@pytest.mark.parametrize("point", ["decision_log.after_line", "decision_log.after_witness"])
def test_an_append_failing_between_line_and_anchors_is_completed_by_the_next(log, point, monkeypatch):
    monkeypatch.setenv(ENV, f"{point}:enospc")
    with pytest.raises(OSError, match="No space left"):
        _append(log, 4)
    monkeypatch.delenv(ENV)
    assert not verify(log.path).ok  # head one behind the complete record 4
    _append(log, 5)
    kinds = [r.kind for r in read_records(log.path)]
    assert kinds[4:] == ["drift_alert", "log_repair", "drift_alert"] and verify(log.path).ok
    assert "head and witness advanced" in read_records(log.path)[5].reason


def test_a_torn_unwitnessed_line_is_cut_automatically_and_kept(log):
    torn = b'{"actor":"t","evidence_hashes":{},"hash":"ab'
    with open(log.path, "ab") as fh:
        fh.write(torn)  # a writer died mid-line
    assert not verify(log.path).ok
    assert log.recover() and verify(log.path).ok
    rec = read_records(log.path)[-1]
    assert rec.kind == "log_repair" and rec.payload["dropped_bytes"] == len(torn)
    kept = log.path.parent / str(rec.payload["quarantined_to"])
    assert kept.read_bytes().startswith(b'{"actor":"t"')


def test_a_torn_witnessed_record_waits_for_repair_which_is_recorded(log):
    log.path.write_bytes(log.path.read_bytes()[:-20])
    with pytest.raises(LogIntegrityError, match="audit repair"):
        _append(log, 9)
    summary = log.repair(actor="auditor", reason="disk failure on 2026-11-30, record 3 lost")
    assert summary and "kept 3 record(s)" in summary and "1 more record" in summary
    recs = read_records(log.path)
    assert [r.kind for r in recs] == ["drift_alert"] * 3 + ["log_repair"]
    assert recs[-1].actor == "auditor" and recs[-1].payload["reason"].startswith("disk failure")
    assert verify(log.path).ok
    assert log.repair(actor="auditor", reason="again") is None  # nothing left to repair


def test_dropping_trailing_records_and_rewriting_the_head_is_detected(log):
    _append(log, 4, "rejection")  # a refusal's evidence
    lines = log.path.read_bytes().splitlines(keepends=True)
    log.path.write_bytes(b"".join(lines[:4]))
    head_path(log.path).write_text(json.dumps({"count": 4, "last_hash": json.loads(lines[3])["hash"]}))
    res = verify(log.path)
    assert not res.ok and "witness" in str(res.problem) and res.first_bad_index == 4
    with pytest.raises(LogIntegrityError, match="witness"):
        _append(log, 5)


def test_a_deleted_witness_is_detected_but_a_log_from_before_witnesses_is_adopted(log, tmp_path):
    witness_path(log.path).unlink()
    assert not verify(log.path).ok and "witness" in str(verify(log.path).problem)
    with pytest.raises(LogIntegrityError):
        _append(log, 4)
    legacy = DecisionLog(tmp_path / "legacy" / "decisions.jsonl")
    _append(legacy, 0)
    witness_path(legacy.path).unlink()
    witness_path(legacy.path).parent.rmdir()  # as written by mlgov before witnesses
    _append(legacy, 1)
    assert [r.kind for r in read_records(legacy.path)] == ["drift_alert", "log_repair", "drift_alert"]
    assert verify(legacy.path).ok


def test_repair_refuses_to_cut_damage_inside_the_log(log):
    lines = log.path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"decision 1", b"decision X")
    log.path.write_bytes(b"".join(lines))
    with pytest.raises(LogIntegrityError, match="kept as evidence"):
        log.repair(actor="a", reason="r")
    assert log.path.read_bytes() == b"".join(lines)
