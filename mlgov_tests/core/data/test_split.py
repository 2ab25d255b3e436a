"""The seeded holdout split: deterministic, stratified by the target, recorded by the hash of its row ids."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import yaml

from mlgov_assets.core.data.split import holdout_positions, split_holdout
from mlgov_assets.core.project.project import Project
from mlgov_assets.core.project.spec import Split, parse_project
from mlgov_assets.core.settings import DEFAULT_PROJECT_SPEC, PACKAGE_DIR


def _project(**changes) -> Project:
    doc = yaml.safe_load(DEFAULT_PROJECT_SPEC.read_text())
    doc["data"]["holdout"] = {"fraction": 0.2, "seed": 11}
    doc.update(changes)
    spec = parse_project(yaml.safe_dump(doc, sort_keys=False))
    return Project(spec=spec, sha256="0" * 64, spec_path=DEFAULT_PROJECT_SPEC, repo=PACKAGE_DIR.parent)


def _raw(n_pos: int = 30, n_neg: int = 170) -> pd.DataFrame:
    labels = [">50K"] * n_pos + ["<=50K"] * n_neg
    order = np.random.default_rng(0).permutation(len(labels))
    return pd.DataFrame({"age": [str(20 + i % 50) for i in range(len(labels))], "income": [labels[i] for i in order]})


def test_the_split_is_deterministic_stratified_and_recorded():
    project, raw = _project(), _raw()
    split = project.spec.data.holdout
    assert isinstance(split, Split)
    a, b = split_holdout(project, raw, split), split_holdout(project, raw, split)
    assert a.record == b.record and a.holdout.equals(b.holdout) and a.train.equals(b.train)
    # stratified: each label keeps its share (20% of 30 positives, 20% of 170 negatives)
    assert (a.holdout["income"] == ">50K").sum() == 6 and (a.holdout["income"] == "<=50K").sum() == 34
    assert len(a.train) + len(a.holdout) == len(raw) and a.record.rows == 200 and a.record.holdout_rows == 40
    # the record names the holdout rows: the sha256 of their positions in the file, in file order
    positions = holdout_positions(raw["income"], split)
    assert a.record.holdout_sha256 == hashlib.sha256("\n".join(map(str, positions)).encode()).hexdigest()
    assert (a.record.seed, a.record.fraction, a.record.stratified) == (11, 0.2, True)
    # the two parts are the file's rows, partitioned
    merged = pd.concat([a.train, a.holdout]).sort_values(["age", "income"]).reset_index(drop=True)
    assert merged.equals(raw.sort_values(["age", "income"]).reset_index(drop=True))


def test_another_seed_or_fraction_is_another_holdout():
    raw = _raw()
    base = holdout_positions(raw["income"], Split(fraction=0.2, seed=11))
    assert not np.array_equal(base, holdout_positions(raw["income"], Split(fraction=0.2, seed=12)))
    assert len(holdout_positions(raw["income"], Split(fraction=0.5, seed=11))) == 100
    unstratified = holdout_positions(raw["income"], Split(fraction=0.2, seed=11, stratify=False))
    assert len(unstratified) == 40 and not np.array_equal(base, unstratified)


def test_a_row_id_column_identifies_the_holdout_rows():
    doc_project = _project(row_id="age")
    raw = _raw()
    split = doc_project.spec.data.holdout
    assert isinstance(split, Split)
    cut = split_holdout(doc_project, raw, split)
    positions = holdout_positions(raw["income"], split)
    expected = "\n".join(raw["age"].iloc[positions]).encode()
    assert cut.record.holdout_sha256 == hashlib.sha256(expected).hexdigest()


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_a_split_takes_a_proper_fraction(fraction):
    with pytest.raises(ValueError):
        Split(fraction=fraction)
