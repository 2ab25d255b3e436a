"""The project spec: strict validation naming the key path, and the Adult spec reproducing the demo."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlgov_assets.core.data.schemas import validate
from mlgov_assets.core.project.features import build_features
from mlgov_assets.core.project.project import open_project
from mlgov_assets.core.project.reader import read_raw
from mlgov_assets.core.project.schemas import feature_schema, raw_schema
from mlgov_assets.core.project.spec import ProjectError, parse_project
from mlgov_assets.core.settings import DEFAULT_PROJECT_SPEC, PACKAGE_DIR

REPO = PACKAGE_DIR.parent
ADULT = yaml.safe_load(DEFAULT_PROJECT_SPEC.read_text())


def _bad(mutate) -> str:
    doc = yaml.safe_load(DEFAULT_PROJECT_SPEC.read_text())
    mutate(doc)
    with pytest.raises(ProjectError) as err:
        parse_project(yaml.safe_dump(doc, sort_keys=False), source="spec.yaml")
    return str(err.value)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(colour="blue"), "colour: unknown key"),
        (lambda d: d["columns"]["age"].update(maximum=3), "columns.age.maximum: unknown key"),
        (lambda d: d["target"].update(column="salary"), "target.column: 'salary' is not a column"),
        (lambda d: d["target"].update(favourable="rich"), "target.favourable: 'rich' is not a category"),
        (lambda d: d["protected"].append({"column": "height"}), "protected[2].column: 'height' is not a column"),
        (lambda d: d["exclude"].append({"column": "sex", "reason": "pii"}), "'sex' is also excluded"),
        (lambda d: d["exclude"].append({"column": "zip", "reason": "pii"}), "'zip' is not a column"),
        (lambda d: d["exclude"][0].update(reason="because"), "exclude.0.reason"),
        (lambda d: d["columns"]["age"].update(min=99), "min 99.0 > max 90.0"),
        (lambda d: d["columns"]["sex"].pop("categories"), "a categorical column lists its categories"),
        (lambda d: d.update(name="Adult Income"), "name: 'Adult Income' must be lower-case"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_key(mutate, expected) -> None:
    message = _bad(mutate)
    assert message.startswith("spec.yaml: ") and expected in message, message


def test_the_adult_spec_reads_validates_and_builds_the_demo_tables(tmp_path: Path) -> None:
    """What the Adult code did before the spec existed (checked equal when it was replaced)."""
    project = open_project(DEFAULT_PROJECT_SPEC, REPO)
    assert project.model_features == [
        *["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"],
        *["workclass", "marital_status", "occupation", "relationship", "native_country"],
    ]
    assert project.sensitive == ["sex", "race"] and project.label == "income" and project.favourable == ">50K"
    expected = {"adult.data": (32_561, 7_841, 1_843), "adult.test": (16_281, 3_846, 966)}
    for name, (rows, favourable, unknown_occupation) in expected.items():
        raw = read_raw(project, REPO / "data" / name)
        assert list(raw.columns) == project.columns and len(raw) == rows
        assert set(raw["income"]) == {"<=50K", ">50K"}  # adult.test's trailing "." normalised
        report = validate(raw, raw_schema(project), source=name)
        assert report.passed and report.schema == "RawAdultSchema"
        built = build_features(project, report.validated)
        assert (
            int(built["label"].sum()) == favourable and (built["occupation"] == "Unknown").sum() == unknown_occupation
        )
        assert str(built["age"].dtype) == "int64" and set(built["sex"]) == {"Female", "Male"}
        feature_schema(project).validate(built, lazy=True)


def test_the_generated_gate_names_file_column_rule_and_rows() -> None:
    project = open_project(DEFAULT_PROJECT_SPEC, REPO)
    raw = read_raw(project, REPO / "data" / "adult.test").head(50).copy()
    raw.loc[3, "age"], raw.loc[5, "workclass"], raw.loc[7, "sex"] = "150", "Pirate", "?"
    report = validate(raw, raw_schema(project), source="adult.test")
    found = {(f.column, f.check): [e["row"] for e in f.examples] for f in report.failures}
    assert found == {
        ("age", "less_than_or_equal_to(90)"): [3],
        ("workclass", "isin (a category listed in the project spec)"): [5],
        ("sex", "isin (a category listed in the project spec)"): [7],
    }
    assert report.summary().startswith("adult.test: RawAdultSchema refused the data")


def test_bands_are_for_fairness_only(tmp_path: Path) -> None:
    doc = yaml.safe_load(DEFAULT_PROJECT_SPEC.read_text())
    doc["protected"].append({"column": "age", "bands": {"name": "age_band", "edges": [25, 40, 60]}})
    doc["policy"] = str(DEFAULT_PROJECT_SPEC.parent / doc["policy"])
    spec = tmp_path / "p.yaml"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    project = open_project(spec, REPO)
    assert "age" not in project.model_features and "age_band" in project.sensitive
    raw = raw_schema(project).validate(read_raw(project, REPO / "data" / "adult.test"), lazy=True)
    built = build_features(project, raw)
    assert set(built["age_band"]) == {"<25", "25-40", "40-60", ">=60"}
    assert (built.loc[raw["age"].astype(int).reset_index(drop=True) < 25, "age_band"] == "<25").all()


def test_each_project_has_its_own_state_and_the_default_keeps_the_top(tmp_path: Path, monkeypatch) -> None:
    from mlgov_assets.core.project.catalog import known_projects, resolve_project
    from mlgov_assets.core.settings import get_settings

    monkeypatch.setenv("MLGOV_HOME", str(tmp_path))
    monkeypatch.delenv("MLGOV_LANDING_DIR", raising=False)
    credit = resolve_project("credit_default", REPO)
    assert set(known_projects(REPO)) >= {"adult", "credit_default"}
    adult_s, credit_s = get_settings(), get_settings(project_spec=credit)
    assert adult_s.home == tmp_path and adult_s.model_name == "mlgov-adult-income"
    assert credit_s.home == tmp_path / "projects" / "credit_default"
    assert credit_s.landing_dir == credit_s.home / "incoming" and credit_s.model_name == "mlgov-credit-default"
    assert credit_s.policy_path.name == "credit_default.yaml"
    with pytest.raises(Exception, match="no such project"):
        resolve_project("nope", REPO)


def test_a_project_home_passed_back_is_not_nested_again(tmp_path: Path, monkeypatch) -> None:
    from mlgov_assets.core.project.catalog import resolve_project
    from mlgov_assets.core.settings import get_settings

    monkeypatch.setenv("MLGOV_HOME", str(tmp_path))
    spec = resolve_project("credit_default", REPO)
    once = get_settings(project_spec=spec)
    assert get_settings(home=once.home, project_spec=spec).home == once.home
