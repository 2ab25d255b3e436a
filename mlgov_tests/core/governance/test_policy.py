"""The policy file: strict validation with errors naming the key, and a content hash."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from mlgov_assets.core.governance.policy import PolicyError, load_policy, parse_policy
from mlgov_assets.core.governance.policy_project import check_against_project
from mlgov_assets.core.project.project import open_project
from mlgov_assets.core.settings import DEFAULT_POLICY, DEFAULT_PROJECT_DIR, DEFAULT_PROJECT_SPEC

GOOD = """
policy_version: 1
metric_floors:
  roc_auc: {min: 0.9}
  log_loss: {max: 0.4}
champion_comparison:
  roc_auc: {greater_is_better: true, threshold: 0.9, min_absolute_change: 0.001}
"""


def test_default_policy_loads_and_hash_is_sha256_of_the_bytes():
    policy = load_policy(DEFAULT_POLICY)
    assert policy.sha256 == hashlib.sha256(Path(DEFAULT_POLICY).read_bytes()).hexdigest()
    assert "metric_floors" in policy.required_model_gates()
    assert policy.metric_floors["roc_auc"].min is not None


def test_good_policy_parses():
    p = parse_policy(GOOD)
    assert p.champion_comparison["roc_auc"].min_absolute_change == 0.001
    assert p.metric_floors["log_loss"].max == 0.4


@pytest.mark.parametrize(
    "mutation, key, why",
    [
        (("metric_floors:", "metric_floor:"), "metric_floor", "unknown key"),
        (("roc_auc: {min: 0.9}", "roc_auc: {min: 1.7}"), "metric_floors.roc_auc.min", "impossible"),
        (("roc_auc: {min: 0.9}", "roc_auc: {min: high}"), "metric_floors.roc_auc.min", "must be a number"),
        (("roc_auc: {min: 0.9}", "roc_auc: {max: 0.9}"), "metric_floors.roc_auc", "greater-is-better"),
        (("roc_auc: {min: 0.9}", "rocauc: {min: 0.9}"), "metric_floors.rocauc", "unknown metric"),
        (
            ("min_absolute_change: 0.001", "min_absolute_change: 0"),
            "champion_comparison.roc_auc.min_absolute_change",
            "> 0",
        ),
        (
            ("greater_is_better: true", "greater_is_better: false"),
            "champion_comparison.roc_auc.greater_is_better",
            "greater",
        ),
        (
            ("greater_is_better: true", "greater_is_better: yes please"),
            "champion_comparison.roc_auc.greater_is_better",
            "true or false",
        ),
        (("policy_version: 1", "policy_version: 2"), "policy_version", "unsupported"),
        (("policy_version: 1\n", ""), "policy_version", "required"),
    ],
)
def test_malformed_policy_is_a_clear_error_naming_the_key(mutation, key, why):
    old, new = mutation
    assert old in GOOD
    with pytest.raises(PolicyError) as exc:
        parse_policy(GOOD.replace(old, new), source="p.yaml")
    msg = str(exc.value)
    assert msg.startswith("p.yaml: ")
    assert key in msg and why in msg, msg


def test_semantic_checks_on_other_sections():
    with pytest.raises(PolicyError, match=r"drift.psi_warn: must be > 0 and <= drift.psi_act"):
        parse_policy(GOOD + "drift: {psi_warn: 0.5, psi_act: 0.2}\n")
    with pytest.raises(PolicyError, match=r"fairness.confidence_level"):
        parse_policy(GOOD + "fairness: {sensitive_features: [sex], confidence_level: 1.5}\n")
    with pytest.raises(PolicyError, match=r"fairness.rules\[0\].feature"):
        rule = "{feature: age, metric: demographic_parity_ratio, min: 0.8}"
        parse_policy(GOOD + f"fairness: {{sensitive_features: [sex], rules: [{rule}]}}\n")
    with pytest.raises(PolicyError, match=r"not valid YAML"):
        parse_policy("metric_floors: [", source="x")


def test_missing_policy_file(tmp_path):
    with pytest.raises(PolicyError, match="policy file not found"):
        load_policy(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "extra, key",
    [
        ("fairness: {sensitive_features: []}\n", "fairness.sensitive_features"),
        (
            "fairness: {sensitive_features: [sex], rules: [{feature: sex, metric: happiness_ratio, min: 0.8}]}\n",
            "fairness.rules[0].metric",
        ),
        ("fairness: {min_group_size: 50}\n", "fairness.sensitive_features: required key is missing"),
        ("drift: {jensenshannon_threshold: 3}\n", "drift.jensenshannon_threshold"),
        ("monitoring: {webhook_url: 'file:///etc/passwd'}\n", "monitoring.webhook_url"),
        ("monitoring: {min_batch_rows: 0}\n", "monitoring.min_batch_rows"),
        ("explanations: {ndcg_top_k: 0}\n", "explanations.ndcg_top_k"),
    ],
)
def test_more_impossible_settings_are_refused_on_load(extra, key):
    with pytest.raises(PolicyError, match=re.escape(key)):
        parse_policy(GOOD + extra)


def _adult():
    return open_project(DEFAULT_PROJECT_SPEC, DEFAULT_PROJECT_DIR)


def test_default_policy_fits_the_adult_project():
    policy = load_policy(DEFAULT_POLICY)
    assert check_against_project(policy, _adult()) is policy


@pytest.mark.parametrize(
    "fairness, key, name",
    [
        ("{sensitive_features: [age], intersections: []}", "fairness.sensitive_features", "'age'"),
        ("{sensitive_features: [sex, age], intersections: [[sex, age]]}", "fairness.intersections[0]", "'age'"),
        (
            "{sensitive_features: [sex, native_country], intersections: [],"
            " mitigation: {sensitive_features: [native_country]}}",
            "fairness.mitigation.sensitive_features",
            "'native_country'",
        ),
    ],
)
def test_sensitive_features_must_exist_in_the_project(fairness, key, name):
    policy = parse_policy(GOOD + f"fairness: {fairness}\n", source="p.yaml")  # parses on its own
    with pytest.raises(PolicyError) as exc:
        check_against_project(policy, _adult())
    msg = str(exc.value)
    assert msg.startswith("p.yaml: "), msg
    assert f"{key}: {name} is not a sensitive column of project 'adult'" in msg, msg
    assert "['sex', 'race']" in msg, msg


def test_derived_bands_are_sensitive_features(tmp_path):
    import yaml

    doc = yaml.safe_load(DEFAULT_PROJECT_SPEC.read_text())
    doc["protected"].append({"column": "age", "bands": {"name": "age_band", "edges": [25, 40, 60]}})
    doc["policy"] = str(DEFAULT_POLICY)
    spec = tmp_path / "banded.yaml"
    spec.write_text(yaml.safe_dump(doc))
    project = open_project(spec, DEFAULT_PROJECT_DIR)
    policy = parse_policy(GOOD + "fairness: {sensitive_features: [sex, age_band], intersections: [[sex, age_band]]}\n")
    assert check_against_project(policy, project) is policy
    with pytest.raises(PolicyError, match=r"fairness.sensitive_features: 'age_band' is not a sensitive column"):
        check_against_project(policy, _adult())


def test_the_resource_checks_its_policy_against_the_project(tmp_path, monkeypatch):
    from mlgov_assets.resources import MlgovResource

    bad = tmp_path / "policy.yaml"
    bad.write_text(GOOD + "fairness: {sensitive_features: [age], intersections: []}\n")
    resource = MlgovResource(home=str(tmp_path / "home"), policy_path=str(bad))
    with pytest.raises(PolicyError, match=r"fairness.sensitive_features: 'age' is not a sensitive column"):
        resource.policy()
    assert load_policy(bad).fairness is not None  # the file alone still loads
