"""Tests for mlgov_assets.core.governance.explanations: additivity on the real model, folding, reasons, nDCG."""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import pandas as pd
import pytest

from mlgov_assets.core.governance.explanations import (
    check_additivity,
    explain_pipeline,
    local_reasons_frame,
    model_raw_output,
    ndcg_ranking,
    plot_importance_png,
)
from mlgov_tests.core._adult_fixtures import (
    MODEL_CATEGORICAL,
    MODEL_NUMERIC,
    adult_test,
    adult_train,
    fit_single_thread,
    fitted_reference_pipeline,
)

N_ROWS = 1500  # subsample of the holdout: TreeExplainer costs ~0.5 ms/row on this model


@pytest.fixture(scope="module")
def explained():
    Xt, _ = adult_test()
    pipe = fitted_reference_pipeline()
    return pipe, Xt, explain_pipeline(pipe, Xt, top_k_reasons=3, max_rows=N_ROWS, random_state=0)


def test_tree_shap_additivity_holds_on_real_model_and_broken_values_fail(explained):
    pipe, Xt, ex = explained
    assert ex.method == "tree" and len(ex) == N_ROWS
    assert list(ex.shap_values.columns) == MODEL_CATEGORICAL + MODEL_NUMERIC  # 1:1 ordinal fold
    raw = model_raw_output(pipe, Xt.iloc[ex.positions])
    np.testing.assert_allclose(raw, pipe.decision_function(Xt.iloc[ex.positions]))
    ok = check_additivity(ex, raw, tolerance=1e-6)
    assert ok.passed and ok.max_abs_error < 1e-9 and ok.n_over_tolerance == 0
    # A broken explainer output: 7 rows get a spurious contribution.
    broken_values = ex.shap_values.copy()
    broken_values.iloc[:7, 0] += 0.01
    broken = dataclasses.replace(ex, shap_values=broken_values)
    bad = check_additivity(broken, raw, tolerance=1e-6)
    assert not bad.passed and bad.n_over_tolerance == 7
    assert bad.max_abs_error == pytest.approx(0.01, rel=1e-6)
    assert bad.rows_over_tolerance == [str(i) for i in ex.shap_values.index[:7]]
    with pytest.raises(ValueError, match="raw_output has"):
        check_additivity(ex, pipe.decision_function(Xt), tolerance=1e-6)


def test_global_importance_is_sorted_mean_abs_shap(explained):
    _, _, ex = explained
    expected = ex.shap_values.abs().mean().sort_values(ascending=False)
    pd.testing.assert_series_equal(ex.importance, expected, check_names=False)
    assert ex.importance.index[0] in {"age", "marital_status", "relationship", "capital_gain"}
    assert "sex" not in ex.importance.index and "race" not in ex.importance.index


def test_local_reasons_are_the_most_negative_contributions(explained):
    pipe, Xt, ex = explained
    frame = local_reasons_frame(ex, ids=[f"app-{p}" for p in ex.positions])
    rows = Xt.iloc[ex.positions]
    assert frame["row_id"].iloc[0] == f"app-{ex.positions[0]}"
    np.testing.assert_array_equal(frame["decision"].to_numpy(), pipe.predict(rows))
    np.testing.assert_allclose(frame["score"].to_numpy(), pipe.predict_proba(rows)[:, 1], atol=1e-9)
    for i in range(0, N_ROWS, 97):  # independent per-row check with pandas nsmallest/nlargest
        sv = ex.shap_values.iloc[i]
        neg = sv[sv < 0].nsmallest(3)
        pos = sv[sv > 0].nlargest(3)
        got_neg = [frame.at[i, f"reason_{j}"] for j in range(1, 4)]
        got_pos = [frame.at[i, f"positive_{j}"] for j in range(1, 4)]
        assert got_neg[: len(neg)] == list(neg.index) and all(g is None for g in got_neg[len(neg) :])
        assert got_pos[: len(pos)] == list(pos.index)
        np.testing.assert_allclose(
            frame.loc[i, [f"reason_{j}_shap" for j in range(1, len(neg) + 1)]].to_numpy(float), neg.to_numpy()
        )
    buf = io.BytesIO()
    frame.to_parquet(buf)  # Parquet-ready: typed columns, None/NaN for absent reasons
    back = pd.read_parquet(io.BytesIO(buf.getvalue()))
    assert list(back.columns) == list(frame.columns) and len(back) == N_ROWS


def test_one_hot_columns_fold_back_to_their_feature():
    import shap
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    X, y = adult_train()
    Xt, _ = adult_test()
    cats = ["workclass", "marital_status", "relationship"]
    pipe = Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [
                        ("oh", OneHotEncoder(handle_unknown="ignore", sparse_output=False, max_categories=6), cats),
                        ("num", "passthrough", ["age", "education_num", "hours_per_week"]),
                    ]
                ),
            ),
            ("hgb", HistGradientBoostingClassifier(max_iter=40, random_state=0)),
        ]
    )
    fit_single_thread(pipe, X.iloc[:8000], y.iloc[:8000])
    rows = Xt.iloc[:400]
    ex = explain_pipeline(pipe, rows, top_k_reasons=2)
    assert list(ex.shap_values.columns) == [*cats, "age", "education_num", "hours_per_week"]
    # Independent fold: the encoder's own categories_ say how many columns each feature owns
    # (categories minus those merged into one "infrequent" column), not from column names.
    enc = pipe[0].named_transformers_["oh"]
    widths = [
        len(cat) - (0 if inf is None else len(inf) - 1)
        for cat, inf in zip(enc.categories_, enc.infrequent_categories_, strict=False)
    ]
    assert sum(widths) == pipe[0].output_indices_["oh"].stop
    assert any(inf is not None for inf in enc.infrequent_categories_)  # the many-to-one case
    direct = shap.TreeExplainer(pipe[-1]).shap_values(pipe[0].transform(rows), check_additivity=False)
    start = 0
    for c, w in zip(cats, widths, strict=False):
        np.testing.assert_allclose(ex.shap_values[c].to_numpy(), direct[:, start : start + w].sum(axis=1))
        start += w
    assert check_additivity(ex, model_raw_output(pipe, rows), 1e-6).passed


def test_native_categorical_hgb_is_not_given_to_tree_explainer():
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    X, y = adult_train()
    Xt, _ = adult_test()
    pipe = Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [
                        (
                            "cat",
                            OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                            ["relationship", "occupation"],
                        ),
                        ("num", "passthrough", ["age"]),
                    ]
                ),
            ),
            ("hgb", HistGradientBoostingClassifier(max_iter=20, categorical_features=[0, 1], random_state=0)),
        ]
    )
    fit_single_thread(pipe, X.iloc[:5000], y.iloc[:5000])
    with pytest.raises(ValueError, match="native categorical"):
        explain_pipeline(pipe, Xt.iloc[:10], method="tree")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # many tiny HGB predict calls: OpenMP start-up dominates
        ex = explain_pipeline(pipe, Xt.iloc[:300], max_rows=None, fallback_max_rows=15, fallback_background=20)
    assert ex.method == "permutation" and len(ex) == 15 and "native categorical" in ex.method_note
    rows = Xt.iloc[ex.positions]
    assert check_additivity(ex, model_raw_output(pipe, rows), 1e-6).passed


def test_non_tree_model_uses_bounded_permutation_fallback():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = adult_train()
    Xt, _ = adult_test()
    pipe = Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [
                        ("oh", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["relationship"]),
                        ("num", StandardScaler(), ["age", "education_num"]),
                    ]
                ),
            ),
            ("lr", LogisticRegression(max_iter=200)),
        ]
    )
    pipe.fit(X.iloc[:5000], y.iloc[:5000])
    ex = explain_pipeline(pipe, Xt.iloc[:500], fallback_max_rows=12, fallback_background=25)
    assert ex.method == "permutation" and len(ex) == 12
    assert "background 25" in ex.method_note
    assert list(ex.shap_values.columns) == ["relationship", "age", "education_num"]
    rows = Xt.iloc[:500].iloc[ex.positions]
    assert check_additivity(ex, model_raw_output(pipe, rows), 1e-6).passed


def test_probability_unit_tree_model_falls_back_to_log_odds_permutation():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    X, y = adult_train()
    Xt, _ = adult_test()
    cols = ["age", "education_num", "hours_per_week"]
    pipe = Pipeline([("rf", RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0))])
    pipe.fit(X[cols].iloc[:3000], y.iloc[:3000])
    ex = explain_pipeline(pipe, Xt[cols].iloc[:100], fallback_max_rows=10, fallback_background=20)
    assert ex.method == "permutation" and "'probability'" in ex.method_note
    assert check_additivity(ex, model_raw_output(pipe, Xt[cols].iloc[ex.positions]), 1e-6).passed


def test_ndcg_identical_swapped_and_hand_computed():
    ref = {"a": 3.0, "b": 2.0, "c": 1.0}
    assert ndcg_ranking(ref, ref) == pytest.approx(1.0)
    assert ndcg_ranking({"a": 30, "b": 20, "c": 10}, ref) == pytest.approx(1.0)  # scale-free
    swapped = {"a": 2.0, "b": 3.0, "c": 1.0}  # current ranks b, a, c
    dcg = 2.0 / math.log2(2) + 3.0 / math.log2(3) + 1.0 / math.log2(4)
    idcg = 3.0 / math.log2(2) + 2.0 / math.log2(3) + 1.0 / math.log2(4)
    assert ndcg_ranking(swapped, ref) == pytest.approx(dcg / idcg)
    assert ndcg_ranking(swapped, ref) < 1.0
    assert ndcg_ranking(swapped, ref, k=1) == pytest.approx(2.0 / 3.0)
    assert ndcg_ranking({"a": 1.0, "b": 2.0}, ref) < 1.0  # c missing in current -> importance 0
    with pytest.raises(ValueError, match="non-negative"):
        ndcg_ranking({"a": -1.0}, ref)


def test_importance_png_is_small_and_written_atomically(explained, tmp_path):
    _, _, ex = explained
    target = tmp_path / "plots" / "importance.png"
    data = plot_importance_png(ex.importance, target, max_features=15)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 60_000
    assert target.read_bytes() == data
    assert [p.name for p in target.parent.iterdir()] == ["importance.png"]  # no temp leftovers
