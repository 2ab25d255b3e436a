"""Registering what the recipe fits: one MLflow version per distinct input, with its provenance.

Every version carries tags and text artifacts saying where its data, code, policy and project
spec came from (``mlgov.project``, ``mlgov.project_sha256``, the spec as ``project/project.yaml``;
``mlgov.hooks_sha256`` when the spec names Python hooks).
A fit whose inputs (fingerprint) were registered before reuses that version, so identical re-runs
mint nothing new (and promote nothing twice).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.data.lineage import LineagedFrame
from mlgov_assets.core.models import recipe
from mlgov_assets.core.models.recipe import FittedModel, MitigationSpec
from mlgov_assets.core.models.training import HyperParams

if TYPE_CHECKING:
    from mlgov_assets.core.governance.policy import Policy
    from mlgov_assets.core.models.registry import Registry
    from mlgov_assets.core.project.project import Project

#: Where a version records the project spec it was trained under (next to ``policy/policy.yaml``).
PROJECT_ARTIFACT = "project/project.yaml"
#: Where a version records the source of the project's Python hooks, by their path in the repository.
HOOKS_ARTIFACT_DIR = "project/hooks"


class MitigationSettings(MitigationSpec):
    """A mitigation as recorded on its version: the spec and the challenger it was applied to."""

    base_version: int


class ModelResult(BaseModel):
    """A registered (or reused) model version and what it was trained from: the value of the
    ``challenger_model`` and ``candidate_model`` assets."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    version: int
    run_id: str | None
    model_name: str
    variant: Literal["baseline", "mitigated"]
    fingerprint: str
    reused: bool
    train_data_md5: str
    holdout_data_md5: str
    params: HyperParams
    metrics: dict[str, float]
    mitigation: MitigationSettings | None = None


@dataclass(frozen=True)
class _Provenance:
    tags: dict[str, str]
    texts: dict[str, str]
    packages: dict[str, Any]

    def requirements(self, *names: str) -> list[str]:
        """Pinned pip requirements for the named packages, at the versions installed now."""
        pins = {"fairlearn": "0.15.0"}  # if not installed, the version mlgov is tested with
        return [f"{n}=={self.packages.get(n) or pins[n]}" for n in names]


def project_text(project: Project) -> str:
    """The spec's text exactly as loaded (its bytes hash to ``project.sha256``); refused when the
    file changed since, so a version never records a spec other than the one it was trained under."""
    import hashlib

    from mlgov_assets.core.project.spec import ProjectError

    data = project.spec_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != project.sha256:
        raise ProjectError(f"{project.spec_path}: changed during the run; re-run to train under the new spec")
    return data.decode("utf-8")


def _provenance(
    registry: Registry,
    policy: Policy,
    project: Project,
    train: LineagedFrame,
    holdout: LineagedFrame,
    *,
    run_id: str,
    code_version: str,
    fingerprint: str,
    variant: str,
    flavor: str,
) -> _Provenance:
    from mlgov_assets.core.provenance import environment_info, git_info

    s = registry.settings
    git = git_info(s.project_dir)
    tags = {
        "mlgov.git_commit": str(git["commit"]),
        "mlgov.git_dirty": str(git["dirty"]).lower(),
        "mlgov.train_data_md5": train.lineage.dvc_md5,
        "mlgov.train_data_path": train.lineage.source,
        "mlgov.holdout_data_md5": holdout.lineage.dvc_md5,
        "mlgov.dagster_run_id": run_id,
        "mlgov.code_version": code_version,
        "mlgov.policy_sha256": policy.sha256,
        "mlgov.project": project.name,
        "mlgov.project_sha256": project.sha256,
        "mlgov.fingerprint": fingerprint,
        "mlgov.variant": variant,
        "mlgov.flavor": flavor,
    }
    if holdout.lineage.split is not None:
        tags["mlgov.holdout_split_sha256"] = holdout.lineage.split.holdout_sha256
    if hooks := project.hooks_sha256():  # only a spec with Python hooks has this tag
        tags["mlgov.hooks_sha256"] = hooks
    env = environment_info(s.project_dir)
    data = {"train": train.lineage.model_dump(mode="json"), "holdout": holdout.lineage.model_dump(mode="json")}
    texts = {
        "policy/policy.yaml": s.policy_path.read_text(),
        PROJECT_ARTIFACT: project_text(project),
        "provenance/environment.json": json.dumps(env, indent=2),
        "provenance/data.json": json.dumps(data, indent=2),
        # the hooks' source beside the spec (their hash is the mlgov.hooks_sha256 tag)
        **{f"{HOOKS_ARTIFACT_DIR}/{rel}": text for rel, text in project.hook_sources().items()},
    }
    packages = env["packages"]
    return _Provenance(tags=tags, texts=texts, packages=dict(packages) if isinstance(packages, dict) else {})


def _reused(registry: Registry, template: ModelResult) -> ModelResult | None:
    existing = registry.find_by_fingerprint(template.fingerprint)
    if existing is None:
        return None
    info = registry.version_info(existing)
    return template.model_copy(
        update={"version": existing, "run_id": info.run_id, "metrics": info.metrics, "reused": True}
    )


def train_and_register(
    registry: Registry,
    policy: Policy,
    project: Project,
    train: LineagedFrame,
    holdout: LineagedFrame,
    params: HyperParams,
    *,
    dagster_run_id: str,
    code_version: str,
) -> ModelResult:
    """Fit the baseline pipeline, evaluate it on the holdout, log and register it — or reuse the
    version already registered for exactly these inputs."""
    fp = recipe.fingerprint(
        train.lineage,
        holdout.lineage,
        params,
        code_version=code_version,
        project_sha256=project.sha256,
        hooks_sha256=project.hooks_sha256(),
    )
    template = ModelResult(
        version=0,
        run_id=None,
        model_name=registry.name,
        variant="baseline",
        fingerprint=fp,
        reused=False,
        train_data_md5=train.lineage.dvc_md5,
        holdout_data_md5=holdout.lineage.dvc_md5,
        params=params,
        metrics={},
    )
    if (found := _reused(registry, template)) is not None:
        return found
    fitted = recipe.fit_baseline(project, train.frame, holdout.frame, params)
    prov = _provenance(
        registry,
        policy,
        project,
        train,
        holdout,
        run_id=dagster_run_id,
        code_version=code_version,
        fingerprint=fp,
        variant="baseline",
        flavor="sklearn",
    )
    return _register(
        registry,
        template,
        fitted,
        prov,
        flavor="sklearn",
        run_name=f"challenger-{dagster_run_id[:8]}",
        params=params.to_dict(),
        input_example=holdout.frame[recipe.model_columns(project, None)].head(5),
        requirements=prov.requirements("scikit-learn", "pandas", "numpy"),
    )


def mitigate_and_register(
    registry: Registry,
    policy: Policy,
    project: Project,
    spec: MitigationSpec,
    challenger: ModelResult,
    train: LineagedFrame,
    holdout: LineagedFrame,
    *,
    dagster_run_id: str,
    code_version: str,
) -> ModelResult:
    """Mitigate the registered challenger as ``spec`` says and register the result as its own
    (pyfunc) version, so it goes through every gate like any other model."""
    settings = MitigationSettings(**spec.model_dump(), base_version=challenger.version)
    params = challenger.params
    fp = recipe.fingerprint(
        train.lineage,
        holdout.lineage,
        params,
        code_version=code_version,
        project_sha256=project.sha256,
        hooks_sha256=project.hooks_sha256(),
        mitigation=spec,
        base_version=challenger.version,
    )
    template = challenger.model_copy(
        update={"fingerprint": fp, "reused": False, "variant": "mitigated", "mitigation": settings, "run_id": None}
    )
    if (found := _reused(registry, template)) is not None:
        return found
    base = registry.load_governed(challenger.version)
    fitted = recipe.fit_mitigation(project, base, train.frame, holdout.frame, spec, random_state=params.random_state)
    prov = _provenance(
        registry,
        policy,
        project,
        train,
        holdout,
        run_id=dagster_run_id,
        code_version=code_version,
        fingerprint=fp,
        variant="mitigated",
        flavor="pyfunc",
    )
    prov.tags["mlgov.base_version"] = str(challenger.version)
    prov.texts["mitigation/description.json"] = json.dumps(fitted.model.describe(), indent=2, default=str)
    recorded = params.to_dict() | {f"mitigation_{k}": v for k, v in settings.model_dump().items()}
    return _register(
        registry,
        template,
        fitted,
        prov,
        flavor="pyfunc",
        run_name=f"mitigated-{dagster_run_id[:8]}",
        params=recorded,
        input_example=holdout.frame[spec.columns(project)].head(5),
        requirements=prov.requirements("scikit-learn", "pandas", "numpy", "fairlearn"),
    )


def _register(
    registry: Registry,
    template: ModelResult,
    fitted: FittedModel,
    prov: _Provenance,
    *,
    flavor: str,
    run_name: str,
    params: dict[str, Any],
    input_example: Any,
    requirements: list[str],
) -> ModelResult:
    info = registry.log_model_version(
        model=fitted.model,
        flavor=flavor,
        run_name=run_name,
        params=params,
        metrics=fitted.metrics,
        tags=prov.tags,
        input_example=input_example,
        text_artifacts=prov.texts,
        pip_requirements=requirements,
    )
    return template.model_copy(update={"version": info.version, "run_id": info.run_id, "metrics": fitted.metrics})
