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

from mlgov_assets.core.data.adult import CATEGORICAL, LABEL, NUMERIC, POSITIVE_LABEL, SENSITIVE, read_adult_csv

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
MODEL_CATEGORICAL = [c for c in CATEGORICAL if c not in SENSITIVE]
MODEL_NUMERIC = [c for c in NUMERIC if c != "fnlwgt"]


def typed_adult(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Raw string frame -> (typed feature frame incl. sensitive columns, 0/1 label)."""
    out = df.drop(columns=[LABEL]).copy()
    for col in NUMERIC:
        out[col] = pd.to_numeric(out[col])
    for col in CATEGORICAL:
        out[col] = out[col].replace("?", "Unknown")
    y = (df[LABEL] == POSITIVE_LABEL).astype(int).rename("y")
    return out, y


@cache
def adult_train() -> tuple[pd.DataFrame, pd.Series]:
    return typed_adult(read_adult_csv(DATA_DIR / "adult.data"))


@cache
def adult_test() -> tuple[pd.DataFrame, pd.Series]:
    return typed_adult(read_adult_csv(DATA_DIR / "adult.test"))


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
