"""A governed project: one declarative YAML spec of a dataset and how it is governed.

Validated as strictly as the policy: unknown keys, wrong types and contradictions are errors
naming the key path (``columns.age.min: …``). Everything mlgov needs to know about a team's data
comes from here; nothing dataset-specific lives in code.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlgov_assets.core.errors import ConfigError

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
#: ``package.module:function``: a dotted module path (importable from the project repository) and a name.
HOOK_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$", re.ASCII)


class ProjectError(ConfigError):
    """The project spec is malformed; the message names the file and the key path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Source(_Strict):
    """A DVC-tracked data file inside the project repository."""

    path: str = Field(description="path relative to the project repository")


class Split(_Strict):
    """A seeded, stratified holdout split of the training file (its row ids and hash are recorded)."""

    fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3
    seed: int = 0
    stratify: bool = True


class Format(_Strict):
    """How the files are written."""

    kind: Literal["csv", "parquet"] = "csv"
    delimiter: str = ","
    header: Literal["present", "absent", "auto"] = "present"
    encoding: str = "utf-8"
    comment_prefix: str | None = None
    missing_tokens: list[str] = Field(default_factory=list)
    #: label normalisation: trailing characters stripped from the target's values (Adult's ``>50K.``)
    label_strip_suffix: str = ""
    skip_initial_space: bool = False


class Data(_Strict):
    train: Source
    holdout: Source | Split
    format: Format = Field(default_factory=Format)


class Column(_Strict):
    """One column of the raw files: its type and what a valid value is."""

    type: Literal["integer", "number", "categorical"]
    min: float | None = None
    max: float | None = None
    min_exclusive: float | None = None
    categories: list[str | int] | None = None
    nullable: bool = False
    #: missing-value tokens allowed in this column (a subset of ``data.format.missing_tokens``)
    missing: bool = False
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Column:
        if self.type == "categorical" and not self.categories:
            raise ValueError("a categorical column lists its categories")
        if self.type != "categorical" and self.categories is not None:
            raise ValueError("categories are only for categorical columns")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        return self


class Target(_Strict):
    column: str
    favourable: str | int = Field(description="the label value that is the favourable outcome (selection)")


class Band(_Strict):
    """Derived groups of a numeric protected attribute, for fairness only (e.g. age bands)."""

    name: str
    edges: list[float] = Field(min_length=1, description="inner edges; bands are [-inf, e1), [e1, e2) …")
    labels: list[str] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if sorted(self.edges) != self.edges or len(set(self.edges)) != len(self.edges):
            raise ValueError("edges must be strictly increasing")
        if self.labels is not None and len(self.labels) != len(self.edges) + 1:
            raise ValueError(f"{len(self.edges) + 1} labels needed for {len(self.edges)} edges")
        return self


class Protected(_Strict):
    column: str
    bands: Band | None = None


#: Why a column is kept out of the model (recorded in the spec and on the model card).
ExclusionReason = Literal["identifier", "pii", "sampling_weight", "leakage", "duplicate", "other"]


class Exclusion(_Strict):
    column: str
    reason: ExclusionReason
    note: str = ""


class Model(_Strict):
    family: Literal["hist_gradient_boosting"] = "hist_gradient_boosting"


class Simulation(_Strict):
    """Which columns ``mlgov simulate`` shifts for a covariate-drift batch."""

    shift_columns: list[str] = Field(default_factory=list)


class Monitoring(_Strict):
    simulation: Simulation = Field(default_factory=Simulation)


class Hooks(_Strict):
    """Python functions in the team's repository for what the YAML cannot say (see ``hooks.py``).

    ``reader(path, project) -> DataFrame`` replaces the format-driven reader for the team's own
    files; ``features(raw, project) -> DataFrame`` supplies model columns after the built-in table.
    """

    reader: str | None = Field(default=None, description="package.module:function")
    features: str | None = Field(default=None, description="package.module:function")

    @field_validator("reader", "features")
    @classmethod
    def _dotted(cls, value: str | None) -> str | None:
        if value is not None and not HOOK_PATH.match(value):
            raise ValueError(f"{value!r} is not a hook path 'package.module:function'")
        return value

    def declared(self) -> dict[str, str]:
        """The hooks that are set, by key (``reader``, ``features``)."""
        return {k: v for k, v in (("reader", self.reader), ("features", self.features)) if v is not None}


class ProjectSpec(_Strict):
    """The whole spec. Column order is file order."""

    name: str
    title: str = ""
    data: Data
    columns: dict[str, Column]
    row_id: str | None = None
    target: Target
    protected: list[Protected] = Field(min_length=1)
    exclude: list[Exclusion] = Field(default_factory=list)
    model: Model = Field(default_factory=Model)
    policy: str = Field(description="the policy file, relative to the spec")
    registered_model: str | None = Field(default=None, description="MLflow registered model (default mlgov-<name>)")
    monitoring: Monitoring = Field(default_factory=Monitoring)
    hooks: Hooks = Field(default_factory=Hooks)

    @model_validator(mode="after")
    def _coherent(self) -> ProjectSpec:
        problems = _problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _problems(spec: ProjectSpec) -> list[str]:
    cols = spec.columns
    out: list[str] = []
    if not NAME.match(spec.name):
        out.append(f"name: {spec.name!r} must be lower-case letters, digits and _ (an asset-key prefix)")
    target = cols.get(spec.target.column)
    if target is None:
        out.append(f"target.column: {spec.target.column!r} is not a column")
    elif target.type != "categorical" or spec.target.favourable not in (target.categories or []):
        out.append(f"target.favourable: {spec.target.favourable!r} is not a category of {spec.target.column!r}")
    excluded = {e.column for e in spec.exclude}
    for i, p in enumerate(spec.protected):
        if p.column not in cols:
            out.append(f"protected[{i}].column: {p.column!r} is not a column")
        elif p.bands is not None and cols[p.column].type == "categorical":
            out.append(f"protected[{i}].bands: {p.column!r} is categorical; bands need a numeric column")
        if p.column in excluded:
            out.append(f"protected[{i}].column: {p.column!r} is also excluded (protected columns are kept)")
    for i, e in enumerate(spec.exclude):
        if e.column not in cols:
            out.append(f"exclude[{i}].column: {e.column!r} is not a column")
        if e.column == spec.target.column:
            out.append(f"exclude[{i}].column: {e.column!r} is the target")
    if spec.row_id is not None and spec.row_id not in cols:
        out.append(f"row_id: {spec.row_id!r} is not a column")
    for name in spec.monitoring.simulation.shift_columns:
        if name not in cols:
            out.append(f"monitoring.simulation.shift_columns: {name!r} is not a column")
    tokens = set(spec.data.format.missing_tokens)
    for name, col in cols.items():
        if col.missing and not tokens:
            out.append(f"columns.{name}.missing: data.format.missing_tokens is empty")
    return out


def parse_project(text: str, *, source: str = "<project>") -> ProjectSpec:
    """Parse and validate a spec; a problem is a :class:`ProjectError` naming ``source`` and the key path.

    Memoised on the exact text (the spec is frozen): a run's steps read the file on every use, so an
    edit applies at once, but the same bytes are parsed once per process (~10 ms each, ~40 a run)."""
    return _parse_project(text, source)


#: ``yaml.safe_load``'s loader, in C when PyYAML has libyaml: ~10x faster on a spec, which every code
#: location load parses once per project.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=16)
def _parse_project(text: str, source: str) -> ProjectSpec:
    try:
        raw = yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise ProjectError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ProjectError(f"{source}: a project spec is a mapping of keys")
    try:
        return ProjectSpec.model_validate(raw)
    except ValidationError as exc:
        raise ProjectError(f"{source}: " + "; ".join(_describe(e) for e in exc.errors())) from exc


def _describe(err: object) -> str:
    assert isinstance(err, dict)
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        msg = "unknown key"
    return f"{loc}: {msg}" if loc else msg


def load_project(path: str | Path) -> tuple[ProjectSpec, str]:
    """The spec at ``path`` and the sha256 of its bytes (recorded wherever the spec is used)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ProjectError(f"{p}: cannot read the project spec: {exc.strerror}") from exc
    return parse_project(data.decode("utf-8"), source=str(p)), hashlib.sha256(data).hexdigest()
