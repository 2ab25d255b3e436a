"""Batches: id allow-list, landing-file names, reading CSV/Parquet/labels, simulated batches,
performance metrics (vs scikit-learn), breach rules, McNemar (vs a hand computation) and the
retraining run key."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov_assets.core.data.adult import CATEGORIES, COLUMNS, LABEL, NUMERIC, read_adult_csv
from mlgov_assets.core.monitoring.batches import (
    align_labels,
    batch_id_from_filename,
    labels_filename,
    mcnemar_test,
    parse_landing_filename,
    performance_breach,
    performance_metrics,
    read_batch,
    read_labels,
    retrain_run_key,
    simulate_batch,
    validate_batch_id,
)

DATA = Path(__file__).resolve().parents[3] / "data"
FEATURES = [c for c in COLUMNS if c != LABEL]


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    return read_adult_csv(DATA / "adult.test")


def toy_score(df: pd.DataFrame) -> np.ndarray:
    num = {c: pd.to_numeric(df[c]) for c in ("age", "hours_per_week", "education_num")}
    z = (num["age"] - 40) / 12 + (num["hours_per_week"] - 40) / 10 + (num["education_num"] - 10) / 3
    return 1 / (1 + np.exp(-z.to_numpy(dtype=float)))


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
    b, _ = simulate_batch("none", holdout, 300, 1)
    p = tmp_path / "b1.csv"
    b.to_csv(p, index=False)
    got = read_batch(p)
    assert got.index.name == "row_id" and list(got.index) == list(range(300))
    pd.testing.assert_frame_equal(got, b, check_index_type=False)

    raw_lines = (DATA / "adult.test").read_text().splitlines()[1:51]  # Adult layout, no header, labels "x."
    p2 = tmp_path / "b2.csv"
    p2.write_text("\n".join(raw_lines) + "\n")
    got2 = read_batch(p2)
    assert list(got2.columns) == COLUMNS and len(got2) == 50
    assert set(got2[LABEL]) <= {"<=50K", ">50K"}
    assert got2.iloc[0].tolist() == [v.strip().rstrip(".") for v in raw_lines[0].split(",")]


def test_read_batch_parquet_gives_raw_strings(holdout, tmp_path):
    b, _ = simulate_batch("none", holdout, 100, 2)
    typed = b.copy()
    for c in NUMERIC:
        typed[c] = pd.to_numeric(typed[c]).astype("Int64")
    typed.loc[3, "age"] = pd.NA
    p = tmp_path / "b3.parquet"
    typed.to_parquet(p, index=False)
    got = read_batch(p)
    assert all(dt == np.dtype(object) for dt in got.dtypes)
    assert got.loc[3, "age"] == "?" and got.loc[4, "age"] == b.loc[4, "age"]
    assert got.drop(index=3).equals(b.drop(index=3))


def test_read_batch_row_id_column(tmp_path, holdout):
    b, _ = simulate_batch("none", holdout, 5, 0)
    p = tmp_path / "b4.csv"
    b.assign(row_id=[10, 11, 12, 13, 14]).to_csv(p, index=False)
    assert list(read_batch(p).index) == [10, 11, 12, 13, 14]
    b.assign(row_id=[1, 1, 2, 3, 4]).to_csv(p, index=False)
    with pytest.raises(ValueError, match="duplicate"):
        read_batch(p)


def test_labels_file_roundtrip_and_alignment(holdout, tmp_path):
    batch, labels = simulate_batch("none", holdout, 200, 3, with_labels=True)
    p = tmp_path / labels_filename("b5")
    labels.to_csv(p, index=False)
    got = read_labels(p)
    pd.testing.assert_frame_equal(got, labels)
    y = align_labels(batch.index, got.iloc[:150])
    assert y.iloc[:150].tolist() == (labels[LABEL].iloc[:150] == ">50K").astype(float).tolist()
    assert y.iloc[150:].isna().all()
    with pytest.raises(ValueError, match="not in the batch"):
        align_labels(batch.index[:10], got)
    labels.assign(income=["maybe", *labels[LABEL].tolist()[1:]]).to_csv(p, index=False)
    with pytest.raises(ValueError, match=r"bad rows \[0\]"):
        read_labels(p)


# --------------------------------------------------------------------------- simulation


def test_simulate_none_is_a_reproducible_resample(holdout):
    b, labels = simulate_batch("none", holdout, 4000, 42, with_labels=True)
    again, _ = simulate_batch("none", holdout, 4000, 42)
    other, _ = simulate_batch("none", holdout, 4000, 43)
    assert b.equals(again) and not b.equals(other)
    assert list(b.columns) == FEATURES and len(b) == 4000 and LABEL not in b.columns
    rows = set(map(tuple, holdout[FEATURES].to_numpy()))
    assert all(tuple(r) in rows for r in b.to_numpy()[:500])
    assert list(labels.columns) == ["row_id", LABEL] and labels["row_id"].tolist() == list(range(4000))
    base = (holdout[LABEL] == ">50K").mean()
    assert abs((labels[LABEL] == ">50K").mean() - base) < 0.03


def test_simulate_covariate_shifts_age_and_hours(holdout):
    b, labels = simulate_batch("covariate", holdout, 5000, 1)
    assert labels is None
    for col, min_shift in (("age", 5.0), ("hours_per_week", 4.0)):
        assert pd.to_numeric(b[col]).mean() - pd.to_numeric(holdout[col]).mean() > min_shift


def test_simulate_label_drift_changes_the_prior(holdout):
    b, labels = simulate_batch("label", holdout, 5000, 1)  # labels come with it even when not asked
    assert labels is not None and len(labels) == len(b)
    assert (holdout[LABEL] == ">50K").mean() < 0.25
    assert abs((labels[LABEL] == ">50K").mean() - 0.5) < 0.03


def test_simulate_broken_breaks_the_raw_schema(holdout):
    b, _ = simulate_batch("broken", holdout, 1000, 5)
    assert "occupation" not in b.columns
    age = pd.to_numeric(b["age"], errors="coerce")
    assert (age > 120).any() and (age < 0).any()
    assert not b["workclass"].isin(CATEGORIES["workclass"] + ["?"]).all()
    assert pd.to_numeric(b["hours_per_week"], errors="coerce").isna().any()


def test_simulate_rejects_bad_arguments(holdout):
    with pytest.raises(ValueError, match="kind"):
        simulate_batch("seasonal", holdout, 10, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rows"):
        simulate_batch("none", holdout, 0, 0)
    with pytest.raises(ValueError, match="occupation"):
        simulate_batch("none", holdout.drop(columns=["occupation"]), 10, 0)


# --------------------------------------------------------------------------- performance


def test_performance_metrics_equal_sklearn(holdout):
    from sklearn import metrics

    y = (holdout[LABEL] == ">50K").astype(int).to_numpy()
    s = toy_score(holdout)
    got = performance_metrics(y, s, threshold=0.6)
    pred = (s >= 0.6).astype(int)
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(metrics.precision_score(y, pred))
    assert got["recall"] == pytest.approx(metrics.recall_score(y, pred))
    assert got["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, s), rel=1e-12)
    # ties in the scores (rounded) follow sklearn's half-credit convention too
    assert performance_metrics(y, np.round(s, 1))["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, np.round(s, 1)))
    # string labels are accepted
    assert performance_metrics(holdout[LABEL].to_numpy(), s, 0.6) == got


def test_performance_metrics_single_class_batch():
    got = performance_metrics([0, 0, 0, 0], [0.1, 0.2, 0.7, 0.3])
    assert got["roc_auc"] is None and "single-class" in got["reasons"]["roc_auc"]
    assert got["recall"] is None and got["accuracy"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="0/1"):
        performance_metrics([0, 2], [0.1, 0.2])


def test_performance_breach():
    ref = {"accuracy": 0.85, "roc_auc": 0.90, "recall": 0.6}
    cur = {"accuracy": 0.79, "roc_auc": 0.86, "recall": None, "reasons": {"recall": "no positive labels"}}
    got = performance_breach(ref, cur, {"accuracy": 0.05, "roc_auc": 0.05, "recall": 0.1})
    assert got["breach"] and got["breached_metrics"] == ["accuracy"]
    assert got["metrics"]["accuracy"]["drop"] == pytest.approx(0.06)
    assert not got["metrics"]["roc_auc"]["breach"]
    assert not got["metrics"]["recall"]["evaluated"] and got["metrics"]["recall"]["reason"] == "no positive labels"
    exact = performance_breach({"accuracy": 0.5}, {"accuracy": 0.25}, {"accuracy": 0.25})
    assert not exact["breach"]  # a drop equal to the tolerance is allowed


# --------------------------------------------------------------------------- McNemar


def _paired(b: int, c: int, both_right: int, both_wrong: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.ones(b + c + both_right + both_wrong, dtype=int)
    a_right = np.r_[np.ones(b), np.zeros(c), np.ones(both_right), np.zeros(both_wrong)].astype(bool)
    b_right = np.r_[np.zeros(b), np.ones(c), np.ones(both_right), np.zeros(both_wrong)].astype(bool)
    return y, np.where(a_right, 1, 0), np.where(b_right, 1, 0)


def test_mcnemar_chi_square_matches_hand_computation():
    y, a, b = _paired(b=30, c=12, both_right=500, both_wrong=40)
    got = mcnemar_test(y, a, b)
    stat = (abs(30 - 12) - 1) ** 2 / (30 + 12)
    assert got["b"] == 30 and got["c"] == 12
    assert got["statistic"] == pytest.approx(stat)
    assert got["p_value"] == pytest.approx(math.erfc(math.sqrt(stat / 2)))  # chi2(1) survival function
    assert got["better"] == "a" and got["significant"] and got["promotes"] is False


def test_mcnemar_exact_matches_hand_computation():
    y, a, b = _paired(b=3, c=9, both_right=100, both_wrong=5)
    got = mcnemar_test(y, a, b)
    p = 2 * sum(math.comb(12, k) for k in range(0, 4)) / 2**12
    assert got["method"] == "exact binomial"
    assert got["p_value"] == pytest.approx(p) and got["better"] == "b"
    assert not got["significant"] and got["promotes"] is False
    none = mcnemar_test(*_paired(0, 0, 10, 2))
    assert none["p_value"] == 1.0 and none["better"] == "tie"


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
    from mlgov_assets.core.data.adult import read_adult_csv
    from mlgov_assets.core.data.schemas import UnlabelledRawAdultSchema, validate
    from mlgov_assets.core.monitoring.batches import read_batch

    raw = read_adult_csv(DATA / "adult.test").head(50).copy()
    raw.loc[[3, 9], "income"] = None
    raw.to_csv(tmp_path / "b1.csv", index=False)
    raw.to_parquet(tmp_path / "b2.parquet", index=False)
    a, b = read_batch(tmp_path / "b1.csv"), read_batch(tmp_path / "b2.parquet")
    assert a["income"].isna().sum() == b["income"].isna().sum() == 2
    assert validate(a, UnlabelledRawAdultSchema, source="csv").passed
    assert validate(b, UnlabelledRawAdultSchema, source="parquet").passed
