"""The evidence bundle: the schema of everything a model card states, each claim with its source.

The bundle is the evidence (content-addressed by :func:`bundle_digest`, cited in the decision log
and tagged on the MLflow model version); the card is only a view of it. Every section carries a
``source`` naming the artifact the claim came from and that artifact's sha256. The models below
are the one definition of every field; :func:`schema_table` derives the documentation from them.
An optional section that is absent, or ``{"not_available": "<reason>"}``, renders as
"not available (<reason>)".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, JsonValue, Tag, ValidationError

from mlgov_assets.core.errors import InputError
from mlgov_assets.core.integrity import canonical_hash, is_sha256

__all__ = [
    "SCHEMA_VERSION",
    "SOURCE_KINDS",
    "AnyBundle",
    "BundleError",
    "EvidenceBundle",
    "Source",
    "bundle_digest",
    "iter_sources",
    "parse_bundle",
    "problems_of",
    "safe_url",
    "schema_table",
    "validate_bundle",
]

SCHEMA_VERSION = 1
SourceKind = Literal[
    "dagster_materialization",
    "dagster_run",
    "mlflow_run",
    "mlflow_model_version",
    "dvc",
    "git",
    "decision_log",
    "monitoring_ledger",  # a batch's state.json under $MLGOV_HOME/monitoring
    "project_spec",  # the project's YAML spec (sha256 of its bytes)
]
SOURCE_KINDS: frozenset[str] = frozenset(get_args(SourceKind))
_MD5_RE = re.compile(r"^[0-9a-f]{32}$")
_GIT_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


class BundleError(InputError):
    """The bundle does not match the schema; ``problems`` names every bad field by path."""

    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} problem(s) in evidence bundle: " + "; ".join(problems))
        self.problems = problems


# --------------------------------------------------------------------------- field types


def safe_url(url: Any) -> str | None:
    """The URL if it is an absolute http(s) URL without characters that could break out of markup."""
    if not isinstance(url, str) or any(c in url for c in "<>\"'`| \t\r\n\\"):
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def _rule(check: Any, what: str) -> AfterValidator:
    def validate(value: Any) -> Any:
        if not check(value):
            raise ValueError(f"expected {what}")
        return value

    return AfterValidator(validate)


Text = Annotated[str, _rule(lambda v: bool(v.strip()), "non-empty string")]
Sha256 = Annotated[str, _rule(is_sha256, "sha256 hex")]
Md5 = Annotated[str, _rule(_MD5_RE.match, "32-hex md5")]
#: "unknown" when the project was not a git checkout: stated, not hidden.
GitCommit = Annotated[
    str, _rule(lambda v: bool(_GIT_RE.match(v)) or v == "unknown", "40- or 64-hex git commit, or 'unknown'")
]
Url = Annotated[str, _rule(safe_url, "an absolute http(s) URL (only those are allowed)")]
Count = Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Source(_Model):
    """Where a claim came from, and the content hash of that artifact."""

    kind: SourceKind = Field(description="what kind of record the claim came from")
    ref: Text = Field(description="run id, asset + materialization id, models:/name/version, path#index …")
    sha256: Sha256 = Field(description="content hash of the artifact behind ref")
    url: Url | None = Field(default=None, description="link to the Dagster/MLflow UI page")


class ModelSection(_Model):
    name: Text = Field(description="registered model name")
    version: Text | int = Field(description="registered model version")
    run_id: Text = Field(description="MLflow run that produced the version")
    registered_at: Text = Field(description="registration time")
    artifact_manifest_digest: Sha256 = Field(description="manifest_digest of the model's artifact files")
    source: Source


class TextSection(_Model):
    text: Text = Field(description="free text (from the governing policy)")
    source: Source


class Column(_Model):
    name: Text
    dtype: Text


class Dataset(_Model):
    role: Text = Field(description='"training", "holdout", "reference", …')
    path: Text = Field(description="the dataset's path in the project")
    dvc_md5: Md5 = Field(description="DVC md5 of the bytes")
    rows: Count = Field(description="row count")
    columns: list[Column] = Field(description="column names and dtypes")
    provenance: Text = Field(description="where the bytes came from originally")
    source: Source


class CodeSection(_Model):
    git_commit: GitCommit = Field(description="commit the model was trained from")
    git_dirty: bool = Field(description="trained from a dirty working tree")
    code_versions: dict[str, str] = Field(description="Dagster asset key -> code_version")
    source: Source


class EnvironmentSection(_Model):
    uv_lock_sha256: Sha256 | None = Field(description="sha256 of uv.lock; null when none was found at training time")
    python_version: Text = Field(description="Python version")
    packages: dict[str, str] = Field(description="package -> version")
    source: Source


class ValuesSection(_Model):
    values: dict[str, Any] = Field(description="hyperparameters")
    source: Source


class MetricsSection(_Model):
    split: Text = Field(description="the split the metrics were computed on")
    values: dict[str, Any] = Field(description="metric -> value")
    source: Source


class Gate(_Model):
    name: Text = Field(description="gate name")
    passed: bool = Field(description="verdict")
    severity: Text = Field(description='"error" (blocking) or "warn"')
    values: dict[str, Any] = Field(description="measured values")
    thresholds: dict[str, Any] = Field(description="thresholds from the policy")
    policy_hash: Sha256 = Field(description="sha256 of the policy the gate was evaluated under")
    evaluated_at: Text = Field(description="evaluation time")
    link: Url | None = Field(default=None, description="link to the check evaluation")
    source: Source


class FairnessSection(_Model):
    groups: list[dict[str, Any]] = Field(description="one row per (attribute, group): n, selection_rate, tpr, …")
    summary: dict[str, Any] = Field(description="e.g. demographic parity ratio per attribute")
    source: Source


class Feature(_Model):
    feature: Text
    importance: float | None = None


class ExplanationsSection(_Model):
    method: Text = Field(description="explanation method")
    top_features: list[Feature] = Field(description="features by importance")
    source: Source


class DriftEntry(_Model):
    batch: Text = Field(description="batch id")
    time: Text = Field(description="when the batch landed")
    dataset_drift: bool = Field(description="dataset-level drift verdict")
    drifted_columns: list[str] = Field(description="columns judged drifted")
    source: Source


class Decision(_Model):
    index: Count = Field(description="decision-log record index")
    kind: Text = Field(description="decision kind")
    actor: Text = Field(description="who decided (as recorded)")
    reason: Text = Field(description="why")
    time: Text = Field(description="when")
    source: Source


class ProtectedAttribute(_Model):
    column: Text = Field(description="the protected column as it is in the data")
    judged_as: Text = Field(description="the sensitive feature fairness is judged on (the column or its bands)")
    bands: list[str] | None = Field(default=None, description="band labels of a banded numeric column")


class ExcludedColumn(_Model):
    column: Text = Field(description="a column of the data that is never a model input")
    reason: Text = Field(description="why (identifier, pii, sampling_weight, leakage, duplicate, other)")
    note: str = Field(default="", description="the spec's explanation")


class ProjectSection(_Model):
    name: Text = Field(description="the governed project")
    spec_sha256: Sha256 = Field(description="sha256 of the project spec's bytes")
    recorded_with_version: bool = Field(description="the version's tags name this spec (older versions lack them)")
    target: Text = Field(description="the label column")
    favourable: Text = Field(description="the label value that is the favourable outcome")
    protected: list[ProtectedAttribute] = Field(description="protected attributes (carried, never model inputs)")
    exclusions: list[ExcludedColumn] = Field(description="columns excluded from the model, with reasons")
    model_features: list[str] = Field(description="the model's input columns")
    holdout: Text = Field(description="the holdout: its file, or the split that made it")
    split: dict[str, JsonValue] | None = Field(default=None, description="the holdout split record, when one was made")
    source: Source


class NotAvailable(_Model):
    not_available: str = Field(description="why the section is absent")


def _present_or_na(value: Any) -> str:
    na = isinstance(value, NotAvailable) or (isinstance(value, dict) and set(value) == {"not_available"})
    return "<not_available>" if na else "<present>"


def _optional(section: Any) -> Any:
    """An optional section: the section itself, or {"not_available": reason} (tags are dropped from paths)."""
    return Annotated[
        Annotated[section, Tag("<present>")] | Annotated[NotAvailable, Tag("<not_available>")],
        Discriminator(_present_or_na),
    ]


class EvidenceBundle(_Model):
    """Everything a model card states. Optional sections may be absent or ``{"not_available": …}``."""

    schema_version: int = Field(default=SCHEMA_VERSION, description="bundle schema version")
    generated_at: str | None = Field(default=None, description="when the bundle was built (optional)")
    model: ModelSection = Field(description="the registered version")
    intended_use: TextSection = Field(description="intended use, from the governing policy")
    limitations: TextSection = Field(description="limitations, from the governing policy")
    data: list[Dataset] = Field(min_length=1, description="training and holdout datasets (at least one)")
    code: CodeSection = Field(description="git commit and Dagster code versions")
    environment: EnvironmentSection = Field(description="uv.lock hash, Python and package versions")
    hyperparameters: ValuesSection = Field(description="hyperparameters")
    metrics: MetricsSection = Field(description="holdout metrics")
    gates: list[Gate] = Field(description="every governance gate (may be empty)")
    decisions: list[Decision] = Field(description="promotions, rollbacks, overrides … (may be empty)")
    fairness: _optional(FairnessSection) | None = Field(default=None, description="group metrics")  # type: ignore[valid-type]
    explanations: _optional(ExplanationsSection) | None = Field(default=None, description="top features")  # type: ignore[valid-type]
    drift: _optional(list[DriftEntry]) | None = Field(default=None, description="drift history in production")  # type: ignore[valid-type]
    project: _optional(ProjectSection) | None = Field(default=None, description="the governed project")  # type: ignore[valid-type]

    def to_json(self) -> dict[str, Any]:
        """The bundle as its JSON document (the fields that were given, as given): what is hashed."""
        return self.model_dump(mode="json", exclude_unset=True)


#: A bundle as the typed model or as its JSON document.
AnyBundle = EvidenceBundle | Mapping[str, Any]


def as_json(bundle: AnyBundle) -> Mapping[str, Any]:
    """The JSON document of a bundle given either way."""
    return bundle.to_json() if isinstance(bundle, EvidenceBundle) else bundle


OPTIONAL = ("fairness", "explanations", "drift", "project")


# --------------------------------------------------------------------------- validation


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith("<"):  # union tags are not part of the document
            out += f".{part}" if out else part
    return out or "bundle"


def _problem(error: Mapping[str, Any]) -> str:
    where = _path(tuple(error["loc"]))
    if error["type"] == "missing":
        return f"{where}: missing" + (" (every claim must name its source)" if where.endswith("source") else "")
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown field"
    msg = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}, got {error.get('input')!r}"


def problems_of(exc: ValidationError, at: tuple[int | str, ...] = ()) -> list[str]:
    """Every problem of a section that failed validation, each named by its path in the bundle
    (``at`` is where the section sits, e.g. ``("gates", 2)``)."""
    return [_problem({**e, "loc": (*at, *e["loc"])}) for e in exc.errors()]


def _problems(bundle: Any) -> tuple[EvidenceBundle | None, list[str]]:
    if not isinstance(bundle, Mapping):
        return None, [f"bundle must be an object, got {type(bundle).__name__}"]
    parsed: EvidenceBundle | None = None
    try:
        parsed = EvidenceBundle.model_validate(dict(bundle))
        problems: list[str] = []
    except ValidationError as exc:
        problems = problems_of(exc)
    try:
        canonical_hash(bundle)
    except (TypeError, ValueError) as exc:  # NaN, non-str keys, objects: not content-addressable
        problems.append(str(exc))
    return (parsed if not problems else None), problems


def validate_bundle(bundle: AnyBundle) -> list[str]:
    """Every schema problem, each naming its path (e.g. ``gates[2].source.sha256``); [] if valid."""
    return _problems(as_json(bundle))[1]


def parse_bundle(bundle: AnyBundle) -> EvidenceBundle:
    """The bundle as a typed model; raises BundleError naming every schema problem."""
    if isinstance(bundle, EvidenceBundle):
        return bundle
    parsed, problems = _problems(bundle)
    if parsed is None:
        raise BundleError(problems)
    return parsed


def unavailable(value: Any) -> str | None:
    """The reason an optional section is absent, or None if it is present."""
    if value is None:
        return "not provided in the evidence bundle"
    if isinstance(value, NotAvailable):
        return value.not_available or "no reason given"
    return None


def iter_sources(bundle: AnyBundle) -> list[tuple[str, dict[str, Any]]]:
    """(path, source) for every claim in a valid bundle: what ``mlgov audit`` re-hashes."""
    parsed = parse_bundle(bundle)
    bundle = as_json(bundle)
    out: list[tuple[str, dict[str, Any]]] = []
    for key in EvidenceBundle.model_fields:
        value = bundle.get(key)
        if key in ("schema_version", "generated_at") or value is None or unavailable(getattr(parsed, key)):
            continue
        items = enumerate(value) if isinstance(value, list) else [(None, value)]
        out += [(key if i is None else f"{key}[{i}]", dict(item["source"])) for i, item in items]
    return out


def bundle_digest(bundle: AnyBundle) -> str:
    """sha256 of the bundle's canonical JSON: the card's content address."""
    return canonical_hash(as_json(bundle))


def schema_table(model: type[BaseModel] = EvidenceBundle, prefix: str = "") -> list[tuple[str, str, str]]:
    """(field path, required?, description) for every field, derived from the models (documentation)."""
    rows = []
    for name, info in model.model_fields.items():
        rows.append((prefix + name, "required" if info.is_required() else "optional", info.description or ""))
        sub = info.annotation
        inner = [a for a in get_args(sub) if isinstance(a, type) and issubclass(a, BaseModel)]
        if isinstance(sub, type) and issubclass(sub, BaseModel) and sub is not Source:
            rows += schema_table(sub, f"{prefix}{name}.")
        elif len(inner) == 1 and inner[0] is not Source:
            rows += schema_table(inner[0], f"{prefix}{name}[].")
    return rows
