"""The model: one scikit-learn pipeline from raw string columns to a gradient-boosted score.

HistGradientBoosting is the kind of model a credit team runs (LightGBM-like), but its *native*
categorical splits make SHAP's TreeExplainer silently wrong (stack notes: additivity error of
13-14 log-odds). So categories are ordinal-encoded inside the pipeline and the trees treat the
codes as ordered numbers: TreeExplainer is then exact, and the served model still takes the raw
strings, so there is one artefact from request to score.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.project.project import TARGET

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from mlgov_assets.core.project.project import Project


class HyperParams(BaseModel):
    """The model's hyperparameters: the one definition (the Dagster config derives from it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    learning_rate: float = 0.1
    max_iter: int = 200
    max_leaf_nodes: int = 15
    max_depth: int | None = None
    min_samples_leaf: int = 20
    l2_regularization: float = 0.0
    random_state: int = 0

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    @classmethod
    def from_recorded(cls, params: Mapping[str, str]) -> HyperParams:
        """Parse the strings MLflow stored (``"None"`` is None); unknown keys and bad values raise
        ``pydantic.ValidationError``."""
        return cls.model_validate({k: None if v == "None" else v for k, v in params.items()})


def build_pipeline(params: HyperParams, project: Project) -> Pipeline:
    """The unfitted pipeline over the project's model inputs (categorical codes, numbers passed through)."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    encode = ColumnTransformer(
        [
            (
                "categorical",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2, dtype=np.float64
                ),
                project.model_categorical,
            ),
            ("numeric", "passthrough", project.model_numeric),
        ],
        remainder="drop",  # sensitive attributes and anything else never reach the trees
        verbose_feature_names_out=False,
    )
    model = HistGradientBoostingClassifier(
        learning_rate=params.learning_rate,
        max_iter=params.max_iter,
        max_leaf_nodes=params.max_leaf_nodes,
        max_depth=params.max_depth,
        min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization,
        random_state=params.random_state,
        categorical_features=None,  # ordinal codes as numbers: keeps TreeExplainer exact
        early_stopping=False,  # no internal random validation split: the fit is fully determined
    )
    return Pipeline([("encode", encode), ("model", model)])


def fit(train: pd.DataFrame, params: HyperParams, project: Project) -> Pipeline:
    """The pipeline fitted on ``train``'s model features (as the project names them) and target."""
    pipeline = build_pipeline(params, project)
    pipeline.fit(train[project.model_features], train[TARGET].to_numpy())
    return pipeline


def holdout_metrics(
    y_true: np.ndarray[Any, Any], proba: np.ndarray[Any, Any], threshold: float = 0.5
) -> dict[str, float]:
    """The metrics the policy gates on, for a plain classifier's scores (decision = score >= 0.5)."""
    import pandas as pd

    from mlgov_assets.core.models.scoring import holdout_metrics as metrics

    return metrics(y_true, pd.DataFrame({"score": proba, "decision": (proba >= threshold).astype(int)}))


def fingerprint(
    *,
    train_md5: str,
    holdout_md5: str,
    params: HyperParams,
    code_version: str,
    project_sha256: str,
    hooks_sha256: str = "",
    variant: str = "baseline",
    extra: dict[str, Any] | None = None,
) -> str:
    """sha256 identity of a training run's inputs (data bytes, project spec and its Python hooks,
    params, code, variant): identical inputs reuse the registered version instead of minting (and
    maybe promoting) a duplicate; a changed spec or hook is a different input. A spec without hooks
    (``hooks_sha256=""``) keeps the identity it had before hooks existed."""
    inputs: dict[str, Any] = {
        "train_md5": train_md5,
        "holdout_md5": holdout_md5,
        "project_sha256": project_sha256,
        "params": params.to_dict(),
        "code_version": code_version,
        "variant": variant,
        "extra": extra or {},
    }
    if hooks_sha256:
        inputs["hooks_sha256"] = hooks_sha256
    blob = json.dumps(inputs, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()
