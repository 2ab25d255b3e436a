"""Python hooks named in a project spec (``hooks.reader``, ``hooks.features``): code in the team's
repository for what the YAML cannot say.

A hook is ``package.module:function``; the module must be a file inside the project repository,
so its source can be hashed (:func:`hooks_sha256`) into the training fingerprint, the version's
tags and the data/features code versions. Contracts:

- ``reader(path: Path, project: Project) -> pd.DataFrame``: the team's own file as raw strings,
  columns named as in the spec (the raw schema then validates it as usual);
- ``features(raw: pd.DataFrame, project: Project) -> pd.DataFrame``: model columns the spec
  declares, one row per raw row, put into the built-in feature table (the feature schema then
  validates the result).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlgov_assets.core.errors import ConfigError, MlgovError

if TYPE_CHECKING:
    import pandas as pd

    from mlgov_assets.core.project.spec import Hooks

HookKey = Literal["reader", "features"]


class HookError(ConfigError):
    """A hook cannot be found or used; the message names the hook key (``hooks.reader``) and its path."""


def module_file(key: str, dotted: str, repo: Path) -> Path:
    """The source file of the hook's module inside ``repo`` (``pkg/mod.py`` or ``pkg/mod/__init__.py``)."""
    module = dotted.partition(":")[0]
    base = repo.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise HookError(f"hooks.{key}: {dotted!r}: no module {module!r} in the project repository {repo}")


def hooks_sha256(hooks: Hooks, repo: Path) -> str:
    """sha256 over each hook's key, path and module source bytes, sorted by key; ``""`` without hooks."""
    declared = hooks.declared()
    if not declared:
        return ""
    h = hashlib.sha256()
    for key in sorted(declared):
        source = module_file(key, declared[key], repo).read_bytes()
        h.update(f"{key}={declared[key]}\n".encode())
        h.update(hashlib.sha256(source).hexdigest().encode())
    return h.hexdigest()


def hook_sources(hooks: Hooks, repo: Path) -> dict[str, str]:
    """Each hook module's source by its path in the repository (what a version records beside its spec,
    so the code that read or shaped its data can be read and re-run years later)."""
    sources = {}
    for key, dotted in sorted(hooks.declared().items()):
        path = module_file(key, dotted, repo)
        sources[path.relative_to(repo).as_posix()] = path.read_text(encoding="utf-8")
    return sources


def resolve_hook(key: HookKey, hooks: Hooks, repo: Path) -> Callable[..., Any] | None:
    """The function named by ``hooks.<key>``, imported from ``repo``; ``None`` when the hook is not set.

    The module is imported afresh (the file on disk now is the code that runs and is hashed) with
    ``repo`` first on ``sys.path`` for the import only. Raises :class:`HookError` when the module or
    function is missing, the import fails, the value is not callable, or the module's top-level
    package is an already imported module from elsewhere (a hook never shadows a library).
    """
    dotted = hooks.declared().get(key)
    if dotted is None:
        return None
    where = f"hooks.{key}: {dotted!r}"
    module_name, _, func_name = dotted.partition(":")
    path = module_file(key, dotted, repo)
    _forget(module_name.split(".")[0], repo, where)
    with _on_path(repo):
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # the team's module raised while importing: report it as theirs
            raise HookError(f"{where}: importing {path} failed: {type(exc).__name__}: {exc}") from exc
    func = getattr(module, func_name, None)
    if func is None:
        raise HookError(f"{where}: module {module_name!r} has no {func_name!r}")
    if not callable(func):
        raise HookError(f"{where}: {func_name!r} is a {type(func).__name__}, not a function")
    return func  # type: ignore[no-any-return]


def call_hook(key: HookKey, hook: Callable[..., Any], hooks: Hooks, *args: object) -> pd.DataFrame:
    """``hook(*args)``, which must return a DataFrame; a failure inside it is a :class:`HookError`
    naming the hook (mlgov's own errors pass through unchanged)."""
    import pandas as pd

    where = f"hooks.{key}: {hooks.declared().get(key)!r}"
    try:
        result = hook(*args)
    except MlgovError:
        raise
    except Exception as exc:  # the team's code failed: say whose, keep the cause chained
        raise HookError(f"{where} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(result, pd.DataFrame):
        raise HookError(f"{where} returned {type(result).__name__}, not a DataFrame")
    return result


#: Top-level packages imported as hooks in this process (safe to import again from another repository).
_IMPORTED: set[str] = set()


def _forget(top: str, repo: Path, where: str) -> None:
    """Drop earlier hook imports of the package so the current source in ``repo`` is what runs."""
    loaded = sys.modules.get(top)
    if loaded is not None and top not in _IMPORTED and not _inside(loaded, repo):
        raise HookError(f"{where}: {top!r} is already imported from outside the project repository")
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    _IMPORTED.add(top)


def _inside(module: object, repo: Path) -> bool:
    file = getattr(module, "__file__", None)
    if file is not None:
        return Path(file).resolve().is_relative_to(repo.resolve())
    # a namespace package (a folder without __init__.py): judged by where its portions are
    paths = [Path(p).resolve() for p in getattr(module, "__path__", [])]
    return bool(paths) and all(p.is_relative_to(repo.resolve()) for p in paths)


@contextlib.contextmanager
def _on_path(repo: Path) -> Iterator[None]:
    """``repo`` first on ``sys.path`` for the duration, removed again afterwards; no bytecode is
    written into the team's repository meanwhile."""
    entry, no_bytecode = str(repo), sys.dont_write_bytecode
    sys.path.insert(0, entry)
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = no_bytecode
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)
