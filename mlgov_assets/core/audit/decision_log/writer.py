"""Appending to the decision log: one locked, fsync'ed line, then the witness and the head anchor,
each atomically; an interrupted append is completed (or its torn line dropped) by the next writer."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlgov_assets.core.audit.decision_log.records import (
    GENESIS_HASH,
    KINDS,
    Head,
    Record,
    head_path,
    locked,
    read_head,
    read_records,
    records,
    witness_path,
)
from mlgov_assets.core.audit.decision_log.recovery import current_tail, recover_tail, repair_tail
from mlgov_assets.core.audit.decision_log.verify import VerifyResult, verify
from mlgov_assets.core.faults import armed, fault_point
from mlgov_assets.core.integrity import canonical_hash, canonical_json, normalize_json, write_json_atomic

__all__ = ["DecisionLog"]

_HEX = frozenset("0123456789abcdef")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"decision log: {name} must be a non-empty string (who and why are mandatory), got {value!r}")
    return value


def _check_evidence(evidence: Mapping[str, str]) -> dict[str, str]:
    """Evidence values are hex digests (md5 32, git sha1 40, sha256 64, ...), named by their key."""
    if not isinstance(evidence, Mapping):
        raise TypeError(f"evidence_hashes must be a mapping name -> hex digest, got {type(evidence).__name__}")
    bad = [
        k
        for k, v in evidence.items()
        if not isinstance(k, str) or not isinstance(v, str) or not 32 <= len(v) <= 128 or set(v) - _HEX
    ]
    if bad:
        raise ValueError(f"evidence_hashes entries must be lowercase hex digests (32-128 chars); bad keys: {bad}")
    return dict(evidence)


def _check_identity(kind: str, model_name: object, model_version: object) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown decision kind {kind!r}; known: {sorted(KINDS)}")
    if model_version is not None and (isinstance(model_version, bool) or not isinstance(model_version, (str, int))):
        raise TypeError(f"model_version must be str, int or None, got {model_version!r}")
    if model_name is not None and not isinstance(model_name, str):
        raise TypeError(f"model_name must be str or None, got {model_name!r}")


class DecisionLog:
    """Append-only, hash-chained JSONL log of governance decisions at ``path`` (+ ``.head``, ``.lock``)."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], datetime] = _utc_now):
        self.path = Path(path)
        self._clock = clock

    def _now(self) -> str:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("decision log clock must return a timezone-aware datetime")
        return now.astimezone(UTC).isoformat(timespec="microseconds")

    def _tail(self) -> tuple[int, str]:
        """(next index, prev hash) after :func:`recovery.recover_tail` made the tail consistent."""
        tail = recover_tail(self.path)
        for action in tail.actions:
            self._write_record("log_repair", action.body(), self._repair_actor())
        return tail.next_index, tail.prev_hash

    def _repair_actor(self) -> str:
        return f"mlgov decision log (automatic recovery, pid {os.getpid()})"

    def recover(self) -> list[str]:
        """Complete an interrupted append (or drop an unwitnessed torn line) now; what was done, in words.

        Raises LogIntegrityError when only ``mlgov audit repair`` may decide."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with locked(self.path):
            tail = recover_tail(self.path)
            for action in tail.actions:
                self._write_record("log_repair", action.body(), self._repair_actor())
        return [a.summary for a in tail.actions]

    def repair(self, *, actor: str, reason: str) -> str | None:
        """``mlgov audit repair``: cut the log back to its longest valid chained prefix (at most one
        trailing line), re-anchor head and witness, and record the repair; None if nothing to repair."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with locked(self.path):
            action = repair_tail(self.path, reason=_check_text("reason", reason))
            if action is None:
                return None
            self._write_record("log_repair", action.body(), _check_text("actor", actor))
        return action.summary

    def append(
        self,
        kind: str,
        *,
        actor: str,
        reason: str,
        model_name: str | None,
        model_version: str | int | None,
        payload: Mapping[str, Any],
        evidence_hashes: Mapping[str, str],
    ) -> Record:
        """Append one decision, chained to the current tail; returns the written record.

        Serialised across processes by an fcntl lock on ``<log>.lock``; raises LogIntegrityError if
        the tail disagrees with the head anchor, ValueError/TypeError for a malformed decision.
        """
        _check_identity(kind, model_name, model_version)
        body_common = {
            "actor": _check_text("actor", actor),
            "kind": kind,
            "reason": _check_text("reason", reason),
            "model_name": model_name,
            "model_version": None if model_version is None else str(model_version),
            "payload": normalize_json(dict(payload), "payload"),
            "evidence_hashes": _check_evidence(evidence_hashes),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with locked(self.path):
            self._tail()
            return self._write_locked(body_common)

    def _write_record(self, kind: str, payload: dict[str, Any], actor: str) -> Record:
        """A record written by the log itself (a recovery), under the lock the caller holds."""
        return self._write_locked(
            {
                "actor": actor,
                "kind": kind,
                "reason": str(payload.get("summary") or kind),
                "model_name": None,
                "model_version": None,
                "payload": normalize_json(payload, "payload"),
                "evidence_hashes": {},
            }
        )

    def _write_locked(self, body_common: dict[str, Any]) -> Record:
        """Line (fsync'ed), then the witness, then the head: a crash between any two is completed
        by the next writer (:func:`recovery.recover_tail`)."""
        index, prev = current_tail(self.path)
        body = {"index": index, "time": self._now(), **body_common, "prev_hash": prev}
        record = {**body, "hash": canonical_hash(body)}
        anchor = {"count": index + 1, "last_hash": record["hash"]}
        self._write_line((canonical_json(record) + "\n").encode("utf-8"))
        fault_point("decision_log.after_line")
        write_json_atomic(witness_path(self.path), anchor)
        fault_point("decision_log.after_witness")
        write_json_atomic(head_path(self.path), anchor)
        return Record.model_validate(record)

    def _write_line(self, line: bytes) -> None:
        fault_point("decision_log.before_line")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if armed("decision_log.torn_line") is not None:  # a crash half-way through the write
                os.write(fd, line[: len(line) // 2])
                os.fsync(fd)
            fault_point("decision_log.torn_line")
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes; run verify")
            os.fsync(fd)
        finally:
            os.close(fd)

    def head(self) -> dict[str, int | str]:
        """{count, last_hash} to publish to an external witness, read under the lock."""
        with locked(self.path, exclusive=False):
            anchor = read_head(self.path)
        return (anchor or Head(count=0, last_hash=GENESIS_HASH)).to_dict()

    def verify(self, *, expected_head: Mapping[str, Any] | Head | None = None) -> VerifyResult:
        """``verify(self.path, ...)``."""
        return verify(self.path, expected_head=expected_head)

    def read(self, **filters: Any) -> list[Record]:
        """``read_records(self.path, **filters)``: typed records."""
        return read_records(self.path, **filters)

    def records(self, **filters: Any) -> list[dict[str, Any]]:
        """The JSON view (``records(self.path, **filters)``); prefer the typed :meth:`read`."""
        return records(self.path, **filters)
