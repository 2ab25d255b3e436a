"""Where a model came from: git commit and dirty flag, code versions, environment."""

from __future__ import annotations

import ast
import contextlib
import functools
import getpass
import hashlib
import json
import os
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from mlgov_assets.core.integrity import atomic_write_bytes
from mlgov_assets.core.settings import PACKAGE_DIR

#: Who a pipeline acts as (``mlgov approve`` in CI, a training job); default: the OS user.
ACTOR_ENV = "MLGOV_ACTOR"


def identity() -> str:
    """The acting person or pipeline: ``$MLGOV_ACTOR``, else the OS user. Not authentication:
    Dagster OSS and the CLI trust the account they run under (see README, "Approval")."""
    return os.environ.get(ACTOR_ENV, "").strip()[:200] or getpass.getuser()


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
        h.update(_relative(path).encode())
        h.update(_normalised_ast_hash(path).encode())
    _save_disk_cache()
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class _ModuleFacts:
    normalised_hash: str  # sha256 of the syntax tree without docstrings
    imports: tuple[str, ...]  # dotted names this module imports (absolute; relative ones resolved)


def _normalised_ast_hash(path: Path) -> str:
    return _facts(path).normalised_hash


@functools.cache
def _facts(path: Path) -> _ModuleFacts:
    """Parse once per content: a cache keyed by the file's sha256 makes a warm code-server start cheap."""
    raw = path.read_bytes()
    key = hashlib.sha256(raw).hexdigest()
    cache = _disk_cache()
    _USED.add(key)
    if key in cache:
        hashed, imports = cache[key]
        return _ModuleFacts(hashed, tuple(imports))
    package = path.parent.relative_to(PACKAGE_DIR.parent).parts if PACKAGE_DIR in path.parents else ()
    tree = ast.parse(raw, filename=str(path))
    facts = _ModuleFacts(_strip_and_hash(tree), tuple(_import_names(tree, package)))
    cache[key] = (facts.normalised_hash, list(facts.imports))
    _DIRTY.append(key)
    return facts


def _strip_and_hash(tree: ast.Module) -> str:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            first = body[0] if body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def _import_names(tree: ast.Module, package: tuple[str, ...]) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            names += [module, *(f"{module}.{a.name}" for a in node.names)]
    return names


_CACHE_FILE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlgov" / "code-versions.json"


@functools.lru_cache(maxsize=1)
def _disk_cache() -> dict[str, tuple[str, list[str]]]:
    try:
        data = json.loads(_CACHE_FILE.read_text())
        return {k: (v[0], list(v[1])) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError, TypeError, IndexError, KeyError):
        return {}


_DIRTY: list[str] = []  # keys added to the disk cache since it was last written
_USED: set[str] = set()  # keys this process looked up
_CACHE_MAX = 2000  # past this many entries, only the ones this process used are kept


def _save_disk_cache() -> None:
    """Best effort: a read-only home only makes the next start slower (~0.2 s), never wrong."""
    if _DIRTY:
        cache = _disk_cache()
        if len(cache) > _CACHE_MAX:
            for stale in set(cache) - _USED:
                del cache[stale]
        with contextlib.suppress(OSError):
            atomic_write_bytes(_CACHE_FILE, json.dumps(cache).encode())
        _DIRTY.clear()


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
        todo.extend(_followed_imports(path))
    return seen


@functools.cache
def _relative(path: Path) -> str:
    """``path`` relative to the package, POSIX style (every stage's closure asks for the same files)."""
    return path.relative_to(PACKAGE_DIR).as_posix()


def _is_followed(path: Path) -> bool:
    rel = _relative(path)
    return not rel.startswith(("defs/", "commands/")) and rel not in {"definitions.py", "cli.py"}


@functools.cache
def _followed_imports(path: Path) -> tuple[Path, ...]:
    """The followed modules (:func:`_is_followed`) a module imports: once per file per process, although
    each stage's closure walks the shared core again."""
    return tuple(p for p in _imported_modules(path) if _is_followed(p))


def _imported_modules(path: Path) -> list[Path]:
    """Files of the mlgov modules a module imports (absolute or relative, at any depth)."""
    return [m for name in _facts(path).imports if (m := _module_file(name)) is not None]


@functools.cache
def _module_file(dotted: str) -> Path | None:
    """The file of an mlgov module (``None`` for any other name); plain string paths: this runs per import."""
    if dotted.split(".", 1)[0] != PACKAGE_DIR.name:
        return None
    base = os.path.join(str(PACKAGE_DIR.parent), *dotted.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            if os.path.islink(candidate):
                return Path(os.path.realpath(candidate))
            return Path(os.path.join(_real_dir(os.path.dirname(candidate)), os.path.basename(candidate)))
    return None


@functools.cache
def _real_dir(directory: str) -> str:
    """``realpath`` of a package folder, once per folder: the modules in it then need no ``lstat`` per
    path component (a module file that is itself a link is still resolved on its own)."""
    return os.path.realpath(directory)


def environment_info(project_dir: str | Path) -> dict[str, object]:
    lock = Path(project_dir) / "uv.lock"
    versions: dict[str, str | None] = {}
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
