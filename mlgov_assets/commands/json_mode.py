"""``--json``: exactly one JSON document on stdout, whatever happens.

For the duration of a ``--json`` command, file descriptor 1 is pointed at file descriptor 2
(``os.dup2``), so everything written below Python — DVC, MLflow, Dagster, git and other child
processes, C extensions — lands on stderr. Python-level ``sys.stdout`` is captured; at the end the
command's JSON document is found in the capture and written to the real stdout, and whatever else
was captured goes to stderr. A command that fails without printing its own document gets the error
document ``{"ok": false, "error": ..., "kind": "refusal" | "error", "exit_code": N}``.
"""

from __future__ import annotations

import io
import json
import os
import sys
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict

#: How much of what a command wrote to stderr is remembered for its error document.
_ERR_TAIL_CHARS = 4000


class CommandError(BaseModel):
    """The ``--json`` document of a command that ended without its own: ``kind`` is ``refusal``
    (exit 1, a governance no or a failed verification) or ``error`` (exit 2)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ok: bool = False
    error: str
    kind: str
    exit_code: int


class _Tee(io.TextIOBase):
    """sys.stderr while a ``--json`` command runs: passes every write through, remembers the tail."""

    def __init__(self, target: TextIO) -> None:
        self._target = target
        self.tail = ""

    def write(self, s: str) -> int:
        self.tail = (self.tail + s)[-_ERR_TAIL_CHARS:]
        return self._target.write(s)

    def flush(self) -> None:
        self._target.flush()

    def fileno(self) -> int:
        return self._target.fileno()

    def isatty(self) -> bool:
        return False


def find_document(text: str) -> tuple[Any, str] | None:
    """(the last JSON object/array that starts a line of ``text`` and parses, everything else), or None."""
    decoder = json.JSONDecoder()
    found: tuple[Any, int, int] | None = None
    pos = 0
    while pos < len(text):
        line_end = text.find("\n", pos)
        line_end = len(text) if line_end < 0 else line_end
        start = pos + (len(text[pos:line_end]) - len(text[pos:line_end].lstrip()))
        if start < len(text) and text[start] in "{[":
            try:
                doc, end = decoder.raw_decode(text, start)
            except ValueError:
                doc = None
            else:
                found = (doc, start, end)
                pos = end
                continue
        pos = line_end + 1
    if found is None:
        return None
    doc, start, end = found
    return doc, (text[:start] + text[end:]).strip()


class JsonStdout:
    """Context: fd 1 -> fd 2 and ``sys.stdout`` captured; :meth:`finish` writes the one document."""

    def __init__(self) -> None:
        self._saved_fd = -1
        self._stdout: TextIO = sys.stdout
        self._stderr: TextIO = sys.stderr
        self._capture = io.StringIO()
        self._tee: _Tee | None = None
        self.error: str | None = None

    def __enter__(self) -> JsonStdout:
        self._stdout, self._stderr = sys.stdout, sys.stderr
        for stream in (self._stdout, self._stderr, sys.__stdout__, sys.__stderr__):
            if stream is not None:
                stream.flush()
        self._saved_fd = os.dup(1)
        os.dup2(2, 1)
        self._tee = _Tee(self._stderr)
        sys.stdout = self._capture
        sys.stderr = self._tee
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._saved_fd < 0:
            return
        for stream in (sys.__stdout__, sys.__stderr__):
            if stream is not None:
                stream.flush()
        os.dup2(self._saved_fd, 1)
        os.close(self._saved_fd)
        self._saved_fd = -1
        sys.stdout, sys.stderr = self._stdout, self._stderr

    def finish(self, code: int) -> int:
        """Restore stdout and write the command's document (or the error document); return ``code``."""
        text = self._capture.getvalue()
        tail = self._tee.tail if self._tee is not None else ""
        self._restore()
        found = find_document(text)
        if found is not None:
            doc, rest = found
        else:
            doc, rest = None, text.strip()
        if rest:
            print(rest, file=sys.stderr)
        if doc is None:
            doc = self.error_document(code, self.error or _last_line(tail) or _last_line(rest)).model_dump()
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
        sys.stdout.flush()
        return code

    @staticmethod
    def error_document(code: int, message: str) -> CommandError:
        kind = "ok" if code == 0 else "refusal" if code == 1 else "error"
        return CommandError(ok=code == 0, error=message or f"exit {code}", kind=kind, exit_code=code)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:2000] if lines else ""


#: sqlite's words (MLflow's store, Dagster's storage) for a state directory it cannot write.
_SQLITE_WRITE_FAILURES = ("disk i/o error", "database or disk is full", "readonly database", "unable to open database")


def describe_error(exc: BaseException) -> str:
    """One sentence for an error; a full disk or a read-only state directory names the path."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES):
        what = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded"}.get(
            exc.errno or 0, "read-only or permission denied"
        )
        where = exc.filename or _state_home()
        return f"cannot write {where}: {what} ({type(exc).__name__}); free space or fix permissions and retry"
    text = str(exc)
    if any(words in text.lower() for words in _SQLITE_WRITE_FAILURES):
        first = text.splitlines()[0][:300] if text else type(exc).__name__
        return f"cannot write the state directory {_state_home()} (a full disk or read-only state?): {first}"
    return f"{type(exc).__name__}: {exc}"


def _state_home() -> str:
    from mlgov_assets.core.settings import get_settings

    return str(get_settings().home)
