"""Feature engineering: deterministic and seed-free (no randomness needed), so the same raw
bytes always give the same modelling table.

Model inputs exclude ``sex`` and ``race`` (protected attributes: kept in the table for fairness
reporting only), ``fnlwgt`` (a census sampling weight, not a property of the applicant) and
``education`` (a 1:1 duplicate of ``education_num``).
"""

from __future__ import annotations

import pandas as pd

from mlgov_assets.core.data.adult import LABEL, MISSING_TOKEN, POSITIVE_LABEL, SENSITIVE

UNKNOWN = "Unknown"
MODEL_NUMERIC = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
MODEL_CATEGORICAL = ["workclass", "marital_status", "occupation", "relationship", "native_country"]
MODEL_FEATURES = MODEL_NUMERIC + MODEL_CATEGORICAL
TARGET = "label"


def build_features(raw: pd.DataFrame, *, require_label: bool = True) -> pd.DataFrame:
    """Raw (validated) Adult rows -> the modelling table: typed numbers, ``?`` -> ``Unknown``,
    the label as 0/1, sensitive attributes carried alongside (not as model inputs)."""
    out = pd.DataFrame(index=raw.index)
    for col in MODEL_NUMERIC:
        out[col] = pd.to_numeric(raw[col], errors="raise").astype("int64")
    for col in MODEL_CATEGORICAL:
        out[col] = raw[col].astype(str).replace(MISSING_TOKEN, UNKNOWN)
    for col in SENSITIVE:
        out[col] = raw[col].astype(str)
    if LABEL in raw.columns and raw[LABEL].notna().all():
        out[TARGET] = (raw[LABEL] == POSITIVE_LABEL).astype("int64")
    elif require_label:
        raise ValueError(f"column '{LABEL}': labels are required for training/holdout data")
    return out.reset_index(drop=True)


def column_schema(df: pd.DataFrame) -> list[tuple[str, str]]:
    return [(str(c), str(t)) for c, t in df.dtypes.items()]
