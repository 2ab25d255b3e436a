"""The audit: resolve a MODEL_REF, gather its lineage, verify every link in ``LINKS`` order; and the
decision log verified against every head published on a model version.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from mlgov_assets.core.audit.decision_log.records import LogIntegrityError, read_records
from mlgov_assets.core.audit.decision_log.verify import verify as verify_log
from mlgov_assets.core.audit.lineage.approvals import approval_problems, citation_problems
from mlgov_assets.core.audit.lineage.facts import Facts
from mlgov_assets.core.audit.lineage.gates import check_gates
from mlgov_assets.core.audit.lineage.gather import gather
from mlgov_assets.core.audit.lineage.model import (
    LINKS,
    AuditReport,
    Link,
    PublishedHead,
    WitnessedLog,
    make_link,
)
from mlgov_assets.core.audit.lineage.refs import resolve_version
from mlgov_assets.core.audit.lineage.verify import (
    check_dagster_run,
    check_git_commit,
    check_materializations,
    check_mlflow_run,
    check_model_artifacts,
    check_model_version,
    check_policy,
    check_training_data,
)
from mlgov_assets.core.governance.transaction import consistency_problems, replay, unfinished

if TYPE_CHECKING:
    from mlgov_assets.core.models.registry import Registry

__all__ = [
    "DagsterReader",
    "audit",
    "check_decision_log",
    "registry_agreement",
    "verify_against_registry",
    "verify_lineage",
    "verify_with_witnesses",
]

#: ``reader(dagster_run_id, version)`` -> the plain-data Dagster view of the run, or None to skip.
DagsterReader = Callable[[str, int], Mapping[str, Any] | None]


def _witnesses(witnesses: Iterable[PublishedHead | Mapping[str, Any]]) -> list[PublishedHead]:
    out = []
    for w in witnesses:
        if isinstance(w, PublishedHead):
            out.append(w)
        else:
            head = w.get("head")
            out.append(
                PublishedHead(version=w["version"], head=head if isinstance(head, dict) else None, raw=w.get("raw"))
            )
    return out


def verify_with_witnesses(
    path: str | os.PathLike[str], witnesses: Iterable[PublishedHead | Mapping[str, Any]]
) -> WitnessedLog:
    """Verify the log's chain and head anchor, then that it still extends every published head.

    Names the first bad record index (None if the problem is not a record, e.g. a missing anchor).
    """
    heads = _witnesses(witnesses)
    problems = [f"unreadable head witness on version {w.version}: {w.raw!r}" for w in heads if w.head is None]
    result = verify_log(path)
    problem, checked = result.problem, 0
    cut_to = _repaired_to(path) if result.ok else []
    for w in heads:
        if not result.ok or w.head is None:
            continue
        if any(isinstance(w.head.get("count"), int) and kept < w.head["count"] for kept in cut_to):
            continue  # published before a recorded repair cut the log below it (the repair names what was lost)
        try:
            result = verify_log(path, expected_head=w.head)
        except ValueError as exc:
            problems.append(f"head witness on version {w.version} is malformed: {exc}")
            continue
        checked += 1
        problem = f"{result.problem} (head published on version {w.version}: {w.head})" if not result.ok else None
    return WitnessedLog(
        path=str(path),
        ok=result.ok and not problems,
        count=result.count,
        first_bad_index=result.first_bad_index,
        problem=problem if not result.ok else None,
        last_hash=result.last_hash,
        witnesses_checked=checked,
        witness_problems=problems,
    )


def verify_against_registry(
    registry: Registry, path: str | os.PathLike[str], witnesses: Iterable[PublishedHead | Mapping[str, Any]]
) -> WitnessedLog:
    """:func:`verify_with_witnesses`, then the registry's champion alias and history against the
    moves the log commits (an alias moved without a record, a history that disagrees), and every
    promotion made in approval mode against its approvals (``lineage/approvals``)."""
    res = verify_with_witnesses(path, witnesses)
    if not res.ok:
        return res
    try:
        records = read_records(path)
        extra = consistency_problems(registry, records) + approval_problems(registry, records)
    except LogIntegrityError as exc:
        extra = [str(exc)]
    if not extra:
        return res
    return res.model_copy(update={"ok": False, "witness_problems": [*res.witness_problems, *extra]})


def registry_agreement(facts: Facts) -> list[str]:
    """The version's champion alias and the registry's history against the log's committed moves, and
    the approvals its promotion cites (approval mode)."""
    try:
        records = read_records(facts.log.path)
    except LogIntegrityError:
        return []  # reported by the chain check
    name, version = facts.model.name, facts.model.version
    expected, problems = replay(records, name)
    problems += [f"transaction intent record {r.index} has no commit" for r in unfinished(records, name)]
    problems += citation_problems(records, name, version)  # approval mode: the approvals it rests on
    if facts.champion_history != expected:
        problems.append(
            f"the registry's champion history {facts.champion_history} disagrees with the decision log's "
            f"committed moves, which imply {expected}"
        )
    want = expected[-1] if expected else None
    if ("champion" in facts.model.aliases) != (want == version):
        problems.append(
            f"the champion alias {'names' if 'champion' in facts.model.aliases else 'does not name'} version "
            f"{version}, but the decision log's last committed move makes version {want} champion"
        )
    return problems


def _repaired_to(path: str | os.PathLike[str]) -> list[int]:
    """How many records each recorded repair kept (``log_repair`` records that cut the log)."""
    try:
        repairs = read_records(path, kinds=["log_repair"])
    except LogIntegrityError:
        return []
    return [r.payload["records_kept"] for r in repairs if isinstance(r.payload.get("records_kept"), int)]


def check_decision_log(facts: Facts) -> Link:
    """The whole hash chain, its head anchor, every head published on a model version, and the
    registry's champion alias and history against the moves the log commits."""
    res = verify_with_witnesses(facts.log.path, facts.witnesses)
    problems = list(res.witness_problems) + (registry_agreement(facts) if res.ok else [])
    if res.problem:
        at = "" if res.first_bad_index is None else f"first bad record index {res.first_bad_index}: "
        problems.insert(0, f"decision log {res.path}: {at}{res.problem}")
    return make_link(
        "decision_log",
        f"{res.count} record(s) chain correctly, head anchor matches, "
        f"{res.witnesses_checked} published head(s) extended; {len(facts.decisions)} record(s) "
        "concern this version",
        problems,
        evidence=res.to_dict(),
    )


_CHECKS: dict[str, Callable[[Facts], Link]] = {
    "model_version": check_model_version,
    "model_artifacts": check_model_artifacts,
    "mlflow_run": check_mlflow_run,
    "dagster_run": check_dagster_run,
    "materializations": check_materializations,
    "training_data": check_training_data,
    "git_commit": check_git_commit,
    "policy": check_policy,
    "checks": check_gates,
    "decision_log": check_decision_log,
}


def verify_lineage(facts: Facts) -> list[Link]:
    """Every link of the chain, in ``LINKS`` order. A check that crashes is itself a failed link."""
    out = []
    for name in LINKS:
        try:
            out.append(_CHECKS[name](facts))
        except Exception as exc:
            what = f"{type(exc).__name__}: {exc}"
            out.append(Link(name=name, status="fail", summary=f"could not be verified: {what}", problems=[what]))
    return out


def audit(registry: Registry, ref: str, *, dagster_reader: DagsterReader | None = None) -> tuple[AuditReport, Facts]:
    """Resolve ``ref``, gather the lineage and verify it: (report, facts).

    Raises ModelRefError if ``ref`` is malformed or names no registered version.
    """
    version = resolve_version(registry, ref)
    run_id = registry.version_info(version).tags.get("mlgov.dagster_run_id")
    dagster = dagster_reader(run_id, version) if dagster_reader is not None and run_id else None
    facts = gather(registry, version, dagster=dagster)
    report = AuditReport(
        model_name=registry.name,
        version=version,
        ref=ref,
        aliases=facts.model.aliases,
        links=verify_lineage(facts),
    )
    return report, facts
