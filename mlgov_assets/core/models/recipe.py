"""The one training recipe: read -> (split) -> validate -> features -> fit -> holdout metrics -> fingerprint.

The data, feature and model assets, ``reproduce`` and retraining (through the governed_training
job) all run these functions, so a registered model is rebuilt by the code that built it. Every
step takes the governed :class:`~mlgov_assets.core.project.project.Project` explicitly.
Pure: no Dagster, no MLflow (registration is :mod:`.registration`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.data.lineage import DataLineage, LineagedFrame
from mlgov_assets.core.errors import Refusal
from mlgov_assets.core.models import training
from mlgov_assets.core.models.training import HyperParams
from mlgov_assets.core.project.project import TARGET

if TYPE_CHECKING:
    import pandas as pd

    from mlgov_assets.core.data.datasets import TrackedDataset
    from mlgov_assets.core.data.schemas import ValidationReport
    from mlgov_assets.core.data.split import SplitFrames
    from mlgov_assets.core.governance.policy import Policy
    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.project.reader import HeaderMode

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


def read_dataset(
    project: Project, path: Path, lineage: DataLineage, *, header: HeaderMode | None = None
) -> LineagedFrame:
    """The raw rows of ``path`` as the project's spec reads them (strings, missing tokens kept),
    with the lineage they were read under. ``header="present"`` for datasets mlgov generated."""
    from mlgov_assets.core.project.reader import read_raw

    return LineagedFrame(frame=read_raw(project, path, header=header), lineage=lineage)


def read_tracked(project: Project, tracked: TrackedDataset, *, project_dir: Path, role: Role) -> LineagedFrame:
    """A DVC-tracked dataset of the project, its lineage taken from DVC."""
    source = tracked.relative_to(project_dir)
    lineage = DataLineage(role=role, source=source, dvc_md5=tracked.md5)
    own = source in (project.train_file, project.holdout_file)
    return read_dataset(project, tracked.path, lineage, header=None if own else "present")


def split_tracked(
    project: Project, tracked: TrackedDataset, *, project_dir: Path
) -> tuple[LineagedFrame, LineagedFrame]:
    """(training part, holdout part) of a tracked training file, cut as the spec's ``Split`` says;
    both parts' lineage names the file, its md5 and the split record."""
    full = read_tracked(project, tracked, project_dir=project_dir, role="training")
    return split_parts(project, full)


def split_parts(project: Project, full: LineagedFrame) -> tuple[LineagedFrame, LineagedFrame]:
    """(training part, holdout part) of the whole training file ``full`` under the spec's ``Split``."""
    from mlgov_assets.core.data.split import split_holdout
    from mlgov_assets.core.project.spec import Split

    holdout = project.spec.data.holdout
    if not isinstance(holdout, Split):
        raise TypeError(f"project {project.name!r} names a holdout file, not a split")
    parts: SplitFrames = split_holdout(project, full.frame, holdout)
    lineage = full.lineage.model_copy(update={"split": parts.record})
    return (
        LineagedFrame(frame=parts.train, lineage=lineage),
        LineagedFrame(frame=parts.holdout, lineage=lineage.model_copy(update={"role": "holdout"})),
    )


def validate_raw(project: Project, raw: LineagedFrame) -> ValidationReport:
    """The raw-data gate (the schema generated from the spec), naming the file in its report."""
    from mlgov_assets.core.data.schemas import validate
    from mlgov_assets.core.project.schemas import raw_schema

    return validate(raw.frame, raw_schema(project), source=raw.lineage.source)


def validate_features(project: Project, features: LineagedFrame) -> ValidationReport:
    """The feature-table gate (the spec's ``FeatureSchema``)."""
    from mlgov_assets.core.data.schemas import validate
    from mlgov_assets.core.project.schemas import feature_schema

    return validate(features.frame, feature_schema(project), source=f"features of {features.lineage.source}")


def feature_table(project: Project, raw: LineagedFrame) -> LineagedFrame:
    """Validated raw rows -> the modelling table. Raises :class:`DataRefused` when the raw gate
    fails (so bad data is refused even when features are materialized on their own)."""
    from mlgov_assets.core.project.features import build_features

    report = validate_raw(project, raw)
    if not report.passed or report.validated is None:
        raise DataRefused(report)
    return raw.derive(build_features(project, report.validated), model_features=tuple(project.model_features))


# --------------------------------------------------------------------------- fit and evaluate


class MitigationSpec(BaseModel):
    """How the candidate is mitigated (from the policy, or parsed back from a version's params)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

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

    def columns(self, project: Project) -> list[str]:
        """The input columns a mitigated model scores: model features plus the sensitive ones."""
        return project.model_features + list(self.sensitive_features)


@dataclass(frozen=True)
class FittedModel:
    """A fitted model (sklearn pipeline or ``MitigatedModel``) and its holdout metrics."""

    model: Any
    metrics: dict[str, float]


def fit_baseline(project: Project, train: pd.DataFrame, holdout: pd.DataFrame, params: HyperParams) -> FittedModel:
    """Fit the pipeline on ``train``; metrics of its scores on ``holdout`` (decision = score >= 0.5)."""
    pipeline = training.fit(train, params, project)
    proba = pipeline.predict_proba(holdout[project.model_features])[:, 1]
    return FittedModel(model=pipeline, metrics=training.holdout_metrics(holdout[TARGET].to_numpy(), proba))


def fit_mitigation(
    project: Project,
    base: Any,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    spec: MitigationSpec,
    *,
    random_state: int,
) -> FittedModel:
    """Mitigate a fitted base pipeline as ``spec`` says; metrics of the model's own decisions."""
    from mlgov_assets.core.models.mitigation import fit_mitigated
    from mlgov_assets.core.models.scoring import holdout_metrics, score_frame

    cols = spec.columns(project)
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
    project: Project,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    params: HyperParams,
    mitigation: MitigationSpec | None,
) -> FittedModel:
    """The whole fit: the baseline pipeline, then (for a mitigated version) its mitigation."""
    base = fit_baseline(project, train, holdout, params)
    if mitigation is None:
        return base
    return fit_mitigation(project, base.model, train, holdout, mitigation, random_state=params.random_state)


# --------------------------------------------------------------------------- identity


def fingerprint(
    train: DataLineage,
    holdout: DataLineage,
    params: HyperParams,
    *,
    code_version: str,
    project_sha256: str,
    hooks_sha256: str = "",
    mitigation: MitigationSpec | None = None,
    base_version: int | None = None,
) -> str:
    """The registration identity of a fit: data md5s (and a holdout split), project spec sha256 and
    its hooks' sha256 (:meth:`Project.hooks_sha256`), params, code version and mitigation."""
    extra: dict[str, Any] = {}
    if mitigation is not None:
        extra = mitigation.model_dump() | {"base_version": base_version}
    if holdout.split is not None:
        extra["holdout_split"] = holdout.split.model_dump(mode="json")
    return training.fingerprint(
        train_md5=train.dvc_md5,
        holdout_md5=holdout.dvc_md5,
        params=params,
        code_version=code_version,
        project_sha256=project_sha256,
        hooks_sha256=hooks_sha256,
        variant="baseline" if mitigation is None else "mitigated",
        extra=extra,
    )


def model_columns(project: Project, mitigation: MitigationSpec | None) -> list[str]:
    """Columns the model scores (model features, plus sensitive ones when mitigated)."""
    return project.model_features if mitigation is None else mitigation.columns(project)
