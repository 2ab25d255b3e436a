"""An alias move as one crash-safe transaction: intent record, registry writes, commit record.

Under the promotion lock (an OS file lock, or in the prod profile a PostgreSQL advisory lock: either is
released when its holder dies; a waiter gives up after a bounded wait naming the holder) a move is:

1. a ``promotion_intent`` record in the decision log: the registry state before and after;
2. the registry writes (history tag, ``champion`` alias, ``previous-champion`` alias);
3. the commit record (``promotion`` / ``override`` / ``rollback``) naming the intent's hash.

A process killed anywhere in between leaves an intent without a commit. The next process that takes
the lock (promote, rollback, the ``champion`` step, status, audit) runs :func:`recover`: if nothing
had moved the intent is aborted (``promotion_aborted``); if the registry is part-way or fully there,
the move is completed and committed (``recovered: true``). Either way it is in the log.
:func:`consistency_problems` replays the log's committed moves against the registry for the audit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from mlgov_assets.core.audit.decision_log import DecisionLog, Record
from mlgov_assets.core.errors import MlgovError
from mlgov_assets.core.faults import fault_point
from mlgov_assets.core.models.registry import ChampionState, promotion_guard

if TYPE_CHECKING:
    from mlgov_assets.core.models.registry import Registry

__all__ = [
    "HEAD_TAG",
    "MOVES",
    "Intent",
    "StateUnwritable",
    "consistency_problems",
    "execute",
    "explained_write_errors",
    "promotion_lock",
    "recover",
    "replay",
    "unfinished",
]

HEAD_TAG = "mlgov.decision_log_head"
MOVES = ("promotion", "override", "rollback")
_LOG = logging.getLogger("mlgov.recovery")


class StateUnwritable(MlgovError):
    """The state directory refused a write (read-only, full disk, permissions): exit 2."""


@contextlib.contextmanager
def explained_write_errors(what: str) -> Iterator[None]:
    """An OSError inside the block becomes one sentence saying what happened to the champion."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or "the mlgov state directory"
        raise StateUnwritable(
            f"{what} failed: cannot write {where} ({exc.strerror or exc}). The champion did not move, or the "
            "move already begun is completed (or aborted) and recorded by the next promote, rollback or status"
        ) from exc


class Intent(BaseModel):
    """What a move is about to do, logged before the registry is touched."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: Literal["promotion", "override", "rollback"]
    before: ChampionState
    after: ChampionState
    reason: str
    request_reason: str
    blockers: list[str]
    dagster_run_id: str | None
    policy_sha256: str
    #: approval mode: the request record's hash and the approval records' hashes the move rests on
    approval_request: str | None = None
    approvals: list[str] = []


def _log(registry: Registry) -> DecisionLog:
    return DecisionLog(registry.settings.decision_log)


@contextlib.contextmanager
def promotion_lock(registry: Registry, *, purpose: str, timeout: float | None = None) -> Iterator[None]:
    """The one lock every alias move (and every recovery) holds; bounded wait (see ``core/locks``):
    a file lock (embedded) or a PostgreSQL advisory lock (prod), from ``registry.promotion_guard``."""
    with promotion_guard(registry.settings, purpose=f"{purpose} (pid {os.getpid()})", timeout=timeout):
        yield


def _version(rec: Record) -> int | None:
    return int(rec.model_version) if rec.model_version and rec.model_version.isdigit() else None


def unfinished(records: Sequence[Record], model_name: str) -> list[Record]:
    """Intent records of ``model_name`` that no commit or abort record closes."""
    closed = {r.payload.get("intent_hash") for r in records if r.kind in (*MOVES, "promotion_aborted")}
    return [r for r in records if r.kind == "promotion_intent" and r.model_name == model_name and r.hash not in closed]


def _publish(registry: Registry, intent: Intent, actor: str) -> None:
    """Witness the log's head on the new champion and say who moved it (after the commit)."""
    version = str(intent.after.champion)
    head = json.dumps(_log(registry).head(), sort_keys=True)
    registry.client.set_model_version_tag(registry.name, version, HEAD_TAG, head)
    if intent.op != "rollback":
        registry.client.set_model_version_tag(registry.name, version, "mlgov.promoted_by", actor)
    if intent.op == "override":
        registry.client.set_model_version_tag(
            registry.name, version, "mlgov.override_justification", intent.reason[:4000]
        )


def _commit(registry: Registry, rec: Record, intent: Intent, *, actor: str, recovered: bool) -> Record:
    payload: dict[str, Any] = {
        "intent_index": rec.index,
        "intent_hash": rec.hash,
        "recovered": recovered,
        "dagster_run_id": intent.dagster_run_id,
    }
    if intent.op == "rollback":
        payload |= {"from_version": intent.before.champion, "to_version": intent.after.champion}
    else:
        payload |= {
            "previous": intent.before.champion,
            "blockers_overridden": intent.blockers,
            "request_reason": intent.request_reason,
        }
        if intent.approval_request is not None:  # only in approval mode: automatic records are unchanged
            payload |= {"approval_request": intent.approval_request, "approvals": intent.approvals}
    done = _log(registry).append(
        intent.op,
        actor=actor,
        reason=intent.reason,
        model_name=registry.name,
        model_version=intent.after.champion,
        payload=payload,
        evidence_hashes={"policy_sha256": intent.policy_sha256},
    )
    fault_point("promotion.after_commit")
    _publish(registry, intent, actor)
    return done


def execute(registry: Registry, intent: Intent, *, actor: str) -> Record:
    """Intent, registry writes, commit (the caller holds :func:`promotion_lock`); the commit record."""
    rec = _log(registry).append(
        "promotion_intent",
        actor=actor,
        reason=f"{intent.op} to version {intent.after.champion} begins: {intent.reason}",
        model_name=registry.name,
        model_version=intent.after.champion,
        payload=intent.model_dump(mode="json", exclude_defaults=True),  # approval fields only when set
        evidence_hashes={"policy_sha256": intent.policy_sha256},
    )
    fault_point("promotion.after_intent")
    registry.apply_champion_state(intent.after)
    fault_point("promotion.before_commit")
    return _commit(registry, rec, intent, actor=actor, recovered=False)


def _abort(registry: Registry, rec: Record, found: ChampionState, why: str, *, actor: str) -> str:
    _log(registry).append(
        "promotion_aborted",
        actor=actor,
        reason=why,
        model_name=registry.name,
        model_version=rec.model_version,
        payload={"intent_index": rec.index, "intent_hash": rec.hash, "found": found.model_dump(mode="json")},
        evidence_hashes={},
    )
    return why


def _settle(registry: Registry, rec: Record, *, actor: str) -> str:
    """Complete or abort one unfinished intent; what was done, in words."""
    try:
        intent = Intent.model_validate(rec.payload)
    except ValidationError as exc:
        now = registry.champion_state()
        why = f"intent record {rec.index} is unreadable ({exc.error_count()} problem(s)): aborted, nothing changed"
        return _abort(registry, rec, now, why, actor=actor)
    now = registry.champion_state()
    what = f"{intent.op} {intent.before.champion} -> {intent.after.champion} (intent record {rec.index})"
    if now.champion == intent.before.champion and now.history == intent.before.history:
        return _abort(registry, rec, now, f"interrupted {what} had moved nothing: aborted", actor=actor)
    if now.champion in (intent.before.champion, intent.after.champion) and now.history in (
        intent.before.history,
        intent.after.history,
    ):
        registry.apply_champion_state(intent.after)
        _commit(registry, rec, intent, actor=actor, recovered=True)
        return f"interrupted {what} was part-way or fully applied: completed and committed"
    why = (
        f"interrupted {what} finds the registry in neither its before nor its after state "
        f"(champion {now.champion}, history {now.history}): aborted, registry left as found; "
        "`mlgov audit verify` reports the disagreement"
    )
    return _abort(registry, rec, now, why, actor=actor)


def recover(registry: Registry, *, actor: str) -> list[str]:
    """Finish whatever a dead process left (the caller holds :func:`promotion_lock`): the log's
    tail, unfinished intents, MLflow runs still RUNNING for a dead process. Logged; returns notes."""
    log = _log(registry)
    notes = [f"decision log: {n}" for n in log.recover()]
    for rec in unfinished(log.read(model_name=registry.name), registry.name):
        notes.append(_settle(registry, rec, actor=f"{actor} (recovery)"))
    ended = registry.end_dead_runs()
    if ended:
        notes.append(f"MLflow run(s) {', '.join(ended)} of dead processes ended as FAILED")
    for note in notes:
        _LOG.warning("mlgov recovery: %s", note)
    return notes


def replay(records: Sequence[Record], model_name: str) -> tuple[list[int], list[str]]:
    """The champion history the log's committed moves imply, and the moves that do not fit it."""
    history: list[int] = []
    problems: list[str] = []
    for r in records:
        version = _version(r)
        if r.model_name != model_name or r.kind not in MOVES or version is None:
            continue
        if r.kind != "rollback":
            history.append(version)
            continue
        history = history[:-1]
        if not history or history[-1] != version:
            problems.append(f"rollback record {r.index} goes to version {version}, but the log's history is {history}")
    return history, problems


def consistency_problems(registry: Registry, records: Sequence[Record]) -> list[str]:
    """Where the registry's alias and history disagree with the decision log (empty: they agree)."""
    expected, problems = replay(records, registry.name)
    problems += [
        f"transaction intent record {r.index} ({r.model_version}) has no commit: any promote, rollback or "
        "status completes or aborts it"
        for r in unfinished(records, registry.name)
    ]
    state = registry.champion_state()
    want = expected[-1] if expected else None
    if state.champion != want:
        problems.append(
            f"the champion alias names version {state.champion}, but the decision log's committed moves make "
            f"it {want}: the alias moved without a record (or a record has no move)"
        )
    if state.history != expected:
        problems.append(
            f"the registry's champion history {state.history} disagrees with the history the decision log's "
            f"committed moves imply, {expected}"
        )
    return problems
