"""Hash-chained, append-only decision log (JSONL): every governance decision, verifiably in order.

Each line is one record (canonical JSON). A record's `hash` is the sha256 of the canonical JSON of
the record without `hash`; its `prev_hash` is the previous record's `hash` (GENESIS_HASH for
index 0). Changing, removing, reordering or inserting any record therefore breaks a link that
`verify` finds and names by position.

Why a separate head anchor (`<log>.head`, JSON {count, last_hash}): deleting the *last* records
leaves a perfectly valid shorter chain, so truncation is invisible from the log alone. The head is
rewritten atomically (temp file + os.replace) under the same lock after every append, and `verify`
compares the log against it.

Threat model
------------
Detected: accidental corruption and torn writes; an edited record (hash mismatch); a record
edited *and re-hashed* (its successor's prev_hash no longer matches); deleted, reordered, inserted
or replayed records; truncation of the tail (log shorter than the head); records added behind the
library's back (log longer than the head).

Not detected from these two files alone: an attacker who can write both the log and the head can
recompute the whole chain and a matching head. The hash chain has no secret, so it proves
*consistency*, not *authenticity*. The defence is an external witness: publish `head()` somewhere
the attacker cannot rewrite (a tag on the MLflow model version at each promotion, Dagster
materialization metadata, a signed git commit, a WORM bucket or transparency log) and later call
`verify(path, expected_head=published)`, which checks that the log still extends that head.
Signing records with a key held off-box would also authenticate them; it is not implemented.
`actor` is a claim recorded by the caller, not an authenticated identity. The fcntl lock is
advisory: it serializes cooperating writers (this class), on a local filesystem.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlgov_assets.core.integrity import (
    canonical_hash,
    canonical_json,
    is_sha256,
    normalize_json,
    sha256_file,
    write_json_atomic,
)

__all__ = [
    "GENESIS_HASH",
    "KINDS",
    "DecisionLog",
    "Head",
    "LogIntegrityError",
    "Record",
    "VerifyResult",
    "canonical_hash",
    "head_path",
    "read_head",
    "records",
    "sha256_file",
    "verify",
]

KINDS: frozenset[str] = frozenset(
    {
        "gate_evaluation",
        "promotion",
        "rejection",
        "rollback",
        "override",
        "reproducibility_certificate",
        "drift_alert",
        "retrain_request",
    }
)
GENESIS_HASH = "0" * 64  # prev_hash of record 0: a fixed value no real sha256 will collide with
RECORD_FIELDS = (
    "index",
    "time",
    "actor",
    "kind",
    "reason",
    "model_name",
    "model_version",
    "payload",
    "evidence_hashes",
    "prev_hash",
    "hash",
)
_HEX = frozenset("0123456789abcdef")


class LogIntegrityError(Exception):
    """The log (or its head anchor) is not in a state that can safely be read or extended."""


@dataclass(frozen=True)
class Record:
    """One decision. `hash` covers every other field; `prev_hash` links it to its predecessor."""

    index: int
    time: str
    actor: str
    kind: str
    reason: str
    model_name: str | None
    model_version: str | None
    payload: dict[str, Any]
    evidence_hashes: dict[str, str]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Head:
    """The truncation anchor: how many records the log had and the hash of the last one."""

    count: int
    last_hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of `verify`: the first bad position (0-based) and what is wrong, in words."""

    ok: bool
    count: int
    first_bad_index: int | None
    problem: str | None
    last_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- files and locking


def head_path(log_path: str | os.PathLike[str]) -> Path:
    """`<log>.head`: the anchor that makes truncation detectable."""
    return Path(f"{os.fspath(log_path)}.head")


def _lock_path(log_path: str | os.PathLike[str]) -> Path:
    # A separate, never-deleted lock file: locking the log itself would break if it were replaced.
    return Path(f"{os.fspath(log_path)}.lock")


@contextmanager
def _locked(log_path: Path, *, exclusive: bool = True) -> Iterator[None]:
    """Exclusive lock for writers; shared lock for readers (none if no writer ever ran).

    Readers open the lock file read-only and never create it, so an auditor can verify a log on
    a read-only mount.
    """
    lock = _lock_path(log_path)
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
    count, last = (data.get("count"), data.get("last_hash")) if isinstance(data, dict) else (None, None)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0 or not is_sha256(last):
        raise LogIntegrityError(f"head anchor {path} must be {{count: int >= 0, last_hash: sha256}}, got {data!r}")
    return Head(count=count, last_hash=last)


def _last_line(path: Path, block: int = 1 << 16) -> bytes | None:
    """The last line of the file (with its newline if complete), read backwards; None if empty."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    with f:
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


def _record_problem(obj: Any) -> str | None:
    """Why a parsed line is not a well-formed, self-consistent record (None if it is)."""
    if not isinstance(obj, dict):
        return f"is a JSON {type(obj).__name__}, not a record object"
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
    try:
        recomputed = canonical_hash({k: v for k, v in obj.items() if k != "hash"})
    except (TypeError, ValueError) as exc:
        return f"cannot be hashed canonically ({exc})"
    if recomputed != obj["hash"]:
        return f"was edited: its content hashes to {recomputed[:16]}… but its stored hash is {obj['hash'][:16]}…"
    return None


def _parse_line(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        obj = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"is corrupt: not valid JSON ({exc})"
    problem = _record_problem(obj)
    return (None, problem) if problem else (obj, None)


def _split_lines(data: bytes) -> list[tuple[bytes, bool]]:
    """(line, complete) pairs; the last line is incomplete if the file lacks a final newline."""
    if not data:
        return []
    parts = data.split(b"\n")
    if parts[-1] == b"":
        return [(p, True) for p in parts[:-1]]
    return [(p, True) for p in parts[:-1]] + [(parts[-1], False)]


# --------------------------------------------------------------------------- verification


def _fail(p: int | None, problem: str, n: int) -> VerifyResult:
    return VerifyResult(ok=False, count=n, first_bad_index=p, problem=problem)


def _supported(p: int, recs: list[dict[str, Any] | None], head: Head | None) -> bool:
    """Is the record at position p vouched for by its successor (or, if last, by the head)?

    Used to tell "p is genuine, something before it is wrong" from "p itself is the intruder".
    """
    if p + 1 < len(recs):
        nxt = recs[p + 1]
        return nxt is not None and nxt["prev_hash"] == recs[p]["hash"]  # type: ignore[index]
    return head is not None and head.last_hash == recs[p]["hash"]  # type: ignore[index]


def _diagnose_link(
    p: int, recs: list[dict[str, Any] | None], pos_of: dict[str, int], head: Head | None
) -> tuple[int, str]:
    """Name the first bad position when the record at p does not chain to position p-1."""
    rec = recs[p]
    assert rec is not None
    idx, prev = rec["index"], rec["prev_hash"]
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


def _check_head(
    recs: list[dict[str, Any]], head: Head | None, label: str, *, may_grow: bool
) -> tuple[int | None, str] | None:
    """Compare a verified chain with an anchor: the head file, or an external witness.

    The head file must match exactly (`may_grow=False`); a witness published earlier only has to
    be extended by the log (`may_grow=True`).
    """
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
    anchored = recs[head.count - 1]["hash"] if head.count else GENESIS_HASH
    if anchored != head.last_hash:
        at = max(head.count - 1, 0)
        return at, f"log rewritten at or before index {at}: its hash differs from the last_hash in the {label}"
    if head.count < n and not may_grow:
        return head.count, (
            f"record(s) {head.count}..{n - 1} are not covered by the {label} (count {head.count}): "
            "written outside DecisionLog.append, anchor rolled back, or a crash between the two writes"
        )
    return None


def verify(path: str | os.PathLike[str], *, expected_head: Mapping[str, Any] | Head | None = None) -> VerifyResult:
    """Check every record, every link and the head anchor; name the first bad position.

    `expected_head` is an externally published `head()` (e.g. an MLflow tag): the log must still
    extend it. Without one, a consistent rewrite of log + head is undetectable (see module doc).
    """
    log = Path(path)
    head_error: str | None = None
    with _locked(log, exclusive=False):  # log and head read as one consistent snapshot
        try:
            data = log.read_bytes()
        except FileNotFoundError:
            data = b""
        try:
            head = read_head(log)
        except LogIntegrityError as exc:
            head, head_error = None, str(exc)
    lines = _split_lines(data)
    n = len(lines)
    parsed = [
        _parse_line(line) if complete else (None, "is incomplete (no trailing newline): a torn write")
        for line, complete in lines
    ]
    recs = [r for r, _ in parsed]
    pos_of: dict[str, int] = {}
    for p, rec in enumerate(recs):
        if rec is not None:
            pos_of.setdefault(rec["hash"], p)
    for p, (rec, problem) in enumerate(parsed):
        if rec is None:
            return _fail(p, f"record at position {p} (line {p + 1}) {problem}", n)
        if pos_of[rec["hash"]] < p:
            return _fail(p, f"record at position {p} duplicates the record at position {pos_of[rec['hash']]}", n)
        expected_prev = recs[p - 1]["hash"] if p else GENESIS_HASH  # type: ignore[index]
        if rec["prev_hash"] != expected_prev:
            return _fail(*_diagnose_link(p, recs, pos_of, head), n)
        if rec["index"] != p:
            return _fail(p, f"record at position {p} carries index {rec['index']}: index rewritten", n)
    if head_error is not None:
        return _fail(None, head_error, n)
    good: list[dict[str, Any]] = recs  # type: ignore[assignment]
    found = _check_head(good, head, "head anchor", may_grow=False)
    if found is None and expected_head is not None:
        found = _check_head(good, _as_head(expected_head), "externally witnessed head", may_grow=True)
    if found is not None:
        return _fail(found[0], found[1], n)
    last = good[-1]["hash"] if good else GENESIS_HASH
    return VerifyResult(ok=True, count=n, first_bad_index=None, problem=None, last_hash=last)


def _as_head(value: Mapping[str, Any] | Head) -> Head:
    if isinstance(value, Head):
        return value
    count, last = value.get("count"), value.get("last_hash")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0 or not is_sha256(last):
        raise ValueError(f"expected_head must be {{count: int >= 0, last_hash: sha256}}, got {dict(value)!r}")
    return Head(count=count, last_hash=last)


# --------------------------------------------------------------------------- reading


def records(
    path: str | os.PathLike[str],
    *,
    model_name: str | None = None,
    model_version: str | int | None = None,
    kinds: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """Records matching the filters, in log order (for status views and the model card).

    Parses every line and refuses a corrupt one, but does not check the chain: call `verify`
    when the answer must be trustworthy.
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
    for p, (line, complete) in enumerate(_split_lines(data)):
        rec, problem = _parse_line(line) if complete else (None, "is incomplete (no trailing newline)")
        if rec is None:
            raise LogIntegrityError(f"{path}: record at position {p} (line {p + 1}) {problem}")
        if model_name is not None and rec["model_name"] != model_name:
            continue
        if version is not None and rec["model_version"] != version:
            continue
        if wanted is not None and rec["kind"] not in wanted:
            continue
        out.append(rec)
    return out


# --------------------------------------------------------------------------- writing


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


class DecisionLog:
    """Append-only, hash-chained JSONL log of governance decisions at `path` (+ `.head`, `.lock`)."""

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
        line = _last_line(self.path)
        if line is None:
            if head is not None and head.count != 0:
                raise LogIntegrityError(
                    f"{self.path} is empty but its head anchor records {head.count} record(s): truncated; run verify"
                )
            return 0, GENESIS_HASH
        if not line.endswith(b"\n"):
            raise LogIntegrityError(f"{self.path}: last line is incomplete (torn write); run verify")
        rec, problem = _parse_line(line[:-1])
        if rec is None:
            raise LogIntegrityError(f"{self.path}: last record {problem}; run verify")
        if head is None or head.count != rec["index"] + 1 or head.last_hash != rec["hash"]:
            raise LogIntegrityError(
                f"{self.path}: last record (index {rec['index']}) disagrees with the head anchor "
                f"{head.to_dict() if head else 'missing'}; run verify before appending"
            )
        return rec["index"] + 1, rec["hash"]

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

        Serialized across processes by an fcntl lock on `<log>.lock`; the line is written with one
        write + fsync, then the head anchor is replaced atomically under the same lock.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown decision kind {kind!r}; known: {sorted(KINDS)}")
        if model_version is not None and (isinstance(model_version, bool) or not isinstance(model_version, (str, int))):
            raise TypeError(f"model_version must be str, int or None, got {model_version!r}")
        if model_name is not None and not isinstance(model_name, str):
            raise TypeError(f"model_name must be str or None, got {model_name!r}")
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
        with _locked(self.path):
            index, prev = self._tail()
            body = {"index": index, "time": self._now(), **body_common, "prev_hash": prev}
            record = {**body, "hash": canonical_hash(body)}
            self._write_line((canonical_json(record) + "\n").encode("utf-8"))
            write_json_atomic(head_path(self.path), {"count": index + 1, "last_hash": record["hash"]})
        return Record(**record)

    def _write_line(self, line: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes; run verify")
            os.fsync(fd)
        finally:
            os.close(fd)

    def head(self) -> dict[str, Any]:
        """{count, last_hash} to publish to an external witness (e.g. an MLflow model-version tag).

        Read under the lock so it never reflects a half-finished append.
        """
        with _locked(self.path, exclusive=False):
            anchor = read_head(self.path)
        return (anchor or Head(count=0, last_hash=GENESIS_HASH)).to_dict()

    def verify(self, *, expected_head: Mapping[str, Any] | Head | None = None) -> VerifyResult:
        """`verify(self.path, ...)`."""
        return verify(self.path, expected_head=expected_head)

    def records(self, **filters: Any) -> list[dict[str, Any]]:
        """`records(self.path, **filters)`."""
        return records(self.path, **filters)
