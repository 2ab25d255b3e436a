"""The reference profile: everything a drift verdict needs from the reference, computed once per
reference version and cached by its content fingerprint.

Reference bins (PSI) are quantile edges of the reference, except that any value holding >= 1/bins
of it (an *atom*: 0 for capital gain/loss, 40 for hours per week) gets a bin of its own, so
zero-inflated columns keep their bins. Duplicate edges are dropped; bins are right-closed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlgov_assets.core.integrity import atomic_write_bytes
from mlgov_assets.core.monitoring import drift_stats as ds

FORMAT_VERSION = 1
PREDICTION_COLUMN = "prediction"

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class NumericMeta(BaseModel):
    """The JSON side of a :class:`NumericProfile` (its sorted values go to the npz)."""

    model_config = _FROZEN

    kind: Literal["numeric"] = "numeric"
    name: str
    edges: list[float]
    bin_counts: list[int]
    atoms: list[float]
    std: float
    n: int
    n_missing: int


class CategoricalMeta(BaseModel):
    """The JSON side of a :class:`CategoricalProfile`."""

    model_config = _FROZEN

    kind: Literal["categorical"] = "categorical"
    name: str
    categories: list[str]
    counts: list[int]
    n: int
    n_missing: int


ColumnMeta = Annotated[NumericMeta | CategoricalMeta, Field(discriminator="kind")]


class ProfileMeta(BaseModel):
    """Everything of a :class:`ReferenceProfile` but the raw values: what its fingerprint hashes
    (with the arrays) and its JSON file holds."""

    model_config = _FROZEN

    format_version: int
    bins: int
    n_rows: int
    numeric: list[NumericMeta]
    categorical: list[CategoricalMeta]
    prediction: ColumnMeta | None


class ProfileSummary(ProfileMeta):
    """The profile's summary with its content fingerprint (for asset metadata)."""

    fingerprint: str


class ProfileDocument(ProfileSummary):
    """The profile's JSON file: the summary and the sha256 of its npz sibling."""

    npz_sha256: str


@dataclass
class NumericProfile:
    """Reference summary of one numeric column; ``sorted_values`` make KS/Wasserstein exact."""

    name: str
    edges: np.ndarray  # interior, right-closed bin edges; len(edges) + 1 bins
    bin_counts: np.ndarray  # reference count per bin (int64)
    atoms: list[float]  # values given a bin of their own
    sorted_values: np.ndarray  # non-missing reference values, ascending (float64)
    std: float  # population std (ddof=0), as Evidently norms by np.std
    n: int
    n_missing: int

    def __post_init__(self) -> None:
        self._unique: np.ndarray | None = None

    @property
    def unique_values(self) -> np.ndarray:
        """Distinct reference values (derived once, not stored)."""
        if self._unique is None:
            self._unique = ds.sorted_unique(self.sorted_values)
        return self._unique

    def meta(self) -> NumericMeta:
        return NumericMeta(
            name=self.name,
            edges=[float(e) for e in self.edges],
            bin_counts=[int(c) for c in self.bin_counts],
            atoms=[float(a) for a in self.atoms],
            std=float(self.std),
            n=int(self.n),
            n_missing=int(self.n_missing),
        )


@dataclass
class CategoricalProfile:
    """Reference summary of one categorical column: category counts (values compared as str)."""

    name: str
    categories: list[str]
    counts: np.ndarray  # int64, aligned with categories
    n: int
    n_missing: int

    def meta(self) -> CategoricalMeta:
        return CategoricalMeta(
            name=self.name,
            categories=list(self.categories),
            counts=[int(c) for c in self.counts],
            n=int(self.n),
            n_missing=int(self.n_missing),
        )


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass
class ReferenceProfile:
    """Everything a drift verdict needs from the reference, computed once per reference version.

    Stored as ``<name>.json`` (human-readable summary) + ``<name>.npz`` (sorted reference values;
    loaded with ``allow_pickle=False``). ``fingerprint`` is the SHA-256 of the content (not of the
    files), so a save/load round trip keeps it and the Dagster layer can key its cache on it.
    """

    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    prediction: ColumnProfile | None
    bins: int
    n_rows: int
    fingerprint: str = ""

    @classmethod
    def build(
        cls,
        df: pd.DataFrame,
        numeric: list[str],
        categorical: list[str],
        *,
        bins: int = 10,
        prediction: np.ndarray | None = None,
    ) -> ReferenceProfile:
        """Summarise the reference data (and optionally the champion's scores on it).

        ``bins`` is the policy's ``drift.bins`` (policy default 10). Numeric prediction arrays
        (scores, 0/1 labels) are profiled as numeric, string labels as categorical.
        """
        if bins < 2:
            raise ValueError(f"bins must be >= 2, got {bins}")
        ds.require_columns(df, list(numeric) + list(categorical), "reference")
        overlap = sorted(set(numeric) & set(categorical))
        if overlap:
            raise ValueError(f"columns {overlap} are listed as both numeric and categorical")
        if len(df) == 0:
            raise ValueError("reference frame is empty")
        num = {c: _numeric_profile(c, df[c], bins) for c in numeric}
        cat = {c: _categorical_profile(c, df[c]) for c in categorical}
        pred = None if prediction is None else _prediction_profile(prediction, bins)
        profile = cls(numeric=num, categorical=cat, prediction=pred, bins=bins, n_rows=len(df))
        profile.fingerprint = profile._content_fingerprint()
        return profile

    @property
    def columns(self) -> list[str]:
        return list(self.numeric) + list(self.categorical)

    def with_prediction(self, prediction: np.ndarray) -> ReferenceProfile:
        """A copy with the reference-side prediction profile (e.g. the champion's scores on the
        reference rows) attached and the fingerprint recomputed; the data side stays shared."""
        pred = _prediction_profile(prediction, self.bins)
        if pred.n + pred.n_missing != self.n_rows:
            raise ValueError(
                f"prediction has {pred.n + pred.n_missing} values but the reference has {self.n_rows} rows"
            )
        profile = ReferenceProfile(
            numeric=self.numeric, categorical=self.categorical, prediction=pred, bins=self.bins, n_rows=self.n_rows
        )
        profile.fingerprint = profile._content_fingerprint()
        return profile

    @property
    def data_fingerprint(self) -> str:
        """Fingerprint of the data side only (what :meth:`build` gives without a prediction), so a
        profile with predictions attached still names the same reference data."""
        if self.prediction is None:
            return self.fingerprint
        bare = ReferenceProfile(
            numeric=self.numeric, categorical=self.categorical, prediction=None, bins=self.bins, n_rows=self.n_rows
        )
        return bare._content_fingerprint()

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"num_{i}": p.sorted_values for i, p in enumerate(self.numeric.values())}
        if isinstance(self.prediction, NumericProfile):
            arrays["prediction"] = self.prediction.sorted_values
        return arrays

    def _meta(self) -> ProfileMeta:
        return ProfileMeta(
            format_version=FORMAT_VERSION,
            bins=int(self.bins),
            n_rows=int(self.n_rows),
            numeric=[p.meta() for p in self.numeric.values()],
            categorical=[p.meta() for p in self.categorical.values()],
            prediction=None if self.prediction is None else self.prediction.meta(),
        )

    def _content_fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps(self._meta().model_dump(), sort_keys=True, separators=(",", ":")).encode())
        for key, arr in sorted(self._arrays().items()):
            a = np.ascontiguousarray(arr, dtype="<f8")
            h.update(f"|{key}|{a.shape[0]}|".encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def summary(self) -> ProfileSummary:
        """The summary (no raw values) for asset metadata."""
        return ProfileSummary(**dict(self._meta()), fingerprint=self.fingerprint)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``path`` (must end in ``.json``) and its ``.npz`` sibling, each atomically.

        The npz is written first and its SHA-256 is recorded in the JSON, so a crash between the two
        replaces leaves a pair that :meth:`load` rejects instead of silently mixing versions.
        """
        json_path = Path(path)
        if json_path.suffix != ".json":
            raise ValueError(f"profile path {json_path} must end in .json (arrays go to a .npz sibling)")
        json_path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        arrays: dict[str, Any] = {k: np.ascontiguousarray(v, dtype="<f8") for k, v in self._arrays().items()}
        np.savez(buf, **arrays)
        npz_bytes = buf.getvalue()
        atomic_write_bytes(json_path.with_suffix(".npz"), npz_bytes)
        doc = ProfileDocument(
            **dict(self._meta()), fingerprint=self.fingerprint, npz_sha256=hashlib.sha256(npz_bytes).hexdigest()
        )
        atomic_write_bytes(json_path, (json.dumps(doc.model_dump(), indent=1, sort_keys=True) + "\n").encode())
        return json_path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReferenceProfile:
        """Read a profile written by :meth:`save`; verifies the npz hash and the content fingerprint."""
        json_path = Path(path)
        raw = json.loads(json_path.read_text(encoding="utf-8"))
        if raw.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{json_path}: format_version {raw.get('format_version')!r}, expected {FORMAT_VERSION}")
        doc = ProfileDocument.model_validate(raw)
        npz_bytes = json_path.with_suffix(".npz").read_bytes()
        if hashlib.sha256(npz_bytes).hexdigest() != doc.npz_sha256:
            raise ValueError(
                f"{json_path.with_suffix('.npz')}: sha256 does not match {json_path} (torn or edited pair)"
            )
        with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        num = {m.name: _numeric_from_meta(m, arrays[f"num_{i}"]) for i, m in enumerate(doc.numeric)}
        cat = {m.name: _categorical_from_meta(m) for m in doc.categorical}
        pm = doc.prediction
        pred: ColumnProfile | None = None
        if isinstance(pm, NumericMeta):
            pred = _numeric_from_meta(pm, arrays["prediction"])
        elif pm is not None:
            pred = _categorical_from_meta(pm)
        profile = cls(numeric=num, categorical=cat, prediction=pred, bins=doc.bins, n_rows=doc.n_rows)
        profile.fingerprint = profile._content_fingerprint()
        if profile.fingerprint != doc.fingerprint:
            raise ValueError(
                f"{json_path}: content fingerprint {profile.fingerprint[:12]} does not match the "
                f"recorded {doc.fingerprint[:12]}"
            )
        return profile


def _numeric_from_meta(m: NumericMeta, values: np.ndarray) -> NumericProfile:
    return NumericProfile(
        name=m.name,
        edges=np.asarray(m.edges, dtype=np.float64),
        bin_counts=np.asarray(m.bin_counts, dtype=np.int64),
        atoms=list(m.atoms),
        sorted_values=np.asarray(values, dtype=np.float64),
        std=m.std,
        n=m.n,
        n_missing=m.n_missing,
    )


def _categorical_from_meta(m: CategoricalMeta) -> CategoricalProfile:
    return CategoricalProfile(
        name=m.name,
        categories=list(m.categories),
        counts=np.asarray(m.counts, dtype=np.int64),
        n=m.n,
        n_missing=m.n_missing,
    )


def _numeric_profile(name: str, series: pd.Series, bins: int) -> NumericProfile:
    values, n_missing = ds.numeric_values(series, name)
    if values.size == 0:
        raise ValueError(f"reference column {name!r} has no non-missing values")
    ref = np.sort(values)
    edges, atoms = _bin_edges(ref, bins)
    return NumericProfile(
        name=name,
        edges=edges,
        bin_counts=ds.bin_counts(ref, edges),
        atoms=atoms,
        sorted_values=ref,
        std=float(np.std(ref)),
        n=int(ref.size),
        n_missing=n_missing,
    )


def _categorical_profile(name: str, series: pd.Series) -> CategoricalProfile:
    counts, n_missing = ds.category_counts(series)
    if not counts:
        raise ValueError(f"reference column {name!r} has no non-missing values")
    cats = sorted(counts)
    return CategoricalProfile(
        name=name,
        categories=cats,
        counts=np.array([counts[c] for c in cats], dtype=np.int64),
        n=int(sum(counts.values())),
        n_missing=n_missing,
    )


def _prediction_profile(prediction: np.ndarray, bins: int) -> ColumnProfile:
    s = prediction_series(prediction)
    if pd.api.types.is_numeric_dtype(s):
        return _numeric_profile(PREDICTION_COLUMN, s, bins)
    return _categorical_profile(PREDICTION_COLUMN, s)


def prediction_series(prediction: Any) -> pd.Series:
    arr = np.asarray(prediction)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"prediction must be a non-empty 1-D array, got shape {arr.shape}")
    return pd.Series(arr, name=PREDICTION_COLUMN)


def _bin_edges(ref_sorted: np.ndarray, bins: int) -> tuple[np.ndarray, list[float]]:
    """Quantile edges with a bin of its own for every atom (value holding >= 1/bins of the data)."""
    uniq, counts = ds.sorted_unique_counts(ref_sorted)
    atoms = uniq[counts / ref_sorted.size >= 1.0 / bins]
    rest = ref_sorted[~np.isin(ref_sorted, atoms)] if atoms.size else ref_sorted
    k = max(bins - atoms.size, 1)
    cuts = np.quantile(rest, np.arange(1, k) / k) if rest.size and k > 1 else np.empty(0)
    edges = np.unique(np.concatenate([cuts, atoms, np.nextafter(atoms, -np.inf)]))
    return edges.astype(np.float64), [float(a) for a in atoms]
