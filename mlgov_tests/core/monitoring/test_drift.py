"""Drift engine: statistics against independent computations (scipy, numpy, pandas), verdicts
against Evidently 0.7's DataDriftPreset, false-alarm rate on no-drift resamples of adult.test,
detection of a covariate-shifted batch, and the profile's save/load contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov_assets.core.governance.policy import Drift
from mlgov_assets.core.monitoring.batches import simulate_batch
from mlgov_assets.core.monitoring.drift import compute_drift, evidently_compatible
from mlgov_assets.core.monitoring.evidently_preset import evidently_column_details, evidently_column_verdicts
from mlgov_assets.core.monitoring.profile import ReferenceProfile
from mlgov_assets.core.monitoring.reference import DriftColumns
from mlgov_tests.core.monitoring.helpers import ADULT, read_adult

DATA = Path(__file__).resolve().parents[3] / "data"
NUMERIC = DriftColumns.of(ADULT).numeric
CATEGORICAL = DriftColumns.of(ADULT).categorical
COLUMNS = NUMERIC + CATEGORICAL


def typed(raw: pd.DataFrame) -> pd.DataFrame:
    """Raw strings -> typed frame as monitoring types them (numbers parsed, ? -> Unknown)."""
    out = raw.copy()
    for col in NUMERIC:
        out[col] = pd.to_numeric(out[col])
    for col in CATEGORICAL:
        out[col] = out[col].replace("?", "Unknown")
    return out


def toy_score(df: pd.DataFrame) -> np.ndarray:
    """A fixed, fit-free score standing in for a model's P(>50K)."""
    z = (df["age"] - 40) / 12 + (df["hours_per_week"] - 40) / 10 + (df["education_num"] - 10) / 3
    return 1 / (1 + np.exp(-z.to_numpy(dtype=float)))


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return typed(read_adult(DATA / "adult.data"))


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    return read_adult(DATA / "adult.test")


@pytest.fixture(scope="module")
def profile(reference: pd.DataFrame) -> ReferenceProfile:
    return ReferenceProfile.build(reference, NUMERIC, CATEGORICAL, bins=10, prediction=toy_score(reference))


def batch(kind: str, holdout: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    return typed(simulate_batch(ADULT, kind, holdout, rows, seed)[0])


# --------------------------------------------------------------------------- verdicts


def test_no_false_alarm_on_20_no_drift_resamples(profile, holdout):
    flagged = {"policy_psi": 0, "evidently_compatible": 0}
    columns_flagged = {"policy_psi": 0, "evidently_compatible": 0}
    for seed in range(20):
        b = batch("none", holdout, 5000, seed)
        for name, th in (
            ("policy_psi", Drift()),
            ("evidently_compatible", evidently_compatible()),
        ):
            report = compute_drift(profile, b, th)
            flagged[name] += report.dataset_drift
            columns_flagged[name] += report.n_drifted
    print(f"\nno-drift resamples flagged: {flagged}; drifted columns in total (of 280): {columns_flagged}")
    assert flagged["policy_psi"] <= 1 and flagged["evidently_compatible"] <= 1
    # per-column false-positive rate well under 5 % of the 20 x 14 column checks
    assert columns_flagged["policy_psi"] <= 14 and columns_flagged["evidently_compatible"] <= 14


def test_covariate_shift_is_flagged_and_named(profile, holdout):
    b = batch("covariate", holdout, 5000, 7)
    raw_holdout = typed(holdout)
    assert b["age"].mean() > raw_holdout["age"].mean() + 5  # the simulation did shift the population

    ev = compute_drift(profile, b, evidently_compatible())
    assert ev.dataset_drift and ev.verdict == "drift"
    assert {"age", "hours_per_week"} <= set(ev.drifted_columns)
    assert ev.drifted_share == pytest.approx(len(ev.drifted_columns) / 14)

    psi = compute_drift(profile, b, Drift())
    assert {"age", "hours_per_week"} <= set(psi.drifted_columns)
    assert psi.verdict in ("warn", "drift")
    # a column the tilt does not touch stays quiet under both policies
    assert "race" not in ev.drifted_columns + psi.drifted_columns


def test_prediction_drift(profile, holdout):
    none = batch("none", holdout, 5000, 3)
    cov = batch("covariate", holdout, 5000, 3)
    r_none = compute_drift(profile, none, current_prediction=toy_score(none))
    r_cov = compute_drift(profile, cov, current_prediction=toy_score(cov))
    assert r_none.prediction.verdict == "ok" and r_cov.prediction.verdict == "drift"
    assert r_cov.prediction.method == "psi" and r_cov.prediction.threshold == Drift().prediction_psi_act
    # prediction drift never counts toward the drifted share
    assert r_cov.n_columns == 14 and "prediction" not in r_cov.drifted_columns
    # PSI on the profile's bins, recomputed with np.digitize
    pred = profile.prediction
    ref_p = np.bincount(np.digitize(pred.sorted_values, pred.edges, right=True), minlength=len(pred.edges) + 1) / pred.n
    cur_s = toy_score(cov)
    cur_p = np.bincount(np.digitize(cur_s, pred.edges, right=True), minlength=len(pred.edges) + 1) / cur_s.size
    r, c = np.maximum(ref_p, 1e-4), np.maximum(cur_p, 1e-4)
    assert r_cov.prediction.psi == pytest.approx(float(np.sum((c - r) * np.log(c / r))), rel=1e-12)


def test_label_predictions_are_categorical(reference, holdout):
    labels = np.where(toy_score(reference) >= 0.5, ">50K", "<=50K")
    prof = ReferenceProfile.build(reference, ["age"], ["sex"], bins=10, prediction=labels)
    cur = batch("none", holdout, 3000, 1)
    rep = compute_drift(prof, cur, current_prediction=np.where(toy_score(cur) >= 0.5, ">50K", "<=50K"))
    assert rep.prediction.type == "prediction" and rep.prediction.js_distance is not None
    assert rep.prediction.ks_statistic is None


def test_p_values_report_but_do_not_decide_by_default(profile, holdout):
    """At 300k rows adult.test's small real differences give tiny p-values; effect sizes stay small."""
    big = batch("none", holdout, 300_000, 0)
    default = compute_drift(profile, big)
    small_p = [r.column for r in default.columns if (r.ks_pvalue if r.ks_pvalue is not None else r.chi2_pvalue) < 0.05]
    assert len(small_p) >= 3, small_p
    assert default.n_drifted == 0 and not default.dataset_drift
    by_p = compute_drift(profile, big, Drift(numeric_method="ks", categorical_method="chisquare"))
    assert set(by_p.drifted_columns) == set(small_p)


# --------------------------------------------------------------------------- agreement with Evidently


@pytest.mark.parametrize("kind", ["none", "covariate"])
def test_engine_agrees_with_evidently(reference, holdout, kind):
    cur = batch(kind, holdout, 16_000, 11)
    ref = reference.copy()
    # a low-cardinality numeric column exercises Evidently's <= 5 distinct values rule too
    ref["n_children"] = np.arange(len(ref)) % 3
    i = np.arange(len(cur))
    cur["n_children"] = i % 3 if kind == "none" else np.where(i % 10 < 6, 0, np.where(i % 10 < 9, 1, 2))
    numeric = [*NUMERIC, "n_children"]
    prof = ReferenceProfile.build(ref, numeric, CATEGORICAL, bins=10)
    ours = compute_drift(prof, cur, evidently_compatible())
    theirs = evidently_column_details(ref, cur, numeric, CATEGORICAL)
    assert {c: d["drifted"] for c, d in theirs.items()} == {r.column: r.verdict == "drift" for r in ours.columns}
    for row in ours.columns:
        assert row.statistic == pytest.approx(theirs[row.column]["score"], rel=1e-9, abs=1e-12), row.column
    assert ours.column("n_children").method == "jensenshannon"
    if kind == "covariate":
        assert ours.dataset_drift and {"age", "hours_per_week", "n_children"} <= set(ours.drifted_columns)
    else:
        assert not ours.drifted_columns


def test_evidently_verdicts_helper_shape(reference, holdout):
    cur = batch("none", holdout, 2000, 5)
    verdicts = evidently_column_verdicts(reference, cur, ["age"], ["sex"])
    assert verdicts == {"age": False, "sex": False}


# --------------------------------------------------------------------------- statistics vs independent code


def test_numeric_statistics_equal_scipy_and_numpy(profile, holdout):
    from scipy import stats

    cur = batch("covariate", holdout, 5000, 2)
    rep = compute_drift(profile, cur)
    ref = typed(read_adult(DATA / "adult.data"))
    for col in NUMERIC:
        row = rep.column(col)
        a, b = ref[col].to_numpy(float), cur[col].to_numpy(float)
        ks = stats.ks_2samp(a, b)
        assert row.ks_statistic == pytest.approx(ks.statistic, abs=1e-12), col
        assert row.ks_pvalue == pytest.approx(ks.pvalue, rel=1e-9, abs=1e-300), col
        assert row.wasserstein_normed == pytest.approx(stats.wasserstein_distance(a, b) / np.std(a), rel=1e-9), col
        edges = profile.numeric[col].edges
        k = len(edges) + 1
        rp = np.bincount(np.digitize(a, edges, right=True), minlength=k) / a.size
        cp = np.bincount(np.digitize(b, edges, right=True), minlength=k) / b.size
        rp, cp = np.maximum(rp, 1e-4), np.maximum(cp, 1e-4)
        assert row.psi == pytest.approx(float(np.sum((cp - rp) * np.log(cp / rp))), rel=1e-12), col


def test_categorical_statistics_equal_scipy_and_pandas(reference, holdout):
    from scipy import stats
    from scipy.spatial import distance

    cur = batch("covariate", holdout, 4000, 4)
    cur.loc[cur.index[:25], "workclass"] = "Astronaut"  # a category the reference never saw
    prof = ReferenceProfile.build(reference, [], CATEGORICAL, bins=10)
    rep = compute_drift(prof, cur)
    for col in CATEGORICAL:
        row = rep.column(col)
        table = pd.concat([reference[col].value_counts(), cur[col].value_counts()], axis=1).fillna(0).to_numpy().T
        p, q = table[0] / table[0].sum(), table[1] / table[1].sum()
        assert row.js_distance == pytest.approx(distance.jensenshannon(p, q), rel=1e-9), col
        chi = stats.chi2_contingency(table[:, table.sum(axis=0) > 0], correction=False)
        assert row.chi2_statistic == pytest.approx(chi.statistic, rel=1e-9), col
        assert row.chi2_pvalue == pytest.approx(chi.pvalue, rel=1e-6, abs=1e-300), col
        pe, qe = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
        assert row.psi == pytest.approx(float(np.sum((qe - pe) * np.log(qe / pe))), rel=1e-12), col
    assert rep.column("workclass").unseen_categories == {"Astronaut": 25}


def test_zero_inflated_columns_keep_their_bins(profile, reference):
    for col in ("capital_gain", "capital_loss"):
        values = reference[col].to_numpy(float)
        naive = np.unique(np.quantile(values, np.linspace(0, 1, 11)))
        assert naive.size <= 2  # plain reference quantiles collapse
        p = profile.numeric[col]
        assert 0.0 in p.atoms
        props = p.bin_counts / p.n
        assert (props > 0).sum() >= 8
        zero_bin = int(np.searchsorted(p.edges, 0.0, side="left"))
        assert props[zero_bin] == pytest.approx((values == 0).mean())
    age = profile.numeric["age"]
    assert not age.atoms and np.all((age.bin_counts / age.n > 0.05) & (age.bin_counts / age.n < 0.15))


def test_missing_values_are_dropped_and_reported(profile, holdout):
    cur = batch("none", holdout, 2000, 9)
    cur["age"] = cur["age"].astype(float)
    cur.loc[cur.index[:200], "age"] = np.nan
    cur.loc[cur.index[:100], "sex"] = None
    rep = compute_drift(profile, cur)
    assert rep.column("age").n_current == 1800 and rep.column("age").missing_share_current == pytest.approx(0.1)
    assert rep.column("sex").n_current == 1900 and rep.column("sex").missing_share_current == pytest.approx(0.05)


# --------------------------------------------------------------------------- profile storage and errors


def test_profile_roundtrip(profile, holdout, tmp_path):
    path = profile.save(tmp_path / "ref.json")
    loaded = ReferenceProfile.load(path)
    assert loaded.fingerprint == profile.fingerprint and len(profile.fingerprint) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.json", "ref.npz"]  # no temp files left
    assert json.loads(path.read_text())["fingerprint"] == profile.fingerprint
    cur = batch("covariate", holdout, 3000, 1)
    a = compute_drift(profile, cur, current_prediction=toy_score(cur)).to_dict()
    b = compute_drift(loaded, cur, current_prediction=toy_score(cur)).to_dict()
    a.pop("elapsed_s"), b.pop("elapsed_s")
    assert a == b
    json.dumps(a)  # JSON-serialisable as promised


def test_profile_load_rejects_torn_or_edited_files(profile, tmp_path):
    path = profile.save(tmp_path / "ref.json")
    doc = json.loads(path.read_text())
    doc["numeric"][0]["std"] += 1.0
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="fingerprint"):
        ReferenceProfile.load(path)
    profile.save(path)
    npz = path.with_suffix(".npz")
    npz.write_bytes(npz.read_bytes()[:-10])
    with pytest.raises(ValueError, match="sha256"):
        ReferenceProfile.load(path)


def test_fingerprint_tracks_content(reference):
    a = ReferenceProfile.build(reference, ["age"], ["sex"], bins=10)
    b = ReferenceProfile.build(reference.iloc[:-1], ["age"], ["sex"], bins=10)
    c = ReferenceProfile.build(reference, ["age"], ["sex"], bins=5)
    assert len({a.fingerprint, b.fingerprint, c.fingerprint}) == 3
    assert a.fingerprint == ReferenceProfile.build(reference.copy(), ["age"], ["sex"], bins=10).fingerprint


def test_bad_input_raises_clear_errors(profile, holdout):
    cur = batch("none", holdout, 500, 0)
    with pytest.raises(ValueError, match="occupation"):
        compute_drift(profile, cur.drop(columns=["occupation"]))
    bad = cur.astype({"age": object})
    bad.loc[7, "age"] = "forty"
    with pytest.raises(ValueError, match=r"'age'.*rows \[7\]"):
        compute_drift(profile, bad)
    with pytest.raises(ValueError, match="empty"):
        compute_drift(profile, cur.iloc[:0])
    no_pred = ReferenceProfile.build(cur, ["age"], [], bins=10)
    with pytest.raises(ValueError, match="without a prediction"):
        compute_drift(no_pred, cur, current_prediction=np.zeros(len(cur)))
    with pytest.raises(ValueError, match="psi_warn"):
        Drift(psi_warn=0.3, psi_act=0.2)
    with pytest.raises(ValueError, match="numeric_method"):
        Drift(numeric_method="jensenshannon")
    with pytest.raises(ValueError, match="both numeric and categorical"):
        ReferenceProfile.build(cur, ["age"], ["age"], bins=10)


def test_the_engine_consumes_the_policy_drift_section_itself(profile, holdout):
    """No mirrored threshold type: the engine takes ``policy.Drift`` as loaded, records it as it
    was, and every setting it reads changes the verdict (a renamed key cannot be silently ignored)."""
    from mlgov_assets.core.governance.policy import load_policy
    from mlgov_assets.core.settings import DEFAULT_POLICY

    policy = load_policy(DEFAULT_POLICY)
    assert isinstance(policy.drift, Drift) and isinstance(evidently_compatible(), Drift)
    b = batch("covariate", holdout, 5000, 7)
    report = compute_drift(profile, b, policy.drift, current_prediction=toy_score(b))
    assert report.thresholds is policy.drift
    assert report.to_dict()["thresholds"] == policy.drift.model_dump()
    methods = {policy.drift.numeric_method, policy.drift.categorical_method}
    assert {r.method for r in report.columns} <= methods | {"jensenshannon"}  # low-cardinality numerics: JS
    # each field the engine reads moves the outcome when the policy moves it
    psi = policy.drift.model_copy(update={"numeric_method": "psi", "categorical_method": "psi"})
    age = compute_drift(profile, b, psi).column("age")
    assert (age.method, age.threshold, age.verdict) == ("psi", psi.psi_act, "drift")
    stricter = psi.model_copy(update={"psi_act": age.psi * 2, "psi_warn": age.psi * 1.5})
    assert compute_drift(profile, b, stricter).column("age").verdict == "ok"
    warn_only = psi.model_copy(update={"psi_act": age.psi * 2, "psi_warn": age.psi / 2})
    assert compute_drift(profile, b, warn_only).column("age").verdict == "warn"
    assert report.dataset_drift
    assert not compute_drift(profile, b, policy.drift.model_copy(update={"dataset_drift_share": 1.0})).dataset_drift
    quiet = policy.drift.model_copy(update={"prediction_psi_act": 1e6, "psi_warn": 1e5})
    assert compute_drift(profile, b, quiet, current_prediction=toy_score(b)).prediction.verdict == "ok"
    assert report.prediction.verdict == "drift"
    wass = policy.drift.model_copy(update={"numeric_method": "wasserstein"})
    assert compute_drift(profile, b, wass).column("age").method == "wasserstein"
    loose = wass.model_copy(update={"wasserstein_threshold": 100.0})
    assert compute_drift(profile, b, loose).column("age").verdict != "drift"


def test_with_prediction_equals_building_with_it(reference, holdout):
    """The monitoring cache builds the data side once per reference and attaches each champion's
    scores later: that must be the same profile as building both at once."""
    scores = toy_score(reference)
    bare = ReferenceProfile.build(reference, NUMERIC, CATEGORICAL, bins=10)
    attached = bare.with_prediction(scores)
    direct = ReferenceProfile.build(reference, NUMERIC, CATEGORICAL, bins=10, prediction=scores)
    assert attached.fingerprint == direct.fingerprint != bare.fingerprint
    assert attached.data_fingerprint == bare.fingerprint == direct.data_fingerprint
    b = batch("covariate", holdout, 3000, 1)
    a_rep = compute_drift(attached, b, evidently_compatible(), current_prediction=toy_score(b))
    d_rep = compute_drift(direct, b, evidently_compatible(), current_prediction=toy_score(b))
    assert a_rep.prediction.psi == d_rep.prediction.psi and a_rep.drifted_columns == d_rep.drifted_columns
    with pytest.raises(ValueError, match="rows"):
        bare.with_prediction(scores[:-1])


def test_evidently_options_follow_the_policy():
    from mlgov_assets.core.monitoring.evidently_preset import evidently_options

    th = Drift(
        numeric_method="wasserstein",
        categorical_method="jensenshannon",
        wasserstein_threshold=0.15,
        jensenshannon_threshold=0.2,
    )
    assert evidently_options(th) == {
        "num_method": "wasserstein",
        "cat_method": "jensenshannon",
        "num_threshold": 0.15,
        "cat_threshold": 0.2,
    }
    th = Drift(numeric_method="ks", categorical_method="psi", p_value=0.01, psi_act=0.3)
    assert evidently_options(th) == {
        "num_method": "ks",
        "cat_method": "psi",
        "num_threshold": 0.01,
        "cat_threshold": 0.3,
    }
