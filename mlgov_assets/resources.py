"""The one resource every asset uses: where state lives, which policy applies, the registry."""

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from dagster import ConfigurableResource, InitResourceContext

from mlgov_assets.core.governance.policy import Policy, load_policy
from mlgov_assets.core.settings import Settings, get_settings

if TYPE_CHECKING:
    from mlgov_assets.core.models.registry import Registry
    from mlgov_assets.core.project.project import Project


class MlgovResource(ConfigurableResource["MlgovResource"]):
    """Unset fields resolve at run time from ``MLGOV_*`` environment variables, then defaults,
    so one Definitions object serves the UI, the CLI and isolated test instances."""

    home: str | None = None
    project_dir: str | None = None
    policy_path: str | None = None
    model_name: str | None = None
    landing_dir: str | None = None
    project_spec: str | None = None

    def settings(self) -> Settings:
        return get_settings(
            home=self.home,
            project_dir=self.project_dir,
            policy_path=self.policy_path,
            model_name=self.model_name,
            landing_dir=self.landing_dir,
            project_spec=self.project_spec,
        ).ensure()

    def project(self) -> "Project":
        """The governed project (its spec read on every use, like the policy)."""
        from mlgov_assets.core.project.project import open_project

        s = self.settings()
        return open_project(s.project_spec, s.project_dir)

    def policy(self) -> Policy:
        """The policy, checked against the project (its sensitive features must exist there)."""
        from mlgov_assets.core.governance.policy_project import check_against_project

        # read on every use: a policy edit applies to the next evaluation, never a stale copy
        return check_against_project(load_policy(self.settings().policy_path), self.project())

    def registry(self) -> "Registry":
        return _registry_for(self.settings())

    def for_project(self, name: str | None) -> "MlgovResource":
        """This resource for one project of the code location (``None`` or its own project: itself).
        Another project keeps the location's home and repository, and what its own spec declares."""
        if name is None:
            return self
        own = self.settings()
        if name == own.project_name:
            return self
        from mlgov_assets.core.project.catalog import resolve_project

        spec = resolve_project(name, own.project_dir)
        return MlgovResource(home=str(own.location), project_dir=str(own.project_dir), project_spec=str(spec))


class TrainingLock(ConfigurableResource["TrainingLock"]):
    """Held for the whole run by any run that needs it (training_data, model_cards): such runs
    never interleave writes to the registry, the asset values or the decision log, whoever
    launched them (the daemon's queue, `mlgov train`/`monitor --once` in-process, a test). The
    queue's tag limit in dagster.yaml only covers queued runs; this covers all of them.
    (A separate resource, so sensors and other runs do not open it.)"""

    home: str | None = None

    @contextlib.contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator["TrainingLock"]:
        from mlgov_assets.core.integrity import file_lock

        # one lock for the whole code location: training runs of different projects never interleave
        path = get_settings(home=self.home).ensure().location / "locks" / "training.lock"
        if context.log is not None:
            context.log.info(f"waiting for the training lock {path}")
        with file_lock(path):
            yield self


_REGISTRIES: dict[tuple[str, str, str], "Registry"] = {}


def _registry_for(settings: Settings) -> "Registry":
    """One Registry (MLflow client) per state dir and model name per process: a run's ~20 steps
    and checks share it instead of re-creating clients (~0.1 s each). Registry objects hold no
    cached registry *state*: every read goes to the store."""
    from mlgov_assets.core.models.registry import Registry

    key = (str(settings.home), settings.model_name, settings.tracking_uri)
    if key not in _REGISTRIES:
        _REGISTRIES[key] = Registry(settings)
    reg = _REGISTRIES[key]
    reg.activate()
    return reg
