"""Appending to the decision log: one locked, fsync'ed line, then the head anchor, atomically."""

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
    LogIntegrityError,
    Record,
    head_path,
    last_line,
    locked,
    parse_line,
    read_head,
    read_records,
    records,
)
from mlgov_assets.core.audit.decision_log.verify import VerifyResult, verify
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
        """(next index, prev hash), refusing to extend a log whose tail disagrees with its head."""
        head = read_head(self.path)
        line = last_line(self.path)
        if line is None:
            if head is not None and head.count != 0:
                raise LogIntegrityError(
                    f"{self.path} is empty but its head anchor records {head.count} record(s): truncated; run verify"
                )
            return 0, GENESIS_HASH
        if not line.endswith(b"\n"):
            raise LogIntegrityError(f"{self.path}: last line is incomplete (torn write); run verify")
        rec, problem = parse_line(line[:-1])
        if rec is None:
            raise LogIntegrityError(f"{self.path}: last record {problem}; run verify")
        if head is None or head.count != rec.index + 1 or head.last_hash != rec.hash:
            raise LogIntegrityError(
                f"{self.path}: last record (index {rec.index}) disagrees with the head anchor "
                f"{head.to_dict() if head else 'missing'}; run verify before appending"
            )
        return rec.index + 1, rec.hash

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
            index, prev = self._tail()
            body = {"index": index, "time": self._now(), **body_common, "prev_hash": prev}
            record = {**body, "hash": canonical_hash(body)}
            self._write_line((canonical_json(record) + "\n").encode("utf-8"))
            write_json_atomic(head_path(self.path), {"count": index + 1, "last_hash": record["hash"]})
        return Record.model_validate(record)

    def _write_line(self, line: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
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
