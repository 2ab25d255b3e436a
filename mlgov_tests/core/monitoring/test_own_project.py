"""Monitoring a team's own dataset: the batch path (read -> validate -> score-free drift against the
reference profile), labels and simulation on a small non-Adult project built from a spec, with a
header row, a row id column, a split holdout and column names with dots and capitals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov_assets.core.integrity import md5_file
from mlgov_assets.core.monitoring.batches import (
    align_labels,
    labels_filename,
    read_batch,
    read_labels,
    simulate_batch,
)
from mlgov_assets.core.monitoring.drift import compute_drift
from mlgov_assets.core.monitoring.intake import validate_batch
from mlgov_assets.core.monitoring.ledger import MonitoringPaths
from mlgov_assets.core.monitoring.reevaluation import read_holdout
from mlgov_assets.core.monitoring.reference import (
    DriftColumns,
    Reference,
    read_reference,
    reference_profile,
    typed_for_drift,
)
from mlgov_assets.core.project.project import Project, open_project
from mlgov_tests.core.monitoring.helpers import ADULT

LABEL = "default.next.month"
SPEC = f"""
name: loans
data:
  train: {{path: data/loans.csv}}
  holdout: {{fraction: 0.3, seed: 7, stratify: true}}
  format: {{kind: csv, header: present}}
columns:
  ID: {{type: integer, min: 1}}
  Limit.Amount: {{type: number, min: 0}}
  PAY_0: {{type: integer, min: -2, max: 9}}
  Region: {{type: categorical, categories: [North, South, East]}}
  SEX: {{type: categorical, categories: [1, 2]}}
  {LABEL}: {{type: categorical, categories: [0, 1]}}
row_id: ID
target: {{column: {LABEL}, favourable: 0}}
protected:
  - {{column: SEX}}
exclude:
  - {{column: ID, reason: identifier}}
policy: policy.yaml
monitoring:
  simulation:
    shift_columns: [Limit.Amount, PAY_0]
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    repo = tmp_path_factory.mktemp("loans")
    rng = np.random.default_rng(0)
    n = 1200
    pay = rng.integers(-2, 10, n)
    frame = pd.DataFrame(
        {
            "ID": np.arange(1, n + 1),
            "Limit.Amount": np.round(rng.gamma(2.0, 50_000.0, n), 2),
            "PAY_0": pay,
            "Region": rng.choice(["North", "South", "East"], n),
            "SEX": rng.choice([1, 2], n),
            LABEL: (rng.random(n) < 0.1 + 0.05 * np.clip(pay, 0, None)).astype(int),
        }
    )
    (repo / "data").mkdir()
    frame.to_csv(repo / "data" / "loans.csv", index=False)
    (repo / "loans.yaml").write_text(SPEC, encoding="utf-8")
    return open_project(repo / "loans.yaml", repo)


def test_drift_columns_are_the_raw_inputs_without_target_and_row_id(project):
    columns = DriftColumns.of(project)
    assert columns.numeric == ["Limit.Amount", "PAY_0"] and columns.categorical == ["Region", "SEX"]
    # the Adult demo keeps exactly the columns it always compared
    adult = DriftColumns.of(ADULT)
    assert adult.numeric == ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
    assert adult.categorical == [
        "workclass",
        "education",
        "marital_status",
        "occupation",
        "relationship",
        "race",
        "sex",
        "native_country",
    ]


def test_batch_path_read_validate_and_drift_against_the_reference_profile(project, tmp_path):
    ref_file = project.repo / project.train_file
    ref = Reference(project.train_file, md5_file(ref_file), ref_file, "project")
    reference = read_reference(project, ref)
    holdout = read_holdout(project)
    assert len(reference) + len(holdout) == 1200  # the split: training part is the reference
    assert not set(reference["ID"]) & set(holdout["ID"])
    profile, meta = reference_profile(project, MonitoringPaths(tmp_path / "monitoring"), ref, bins=10)
    assert meta.rows == len(reference)
    assert meta.positive_rate == pytest.approx((reference[LABEL] == "0").mean())  # favourable is 0

    verdicts = {}
    for kind, seed in (("none", 1), ("covariate", 2)):
        batch, labels = simulate_batch(project, kind, holdout, 1500, seed, with_labels=True)
        path = tmp_path / f"{kind}.csv"
        batch.to_csv(path, index=False)
        raw = read_batch(project, path)
        assert list(raw.columns) == [c for c in project.columns if c != LABEL]
        report = validate_batch(project, raw, source=path.name)
        assert report.passed, report.summary()
        assert report.validated is not None
        drift = compute_drift(profile, typed_for_drift(project, report.validated))
        assert {c.column for c in drift.columns} == {"Limit.Amount", "PAY_0", "Region", "SEX"}
        verdicts[kind] = drift
        assert labels is not None and list(labels.columns) == ["row_id", LABEL]
        labels_path = tmp_path / labels_filename(kind)
        labels.to_csv(labels_path, index=False)
        y = align_labels(project, raw.index, read_labels(project, labels_path))
        assert y.tolist() == (labels[LABEL] == "0").astype(float).tolist()
    assert not verdicts["none"].dataset_drift
    assert verdicts["covariate"].dataset_drift
    assert {"Limit.Amount", "PAY_0"} <= set(verdicts["covariate"].drifted_columns)


def test_a_broken_batch_of_the_project_fails_its_schema(project, tmp_path):
    batch, _ = simulate_batch(project, "broken", read_holdout(project), 300, 3)
    path = tmp_path / "broken.csv"
    batch.to_csv(path, index=False)
    report = validate_batch(project, read_batch(project, path), source=path.name)
    assert not report.passed
    failed = {f.column for f in report.failures}
    # PAY_0 out of range, Limit.Amount written as a word, an unknown Region, the only other column dropped
    assert failed == {"PAY_0", "Limit.Amount", "Region", "SEX"} and "SEX" not in batch.columns


def test_label_shift_moves_the_favourable_share(project):
    holdout = read_holdout(project)
    _, labels = simulate_batch(project, "label", holdout, 4000, 5)
    assert labels is not None
    assert (holdout[LABEL] == "0").mean() > 0.6
    assert abs((labels[LABEL] == "0").mean() - 0.5) < 0.03


def test_the_project_file_is_read_with_its_header_and_dotted_names(project):
    raw = read_batch(project, Path(project.repo / project.train_file))
    assert LABEL in raw.columns and "Limit.Amount" in raw.columns and len(raw) == 1200
