"""Where a model came from: git commit and dirty flag, code versions, environment."""

from __future__ import annotations

import ast
import copy
import functools
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
    """A Dagster ``code_version`` for the modules that implement an asset (paths relative to the package).

    The hash covers each named module and every mlgov module it imports (core, resources …), at
    any depth and inside function bodies too, so nobody keeps a list of dependencies by hand. Each
    module is hashed as its normalised syntax tree: comments, docstrings and formatting do not make
    assets stale; a change of logic does.
    """
    files = _core_closure([(PACKAGE_DIR / rel).resolve() for rel in relative_paths])
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        h.update(_normalised_ast_hash(path).encode())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_bytes(), filename=str(path))


@functools.lru_cache(maxsize=None)
def _normalised_ast_hash(path: Path) -> str:
    """SHA-256 of the module's syntax tree without docstrings (comments never reach the tree)."""
    tree = copy.deepcopy(_parsed(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def _core_closure(roots: list[Path]) -> set[Path]:
    """The given modules plus every mlgov module reachable through their imports, except other
    Dagster stage modules (``defs/``) and the entry points: a stage is stale when its own logic changes."""
    seen: set[Path] = set()
    todo = list(roots)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo.extend(p for p in _imported_modules(path) if _is_followed(p))
    return seen


def _is_followed(path: Path) -> bool:
    rel = path.relative_to(PACKAGE_DIR).as_posix()
    return not rel.startswith(("defs/", "commands/")) and rel not in {"definitions.py", "cli.py"}


def _imported_modules(path: Path) -> list[Path]:
    """Files of the ``mlgov_assets`` modules a module imports (absolute or relative, at any depth)."""
    out: list[Path] = []
    package = path.parent.relative_to(PACKAGE_DIR.parent).parts
    for node in ast.walk(_parsed(path)):
        if isinstance(node, ast.Import):
            out += [m for a in node.names if (m := _module_file(a.name.split("."))) is not None]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            parts = base + (node.module.split(".") if node.module else [])
            if (mod := _module_file(parts)) is not None:
                out.append(mod)
            out += [m for a in node.names if (m := _module_file([*parts, a.name])) is not None]
    return out


def _module_file(parts: list[str]) -> Path | None:
    if not parts or parts[0] != PACKAGE_DIR.name:
        return None
    base = PACKAGE_DIR.parent.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.resolve()
    return None


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
