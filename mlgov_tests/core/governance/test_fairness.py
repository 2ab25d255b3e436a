"""Tests for mlgov_assets.core.governance.fairness: report vs independent pandas/Fairlearn, the bootstrap vs
a slow row bootstrap, small groups, the gate."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from mlgov_assets.core.governance.fairness.bias import pretraining_bias
from mlgov_assets.core.governance.fairness.bootstrap import _cell_counts, _rates, _summaries
from mlgov_assets.core.governance.fairness.gate import evaluate_fairness_gate
from mlgov_assets.core.governance.fairness.render import compare_tradeoff, render_html, render_markdown
from mlgov_assets.core.governance.fairness.report import fairness_report
from mlgov_assets.core.governance.policy import SUMMARY_METRICS, FairnessRule
from mlgov_assets.core.project.project import open_project
from mlgov_assets.core.project.reader import read_raw
from mlgov_assets.core.settings import DEFAULT_PROJECT_DIR, DEFAULT_PROJECT_SPEC
from mlgov_tests.core._adult_fixtures import (
    DATA_DIR,
    adult_test,
    adult_train,
    fit_single_thread,
    fitted_reference_pipeline,
    flip_labels_for_group,
    make_pipeline,
)

#: The shipped demo project: its sensitive columns, label and favourable value.
ADULT = open_project(DEFAULT_PROJECT_SPEC, DEFAULT_PROJECT_DIR)
SENSITIVE = ADULT.sensitive
LABEL, POSITIVE_LABEL = ADULT.label, ADULT.favourable


@pytest.fixture(scope="module")
def holdout_predictions():
    """(holdout X, y_true, y_pred) of the reference model on adult.test."""
    Xt, yt = adult_test()
    return Xt, yt.to_numpy(), fitted_reference_pipeline().predict(Xt)


def _report(y_true, y_pred, sens, **kw):
    args = {
        "features": ["sex", "race"],
        "intersections": [["sex", "race"]],
        "min_group_size": 100,
        "n_boot": 0,
        "ci_level": 0.95,
        "random_state": 0,
    }
    args.update(kw)
    return fairness_report(y_true, y_pred, sens, **args)


def _pandas_rates(df: pd.DataFrame, key) -> pd.DataFrame:
    """Independent per-group rates from a plain groupby on 0/1 columns t (truth) and p (pred)."""
    g = df.groupby(key)
    tp = g.apply(lambda d: ((d.p == 1) & (d.t == 1)).sum(), include_groups=False)
    fp = g.apply(lambda d: ((d.p == 1) & (d.t == 0)).sum(), include_groups=False)
    pos = g.t.sum()
    neg = g.t.count() - pos
    return pd.DataFrame(
        {
            "count": g.size(),
            "selection_rate": g.p.mean(),
            "tpr": tp / pos,
            "fpr": fp / neg,
            "fnr": (pos - tp) / pos,
            "precision": tp / g.p.sum(),
            "accuracy": g.apply(lambda d: (d.p == d.t).mean(), include_groups=False),
        }
    )


def test_group_rates_match_pandas_groupby_on_adult_holdout(holdout_predictions):
    Xt, yt, yp = holdout_predictions
    rep = _report(yt, yp, Xt[SENSITIVE])
    df = pd.DataFrame({"t": yt, "p": yp, "sex": Xt["sex"].to_numpy(), "race": Xt["race"].to_numpy()})
    df["sex|race"] = df["sex"] + "|" + df["race"]
    for feature in ["sex", "race", "sex|race"]:
        expected = _pandas_rates(df, feature)
        got = pd.DataFrame([g.to_dict() for g in rep.features[feature].groups]).set_index("group")
        assert sorted(got.index) == sorted(expected.index)
        for metric in expected.columns:
            np.testing.assert_allclose(
                got.loc[expected.index, metric].astype(float),
                expected[metric].astype(float),
                rtol=0,
                atol=1e-12,
                err_msg=f"{feature}:{metric}",
            )
    # The summary DP ratio is min/max of the (adequate) groups' selection rates.
    sel = _pandas_rates(df, "sex")["selection_rate"]
    assert rep.features["sex"].summary["demographic_parity_ratio"].value == pytest.approx(sel.min() / sel.max())
    # Adult's known tiny cells are flagged and kept out of the summary.
    assert "Male|Other" in rep.features["sex|race"].small_groups
    assert "Male|Other" not in rep.features["sex|race"].gated_groups


def _synthetic(n_a=2000, n_b=2000, n_c=30, sel=(0.5, 0.45, 0.0), seed=0):
    """Three groups with chosen selection rates; labels = predictions flipped 10% of the time."""
    rng = np.random.default_rng(seed)
    groups, preds = [], []
    for name, n, s in zip("ABC", (n_a, n_b, n_c), sel, strict=False):
        groups += [name] * n
        preds.append((rng.random(n) < s).astype(int))
    yp = np.concatenate(preds)
    yt = np.where(rng.random(yp.size) < 0.1, 1 - yp, yp)
    return yt, yp, pd.DataFrame({"g": groups})


def test_small_group_is_flagged_and_does_not_decide_the_gate():
    yt, yp, sens = _synthetic()
    rule = FairnessRule(feature="g", metric="demographic_parity_ratio", min=0.8, bound="point")
    gated = fairness_report(
        yt, yp, sens, features=["g"], intersections=[], min_group_size=100, n_boot=0, ci_level=0.95, random_state=0
    )
    c_row = next(r for r in gated.features["g"].groups if r.group == "C")
    assert c_row.small_group is True and c_row.count == 30 and c_row.selection_rate == 0.0
    verdict = evaluate_fairness_gate(gated, [rule])
    assert verdict.passed, verdict.rules
    assert verdict.rules[0].small_groups_ignored == ["C"]
    # Independent value: min/max of the two adequate groups' selection rates.
    rates = pd.Series(yp).groupby(sens["g"].to_numpy()).mean()
    assert verdict.rules[0].value == pytest.approx(rates[["A", "B"]].min() / rates[["A", "B"]].max())
    # The same tiny group, if counted, fails the rule: that is exactly what the flag prevents.
    counted = fairness_report(
        yt, yp, sens, features=["g"], intersections=[], min_group_size=10, n_boot=0, ci_level=0.95, random_state=0
    )
    assert not evaluate_fairness_gate(counted, [rule]).passed


def test_bootstrap_ci_brackets_point_is_reproducible_and_matches_independent_bootstrap():
    yt, yp, sens = _synthetic(n_a=1500, n_b=1500, n_c=0, sel=(0.5, 0.35, 0.0), seed=1)
    kw = {
        "features": ["g"],
        "intersections": [],
        "min_group_size": 100,
        "n_boot": 40,
        "ci_level": 0.9,
        "random_state": 3,
    }
    rep = fairness_report(yt, yp, sens, **kw)
    dp = rep.features["g"].summary["demographic_parity_ratio"]
    assert dp.lower <= dp.value <= dp.upper
    eo = rep.features["g"].summary["equalized_odds_difference"]
    assert eo.lower <= eo.upper
    row = rep.features["g"].groups[0]
    assert row.selection_rate_lower <= row.selection_rate <= row.selection_rate_upper
    assert row.fnr_lower == pytest.approx(1 - row.tpr_upper)
    assert fairness_report(yt, yp, sens, **kw).to_dict() == rep.to_dict()
    # An independent numpy bootstrap of the same statistic gives a similar interval.
    rng = np.random.default_rng(0)
    g = sens["g"].to_numpy()
    stats = []
    for _ in range(400):
        i = rng.integers(0, yp.size, yp.size)
        r = pd.Series(yp[i]).groupby(g[i]).mean()
        stats.append(r.min() / r.max())
    lo, hi = np.quantile(stats, [0.05, 0.95])
    assert dp.lower == pytest.approx(lo, abs=0.03) and dp.upper == pytest.approx(hi, abs=0.03)


def test_summary_points_equal_fairlearn_metric_functions(holdout_predictions):
    """Summary points vs Fairlearn's own (sklearn-based) disparity functions on the gated rows."""
    from fairlearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        equalized_odds_ratio,
    )

    Xt, yt, yp = holdout_predictions
    rep = _report(yt, yp, Xt[SENSITIVE])
    for feature in ["sex", "race", "sex|race"]:
        ff = rep.features[feature]
        labels = Xt[ff.columns].astype(str).agg("|".join, axis=1).to_numpy()
        keep = np.isin(labels, ff.gated_groups)
        assert len(ff.gated_groups) >= 2
        assert (feature == "sex|race") == (not keep.all())  # sex|race: small cells are dropped
        args = (yt[keep], yp[keep])
        kw = {"sensitive_features": labels[keep]}
        expected = {
            "demographic_parity_ratio": demographic_parity_ratio(*args, **kw),
            "demographic_parity_difference": demographic_parity_difference(*args, **kw),
            "equalized_odds_ratio": equalized_odds_ratio(*args, **kw),
            "equalized_odds_difference": equalized_odds_difference(*args, **kw),
        }
        for metric, value in expected.items():
            assert ff.summary[metric].value == pytest.approx(value, abs=1e-12), f"{feature}:{metric}"


def _slow_replicate(t: np.ndarray, p: np.ndarray, g: np.ndarray, groups: list[str]) -> dict[str, float]:
    """One replicate's per-group rates and summaries from explicit rows, with pandas only."""
    df = pd.DataFrame(
        {"t": t, "p": p, "tp": t & p, "fp": (1 - t) & p, "fn": t & (1 - p), "ok": (t == p).astype(int), "n": 1}
    )
    s = df.groupby(g).sum().reindex(groups)
    rates = pd.DataFrame(
        {
            "selection_rate": s.p / s.n,
            "tpr": s.tp / s.t,
            "fpr": s.fp / (s.n - s.t),
            "fnr": s.fn / s.t,
            "precision": s.tp / s.p,
            "accuracy": s.ok / s.n,
        }
    )
    out = {f"{grp}:{m}": float(rates.loc[grp, m]) for grp in groups for m in rates.columns}
    ratio = {m: rates[m].min() / rates[m].max() for m in ("selection_rate", "tpr", "fpr")}
    diff = {m: rates[m].max() - rates[m].min() for m in ("selection_rate", "tpr", "fpr")}
    out.update(
        {
            "demographic_parity_ratio": ratio["selection_rate"],
            "demographic_parity_difference": diff["selection_rate"],
            "disparate_impact_min": ratio["selection_rate"],
            "equalized_odds_ratio": min(ratio["tpr"], ratio["fpr"]),
            "equalized_odds_difference": max(diff["tpr"], diff["fpr"]),
            "tpr_ratio": ratio["tpr"],
            "tpr_difference": diff["tpr"],
            "fpr_ratio": ratio["fpr"],
            "fpr_difference": diff["fpr"],
        }
    )
    return out


def _holdout_subsample(holdout_predictions, n: int, seed: int):
    Xt, yt, yp = holdout_predictions
    idx = np.random.default_rng(seed).choice(yt.size, n, replace=False)
    return yt[idx], yp[idx], Xt[SENSITIVE].iloc[idx].reset_index(drop=True)


def test_vectorised_replicate_statistics_equal_pandas_on_explicit_resamples(holdout_predictions):
    """The per-replicate derivation (cells -> rates -> summaries, equalized odds exact per
    replicate) equals a pandas computation on the very same explicitly resampled rows."""
    yt, yp, sens = _holdout_subsample(holdout_predictions, 3000, seed=5)
    g = sens["race"].to_numpy()
    groups = ["White", "Black", "Asian-Pac-Islander"]
    keep = np.isin(g, groups)
    yt, yp, g = yt[keep], yp[keep], g[keep]
    codes = pd.Categorical(g, categories=groups).codes.astype(np.int64)
    rng = np.random.default_rng(11)
    cells, expected = [], []
    for _ in range(25):
        i = rng.integers(0, yt.size, yt.size)
        cells.append(_cell_counts(yt[i], yp[i], codes[i], len(groups)))
        expected.append(_slow_replicate(yt[i], yp[i], g[i], groups))
    rates = _rates(np.stack(cells))
    summaries = _summaries(rates)
    for b, exp in enumerate(expected):
        for key, value in exp.items():
            got = (
                summaries[key][b] if key in summaries else rates[key.split(":")[1]][b, groups.index(key.split(":")[0])]
            )
            assert got == pytest.approx(value, abs=1e-12), (b, key)


def test_bootstrap_intervals_agree_with_slow_row_bootstrap(holdout_predictions):
    """Intervals of the cell bootstrap vs an explicit row bootstrap (pandas groupby per replicate)
    on a holdout subsample, within Monte Carlo tolerance; small groups stay out of both."""
    yt, yp, sens = _holdout_subsample(holdout_predictions, 6000, seed=2)
    ci_level, n_ref, n_fast = 0.9, 300, 4000
    rep = fairness_report(
        yt,
        yp,
        sens,
        features=["race"],
        intersections=[],
        min_group_size=150,
        n_boot=n_fast,
        ci_level=ci_level,
        random_state=7,
    )
    ff = rep.features["race"]
    counts = sens["race"].value_counts()
    assert ff.gated_groups == sorted(counts.index[counts >= 150]) and len(ff.gated_groups) >= 3
    assert ff.small_groups == sorted(counts.index[counts < 150]) and ff.small_groups

    g = sens["race"].to_numpy()
    keep = np.isin(g, ff.gated_groups)
    t, p, g = yt[keep], yp[keep], g[keep]
    rng = np.random.default_rng(123)
    ref = pd.DataFrame(
        [
            _slow_replicate(t[i], p[i], g[i], ff.gated_groups)
            for i in (rng.integers(0, t.size, t.size) for _ in range(n_ref))
        ]
    )

    q = (1 - ci_level) / 2
    density = math.exp(-0.5 * 1.6448536**2) / math.sqrt(2 * math.pi)  # N(0,1) pdf at z_{0.95}
    rows = {r.group: r.to_dict() for r in ff.groups}
    checked = 0
    for key in ref.columns:
        if ":" in key:
            group, metric = key.split(":")
            lo, hi = rows[group][f"{metric}_lower"], rows[group][f"{metric}_upper"]
        else:
            lo, hi = ff.summary[key].lower, ff.summary[key].upper
        sample = ref[key].dropna()
        sd = sample.std()
        # Normal-theory standard error of a q-quantile from B replicates, for both estimates.
        se = sd * math.sqrt(q * (1 - q)) / density * math.sqrt(1 / len(sample) + 1 / n_fast)
        ref_lo, ref_hi = sample.quantile([q, 1 - q])
        assert lo == pytest.approx(ref_lo, abs=4 * se), f"{key} lower"
        assert hi == pytest.approx(ref_hi, abs=4 * se), f"{key} upper"
        # Interval width tracks the bootstrap spread: a mis-scaled resample (e.g. n/2 or 2n
        # draws, or a stratified draw of the wrong size) would move it by ~30-40%.
        ref_width = ref_hi - ref_lo
        assert (hi - lo) == pytest.approx(ref_width, rel=0.2), f"{key} width"
        checked += 1
    assert checked == len(ref.columns) >= len(SUMMARY_METRICS) + 3 * 6


def test_bootstrap_is_deterministic_seeded_and_row_order_free():
    yt, yp, sens = _synthetic(n_a=800, n_b=600, n_c=0, sel=(0.5, 0.35, 0.0), seed=4)
    kw = {"features": ["g"], "intersections": [], "min_group_size": 100, "n_boot": 200, "ci_level": 0.95}
    a = fairness_report(yt, yp, sens, random_state=1, **kw).to_dict()
    assert fairness_report(yt, yp, sens, random_state=1, **kw).to_dict() == a
    b = fairness_report(yt, yp, sens, random_state=2, **kw).to_dict()
    sa, sb = a["features"]["g"]["summary"], b["features"]["g"]["summary"]
    assert sa["demographic_parity_ratio"]["value"] == sb["demographic_parity_ratio"]["value"]
    assert sa["demographic_parity_ratio"]["lower"] != sb["demographic_parity_ratio"]["lower"]
    # The resample is drawn on confusion cells, so shuffling rows changes nothing at all.
    perm = np.random.default_rng(0).permutation(yt.size)
    shuffled = fairness_report(
        yt[perm], yp[perm], sens.iloc[perm].reset_index(drop=True), random_state=1, **kw
    ).to_dict()
    assert shuffled == a
    assert "not stratified" in a["config"]["ci_method"] and "percentile" in a["config"]["ci_method"]


def test_undefined_rate_in_a_gated_group_is_skipped_not_fatal():
    """A group with no positives has no TPR: reported as None and left out of the TPR
    disparity (as Fairlearn's MetricFrame.ratio() does), while selection-rate rules still work."""
    yt, yp, sens = _synthetic(n_a=600, n_b=600, n_c=0, sel=(0.5, 0.4, 0.0), seed=6)
    yt = yt.copy()
    yt[600:] = 0  # group B: no positives
    rep = fairness_report(
        yt, yp, sens, features=["g"], intersections=[], min_group_size=100, n_boot=100, ci_level=0.95, random_state=0
    )
    json.dumps(rep.to_dict(), allow_nan=False)
    ff = rep.features["g"]
    b = next(r for r in ff.groups if r.group == "B")
    assert b.tpr is None and b.tpr_lower is None and b.fpr is not None
    assert ff.summary["tpr_ratio"].value == 1.0 and ff.summary["tpr_difference"].value == 0.0
    rates = pd.Series(yp).groupby(sens["g"].to_numpy()).mean()
    dp = ff.summary["demographic_parity_ratio"]
    assert dp.value == pytest.approx(rates.min() / rates.max())
    assert dp.lower < dp.value < dp.upper


def test_biased_model_fails_gate_and_reference_model_passes(holdout_predictions):
    Xt, yt, yp = holdout_predictions
    X, y = adult_train()
    biased = fit_single_thread(make_pipeline(max_iter=60), X, flip_labels_for_group(y, X["sex"] == "Female"))
    yp_biased = biased.predict(Xt)
    rules = [
        FairnessRule(feature="sex", metric="demographic_parity_ratio", min=0.2, bound="lower"),
        FairnessRule(feature="sex", metric="equalized_odds_difference", max=0.3, bound="upper"),
    ]
    kw = {
        "features": ["sex"],
        "intersections": [],
        "min_group_size": 100,
        "n_boot": 15,
        "ci_level": 0.95,
        "random_state": 0,
    }
    fair_verdict = evaluate_fairness_gate(fairness_report(yt, yp, Xt[["sex"]], **kw), rules)
    biased_verdict = evaluate_fairness_gate(fairness_report(yt, yp_biased, Xt[["sex"]], **kw), rules)
    assert fair_verdict.passed, fair_verdict.rules
    assert not biased_verdict.passed
    assert {r.metric for r in biased_verdict.failed_rules} == {
        "demographic_parity_ratio",
        "equalized_odds_difference",
    }
    # The gate's evidence carries the per-group table and the judged bound.
    assert {g.group for g in biased_verdict.groups} == {"Female", "Male"}
    assert biased_verdict.rules[0].judged_value == biased_verdict.rules[0].lower
    json.dumps(biased_verdict.to_dict(), allow_nan=False)


def test_insufficient_groups_fail_closed_unless_policy_opts_out():
    yt, yp, sens = _synthetic(n_a=500, n_b=20, n_c=20)
    rep = fairness_report(
        yt, yp, sens, features=["g"], intersections=[], min_group_size=100, n_boot=0, ci_level=0.95, random_state=0
    )
    rule = FairnessRule(feature="g", metric="demographic_parity_ratio", min=0.8)
    assert rep.features["g"].summary["demographic_parity_ratio"].value is None
    assert not evaluate_fairness_gate(rep, [rule]).passed
    assert evaluate_fairness_gate(rep, [rule], on_insufficient_groups="pass").passed


def test_rule_on_missing_bound_fails_and_bad_rules_raise():
    yt, yp, sens = _synthetic()
    rep = fairness_report(
        yt, yp, sens, features=["g"], intersections=[], min_group_size=100, n_boot=0, ci_level=0.95, random_state=0
    )
    v = evaluate_fairness_gate(rep, [FairnessRule(feature="g", metric="fpr_ratio", min=0.1, bound="lower")])
    assert not v.passed and "not available" in v.rules[0].reason
    with pytest.raises(ValueError, match="unknown metric"):
        FairnessRule(feature="g", metric="dp_ratio", min=0.8)
    with pytest.raises(ValueError, match="bound"):
        FairnessRule(feature="g", metric="fpr_ratio", min=0.8, bound="median")
    with pytest.raises(ValueError, match="not in report"):
        evaluate_fairness_gate(rep, [FairnessRule(feature="sex", metric="fpr_ratio", min=0.8)])
    assert FairnessRule(feature="sex×race", metric="fpr_ratio", min=0.5).feature_key == "sex|race"
    assert FairnessRule(feature="sex|race", metric="fpr_ratio", max=0.5).comparison == "max"
    with pytest.raises(ValueError, match="exactly one of min or max"):
        FairnessRule(feature="g", metric="fpr_ratio", min=0.5, max=0.9)


def test_bad_input_names_the_column_and_rows():
    yt, yp, sens = _synthetic()
    sens.loc[[3, 7], "g"] = None
    with pytest.raises(ValueError, match=r"'g' has missing values at rows \[3, 7\]"):
        fairness_report(
            yt, yp, sens, features=["g"], intersections=[], min_group_size=10, n_boot=0, ci_level=0.95, random_state=0
        )
    with pytest.raises(ValueError, match="y_pred must be binary"):
        fairness_report(
            yt,
            yp * 2,
            sens.fillna("A"),
            features=["g"],
            intersections=[],
            min_group_size=10,
            n_boot=0,
            ci_level=0.95,
            random_state=0,
        )
    with pytest.raises(ValueError, match="'h' not in sensitive frame"):
        fairness_report(
            yt,
            yp,
            sens.fillna("A"),
            features=["h"],
            intersections=[],
            min_group_size=10,
            n_boot=0,
            ci_level=0.95,
            random_state=0,
        )


def test_pretraining_bias_equals_direct_pandas():
    df = read_raw(ADULT, DATA_DIR / "adult.data")
    out = pretraining_bias(df, LABEL, POSITIVE_LABEL, SENSITIVE)
    json.dumps(out.to_dict(), allow_nan=False)
    pos = df[LABEL] == POSITIVE_LABEL
    for col in SENSITIVE:
        facets = {r.facet: r for r in out.features[col]}
        assert set(facets) == set(df[col].unique())
        for value, r in facets.items():
            d = df[col] == value
            n_d, n_a = d.sum(), (~d).sum()
            assert r.class_imbalance == pytest.approx((n_a - n_d) / (n_a + n_d))
            assert r.dpl == pytest.approx(pos[~d].mean() - pos[d].mean())
    # Adult's known skew: women are under-represented and receive ">50K" far less often.
    female = next(r for r in out.features["sex"] if r.facet == "Female")
    assert female.class_imbalance > 0.3 and female.dpl > 0.15


def test_render_json_and_tradeoff(holdout_predictions):
    Xt, yt, yp = holdout_predictions
    rep = _report(yt, yp, Xt[SENSITIVE], n_boot=5)
    verdict = evaluate_fairness_gate(rep, [FairnessRule(feature="sex", metric="demographic_parity_ratio", min=0.8)])
    doc = json.loads(json.dumps(rep.to_dict(), allow_nan=False))
    assert doc["features"]["sex|race"]["small_groups"] == rep.features["sex|race"].small_groups
    md = render_markdown(rep, verdict)
    assert "FAILED" in md and "Female\\|White" in md and "(small)" in md
    page = render_html(rep, verdict)
    assert page.startswith("<!DOCTYPE html>") and "Female|White" in page
    assert "http" not in page and "<script" not in page and "<link" not in page
    other = _report(yt, 1 - yp, Xt[SENSITIVE])
    table = compare_tradeoff(
        {
            "unmitigated": ({"accuracy": float((yp == yt).mean())}, rep),
            "inverted": ({"accuracy": float((yp != yt).mean())}, other),
        }
    )
    assert [r["challenger"] for r in table.rows] == ["unmitigated", "inverted"]
    assert (
        table.rows[0]["sex:demographic_parity_ratio"]["value"]
        == rep.features["sex"].summary["demographic_parity_ratio"].value
    )
    assert table.rows[1]["accuracy"] == pytest.approx(1 - table.rows[0]["accuracy"])
    assert "| unmitigated |" in table.markdown
    json.dumps(table.to_dict(), allow_nan=False)
    assert not math.isnan(table.rows[1]["sex:fpr_ratio"]["value"])
