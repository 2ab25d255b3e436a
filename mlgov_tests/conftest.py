"""Shared fixtures: a real temporary project (git + DVC + the Adult files) and isolated
mlgov state (MLflow SQLite store, decision log, asset values) per test."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout.strip()


def dvc_cache_put(cache: Path, src: Path) -> str:
    """Put a file into a DVC 3 cache layout by its md5 (computed here, independently of mlgov)."""
    import hashlib

    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    dest = cache / "files" / "md5" / md5[:2] / md5[2:]
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return md5


def make_project(root: Path) -> Path:
    """A fresh git repository with DVC initialised and the Adult files DVC-tracked, as a clone
    of mlgov would have after `make install` — but in a temp dir, so tests may corrupt it."""
    from dvc.repo import Repo

    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir()
    for name in ("adult.data", "adult.test", "adult.names"):
        shutil.copyfile(DATA / name, root / "data" / name)
    for name in ("dagster.yaml", "uv.lock"):
        shutil.copyfile(REPO / name, root / name)
    (root / ".gitignore").write_text(".mlgov/\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.email", "test@example.invalid")
    _git(root, "config", "user.name", "mlgov test")
    Repo.init(str(root)).close()
    with Repo(str(root)) as repo:
        repo.config  # noqa: B018 - loads config
        repo.add([str(root / "data" / "adult.data"), str(root / "data" / "adult.test")])
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    _git(root, "commit", "-qm", "test project")
    return root


@pytest.fixture(autouse=True)
def _isolated_environment():
    """mlgov points MLGOV_*/DAGSTER_HOME at a command's state for its process (so the Dagster runs it
    starts agree); in-process tests run many commands, so each test gets the environment back."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def project_template(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("template") / "project")


@dataclass
class Env:
    project: Path
    home: Path
    policy: Path

    @property
    def commit(self) -> str:
        return _git(self.project, "rev-parse", "HEAD")

    def write_policy(self, text: str) -> Path:
        self.policy.write_text(text)
        return self.policy

    def use_policy(self, *, drop: tuple[str, ...] = (), **sections) -> Path:
        """The default policy with sections dropped or replaced (YAML round trip)."""
        import yaml

        data = yaml.safe_load((REPO / "mlgov_assets" / "policies" / "default.yaml").read_text())
        for key in drop:
            data.pop(key, None)
        for key, value in sections.items():
            data[key] = value
        return self.write_policy(yaml.safe_dump(data, sort_keys=False))

    def settings(self):
        from mlgov_assets.core.settings import get_settings

        return get_settings(home=self.home, project_dir=self.project, policy_path=self.policy)

    def registry(self):
        from mlgov_assets.core.models.registry import Registry

        return Registry(self.settings())

    def policy_obj(self):
        from mlgov_assets.core.governance.policy import load_policy

        return load_policy(self.policy)

    def defs(self):
        from mlgov_assets.definitions import build_definitions
        from mlgov_assets.io_manager import MlgovIOManager
        from mlgov_assets.resources import MlgovResource

        return build_definitions(
            MlgovResource(home=str(self.home), project_dir=str(self.project), policy_path=str(self.policy)),
            MlgovIOManager(base_dir=str(self.home / "assets")),
        )


CORE_ONLY = ("fairness", "explanations")
"""Sections dropped by the default `env` fixture: the training-path tests (issue 2) run the path
with mitigation, fairness and SHAP gates off, for speed; `full_env` uses the shipped policy."""


@pytest.fixture
def full_env(tmp_path, project_template, monkeypatch) -> Env:
    """Like `env`, with the shipped default policy untouched (fairness, mitigation, SHAP)."""
    return _make_env(tmp_path, project_template, monkeypatch)


@pytest.fixture
def env(tmp_path, project_template, monkeypatch) -> Env:
    """An isolated project copy + state dir; MLGOV_* point at them (for CLI code paths too).
    Policy: the default one without the fairness/explanations sections (see CORE_ONLY)."""
    e = _make_env(tmp_path, project_template, monkeypatch)
    e.use_policy(drop=CORE_ONLY)
    return e


def _make_env(tmp_path, project_template, monkeypatch) -> Env:
    project = tmp_path / "project"
    shutil.copytree(project_template, project, symlinks=True)
    home = tmp_path / "state"
    policy = tmp_path / "policy.yaml"
    shutil.copyfile(REPO / "mlgov_assets" / "policies" / "default.yaml", policy)
    _point_at(Env(project=project, home=home, policy=policy), monkeypatch)
    return Env(project=project, home=home, policy=policy)


def _point_at(env: Env, monkeypatch) -> None:
    monkeypatch.setenv("MLGOV_HOME", str(env.home))
    monkeypatch.setenv("MLGOV_PROJECT_DIR", str(env.project))
    monkeypatch.setenv("MLGOV_POLICY", str(env.policy))
    monkeypatch.delenv("MLGOV_LANDING_DIR", raising=False)


FAST_PARAMS = {"max_iter": 60, "learning_rate": 0.15}
"""A quicker model that still clears the default policy floors (tests train many)."""


def run_path(
    env: Env,
    instance,
    *,
    params: dict | None = None,
    dataset: str | None = None,
    job: str = "adult__governed_training",
    run_config: dict | None = None,
):
    cfg = run_config or {"ops": {"challenger_model": {"config": params if params is not None else FAST_PARAMS}}}
    if dataset:
        cfg["ops"]["training_data"] = {"config": {"path": dataset}}
    return env.defs().resolve_job_def(job).execute_in_process(run_config=cfg, instance=instance, raise_on_error=False)


def check_results(result) -> dict[str, object]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


@dataclass
class TrainedWorld:
    """What a test sees after ``env`` + ``instance_for_test()`` + one ``run_path(env, instance)`` (the
    default CORE_ONLY policy, FAST_PARAMS, champion 1): ``env`` and ``instance_dir`` (the Dagster
    instance's directory, open it with ``instance_for_test(temp_dir=...)``) are a fresh copy per test,
    ``result`` is that first run's in-process result (read-only)."""

    env: Env
    instance_dir: Path
    result: object


def _forget_mlflow_stores(root: Path) -> None:
    """MLflow keeps its stores per store URI and their SQLAlchemy engines per database URI for the
    whole process. The trained world is restored at the same path, so an engine from the previous
    test would still hold the database file the restore replaced (SQLite: "attempt to write a
    readonly database"): drop the world's engines and the cached stores."""
    import sys

    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    for registry in (tracking_utils._tracking_store_registry, registry_utils._model_registry_store_registry):
        if registry is not None:
            registry._get_store_with_resolved_uri.cache_clear()
    for module in ("mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store"):
        store_cls = getattr(sys.modules.get(module), "SqlAlchemyStore", None)
        if store_cls is None:
            continue
        with store_cls._engine_map_lock:
            for uri in [u for u in store_cls._engine_map if str(root) in u]:
                store_cls._engine_map.pop(uri).dispose()


@dataclass
class _WorldTemplate:
    live: Path
    pristine: Path
    result: object


@pytest.fixture(scope="session")
def _trained_template(tmp_path_factory, project_template) -> _WorldTemplate:
    """The first governed-path run, done once per session (it is the costliest thing the Dagster
    suites do: ~45 runs, most starting with this same one). Built under ``live`` and copied to
    ``pristine``; each test gets ``live`` restored from ``pristine``, at the same absolute path, so
    every path the run recorded (MLflow artifact locations, the model's directory, the DVC cache,
    the IO manager's files, the instance's storage) stays true."""
    from dagster import instance_for_test

    root = tmp_path_factory.mktemp("trained")
    live, pristine = root / "live", root / "pristine"
    with pytest.MonkeyPatch.context() as mp:
        live.mkdir()
        env = _make_env(live, project_template, mp)
        env.use_policy(drop=CORE_ONLY)
        (live / "dagster").mkdir()
        saved = dict(os.environ)
        try:
            with instance_for_test(temp_dir=str(live / "dagster")) as instance:
                result = run_path(env, instance)
        finally:
            os.environ.clear()
            os.environ.update(saved)
    assert result.success, [(c.check_name, c.description) for c in result.get_asset_check_evaluations()]
    shutil.copytree(live, pristine, symlinks=True)
    return _WorldTemplate(live=live, pristine=pristine, result=result)


@pytest.fixture
def trained(_trained_template, monkeypatch) -> TrainedWorld:
    """A fresh copy of the session's trained world (see TrainedWorld); tests may change anything in it."""
    t = _trained_template
    shutil.rmtree(t.live, ignore_errors=True)
    shutil.copytree(t.pristine, t.live, symlinks=True)
    _forget_mlflow_stores(t.live)
    env = Env(project=t.live / "project", home=t.live / "state", policy=t.live / "policy.yaml")
    _point_at(env, monkeypatch)
    return TrainedWorld(env=env, instance_dir=t.live / "dagster", result=t.result)
