"""The governance policy: one YAML file, validated strictly on load, identified by its hash.

The policy is the only place thresholds live. Loading refuses unknown keys, wrong types and
impossible thresholds with an error naming the key (``champion_comparison.roc_auc.
min_absolute_change: must be > 0``), so a typo can never silently disable a gate. Its SHA-256 (of
the file's bytes, so ``sha256sum`` reproduces it) is recorded with every gate result.
"""

from __future__ import annotations

import functools
import hashlib
import math
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from mlgov_assets.core.errors import ConfigError


class PolicyError(ConfigError):
    """The policy file is malformed; the message names the file and the key."""


#: Holdout metrics mlgov computes, with whether greater is better and their valid range.
METRICS: dict[str, tuple[bool, float, float]] = {
    "accuracy": (True, 0.0, 1.0),
    "roc_auc": (True, 0.0, 1.0),
    "precision": (True, 0.0, 1.0),
    "recall": (True, 0.0, 1.0),
    "f1": (True, 0.0, 1.0),
    "log_loss": (False, 0.0, float("inf")),
}

#: Fairness summary metrics a rule may name. ``disparate_impact_min`` equals the demographic
#: parity ratio (reference = most favoured group); both names are accepted.
SUMMARY_METRICS: tuple[str, ...] = (
    "demographic_parity_ratio",
    "demographic_parity_difference",
    "disparate_impact_min",
    "equalized_odds_ratio",
    "equalized_odds_difference",
    "tpr_ratio",
    "tpr_difference",
    "fpr_ratio",
    "fpr_difference",
)

#: Separator of intersection keys ("sex|race"); the policy file may also write "sex×race".
INTERSECTION_SEP = "|"

#: Filled by :func:`load_policy` / :func:`parse_policy`, never read from the file.
_NOT_FROM_FILE = frozenset({"sha256", "path"})


# --------------------------------------------------------------------------- validation helpers


class _Invalid(ValueError):
    """A validator's refusal of a key below the one being validated (``key`` is relative)."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"{key}: {why}")
        self.key, self.why = key, why


def _refuse(key: str, why: str) -> NoReturn:
    raise _Invalid(key, why)


def _rule(ok: Callable[[Any], bool], why: str) -> AfterValidator:
    """A field constraint with mlgov's message (e.g. ``must be > 0``)."""

    def check(value: Any) -> Any:
        if not ok(value):
            raise ValueError(why)
        return value

    return AfterValidator(check)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


# --------------------------------------------------------------------------- model gates


class MetricFloor(_Model):
    """An absolute bound on a holdout metric: ``min`` for greater-is-better, ``max`` otherwise."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> MetricFloor:
        if (self.min is None) == (self.max is None):
            raise ValueError("give exactly one of min (greater is better) or max")
        return self


class ChampionThreshold(_Model):
    """MLflow ``MetricThreshold`` semantics, evaluated by :func:`~mlgov_assets.core.governance.gates.
    champion_comparison`. MLflow refuses non-positive changes too: 0 would mean "no gate"."""

    greater_is_better: bool
    threshold: float | None = None
    min_absolute_change: (
        Annotated[float, _rule(lambda v: v > 0, "must be > 0 (omit it for no absolute-change requirement)")] | None
    ) = None
    min_relative_change: Annotated[float, _rule(lambda v: 0 < v <= 1, "must be in (0, 1]")] | None = None


def _known_metric(name: str) -> tuple[bool, float, float]:
    if name not in METRICS:
        _refuse(name, f"unknown metric; known: {sorted(METRICS)}")
    return METRICS[name]


def _check_floor(name: str, floor: MetricFloor) -> None:
    greater, lo, hi = _known_metric(name)
    if greater and floor.min is None:
        _refuse(name, f"{name} is greater-is-better: use min, not max")
    if not greater and floor.max is None:
        _refuse(name, f"{name} is lower-is-better: use max, not min")
    value = floor.min if floor.min is not None else floor.max
    if value is not None and not lo <= value <= hi:
        _refuse(f"{name}.{'min' if greater else 'max'}", f"{value} is impossible for {name} (range [{lo}, {hi}])")


def _check_threshold(name: str, t: ChampionThreshold) -> None:
    greater, lo, hi = _known_metric(name)
    if t.greater_is_better != greater:
        _refuse(f"{name}.greater_is_better", f"{name} is {'greater' if greater else 'lower'}-is-better")
    if t.threshold is None and t.min_absolute_change is None and t.min_relative_change is None:
        _refuse(name, "set at least one of threshold, min_absolute_change, min_relative_change")
    if t.threshold is not None and not lo <= t.threshold <= hi:
        _refuse(f"{name}.threshold", f"{t.threshold} is impossible for {name}")


# --------------------------------------------------------------------------- fairness


class FairnessRule(_Model):
    """``metric`` of ``feature`` must be >= ``min`` (or <= ``max``), judged on the ``bound`` of its
    confidence interval. ``feature`` is a sensitive column or an intersection (``sex|race``)."""

    feature: str
    metric: str
    bound: Literal["point", "lower", "upper"] = "point"
    min: float | None = None
    max: float | None = None

    @field_validator("metric")
    @classmethod
    def _known(cls, metric: str) -> str:
        if metric not in SUMMARY_METRICS:
            raise ValueError(f"unknown metric {metric!r}; known: {list(SUMMARY_METRICS)}")
        return metric

    @model_validator(mode="after")
    def _one_finite_bound(self) -> FairnessRule:
        if (self.min is None) == (self.max is None):
            raise ValueError("give exactly one of min or max")
        key, value = ("min", self.min) if self.min is not None else ("max", self.max)
        assert value is not None
        if not math.isfinite(value):
            _refuse(key, "must be a finite number")
        for suffix in ("_ratio", "_difference"):
            if self.metric.endswith(suffix) and not 0 <= value <= 1:
                _refuse(key, f"{value} is impossible for a {suffix[1:]} in [0, 1]")
        return self

    @property
    def comparison(self) -> Literal["min", "max"]:
        return "min" if self.min is not None else "max"

    @property
    def threshold(self) -> float:
        value = self.min if self.min is not None else self.max
        assert value is not None  # the validator guarantees exactly one
        return value

    @property
    def feature_key(self) -> str:
        """The report key of ``feature`` (``sex×race`` and ``sex|race`` both give ``sex|race``)."""
        return self.feature.replace("×", INTERSECTION_SEP)


class Mitigation(_Model):
    enabled: bool = False
    method: Literal["threshold_optimizer", "exponentiated_gradient"] = "threshold_optimizer"
    constraints: Literal["demographic_parity", "equalized_odds", "true_positive_rate_parity"] = "demographic_parity"
    objective: Literal["accuracy_score", "balanced_accuracy_score"] = "accuracy_score"
    #: groups the mitigation equalizes (default: every fairness.sensitive_features column)
    sensitive_features: list[str] = Field(default_factory=list)
    justification: str = ""


def _sensitive_columns(features: list[str]) -> list[str]:
    """At least one; whether they exist is a question of the policy against a project
    (:func:`~mlgov_assets.core.governance.policy_project.check_against_project`)."""
    if not features:
        raise ValueError("list at least one sensitive feature")
    return features


def _four_fifths(band: list[float]) -> bool:
    return len(band) == 2 and 0 < band[0] <= 1 <= band[1]


class Fairness(_Model):
    #: required: which columns are sensitive is a fact of the project, never a default of the code
    sensitive_features: Annotated[list[str], AfterValidator(_sensitive_columns)]
    intersections: list[list[str]] = Field(default_factory=list)
    reference_group: Literal["most_favoured"] = "most_favoured"
    min_group_size: Annotated[int, _rule(lambda v: v >= 1, "must be >= 1")] = 100
    confidence_level: Annotated[float, _rule(lambda v: 0 < v < 1, "must be in (0, 1)")] = 0.95
    n_boot: Annotated[int, _rule(lambda v: v >= 0, "must be >= 0")] = 100
    four_fifths_band: Annotated[list[float], _rule(_four_fifths, "must be [low <= 1, high >= 1], e.g. [0.8, 1.25]")] = (
        Field(default_factory=lambda: [0.8, 1.25])
    )
    rules: list[FairnessRule] = Field(default_factory=list)
    mitigation: Mitigation = Field(default_factory=Mitigation)
    justification: str = ""

    @model_validator(mode="after")
    def _features_are_declared(self) -> Fairness:
        declared = set(self.sensitive_features)
        for feat in self.mitigation.sensitive_features:
            if feat not in declared:
                _refuse("mitigation.sensitive_features", f"{feat!r} is not in fairness.sensitive_features")
        for i, inter in enumerate(self.intersections):
            for feat in inter:
                if feat not in declared:
                    _refuse(f"intersections[{i}]", f"{feat!r} is not in fairness.sensitive_features")
        known = declared | {INTERSECTION_SEP.join(x) for x in self.intersections}
        for i, rule in enumerate(self.rules):
            if rule.feature_key not in known:
                _refuse(
                    f"rules[{i}].feature",
                    f"{rule.feature!r} is not a sensitive feature or intersection ({sorted(known)})",
                )
        return self


# --------------------------------------------------------------------------- explanations, drift, monitoring


class Explanations(_Model):
    additivity_tolerance: Annotated[float, _rule(lambda v: v > 0, "must be > 0")] = 1e-6
    ndcg_min: Annotated[float, _rule(lambda v: 0 <= v <= 1, "must be in [0, 1]")] = 0.9
    ndcg_top_k: Annotated[int, _rule(lambda v: v >= 1, "must be >= 1 (or omitted for all features)")] | None = None
    top_k_reasons: Annotated[int, _rule(lambda v: v >= 1, "must be >= 1")] = 3
    max_rows: Annotated[int, _rule(lambda v: v >= 1, "must be >= 1 (or omitted for the whole holdout)")] | None = None


class Drift(_Model):
    """Per-column drift statistics and thresholds (verdicts gate on effect sizes, not p-values)."""

    bins: Annotated[int, _rule(lambda v: v >= 2, "must be >= 2")] = 10
    numeric_method: Literal["psi", "wasserstein", "ks"] = "psi"
    categorical_method: Literal["psi", "jensenshannon", "chisquare"] = "psi"
    psi_warn: float = 0.1
    psi_act: float = 0.25
    wasserstein_threshold: Annotated[float, _rule(lambda v: v > 0, "must be > 0")] = 0.1
    jensenshannon_threshold: Annotated[float, _rule(lambda v: 0 < v <= 1, "must be in (0, 1]")] = 0.1
    p_value: Annotated[float, _rule(lambda v: 0 < v < 1, "must be in (0, 1)")] = 0.05
    dataset_drift_share: Annotated[float, _rule(lambda v: 0 < v <= 1, "must be in (0, 1]")] = 0.5
    prediction_psi_act: Annotated[float, _rule(lambda v: v > 0, "must be > 0")] = 0.25

    @model_validator(mode="after")
    def _warn_before_act(self) -> Drift:
        if not 0 < self.psi_warn <= self.psi_act:
            _refuse("psi_warn", f"must be > 0 and <= drift.psi_act ({self.psi_act})")
        return self


def _tolerances(tolerance: dict[str, float]) -> dict[str, float]:
    for name, tol in tolerance.items():
        _known_metric(name)
        if not 0 <= tol <= 1:
            _refuse(name, "must be in [0, 1]")
    return tolerance


def _http_url(url: str | None) -> bool:
    return url is None or url.startswith(("http://", "https://"))


RetrainTrigger = Literal["dataset_drift", "performance"]


def _all_triggers() -> list[RetrainTrigger]:
    return ["dataset_drift", "performance"]


class Monitoring(_Model):
    performance_tolerance: Annotated[dict[str, float], AfterValidator(_tolerances)] = Field(
        default_factory=lambda: {"accuracy": 0.05, "roc_auc": 0.05}
    )
    min_batch_rows: Annotated[int, _rule(lambda v: v >= 1, "must be >= 1")] = 200
    summary_last_n_batches: Annotated[int, _rule(lambda v: v >= 1, "must be >= 1")] = 20
    retrain_on: list[RetrainTrigger] = Field(default_factory=_all_triggers)
    webhook_url: Annotated[str | None, _rule(_http_url, "must be an http:// or https:// URL")] = None


LabelConflictAction = Literal["refuse", "hold"]


class Labels(_Model):
    """Delayed labels files (``<batch_id>.labels.csv|parquet``). A file whose labels disagree with
    labels already recorded for the batch (its own label column or an earlier labels file) is never
    applied: ``refuse`` rejects it, ``hold`` keeps it for review; either way it is alerted, the rows
    in dispute are kept out of retraining, and the batch's labels and performance stay as they were."""

    on_conflict: LabelConflictAction = "refuse"
    #: row ids quoted as examples in a refusal, its alert and the ledger (the count is always complete)
    max_examples: Annotated[int, _rule(lambda v: v >= 1, "must be >= 1")] = 10
    #: characters of a reader's error message kept verbatim (longer: a prefix, its length and sha256)
    max_quoted_chars: Annotated[int, _rule(lambda v: v >= 20, "must be >= 20")] = 200


class Ingestion(_Model):
    """Caps at the trust boundary (the landing folder) and how raw values are quoted in evidence.

    A file, a physical line or a field over its cap is refused by name; reports, logs, alerts and
    webhooks quote at most ``quote_chars`` characters of a raw value (plus its sha256 and length),
    and a failure report or alert record is kept under ``max_report_bytes``.
    """

    max_file_bytes: Annotated[int, _rule(lambda v: v >= 1, "must be >= 1")] = 256 * 1024 * 1024
    max_line_chars: Annotated[int, _rule(lambda v: v >= 16, "must be >= 16")] = 65_536
    max_field_chars: Annotated[int, _rule(lambda v: v >= 1, "must be >= 1")] = 4_096
    quote_chars: Annotated[int, _rule(lambda v: 8 <= v <= 1_000, "must be in [8, 1000]")] = 40
    max_report_bytes: Annotated[int, _rule(lambda v: v >= 16_384, "must be >= 16384")] = 262_144


class Promotion(_Model):
    """How a candidate that passed every gate becomes champion: at once (``automatic``) or, in ``approval``
    mode, staged (alias ``staging``) until ``approvals_required`` distinct people approve (``core/governance/
    approval``). ``approvers``: names, and groups as ``group:<name>`` whose members ``approver_groups`` lists
    (versioned and hashed with the policy); empty: anyone but the trainer and the requester."""

    mode: Literal["automatic", "approval"] = "automatic"
    approvals_required: Annotated[int, _rule(lambda v: v >= 1, "must be >= 1")] = 1
    approvers: list[str] = Field(default_factory=list)
    approver_groups: dict[str, list[str]] = Field(default_factory=dict)
    separation_of_duties: bool = True
    expires_after_hours: Annotated[float, _rule(lambda v: v > 0, "must be > 0")] = 72.0

    @model_validator(mode="after")
    def _groups_exist(self) -> Promotion:
        if missing := [g for g in self._named_groups() if g not in self.approver_groups]:
            raise ValueError(f"approvers name group(s) {', '.join(missing)} that approver_groups does not define")
        if empty := [g for g, members in self.approver_groups.items() if not any(m.strip() for m in members)]:
            raise ValueError(f"approver_groups: group(s) {', '.join(empty)} have no members")
        return self

    def _named_groups(self) -> list[str]:
        return [a.removeprefix(GROUP_PREFIX) for a in self.approvers if a.startswith(GROUP_PREFIX)]

    def groups_named(self) -> dict[str, list[str]]:
        """The groups ``approvers`` names, with their members (what an approval request records)."""
        return {g: list(self.approver_groups[g]) for g in self._named_groups()}

    def approver_basis(self, actor: str) -> str | None:
        """Why ``actor`` may approve (``named``, ``group:<name>``, ``anyone``), or None if they may not."""
        if not self.approvers or actor in self.approvers:
            return "named" if self.approvers else "anyone"
        return next((f"{GROUP_PREFIX}{g}" for g, m in self.groups_named().items() if actor in m), None)


GROUP_PREFIX = "group:"  # in Promotion.approvers: a group of approver_groups
METRIC_GATES = ("metric_floors", "champion_comparison")  # judged from holdout metrics alone (gates.py)

# --------------------------------------------------------------------------- the policy


class Policy(_Model):
    policy_version: int
    description: str = ""
    intended_use: str = ""
    limitations: str = ""
    metric_floors: dict[str, MetricFloor] = Field(default_factory=dict)
    champion_comparison: dict[str, ChampionThreshold] = Field(default_factory=dict)
    fairness: Fairness | None = None
    explanations: Explanations | None = None
    drift: Drift = Field(default_factory=Drift)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    labels: Labels = Field(default_factory=Labels)
    ingestion: Ingestion = Field(default_factory=Ingestion)
    promotion: Promotion = Field(default_factory=Promotion)
    # filled by load_policy, not read from the file
    sha256: str = ""
    path: str = ""

    @field_validator("policy_version")
    @classmethod
    def _supported(cls, version: int) -> int:
        if version != 1:
            raise ValueError(f"unsupported version {version} (this mlgov reads 1)")
        return version

    @field_validator("metric_floors")
    @classmethod
    def _floors(cls, floors: dict[str, MetricFloor]) -> dict[str, MetricFloor]:
        for name, floor in floors.items():
            _check_floor(name, floor)
        return floors

    @field_validator("champion_comparison")
    @classmethod
    def _thresholds(cls, thresholds: dict[str, ChampionThreshold]) -> dict[str, ChampionThreshold]:
        for name, t in thresholds.items():
            _check_threshold(name, t)
        return thresholds

    def required_model_gates(self) -> list[str]:
        """Every gate a model version must have passed, under this policy, to become champion."""
        fairness = ["fairness"] if self.fairness is not None and self.fairness.rules else []
        return [*METRIC_GATES, *fairness, *(["explanation_additivity"] if self.explanations is not None else [])]


# --------------------------------------------------------------------------- error messages


def _key(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _join(parent: str, child: str) -> str:
    if not parent:
        return child
    return parent + child if child.startswith("[") else f"{parent}.{child}"


def _strip(tp: Any) -> Any:
    """``X | None`` and ``Annotated[X, ...]`` -> ``X``."""
    while True:
        if typing.get_origin(tp) is Annotated:
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) in (typing.Union, types.UnionType):
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        else:
            return tp


def _allowed_keys(loc: Sequence[int | str]) -> list[str]:
    """The keys the file may set at ``loc`` (the model found by walking the policy's fields)."""
    tp: Any = Policy
    for part in loc:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            tp = _strip(tp.model_fields[str(part)].annotation)
        else:  # list item or mapping value
            tp = _strip(typing.get_args(tp)[-1])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return sorted(set(tp.model_fields) - (_NOT_FROM_FILE if tp is Policy else set()))
    return []


_TYPE_MESSAGES = {
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "string_type": "must be a string",
}


def _describe(err: ErrorDetails) -> tuple[str, str]:
    """(key, why) of one pydantic error, in the policy's vocabulary."""
    loc, kind, value = err["loc"], err["type"], err.get("input")
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, _Invalid):
        return _join(_key(loc), cause.key), cause.why
    if kind in _TYPE_MESSAGES:
        return _key(loc), f"{_TYPE_MESSAGES[kind]}, got {value!r}"
    if kind == "literal_error":
        return _key(loc), f"must be one of {err.get('ctx', {}).get('expected')}, got {value!r}"
    if kind == "list_type":
        return _key(loc), f"must be a list, got {type(value).__name__}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return _key(loc) or "policy", f"must be a mapping, got {type(value).__name__}"
    if kind == "missing":
        return _key(loc), "required key is missing"
    return _key(loc), str(cause) if cause is not None else err["msg"]


def _messages(exc: ValidationError) -> list[str]:
    """One message per refused key; unknown keys grouped per parent, with the allowed ones."""
    unknown: dict[tuple[int | str, ...], list[str]] = {}
    out: list[str] = []
    for err in exc.errors():
        if err["type"] == "extra_forbidden":
            unknown.setdefault(tuple(err["loc"][:-1]), []).append(str(err["loc"][-1]))
            continue
        key, why = _describe(err)
        out.append(f"{key}: {why}")
    for parent, names in unknown.items():
        where = _key(parent) or "policy"
        out.insert(0, f"{where}: unknown key(s) {sorted(names)}; allowed: {_allowed_keys(parent)}")
    return out


# --------------------------------------------------------------------------- loading
@functools.lru_cache(maxsize=16)  # same bytes, same frozen Policy: files are still read on every use
def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    """Validate policy YAML ``text``; raises :class:`PolicyError` naming ``source`` and the key."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from None
    if isinstance(data, dict) and _NOT_FROM_FILE & set(data):
        keys = sorted(_NOT_FROM_FILE & set(data))
        raise PolicyError(f"{source}: policy: unknown key(s) {keys}; allowed: {_allowed_keys(())}")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"{source}: " + "; ".join(_messages(exc))) from None
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return policy.model_copy(update={"sha256": digest, "path": source})


def load_policy(path: str | Path) -> Policy:
    """Load and validate the policy file; raises :class:`PolicyError` naming the file and key."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(f"{path}: policy file not found") from None
    policy = parse_policy(raw.decode("utf-8"), source=str(path))
    # hash the bytes exactly as stored (sha256sum reproduces it)
    return policy.model_copy(update={"sha256": hashlib.sha256(raw).hexdigest()})


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (what ``sha256sum`` prints)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
