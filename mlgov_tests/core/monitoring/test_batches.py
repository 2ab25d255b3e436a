"""Batches: id allow-list, landing-file names, reading CSV/Parquet/labels, simulated batches and the
retraining run key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov_assets.core.monitoring.batches import (
    align_labels,
    batch_id_from_filename,
    labels_filename,
    parse_landing_filename,
    read_batch,
    read_labels,
    retrain_run_key,
    simulate_batch,
    validate_batch_id,
)
from mlgov_tests.core.monitoring.helpers import ADULT, read_adult

DATA = Path(__file__).resolve().parents[3] / "data"
COLUMNS, LABEL, NUMERIC = ADULT.columns, ADULT.label, ADULT.numeric
FEATURES = [c for c in COLUMNS if c != LABEL]


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    return read_adult(DATA / "adult.test")


# --------------------------------------------------------------------------- ids and names


@pytest.mark.parametrize(
    "bad", ["../x", "a/b", "a\\b", "", "x" * 129, ".hidden", "a..b", "-x", "a b", "x.labels", "batch\n1", "é"]
)
def test_batch_id_rejects(bad):
    with pytest.raises(ValueError, match="batch id"):
        validate_batch_id(bad)


@pytest.mark.parametrize("good", ["batch_2026-11-27T10-00_cov", "b1", "A.b-c_d", "x" * 128, "2026.11.27"])
def test_batch_id_accepts(good):
    assert validate_batch_id(good) == good


def test_batch_id_rejects_non_string():
    with pytest.raises(ValueError, match="str"):
        validate_batch_id(123)  # type: ignore[arg-type]


def test_landing_filenames():
    assert batch_id_from_filename("/in/batch_2026-11-27T10-00_cov.csv") == "batch_2026-11-27T10-00_cov"
    assert parse_landing_filename("b7.parquet") == ("b7", "batch")
    assert parse_landing_filename("b7.labels.csv") == ("b7", "labels")
    assert parse_landing_filename(Path("x") / labels_filename("b7", ".parquet")) == ("b7", "labels")
    for bad in ("b7.txt", ".b7.csv.tmp", "b7.csv.part", "a..b.csv", ".labels.csv"):
        with pytest.raises(ValueError):
            parse_landing_filename(bad)


# --------------------------------------------------------------------------- reading


def test_read_batch_csv_with_and_without_header(holdout, tmp_path):
    b, _ = simulate_batch(ADULT, "none", holdout, 300, 1)
    p = tmp_path / "b1.csv"
    b.to_csv(p, index=False)
    got = read_batch(ADULT, p)
    assert got.index.name == "row_id" and list(got.index) == list(range(300))
    pd.testing.assert_frame_equal(got, b, check_index_type=False)

    raw_lines = (DATA / "adult.test").read_text().splitlines()[1:51]  # Adult layout, no header, labels "x."
    p2 = tmp_path / "b2.csv"
    p2.write_text("\n".join(raw_lines) + "\n")
    got2 = read_batch(ADULT, p2)
    assert list(got2.columns) == COLUMNS and len(got2) == 50
    assert set(got2[LABEL]) <= {"<=50K", ">50K"}
    assert got2.iloc[0].tolist() == [v.strip().rstrip(".") for v in raw_lines[0].split(",")]


def test_read_batch_parquet_gives_raw_strings(holdout, tmp_path):
    b, _ = simulate_batch(ADULT, "none", holdout, 100, 2)
    typed = b.copy()
    for c in NUMERIC:
        typed[c] = pd.to_numeric(typed[c]).astype("Int64")
    typed.loc[3, "age"] = pd.NA
    p = tmp_path / "b3.parquet"
    typed.to_parquet(p, index=False)
    got = read_batch(ADULT, p)
    assert all(dt == np.dtype(object) for dt in got.dtypes)
    assert got.loc[3, "age"] == "?" and got.loc[4, "age"] == b.loc[4, "age"]
    assert got.drop(index=3).equals(b.drop(index=3))


def test_read_batch_row_id_column(tmp_path, holdout):
    b, _ = simulate_batch(ADULT, "none", holdout, 5, 0)
    p = tmp_path / "b4.csv"
    b.assign(row_id=[10, 11, 12, 13, 14]).to_csv(p, index=False)
    assert list(read_batch(ADULT, p).index) == [10, 11, 12, 13, 14]
    b.assign(row_id=[1, 1, 2, 3, 4]).to_csv(p, index=False)
    with pytest.raises(ValueError, match="duplicate"):
        read_batch(ADULT, p)


def test_labels_file_roundtrip_and_alignment(holdout, tmp_path):
    batch, labels = simulate_batch(ADULT, "none", holdout, 200, 3, with_labels=True)
    p = tmp_path / labels_filename("b5")
    labels.to_csv(p, index=False)
    got = read_labels(ADULT, p)
    pd.testing.assert_frame_equal(got, labels)
    y = align_labels(ADULT, batch.index, got.iloc[:150])
    assert y.iloc[:150].tolist() == (labels[LABEL].iloc[:150] == ">50K").astype(float).tolist()
    assert y.iloc[150:].isna().all()
    with pytest.raises(ValueError, match="not in the batch"):
        align_labels(ADULT, batch.index[:10], got)
    labels.assign(income=["maybe", *labels[LABEL].tolist()[1:]]).to_csv(p, index=False)
    with pytest.raises(ValueError, match=r"bad rows \[0\]"):
        read_labels(ADULT, p)


# --------------------------------------------------------------------------- simulation


def test_simulate_none_is_a_reproducible_resample(holdout):
    b, labels = simulate_batch(ADULT, "none", holdout, 4000, 42, with_labels=True)
    again, _ = simulate_batch(ADULT, "none", holdout, 4000, 42)
    other, _ = simulate_batch(ADULT, "none", holdout, 4000, 43)
    assert b.equals(again) and not b.equals(other)
    assert list(b.columns) == FEATURES and len(b) == 4000 and LABEL not in b.columns
    rows = set(map(tuple, holdout[FEATURES].to_numpy()))
    assert all(tuple(r) in rows for r in b.to_numpy()[:500])
    assert list(labels.columns) == ["row_id", LABEL] and labels["row_id"].tolist() == list(range(4000))
    base = (holdout[LABEL] == ">50K").mean()
    assert abs((labels[LABEL] == ">50K").mean() - base) < 0.03


def test_simulate_covariate_shifts_age_and_hours(holdout):
    b, labels = simulate_batch(ADULT, "covariate", holdout, 5000, 1)
    assert labels is None
    for col, min_shift in (("age", 5.0), ("hours_per_week", 4.0)):
        assert pd.to_numeric(b[col]).mean() - pd.to_numeric(holdout[col]).mean() > min_shift


def test_simulate_label_drift_changes_the_prior(holdout):
    b, labels = simulate_batch(ADULT, "label", holdout, 5000, 1)  # labels come with it even when not asked
    assert labels is not None and len(labels) == len(b)
    assert (holdout[LABEL] == ">50K").mean() < 0.25
    assert abs((labels[LABEL] == ">50K").mean() - 0.5) < 0.03


def test_simulate_broken_breaks_the_raw_schema(holdout):
    b, _ = simulate_batch(ADULT, "broken", holdout, 1000, 5)
    assert "occupation" not in b.columns
    age = pd.to_numeric(b["age"], errors="coerce")
    assert (age > 120).any() and (age < 0).any()
    assert not b["workclass"].isin([*ADULT.spec.columns["workclass"].categories, "?"]).all()
    assert pd.to_numeric(b["hours_per_week"], errors="coerce").isna().any()


def test_simulate_rejects_bad_arguments(holdout):
    with pytest.raises(ValueError, match="kind"):
        simulate_batch(ADULT, "seasonal", holdout, 10, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rows"):
        simulate_batch(ADULT, "none", holdout, 0, 0)
    with pytest.raises(ValueError, match="occupation"):
        simulate_batch(ADULT, "none", holdout.drop(columns=["occupation"]), 10, 0)


# --------------------------------------------------------------------------- run key


def test_retrain_run_key_is_stable_and_evidence_bound():
    ev = {
        "batch_ids": ["b2", "b1"],
        "reference_fingerprint": "f" * 64,
        "champion_version": "3",
        "drifted_share": 0.57,
        "detected_at": "2026-11-27T10:00:00Z",
    }
    key = retrain_run_key(ev)
    assert key.startswith("retrain-") and len(key) == len("retrain-") + 24
    same = {**ev, "batch_ids": ["b1", "b2", "b1"], "drifted_share": 0.571, "detected_at": "later"}
    assert retrain_run_key(same) == key
    assert retrain_run_key({**ev, "champion_version": "4"}) != key
    assert retrain_run_key({**ev, "batch_ids": ["b1"]}) != key
    with pytest.raises(ValueError, match="reference_fingerprint"):
        retrain_run_key({"batch_ids": ["b1"], "champion_version": "3"})
    with pytest.raises(ValueError, match="batch id"):
        retrain_run_key({**ev, "batch_ids": ["../etc"]})


def test_parquet_and_csv_batches_with_some_labels_missing_are_read_alike(tmp_path):
    from mlgov_assets.core.data.schemas import validate
    from mlgov_assets.core.monitoring.batches import read_batch
    from mlgov_assets.core.project.schemas import raw_schema

    raw = read_adult(DATA / "adult.test").head(50).copy()
    raw.loc[[3, 9], "income"] = None
    raw.to_csv(tmp_path / "b1.csv", index=False)
    raw.to_parquet(tmp_path / "b2.parquet", index=False)
    a, b = read_batch(ADULT, tmp_path / "b1.csv"), read_batch(ADULT, tmp_path / "b2.parquet")
    assert a["income"].isna().sum() == b["income"].isna().sum() == 2
    schema = raw_schema(ADULT, batch=True)
    assert schema.name == "UnlabelledRawAdultSchema"
    assert validate(a, schema, source="csv").passed
    assert validate(b, schema, source="parquet").passed
