"""Where mlgov keeps things: one state directory, relocatable with ``MLGOV_HOME``.

Everything persistent — Dagster home and storage, the MLflow store and artifacts, the decision
log, logs, asset values, generated datasets, the landing folder when relocated — lives under
:attr:`Settings.home`.
The default is ``<project>/.mlgov`` (gitignored), never Dagster's temporary home, which
``dagster dev`` deletes on exit. Tests and CI point ``MLGOV_HOME`` at a temporary directory and get
a fully isolated instance.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

#: The repository root (git + DVC) when mlgov runs from its checkout.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
DEFAULT_PROJECT_DIR = PACKAGE_DIR.parent
DEFAULT_POLICY = PACKAGE_DIR / "policies" / "default.yaml"
#: The governed project when none is named: the shipped UCI Adult demo.
DEFAULT_PROJECT_SPEC = PACKAGE_DIR / "projects" / "adult.yaml"
DEFAULT_MODEL_NAME = "mlgov-adult-income"
#: Where `mlgov ui` / `make mlflow-ui` serve MLflow's UI; links in asset metadata and audit bundles point here.
DEFAULT_MLFLOW_UI_URL = "http://127.0.0.1:5000"

#: Telemetry and analytics off for every tool mlgov drives (secure, offline-friendly defaults).
QUIET_ENV = {
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "DAGSTER_DISABLE_TELEMETRY": "1",
    "GIT_PYTHON_REFRESH": "quiet",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


#: ``MLGOV_PROFILE``: ``embedded`` (default: SQLite Dagster, SQLite MLflow, file locks, all under
#: ``MLGOV_HOME``) or ``prod`` (PostgreSQL Dagster storage, an MLflow tracking server, database locks).
PROFILE_ENV = "MLGOV_PROFILE"
PROFILES = ("embedded", "prod")


def current_profile() -> str:
    """The profile ``MLGOV_PROFILE`` selects (``embedded`` when unset); anything else is refused."""
    raw = os.environ.get(PROFILE_ENV, "").strip() or "embedded"
    if raw not in PROFILES:
        from mlgov_assets.core.errors import ConfigError

        raise ConfigError(f"{PROFILE_ENV} must be one of {', '.join(PROFILES)}, got {raw[:40]!r}")
    return raw


@dataclass(frozen=True)
class Services:
    """Where the production profile's services are (``MLGOV_PG_*``, ``MLGOV_*_DB``,
    ``MLGOV_MLFLOW_TRACKING_URI``, ``MLGOV_DAGSTER_PORT``, ``MLGOV_CODE_SERVER_*``, ``MLGOV_CELERY_*``);
    loopback defaults for one machine."""

    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_user: str = "postgres"
    pg_password: str = ""
    dagster_db: str = "mlgov_dagster"
    mlflow_db: str = "mlgov_mlflow"
    #: the database whose advisory locks serialize alias moves and decision-log appends (every host
    #: of one deployment must name the same one): the Dagster database unless ``MLGOV_LOCK_DB``
    lock_db: str = "mlgov_dagster"
    tracking_uri: str = "http://127.0.0.1:5000"
    dagster_port: int = 3000
    #: the code server (``dagster code-server start``) the prod workspace loads: ``MLGOV_CODE_SERVER_HOST``/``_PORT``
    code_server_host: str = "127.0.0.1"
    code_server_port: int = 4266
    #: the Celery executor's broker and result backend (``MLGOV_CELERY_BROKER``/``_BACKEND``): RabbitMQ
    #: as Dagster's Helm chart uses (``redis://host:6379/N`` works too); ``rpc://`` results ride the broker
    celery_broker: str = "amqp://guest:guest@127.0.0.1:5672//"
    celery_backend: str = "rpc://"

    @classmethod
    def from_env(cls) -> Services:
        env = os.environ
        dagster_db = env.get("MLGOV_DAGSTER_DB") or cls.dagster_db
        return cls(
            pg_host=env.get("MLGOV_PG_HOST") or cls.pg_host,
            pg_port=int(env.get("MLGOV_PG_PORT") or cls.pg_port),
            pg_user=env.get("MLGOV_PG_USER") or cls.pg_user,
            pg_password=env.get("MLGOV_PG_PASSWORD", cls.pg_password),
            dagster_db=dagster_db,
            mlflow_db=env.get("MLGOV_MLFLOW_DB") or cls.mlflow_db,
            lock_db=env.get("MLGOV_LOCK_DB") or dagster_db,
            tracking_uri=env.get("MLGOV_MLFLOW_TRACKING_URI") or cls.tracking_uri,
            dagster_port=int(env.get("MLGOV_DAGSTER_PORT") or cls.dagster_port),
            code_server_host=env.get("MLGOV_CODE_SERVER_HOST") or cls.code_server_host,
            code_server_port=int(env.get("MLGOV_CODE_SERVER_PORT") or cls.code_server_port),
            celery_broker=env.get("MLGOV_CELERY_BROKER") or cls.celery_broker,
            celery_backend=env.get("MLGOV_CELERY_BACKEND") or cls.celery_backend,
        )

    def sqlalchemy_url(self, db: str) -> str:
        """``postgresql+psycopg2://`` (SQLAlchemy 2.1 maps bare ``postgresql://`` to psycopg3, not shipped)."""
        from urllib.parse import quote

        auth = quote(self.pg_user, safe="") + (":" + quote(self.pg_password, safe="") if self.pg_password else "")
        return f"postgresql+psycopg2://{auth}@{self.pg_host}:{self.pg_port}/{quote(db, safe='')}"

    def connect_kwargs(self, db: str) -> dict[str, str | int]:
        """psycopg2.connect keyword arguments for ``db``; TCP keepalives so a vanished peer is noticed."""
        return {
            "host": self.pg_host,
            "port": self.pg_port,
            "user": self.pg_user,
            "password": self.pg_password,
            "dbname": db,
            "connect_timeout": 10,
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        }

    @property
    def mlflow_port(self) -> int:
        return urlparse(self.tracking_uri).port or 80


def apply_quiet_env() -> None:
    """Set :data:`QUIET_ENV` where the environment does not say otherwise."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


@dataclass(frozen=True)
class Settings:
    """Resolved locations. Build with :func:`get_settings` so environment overrides apply."""

    home: Path
    project_dir: Path
    policy_path: Path
    model_name: str
    landing_dir: Path
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI_URL
    project_spec: Path = DEFAULT_PROJECT_SPEC
    #: The code location's state directory: the one Dagster instance and asset store every project of
    #: the location shares (asset keys are prefixed per project). ``home`` is this project's own part
    #: of it (the same directory for the default project, ``projects/<name>/`` below it for the others).
    location_home: Path | None = None
    #: The project's name (its spec's ``name``): the prefix of its asset keys, jobs and sensors.
    project_name: str = "adult"
    #: ``MLGOV_GENERATED_DIR``; None: :attr:`generated_dir` is ``<home>/generated``.
    generated_override: Path | None = None
    #: ``MLGOV_PROFILE`` (see :func:`current_profile`); ``services`` is set for ``prod`` only.
    profile: str = "embedded"
    services: Services | None = None

    @property
    def is_prod(self) -> bool:
        return self.services is not None

    @property
    def prod_dir(self) -> Path:
        """Pids and logs of the production stack (``mlgov prod up``) on this machine."""
        return self.location / "prod"

    def mlflow_model_version_url(self, model_name: str, version: int | str) -> str:
        """The MLflow UI page of one registered model version."""
        return f"{self.mlflow_ui_url.rstrip('/')}/#/models/{model_name}/versions/{version}"

    @property
    def mlflow_ui_port(self) -> int:
        """The port of :attr:`mlflow_ui_url` (where `mlgov ui` starts MLflow's UI)."""
        url = urlparse(self.mlflow_ui_url)
        return url.port or (443 if url.scheme == "https" else 80)

    @property
    def location(self) -> Path:
        """The code location's state directory (see :attr:`location_home`)."""
        return self.location_home or self.home

    @property
    def dagster_home(self) -> Path:
        return self.location / "dagster"

    @property
    def mlflow_dir(self) -> Path:
        """The MLflow store every project of the location shares (one registered model per project, so
        one MLflow UI shows them all) — except a project that already had its own store before projects
        shared a code location, which keeps it (``mlgov status`` says so)."""
        own = self.home / "mlflow"
        if self.home != self.location and (own / "mlflow.db").exists():
            return own
        return self.location / "mlflow"

    @property
    def tracking_uri(self) -> str:
        """The embedded SQLite store, or (prod) the MLflow tracking server: clients hold only this."""
        if self.services is not None:
            return self.services.tracking_uri
        return f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        """The embedded store's artifact directory (prod: the server's ``--artifacts-destination``)."""
        return self.mlflow_dir / "artifacts"

    def artifact_location(self, sub: str = "") -> str | None:
        """Where a new experiment keeps its artifacts: a ``file://`` URI (embedded), or None (prod: the
        server decides, ``mlflow-artifacts:/``, so clients never need the artifact directory)."""
        if self.services is not None:
            return None
        return (self.artifact_root / sub if sub else self.artifact_root).as_uri()

    @property
    def assets_dir(self) -> Path:
        """Asset values written by mlgov's IO manager (Parquet/JSON, never pickle), shared by the
        location's projects: their keys (hence their files) are prefixed by the project name."""
        return self.location / "assets"

    @property
    def decision_log(self) -> Path:
        return self.home / "audit" / "decisions.jsonl"

    @property
    def lock_dir(self) -> Path:
        return self.home / "locks"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def data_dir(self) -> Path:
        return self.project_dir / "data"

    @property
    def generated_dir(self) -> Path:
        """Datasets mlgov generates (retraining's training sets) and their DVC cache: a DVC repository
        of its own (no git), under the state directory so runs never write into the checkout."""
        return self.generated_override or self.home / "generated"

    @property
    def dvc_site_cache(self) -> Path:
        return self.home / "dvc-site-cache"

    def ensure(self) -> Settings:
        """Create every state directory (idempotent); returns self."""
        for d in (
            self.home,
            self.dagster_home,
            self.mlflow_dir,
            self.artifact_root,
            self.assets_dir,
            self.decision_log.parent,
            self.lock_dir,
            self.logs_dir,
            self.landing_dir,
        ):
            d.mkdir(parents=True, exist_ok=True)
        return self


def get_settings(
    home: str | os.PathLike[str] | None = None,
    project_dir: str | os.PathLike[str] | None = None,
    policy_path: str | os.PathLike[str] | None = None,
    model_name: str | None = None,
    landing_dir: str | os.PathLike[str] | None = None,
    project_spec: str | os.PathLike[str] | None = None,
) -> Settings:
    """Explicit arguments win, then ``MLGOV_*`` environment variables, then the project spec
    (``MLGOV_PROJECT_SPEC``, default the Adult demo: its policy and registered model name).

    ``MLGOV_POLICY``, ``MLGOV_MODEL_NAME`` and ``MLGOV_LANDING_DIR`` override the *selected* project
    (``MLGOV_PROJECT_SPEC`` or the default) only: the other projects of a code location keep what their
    own specs declare."""
    profile = current_profile()
    project = Path(project_dir or os.environ.get("MLGOV_PROJECT_DIR") or DEFAULT_PROJECT_DIR).resolve()
    env_home = os.environ.get("MLGOV_HOME")
    selected = Path(os.environ.get("MLGOV_PROJECT_SPEC") or DEFAULT_PROJECT_SPEC).resolve()
    spec = Path(project_spec).resolve() if project_spec else selected
    env = os.environ if spec == selected else {}
    declared_policy, declared_model, name = _declared(spec)
    # the default project keeps the top of the state directory (existing homes keep working); every
    # other project gets its own, so projects never share asset values, runs, stores or batches
    own = () if spec == DEFAULT_PROJECT_SPEC.resolve() else ("projects", name)
    base = Path(home or env_home or project / ".mlgov").resolve()
    # idempotent: a project's own home passed back in (get_settings(home=s.home)) is not nested again
    if own and base.parts[-2:] == own:
        base = base.parents[1]
    home_path = base.joinpath(*own)
    if landing_dir or env.get("MLGOV_LANDING_DIR"):
        landing = Path(landing_dir or env["MLGOV_LANDING_DIR"])
    elif home or env_home:
        # a relocated home takes the landing folder with it, so instances never share batches
        landing = home_path / "incoming"
    else:
        landing = project.joinpath("data", "incoming", *own[1:])
    services = Services.from_env() if profile == "prod" else None
    ui_default = DEFAULT_MLFLOW_UI_URL
    return Settings(
        home=home_path,
        project_dir=project,
        policy_path=Path(policy_path or env.get("MLGOV_POLICY") or declared_policy).resolve(),
        model_name=model_name or env.get("MLGOV_MODEL_NAME") or declared_model,
        landing_dir=landing.resolve(),
        mlflow_ui_url=os.environ.get("MLGOV_MLFLOW_UI_URL") or (services.tracking_uri if services else ui_default),
        project_spec=spec,
        location_home=base,
        project_name=name,
        generated_override=Path(env["MLGOV_GENERATED_DIR"]).resolve() if env.get("MLGOV_GENERATED_DIR") else None,
        profile=profile,
        services=services,
    )


def _declared(spec: Path) -> tuple[Path, str, str]:
    """The policy, registered model and name a project spec declares (read per change of the file)."""
    st = spec.stat() if spec.exists() else None
    return _declared_cached(spec, st.st_mtime_ns if st else 0, st.st_size if st else 0)


@functools.lru_cache(maxsize=32)
def _declared_cached(spec: Path, mtime_ns: int, size: int) -> tuple[Path, str, str]:
    from mlgov_assets.core.project.spec import load_project

    if not size and not spec.exists():  # reported by whoever opens the project; settings stay usable
        return DEFAULT_POLICY, DEFAULT_MODEL_NAME, spec.stem
    parsed, _ = load_project(spec)
    model = parsed.registered_model or f"mlgov-{parsed.name}"
    return (spec.parent / parsed.policy).resolve(), model, parsed.name
