"""A loaded project: its spec plus everything derived from it (model inputs, sensitive groups, paths).

Derived facts are computed here once, so readers, schemas, features, fairness and monitoring all
agree on which columns are model inputs and which are protected.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from mlgov_assets.core.project.hooks import hook_sources, hooks_sha256
from mlgov_assets.core.project.spec import ProjectSpec, Source, load_project

#: The modelling table's target column (1 = the favourable outcome).
TARGET = "label"
#: What a missing category becomes in the modelling table.
UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Project:
    """A project spec loaded from ``spec_path`` (identified by its sha256), data under ``repo``."""

    spec: ProjectSpec
    sha256: str
    spec_path: Path
    repo: Path

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def columns(self) -> list[str]:
        return list(self.spec.columns)

    @property
    def label(self) -> str:
        return self.spec.target.column

    @property
    def favourable(self) -> str:
        return str(self.spec.target.favourable)

    @property
    def labels(self) -> list[str]:
        return [str(c) for c in self.spec.columns[self.label].categories or []]

    @property
    def missing_tokens(self) -> list[str]:
        return list(self.spec.data.format.missing_tokens)

    @property
    def protected(self) -> list[str]:
        """Protected columns as they are in the data (carried in the modelling table, never inputs)."""
        return [p.column for p in self.spec.protected]

    @property
    def sensitive(self) -> list[str]:
        """Columns fairness is judged on: protected categorical columns and derived bands."""
        out = []
        for p in self.spec.protected:
            out.append(p.bands.name if p.bands is not None else p.column)
        return out

    @functools.cached_property
    def _not_inputs(self) -> set[str]:
        return {self.label, *self.protected, *(e.column for e in self.spec.exclude)} | (
            {self.spec.row_id} if self.spec.row_id else set()
        )

    @property
    def model_numeric(self) -> list[str]:
        return [c for c, col in self.spec.columns.items() if col.type != "categorical" and c not in self._not_inputs]

    @property
    def model_categorical(self) -> list[str]:
        return [c for c, col in self.spec.columns.items() if col.type == "categorical" and c not in self._not_inputs]

    @property
    def model_features(self) -> list[str]:
        return self.model_numeric + self.model_categorical

    @property
    def categorical(self) -> list[str]:
        return [c for c, col in self.spec.columns.items() if col.type == "categorical"]

    @property
    def numeric(self) -> list[str]:
        return [c for c, col in self.spec.columns.items() if col.type != "categorical"]

    @property
    def train_file(self) -> str:
        """The training file, relative to the repository."""
        return self.spec.data.train.path

    @property
    def holdout_file(self) -> str | None:
        """The holdout file, relative to the repository; ``None`` when the holdout is a split."""
        holdout = self.spec.data.holdout
        return holdout.path if isinstance(holdout, Source) else None

    @property
    def policy_path(self) -> Path:
        return (self.spec_path.parent / self.spec.policy).resolve()

    def hooks_sha256(self) -> str:
        """sha256 of the spec's Python hooks (their module sources, by key); ``""`` when it has none.

        Read on every call, like the spec: an edited hook is a different code version and fingerprint.
        """
        return hooks_sha256(self.spec.hooks, self.repo)

    def hook_sources(self) -> dict[str, str]:
        """The hooks' module sources by repository path (``{}`` without hooks)."""
        return hook_sources(self.spec.hooks, self.repo)


def open_project(spec_path: str | Path, repo: str | Path) -> Project:
    """Load the spec at ``spec_path`` for the repository ``repo``."""
    spec, sha = load_project(spec_path)
    return Project(spec=spec, sha256=sha, spec_path=Path(spec_path).resolve(), repo=Path(repo).resolve())
