"""The raw-file rules training data, holdout and batches share (``read_raw`` + the strict raw schema):
each rule refuses by name, with line numbers, and never copies a raw value verbatim."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from mlgov_assets.core.data.schemas import validate
from mlgov_assets.core.governance.policy import Ingestion
from mlgov_assets.core.project.quoting import quote, quote_bytes
from mlgov_assets.core.project.reader import RawFileError, read_raw
from mlgov_assets.core.project.schemas import raw_schema
from mlgov_tests.core.monitoring.helpers import ADULT, DATA, read_adult


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return read_adult(DATA / "adult.test").head(30)


def _csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False)


def _refusal(tmp_path, content: bytes | str, *, limits: Ingestion | None = None, name: str = "t.csv") -> RawFileError:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(RawFileError) as info:
        read_raw(ADULT, path, limits=limits)
    return info.value


def _checks(err: RawFileError) -> dict[str, str]:
    return {f.column: f.check for f in err.failures}


def test_a_valid_file_reads_as_before(tmp_path, rows):
    path = tmp_path / "ok.csv"
    path.write_text(_csv(rows))
    df = read_raw(ADULT, path, limits=Ingestion())
    assert list(df.columns) == ADULT.columns and len(df) == 30
    assert validate(df, raw_schema(ADULT), source="ok.csv").passed
    # the shipped training file (no header, comment-free) and holdout (a comment line) read whole
    assert len(read_adult(DATA / "adult.data")) == 32561 and len(read_adult(DATA / "adult.test")) == 16281


def test_a_byte_order_mark_is_named_not_read_as_a_data_row(tmp_path, rows):
    err = _refusal(tmp_path, b"\xef\xbb\xbf" + _csv(rows).encode())
    assert err.failures[0].check.startswith("no byte-order mark") and "UTF-8 BOM" in str(err)
    err16 = _refusal(tmp_path, _csv(rows).encode("utf-16"))
    assert "UTF-16-LE BOM" in str(err16)


def test_a_wrong_encoding_names_the_line_and_byte(tmp_path, rows):
    text = _csv(rows).replace("Private", "Privé", 1).encode("latin-1")
    err = _refusal(tmp_path, text)
    (failure,) = err.failures
    assert failure.check == "utf-8 text" and failure.examples[0]["line"] >= 2 and "byte" in failure.examples[0]["value"]


def test_nul_bytes_are_refused_as_binary(tmp_path, rows):
    err = _refusal(tmp_path, _csv(rows).encode() + b"\x00\x01\x02")
    assert "NUL" in err.failures[0].check


def test_ragged_records_are_refused_with_their_line_numbers(tmp_path, rows):
    lines = _csv(rows).splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0]  # the label lost
    lines[7] = lines[7] + ",extra"
    err = _refusal(tmp_path, "\n".join(lines) + "\n")
    (failure,) = err.failures
    assert failure.column == "<row>" and failure.count == 2
    assert [ex["line"] for ex in failure.examples] == [4, 8]
    assert [ex["value"] for ex in failure.examples] == ["14 fields", "16 fields"]


def test_ragged_training_file_without_header_is_refused_too(tmp_path):
    body = "\n".join((DATA / "adult.data").read_text().splitlines()[:20])
    short = body.replace(", <=50K", "", 1)  # first record without its label
    err = _refusal(tmp_path, short + "\n", name="adult.data")
    assert err.failures[0].examples[0]["line"] == 1


def test_duplicate_columns_are_refused_by_name_even_with_conflicting_values(tmp_path, rows):
    dup = rows.copy()
    text = _csv(dup).splitlines()
    header = text[0] + ",sex"
    body = [ln + (",Female" if "Male" in ln else ",Male") for ln in text[1:]]
    err = _refusal(tmp_path, "\n".join([header, *body]) + "\n")
    assert _checks(err) == {"sex": "unique column name"}
    assert err.failures[0].examples == [{"row": None, "value": "positions [10, 16]"}]
    # a header alias (native-country) colliding with the spec's spelling is a duplicate too
    alias = _csv(rows).splitlines()
    alias[0] = alias[0].replace(",sex,", ",native-country,", 1)
    err = _refusal(tmp_path, "\n".join(alias) + "\n")
    assert "unique column name" in _checks(err).values()


@pytest.mark.parametrize("where", ["end", "middle"])
def test_an_unknown_column_is_refused_by_the_strict_schema(tmp_path, rows, where):
    df = rows.copy()
    pos = len(df.columns) if where == "end" else 5
    df.insert(pos, "ssn", [f"123-45-{i:04d}" for i in range(len(df))])
    path = tmp_path / "extra.csv"
    path.write_text(_csv(df))
    report = validate(read_raw(ADULT, path), raw_schema(ADULT, batch=True), source=path.name)
    assert not report.passed and ("ssn", "column_in_schema") in {(f.column, f.check) for f in report.failures}
    assert "123-45-" not in str(report.to_dict())  # the unknown column's values are not evidence


def test_a_missing_column_is_refused_by_name(tmp_path, rows):
    path = tmp_path / "missing.csv"
    path.write_text(_csv(rows.drop(columns=["education"])))
    report = validate(read_raw(ADULT, path), raw_schema(ADULT), source=path.name)
    assert ("education", "column_in_dataframe") in {(f.column, f.check) for f in report.failures}


def test_empty_and_header_only_files_are_refused(tmp_path, rows):
    for content in (b"", b"\n\n  \n", b"|only a comment\n"):
        err = _refusal(tmp_path, content)
        assert err.failures[0].check.startswith("not empty")
    path = tmp_path / "header.csv"
    path.write_text(",".join(rows.columns) + "\n")
    df = read_raw(ADULT, path)
    assert len(df) == 0 and list(df.columns) == ADULT.columns
    report = validate(df, raw_schema(ADULT), source=path.name)
    assert not report.passed and report.failures[0].check == "at least one data row"


def test_line_and_field_caps_come_from_the_policy_and_quote_the_value(tmp_path, rows):
    df = rows.copy()
    df.loc[2, "occupation"] = "A" * 5000
    path_text = _csv(df)
    err = _refusal(tmp_path, path_text, limits=Ingestion(max_field_chars=100))
    (failure,) = err.failures
    assert failure.column == "occupation" and failure.check == "fields of at most 100 characters"
    assert failure.examples[0]["line"] == 4 and len(failure.examples[0]["value"]) < 200
    assert hashlib.sha256(b"A" * 5000).hexdigest() in failure.examples[0]["value"]
    err = _refusal(tmp_path, path_text, limits=Ingestion(max_line_chars=1000))
    assert err.failures[0].check == "lines of at most 1000 characters" and err.failures[0].examples[0]["line"] == 4
    assert len(str(err)) < 1000


def test_quote_keeps_short_values_and_bounds_long_ones():
    assert quote("Private") == "Private"
    assert quote("a\nb") == "a\\nb"  # a value cannot forge a log line
    big = "x" * (64 * 1024 * 1024)
    q = quote(big)
    assert len(q) < 200 and q.startswith("x" * 40 + "…") and str(len(big)) in q
    assert hashlib.sha256(big.encode()).hexdigest() in q
    assert "[3 bytes, sha256" in quote_bytes(b"\xff\x00a")


def test_every_example_has_the_row_and_value_keys_the_check_tables_read(tmp_path, rows):
    """``schema_check_result`` (the Dagster check) reads ``row`` and ``value`` of every example."""
    from mlgov_assets.core.data.schemas import refused

    header_only = tmp_path / "h.csv"
    header_only.write_text(",".join(rows.columns) + "\n")
    reports = [validate(read_raw(ADULT, header_only), raw_schema(ADULT), source="h.csv")]
    lines = _csv(rows).splitlines()
    for content in (
        b"",
        b"\xef\xbb\xbf" + _csv(rows).encode(),
        "\n".join([lines[0] + ",sex,ssn", *(ln + ",Male,1" for ln in lines[1:])]),
        "\n".join([*lines[:3], lines[3] + ",x"]),
    ):
        reports.append(refused("t.csv", "raw", _refusal(tmp_path, content, limits=Ingestion())))
    for report in reports:
        assert not report.passed
        for failure in report.failures:
            assert all("row" in ex and "value" in ex for ex in failure.examples), failure
