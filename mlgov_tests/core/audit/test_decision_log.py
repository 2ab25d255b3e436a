"""Decision log: every tamper kind is detected and the first bad index is named.

Hashes are re-derived here with hashlib + json (not the module's helpers) so the tests pin the
on-disk format an external auditor would re-implement, not just self-consistency.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlgov_assets.core.audit.decision_log import (
    GENESIS_HASH,
    KINDS,
    DecisionLog,
    LogIntegrityError,
    head_path,
    read_records,
    records,
    verify,
    witness_path,
)

N = 10


def _sha(obj: dict) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _rehash(rec: dict) -> dict:
    """What a forger does: recompute the record's own hash after changing it."""
    body = {k: v for k, v in rec.items() if k != "hash"}
    return {**body, "hash": _sha(body)}


def _line(rec: dict) -> str:
    return json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def _write(path: Path, recs: list[dict]) -> None:
    path.write_text("".join(_line(r) + "\n" for r in recs), encoding="utf-8")


def _clock():
    start = datetime(2026, 11, 1, tzinfo=UTC)
    ticks = iter(range(10_000))
    return lambda: start + timedelta(seconds=next(ticks))


_KIND_CYCLE = sorted(KINDS)


def _build(path: Path, n: int = N) -> DecisionLog:
    log = DecisionLog(path, clock=_clock())
    for i in range(n):
        log.append(
            _KIND_CYCLE[i % len(_KIND_CYCLE)],
            actor=f"user{i % 3}",
            reason=f"decision {i}: gate results reviewed",
            model_name="adult_income" if i % 2 == 0 else "other_model",
            model_version=i // 2 + 1,
            payload={"i": i, "score": 0.85 + i / 1000, "tags": ["a", "b"]},
            evidence_hashes={"policy_sha256": hashlib.sha256(str(i).encode()).hexdigest()},
        )
    return log


@pytest.fixture()
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "decisions.jsonl"
    _build(path)
    return path


def _assert_bad(path: Path, index: int) -> None:
    result = verify(path)
    assert not result.ok, "tampering went undetected"
    assert result.first_bad_index == index, result.problem
    assert result.problem and str(index) in result.problem


# ----------------------------------------------------------------------------- untampered


def test_untampered_log_verifies_and_matches_independent_hashing(log_path: Path) -> None:
    result = verify(log_path)
    assert result.ok and result.count == N and result.first_bad_index is None and result.problem is None
    recs = _read(log_path)
    prev = GENESIS_HASH
    for i, rec in enumerate(recs):
        assert rec["index"] == i
        assert rec["prev_hash"] == prev
        assert rec["hash"] == _sha({k: v for k, v in rec.items() if k != "hash"})
        assert datetime.fromisoformat(rec["time"]).utcoffset() == timedelta(0)
        prev = rec["hash"]
    head = json.loads(head_path(log_path).read_text())
    assert head == {"count": N, "last_hash": prev}
    assert DecisionLog(log_path).head() == head
    assert result.last_hash == prev


def test_missing_log_is_empty_and_valid(tmp_path: Path) -> None:
    result = verify(tmp_path / "none.jsonl")
    assert result.ok and result.count == 0
    assert DecisionLog(tmp_path / "none.jsonl").head() == {"count": 0, "last_hash": GENESIS_HASH}


def test_unicode_reason_round_trips(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "u.jsonl")
    rec = log.append(
        "override",
        actor="zoë",
        reason="Überprüft — ok ✓",
        model_name="m",
        model_version="3",
        payload={},
        evidence_hashes={},
    )
    assert _read(tmp_path / "u.jsonl")[0]["reason"] == "Überprüft — ok ✓"
    assert rec.hash == _read(tmp_path / "u.jsonl")[0]["hash"]
    assert verify(tmp_path / "u.jsonl").ok


# ----------------------------------------------------------------------------- tampering


@pytest.mark.parametrize("k", [0, 4, N - 1])
@pytest.mark.parametrize(
    "field,value",
    [
        ("reason", "approved by nobody"),
        ("actor", "mallory"),
        ("payload", {"i": -1}),
        ("time", "2020-01-01T00:00:00+00:00"),
    ],
)
def test_edited_field_is_detected(log_path: Path, k: int, field: str, value: object) -> None:
    recs = _read(log_path)
    recs[k][field] = value
    _write(log_path, recs)
    _assert_bad(log_path, k)
    assert "edited" in verify(log_path).problem


@pytest.mark.parametrize("k", [0, 4, N - 2, N - 1])
def test_edited_and_rehashed_record_is_named(log_path: Path, k: int) -> None:
    recs = _read(log_path)
    recs[k] = _rehash({**recs[k], "reason": "rewritten history"})
    _write(log_path, recs)
    _assert_bad(log_path, k)


@pytest.mark.parametrize("k", [0, 3, N - 2])
def test_deleted_record_is_detected(log_path: Path, k: int) -> None:
    recs = _read(log_path)
    del recs[k]
    _write(log_path, recs)
    _assert_bad(log_path, k)


@pytest.mark.parametrize("k", [0, 5, N - 2])
def test_swapped_records_are_detected(log_path: Path, k: int) -> None:
    recs = _read(log_path)
    recs[k], recs[k + 1] = recs[k + 1], recs[k]
    _write(log_path, recs)
    _assert_bad(log_path, k)
    assert "order" in verify(log_path).problem


@pytest.mark.parametrize("drop", [1, 3, N])
def test_truncation_is_detected_by_the_head_anchor(log_path: Path, drop: int) -> None:
    recs = _read(log_path)
    _write(log_path, recs[: N - drop])
    _assert_bad(log_path, N - drop)
    assert "truncated" in verify(log_path).problem


@pytest.mark.parametrize("k", [1, 4, N - 1])
def test_inserted_forged_record_with_valid_own_hash(log_path: Path, k: int) -> None:
    # The best forgery: correct index, chained to record k-1, own hash recomputed.
    recs = _read(log_path)
    forged = _rehash({**recs[k], "reason": "forged approval", "prev_hash": recs[k - 1]["hash"]})
    _write(log_path, [*recs[:k], forged, *recs[k:]])
    _assert_bad(log_path, k)
    assert "inserted" in verify(log_path).problem


@pytest.mark.parametrize("k", [2, 6])
def test_inserted_naive_copy_and_garbage_link(log_path: Path, k: int) -> None:
    recs = _read(log_path)
    copy = _rehash({**recs[k - 1], "reason": "replayed with edits"})  # index k-1, chains to k-2
    _write(log_path, [*recs[:k], copy, *recs[k:]])
    _assert_bad(log_path, k)
    garbage = _rehash({**recs[k], "prev_hash": "f" * 64, "reason": "forged"})
    _write(log_path, [*recs[:k], garbage, *recs[k:]])
    _assert_bad(log_path, k)


def test_duplicated_record_is_detected(log_path: Path) -> None:
    recs = _read(log_path)
    _write(log_path, [*recs[:5], recs[4], *recs[5:]])
    _assert_bad(log_path, 5)


def test_record_appended_behind_the_librarys_back(log_path: Path) -> None:
    recs = _read(log_path)
    extra = _rehash({**recs[-1], "index": N, "prev_hash": recs[-1]["hash"], "reason": "sneaked in"})
    _write(log_path, [*recs, extra])
    _assert_bad(log_path, N)


@pytest.mark.parametrize("k", [0, 7])
def test_corrupt_line_is_detected(log_path: Path, k: int) -> None:
    lines = log_path.read_text(encoding="utf-8").splitlines()
    lines[k] = lines[k][: len(lines[k]) // 2]
    log_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _assert_bad(log_path, k)
    assert "JSON" in verify(log_path).problem


def test_torn_last_line_is_detected_and_blocks_appends(log_path: Path) -> None:
    data = log_path.read_bytes()
    log_path.write_bytes(data[:-20])
    _assert_bad(log_path, N - 1)
    with pytest.raises(LogIntegrityError, match="incomplete"):
        DecisionLog(log_path).append(
            "promotion", actor="a", reason="r", model_name="m", model_version=1, payload={}, evidence_hashes={}
        )


def test_missing_or_corrupt_head_is_reported(log_path: Path) -> None:
    head_path(log_path).unlink()
    result = verify(log_path)
    assert not result.ok and "missing" in result.problem
    head_path(log_path).write_text("{not json")
    result = verify(log_path)
    assert not result.ok and "head anchor" in result.problem


def test_consistent_rewrite_needs_an_external_witness(log_path: Path) -> None:
    witness = DecisionLog(log_path).head()  # published, e.g. as an MLflow tag
    recs = _read(log_path)
    prev = GENESIS_HASH
    rewritten = []
    for rec in recs[:6]:  # drop records 6.., rewrite 3, recompute the chain and the head
        if rec["index"] == 3:
            rec = {**rec, "reason": "history rewritten"}
        rec = _rehash({**rec, "prev_hash": prev})
        rewritten.append(rec)
        prev = rec["hash"]
    _write(log_path, rewritten)
    head_path(log_path).write_text(json.dumps({"count": 6, "last_hash": prev}))
    local = verify(log_path)  # log + head rewritten consistently: the witness file still catches it
    assert not local.ok and local.first_bad_index == 6 and "witness" in local.problem
    witness_path(log_path).write_text(json.dumps({"count": 6, "last_hash": prev}))  # ...unless rewritten too
    assert verify(log_path).ok
    result = verify(log_path, expected_head=witness)
    assert not result.ok and result.first_bad_index == 6 and "witness" in result.problem


def test_witness_allows_growth_but_not_rewrite(log_path: Path) -> None:
    log = DecisionLog(log_path)
    witness = log.head()
    log.append(
        "drift_alert",
        actor="sensor",
        reason="psi above policy",
        model_name="m",
        model_version=1,
        payload={},
        evidence_hashes={},
    )
    assert verify(log_path, expected_head=witness).ok
    assert log.verify(expected_head=witness).ok


def test_append_refuses_to_extend_a_truncated_log(log_path: Path) -> None:
    recs = _read(log_path)
    _write(log_path, recs[:-2])
    with pytest.raises(LogIntegrityError, match="head anchor"):
        DecisionLog(log_path).append(
            "rollback", actor="a", reason="r", model_name="m", model_version=1, payload={}, evidence_hashes={}
        )
    assert len(_read(log_path)) == N - 2  # nothing written


# ----------------------------------------------------------------------------- input validation


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"kind": "approve"}, "unknown decision kind"),
        ({"reason": "   "}, "reason"),
        ({"actor": ""}, "actor"),
        ({"evidence_hashes": {"data_md5": "not-hex"}}, "data_md5"),
        ({"payload": {"auc": float("nan")}}, "payload.auc"),
        ({"payload": {1: "int key"}}, "key 1"),
        ({"model_version": 1.5}, "model_version"),
    ],
)
def test_bad_appends_are_refused(tmp_path: Path, kwargs: dict, match: str) -> None:
    args = {
        "kind": "promotion",
        "actor": "alice",
        "reason": "ok",
        "model_name": "m",
        "model_version": 1,
        "payload": {},
        "evidence_hashes": {},
    }
    args.update(kwargs)
    kind = args.pop("kind")
    with pytest.raises((ValueError, TypeError), match=match):
        DecisionLog(tmp_path / "v.jsonl").append(kind, **args)
    assert not (tmp_path / "v.jsonl").exists()


def test_records_filters_match_an_independent_filter(log_path: Path) -> None:
    raw = _read(log_path)
    got = [r.to_dict() for r in read_records(log_path, model_name="adult_income", model_version="2")]
    assert got == [r for r in raw if r["model_name"] == "adult_income" and r["model_version"] == "2"]
    assert got  # the fixture has such records
    kinds = {"promotion", "rollback"}
    assert [r.to_dict() for r in read_records(log_path, kinds=kinds)] == [r for r in raw if r["kind"] in kinds]
    assert [r.model_version for r in read_records(log_path, model_version=2)] == [
        r["model_version"] for r in raw if r["model_version"] == "2"
    ]
    with pytest.raises(ValueError, match="unknown kind"):
        read_records(log_path, kinds=["promote"])
    # records(): the same filters, as the stored JSON objects
    assert records(log_path, model_version=2) == [r for r in raw if r["model_version"] == "2"]
    assert DecisionLog(log_path).records(kinds=kinds) == [r for r in raw if r["kind"] in kinds]


# ----------------------------------------------------------------------------- concurrency


def _worker(path: str, proc: int, n: int, barrier) -> None:
    log = DecisionLog(path)
    barrier.wait()
    for i in range(n):
        log.append(
            "gate_evaluation",
            actor=f"proc{proc}",
            reason=f"append {i}",
            model_name="m",
            model_version=proc,
            payload={"proc": proc, "i": i},
            evidence_hashes={},
        )


def test_concurrent_appends_from_processes_form_one_valid_chain(tmp_path: Path) -> None:
    path = tmp_path / "concurrent.jsonl"
    procs, per = 4, 25
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(procs)
    workers = [ctx.Process(target=_worker, args=(str(path), p, per, barrier)) for p in range(procs)]
    for w in workers:
        w.start()
    checks = 0
    while any(w.is_alive() for w in workers):  # readers never see a half-finished append
        result = verify(path)
        assert result.ok, result.problem
        checks += 1
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    result = verify(path)
    assert result.ok, result.problem
    assert result.count == procs * per
    recs = _read(path)
    assert [r["index"] for r in recs] == list(range(procs * per))
    seen = [(r["payload"]["proc"], r["payload"]["i"]) for r in recs]
    assert sorted(seen) == [(p, i) for p in range(procs) for i in range(per)]
    for p in range(procs):  # each process's own appends stay in its order
        assert [i for q, i in seen if q == p] == list(range(per))


def test_a_first_append_during_an_unlocked_read_is_read_again_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No writer yet means no lock file, so a reader reads unlocked; a first append landing between
    its reads of the log and of the head must not look like a rewritten log."""
    import importlib

    verify_module = importlib.import_module("mlgov_assets.core.audit.decision_log.verify")

    path = tmp_path / "first.jsonl"
    real_read_head = verify_module.read_head
    appended: list[bool] = []

    def read_head_after_an_append(log: Path):  # the log bytes were read (empty); then a writer appends
        if not appended:
            appended.append(True)
            _build(path, 1)
        return real_read_head(log)

    monkeypatch.setattr(verify_module, "read_head", read_head_after_an_append)
    result = verify(path)
    assert appended
    assert result.ok, result.problem
    assert result.count == 1
