"""Which projects exist: specs in ``<repo>/projects/`` (a team's own, e.g. from ``mlgov init``) and the
ones mlgov ships (``mlgov_assets/projects/``). ``--project NAME`` resolves here."""

from __future__ import annotations

from pathlib import Path

from mlgov_assets.core.errors import ConfigError
from mlgov_assets.core.settings import PACKAGE_DIR

SHIPPED = PACKAGE_DIR / "projects"
TEAM_DIR = "projects"


def spec_dirs(repo: Path) -> list[Path]:
    """Where specs are looked up, first match wins: the team's folder, then the shipped one."""
    return [repo / TEAM_DIR, SHIPPED]


def known_projects(repo: Path) -> dict[str, Path]:
    """Every project spec by name (a ``NAME.yaml`` beside which no ``.policy`` suffix is used)."""
    found: dict[str, Path] = {}
    for folder in spec_dirs(repo):
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                if not path.name.endswith(".policy.yaml"):
                    found.setdefault(path.stem, path.resolve())
    return found


def resolve_project(name_or_path: str, repo: Path) -> Path:
    """A spec file for ``--project``: an existing YAML path, or the name of a known project."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path.resolve()
    known = known_projects(repo)
    if name_or_path in known:
        return known[name_or_path]
    where = ", ".join(str(d) for d in spec_dirs(repo))
    raise ConfigError(f"--project {name_or_path!r}: no such project (known: {sorted(known)}; looked in {where})")
