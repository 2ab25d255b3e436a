"""The MLflow store under the registry: seeding the embedded SQLite store, and artifact locations
(a directory here, embedded; the tracking server's ``mlflow-artifacts:/`` in the prod profile)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlgov_assets.core.integrity import file_lock

__all__ = ["artifact_tree", "is_local_location", "seed_store", "uri_to_path"]


def uri_to_path(uri: str) -> Path:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme in ("file", "") else Path(uri)


def is_local_location(location: str) -> bool:
    """Whether an artifact location is a directory on this machine (embedded store) rather than a
    server's (``mlflow-artifacts:/``, ``s3://``, ``http(s)://`` in the prod profile)."""
    return urlparse(location).scheme in ("file", "")


@contextlib.contextmanager
def artifact_tree(location: str, tracking_uri: str | None = None) -> Iterator[Path]:
    """The artifact directory at ``location`` as local files: the directory itself (embedded), or a
    private temporary download from the tracking server (prod), removed after the block. Whatever is
    hashed, verified or loaded is what the block sees."""
    if is_local_location(location):
        yield uri_to_path(location)
        return
    import mlflow

    from mlgov_assets.core.settings import Services

    uri = tracking_uri or Services.from_env().tracking_uri
    with tempfile.TemporaryDirectory(prefix="mlgov-artifacts-") as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=tmp, tracking_uri=uri)
        yield Path(local)


def template_path() -> Path:
    from importlib.metadata import version

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlgov"
    return cache / f"mlflow-{version('mlflow')}-empty.db"


def seed_store(db: Path) -> None:
    """Create a new MLflow SQLite store by copying an empty, fully migrated one.

    A fresh MLflow store runs every alembic migration (~3-5 s here), paid by every new
    ``MLGOV_HOME``: each test, each CI pipeline, each second instance. The template is made once
    per MLflow version by MLflow itself (same migrations, in a temp dir), kept in the user's cache
    (it holds no data: an empty schema), and copied; MLflow re-verifies the schema revision on
    open, so a mismatched template can only fail loudly, never silently."""
    if db.exists():
        return
    template = template_path()
    if not template.exists():
        template.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(template.with_suffix(".lock")):
            if not template.exists():
                import mlflow

                with tempfile.TemporaryDirectory(dir=template.parent) as tmp:
                    uri = f"sqlite:///{Path(tmp) / 'empty.db'}"
                    mlflow.MlflowClient(tracking_uri=uri).search_experiments()
                    os.replace(Path(tmp) / "empty.db", template)
    db.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_db = tempfile.mkstemp(dir=db.parent, prefix=".mlflow.db.")
    os.close(fd)
    shutil.copyfile(template, tmp_db)
    os.replace(tmp_db, db)
