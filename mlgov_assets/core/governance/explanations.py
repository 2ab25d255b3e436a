"""SHAP explanations of a fitted sklearn pipeline, their additivity gate and stability measure.

A fitted ``Pipeline(preprocessing..., model)`` becomes per-row SHAP values on the *original*
features (encoded columns folded back), a global importance ranking, adverse-action reasons per
decision, the additivity check (the blocking sanity gate) and nDCG attribution stability (a
warning against the champion). ``shap.TreeExplainer`` is used only where it is exact and its raw
output is log-odds; anything else goes to a bounded ``PermutationExplainer`` on the model's raw
output. Heavy imports (shap, sklearn, matplotlib) are inside functions.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.errors import InputError
from mlgov_assets.core.integrity import atomic_write_bytes

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: A fitted sklearn Pipeline (or bare estimator); sklearn ships no type information.
FittedModel = Any


@dataclass(frozen=True)
class Explanation:
    """SHAP values on original features for the explained rows, plus derived views.

    ``shap_values`` is rows x original features (index = the explained rows' index in the input
    frame; ``positions`` = their integer positions). ``base_values`` is per row (constant for
    TreeExplainer). All values are in raw model output units (log-odds for classifiers).
    """

    shap_values: pd.DataFrame
    base_values: FloatArray
    positions: IntArray
    method: str
    method_note: str
    feature_map: dict[str, str]
    importance: pd.Series
    top_k: int

    def __len__(self) -> int:
        return len(self.shap_values)

    @property
    def base_value(self) -> float:
        """The (mean) base value: E[f(X)] under the explainer's reference distribution."""
        return float(np.mean(self.base_values))

    @property
    def raw_prediction(self) -> FloatArray:
        """base value + sum of SHAP values: what the model's raw output should be."""
        total: FloatArray = self.base_values + self.shap_values.to_numpy(dtype=float).sum(axis=1)
        return total


# -------------------- Folding encoded columns back to original features
def _is_str(obj: Any, value: str) -> bool:
    return isinstance(obj, str) and obj == value


def _output_origins(transformer: Any, input_names: list[str]) -> list[int]:
    """For each output column of a fitted transformer, the index of the input it came from.

    Handles ColumnTransformer (per sub-transformer, via ``output_indices_``), nested Pipelines,
    one-to-one transformers (as many outputs as inputs: encoders, scalers, imputers),
    single-input transformers, and many-to-one encoders whose output names start with
    ``"<input>_"`` (one-hot). Anything else raises: pass ``feature_map`` explicitly.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if transformer is None or _is_str(transformer, "passthrough"):
        return list(range(len(input_names)))
    if isinstance(transformer, Pipeline):
        origins = list(range(len(input_names)))
        names = list(input_names)
        for _, step in transformer.steps:
            if step is None or _is_str(step, "passthrough"):
                continue
            step_origins = _output_origins(step, names)
            origins = [origins[i] for i in step_origins]
            names = [str(n) for n in step.get_feature_names_out(names)]
        return origins
    if isinstance(transformer, ColumnTransformer):
        n_out = max((s.stop for s in transformer.output_indices_.values()), default=0)
        origins = [-1] * n_out
        for name, trans, _ in transformer.transformers_:
            sl = transformer.output_indices_[name]
            if _is_str(trans, "drop") or sl.stop == sl.start:
                continue
            idx = list(transformer._transformer_to_input_indices[name])
            cols = [input_names[i] for i in idx]
            sub = _output_origins(trans, cols)
            for j, o in enumerate(sub):
                origins[sl.start + j] = idx[o]
        if -1 in origins:
            raise ValueError(f"could not trace encoded column {origins.index(-1)} to an input feature")
        return origins
    out_names = [str(n) for n in transformer.get_feature_names_out(input_names)]
    if len(out_names) == len(input_names):
        return list(range(len(input_names)))
    if len(input_names) == 1:
        return [0] * len(out_names)
    origins = []
    for out in out_names:
        matches = [i for i, c in enumerate(input_names) if out == c or out.startswith(f"{c}_")]
        if not matches:
            raise ValueError(
                f"{type(transformer).__name__}: cannot map output {out!r} to one of {input_names}; "
                "pass feature_map= explicitly"
            )
        origins.append(max(matches, key=lambda i: len(input_names[i])))  # longest prefix wins
    return origins


def _split_pipeline(pipeline: FittedModel) -> tuple[Any | None, Any]:
    """(preprocessing or None, final estimator)."""
    if hasattr(pipeline, "steps"):
        pre = pipeline[:-1] if len(pipeline.steps) > 1 else None
        return pre, pipeline.steps[-1][1]
    return None, pipeline


def _encode(
    pipeline: FittedModel, X_raw: pd.DataFrame, feature_map: Mapping[str, str] | None
) -> tuple[FloatArray, list[str], list[str]]:
    """(encoded matrix, encoded column names, original feature per encoded column)."""
    pre, _ = _split_pipeline(pipeline)
    if pre is None:
        Z = X_raw.to_numpy(dtype=float)
        enc_names = [str(c) for c in X_raw.columns]
        origins = list(range(len(enc_names)))
        in_names = enc_names
    else:
        Z = pre.transform(X_raw)
        if hasattr(Z, "toarray"):
            Z = Z.toarray()
        Z = np.asarray(Z, dtype=float)
        in_names = [str(c) for c in getattr(pre, "feature_names_in_", X_raw.columns)]
        enc_names = [str(n) for n in pre.get_feature_names_out()]
    if feature_map:
        missing = [n for n in enc_names if n not in feature_map]
        if missing:
            raise ValueError(f"feature_map does not cover encoded columns {missing}")
        return Z, enc_names, [str(feature_map[n]) for n in enc_names]
    if pre is not None:
        origins = _output_origins(pre, in_names)
    return Z, enc_names, [in_names[i] for i in origins]


def model_raw_output(pipeline: FittedModel, X_raw: pd.DataFrame) -> FloatArray:
    """The model's raw output (``decision_function``, else log-odds of ``predict_proba``).

    This is the quantity SHAP values add up to; the additivity gate compares against it.
    """
    out: FloatArray
    if hasattr(pipeline, "decision_function"):
        out = np.asarray(pipeline.decision_function(X_raw), dtype=float)
    else:
        p = np.clip(np.asarray(pipeline.predict_proba(X_raw))[:, 1], 1e-15, 1 - 1e-15)
        out = np.log(p / (1 - p))
    if out.ndim != 1:
        raise ValueError("model_raw_output supports binary classifiers (1-D raw output) only")
    return out


# -------------------- Explaining
def _sample(n: int, max_rows: int | None, rng: np.random.Generator) -> IntArray:
    """Sorted positions of a seeded sample of at most ``max_rows`` of ``n`` rows (all if None)."""
    if max_rows is None or n <= max_rows:
        return np.arange(n, dtype=np.int64)
    return np.sort(rng.choice(n, size=max_rows, replace=False)).astype(np.int64)


def _check_request(X_raw: pd.DataFrame, top_k_reasons: int, method: str) -> None:
    if not isinstance(X_raw, pd.DataFrame):
        raise TypeError("X_raw must be a pandas DataFrame")
    if len(X_raw) == 0:
        raise InputError("explain_pipeline needs at least one row")
    if top_k_reasons < 1:
        raise ValueError("top_k_reasons must be >= 1")
    if method not in ("auto", "tree", "permutation"):
        raise ValueError(f"unknown explanation method {method!r}")


def explain_pipeline(
    pipeline: FittedModel,
    X_raw: pd.DataFrame,
    *,
    top_k_reasons: int = 3,
    max_rows: int | None = None,
    method: Literal["auto", "tree", "permutation"] = "auto",
    feature_map: Mapping[str, str] | None = None,
    random_state: int = 0,
    fallback_max_rows: int = 200,
    fallback_background: int = 100,
    fallback_max_evals: int | None = None,
    tree: tuple[Any | None, str] | None = None,
) -> Explanation:
    """SHAP values on original features for (a seeded sample of at most ``max_rows`` of) X_raw.

    ``method="auto"`` uses TreeExplainer (raw = log-odds, tree-path-dependent, exact) when the
    final estimator is a supported tree model without native categorical splits, otherwise the
    permutation fallback, bounded by ``fallback_max_rows`` rows, ``fallback_background``
    background rows and ``fallback_max_evals`` evaluations per row (default ``2 * (2M + 1)``).
    ``feature_map`` (encoded column -> original feature) overrides the automatic folding.
    ``tree``: ``tree_explainer(pipeline)`` built once by a caller explaining many requests.
    """
    _check_request(X_raw, top_k_reasons, method)
    rng = np.random.default_rng(random_state)
    positions = _sample(len(X_raw), max_rows, rng)
    _, est = _split_pipeline(pipeline)
    if method not in ("auto", "tree"):
        tree = (None, "permutation requested")
    tree, note = tree if tree is not None else _tree_explainer(est)
    if tree is None and method == "tree":
        raise ValueError(f"TreeExplainer refused for {type(est).__name__}: {note}")
    if tree is not None:
        Z, enc_names, original = _encode(pipeline, X_raw.iloc[positions], feature_map)
        values = np.asarray(tree.shap_values(Z, check_additivity=False), dtype=float)
        base = np.full(len(positions), float(np.ravel(tree.expected_value)[0]))
        used, used_note = "tree", "shap.TreeExplainer, model_output='raw', tree_path_dependent (exact)"
    else:
        if len(positions) > fallback_max_rows:
            positions = np.sort(rng.choice(positions, size=fallback_max_rows, replace=False))
        Z_all, enc_names, original = _encode(pipeline, X_raw, feature_map)
        bounds = (fallback_background, fallback_max_evals)
        values, base, used_note = _permutation_values(est, Z_all, positions, rng, random_state, *bounds)
        used, used_note = "permutation", f"{used_note}; reason: {note}"
    if values.ndim != 2 or values.shape[1] != len(enc_names):
        raise ValueError(
            f"explainer returned shape {values.shape}, expected (n, {len(enc_names)}) (binary classifiers only)"
        )
    folded = _fold(values, original)
    folded.index = X_raw.index[positions]
    return Explanation(
        shap_values=folded,
        base_values=base,
        positions=positions,
        method=used,
        method_note=used_note,
        feature_map=dict(zip(enc_names, original, strict=True)),
        importance=folded.abs().mean(axis=0).sort_values(ascending=False, kind="mergesort"),
        top_k=int(top_k_reasons),
    )


def tree_explainer(pipeline: FittedModel) -> tuple[Any | None, str]:
    """The TreeExplainer of ``pipeline``'s final estimator, or (None, why not): what
    :func:`explain_pipeline` builds per call, for a caller that keeps it (``tree=``)."""
    return _tree_explainer(_split_pipeline(pipeline)[1])


def _tree_explainer(est: Any) -> tuple[Any | None, str]:
    """A TreeExplainer for ``est`` or (None, why not)."""
    cats = getattr(est, "is_categorical_", None)
    if cats is not None and np.any(cats):
        return None, ("HGB with native categorical splits: TreeExplainer is silently wrong on these, so it is not used")
    import shap

    try:
        tree = shap.TreeExplainer(est, model_output="raw", feature_perturbation="tree_path_dependent")
    except Exception as exc:  # shap raises several types for "model not supported"
        return None, f"TreeExplainer does not support {type(est).__name__}: {exc}"
    units = getattr(tree.model, "tree_output", None)
    if units != "log_odds":
        # e.g. RandomForest: raw output is a probability; the gate and reasons work in log-odds.
        return None, f"TreeExplainer raw output of {type(est).__name__} is {units!r}, not log-odds"
    return tree, ""


def _raw_fn(est: Any) -> Callable[[FloatArray], FloatArray]:
    """Raw-output function of the final estimator over the encoded matrix (log-odds)."""
    names = getattr(est, "feature_names_in_", None)

    def frame(Z: FloatArray) -> Any:  # shap passes arrays; an estimator fitted on a frame wants its names
        return Z if names is None else pd.DataFrame(Z, columns=names)

    def raw(Z: FloatArray) -> FloatArray:
        if hasattr(est, "decision_function"):
            return np.asarray(est.decision_function(frame(Z)), dtype=float)
        p = np.clip(np.asarray(est.predict_proba(frame(Z)), dtype=float)[:, 1], 1e-15, 1 - 1e-15)
        logit: FloatArray = np.log(p / (1 - p))
        return logit

    return raw


def _permutation_values(
    est: Any,
    Z_all: FloatArray,
    positions: IntArray,
    rng: np.random.Generator,
    random_state: int,
    n_background: int,
    max_evals: int | None,
) -> tuple[FloatArray, FloatArray, str]:
    """(SHAP values, per-row base values, note) of the bounded permutation fallback."""
    import shap

    bg_idx = rng.choice(len(Z_all), size=min(n_background, len(Z_all)), replace=False)
    masker = shap.maskers.Independent(Z_all[bg_idx], max_samples=len(bg_idx))
    m = Z_all.shape[1]
    evals = max_evals if max_evals is not None else 2 * (2 * m + 1)
    explainer = shap.PermutationExplainer(_raw_fn(est), masker, seed=random_state)
    res = explainer(Z_all[positions], max_evals=evals, silent=True)
    note = (
        f"shap.PermutationExplainer (bounded: {len(positions)} rows, background {len(bg_idx)}, "
        f"max_evals {evals} per row)"
    )
    return np.asarray(res.values, dtype=float), np.asarray(res.base_values, dtype=float).ravel(), note


def _fold(values: FloatArray, original: list[str]) -> pd.DataFrame:
    """Sum encoded-column SHAP values into their original features (order of first appearance)."""
    feats = list(dict.fromkeys(original))
    col = {f: i for i, f in enumerate(feats)}
    out = np.zeros((values.shape[0], len(feats)))
    for j, f in enumerate(original):
        out[:, col[f]] += values[:, j]
    return pd.DataFrame(out, columns=feats)


# -------------------- Local reasons (adverse action style)
def _top(
    values: FloatArray, names: npt.NDArray[np.object_], k: int, negative: bool
) -> tuple[npt.NDArray[np.object_], FloatArray]:
    """Per row, the k most negative (or positive) contributions; None/NaN where fewer exist."""
    v = values if negative else -values
    order = np.argsort(v, axis=1, kind="stable")[:, :k]
    picked = np.take_along_axis(values, order, axis=1)
    valid = picked < 0 if negative else picked > 0
    feat = names[order].copy()
    feat[~valid] = None
    return feat, np.where(valid, picked, np.nan)


def local_reasons_frame(
    explanation: Explanation,
    ids: Sequence[Any] | pd.Series | npt.NDArray[Any] | None = None,
    *,
    decision_threshold_logodds: float = 0.0,
) -> pd.DataFrame:
    """One row per explained decision, Parquet-ready.

    Columns: ``row_id``, ``raw_score`` (log-odds), ``score`` (probability), ``decision``
    (``raw_score > decision_threshold_logodds``; 0.0 is sklearn's ``predict`` for binary
    log-odds models), ``reason_1..k`` = features that pushed the score DOWN the most
    (adverse-action reasons) with ``reason_i_shap``, and ``positive_1..k`` the ones that pushed
    it up most, with ``positive_i_shap``. Missing reasons (fewer than k features of that sign)
    are None/NaN.
    """
    n, k = len(explanation), explanation.top_k
    if ids is None:
        row_id = np.asarray(explanation.shap_values.index)
    else:
        row_id = np.asarray(ids)
        if row_id.shape[0] != n:
            raise ValueError(f"ids has {row_id.shape[0]} entries, explanation has {n} rows")
    values = explanation.shap_values.to_numpy(dtype=float)
    names = np.asarray(explanation.shap_values.columns, dtype=object)
    raw = explanation.raw_prediction
    out: dict[str, Any] = {
        "row_id": row_id,
        "raw_score": raw,
        "score": 1.0 / (1.0 + np.exp(-raw)),
        "decision": (raw > decision_threshold_logodds).astype(np.int8),
    }
    neg_f, neg_v = _top(values, names, k, negative=True)
    pos_f, pos_v = _top(values, names, k, negative=False)
    for i in range(min(k, values.shape[1])):
        out[f"reason_{i + 1}"] = neg_f[:, i]
        out[f"reason_{i + 1}_shap"] = neg_v[:, i]
    for i in range(min(k, values.shape[1])):
        out[f"positive_{i + 1}"] = pos_f[:, i]
        out[f"positive_{i + 1}_shap"] = pos_v[:, i]
    return pd.DataFrame(out)


# -------------------- Sanity gate and stability
class AdditivityResult(BaseModel):
    """The additivity check's verdict and error statistics (NaN errors count as misses)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    passed: bool
    tolerance: float
    n_rows: int
    max_abs_error: float
    mean_abs_error: float
    n_over_tolerance: int
    rows_over_tolerance: list[str]


def check_additivity(explanation: Explanation, raw_output: npt.ArrayLike, tolerance: float) -> AdditivityResult:
    """Does base value + sum(SHAP) equal the model's raw output on every explained row?

    ``raw_output`` must be the model's raw output on exactly the explained rows, in order
    (e.g. ``model_raw_output(pipeline, X.iloc[explanation.positions])``). NaN counts as a miss.
    """
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance}")
    raw = np.asarray(raw_output, dtype=float).ravel()
    if raw.size != len(explanation):
        raise ValueError(
            f"raw_output has {raw.size} rows, explanation has {len(explanation)}; "
            "compute it on X.iloc[explanation.positions]"
        )
    err = np.abs(explanation.raw_prediction - raw)
    bad = ~(err <= tolerance)
    ids = explanation.shap_values.index[bad]
    defined = not np.isnan(err).all()
    return AdditivityResult(
        passed=bool(not bad.any()),
        tolerance=float(tolerance),
        n_rows=int(raw.size),
        max_abs_error=float(np.nanmax(err)) if defined else float("nan"),
        mean_abs_error=float(np.nanmean(err)) if defined else float("nan"),
        n_over_tolerance=int(bad.sum()),
        rows_over_tolerance=[str(i) for i in ids[:20]],
    )


def ndcg_ranking(
    current_importance: Mapping[str, float] | pd.Series,
    reference_importance: Mapping[str, float] | pd.Series,
    k: int | None = None,
) -> float:
    """Attribution-drift nDCG (SageMaker Clarify's definition); 1.0 = same ranking.

    Relevance = the reference importance ``F``; ``DCG = sum_{i<=k} F(b_i)/log2(i+1)`` over the
    current ranking ``b``, divided by the same sum over the reference ranking. ``k=None``: all
    features. A feature missing from one side has importance 0 there; ties break by name.
    """
    cur, ref = pd.Series(current_importance, dtype=float), pd.Series(reference_importance, dtype=float)
    for name, s in (("current", cur), ("reference", ref)):
        if s.isna().any() or (s < 0).any():
            raise ValueError(
                f"{name} importance must be non-negative and finite (bad: {s[s.isna() | (s < 0)].index.tolist()})"
            )
    feats = sorted(set(cur.index) | set(ref.index))
    cur, ref = cur.reindex(feats, fill_value=0.0), ref.reindex(feats, fill_value=0.0)
    if k is not None and k < 1:
        raise ValueError("k must be >= 1 or None")
    kk = len(feats) if k is None else min(k, len(feats))

    def order(s: pd.Series) -> list[str]:
        return sorted(feats, key=lambda f: (-s[f], f))

    disc = 1.0 / np.log2(np.arange(2, kk + 2))
    dcg = float(np.sum(ref[order(cur)[:kk]].to_numpy() * disc))
    idcg = float(np.sum(ref[order(ref)[:kk]].to_numpy() * disc))
    if idcg <= 0:
        raise ValueError("reference importance is all zero: nDCG is undefined")
    return dcg / idcg


# -------------------- Plot
def plot_importance_png(
    importance: Mapping[str, float] | pd.Series,
    path: str | Path | None = None,
    *,
    max_features: int = 15,
    title: str = "Global importance (mean |SHAP|, log-odds)",
    dpi: int = 80,
) -> bytes:
    """A small horizontal bar chart (PNG bytes, ~10-30 KB) for markdown metadata / MLflow.

    Uses the Agg canvas directly (no pyplot global state). If ``path`` is given the PNG is
    also written there atomically.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    s = pd.Series(importance, dtype=float).sort_values(ascending=False, kind="mergesort")
    if s.empty:
        raise ValueError("importance is empty")
    s = s.iloc[:max_features][::-1]
    fig = Figure(figsize=(5.0, 0.28 * len(s) + 0.9), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.barh([str(i) for i in s.index], s.to_numpy(), color="#3b75af")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    data = buf.getvalue()
    if path is not None:
        atomic_write_bytes(Path(path), data)
    return data
