"""The ``checks`` link: every gate verdict agrees across the version tag, the evidence artifact,
the decision log (whose record carries the evidence's canonical hash) and the Dagster check;
promotion only with every required gate passed or an override on record; the data checks passed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlgov_assets.core.audit.decision_log.records import Record
from mlgov_assets.core.audit.lineage.facts import CheckEvaluation, Facts
from mlgov_assets.core.audit.lineage.model import POLICY_ARTIFACT, Link, make_link
from mlgov_assets.core.integrity import canonical_hash

__all__ = ["check_gates", "gate_names", "latest_gate_record"]


def gate_names(tags: Mapping[str, str]) -> list[str]:
    """The gates recorded on a version (tags ``mlgov.gate.<name>``)."""
    return sorted(k[len("mlgov.gate.") :] for k in tags if k.startswith("mlgov.gate.") and k.count(".") == 2)


def _required_gates(facts: Facts) -> list[str]:
    """Gates the policy this version was governed under requires (parsed from its stored copy)."""
    from mlgov_assets.core.governance.policy import PolicyError, load_policy

    text = facts.artifact_text(POLICY_ARTIFACT)
    if text:
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "policy.yaml"
            p.write_text(text, encoding="utf-8")
            try:
                return list(load_policy(p).required_model_gates())
            except (PolicyError, ValueError, TypeError):
                pass
    return ["metric_floors", "champion_comparison"]


def _record_problems(g: str, verdict: bool, evidence: Any, rec: Record | None, log_error: str | None) -> list[str]:
    """The decision-log record of gate ``g`` against its verdict and evidence."""
    if rec is None:
        return [] if log_error else [f"gate {g}: no gate_evaluation record in the decision log"]
    problems = []
    if evidence is not None and canonical_hash(evidence) != rec.evidence_hashes.get("evidence_sha256"):
        problems.append(
            f"gate {g}: evidence artifact gates/{g}.json does not hash to what decision record "
            f"#{rec.index} recorded: altered after the evaluation"
        )
    if bool(rec.payload.get("passed")) != verdict:
        problems.append(f"gate {g}: decision record #{rec.index} says passed={rec.payload.get('passed')}")
    return problems


def latest_gate_record(facts: Facts, g: str) -> Record | None:
    """The latest ``gate_evaluation`` record of gate ``g`` among the version's decisions."""
    evals = (r for r in reversed(facts.decisions) if r.kind == "gate_evaluation")
    return next((r for r in evals if r.payload.get("gate") == g), None)


def _dagster_check(facts: Facts, g: str) -> CheckEvaluation | None:
    """The latest Dagster check evaluation of gate ``g`` on this version."""
    version = str(facts.model.version)
    checks = facts.dagster.checks if facts.dagster is not None else []
    return next(
        (c for c in reversed(checks) if c.gate == g and str(c.metadata.get("model_version", version)) == version),
        None,
    )


def _superseded(facts: Facts, g: str, dag: CheckEvaluation, rec: Record | None) -> bool:
    """The Dagster check is an earlier evaluation than the tag's verdict: the version (reused by
    fingerprint) was re-evaluated later, under another policy or by another run."""
    policy = facts.tags.get(f"mlgov.gate.{g}.policy_sha256")
    if dag.metadata.get("policy_sha256") not in (None, policy):
        return True
    return rec is not None and dag.run_id is not None and rec.payload.get("dagster_run_id") != dag.run_id


def _gate_row(facts: Facts, g: str, problems: list[str], warnings: list[str]) -> dict[str, Any]:
    """Cross-check one gate (appending to ``problems``/``warnings``); its row of the link's evidence."""
    tags = facts.tags
    verdict = tags[f"mlgov.gate.{g}"] == "passed"
    evidence = facts.artifact_json(f"gates/{g}.json")
    rec = latest_gate_record(facts, g)
    if evidence is None:
        problems.append(f"gate {g}: evidence artifact gates/{g}.json missing or unreadable")
    elif bool(evidence.get("passed")) != verdict:
        problems.append(f"gate {g}: tag says {'passed' if verdict else 'failed'}, evidence artifact disagrees")
    problems += _record_problems(g, verdict, evidence, rec, facts.log.read_error)
    dag = _dagster_check(facts, g)
    if dag is not None and dag.passed != verdict:
        if _superseded(facts, g, dag, rec):
            warnings.append(
                f"gate {g}: the training run's Dagster check {dag.check} said passed={dag.passed}; the version "
                f"was re-evaluated later (decision record #{rec.index if rec else '?'}), whose verdict the tag holds"
            )
        else:
            problems.append(f"gate {g}: Dagster check {dag.check} passed={dag.passed}, the tag disagrees")
    return {
        "gate": g,
        "passed": verdict,
        "policy_sha256": tags.get(f"mlgov.gate.{g}.policy_sha256"),
        "decision_record": rec.index if rec else None,
        "dagster_check": dag.check if dag else None,
    }


def _promotion_findings(facts: Facts, problems: list[str], warnings: list[str]) -> None:
    """A promotion despite a failed required gate needs an override on record."""
    tags, version = facts.tags, str(facts.model.version)
    kinds = {r.kind for r in facts.decisions if r.model_version == version}
    failed_required = [g for g in _required_gates(facts) if tags.get(f"mlgov.gate.{g}") != "passed"]
    if failed_required and "promotion" in kinds and "override" not in kinds:
        problems.append(
            f"promoted although required gate(s) {failed_required} did not pass, and no override is recorded"
        )
    elif failed_required and "override" in kinds:
        warnings.append(f"promoted by OVERRIDE despite gate(s) {failed_required} (justification in the decision log)")


def check_gates(facts: Facts) -> Link:
    """Gate verdicts agree everywhere they were recorded; overrides are on record; data checks passed."""
    gates = gate_names(facts.tags)
    dag_checks = facts.dagster.checks if facts.dagster is not None else []
    problems: list[str] = []
    warnings: list[str] = []
    log_error = facts.log.read_error
    if log_error:
        problems.append(
            f"the decision log cannot be read ({log_error}): gate verdicts cannot be cross-checked against it"
        )
    rows = [_gate_row(facts, g, problems, warnings) for g in gates]
    _promotion_findings(facts, problems, warnings)
    for c in dag_checks:
        if c.role == "data" and not c.passed and c.blocking:
            problems.append(
                f"blocking check {c.check} on {c.asset} failed, yet the model consumed that materialization"
            )
    upstream = sum(1 for c in dag_checks if c.role == "data")
    return make_link(
        "checks",
        f"{len(gates)} gate(s) agree across tag, evidence, decision log and Dagster; "
        f"{upstream} check(s) on the consumed materializations",
        problems,
        warnings,
        {"gates": rows},
    )
