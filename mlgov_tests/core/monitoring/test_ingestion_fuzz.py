"""Fuzzing batch intake (landing scan -> accept_batch) with hypothesis: random bytes, CSV shapes,
encodings, column sets and entry kinds (symlinks, FIFOs, directories, hard links).

Invariants, whatever lands: every file ends accepted (valid, at least ``min_batch_rows`` rows, model
inputs buildable as scoring builds them) or quarantined once with a reason; no exception escapes;
nothing outside the landing folder is opened following a link, and its content never appears in the
evidence; no failure report or alert line exceeds ``ingestion.max_report_bytes``. Bounded budget
(CI: well under 60 s)."""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mlgov_assets.core.governance.policy import Ingestion, load_policy
from mlgov_assets.core.monitoring.intake import accept_batch
from mlgov_assets.core.monitoring.landing import plan_landing
from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringPaths, read_jsonl
from mlgov_assets.core.monitoring.scoring import model_inputs
from mlgov_assets.core.settings import get_settings
from mlgov_tests.core.monitoring.helpers import ADULT, DATA, read_adult

SECRET = "OUTSIDE-SECRET-7f3a9c"
POLICY = load_policy(DATA.parent / "mlgov_assets" / "policies" / "default.yaml")
MIN_ROWS = 3
FUZZ_POLICY = POLICY.model_copy(
    update={
        "monitoring": POLICY.monitoring.model_copy(update={"min_batch_rows": MIN_ROWS}),
        "ingestion": Ingestion(max_file_bytes=64_000, max_line_chars=600, max_field_chars=80, max_report_bytes=16_384),
    }
)
HOLDOUT = read_adult(DATA / "adult.test").head(40)
COLUMNS = list(ADULT.columns)
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252", "utf-32")

#: Paths opened (by any means) that resolve to the outside secret while following links.
_FOLLOWED: list[str] = []
_WATCH: dict[str, str] = {}


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event != "open" or not _WATCH or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.fsdecode(args[0])  # type: ignore[arg-type]
    flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
    nofollow = bool(flags & getattr(os, "O_NOFOLLOW", 0))
    try:
        real = os.path.realpath(path)
    except (OSError, ValueError):
        return
    if real == _WATCH["secret"] and not (nofollow and os.path.islink(path)):
        _FOLLOWED.append(path)


sys.addaudithook(_audit)  # audit hooks cannot be removed: inert unless _WATCH is set


# --------------------------------------------------------------------------- strategies

_cell = st.one_of(
    st.sampled_from(sorted({str(v) for c in COLUMNS for v in HOLDOUT[c].dropna().unique()})),
    st.text(max_size=12),
    st.text(min_size=70, max_size=200),  # over the field cap
    st.sampled_from(["", "?", "-1", "1e309", "NaN", '"quoted, comma"', "\r", "\n", "\x00", "\ufeff"]),
)
_names = st.lists(
    st.one_of(st.sampled_from([*COLUMNS, "row_id", "ssn", "Sex", "native-country"]), st.text(max_size=8)),
    max_size=20,
)


@st.composite
def csv_text(draw: st.DrawFn) -> str:
    """A CSV with a random column set (often the spec's, in any order, plus or minus some) and rows
    that are mostly from the holdout; ``mess`` 0 is a clean batch, higher levels break more of it."""
    mess = draw(st.sampled_from([0, 0, 1, 1, 2, 3]))
    header = list(draw(st.permutations(COLUMNS)) if draw(st.booleans()) else COLUMNS)
    if mess and draw(st.booleans()):
        header = draw(_names) if draw(st.booleans()) else [*header, *draw(_names)]
    if mess and draw(st.booleans()) and header:
        header.pop(draw(st.integers(0, len(header) - 1)))
    n = draw(st.integers(MIN_ROWS, 8) if not mess else st.integers(0, 8))
    rows = HOLDOUT.sample(n=max(n, 1), replace=True, random_state=draw(st.integers(0, 99))).head(n)
    lines = [",".join(header)] if not mess or draw(st.integers(0, 9)) else []
    for _, row in rows.iterrows():
        fields = [str(row[c]) if c in row.index else draw(_cell) for c in header]
        if mess and fields and draw(st.integers(0, 3)) == 0:  # a plausible but invalid value
            fields[draw(st.integers(0, len(fields) - 1))] = draw(st.sampled_from(["Astronaut", "forty", "-5", "200"]))
        if mess >= 2 and draw(st.integers(0, 3)) == 0:
            fields = fields[: draw(st.integers(0, len(fields)))] + draw(st.lists(_cell, max_size=2))
        if mess and fields and draw(st.integers(0, 3)) == 0:
            fields[draw(st.integers(0, len(fields) - 1))] = draw(_cell)
        lines.append(",".join(fields))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"])) if mess else "\n"
    return end.join(lines) + draw(st.sampled_from(["", end]))


@st.composite
def landing_file(draw: st.DrawFn) -> tuple[str, str, bytes]:
    """``(kind, suffix, content)``: kind is how the entry exists in the landing folder."""
    kind = draw(st.sampled_from(["file"] * 16 + ["symlink", "fifo", "dir", "hardlink"]))
    suffix = draw(st.sampled_from([".csv"] * 4 + [".parquet"]))
    form = draw(st.sampled_from(["csv"] * 6 + ["bytes", "parquet"]))
    if form == "bytes":
        content = draw(st.binary(max_size=600))
    elif form == "parquet":
        text = draw(csv_text())
        try:
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
            buf = io.BytesIO()
            frame.to_parquet(buf, index=False)
            content = buf.getvalue()
        except Exception:  # pandas could not make a table of it: land the text itself
            content = text.encode()
    else:
        enc = draw(st.sampled_from(["utf-8"] * 3 * len(ENCODINGS) + list(ENCODINGS)))
        content = draw(csv_text()).encode(enc, errors="replace")
        if draw(st.integers(0, 9)) == 0:
            content = content + b"," + b"Y" * draw(st.integers(600, 70_000))  # over a cap
    return kind, suffix, content


# --------------------------------------------------------------------------- the invariants


def _land(landing: Path, outside: Path, name: str, kind: str, content: bytes) -> None:
    path = landing / name
    if kind == "symlink":
        path.symlink_to(outside)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
        (path / "inner.csv").write_text(SECRET)
    elif kind == "hardlink":
        os.link(outside, path)
    else:
        path.write_bytes(content)
    os.utime(path, (1, 1), follow_symlinks=False)


def _check_one(tmp: Path, kind: str, suffix: str, content: bytes) -> bool:
    """Land one entry, scan and accept it, check every invariant; whether it was accepted."""
    outside = tmp / "outside.csv"
    outside.write_text(f"age,workclass\n{SECRET},x\n")
    s = get_settings(home=tmp / "state", project_dir=tmp / "project", landing_dir=tmp / "landing").ensure()
    s.landing_dir.mkdir(parents=True, exist_ok=True)
    _land(s.landing_dir, outside, f"f1{suffix}", kind, content)
    paths = MonitoringPaths.of(s)
    ledger = BatchLedger(paths)
    _WATCH["secret"] = os.path.realpath(outside)
    try:
        plan = plan_landing(s.landing_dir, ledger, None, limits=FUZZ_POLICY.ingestion)
        assert [f.batch_id for f in plan.new_batches] == ["f1"]
        acc = accept_batch(s, ADULT, "f1", policy=FUZZ_POLICY)
    finally:
        _WATCH.clear()
    assert not _FOLLOWED, f"followed a link outside the landing folder: {_FOLLOWED}"
    entry = ledger.get("f1")
    assert entry is not None
    if acc.intake.valid:
        assert kind == "file" and entry["status"] == "validated" and len(acc.frame) >= MIN_ROWS
        model_inputs(ADULT, acc.frame)  # what scoring builds first: must not raise on an accepted batch
    else:
        assert entry["status"] == "quarantined" and acc.intake.summary
        event(
            f"rule: {acc.intake.validation['failures'][0]['check'][:40] if acc.intake.validation['failures'] else '-'}"
        )
        report = (paths.quarantine_dir("f1") / "failure_report.json").read_text()
        assert len(report) <= FUZZ_POLICY.ingestion.max_report_bytes
        assert json.loads(report)["report"]["failures"] or json.loads(report)["report"].get("truncated")
        assert not os.path.lexists(s.landing_dir / f"f1{suffix}")  # moved out: never retried as new
        again = plan_landing(s.landing_dir, ledger, plan.seen, limits=FUZZ_POLICY.ingestion)
        assert not again.new_batches
    alerts = paths.alerts.read_text() if paths.alerts.exists() else ""
    assert all(len(line) <= FUZZ_POLICY.ingestion.max_report_bytes for line in alerts.splitlines())
    evidence = alerts + json.dumps(entry) + json.dumps(acc.intake.validation)
    assert SECRET not in evidence
    assert len(read_jsonl(paths.alerts)) == (0 if acc.intake.valid else 1)
    return acc.intake.valid


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(landing_file())
def test_any_landed_entry_is_accepted_or_quarantined_with_a_bounded_reason(entry: tuple[str, str, bytes]) -> None:
    kind, suffix, content = entry
    with tempfile.TemporaryDirectory() as tmp:
        accepted = _check_one(Path(tmp), kind, suffix, content)
    event(f"{kind}{suffix}: {'accepted' if accepted else 'quarantined'}")


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([*COLUMNS, "ssn", "row_id"]), min_size=1, max_size=20))
def test_any_column_set_other_than_the_specs_is_refused(columns: list[str]) -> None:
    """Only the spec's columns, each once (label optional, row_id allowed), are accepted."""
    rows = HOLDOUT.head(5).assign(ssn="1", row_id=range(5))
    text = rows[columns].to_csv(index=False) if len(set(columns)) == len(columns) else None
    if text is None:  # duplicates: write them by hand (pandas would take the column twice anyway)
        text = "\n".join([",".join(columns)] + [",".join(str(r[c]) for c in columns) for _, r in rows.iterrows()])
    with tempfile.TemporaryDirectory() as tmp:
        accepted = _check_one(Path(tmp), "file", ".csv", text.encode())
    exact = set(columns) - {"row_id", ADULT.label} == set(COLUMNS) - {ADULT.label} and "ssn" not in columns
    if not exact or len(set(columns)) != len(columns):
        assert not accepted, columns


def test_the_watch_catches_a_followed_link(tmp_path):
    """The fuzz test's 'nothing outside is read' check can fail: a plain open through a link is seen."""
    outside = tmp_path / "outside"
    outside.write_text(SECRET)
    (tmp_path / "link").symlink_to(outside)
    _WATCH["secret"] = os.path.realpath(outside)
    try:
        (tmp_path / "link").read_text()
        with_nofollow = os.open(tmp_path / "outside", os.O_RDONLY | os.O_NOFOLLOW)  # the file itself: seen too
        os.close(with_nofollow)
    finally:
        _WATCH.clear()
    seen = list(_FOLLOWED)
    _FOLLOWED.clear()
    assert seen == [str(tmp_path / "link"), str(tmp_path / "outside")]
