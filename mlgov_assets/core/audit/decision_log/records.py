"""The decision-log record format: the record type, the head anchor, locking and parsing.

One record per line (canonical JSON). ``hash`` is the sha256 of the canonical JSON of the record
without ``hash``; ``prev_hash`` is the previous record's ``hash`` (``GENESIS_HASH`` for index 0).
``<log>.head`` ({count, last_hash}) makes truncation detectable; ``<log>.lock`` serialises writers.
The witness (``<log dir>/.witness/<log name>.json``, same shape, written after the line and before
the head) lives outside the log's own files, so dropping trailing records and rewriting the head to
match is still detected. ``promotion_intent`` / ``promotion_aborted`` frame an alias move as a
transaction (``core/governance/transaction``); ``log_repair`` records a recovery of the log itself.
``approval_request`` / ``approval`` / ``approval_rejection`` / ``approval_lapsed`` are the staged
promotion of ``core/governance/approval`` (a promotion it makes cites its approval records).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from mlgov_assets.core.errors import Refusal
from mlgov_assets.core.integrity import canonical_hash, is_sha256
from mlgov_assets.core.locks import guard

__all__ = [
    "GENESIS_HASH",
    "KINDS",
    "RECORD_FIELDS",
    "Head",
    "Kind",
    "LogIntegrityError",
    "Record",
    "head_path",
    "read_head",
    "read_records",
    "read_witness",
    "records",
    "witness_path",
]

Kind = Literal[
    "gate_evaluation",
    "promotion",
    "rejection",
    "rollback",
    "override",
    "reproducibility_certificate",
    "drift_alert",
    "retrain_request",
    "labels_refusal",
    "promotion_intent",
    "promotion_aborted",
    "log_repair",
    "approval_request",
    "approval",
    "approval_rejection",
    "approval_lapsed",
]
KINDS: frozenset[str] = frozenset(get_args(Kind))
GENESIS_HASH = "0" * 64  # prev_hash of record 0: a fixed value no real sha256 will collide with


class LogIntegrityError(Refusal):
    """The log (or its head anchor) is not in a state that can safely be read or extended."""


class Record(BaseModel):
    """One decision. ``hash`` covers every other field; ``prev_hash`` links it to its predecessor."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    index: int
    time: str
    actor: str
    kind: Kind
    reason: str
    model_name: str | None
    model_version: str | None
    payload: dict[str, Any]
    evidence_hashes: dict[str, str]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """The record as the JSON object stored in the log."""
        return self.model_dump()


RECORD_FIELDS: tuple[str, ...] = tuple(Record.model_fields)


class Head(BaseModel):
    """The truncation anchor: how many records the log had and the hash of the last one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int
    last_hash: str

    def to_dict(self) -> dict[str, int | str]:
        return {"count": self.count, "last_hash": self.last_hash}


def as_head(value: object) -> Head | None:
    """``value`` as a Head if it is {count: int >= 0, last_hash: sha256}, else None."""
    if not isinstance(value, dict):
        return None
    count, last = value.get("count"), value.get("last_hash")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0 or not is_sha256(last):
        return None
    assert isinstance(last, str)
    return Head(count=count, last_hash=last)


# --------------------------------------------------------------------------- files and locking


def head_path(log_path: str | os.PathLike[str]) -> Path:
    """``<log>.head``: the anchor that makes truncation detectable."""
    return Path(f"{os.fspath(log_path)}.head")


def witness_path(log_path: str | os.PathLike[str]) -> Path:
    """Where the log's witness lives: a separate directory beside it (``.witness/<name>.json``)."""
    path = Path(log_path)
    return path.parent / ".witness" / f"{path.name}.json"


def lock_path(log_path: str | os.PathLike[str]) -> Path:
    # A separate, never-deleted lock file: locking the log itself would break if it were replaced.
    return Path(f"{os.fspath(log_path)}.lock")


def log_resource(log_path: str | os.PathLike[str]) -> str:
    """The log's name for the database lock (prod): its path below ``MLGOV_HOME``, the same on every
    host that mounts the shared state directory (wherever it is mounted)."""
    path = Path(log_path).resolve()
    home = os.environ.get("MLGOV_HOME")
    with suppress(ValueError):
        if home:
            return f"mlgov:decision-log:{path.relative_to(Path(home).resolve()).as_posix()}"
    return f"mlgov:decision-log:{path.as_posix()}"


@contextmanager
def locked(log_path: Path, *, exclusive: bool = True) -> Iterator[None]:
    """Exclusive lock for writers; shared lock for readers (none if no writer ever ran).

    Readers never create the lock file, so a log on a read-only mount can be verified. In the prod
    profile the database lock of the log (``core/locks.guard``) is taken first: appends from two hosts
    sharing the state volume are serialized by PostgreSQL, never by NFS's view of ``flock``.
    """
    purpose = f"decision log {Path(log_path).name}"
    with (
        guard(log_resource(log_path), path=None, purpose=purpose, shared=not exclusive),
        _file_locked(log_path, exclusive=exclusive),
    ):
        yield


@contextmanager
def _file_locked(log_path: Path, *, exclusive: bool) -> Iterator[None]:
    lock = lock_path(log_path)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644) if exclusive else os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        if exclusive:
            raise
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_head(log_path: str | os.PathLike[str]) -> Head | None:
    """The head anchor, or None if absent. Raises LogIntegrityError if it is unreadable."""
    path = head_path(log_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LogIntegrityError(f"head anchor {path} is not valid JSON: {exc}") from exc
    head = as_head(data)
    if head is None:
        raise LogIntegrityError(f"head anchor {path} must be {{count: int >= 0, last_hash: sha256}}, got {data!r}")
    return head


def read_witness(log_path: str | os.PathLike[str]) -> Head | None:
    """The witness ({count, last_hash}), or None if absent. Raises LogIntegrityError if unreadable."""
    path = witness_path(log_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LogIntegrityError(f"log witness {path} is not valid JSON: {exc}") from exc
    witness = as_head(data)
    if witness is None:
        raise LogIntegrityError(f"log witness {path} must be {{count: int >= 0, last_hash: sha256}}")
    return witness


def last_line(path: Path, block: int = 1 << 16) -> bytes | None:
    """The last line of the file (with its newline if complete), read backwards; None if empty."""
    if not path.exists():
        return None
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return None
        pos, buf = size, b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            buf = f.read(step) + buf
            cut = buf.rfind(b"\n", 0, len(buf) - 1)
            if cut != -1:
                return buf[cut + 1 :]
        return buf


# --------------------------------------------------------------------------- parsing


def _shape_problem(obj: dict[str, Any]) -> str | None:
    missing = [k for k in RECORD_FIELDS if k not in obj]
    extra = sorted(set(obj) - set(RECORD_FIELDS))
    if missing or extra:
        return f"has missing fields {missing} / unexpected fields {extra}"
    if not isinstance(obj["index"], int) or isinstance(obj["index"], bool) or obj["index"] < 0:
        return f"has a non-integer or negative index {obj['index']!r}"
    if obj["kind"] not in KINDS:
        return f"has unknown kind {obj['kind']!r}"
    if not (is_sha256(obj["hash"]) and is_sha256(obj["prev_hash"])):
        return "has a hash or prev_hash that is not a sha256 hex digest"
    if not isinstance(obj["payload"], dict) or not isinstance(obj["evidence_hashes"], dict):
        return "has a payload or evidence_hashes that is not an object"
    return None


def _record_problem(obj: Any) -> str | None:
    """Why a parsed line is not a well-formed, self-consistent record (None if it is)."""
    if not isinstance(obj, dict):
        return f"is a JSON {type(obj).__name__}, not a record object"
    problem = _shape_problem(obj)
    if problem:
        return problem
    try:
        recomputed = canonical_hash({k: v for k, v in obj.items() if k != "hash"})
    except (TypeError, ValueError) as exc:
        return f"cannot be hashed canonically ({exc})"
    if recomputed != obj["hash"]:
        return f"was edited: its content hashes to {recomputed[:16]}… but its stored hash is {obj['hash'][:16]}…"
    return None


def parse_line(line: bytes) -> tuple[Record | None, str | None]:
    """(record, None) for a well-formed, self-consistent line; (None, what is wrong) otherwise."""
    try:
        obj = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"is corrupt: not valid JSON ({exc})"
    problem = _record_problem(obj)
    if problem:
        return None, problem
    try:
        return Record.model_validate(obj), None
    except ValidationError as exc:
        fields = sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]})
        return None, f"has field(s) of the wrong type {fields}"


def split_lines(data: bytes) -> list[tuple[bytes, bool]]:
    """(line, complete) pairs; the last line is incomplete if the file lacks a final newline."""
    if not data:
        return []
    parts = data.split(b"\n")
    if parts[-1] == b"":
        return [(p, True) for p in parts[:-1]]
    return [(p, True) for p in parts[:-1]] + [(parts[-1], False)]


# --------------------------------------------------------------------------- reading


def read_records(
    path: str | os.PathLike[str],
    *,
    model_name: str | None = None,
    model_version: str | int | None = None,
    kinds: Iterable[str] | None = None,
) -> list[Record]:
    """Records matching the filters, in log order.

    Refuses a corrupt line (LogIntegrityError) but does not check the chain: call ``verify`` when
    the answer must be trustworthy.
    """
    wanted = set(kinds) if kinds is not None else None
    if wanted is not None and wanted - KINDS:
        raise ValueError(f"unknown kind(s) {sorted(wanted - KINDS)}; known: {sorted(KINDS)}")
    version = None if model_version is None else str(model_version)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    out = []
    for p, (line, complete) in enumerate(split_lines(data)):
        rec, problem = parse_line(line) if complete else (None, "is incomplete (no trailing newline)")
        if rec is None:
            raise LogIntegrityError(f"{path}: record at position {p} (line {p + 1}) {problem}")
        if model_name is not None and rec.model_name != model_name:
            continue
        if version is not None and rec.model_version != version:
            continue
        if wanted is not None and rec.kind not in wanted:
            continue
        out.append(rec)
    return out


def records(
    path: str | os.PathLike[str],
    *,
    model_name: str | None = None,
    model_version: str | int | None = None,
    kinds: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """The JSON view of :func:`read_records`: each record as the plain object stored in the log.

    Kept for callers that want the stored form (status views, tests comparing raw lines); code
    that reads fields should use :func:`read_records`, which returns typed :class:`Record` values.
    """
    found = read_records(path, model_name=model_name, model_version=model_version, kinds=kinds)
    return [r.to_dict() for r in found]
