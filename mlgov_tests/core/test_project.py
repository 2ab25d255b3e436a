"""The project spec: strict validation naming the key path, and the Adult spec reproducing the demo."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlgov_assets.core.data import adult
from mlgov_assets.core.data import features as adult_features
from mlgov_assets.core.data.schemas import RawAdultSchema, validate
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


def test_the_adult_spec_reads_validates_and_builds_features_exactly_as_the_adult_code(tmp_path: Path) -> None:
    project = open_project(DEFAULT_PROJECT_SPEC, REPO)
    assert project.model_features == adult_features.MODEL_FEATURES
    assert project.sensitive == adult.SENSITIVE and project.label == adult.LABEL
    for name in ("adult.data", "adult.test"):
        raw = read_raw(project, REPO / "data" / name)
        assert raw.equals(adult.read_adult_csv(REPO / "data" / name))
        ours = raw_schema(project).validate(raw, lazy=True)
        theirs = validate(raw, RawAdultSchema, source=name).validated
        built = build_features(project, ours)
        assert built.equals(adult_features.build_features(theirs))
        feature_schema(project).validate(built, lazy=True)


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
