"""Fairness, mitigation and explanations as gates on the governed path (real instance,
MLflow store and DVC repo in temp dirs)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from dagster import AssetCheckKey, AssetKey, AssetSelection, Definitions, define_asset_job, instance_for_test

from mlgov_assets.core.models.scoring import score_frame
from mlgov_assets.core.project.project import open_project
from mlgov_assets.core.project.reader import read_raw
from mlgov_assets.core.settings import DEFAULT_PROJECT_DIR, DEFAULT_PROJECT_SPEC
from mlgov_assets.defs.fairness import check_explanations_additivity
from mlgov_tests.conftest import check_results, run_path

#: The shipped demo project the governed path runs on.
ADULT = open_project(DEFAULT_PROJECT_SPEC, DEFAULT_PROJECT_DIR)


def test_default_policy_refuses_the_unmitigated_model_and_promotes_the_mitigated_one(full_env):
    env = full_env
    with instance_for_test() as instance:
        result = run_path(env, instance, params={"max_iter": 100})
        assert result.success, [(c.check_name, c.description) for c in result.get_asset_check_evaluations()]
        checks = check_results(result)
        reg = env.registry()
        champ = reg.champion_version()
        info = reg.version_info(champ)
        assert info.tags["mlgov.variant"] == "mitigated"
        base = int(info.tags["mlgov.base_version"])
        # the refused one is visible: ERROR check, failed gate recorded on its version, not promotable
        assert checks["check_fairness_report_challenger"].passed is False
        assert checks["check_fairness_report_challenger"].severity.value == "ERROR"
        assert reg.gate_records(base)["fairness"].passed is False
        assert reg.promotion_blockers(base, env.policy_obj().required_model_gates(), env.policy_obj().sha256)
        # the champion passed every gate, fairness and SHAP additivity included
        records = reg.gate_records(champ)
        assert {g: records[g].passed for g in env.policy_obj().required_model_gates()} == {
            "metric_floors": True,
            "champion_comparison": True,
            "fairness": True,
            "explanation_additivity": True,
        }

        report = json.loads((env.home / "assets" / "adult" / "fairness_report.json").read_text())
        cand = report["candidate"]["report"]["features"]["sex"]["summary"]["demographic_parity_ratio"]["value"]
        unmit = report["challenger"]["report"]["features"]["sex"]["summary"]["demographic_parity_ratio"]["value"]
        assert cand > 0.8 > unmit  # mitigation improves the fairness metric on the holdout
        assert report["candidate"]["metrics"]["accuracy"] < report["challenger"]["metrics"]["accuracy"]  # the trade-off

        # per-group selection rate / TPR / FPR equal an independent pandas groupby on the same decisions
        holdout = pd.read_parquet(env.home / "assets" / "adult" / "holdout_features.parquet")
        decisions = score_frame(reg.load_governed(champ), holdout[[*ADULT.model_features, *ADULT.sensitive]])[
            "decision"
        ]
        df = holdout.assign(d=decisions.to_numpy())
        expected = df.groupby("sex").apply(
            lambda g: pd.Series(
                {"selection_rate": g.d.mean(), "tpr": g.d[g.label == 1].mean(), "fpr": g.d[g.label == 0].mean()}
            )
        )
        groups = {g["group"]: g for g in report["candidate"]["report"]["features"]["sex"]["groups"]}
        for sex, row in expected.iterrows():
            for metric in ("selection_rate", "tpr", "fpr"):
                assert abs(groups[sex][metric] - row[metric]) < 1e-12, (sex, metric)

        # explanations: exact additivity on every holdout row, stored per decision with reasons
        expl = pd.read_parquet(env.home / "assets" / "adult" / "explanations.parquet")
        assert len(expl) == len(holdout)
        assert checks["check_explanations_additivity"].passed
        assert {"reason_1", "reason_1_shap", "shap_age", "base_value", "model_raw_output"} <= set(expl.columns)
        low = expl[expl["reason_1_shap"].notna()]
        assert (low["reason_1_shap"] < 0).all()  # adverse-action reasons push the score down
        # reports are logged to the model's MLflow run
        run_id = info.run_id
        names = {a.path for a in reg.client.list_artifacts(run_id, "fairness")}
        assert {"fairness/report.json", "fairness/report.md", "fairness/report.html"} <= names
        assert any(a.path.endswith("importance.png") for a in reg.client.list_artifacts(run_id, "explanations"))


def _biased_dataset(env) -> str:
    df = read_raw(ADULT, env.project / "data" / "adult.data")
    df.loc[df["sex"] == "Female", "income"] = "<=50K"  # labels flipped for one group
    path = env.project / "data" / "generated" / "biased.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return "data/generated/biased.csv"


def test_biased_challenger_fails_the_fairness_gate_and_a_broken_explanation_fails_additivity(env):
    # mitigation off and a lenient parity floor the ordinary model meets (its ratio is ~0.34);
    # metric gates loose enough that the biased model reaches the fairness gate (blocking checks
    # upstream would otherwise stop it first), so the fairness gate is what refuses it
    env.use_policy(
        metric_floors={"roc_auc": {"min": 0.5}},
        champion_comparison={"roc_auc": {"greater_is_better": True, "threshold": 0.5}},
        fairness={
            "sensitive_features": ["sex", "race"],
            "intersections": [],
            "min_group_size": 100,
            "n_boot": 50,
            "rules": [{"feature": "sex", "metric": "demographic_parity_ratio", "bound": "point", "min": 0.25}],
            "mitigation": {"enabled": False},
        },
        explanations={"additivity_tolerance": 1e-6, "ndcg_min": 0.9, "top_k_reasons": 3},
    )
    with instance_for_test() as instance:
        first = run_path(env, instance)
        assert first.success, [(c.check_name, c.description) for c in first.get_asset_check_evaluations()]
        reg = env.registry()
        champ = reg.champion_version()

        biased = run_path(env, instance, dataset=_biased_dataset(env))
        assert not biased.success
        fair = check_results(biased)["check_fairness_report_candidate"]
        assert fair.passed is False and "sex demographic_parity_ratio" in fair.description
        new = max(reg.versions())
        assert reg.gate_records(new)["fairness"].passed is False
        assert reg.champion_version() == champ  # champion unchanged

        # a broken explainer output fails the (blocking) sanity gate, naming the rows
        path = env.home / "assets" / "adult" / "explanations.parquet"
        expl = pd.read_parquet(path)
        expl.loc[[3, 7], "shap_age"] += 0.5
        expl.to_parquet(path, index=False)
        check_key = AssetCheckKey(AssetKey(["adult", "explanations"]), check_explanations_additivity.check_key.name)
        job = define_asset_job("additivity_only", selection=AssetSelection.checks(check_key))
        d = env.defs()
        defs = Definitions(assets=list(d.assets), asset_checks=list(d.asset_checks), resources=d.resources, jobs=[job])
        res = defs.resolve_job_def("additivity_only").execute_in_process(instance=instance, raise_on_error=False)
        add = check_results(res)["check_explanations_additivity"]
        assert add.passed is False
        assert "2 rows break additivity" in add.description
        rows = json.loads(json.dumps(add.metadata["failing_rows"].value))
        assert sorted(rows) == sorted(int(expl.loc[i, "row_id"]) for i in (3, 7))
        version = int(expl["model_version"].iloc[0])
        assert reg.gate_records(version)["explanation_additivity"].passed is False
        assert np.isfinite(expl["model_raw_output"]).all()
