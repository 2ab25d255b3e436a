"""Pre-training data bias (SageMaker Clarify's class imbalance and DPL), reported, not gated."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlgov_assets.core.errors import InputError
from mlgov_assets.core.governance.fairness.results import _Result

if TYPE_CHECKING:
    import pandas as pd

CONVENTION = (
    "d = facet under study (rows with the value), a = all other rows; CI = (n_a - n_d)/(n_a + n_d); DPL = q_a - q_d"
)


class FacetBias(_Result):
    """One facet (value of a sensitive column) against all other rows."""

    facet: str
    n_d: int
    n_a: int
    class_imbalance: float
    q_d: float | None
    q_a: float | None
    dpl: float | None


class PretrainingBias(_Result):
    """Class imbalance and DPL per facet of each sensitive column."""

    label_col: str
    positive_label: str | int
    n_rows: int
    positive_rate: float
    convention: str
    features: dict[str, list[FacetBias]]


def _check_columns(df: pd.DataFrame, label_col: str, sensitive: list[str]) -> None:
    if label_col not in df.columns:
        raise InputError(f"label column {label_col!r} not in frame")
    if len(df) == 0:
        raise InputError("pretraining_bias needs a non-empty frame")
    for col in [label_col, *sensitive]:
        if col not in df.columns:
            raise InputError(f"column {col!r} not in frame")
        missing = df[col].isna().to_numpy()
        if missing.any():
            raise InputError(f"column {col!r} has missing values at rows {df.index[missing][:5].tolist()}")


def pretraining_bias(
    df: pd.DataFrame, label_col: str, positive_label: str | int, sensitive: list[str]
) -> PretrainingBias:
    """Class imbalance (CI) and difference in positive proportions in labels (DPL) per facet.

    Facet ``d`` = rows with the value, ``a`` = all other rows: ``CI = (n_a - n_d) / (n_a + n_d)``
    (positive: d under-represented), ``DPL = q_a - q_d`` with ``q`` the share of
    ``positive_label`` (positive: d gets it less often). Both lie in [-1, 1].
    """
    from mlgov_assets.core.governance.fairness.bootstrap import clean, rate  # numpy: only when measuring

    _check_columns(df, label_col, sensitive)
    pos = (df[label_col] == positive_label).to_numpy()
    if not pos.any():
        raise InputError(f"positive label {positive_label!r} never occurs in {label_col!r}")
    n = len(df)
    feats: dict[str, list[FacetBias]] = {}
    for col in sensitive:
        values = df[col].astype(str).to_numpy()
        rows = []
        for facet in sorted(set(values)):
            in_d = values == facet
            n_d, n_a = int(in_d.sum()), int(n - in_d.sum())
            q_d, q_a = rate(pos[in_d].sum(), n_d), rate(pos[~in_d].sum(), n_a)
            rows.append(
                FacetBias(
                    facet=facet,
                    n_d=n_d,
                    n_a=n_a,
                    class_imbalance=(n_a - n_d) / (n_a + n_d),
                    q_d=clean(q_d),
                    q_a=clean(q_a),
                    dpl=clean(q_a - q_d),
                )
            )
        feats[col] = rows
    return PretrainingBias(
        label_col=label_col,
        positive_label=positive_label,
        n_rows=n,
        positive_rate=float(pos.mean()),
        convention=CONVENTION,
        features=feats,
    )
