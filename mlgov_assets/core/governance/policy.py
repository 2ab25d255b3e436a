"""The governance policy: one YAML file, validated strictly on load, identified by its hash.

The policy is the only place thresholds live. Loading it rejects unknown keys, wrong types and
impossible thresholds with an error naming the offending key (``champion_comparison.roc_auc.
min_absolute_change: must be > 0``), so a typo can never silently disable a gate. Its SHA-256 (of
the file's bytes, so ``sha256sum`` reproduces it) is recorded with every gate result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class PolicyError(ValueError):
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


@dataclass(frozen=True)
class MetricFloor:
    """An absolute bound on a holdout metric: ``min`` for greater-is-better, ``max`` otherwise."""

    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class ChampionThreshold:
    """MLflow ``MetricThreshold`` semantics (mlflow.models.MetricThreshold), evaluated by
    :func:`mlgov_assets.core.governance.gates.champion_comparison` and tested against MLflow's own validator."""

    greater_is_better: bool
    threshold: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None


@dataclass(frozen=True)
class FairnessRule:
    feature: str
    metric: str
    bound: Literal["point", "lower", "upper"] = "point"
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class Mitigation:
    enabled: bool = False
    method: Literal["threshold_optimizer", "exponentiated_gradient"] = "threshold_optimizer"
    constraints: Literal["demographic_parity", "equalized_odds", "true_positive_rate_parity"] = "demographic_parity"
    objective: Literal["accuracy_score", "balanced_accuracy_score"] = "accuracy_score"
    #: groups the mitigation equalizes (default: every fairness.sensitive_features column)
    sensitive_features: list[str] = field(default_factory=list)
    justification: str = ""


@dataclass(frozen=True)
class Fairness:
    sensitive_features: list[str] = field(default_factory=lambda: ["sex", "race"])
    intersections: list[list[str]] = field(default_factory=lambda: [["sex", "race"]])
    reference_group: Literal["most_favoured"] = "most_favoured"
    min_group_size: int = 100
    confidence_level: float = 0.95
    n_boot: int = 100
    four_fifths_band: list[float] = field(default_factory=lambda: [0.8, 1.25])
    rules: list[FairnessRule] = field(default_factory=list)
    mitigation: Mitigation = field(default_factory=Mitigation)
    justification: str = ""


@dataclass(frozen=True)
class Explanations:
    additivity_tolerance: float = 1e-6
    ndcg_min: float = 0.9
    ndcg_top_k: int | None = None
    top_k_reasons: int = 3
    max_rows: int | None = None


@dataclass(frozen=True)
class Drift:
    bins: int = 10
    numeric_method: Literal["psi", "wasserstein", "ks"] = "psi"
    categorical_method: Literal["psi", "jensenshannon", "chisquare"] = "psi"
    psi_warn: float = 0.1
    psi_act: float = 0.25
    wasserstein_threshold: float = 0.1
    jensenshannon_threshold: float = 0.1
    p_value: float = 0.05
    dataset_drift_share: float = 0.5
    prediction_psi_act: float = 0.25


@dataclass(frozen=True)
class Monitoring:
    performance_tolerance: dict[str, float] = field(default_factory=lambda: {"accuracy": 0.05, "roc_auc": 0.05})
    min_batch_rows: int = 200
    summary_last_n_batches: int = 20
    retrain_on: list[Literal["dataset_drift", "performance"]] = field(
        default_factory=lambda: ["dataset_drift", "performance"]
    )
    webhook_url: str | None = None


@dataclass(frozen=True)
class Policy:
    policy_version: int
    description: str = ""
    intended_use: str = ""
    limitations: str = ""
    metric_floors: dict[str, MetricFloor] = field(default_factory=dict)
    champion_comparison: dict[str, ChampionThreshold] = field(default_factory=dict)
    fairness: Fairness | None = None
    explanations: Explanations | None = None
    drift: Drift = field(default_factory=Drift)
    monitoring: Monitoring = field(default_factory=Monitoring)
    # filled by load_policy, not read from the file
    sha256: str = ""
    path: str = ""

    def required_model_gates(self) -> list[str]:
        """Every gate a model version must have passed, under this policy, to become champion."""
        gates = ["metric_floors", "champion_comparison"]
        if self.fairness is not None and self.fairness.rules:
            gates.append("fairness")
        if self.explanations is not None:
            gates.append("explanation_additivity")
        return gates


# --------------------------------------------------------------------------- strict conversion

_NOT_FROM_FILE = {"sha256", "path"}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, key)
    if origin is Literal:
        if value not in args:
            raise PolicyError(f"{key}: must be one of {list(args)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise PolicyError(f"{key}: must be a list, got {type(value).__name__}")
        return [_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise PolicyError(f"{key}: must be a mapping, got {type(value).__name__}")
        return {str(k): _convert(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise PolicyError(f"{key}: must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PolicyError(f"{key}: must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PolicyError(f"{key}: must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise PolicyError(f"{key}: must be a string, got {value!r}")
        return value
    raise PolicyError(f"{key}: unsupported type {_type_name(tp)}")  # pragma: no cover


def _build(cls: type, data: Any, key: str) -> Any:
    where = key or "policy"
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in _NOT_FROM_FILE}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    kwargs = {}
    for name, f in fields.items():
        sub = f"{key}.{name}" if key else name
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise PolicyError(f"{sub}: required key is missing")
    return cls(**kwargs)


# --------------------------------------------------------------------------- semantic checks


def _check(policy: Policy) -> None:
    def bad(key: str, why: str) -> None:
        raise PolicyError(f"{key}: {why}")

    if policy.policy_version != 1:
        bad("policy_version", f"unsupported version {policy.policy_version} (this mlgov reads 1)")
    for name, floor in policy.metric_floors.items():
        key = f"metric_floors.{name}"
        if name not in METRICS:
            bad(key, f"unknown metric; known: {sorted(METRICS)}")
        greater, lo, hi = METRICS[name]
        if (floor.min is None) == (floor.max is None):
            bad(key, "give exactly one of min (greater is better) or max")
        if greater and floor.min is None:
            bad(key, f"{name} is greater-is-better: use min, not max")
        if not greater and floor.max is None:
            bad(key, f"{name} is lower-is-better: use max, not min")
        value = floor.min if floor.min is not None else floor.max
        if not lo <= value <= hi:
            bad(f"{key}.{'min' if greater else 'max'}", f"{value} is impossible for {name} (range [{lo}, {hi}])")
    for name, t in policy.champion_comparison.items():
        key = f"champion_comparison.{name}"
        if name not in METRICS:
            bad(key, f"unknown metric; known: {sorted(METRICS)}")
        if t.greater_is_better != METRICS[name][0]:
            bad(f"{key}.greater_is_better", f"{name} is {'greater' if METRICS[name][0] else 'lower'}-is-better")
        if t.threshold is None and t.min_absolute_change is None and t.min_relative_change is None:
            bad(key, "set at least one of threshold, min_absolute_change, min_relative_change")
        if t.threshold is not None and not METRICS[name][1] <= t.threshold <= METRICS[name][2]:
            bad(f"{key}.threshold", f"{t.threshold} is impossible for {name}")
        # MLflow's MetricThreshold refuses non-positive changes too: 0 would be "no gate"
        if t.min_absolute_change is not None and t.min_absolute_change <= 0:
            bad(f"{key}.min_absolute_change", "must be > 0 (omit it for no absolute-change requirement)")
        if t.min_relative_change is not None and not 0 < t.min_relative_change <= 1:
            bad(f"{key}.min_relative_change", "must be in (0, 1]")
    if policy.fairness is not None:
        fz = policy.fairness
        from mlgov_assets.core.data.adult import SENSITIVE
        from mlgov_assets.core.governance.fairness import SUMMARY_METRICS

        if not fz.sensitive_features:
            bad("fairness.sensitive_features", "list at least one sensitive feature")
        for feat in fz.sensitive_features:
            if feat not in SENSITIVE:
                bad("fairness.sensitive_features", f"{feat!r} is not a sensitive column of the data ({SENSITIVE})")
        for i, rule in enumerate(fz.rules):
            if rule.metric not in SUMMARY_METRICS:
                bad(f"fairness.rules[{i}].metric", f"unknown metric {rule.metric!r}; known: {list(SUMMARY_METRICS)}")
        if not 0 < fz.confidence_level < 1:
            bad("fairness.confidence_level", "must be in (0, 1)")
        if fz.min_group_size < 1:
            bad("fairness.min_group_size", "must be >= 1")
        if fz.n_boot < 0:
            bad("fairness.n_boot", "must be >= 0")
        if len(fz.four_fifths_band) != 2 or not 0 < fz.four_fifths_band[0] <= 1 <= fz.four_fifths_band[1]:
            bad("fairness.four_fifths_band", "must be [low <= 1, high >= 1], e.g. [0.8, 1.25]")
        for feat in fz.mitigation.sensitive_features:
            if feat not in fz.sensitive_features:
                bad("fairness.mitigation.sensitive_features", f"{feat!r} is not in fairness.sensitive_features")
        for i, inter in enumerate(fz.intersections):
            for feat in inter:
                if feat not in fz.sensitive_features:
                    bad(f"fairness.intersections[{i}]", f"{feat!r} is not in fairness.sensitive_features")
        for i, rule in enumerate(fz.rules):
            key = f"fairness.rules[{i}]"
            known = (
                set(fz.sensitive_features)
                | {"|".join(x) for x in fz.intersections}
                | {"×".join(x) for x in fz.intersections}
            )
            if rule.feature not in known:
                bad(f"{key}.feature", f"{rule.feature!r} is not a sensitive feature or intersection ({sorted(known)})")
            if (rule.min is None) == (rule.max is None):
                bad(key, "give exactly one of min or max")
            value = rule.min if rule.min is not None else rule.max
            if rule.metric.endswith("_ratio") or rule.metric.startswith("disparate_impact"):
                if not 0 <= value <= 1 and rule.metric.endswith("_ratio"):
                    bad(
                        f"{key}.{'min' if rule.min is not None else 'max'}",
                        f"{value} is impossible for a ratio in [0, 1]",
                    )
            if rule.metric.endswith("_difference") and not 0 <= value <= 1:
                bad(
                    f"{key}.{'min' if rule.min is not None else 'max'}",
                    f"{value} is impossible for a difference in [0, 1]",
                )
    if policy.explanations is not None:
        ex = policy.explanations
        if ex.additivity_tolerance <= 0:
            bad("explanations.additivity_tolerance", "must be > 0")
        if not 0 <= ex.ndcg_min <= 1:
            bad("explanations.ndcg_min", "must be in [0, 1]")
        if ex.top_k_reasons < 1:
            bad("explanations.top_k_reasons", "must be >= 1")
    if policy.explanations is not None:
        ex = policy.explanations
        if ex.ndcg_top_k is not None and ex.ndcg_top_k < 1:
            bad("explanations.ndcg_top_k", "must be >= 1 (or omitted for all features)")
        if ex.max_rows is not None and ex.max_rows < 1:
            bad("explanations.max_rows", "must be >= 1 (or omitted for the whole holdout)")
    d = policy.drift
    if not d.wasserstein_threshold > 0:
        bad("drift.wasserstein_threshold", "must be > 0")
    if not 0 < d.jensenshannon_threshold <= 1:
        bad("drift.jensenshannon_threshold", "must be in (0, 1]")
    if not d.prediction_psi_act > 0:
        bad("drift.prediction_psi_act", "must be > 0")
    mon = policy.monitoring
    if mon.min_batch_rows < 1:
        bad("monitoring.min_batch_rows", "must be >= 1")
    if mon.summary_last_n_batches < 1:
        bad("monitoring.summary_last_n_batches", "must be >= 1")
    if mon.webhook_url is not None and not mon.webhook_url.startswith(("http://", "https://")):
        bad("monitoring.webhook_url", "must be an http:// or https:// URL")
    if not 0 < d.psi_warn <= d.psi_act:
        bad("drift.psi_warn", f"must be > 0 and <= drift.psi_act ({d.psi_act})")
    if not 0 < d.dataset_drift_share <= 1:
        bad("drift.dataset_drift_share", "must be in (0, 1]")
    if d.bins < 2:
        bad("drift.bins", "must be >= 2")
    if not 0 < d.p_value < 1:
        bad("drift.p_value", "must be in (0, 1)")
    for name, tol in policy.monitoring.performance_tolerance.items():
        if name not in METRICS:
            bad(f"monitoring.performance_tolerance.{name}", f"unknown metric; known: {sorted(METRICS)}")
        if not 0 <= tol <= 1:
            bad(f"monitoring.performance_tolerance.{name}", "must be in [0, 1]")


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from None
    try:
        policy = _build(Policy, data, "")
        _check(policy)
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from None
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return dataclasses.replace(policy, sha256=digest, path=source)


def load_policy(path: str | Path) -> Policy:
    """Load and validate the policy file; raises :class:`PolicyError` naming the file and key."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(f"{path}: policy file not found") from None
    policy = parse_policy(raw.decode("utf-8"), source=str(path))
    # hash the bytes exactly as stored (sha256sum reproduces it)
    return dataclasses.replace(policy, sha256=hashlib.sha256(raw).hexdigest())


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
