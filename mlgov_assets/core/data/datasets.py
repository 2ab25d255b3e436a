"""Datasets content-addressed by DVC.

Every dataset a model is trained on is in the DVC cache under the md5 DVC itself computes (for a
plain file, the hashlib md5 of its bytes), and that md5 is the Dagster ``DataVersion`` of the
training data. The fast path reads only the ``.dvc`` file and hashes the bytes (no DVC import,
~10 ms for Adult); DVC runs (``Repo.add``) only when the bytes changed or are not yet cached.

Two DVC repositories hold them: the project (its shipped data, git-tracked ``.dvc`` files) and
the generated-data directory (``Settings.generated_dir``, under the state directory, a DVC
repository without git) for the datasets mlgov writes itself. A generated dataset is recorded as
``data/generated/<file>`` (:data:`GENERATED_PREFIX`, its logical path); :func:`dataset_location`
finds its bytes, :func:`dataset_caches` lists both caches for readers that go by md5.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import yaml

from mlgov_assets.core.errors import InputError, Refusal
from mlgov_assets.core.integrity import dvc_cache_path, file_lock, md5_file, verify_dvc_cached

if TYPE_CHECKING:
    from mlgov_assets.core.settings import Settings

#: The logical folder of datasets mlgov generates: recorded paths say ``data/generated/<file>``; the
#: bytes live in ``Settings.generated_dir`` (never in the checkout).
GENERATED_PREFIX = "data/generated/"


class DatasetError(InputError):
    """A dataset file is missing, outside the DVC repository, or DVC disagrees with its bytes."""


class TrackedDataChanged(Refusal):
    """A DVC-tracked file's bytes differ from the md5 its ``.dvc`` file records: refused until the
    user says the change is meant (``mlgov data add`` / ``mlgov train --accept-data-change``)."""

    def __init__(self, path: Path, shown: str, recorded: str, current: str):
        super().__init__(
            f"{shown}: its bytes changed since {shown}.dvc recorded them (recorded md5 {recorded}, "
            f"current md5 {current}); to train on the changed file run `mlgov train --accept-data-change` "
            f"or `mlgov data add {shown}` (rewrites {shown}.dvc: commit it); to restore the recorded "
            "bytes run `mlgov data pull --force`"
        )
        self.path, self.recorded, self.current = path, recorded, current


@dataclass(frozen=True)
class TrackedDataset:
    """A dataset file at bytes DVC tracks and caches (``md5`` is DVC's md5 of those bytes)."""

    path: Path
    md5: str
    size: int
    dvc_file: Path
    cache_object: Path
    added_now: bool
    source: str | None = None  # the recorded (logical) path when the file lives outside the project

    def relative_to(self, project_dir: Path) -> str:
        """The file's path inside the project, as recorded on model versions."""
        return self.source if self.source is not None else str(self.path.relative_to(project_dir))

    def shown_dvc_file(self, project_dir: Path) -> str:
        """The ``.dvc`` file, relative to the project when it is inside it."""
        inside = Path(project_dir).resolve() in self.dvc_file.parents
        return str(self.dvc_file.relative_to(Path(project_dir).resolve()) if inside else self.dvc_file)


def is_generated(path: str | Path) -> bool:
    """A recorded path that names a generated dataset (``data/generated/<file>``)."""
    return not Path(path).is_absolute() and PurePosixPath(path).as_posix().startswith(GENERATED_PREFIX)


def dataset_location(project_dir: Path, path: str | Path, generated_dir: Path | None) -> tuple[Path, Path]:
    """(DVC repository root, file) of a dataset as recorded (relative to the project). A generated
    dataset is looked for in ``generated_dir``; one an older mlgov wrote into the checkout is still
    found there."""
    project_dir = Path(project_dir).resolve()
    if generated_dir is not None and is_generated(path):
        name = Path(path).as_posix()[len(GENERATED_PREFIX) :]
        new, legacy = Path(generated_dir).resolve() / name, project_dir / Path(path)
        if not new.exists() and legacy.exists():
            return project_dir, legacy
        return Path(generated_dir).resolve(), new
    file = Path(path) if Path(path).is_absolute() else project_dir / path
    gen = Path(generated_dir).resolve() if generated_dir is not None else None
    if gen is not None and gen in file.resolve().parents:
        return gen, file.resolve()
    return project_dir, file


def dataset_caches(settings: Settings) -> list[Path]:
    """Every DVC cache a recorded md5 may be in: the project's, then the generated datasets'."""
    return [cache_dir(Path(settings.project_dir)), cache_dir(settings.generated_dir)]


def _init_generated_repo(root: Path, site_cache: Path | None) -> None:
    """``root`` as a DVC repository without git (``dvc init --no-scm``), once."""
    if (root / ".dvc").is_dir():
        return
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / ".init.lock"):
        if (root / ".dvc").is_dir():
            return
        _dvc_env(site_cache)
        from dvc.repo import Repo

        Repo.init(str(root), no_scm=True).close()


def ensure_dataset(settings: Settings, path: str | Path, *, accept_change: bool = False) -> TrackedDataset:
    """:func:`ensure_tracked` for a dataset as recorded: the project's files in the project's DVC
    repository, generated ones in the generated-data repository (created on first use)."""
    root, file = dataset_location(Path(settings.project_dir), path, settings.generated_dir)
    site_cache = settings.dvc_site_cache
    if root == settings.generated_dir.resolve():
        _init_generated_repo(root, site_cache)
        tracked = ensure_tracked(root, file, site_cache=site_cache, accept_change=accept_change)
        return replace(tracked, source=GENERATED_PREFIX + file.relative_to(root).as_posix())
    return ensure_tracked(root, file, site_cache=site_cache, accept_change=accept_change)


def _dvc_env(site_cache: Path | None) -> None:
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    if site_cache is not None:
        # DVC keeps state and locks in a system temp folder unless told otherwise (stack notes)
        site_cache.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("DVC_SITE_CACHE_DIR", str(site_cache))


def cache_dir(repo_root: Path) -> Path:
    """The repo's DVC cache root: ``cache.dir`` from ``.dvc/config(.local)`` or ``.dvc/cache``."""
    cfg_dir = repo_root / ".dvc"
    for name in ("config.local", "config"):
        cfg = cfg_dir / name
        if cfg.exists():
            section = None
            for line in cfg.read_text().splitlines():
                line = line.strip()
                if line.startswith("["):
                    section = line.strip("[]'\" ")
                elif section == "cache" and line.replace(" ", "").startswith("dir="):
                    value = line.split("=", 1)[1].strip()
                    return (cfg_dir / value).resolve()
    return cfg_dir / "cache"


def recorded_md5(path: Path) -> str | None:
    """The md5 the ``.dvc`` file beside ``path`` records (None when untracked)."""
    dvc_file = path.with_name(path.name + ".dvc")
    if not dvc_file.exists():
        return None
    outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs") or []
    md5 = outs[0].get("md5") if outs else None
    return str(md5) if md5 is not None else None


def ensure_tracked(
    repo_root: str | Path, path: str | Path, *, site_cache: Path | None = None, accept_change: bool = False
) -> TrackedDataset:
    """Make sure ``path`` (inside the DVC repo ``repo_root``) is DVC-tracked at its current bytes
    and that those bytes are in the DVC cache; return the md5.

    A file DVC already tracks whose bytes changed is refused (:class:`TrackedDataChanged`: its
    ``.dvc`` file is version-controlled and is rewritten only when ``accept_change`` says the
    change is meant). An untracked file is added."""
    root = Path(repo_root).resolve()
    abs_path = (root / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
    if not abs_path.is_file():
        raise DatasetError(f"{abs_path}: dataset file not found (on a fresh clone run `make data` / `mlgov data pull`)")
    if root not in abs_path.parents:
        raise DatasetError(f"{abs_path}: must be inside the DVC repository {root}")
    if not (root / ".dvc").is_dir():
        raise DatasetError(f"{root}: not a DVC repository (no .dvc/ folder)")
    md5 = md5_file(abs_path)
    cache = cache_dir(root)
    added = False
    recorded = recorded_md5(abs_path)
    if recorded is not None and recorded != md5 and not accept_change:
        raise TrackedDataChanged(abs_path, str(abs_path.relative_to(root)), recorded, md5)
    if recorded != md5 or not verify_dvc_cached(cache, md5)[0]:
        _dvc_env(site_cache)
        from dvc.repo import Repo

        with Repo(str(root)) as repo:
            repo.add(str(abs_path))  # absolute: Repo.add resolves relative paths against the CWD
        added = True
        if recorded_md5(abs_path) != md5:
            raise DatasetError(f"{abs_path}: DVC recorded {recorded_md5(abs_path)}, bytes hash to {md5}")
    return TrackedDataset(
        path=abs_path,
        md5=md5,
        size=abs_path.stat().st_size,
        dvc_file=abs_path.with_name(abs_path.name + ".dvc"),
        cache_object=dvc_cache_path(cache, md5),
        added_now=added,
    )


def pull(
    repo_root: str | Path, targets: list[str] | None = None, *, site_cache: Path | None = None, force: bool = False
) -> list[str]:
    """Materialize DVC-tracked files from the cache or the default remote (the in-repo
    ``data/dvc-store`` that ships the starting data, so a fresh clone needs no network). A file whose
    bytes changed is overwritten with the recorded ones only with ``force``."""
    root = Path(repo_root).resolve()
    missing = []
    for dvc_file in sorted((root / "data").glob("*.dvc")):
        data_file = dvc_file.with_suffix("")
        if targets and data_file.name not in targets:
            continue
        if not data_file.exists() or md5_file(data_file) != recorded_md5(data_file):
            missing.append(str(dvc_file))
    if missing:
        _dvc_env(site_cache)
        from dvc.repo import Repo

        with Repo(str(root)) as repo:
            repo.pull(targets=missing, force=force)
    return missing
