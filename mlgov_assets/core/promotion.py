"""Governance decisions: record gate verdicts, promote, roll back — each one written to the
model version (tags), the MLflow run (evidence JSON) and the hash-chained decision log.

These are the only functions that move the ``champion`` alias; in the product they run inside
the ``champion`` asset (UI "Materialize", ``mlgov train``, ``mlgov promote``/``rollback``), so
every alias move is also a Dagster materialization with its run id.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from .audit import DecisionLog
from .gates import GateResult
from .integrity import canonical_hash
from .policy import Policy
from .registry import ChampionChanged, PromotionRefused, Registry

__all__ = ["record_gates", "promote", "rollback", "ChampionChanged", "PromotionRefused", "status"]


HEAD_TAG = "mlgov.decision_log_head"


def _log(registry: Registry) -> DecisionLog:
    return DecisionLog(registry.settings.decision_log)


def _publish_head(registry: Registry, version: int) -> None:
    """Witness the decision log's head on the model version (see core/audit.py): `mlgov audit
    verify` checks the log still extends every published head, so a consistent rewrite of log +
    head file (e.g. dropping this decision) is detected from the registry."""
    registry.client.set_model_version_tag(registry.name, str(version), HEAD_TAG,
                                          json.dumps(_log(registry).head(), sort_keys=True))


def record_gates(registry: Registry, policy: Policy, version: int, results: list[GateResult], *,
                 actor: str, severity: str = "ERROR", dagster_run_id: Optional[str] = None) -> None:
    for r in results:
        evidence = r.to_dict() | {"dagster_run_id": dagster_run_id}
        registry.record_gate(version, r.gate, passed=r.passed, severity=severity, policy_sha256=policy.sha256,
                             summary=r.summary, evidence=evidence)
        _log(registry).append(
            "gate_evaluation", actor=actor, reason=f"{r.gate}: {'passed' if r.passed else 'FAILED'} — {r.summary}",
            model_name=registry.name, model_version=version,
            payload={"gate": r.gate, "passed": r.passed, "severity": severity, "rows": r.rows,
                     "details": r.details, "dagster_run_id": dagster_run_id},
            evidence_hashes={"policy_sha256": policy.sha256, "evidence_sha256": canonical_hash(evidence)})


def promote(registry: Registry, policy: Policy, version: int, *, actor: str, reason: str,
            expected_current: Any = "compared", override_justification: str = "",
            dagster_run_id: Optional[str] = None) -> dict[str, Any]:
    """Make ``version`` champion if it passed every gate the current policy requires.

    ``expected_current="compared"`` (the default) uses the champion the comparison gate was
    evaluated against, so the move is compare-and-set against the decision's own premise.
    A refusal is logged and raised; nothing about the registry changes.
    """
    current = registry.champion_version()
    base = {"actor": actor, "model_name": registry.name, "model_version": version}
    hashes = {"policy_sha256": policy.sha256}
    if current == version:
        return {"promoted": False, "champion": version, "previous": current,
                "reason": f"version {version} is already champion (nothing to do)"}
    blockers = registry.promotion_blockers(version, policy.required_model_gates(), policy.sha256)
    if blockers and not override_justification.strip():
        _log(registry).append("rejection", reason="; ".join(blockers), payload={"blockers": blockers, "dagster_run_id": dagster_run_id},
                              evidence_hashes=hashes, **base)
        raise PromotionRefused(f"version {version} may not become champion: " + "; ".join(blockers))
    if expected_current == "compared":
        details = registry.gate_details(version, "champion_comparison")
        expected_current = details.get("compared_champion_version", current) if details else current
        if blockers:  # an override is decided against what is champion now
            expected_current = current
    previous = registry.move_champion(version, expected_current=expected_current, history_op="push")
    kind = "override" if blockers else "promotion"
    _log(registry).append(kind, reason=override_justification.strip() if blockers else reason,
                          payload={"previous": previous, "blockers_overridden": blockers, "request_reason": reason,
                                   "dagster_run_id": dagster_run_id}, evidence_hashes=hashes, **base)
    _publish_head(registry, version)
    registry.client.set_model_version_tag(registry.name, str(version), "mlgov.promoted_by", actor)
    if blockers:
        registry.client.set_model_version_tag(registry.name, str(version), "mlgov.override_justification",
                                              override_justification.strip()[:4000])
    return {"promoted": True, "champion": version, "previous": previous, "kind": kind,
            "reason": override_justification.strip() if blockers else reason}


def rollback(registry: Registry, policy: Policy, *, actor: str, reason: str,
             dagster_run_id: Optional[str] = None) -> dict[str, Any]:
    """Champion back to the one before it (the promotion history's previous entry)."""
    if not reason.strip():
        raise ValueError("rollback needs a reason (it is recorded in the decision log)")
    history = registry.champion_history()
    current = registry.champion_version()
    if current is None or len(history) < 2:
        raise PromotionRefused("nothing to roll back to: there is no previous champion")
    target = history[-2]
    registry.move_champion(target, expected_current=current, history_op="pop")
    _log(registry).append("rollback", actor=actor, reason=reason, model_name=registry.name, model_version=target,
                          payload={"from_version": current, "to_version": target, "dagster_run_id": dagster_run_id},
                          evidence_hashes={"policy_sha256": policy.sha256})
    _publish_head(registry, target)
    return {"promoted": True, "champion": target, "previous": current, "kind": "rollback", "reason": reason}


def status(registry: Registry, policy: Policy) -> dict[str, Any]:
    """Champion, its metrics and data md5, and every gate's verdict, for people and machines."""
    champ = registry.champion_version()
    out: dict[str, Any] = {"model_name": registry.name, "policy": {"path": policy.path, "sha256": policy.sha256},
                           "champion": None, "history": registry.champion_history(), "versions": []}
    for v in registry.versions():
        info = registry.version_info(v)
        gates = {name: {"verdict": "passed" if g.passed else "failed", "summary": g.summary,
                        "severity": g.severity, "policy_sha256": g.policy_sha256,
                        "current_policy": g.policy_sha256 == policy.sha256}
                 for name, g in sorted(registry.gate_records(v).items())}
        row = {"version": v, "aliases": info["aliases"], "metrics": info["metrics"],
               "train_data_md5": info["tags"].get("mlgov.train_data_md5"),
               "git_commit": info["tags"].get("mlgov.git_commit"), "variant": info["tags"].get("mlgov.variant"),
               "gates": gates,
               "promotable": not registry.promotion_blockers(v, policy.required_model_gates(), policy.sha256)}
        out["versions"].append(row)
        if v == champ:
            out["champion"] = row
    return out
