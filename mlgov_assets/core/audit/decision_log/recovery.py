"""Recovering the decision log's tail after an interrupted append, and ``mlgov audit repair``.

An append writes the line (fsync'ed), then the witness, then the head. A crash (or a full disk, a
permission change) between any two leaves one of a few states, each recognised here:

* head (and maybe the witness) exactly one valid, chained record behind -> both are advanced;
* a torn partial last line that no anchor covers (unwitnessed garbage) -> cut off, its bytes kept
  in a quarantine file, and the cut recorded;
* anything else (a witnessed record damaged, anchors ahead of the log, a missing witness) -> a
  :class:`LogIntegrityError` naming ``mlgov audit repair --reason TEXT``, which cuts back at most one
  trailing line to the longest valid chain, re-anchors, and is itself recorded.

Callers hold the log's exclusive lock.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import JsonValue

from mlgov_assets.core.audit.decision_log.records import (
    GENESIS_HASH,
    Head,
    LogIntegrityError,
    Record,
    head_path,
    last_line,
    parse_line,
    read_head,
    read_witness,
    split_lines,
    witness_path,
)
from mlgov_assets.core.integrity import atomic_write_bytes, write_json_atomic

__all__ = ["Tail", "TailAction", "current_tail", "recover_tail", "repair_tail"]

REPAIR_HINT = "decide with `mlgov audit repair --reason TEXT` (the repair is recorded in the log)"
_PREFIX_CHARS = 120  # of dropped bytes quoted in a repair record (plus their sha256 and length)


@dataclass(frozen=True)
class TailAction:
    """One thing a recovery or repair did, for its ``log_repair`` record."""

    summary: str
    details: dict[str, JsonValue] = field(default_factory=dict)

    def body(self) -> dict[str, JsonValue]:
        return {"summary": self.summary, **self.details}


@dataclass(frozen=True)
class Tail:
    next_index: int
    prev_hash: str
    actions: list[TailAction]


def _show(anchor: Head | None) -> str:
    return f"{{count {anchor.count}, last_hash {anchor.last_hash[:16]}…}}" if anchor else "missing"


def _at(anchor: Head | None, count: int, last_hash: str) -> bool:
    return anchor is not None and anchor.count == count and anchor.last_hash == last_hash


def _legacy(path: Path) -> bool:
    """A log from before witnesses: no witness directory was ever created beside it."""
    return not witness_path(path).parent.exists()


def _dropped(data: bytes, path: Path) -> dict[str, JsonValue]:
    """What was cut: length, sha256, a short prefix, and where the bytes were kept."""
    digest = hashlib.sha256(data).hexdigest()
    kept = Path(f"{path}.dropped-{digest[:16]}")
    atomic_write_bytes(kept, data)
    return {
        "dropped_bytes": len(data),
        "dropped_sha256": digest,
        "dropped_prefix": data[:_PREFIX_CHARS].decode("utf-8", errors="replace"),
        "quarantined_to": kept.name,
    }


def _truncate(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def _anchor(path: Path, count: int, last_hash: str) -> None:
    anchor = {"count": count, "last_hash": last_hash}
    write_json_atomic(witness_path(path), anchor)
    write_json_atomic(head_path(path), anchor)


def _drop_torn_line(path: Path, line: bytes, head: Head | None, witness: Head | None) -> TailAction:
    data = path.read_bytes()
    keep = len(data) - len(line)
    complete = data[:keep].count(b"\n")
    covered = max(head.count if head else 0, witness.count if witness else 0)
    if covered > complete:
        raise LogIntegrityError(
            f"{path}: the last line is incomplete (a torn write) and the head/witness record {covered} "
            f"record(s) while {complete} are complete: a witnessed record was damaged; {REPAIR_HINT}"
        )
    details = _dropped(line, path)
    _truncate(path, keep)
    return TailAction(
        f"an interrupted append left a torn, unwitnessed partial line ({len(line)} bytes) after record "
        f"{complete - 1}: cut off automatically",
        {**details, "records_kept": complete},
    )


def recover_tail(path: Path) -> Tail:
    """Make the tail consistent (see the module doc) and return where the next record goes."""
    head, witness = read_head(path), read_witness(path)
    actions: list[TailAction] = []
    line = last_line(path)
    if line is not None and not line.endswith(b"\n"):
        actions.append(_drop_torn_line(path, line, head, witness))
        line = last_line(path)
    if line is None:
        if (head and head.count) or (witness and witness.count):
            raise LogIntegrityError(
                f"{path} is empty but its head anchor {_show(head)} / witness {_show(witness)} record "
                f"records: truncated; {REPAIR_HINT}"
            )
        return Tail(0, GENESIS_HASH, actions)
    rec, problem = parse_line(line[:-1])
    if rec is None:
        raise LogIntegrityError(f"{path}: the last record {problem}; {REPAIR_HINT}")
    n = rec.index + 1
    witness_ok = _at(witness, n, rec.hash) or (witness is None and _legacy(path))
    if _at(head, n, rec.hash) and witness_ok:
        if witness is None:
            _anchor(path, n, rec.hash)
            actions.append(TailAction(f"a log from before witnesses: witness created at {n} record(s)"))
        return Tail(n, rec.hash, actions)
    behind = _at(head, n - 1, rec.prev_hash)
    if behind and (witness_ok or _at(witness, n - 1, rec.prev_hash)):
        _anchor(path, n, rec.hash)
        actions.append(
            TailAction(
                f"an append was interrupted after writing record {rec.index} but before its anchors: "
                "head and witness advanced over it",
                {"record_index": rec.index, "record_hash": rec.hash},
            )
        )
        return Tail(n, rec.hash, actions)
    raise LogIntegrityError(
        f"{path}: the last record (index {rec.index}) disagrees with the head anchor {_show(head)} or the "
        f"witness {_show(witness)}: records dropped or anchors rewritten; {REPAIR_HINT}"
    )


def current_tail(path: Path) -> tuple[int, str]:
    """(next index, prev hash) of a log whose tail is consistent (after :func:`recover_tail`)."""
    line = last_line(path)
    if line is None:
        return 0, GENESIS_HASH
    rec, problem = parse_line(line.rstrip(b"\n"))
    if rec is None:
        raise LogIntegrityError(f"{path}: the last record {problem}; {REPAIR_HINT}")
    return rec.index + 1, rec.hash


def _valid_prefix(data: bytes) -> tuple[list[Record], int, int]:
    """(records of the longest valid chained prefix, its length in bytes, lines after it)."""
    lines = split_lines(data)
    good: list[Record] = []
    end = 0
    for line, complete in lines:
        rec = parse_line(line)[0] if complete else None
        prev = good[-1].hash if good else GENESIS_HASH
        if rec is None or rec.index != len(good) or rec.prev_hash != prev:
            break
        good.append(rec)
        end += len(line) + 1
    return good, end, len(lines) - len(good)


def _readable(reader: Callable[[Path], Head | None], path: Path) -> tuple[Head | None, str]:
    try:
        anchor = reader(path)
    except LogIntegrityError as exc:
        return None, f"unreadable ({str(exc)[:200]})"
    return anchor, _show(anchor)


def repair_tail(path: Path, *, reason: str) -> TailAction | None:
    """Cut back at most one trailing line to the longest valid chain and re-anchor head and
    witness to it; None when the log, head and witness already agree. Refuses (LogIntegrityError)
    to cut more: damage inside the log is evidence, not an interrupted append."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    good, end, extra = _valid_prefix(data)
    if extra > 1:
        raise LogIntegrityError(
            f"{path}: repairing would drop {extra} lines from position {len(good)} on: that is damage or "
            "tampering inside the log, not an interrupted append; it is kept as evidence "
            "(`mlgov audit verify` names the first bad record)"
        )
    count, last = len(good), good[-1].hash if good else GENESIS_HASH
    head, head_shown = _readable(read_head, path)
    witness, witness_shown = _readable(read_witness, path)
    if not extra and _at(head, count, last) and _at(witness, count, last):
        return None
    details: dict[str, JsonValue] = {
        "reason": reason,
        "records_kept": count,
        "previous_head": head_shown,
        "previous_witness": witness_shown,
    }
    if extra:
        details |= _dropped(data[end:], path)
        _truncate(path, end)
    _anchor(path, count, last)
    lost = max(head.count if head else 0, witness.count if witness else 0) - count
    summary = (
        f"log repaired ({reason[:200]}): kept {count} record(s)"
        + (f", cut {len(data) - end} trailing byte(s)" if extra else "")
        + (f"; the anchors recorded {lost} more record(s), which are lost" if lost > 0 else "")
        + f"; head was {head_shown}, witness was {witness_shown}"
    )
    return TailAction(summary, details)
