"""The one training recipe: read -> validate -> features -> fit -> holdout metrics -> fingerprint.

The data, feature and model assets, ``reproduce`` and retraining (through the governed_training
job) all run these functions, so a registered model is rebuilt by the code that built it.
Pure: no Dagster, no MLflow (registration is :mod:`.registration`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.data.features import MODEL_FEATURES, TARGET
from mlgov_assets.core.data.lineage import DataLineage, LineagedFrame
from mlgov_assets.core.errors import Refusal
from mlgov_assets.core.models import training
from mlgov_assets.core.models.training import HyperParams

if TYPE_CHECKING:
    from mlgov_assets.core.data.datasets import TrackedDataset
    from mlgov_assets.core.data.schemas import ValidationReport
    from mlgov_assets.core.governance.policy import Policy

Role = Literal["training", "holdout"]

#: Policy method names -> the names :func:`mitigation.fit_mitigated` takes.
_METHODS: dict[str, Literal["threshold", "reductions"]] = {
    "threshold_optimizer": "threshold",
    "exponentiated_gradient": "reductions",
}


class DataRefused(Refusal):
    """A data gate refused the table; ``report`` is the validation evidence."""

    def __init__(self, report: ValidationReport):
        super().__init__(report.summary())
        self.report = report


# --------------------------------------------------------------------------- data


def read_dataset(path: Path, lineage: DataLineage) -> LineagedFrame:
    """The raw rows of ``path`` (strings, ``?`` kept), with the lineage they were read under."""
    from mlgov_assets.core.data.adult import read_adult_csv

    return LineagedFrame(frame=read_adult_csv(path), lineage=lineage)


def read_tracked(tracked: TrackedDataset, *, project_dir: Path, role: Role) -> LineagedFrame:
    """A DVC-tracked dataset of the project, its lineage taken from DVC."""
    lineage = DataLineage(role=role, source=tracked.relative_to(project_dir), dvc_md5=tracked.md5)
    return read_dataset(tracked.path, lineage)


def validate_raw(raw: LineagedFrame) -> ValidationReport:
    """The raw-data gate (``RawAdultSchema``), naming the file in its report."""
    from mlgov_assets.core.data.schemas import RawAdultSchema, validate

    return validate(raw.frame, RawAdultSchema, source=raw.lineage.source)


def validate_features(features: LineagedFrame) -> ValidationReport:
    """The feature-table gate (``FeatureSchema``)."""
    from mlgov_assets.core.data.schemas import FeatureSchema, validate

    return validate(features.frame, FeatureSchema, source=f"features of {features.lineage.source}")


def feature_table(raw: LineagedFrame) -> LineagedFrame:
    """Validated raw rows -> the modelling table. Raises :class:`DataRefused` when the raw gate
    fails (so bad data is refused even when features are materialized on their own)."""
    from mlgov_assets.core.data.features import build_features

    report = validate_raw(raw)
    if not report.passed or report.validated is None:
        raise DataRefused(report)
    return raw.derive(build_features(report.validated), model_features=tuple(MODEL_FEATURES))


# --------------------------------------------------------------------------- fit and evaluate


class MitigationSpec(BaseModel):
    """How the candidate is mitigated (from the policy, or parsed back from a version's params)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["threshold", "reductions"]
    constraints: str
    objective: str
    sensitive_features: list[str]

    @classmethod
    def from_policy(cls, policy: Policy) -> MitigationSpec | None:
        """None when the policy does not enable mitigation."""
        fz = policy.fairness
        if fz is None or not fz.mitigation.enabled:
            return None
        mit = fz.mitigation
        return cls(
            method=_METHODS[mit.method],
            constraints=mit.constraints,
            objective=mit.objective,
            sensitive_features=list(mit.sensitive_features or fz.sensitive_features),
        )

    def columns(self) -> list[str]:
        """The input columns a mitigated model scores: model features plus the sensitive ones."""
        return MODEL_FEATURES + list(self.sensitive_features)


@dataclass(frozen=True)
class FittedModel:
    """A fitted model (sklearn pipeline or ``MitigatedModel``) and its holdout metrics."""

    model: Any
    metrics: dict[str, float]


def fit_baseline(train: pd.DataFrame, holdout: pd.DataFrame, params: HyperParams) -> FittedModel:
    """Fit the pipeline on ``train``; metrics of its scores on ``holdout`` (decision = score >= 0.5)."""
    pipeline = training.fit(train, params)
    proba = pipeline.predict_proba(holdout[MODEL_FEATURES])[:, 1]
    return FittedModel(model=pipeline, metrics=training.holdout_metrics(holdout[TARGET].to_numpy(), proba))


def fit_mitigation(
    base: Any, train: pd.DataFrame, holdout: pd.DataFrame, spec: MitigationSpec, *, random_state: int
) -> FittedModel:
    """Mitigate a fitted base pipeline as ``spec`` says; metrics of the model's own decisions."""
    from mlgov_assets.core.models.mitigation import fit_mitigated
    from mlgov_assets.core.models.scoring import holdout_metrics, score_frame

    cols = spec.columns()
    model = fit_mitigated(
        base,
        train[cols],
        train[TARGET].to_numpy(),
        sensitive_features=list(spec.sensitive_features),
        method=spec.method,
        constraints=spec.constraints,
        objective=spec.objective,
        random_state=random_state,
    )
    return FittedModel(
        model=model, metrics=holdout_metrics(holdout[TARGET].to_numpy(), score_frame(model, holdout[cols]))
    )


def fit_recipe(
    train: pd.DataFrame, holdout: pd.DataFrame, params: HyperParams, mitigation: MitigationSpec | None
) -> FittedModel:
    """The whole fit: the baseline pipeline, then (for a mitigated version) its mitigation."""
    base = fit_baseline(train, holdout, params)
    if mitigation is None:
        return base
    return fit_mitigation(base.model, train, holdout, mitigation, random_state=params.random_state)


# --------------------------------------------------------------------------- identity


def fingerprint(
    train: DataLineage,
    holdout: DataLineage,
    params: HyperParams,
    *,
    code_version: str,
    mitigation: MitigationSpec | None = None,
    base_version: int | None = None,
) -> str:
    """The registration identity of a fit: data md5s, params, code version and mitigation."""
    extra: dict[str, Any] | None = None
    if mitigation is not None:
        extra = mitigation.model_dump() | {"base_version": base_version}
    return training.fingerprint(
        train_md5=train.dvc_md5,
        holdout_md5=holdout.dvc_md5,
        params=params,
        code_version=code_version,
        variant="baseline" if mitigation is None else "mitigated",
        extra=extra,
    )


def model_columns(mitigation: MitigationSpec | None) -> list[str]:
    """Columns the model scores (model features, plus sensitive ones when mitigated)."""
    return MODEL_FEATURES if mitigation is None else mitigation.columns()
