"""Bias mitigation with Fairlearn, packaged as a servable, picklable model (pure core).

Why: when the policy enables mitigation, a second challenger is built whose decisions satisfy a
fairness constraint, and it must go through the same gates and be served like any other model.

Two methods (the policy chooses):

* ``"threshold"`` (default, fast: ~0.6 s on Adult): Fairlearn ``ThresholdOptimizer``
  post-processing with ``prefit=True`` on the already fitted base pipeline. The base pipeline's
  score is unchanged; each sensitive group gets its own (possibly randomised) threshold.
* ``"reductions"`` (documented, slow: it refits the base pipeline ``max_iter`` times, each with
  new sample weights): Fairlearn ``ExponentiatedGradient``. It calls
  ``estimator.fit(X, y, sample_weight=w)``, which a plain sklearn ``Pipeline`` does not accept,
  so we use Fairlearn's ``sample_weight_name`` hook to route the weights to the final step
  (``"<last step>__sample_weight"``) instead of wrapping the pipeline in another estimator.

Serving (:class:`MitigatedModel`) takes the raw input frame *including* the sensitive
column(s): it reads those by name and feeds the base pipeline only the columns it was fitted
on. Randomised decisions are drawn from a per-row hash of the model-relevant input values mixed
with ``random_state``, so a decision is reproducible for the same applicant whatever batch it
arrives in (Fairlearn's own ``predict(random_state=)`` draws by batch position instead).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

METHODS = ("threshold", "reductions")
#: ThresholdOptimizer constraint names we accept (Fairlearn's own vocabulary).
THRESHOLD_CONSTRAINTS = (
    "demographic_parity",
    "equalized_odds",
    "true_positive_rate_parity",
    "false_positive_rate_parity",
    "false_negative_rate_parity",
    "true_negative_rate_parity",
)
THRESHOLD_OBJECTIVES = ("accuracy_score", "balanced_accuracy_score")
#: Reductions moments by the same names as the post-processing constraints.
REDUCTION_CONSTRAINTS = (
    "demographic_parity",
    "equalized_odds",
    "true_positive_rate_parity",
    "false_positive_rate_parity",
)

#: The sensitive column (one attribute) or columns (intersections) a mitigator conditions on.
Sensitive = pd.Series | pd.DataFrame

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _uniform_from_rows(frame: pd.DataFrame, random_state: int) -> np.ndarray:
    """A reproducible U[0,1) draw per row from the row's values and the seed (splitmix64)."""
    h = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = h ^ (np.uint64(random_state & 0xFFFFFFFFFFFFFFFF) * _GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


class _Scored:
    """An estimator that replays scores already computed for the same rows (see ``score_and_decide``)."""

    def __init__(self, proba: np.ndarray) -> None:
        self._proba = proba

    def predict_proba(self, X: Any) -> np.ndarray:
        if len(X) != len(self._proba):
            raise ValueError(f"replayed scores are for {len(self._proba)} rows, asked for {len(X)}")
        return self._proba


class MitigatedModel:
    """A fairness-mitigated binary classifier over raw input frames.

    ``predict(X)`` returns 0/1 decisions; ``predict_proba(X)`` returns an ``(n, 2)`` array of
    the *decision* probabilities ``[P(0), P(1)]`` (0/1 for most rows, fractional only where the
    mitigator randomises between two thresholds); ``base_score(X)`` is the unmitigated
    pipeline's positive-class probability. ``base_pipeline`` is what SHAP explains.
    """

    def __init__(
        self,
        *,
        base_pipeline: Any,
        mitigator: Any,
        method: str,
        sensitive_features: list[str],
        base_features: list[str],
        known_groups: list[tuple[str, ...]],
        random_state: int,
        params: dict[str, Any],
    ) -> None:
        self.base_pipeline = base_pipeline
        self.mitigator = mitigator
        self.method = method
        self.sensitive_features = list(sensitive_features)
        self.base_features = list(base_features)
        self.known_groups = [tuple(g) for g in known_groups]
        self.random_state = int(random_state)
        self.params = dict(params)

    # -- input handling ---------------------------------------------------------------------
    def _split(self, X: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | pd.Series]:
        if not isinstance(X, pd.DataFrame):
            raise TypeError("MitigatedModel expects a pandas DataFrame with named columns")
        missing = [c for c in self.sensitive_features + self.base_features if c not in X.columns]
        if missing:
            raise ValueError(f"MitigatedModel input is missing columns {missing}")
        sens = X[self.sensitive_features].astype(str)
        if sens.isna().any().any():
            raise ValueError(f"sensitive columns {self.sensitive_features} contain missing values")
        seen = set(map(tuple, sens.to_numpy().tolist()))
        unknown = sorted(seen - set(self.known_groups))
        if unknown:
            # Fairlearn would silently give unseen groups P(1) = 0; refuse instead.
            raise ValueError(
                f"sensitive values {unknown} in {self.sensitive_features} were not seen "
                f"when the mitigation was fitted (known: {self.known_groups})"
            )
        s = sens.iloc[:, 0] if len(self.sensitive_features) == 1 else sens
        return X[self.base_features], s

    # -- scores and decisions ---------------------------------------------------------------
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """``[P(decision=0), P(decision=1)]`` per row."""
        Xb, s = self._split(X)
        if self.method == "threshold":
            # Fairlearn 0.15 exposes the decision pmf only as _pmf_predict (pinned version).
            pmf = self.mitigator._pmf_predict(Xb, sensitive_features=s)
        else:
            pmf = self.mitigator._pmf_predict(Xb)
        return np.asarray(pmf, dtype=float)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """0/1 decisions; rows with a fractional ``P(1)`` use a per-row, seed-mixed hash draw."""
        p1 = self.predict_proba(X)[:, 1]
        u = _uniform_from_rows(X[self.base_features + self.sensitive_features], self.random_state)
        return (u < p1).astype(int)

    def base_score(self, X: pd.DataFrame) -> np.ndarray:
        """The unmitigated pipeline's positive-class probability (what SHAP explains)."""
        Xb, _ = self._split(X)
        return np.asarray(self.base_pipeline.predict_proba(Xb)[:, 1], dtype=float)

    def score_and_decide(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(base_score(X), predict(X))`` with the base pipeline run once (serving's hot path).

        Threshold post-processing: Fairlearn's own ``_pmf_predict`` on a shallow copy of the fitted
        thresholder whose estimator replays the scores already computed, and whose groups are the
        ones present in ``X`` (each row only ever reads its own group's interpolation). Anything
        else (reductions, a thresholder not on this pipeline's ``predict_proba``) takes both calls.
        """
        thresholder = getattr(self.mitigator, "interpolated_thresholder_", None)
        if (
            self.method != "threshold"
            or thresholder is None
            or thresholder.estimator_ is not self.base_pipeline
            or thresholder._predict_method not in ("auto", "predict_proba")
        ):
            return self.base_score(X), self.predict(X)
        from fairlearn.utils._input_validation import _validate_and_reformat_input

        Xb, s = self._split(X)
        proba = np.asarray(self.base_pipeline.predict_proba(Xb), dtype=float)
        replay = copy.copy(thresholder)
        replay.estimator_ = _Scored(proba)
        replay._predict_method = "predict_proba"
        groups = _validate_and_reformat_input(
            Xb, y=proba[:, 1], sensitive_features=s, expect_y=True, enforce_binary_labels=False
        )[2]
        # the rows Fairlearn assigns group ``a`` are ``groups == a``: a group with none is a no-op
        replay.interpolation_dict = {a: v for a, v in thresholder.interpolation_dict.items() if (groups == a).any()}
        p1 = np.asarray(replay._pmf_predict(Xb, sensitive_features=s), dtype=float)[:, 1]
        u = _uniform_from_rows(X[self.base_features + self.sensitive_features], self.random_state)
        return proba[:, 1], (u < p1).astype(int)

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description (method, constraint, per-group thresholds)."""
        out: dict[str, Any] = {
            "method": self.method,
            "sensitive_features": self.sensitive_features,
            "base_features": self.base_features,
            "random_state": self.random_state,
            "known_groups": [list(g) for g in self.known_groups],
            **self.params,
        }
        if self.method == "threshold":
            out["thresholds"] = _describe_thresholds(self.mitigator)
        else:
            out["mixture_weights"] = [float(w) for w in np.asarray(self.mitigator.weights_)]
        return out


def _describe_thresholds(to: Any) -> dict[str, Any]:
    """Per-group interpolation of a fitted ThresholdOptimizer, as plain data."""
    out = {}
    for group, b in to.interpolated_thresholder_.interpolation_dict.items():
        rec = {"p0": float(b.p0), "operation0": repr(b.operation0), "p1": float(b.p1), "operation1": repr(b.operation1)}
        if "p_ignore" in b:
            rec["p_ignore"] = float(b.p_ignore)
            rec["prediction_constant"] = float(b.prediction_constant)
        out[str(group)] = rec
    return out


def _validate_fit_inputs(X: pd.DataFrame, y: ArrayLike, sensitive_features: Sequence[str]) -> np.ndarray:
    if not isinstance(X, pd.DataFrame):
        raise TypeError("X_train must be a pandas DataFrame")
    if not sensitive_features:
        raise ValueError("sensitive_features must name at least one column")
    missing = [c for c in sensitive_features if c not in X.columns]
    if missing:
        raise ValueError(f"sensitive feature columns {missing} not in X_train")
    for c in sensitive_features:
        bad = X[c].isna().to_numpy()
        if bad.any():
            raise ValueError(f"sensitive column {c!r} has missing values at rows {X.index[bad][:5].tolist()}")
    yv = np.asarray(y).ravel()
    if yv.size != len(X):
        raise ValueError(f"y_train has {yv.size} rows, X_train has {len(X)}")
    if not np.isin(yv, [0, 1]).all():
        raise ValueError("y_train must be binary 0/1")
    return yv.astype(int)


def fit_mitigated(
    base_pipeline: Any,
    X_train: pd.DataFrame,
    y_train: ArrayLike,
    *,
    sensitive_features: list[str],
    method: Literal["threshold", "reductions"] = "threshold",
    constraints: str = "demographic_parity",
    objective: str = "accuracy_score",
    random_state: int = 0,
    grid_size: int = 1000,
    eps: float = 0.01,
    max_iter: int = 50,
) -> MitigatedModel:
    """Build a mitigated classifier from a fitted base pipeline (policy chooses the arguments).

    ``X_train`` is the raw training frame including the sensitive columns; the base pipeline is
    fed every other column. ``threshold``: ``objective`` and ``grid_size`` apply. ``reductions``:
    ``eps`` (allowed constraint violation) and ``max_iter`` apply, and the base pipeline is
    cloned and refitted (its own fit is kept untouched as the unmitigated challenger).
    """
    if method not in METHODS:
        raise ValueError(f"mitigation method {method!r} not in {METHODS}")
    yv = _validate_fit_inputs(X_train, y_train, sensitive_features)
    base_features = [c for c in X_train.columns if c not in sensitive_features]
    Xb = X_train[base_features]
    sens = X_train[list(sensitive_features)].astype(str)
    s = sens.iloc[:, 0] if len(sensitive_features) == 1 else sens
    known = sorted(set(map(tuple, sens.to_numpy().tolist())))
    if method == "threshold":
        mitigator = _fit_threshold(base_pipeline, Xb, yv, s, constraints, objective, grid_size)
        params = {"constraints": constraints, "objective": objective, "grid_size": grid_size}
        explained = base_pipeline
    else:
        mitigator = _fit_reductions(base_pipeline, Xb, yv, s, constraints, eps, max_iter, random_state)
        params = {"constraints": constraints, "eps": eps, "max_iter": max_iter}
        # A reductions model is a weighted mixture of refitted pipelines; SHAP explains the
        # member with the largest weight (recorded so the explanation's scope is explicit).
        weights = pd.Series(mitigator.weights_)
        best = weights.idxmax()
        explained = mitigator.predictors_[best]
        params["explained_member_weight"] = float(weights[best])
    return MitigatedModel(
        base_pipeline=explained,
        mitigator=mitigator,
        method=method,
        sensitive_features=list(sensitive_features),
        base_features=base_features,
        known_groups=known,
        random_state=random_state,
        params=params,
    )


def _fit_threshold(
    base: Any, Xb: pd.DataFrame, y: np.ndarray, s: Sensitive, constraints: str, objective: str, grid_size: int
) -> Any:
    from fairlearn.postprocessing import ThresholdOptimizer
    from sklearn.utils.validation import check_is_fitted

    if constraints not in THRESHOLD_CONSTRAINTS:
        raise ValueError(f"threshold constraints {constraints!r} not in {THRESHOLD_CONSTRAINTS}")
    if objective not in THRESHOLD_OBJECTIVES:
        raise ValueError(f"threshold objective {objective!r} not in {THRESHOLD_OBJECTIVES}")
    check_is_fitted(base)  # prefit=True would only warn; an unfitted base is a bug upstream
    to = ThresholdOptimizer(
        estimator=base,
        constraints=constraints,
        objective=objective,
        prefit=True,
        predict_method="predict_proba",
        grid_size=grid_size,
    )
    return to.fit(Xb, y, sensitive_features=s)


def _fit_reductions(
    base: Any,
    Xb: pd.DataFrame,
    y: np.ndarray,
    s: Sensitive,
    constraints: str,
    eps: float,
    max_iter: int,
    random_state: int,
) -> Any:
    from fairlearn.reductions import (
        DemographicParity,
        EqualizedOdds,
        ExponentiatedGradient,
        FalsePositiveRateParity,
        TruePositiveRateParity,
    )
    from sklearn.base import clone

    moments = {
        "demographic_parity": DemographicParity,
        "equalized_odds": EqualizedOdds,
        "true_positive_rate_parity": TruePositiveRateParity,
        "false_positive_rate_parity": FalsePositiveRateParity,
    }
    if constraints not in moments:
        raise ValueError(f"reductions constraints {constraints!r} not in {REDUCTION_CONSTRAINTS}")
    est = clone(base)
    if hasattr(est, "steps"):
        weight_name = f"{est.steps[-1][0]}__sample_weight"
        last = est.steps[-1][1]
    else:
        weight_name, last = "sample_weight", est
    if "random_state" in last.get_params():
        last.set_params(random_state=random_state)
    eg = ExponentiatedGradient(
        est, constraints=moments[constraints](), eps=eps, max_iter=max_iter, sample_weight_name=weight_name
    )
    return eg.fit(Xb, y, sensitive_features=s)
