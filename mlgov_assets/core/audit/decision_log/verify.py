"""Verification of a decision log: every record, every link, the head anchor and external witnesses.

Names the first bad position (0-based) and what is wrong, in words. The threat model is in
docs/design-notes.md ("Audit").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.audit.decision_log.records import (
    GENESIS_HASH,
    Head,
    LogIntegrityError,
    Record,
    as_head,
    lock_path,
    locked,
    parse_line,
    read_head,
    read_witness,
    split_lines,
    witness_path,
)

__all__ = ["VerifyResult", "verify"]


class VerifyResult(BaseModel):
    """Outcome of :func:`verify`: the first bad position (0-based) and what is wrong, in words."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ok: bool
    count: int
    first_bad_index: int | None
    problem: str | None
    last_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def _fail(p: int | None, problem: str, n: int) -> VerifyResult:
    return VerifyResult(ok=False, count=n, first_bad_index=p, problem=problem)


def _supported(p: int, recs: list[Record | None], head: Head | None) -> bool:
    """Is the record at position p vouched for by its successor (or, if last, by the head)?

    Tells "p is genuine, something before it is wrong" from "p itself is the intruder".
    """
    rec = recs[p]
    assert rec is not None
    if p + 1 < len(recs):
        nxt = recs[p + 1]
        return nxt is not None and nxt.prev_hash == rec.hash
    return head is not None and head.last_hash == rec.hash


def _diagnose_link(p: int, recs: list[Record | None], pos_of: dict[str, int], head: Head | None) -> tuple[int, str]:
    """Name the first bad position when the record at p does not chain to position p-1."""
    rec = recs[p]
    assert rec is not None
    idx, prev = rec.index, rec.prev_hash
    q = -1 if prev == GENESIS_HASH else pos_of.get(prev)
    target = "genesis" if q == -1 else f"position {q}"
    if q is not None and q < p - 1:
        if _supported(p, recs, head):
            return q + 1, (
                f"record(s) at position {q + 1}..{p - 1} are not part of the chain (inserted): the "
                f"record at position {p} (index {idx}) chains directly to {target}"
            )
        return p, f"record at position {p} (index {idx}) forks from {target}: inserted or replayed"
    if q is not None:
        return p, (
            f"records are out of order: the record at position {p} (index {idx}) chains to the "
            f"record at position {q}, which comes later in the log"
        )
    if p > 0 and _supported(p, recs, head):
        if idx == p:
            return p - 1, (
                f"record at position {p - 1} was altered or replaced and re-hashed: record {p} "
                f"expects predecessor hash {prev[:16]}…, which no record has"
            )
        if idx > p:
            return p, f"record(s) with index {p}..{idx - 1} were deleted (position {p} holds index {idx})"
    return p, (
        f"record at position {p} (index {idx}) does not chain to its predecessor: prev_hash "
        f"{prev[:16]}… matches no record"
    )


def _check_head(recs: list[Record], head: Head | None, label: str, *, may_grow: bool) -> tuple[int | None, str] | None:
    """Compare a verified chain with an anchor: the head file (exact) or a witness (``may_grow``)."""
    n = len(recs)
    if head is None:
        return (
            (None, f"{label} is missing while the log has {n} record(s): truncation cannot be ruled out") if n else None
        )
    if head.count > n:
        return (
            n,
            f"log truncated: the {label} records {head.count} record(s), the log has {n}; index {n} onwards is missing",
        )
    anchored = recs[head.count - 1].hash if head.count else GENESIS_HASH
    if anchored != head.last_hash:
        at = max(head.count - 1, 0)
        return at, f"log rewritten at or before index {at}: its hash differs from the last_hash in the {label}"
    if head.count < n and not may_grow:
        return head.count, (
            f"record(s) {head.count}..{n - 1} are not covered by the {label} (count {head.count}): "
            "written outside DecisionLog.append, anchor rolled back, or a crash between the two writes"
        )
    return None


class _Snapshot(BaseModel):
    """Log bytes, head anchor and witness read under one shared lock, with their read errors."""

    model_config = ConfigDict(frozen=True)

    data: bytes
    head: Head | None
    head_error: str | None
    witness: Head | None
    witness_error: str | None


def _read_snapshot(log: Path) -> _Snapshot:
    """Log bytes, head anchor and witness, read as one consistent snapshot.

    A reader takes no lock while no writer ever created the lock file (a read-only mount). A writer
    creates it before its first byte, so a lock file that appeared during an unlocked read means a
    first append may have been half seen (a line without its head): that read is done again, locked."""
    unlocked = not lock_path(log).exists()
    snap = _read_files(log)
    if unlocked and lock_path(log).exists():
        snap = _read_files(log)
    return snap


def _read_files(log: Path) -> _Snapshot:
    head_error = witness_error = None
    head = witness = None
    with locked(log, exclusive=False):
        try:
            data = log.read_bytes()
        except FileNotFoundError:
            data = b""
        try:
            head = read_head(log)
        except LogIntegrityError as exc:
            head_error = str(exc)
        try:
            witness = read_witness(log)
        except LogIntegrityError as exc:
            witness_error = str(exc)
    return _Snapshot(data=data, head=head, head_error=head_error, witness=witness, witness_error=witness_error)


def _check_witness(good: list[Record], snap: _Snapshot, log: Path) -> tuple[int | None, str] | None:
    """The witness outside the log's files: the log must still extend it (it may be one behind the
    head only after an interrupted append, which the next writer completes)."""
    if snap.witness_error is not None:
        return None, snap.witness_error
    if snap.witness is None:
        if not good:
            return None
        return None, (
            f"the log's witness {witness_path(log)} is missing while the log has {len(good)} record(s): "
            "dropped trailing records cannot be ruled out (a log from before witnesses: "
            "`mlgov audit repair --reason TEXT` adopts it, recorded in the log)"
        )
    return _check_head(good, snap.witness, "witness", may_grow=True)


def _chain_problem(data: bytes, head: Head | None) -> tuple[list[Record], VerifyResult | None]:
    """Parse and chain-check every line: (records, None) or ([], the failure naming a position)."""
    lines = split_lines(data)
    n = len(lines)
    parsed = [
        parse_line(line) if complete else (None, "is incomplete (no trailing newline): a torn write")
        for line, complete in lines
    ]
    recs = [r for r, _ in parsed]
    pos_of: dict[str, int] = {}
    for p, maybe in enumerate(recs):
        if maybe is not None:
            pos_of.setdefault(maybe.hash, p)
    for p, (rec, problem) in enumerate(parsed):
        if rec is None:
            return [], _fail(p, f"record at position {p} (line {p + 1}) {problem}", n)
        if pos_of[rec.hash] < p:
            return [], _fail(p, f"record at position {p} duplicates the record at position {pos_of[rec.hash]}", n)
        before = recs[p - 1]
        expected_prev = before.hash if p and before is not None else GENESIS_HASH
        if rec.prev_hash != expected_prev:
            return [], _fail(*_diagnose_link(p, recs, pos_of, head), n)
        if rec.index != p:
            return [], _fail(p, f"record at position {p} carries index {rec.index}: index rewritten", n)
    return [r for r in recs if r is not None], None


def verify(path: str | os.PathLike[str], *, expected_head: Mapping[str, Any] | Head | None = None) -> VerifyResult:
    """Check every record, every link and the head anchor; name the first bad position.

    ``expected_head`` is an externally published ``head()`` (e.g. an MLflow tag): the log must still
    extend it. Raises ValueError if it is malformed.
    """
    snap = _read_snapshot(Path(path))
    good, failure = _chain_problem(snap.data, snap.head)
    if failure is not None:
        return failure
    n = len(good)
    if snap.head_error is not None:
        return _fail(None, snap.head_error, n)
    found = _check_head(good, snap.head, "head anchor", may_grow=False)
    if found is None:
        found = _check_witness(good, snap, Path(path))
    if found is None and expected_head is not None:
        found = _check_head(good, _as_head(expected_head), "externally witnessed head", may_grow=True)
    if found is not None:
        return _fail(found[0], found[1], n)
    return VerifyResult(
        ok=True, count=n, first_bad_index=None, problem=None, last_hash=good[-1].hash if good else GENESIS_HASH
    )


def _as_head(value: Mapping[str, Any] | Head) -> Head:
    if isinstance(value, Head):
        return value
    head = as_head(dict(value))
    if head is None:
        raise ValueError(f"expected_head must be {{count: int >= 0, last_hash: sha256}}, got {dict(value)!r}")
    return head
