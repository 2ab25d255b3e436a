"""Where a model came from: git commit and dirty flag, code versions, environment."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from mlgov_assets.core.settings import PACKAGE_DIR

KEY_PACKAGES = [
    "dagster",
    "mlflow",
    "dvc",
    "pandera",
    "scikit-learn",
    "pandas",
    "numpy",
    "shap",
    "fairlearn",
    "evidently",
]


def git_info(repo: str | Path) -> dict[str, object]:
    """Commit of ``repo`` and whether the work tree differs from it (untracked files count:
    an uncommitted new module can change a model as much as an edited one). Datasets that
    retraining generates under ``data/generated/`` do not: they are content-addressed by DVC
    and their md5 is recorded on the model itself."""

    def run(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        commit = run("rev-parse", "HEAD")
    except (subprocess.CalledProcessError, FileNotFoundError, subprocess.TimeoutExpired):
        return {"commit": "unknown", "dirty": True}
    status = run("status", "--porcelain", "--", ".", ":(exclude)data/generated")
    return {"commit": commit, "dirty": bool(status)}


def source_version(*relative_paths: str) -> str:
    """A Dagster ``code_version`` from the bytes of the modules that implement an asset: editing
    the logic marks the asset (and everything downstream) stale; editing unrelated code does not."""
    h = hashlib.sha256()
    for rel in sorted(relative_paths):
        h.update(rel.encode())
        h.update((PACKAGE_DIR / rel).read_bytes())
    return h.hexdigest()[:16]


def environment_info(project_dir: str | Path) -> dict[str, object]:
    lock = Path(project_dir) / "uv.lock"
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": platform.python_version(),
        "uv_lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else None,
        "packages": versions,
    }
