"""Production batches: ids, files, reading, simulated batches and the retraining run key.

Landing-folder conventions (what the sensor and ``mlgov monitor --once`` rely on):

* A batch file is ``<batch_id>.csv`` or ``<batch_id>.parquet`` in the project's raw layout (read as
  the spec's format says: raw strings, its missing tokens kept), with an optional label column.
  The batch id is the file name without its extension, e.g. ``batch_2026-11-27T10-00_cov.csv`` ->
  ``batch_2026-11-27T10-00_cov``; it must pass :func:`validate_batch_id` (it becomes a Dagster
  partition key and a path component, so it is allow-listed, never sanitised).
* Delayed labels for that batch arrive later as ``<batch_id>.labels.csv`` (or ``.labels.parquet``)
  with two columns ``row_id,<label column>``.
* Rows are identified by ``row_id`` = the 0-based position of the data row in the batch file
  (header excluded). Batches need no id column, so a layout without a header still works and a
  batch file is never rewritten after landing; :func:`read_batch` sets this as the index. A batch
  that does bring a ``row_id`` column uses it instead (it must be unique non-negative ints; in a
  CSV it needs the header row and, when the spec's header mode is ``auto``, must not be the first
  column, because such a header is recognised by the spec's first column coming first). The
  spec's own ``row_id`` column, if any, is an ordinary data column here (validated, never drifted).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from mlgov_assets.core.governance.policy import Ingestion
from mlgov_assets.core.project.quoting import quote
from mlgov_assets.core.project.reader import read_raw

if TYPE_CHECKING:
    from mlgov_assets.core.project.project import Project

BATCH_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
BATCH_ID_RULE = (
    "1-128 characters from [A-Za-z0-9_.-], starting with a letter or digit, no '..', not ending in '.labels'"
)
BATCH_SUFFIXES = (".csv", ".parquet")
LABELS_INFIX = ".labels"
ROW_ID = "row_id"
SimKind = Literal["none", "covariate", "label", "broken"]
SIM_KINDS: tuple[str, ...] = ("none", "covariate", "label", "broken")


# --------------------------------------------------------------------------- ids and file names


def validate_batch_id(s: str) -> str:
    """Return ``s`` if it is a safe batch id, else raise ValueError naming the broken rule.

    Allow-list, not clean-up: a batch id becomes a partition key, a folder name and part of a
    run key, so anything that could be a path trick (``..``, ``/``, ``\\``) is refused outright.
    """
    if not isinstance(s, str):
        raise ValueError(f"batch id must be a str, got {type(s).__name__}")
    if not BATCH_ID_PATTERN.fullmatch(s):
        raise ValueError(f"batch id {s!r} is invalid: must be {BATCH_ID_RULE} (pattern {BATCH_ID_PATTERN.pattern})")
    if ".." in s:
        raise ValueError(f"batch id {s!r} is invalid: must not contain '..'")
    if s.endswith(LABELS_INFIX):
        raise ValueError(f"batch id {s!r} is invalid: must not end in {LABELS_INFIX!r} (reserved for label files)")
    return s


def parse_landing_filename(path: str | Path) -> tuple[str, Literal["batch", "labels"]]:
    """``(batch_id, kind)`` for a landing-folder file; ValueError for anything else (temp files,
    other extensions, invalid ids), so the sensor can skip it with the reason."""
    name = Path(path).name
    suffix = next((s for s in BATCH_SUFFIXES if name.endswith(s)), None)
    if suffix is None:
        raise ValueError(f"{name!r}: not a batch file (expected one of {BATCH_SUFFIXES})")
    stem = name[: -len(suffix)]
    if stem.endswith(LABELS_INFIX):
        return validate_batch_id(stem[: -len(LABELS_INFIX)]), "labels"
    return validate_batch_id(stem), "batch"


def batch_id_from_filename(path: str | Path) -> str:
    """The batch id of a batch or labels file (``x.csv``, ``x.parquet``, ``x.labels.csv`` -> ``x``)."""
    return parse_landing_filename(path)[0]


def labels_filename(batch_id: str, suffix: str = ".csv") -> str:
    """File name the delayed labels of ``batch_id`` must have."""
    if suffix not in BATCH_SUFFIXES:
        raise ValueError(f"labels suffix {suffix!r}: must be one of {BATCH_SUFFIXES}")
    return f"{validate_batch_id(batch_id)}{LABELS_INFIX}{suffix}"


# --------------------------------------------------------------------------- reading


def read_batch(
    project: Project, path: str | Path, *, content: bytes | None = None, limits: Ingestion | None = None
) -> pd.DataFrame:
    """Read a batch file as raw strings (as the project's reader reads its own files), indexed by ``row_id``.

    A missing non-label value in a Parquet batch becomes the spec's first missing token (when it has
    any), as the same value written to a CSV would be, so both formats reach the validation gate in
    the same raw form; nothing is coerced to a number here, so a bad value is reported by the gate,
    not hidden. A missing label is "not labelled yet". The columns are exactly the spec's (the label
    may be absent, ``row_id`` present: the batch schema is strict); ``content``/``limits`` as
    :func:`read_raw` takes them.
    """
    path = Path(path)
    if path.suffix not in BATCH_SUFFIXES:
        raise ValueError(f"{path.name}: unsupported batch format (expected {BATCH_SUFFIXES})")
    df = read_raw(project, path, content=content, limits=limits)
    if path.suffix == ".parquet" and project.missing_tokens:
        token = project.missing_tokens[0]
        for col in df.columns:
            if col not in (ROW_ID, project.label):
                df[col] = df[col].where(df[col].notna(), token)
    return _with_row_index(df, path.name)


def _with_row_index(df: pd.DataFrame, source: str) -> pd.DataFrame:
    if ROW_ID in df.columns:
        ids = pd.to_numeric(df[ROW_ID], errors="coerce")
        bad = ids.isna() | (ids < 0) | (ids % 1 != 0)
        if bad.any():
            raise ValueError(
                f"{source}: column {ROW_ID!r} must hold non-negative integers; bad rows "
                f"{np.flatnonzero(bad.to_numpy())[:5].tolist()}"
            )
        if ids.duplicated().any():
            dup = ids[ids.duplicated()].astype(int).unique()[:5].tolist()
            raise ValueError(f"{source}: column {ROW_ID!r} has duplicate ids, e.g. {dup}")
        df = df.drop(columns=[ROW_ID])
        df.index = pd.Index(ids.astype(np.int64).to_numpy(), name=ROW_ID)
    else:
        df.index = pd.RangeIndex(len(df), name=ROW_ID)
    return df


def read_labels(project: Project, path: str | Path, *, limits: Ingestion | None = None) -> pd.DataFrame:
    """Read ``<batch_id>.labels.csv|parquet`` -> frame ``row_id`` (int), ``<label column>`` (label string).

    Raises naming the rows if ids are missing/duplicated or labels are not the project's labels; a
    link or special file is refused unread, a file over ``ingestion.max_file_bytes`` too.
    """
    from mlgov_assets.core.monitoring.boundary import read_landing_file

    path = Path(path)
    label = project.label
    data = io.BytesIO(read_landing_file(path, limits if limits is not None else Ingestion()))
    if path.suffix == ".parquet":
        df = pd.read_parquet(data)
    else:
        df = pd.read_csv(data, dtype=str, keep_default_na=False, skipinitialspace=True)
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in (ROW_ID, label) if c not in df.columns]
    if missing:
        raise ValueError(f"{path.name}: labels file lacks column(s) {missing}; expected {ROW_ID},{label}")
    return validate_labels(project, df[[ROW_ID, label]], source=path.name)


def validate_labels(project: Project, labels: pd.DataFrame, *, source: str = "labels") -> pd.DataFrame:
    """Check a ``(row_id, <label column>)`` frame: unique non-negative int ids, labels among the project's."""
    label, allowed = project.label, project.labels
    ids = pd.to_numeric(labels[ROW_ID], errors="coerce")
    bad_id = ids.isna() | (ids < 0) | (ids % 1 != 0)
    if bad_id.any():
        raise ValueError(
            f"{source}: {ROW_ID} must be non-negative integers; bad rows "
            f"{np.flatnonzero(bad_id.to_numpy())[:5].tolist()}"
        )
    if ids.duplicated().any():
        raise ValueError(f"{source}: duplicate {ROW_ID}s, e.g. {ids[ids.duplicated()].astype(int).tolist()[:5]}")
    y = labels[label].astype(str).str.strip()
    suffix = project.spec.data.format.label_strip_suffix
    if suffix:
        y = y.str.removesuffix(suffix)
    bad = ~y.isin(allowed)
    if bad.any():
        raise ValueError(
            f"{source}: {label} must be one of {tuple(allowed)}; bad rows "
            f"{np.flatnonzero(bad.to_numpy())[:5].tolist()} (values {[quote(v) for v in y[bad].unique()[:5]]})"
        )
    return pd.DataFrame({ROW_ID: ids.astype(np.int64).to_numpy(), label: y.to_numpy()})


def align_labels(project: Project, batch_index: pd.Index, labels: pd.DataFrame) -> pd.Series:
    """1 where the label is the favourable value, else 0, aligned to the batch rows (NaN where no
    label arrived); raises for unknown ids."""
    lab = labels.set_index(ROW_ID)[project.label]
    unknown = lab.index.difference(batch_index)
    if len(unknown):
        raise ValueError(f"labels name {len(unknown)} row_id(s) not in the batch, e.g. {unknown[:5].tolist()}")
    return (lab == project.favourable).astype(float).reindex(batch_index).rename("y")


# --------------------------------------------------------------------------- simulation


#: Covariate shift strength: log-weight per unit of the summed percentile ranks of the spec's
#: ``monitoring.simulation.shift_columns`` (each centred on 0), so with two columns the most and
#: least favoured rows differ by a factor of e^3 ≈ 20 (bounded weights: no single extreme row
#: dominates); what correlates with those columns moves along, as in a real population change.
COVARIATE_STRENGTH = 3.0
#: Label shift: the favourable share of a label-drift batch.
LABEL_SHIFT_POSITIVE_SHARE = 0.5


def simulate_batch(
    project: Project,
    kind: SimKind,
    holdout: pd.DataFrame,
    rows: int,
    seed: int,
    with_labels: bool = False,
    *,
    covariate_strength: float = COVARIATE_STRENGTH,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """A realistic production batch derived from the raw holdout (as the project's reader reads it).

    * ``none``: bootstrap resample (no drift).
    * ``covariate``: resample with weights ``exp(s * sum(r(c)))`` over the spec's shift columns,
      ``r`` = percentile rank - 0.5 (``s`` = ``covariate_strength``). P(y | x) is untouched.
    * ``label``: resample so that :data:`LABEL_SHIFT_POSITIVE_SHARE` of rows have the favourable
      label (prior shift). Its labels are always returned: label drift is only visible with labels.
    * ``broken``: a resample that fails the raw schema on purpose (:func:`_break`).

    Returns ``(batch, labels)``: the batch in raw string form without the label column (labels are
    delayed) and indexed by ``row_id``; ``labels`` = ``(row_id, <label column>)`` or None.
    """
    if kind not in SIM_KINDS:
        raise ValueError(f"kind {kind!r}: must be one of {SIM_KINDS}")
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    missing = [c for c in project.columns if c not in holdout.columns]
    if missing:
        raise ValueError(f"holdout lacks column(s) {missing} (pass the raw holdout as the project reads it)")
    label = project.label
    rng = np.random.default_rng(seed)
    weights = _sampling_weights(project, kind, holdout, covariate_strength)
    idx = rng.choice(len(holdout), size=rows, replace=True, p=weights)
    sample = holdout.iloc[idx].reset_index(drop=True)
    sample.index.name = ROW_ID
    labels = None
    if with_labels or kind == "label":
        labels = pd.DataFrame({ROW_ID: np.arange(rows, dtype=np.int64), label: sample[label].to_numpy()})
    batch = sample.drop(columns=[label])
    if kind == "broken":
        batch = _break(project, batch, rng)
    return batch, labels


def _sampling_weights(project: Project, kind: str, holdout: pd.DataFrame, strength: float) -> np.ndarray | None:
    if kind == "covariate":
        shift = project.spec.monitoring.simulation.shift_columns
        if not shift:
            raise ValueError(
                f"project {project.name!r}: covariate simulation needs monitoring.simulation.shift_columns in its spec"
            )
        logw = strength * sum((_centred_rank(holdout[c]) for c in shift), np.zeros(len(holdout)))
        w = np.exp(logw - logw.max())
        weights: np.ndarray = w / w.sum()
        return weights
    if kind == "label":
        pos = (holdout[project.label] == project.favourable).to_numpy()
        if pos.all() or not pos.any():
            raise ValueError("holdout needs both labels to simulate label drift")
        w = np.where(pos, LABEL_SHIFT_POSITIVE_SHARE / pos.sum(), (1 - LABEL_SHIFT_POSITIVE_SHARE) / (~pos).sum())
        label_weights: np.ndarray = w / w.sum()
        return label_weights
    return None


def _centred_rank(raw: pd.Series) -> np.ndarray:
    """Percentile rank - 0.5: bounded in [-0.5, 0.5], so the tilt cannot be dominated by outliers.
    A categorical column is ranked by its category codes in the spec's order."""
    x = pd.to_numeric(raw, errors="coerce")
    if x.isna().any():
        x = pd.Series(pd.factorize(raw, sort=True)[0], index=raw.index)
    return x.rank(pct=True).to_numpy(dtype=np.float64) - 0.5


def _break(project: Project, batch: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Four schema failures: a column dropped (a model input allowed to be sparse where the spec
    has one, else another input or a protected column), a bounded number 60 above its maximum and
    20 below its minimum, an unknown category and a number written as a word. Columns come from
    the spec (shift columns first)."""
    cols = project.spec.columns
    shift = [c for c in project.spec.monitoring.simulation.shift_columns if cols[c].type != "categorical"]
    numeric = [*shift, *(c for c in project.model_numeric if c not in shift)]
    bounded = next((c for c in numeric if cols[c].min is not None and cols[c].max is not None), None)
    wordy = next((c for c in [*reversed(shift), *numeric] if c != bounded), None)
    category = next(iter(project.model_categorical), None)
    broken = {bounded, wordy, category}
    sparse = [c for c in project.model_categorical if cols[c].missing and c not in broken]
    others = [c for c in [*project.model_features, *project.protected] if c not in broken]
    dropped = next(iter([*sparse, *others]), None)
    out = batch.drop(columns=[dropped] if dropped else []).copy()
    n = len(out)
    picks = rng.choice(n, size=min(n, 4), replace=False)
    if bounded is not None:
        high, low = cols[bounded].max, cols[bounded].min
        assert high is not None and low is not None
        out.loc[picks[0], bounded] = _number(high + 60)
        out.loc[picks[min(1, n - 1)], bounded] = _number(low - 20)
    if category is not None:
        out.loc[picks[min(2, n - 1)], category] = "Astronaut"
    if wordy is not None:
        out.loc[picks[min(3, n - 1)], wordy] = "forty"
    return out


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# --------------------------------------------------------------------------- retraining run key


RUN_KEY_FIELDS = ("batch_ids", "reference_fingerprint", "champion_version")


def retrain_run_key(evidence: Mapping[str, Any]) -> str:
    """A stable Dagster ``run_key`` for a retraining request: ``retrain-`` + 24 hex of a SHA-256.

    Only the identity of the breach counts (sorted unique batch ids, the reference profile
    fingerprint, the champion version), not statistics or timestamps, so every sensor tick and
    daemon restart that sees the same breach produces the same key and Dagster launches it once.
    """
    missing = [k for k in RUN_KEY_FIELDS if not evidence.get(k)]
    if missing:
        raise ValueError(f"retrain evidence lacks {missing}; needs {list(RUN_KEY_FIELDS)}")
    ids = evidence["batch_ids"]
    ids = [ids] if isinstance(ids, str) else list(ids)
    canon = {
        "batch_ids": sorted({validate_batch_id(str(i)) for i in ids}),
        "reference_fingerprint": str(evidence["reference_fingerprint"]),
        "champion_version": str(evidence["champion_version"]),
    }
    digest = hashlib.sha256(json.dumps(canon, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"retrain-{digest[:24]}"


__all__ = [
    "BATCH_ID_PATTERN",
    "ROW_ID",
    "SIM_KINDS",
    "align_labels",
    "batch_id_from_filename",
    "labels_filename",
    "parse_landing_filename",
    "read_batch",
    "read_labels",
    "retrain_run_key",
    "simulate_batch",
    "validate_batch_id",
    "validate_labels",
]
