"""The UCI Adult census-income data: column dictionary and a faithful raw reader.

Pure pandas; no Dagster. Column meanings are from ``data/adult.names`` (see ``data/README.md``).
The raw reader keeps every value as the file has it (strings, ``?`` for missing) so the
validation gate sees the data as delivered; cleaning happens in :mod:`mlgov_assets.core.data.features`.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

#: Column names in file order (``adult.names`` uses hyphens; we use snake_case).
COLUMNS: list[str] = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
]
LABEL = "income"
POSITIVE_LABEL = ">50K"
LABELS = ("<=50K", ">50K")

NUMERIC: list[str] = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]

#: Category lists exactly as ``adult.names`` gives them.
CATEGORIES: dict[str, list[str]] = {
    "workclass": [
        "Private",
        "Self-emp-not-inc",
        "Self-emp-inc",
        "Federal-gov",
        "Local-gov",
        "State-gov",
        "Without-pay",
        "Never-worked",
    ],
    "education": [
        "Bachelors",
        "Some-college",
        "11th",
        "HS-grad",
        "Prof-school",
        "Assoc-acdm",
        "Assoc-voc",
        "9th",
        "7th-8th",
        "12th",
        "Masters",
        "1st-4th",
        "10th",
        "Doctorate",
        "5th-6th",
        "Preschool",
    ],
    "marital_status": [
        "Married-civ-spouse",
        "Divorced",
        "Never-married",
        "Separated",
        "Widowed",
        "Married-spouse-absent",
        "Married-AF-spouse",
    ],
    "occupation": [
        "Tech-support",
        "Craft-repair",
        "Other-service",
        "Sales",
        "Exec-managerial",
        "Prof-specialty",
        "Handlers-cleaners",
        "Machine-op-inspct",
        "Adm-clerical",
        "Farming-fishing",
        "Transport-moving",
        "Priv-house-serv",
        "Protective-serv",
        "Armed-Forces",
    ],
    "relationship": ["Wife", "Own-child", "Husband", "Not-in-family", "Other-relative", "Unmarried"],
    "race": ["White", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other", "Black"],
    "sex": ["Female", "Male"],
    "native_country": [
        "United-States",
        "Cambodia",
        "England",
        "Puerto-Rico",
        "Canada",
        "Germany",
        "Outlying-US(Guam-USVI-etc)",
        "India",
        "Japan",
        "Greece",
        "South",
        "China",
        "Cuba",
        "Iran",
        "Honduras",
        "Philippines",
        "Italy",
        "Poland",
        "Jamaica",
        "Vietnam",
        "Mexico",
        "Portugal",
        "Ireland",
        "France",
        "Dominican-Republic",
        "Laos",
        "Ecuador",
        "Taiwan",
        "Haiti",
        "Columbia",
        "Hungary",
        "Guatemala",
        "Nicaragua",
        "Scotland",
        "Thailand",
        "Yugoslavia",
        "El-Salvador",
        "Trinadad&Tobago",
        "Peru",
        "Hong",
        "Holand-Netherlands",
    ],
}
CATEGORICAL: list[str] = list(CATEGORIES)

#: Adult marks missing values with ``?``; they occur (only) in these columns of the shipped files.
MISSING_TOKEN = "?"
MISSING_ALLOWED: tuple[str, ...] = ("workclass", "occupation", "native_country")

#: Protected attributes: reported on by the fairness gates, never model inputs.
SENSITIVE: list[str] = ["sex", "race"]


def read_adult_csv(path: str | Path) -> pd.DataFrame:
    """Read an Adult-format file (``adult.data``/``adult.test`` or a batch in the same layout).

    Every column is returned as a stripped string, exactly as delivered: numeric parsing and
    range checks are the validation gate's job, so a bad value is reported, not silently coerced.
    ``adult.test``'s comment line (``|1x3 Cross validator``) and blank lines are skipped, and its
    labels' trailing ``.`` (``>50K.``) is removed so both files share one label set. Empty fields
    become missing (None): the gate reports them as ``not_nullable``, not as a bad category.
    A file with a header row naming the columns (as batches written by mlgov have) is accepted.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("|")]
    has_header = bool(lines) and lines[0].replace(" ", "").split(",")[0] == "age"
    body = "\n".join(lines)
    df = pd.read_csv(
        io.StringIO(body),
        header=0 if has_header else None,
        names=None if has_header else COLUMNS,
        dtype=str,
        skipinitialspace=True,
        keep_default_na=False,
        na_values=[],
    )
    df.columns = [str(c).strip().replace("-", "_") for c in df.columns]
    for col in df.columns:
        df[col] = df[col].str.strip()
    df = df.replace("", None)  # an empty field is a missing value, reported as such by the gate
    if LABEL in df.columns:
        df[LABEL] = df[LABEL].str.rstrip(".")
    return df
