"""Shared Adult data and reference-model builders for the fairness/mitigation/explain tests.

Plain functions cached with ``lru_cache`` (not pytest fixtures) so each test module can wrap
them in its own module-scoped fixture while the expensive fit happens once per process.
The reference model follows COMMON.md: ordinal-encoded categoricals except ``sex``/``race``,
numeric passthrough except ``fnlwgt``, HGB without native categorical support.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from mlgov_assets.core.project.project import Project, open_project
from mlgov_assets.core.project.reader import read_raw
from mlgov_assets.core.settings import DEFAULT_PROJECT_SPEC

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = REPO / "data"


@cache
def adult_project() -> Project:
    """The shipped Adult demo project (its spec, data under the repository)."""
    return open_project(DEFAULT_PROJECT_SPEC, REPO)


def read_adult(path: str | Path) -> pd.DataFrame:
    """An Adult-format file read as the demo's spec reads it (strings, ``?`` kept)."""
    return read_raw(adult_project(), path)


_ADULT = adult_project()
LABEL = _ADULT.label
POSITIVE_LABEL = _ADULT.favourable
SENSITIVE = _ADULT.sensitive
NUMERIC = _ADULT.numeric
CATEGORICAL = _ADULT.categorical
MODEL_CATEGORICAL = [c for c in CATEGORICAL if c not in SENSITIVE and c != LABEL]
MODEL_NUMERIC = [c for c in NUMERIC if c != "fnlwgt"]


def typed_adult(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Raw string frame -> (typed feature frame incl. sensitive columns, 0/1 label)."""
    out = df.drop(columns=[LABEL]).copy()
    for col in NUMERIC:
        out[col] = pd.to_numeric(out[col])
    for col in CATEGORICAL:
        if col != LABEL:
            out[col] = out[col].replace("?", "Unknown")
    y = (df[LABEL] == POSITIVE_LABEL).astype(int).rename("y")
    return out, y


@cache
def adult_train() -> tuple[pd.DataFrame, pd.Series]:
    return typed_adult(read_adult(DATA_DIR / "adult.data"))


@cache
def adult_test() -> tuple[pd.DataFrame, pd.Series]:
    return typed_adult(read_adult(DATA_DIR / "adult.test"))


def make_pipeline(**hgb_params):
    """The COMMON.md reference pipeline (unfitted)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    pre = ColumnTransformer(
        [
            ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), MODEL_CATEGORICAL),
            ("num", "passthrough", MODEL_NUMERIC),
        ],
        remainder="drop",
    )
    params = {"categorical_features": None, "random_state": 0, **hgb_params}
    return Pipeline([("pre", pre), ("hgb", HistGradientBoostingClassifier(**params))])


def fit_single_thread(estimator, X, y):
    """Fit with one OpenMP thread: on this shared 2-core box HGB fits ~4x faster that way
    (no spin-waiting against other processes), which keeps the test files fast and stable."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return estimator.fit(X, y)


@cache
def fitted_reference_pipeline():
    """Reference HGB pipeline fitted on adult.data (cached: fitted once per test process)."""
    X, y = adult_train()
    return fit_single_thread(make_pipeline(), X, y)


def flip_labels_for_group(y: pd.Series, mask: pd.Series | np.ndarray, to: int = 0) -> pd.Series:
    """Labels with every row in ``mask`` forced to ``to``: the recipe for a deliberately biased model."""
    out = y.copy()
    out[np.asarray(mask)] = to
    return out
