"""One way to score any governed model: a plain sklearn pipeline or a fairness-mitigated one.

``score`` is the model's positive-class probability (for a mitigated model: its base pipeline's
score, which post-processing leaves unchanged); ``decision`` is what the model decides (for a
mitigated model: its group-specific thresholds). Ranking metrics (ROC AUC, log loss) are computed
on scores, decision metrics (accuracy, precision, recall, F1) on decisions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def is_mitigated(model: Any) -> bool:
    return hasattr(model, "base_pipeline") and hasattr(model, "mitigator")


def explained_pipeline(model: Any) -> Any:
    """The tree pipeline SHAP explains (the base pipeline of a mitigated model)."""
    return model.base_pipeline if is_mitigated(model) else model


def score_frame(model: Any, X: pd.DataFrame, threshold: float = 0.5) -> pd.DataFrame:
    if is_mitigated(model):
        base_score, decision_ = model.score_and_decide(X)  # the base pipeline runs once
        score = np.asarray(base_score, dtype=float)
        decision = np.asarray(decision_, dtype=int)
    else:
        score = np.asarray(model.predict_proba(X)[:, 1], dtype=float)
        decision = (score >= threshold).astype(int)
    return pd.DataFrame({"score": score, "decision": decision}, index=X.index)


def holdout_metrics(y_true: np.ndarray, scored: pd.DataFrame) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score

    y_true = np.asarray(y_true)
    s, d = scored["score"].to_numpy(), scored["decision"].to_numpy()
    return {
        "accuracy": float(accuracy_score(y_true, d)),
        "roc_auc": float(roc_auc_score(y_true, s)),
        "precision": float(precision_score(y_true, d, zero_division=0)),
        "recall": float(recall_score(y_true, d, zero_division=0)),
        "f1": float(f1_score(y_true, d, zero_division=0)),
        "log_loss": float(log_loss(y_true, np.clip(s, 1e-15, 1 - 1e-15), labels=[0, 1])),
    }
