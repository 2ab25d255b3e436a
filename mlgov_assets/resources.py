"""The one resource every asset uses: where state lives, which policy applies, the registry."""


import contextlib
from typing import Iterator, Optional

from dagster import ConfigurableResource, InitResourceContext

from .core.policy import Policy, load_policy
from .core.settings import Settings, get_settings


class MlgovResource(ConfigurableResource):
    """Unset fields resolve at run time from ``MLGOV_*`` environment variables, then defaults,
    so one Definitions object serves the UI, the CLI and isolated test instances."""

    home: Optional[str] = None
    project_dir: Optional[str] = None
    policy_path: Optional[str] = None
    model_name: Optional[str] = None
    landing_dir: Optional[str] = None

    @contextlib.contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator["MlgovResource"]:
        """Training runs hold an exclusive lock for their whole duration, whoever launched them
        (the daemon's queue, `mlgov train`/`monitor --once` in-process, a test), so two runs
        never interleave writes to the registry, the asset values or the decision log. The
        queue's tag limit in dagster.yaml only covers queued runs; this covers all of them."""
        run = context.dagster_run
        if run is not None and run.tags.get("mlgov/serial") == "training":
            from .core.registry import file_lock

            with file_lock(self.settings().lock_dir / "training.lock"):
                yield self
        else:
            yield self

    def settings(self) -> Settings:
        return get_settings(home=self.home, project_dir=self.project_dir, policy_path=self.policy_path,
                            model_name=self.model_name, landing_dir=self.landing_dir).ensure()

    def policy(self) -> Policy:
        # read on every use: a policy edit applies to the next evaluation, never a stale copy
        return load_policy(self.settings().policy_path)

    def registry(self):
        from .core.registry import Registry

        return Registry(self.settings())
