"""The prediction log: one JSON line per event, append-only, crash-safe, size-bounded.

Each line is written with a single ``os.write`` on an ``O_APPEND`` descriptor (no interleaving, no
partial line from another thread) *before the response is returned*, and fsynced as the policy says
(``always``: on the request path, before the response; ``interval``: by :meth:`PredictionLog.sync`
on the service's housekeeping thread, never on the request path, and outside the append lock so a
slow disk does not hold appends; ``never``). Durability, then: a line is in the kernel before its
response leaves, so a process crash or a clean shutdown (which fsyncs and closes) loses nothing; a
host crash or power loss can lose the lines of the last ``fsync_seconds`` (``interval``). A crash can
leave the last line torn: the reader detects it (no newline, or not JSON) and skips it, counting it.
Past ``max_bytes`` the file is rotated (``predictions.jsonl`` -> ``.1`` -> ... -> ``.<keep>``).

Two kinds of lines: ``prediction`` (request id, row ids, input hash, raw rows, the champion's
version and outputs, latency, time) and ``shadow`` (the same request id, the challenger's version
and outputs, or its error), written later by the shadow worker.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlgov_assets.core.serving.options import FsyncPolicy

LOG_NAME = "predictions.jsonl"
_FROZEN = ConfigDict(extra="forbid", frozen=True)


class ModelOutput(BaseModel):
    """What one model said about a request's rows."""

    model_config = _FROZEN

    version: int
    scores: list[float] = Field(default_factory=list)
    decisions: list[int] = Field(default_factory=list)
    error: str | None = None


class PredictionRecord(BaseModel):
    """A ``prediction`` line: the request as scored by the champion."""

    model_config = _FROZEN

    kind: Literal["prediction"] = "prediction"
    request_id: str
    row_ids: list[int]
    input_sha256: str
    rows: list[dict[str, str | None]]
    champion: ModelOutput
    latency_ms: float
    time: str


class ShadowRecord(BaseModel):
    """A ``shadow`` line: the challenger's outputs on a request, written off the request path."""

    model_config = _FROZEN

    kind: Literal["shadow"] = "shadow"
    request_id: str
    shadow: ModelOutput
    latency_ms: float
    time: str


LogRecord = PredictionRecord | ShadowRecord


def utc_iso(ts: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts if ts is not None else time.time())) + "Z"


@dataclass
class ReadResult:
    """The records of the log files read, oldest first, and how many lines were skipped (torn or invalid)."""

    records: list[LogRecord] = field(default_factory=list)
    skipped: int = 0


class PredictionLog:
    """The writer (thread-safe). ``path`` is the live file; rotated files sit next to it."""

    def __init__(
        self,
        path: Path,
        *,
        fsync: FsyncPolicy = "interval",
        fsync_seconds: float = 1.0,
        max_bytes: int = 64 << 20,
        keep: int = 5,
    ):
        self.path = path
        self.fsync, self.fsync_seconds, self.max_bytes, self.keep = fsync, fsync_seconds, max_bytes, keep
        self._lock = threading.Lock()
        self._dirty = False
        self._last_sync = time.monotonic()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
        self.rotations = 0

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)

    def _repair_tail(self) -> None:
        """A torn last line (a crash mid-write) gets its newline, so the next line starts clean;
        the reader then skips the torn one."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                if fh.tell() == 0:
                    return
                fh.seek(-1, os.SEEK_END)
                last = fh.read(1)
        except FileNotFoundError:
            return
        if last != b"\n":
            with open(self.path, "ab") as fh:
                fh.write(b"\n")
                fh.flush()
                os.fsync(fh.fileno())

    def append(self, record: LogRecord) -> None:
        line = record.model_dump_json().encode() + b"\n"
        with self._lock:
            written = os.write(self._fd, line)  # one write per line: O_APPEND keeps lines whole and in order
            if written != len(line):  # a full disk mid-line: end it, so the next line starts clean
                os.write(self._fd, b"\n")
                raise OSError(f"prediction log: short write ({written} of {len(line)} bytes)")
            self._size += written
            self._dirty = True
            if self.fsync == "always":
                os.fsync(self._fd)
                self._dirty = False
            if self._size >= self.max_bytes:
                self._rotate_locked()

    def sync(self) -> None:
        """Fsync what was written since the last sync (the ``interval`` policy's flusher calls this).
        The fsync runs on a duplicate descriptor outside the lock: appends go on meanwhile, and a
        rotation may close the original (its lines were fsynced by the rotation itself)."""
        with self._lock:
            if not self._dirty or self._fd < 0:
                return
            self._dirty = False
            self._last_sync = time.monotonic()
            if self.fsync == "never":
                return
            fd = os.dup(self._fd)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _rotate_locked(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)
        for i in range(self.keep - 1, 0, -1):
            older = rotated(self.path, i)
            if older.exists():
                os.replace(older, rotated(self.path, i + 1))
        os.replace(self.path, rotated(self.path, 1))
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._fd = self._open()
        self._size = 0
        self.rotations += 1

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1


def rotated(path: Path, i: int) -> Path:
    return path.with_name(f"{path.name}.{i}")


def log_files(path: Path, keep: int = 1000) -> list[Path]:
    """The live file and its rotations, oldest first."""
    olds = [rotated(path, i) for i in range(keep, 0, -1) if rotated(path, i).exists()]
    return olds + ([path] if path.exists() else [])


_RECORD_TYPES: dict[str, type[PredictionRecord] | type[ShadowRecord]] = {
    "prediction": PredictionRecord,
    "shadow": ShadowRecord,
}


def _parse(line: bytes) -> LogRecord | None:
    try:
        doc = json.loads(line)
        kind = _RECORD_TYPES.get(str(doc.get("kind"))) if isinstance(doc, dict) else None
        return None if kind is None else kind.model_validate(doc)
    except (ValueError, ValidationError):
        return None


def iter_lines(path: Path) -> Iterator[bytes | None]:
    """Each complete line of one file; ``None`` for a final line without its newline (torn)."""
    with open(path, "rb") as fh:
        for line in fh:
            yield line if line.endswith(b"\n") else None


def read_log(path: Path) -> ReadResult:
    """Every record of the live log and its rotations, oldest first; torn or invalid lines skipped."""
    out = ReadResult()
    for file in log_files(path):
        for line in iter_lines(file):
            rec = None if line is None or not line.strip() else _parse(line)
            if rec is None:
                out.skipped += line is None or bool(line.strip())
                continue
            out.records.append(rec)
    return out
