"""The pure parts of online scoring, without a model: request judging, the prediction log
(one write per line, torn tail, rotation), the roll into landing batches and labels by row id."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from mlgov_assets.core.errors import InputError
from mlgov_assets.core.monitoring.batches import read_batch, read_labels
from mlgov_assets.core.serving.options import ServeOptions
from mlgov_assets.core.serving.predlog import (
    ModelOutput,
    PredictionLog,
    PredictionRecord,
    ShadowRecord,
    log_files,
    read_log,
    utc_iso,
)
from mlgov_assets.core.serving.requests import RequestRefused, parse_request
from mlgov_assets.core.serving.roller import BatchRoller, land_labels
from mlgov_tests.core.monitoring.helpers import ADULT, DATA, read_adult

OPTS = ServeOptions(max_rows=5, max_body_bytes=4096)


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    raw = read_adult(DATA / "adult.test").drop(columns=[ADULT.label]).head(20)
    return raw.to_dict("records")


def _refused(body: object, opts: ServeOptions = OPTS) -> RequestRefused:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(RequestRefused) as err:
        parse_request(ADULT, data, opts)
    return err.value


def test_a_valid_request_becomes_validated_raw_rows(rows):
    parsed = parse_request(ADULT, json.dumps({"rows": rows[:3], "reasons": 2}).encode(), OPTS)
    assert (
        len(parsed.raw) == 3
        and parsed.reasons == 2
        and list(parsed.raw.columns) == [c for c in ADULT.columns if c != ADULT.label]
    )
    # numbers are raw text, as a CSV carries them; the hash is of the logged rows
    one = parse_request(ADULT, json.dumps({"row": {**rows[0], "age": 25}}).encode(), OPTS)
    assert one.rows[0]["age"] == "25" and len(one.input_sha256) == 64


def test_bad_requests_are_refused_naming_field_and_rule(rows):
    assert _refused(b"{not json").status == 400
    assert _refused([1, 2]).status == 422
    unknown = _refused({"row": {**rows[0], "zzz_column": "1"}})
    assert unknown.status == 422 and "zzz_column" in unknown.problems[0].field and "unknown column" in str(unknown)
    wrong_type = _refused({"row": {**rows[0], "age": [1, 2]}})
    assert wrong_type.problems[0].field == "age" and "list" in wrong_type.problems[0].rule
    bad_value = _refused({"row": {**rows[0], "age": "abc"}})
    assert bad_value.status == 422 and any(p.field == "age" for p in bad_value.problems)
    missing = dict(rows[0])
    del missing["education"]
    assert any("education" in p.field for p in _refused({"row": missing}).problems)
    assert _refused({"rows": rows[:6]}).status == 422  # over max_rows
    assert _refused({"rows": []}).status == 422
    assert _refused({"row": rows[0], "reasons": 99}).problems[0].field == "reasons"
    assert _refused({"row": rows[0], "extra": 1}).status == 422
    big = _refused({"row": {**rows[0], "workclass": "x" * 5000}})
    assert big.status == 413  # over max_body_bytes before anything is parsed
    huge_field = _refused({"row": {**rows[0], "workclass": "x" * 3000}}, ServeOptions(max_body_bytes=1 << 20))
    assert huge_field.status == 422 and len(str(huge_field.problems[0].value)) < 200  # quoted, capped


def _record(rid: int, row: dict[str, str], version: int = 1) -> PredictionRecord:
    return PredictionRecord(
        request_id=str(rid),
        row_ids=[rid],
        input_sha256="0" * 64,
        rows=[row],
        champion=ModelOutput(version=version, scores=[0.5], decisions=[1]),
        latency_ms=1.0,
        time=utc_iso(),
    )


def test_torn_tail_is_skipped_and_the_next_line_starts_clean(tmp_path, rows):
    path = tmp_path / "predictions.jsonl"
    log = PredictionLog(path, fsync="always")
    log.append(_record(1, rows[0]))
    log.close()
    with open(path, "ab") as fh:  # a crash mid-write
        fh.write(b'{"kind": "prediction", "request_id": "2", "row_')
    torn = read_log(path)
    assert [r.request_id for r in torn.records] == ["1"] and torn.skipped == 1
    log = PredictionLog(path, fsync="always")  # reopened: the torn line is closed off, never glued to
    log.append(
        ShadowRecord(request_id="1", shadow=ModelOutput(version=2, error="boom"), latency_ms=0.1, time=utc_iso())
    )
    log.close()
    after = read_log(path)
    assert [r.kind for r in after.records] == ["prediction", "shadow"] and after.skipped == 1


def test_the_log_rotates_and_stays_bounded(tmp_path, rows):
    path = tmp_path / "predictions.jsonl"
    log = PredictionLog(path, fsync="never", max_bytes=4096, keep=2)
    for i in range(60):
        log.append(_record(i, rows[i % 20]))
    log.close()
    files = log_files(path)
    assert len(files) == 3 and log.rotations >= 2  # live + 2 kept
    assert all(f.stat().st_size < 4096 + 2048 for f in files)
    ids = [r.row_ids[0] for r in read_log(path).records if isinstance(r, PredictionRecord)]
    assert ids == sorted(ids) and ids[-1] == 59  # the newest kept, in order; the oldest dropped


def test_rows_roll_into_landing_batches_and_labels_find_them(tmp_path, rows):
    from mlgov_assets.core.settings import get_settings

    settings = get_settings(home=tmp_path / "state", project_dir=tmp_path, landing_dir=tmp_path / "landing").ensure()
    roller = BatchRoller(settings, ADULT, roll_rows=8, roll_seconds=3600, min_rows=4)
    for i, row in enumerate(rows):
        roller.add([100 + i], [row])
    written = roller.roll()
    assert [p.name for p in written] == ["serve-100.csv", "serve-108.csv"] and roller.pending() == 4
    batch = read_batch(ADULT, written[0])
    assert batch.index.tolist() == list(range(100, 108)) and batch["age"].tolist() == [r["age"] for r in rows[:8]]
    assert roller.roll(force=True)[0].name == "serve-116.csv"
    # a restart: the cursor says everything is rolled, so the log's rows are not rolled again
    log = PredictionLog(tmp_path / "p.jsonl", fsync="never")
    for i, row in enumerate(rows):
        log.append(_record(100 + i, row))
    log.close()
    assert BatchRoller(settings, ADULT, roll_rows=8, roll_seconds=1, min_rows=4).recover(log.path) == 0
    paths = land_labels(settings, ADULT, {101: ">50K", 109: "<=50K"})
    assert sorted(p.name for p in paths) == ["serve-100.labels.csv", "serve-108.labels.csv"]
    land_labels(settings, ADULT, {102: "<=50K"})  # merged with the labels already landed
    got = read_labels(ADULT, settings.landing_dir / "serve-100.labels.csv")
    assert got.to_dict("list") == {"row_id": [101, 102], "income": [">50K", "<=50K"]}
    with pytest.raises(InputError, match="no landing batch yet"):
        land_labels(settings, ADULT, {999_999: ">50K"})
    assert isinstance(batch, pd.DataFrame)


def test_fastapi_and_uvicorn_load_only_for_serve():
    import subprocess
    import sys

    code = (
        "import sys, mlgov_assets.definitions, mlgov_assets.cli as c; c.build_parser(); "
        "print(','.join(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"definitions / mlgov --help pulled in: {out}"


def test_the_interval_fsync_is_off_the_append_path_and_does_not_hold_appends(tmp_path, monkeypatch):
    import os
    import threading

    log = PredictionLog(tmp_path / "p.jsonl", fsync="interval", fsync_seconds=0.001)
    record = ShadowRecord(request_id="1", shadow=ModelOutput(version=1), latency_ms=1.0, time=utc_iso())
    entered, release, calls = threading.Event(), threading.Event(), []
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        calls.append(fd)
        entered.set()
        release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    log.append(record)
    log.append(record)
    assert calls == []  # "interval": appends never fsync, the housekeeping thread does
    flusher = threading.Thread(target=log.sync)
    flusher.start()
    assert entered.wait(10)
    log.append(record)  # returns while the fsync is still blocked
    assert flusher.is_alive() and len(read_log(log.path).records) == 3
    release.set()
    flusher.join(10)
    log.close()
    assert len(read_log(log.path).records) == 3 and len(calls) == 2  # the sync, then close


def test_each_scoring_thread_limits_openmp_itself():
    """OpenMP limits are per thread: the main thread's limit does not reach a worker thread."""
    import threading

    import sklearn.ensemble  # noqa: F401 - loads the OpenMP runtime
    from threadpoolctl import threadpool_info, threadpool_limits

    from mlgov_assets.core.serving.service import one_openmp_thread

    def openmp_threads() -> set[int]:
        return {i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openmp"}

    seen: dict[str, set[int]] = {}

    def worker() -> None:
        seen["before"] = openmp_threads()
        one_openmp_thread()
        seen["after"] = openmp_threads()

    with threadpool_limits(1, user_api="openmp"):  # a limit on this (main) thread
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    assert seen["after"] == {1}
    if os.cpu_count() and os.cpu_count() > 1 and "OMP_NUM_THREADS" not in os.environ:
        assert seen["before"] != {1}  # the reason the service sets it per thread
