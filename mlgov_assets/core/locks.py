"""A bounded, self-describing cross-process lock: ``holding(path, purpose=...)``.

The lock is an fcntl ``flock`` on ``path``, so the operating system releases it when its holder
dies (a killed process never leaves it held). While held, ``<path>.holder`` names who holds it
(pid, host, purpose, since); a waiter polls for at most ``timeout`` seconds and then gives up
with :class:`LockBusy` naming the holder, instead of hanging. Stdlib only: a leaf.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

from mlgov_assets.core.errors import MlgovError
from mlgov_assets.core.integrity import atomic_write_bytes

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "TIMEOUT_ENV",
    "LockBusy",
    "guard",
    "holder",
    "holding",
    "lock_timeout",
    "pid_alive",
]

TIMEOUT_ENV = "MLGOV_LOCK_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 120.0
_POLL_SECONDS = 0.1


class LockBusy(MlgovError):
    """Another process held the lock for longer than the bounded wait (exit 2: retry later)."""


def lock_timeout() -> float:
    """The bounded wait: ``$MLGOV_LOCK_TIMEOUT`` seconds, default :data:`DEFAULT_TIMEOUT_SECONDS`."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_TIMEOUT_SECONDS
    except ValueError:
        raise MlgovError(f"{TIMEOUT_ENV} must be a number of seconds, got {raw[:40]!r}") from None
    return max(value, 0.0)


def _holder_path(path: Path) -> Path:
    return Path(f"{path}.holder")


def holder(path: str | os.PathLike[str]) -> str:
    """Who holds (or last held) the lock at ``path``, in words."""
    try:
        info = json.loads(_holder_path(Path(path)).read_text(encoding="utf-8"))
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return "an unknown process (no holder record)"
    alive = "alive" if pid_alive(pid) and info.get("host") == socket.gethostname() else "state unknown"
    return (
        f"pid {pid} on {str(info.get('host'))[:64]} ({alive}), {str(info.get('purpose'))[:120]}, "
        f"since {str(info.get('since'))[:40]}"
    )


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a reused pid counts as alive: the safe side)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def holding(path: str | os.PathLike[str], *, purpose: str, timeout: float | None = None) -> Iterator[None]:
    """Hold the exclusive lock at ``path`` for the block; wait at most ``timeout`` seconds
    (default :func:`lock_timeout`), then raise :class:`LockBusy` naming the holder."""
    lock = Path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    limit = lock_timeout() if timeout is None else timeout
    deadline = time.monotonic() + limit
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(
                        f"gave up after {limit:g} s waiting for {lock.name}: held by {holder(lock)}; "
                        f"retry when it finishes (or raise {TIMEOUT_ENV})"
                    ) from None
                time.sleep(_POLL_SECONDS)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose, "since": _now()}
        with contextlib.suppress(OSError):  # who holds it is advisory; a read-only mount must not block
            atomic_write_bytes(_holder_path(lock), json.dumps(record).encode("utf-8"))
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def guard(
    resource: str,
    *,
    path: str | os.PathLike[str] | None,
    purpose: str,
    timeout: float | None = None,
    shared: bool = False,
) -> AbstractContextManager[None]:
    """THE lock factory for state shared by every process of a deployment (alias moves, the decision
    log), chosen by the profile: the file lock at ``path`` (embedded; one machine), or (``MLGOV_PROFILE=
    prod``) the PostgreSQL advisory lock of ``resource`` (``core/pglock``; every host). ``resource``
    must name the same thing on every host (never an absolute path of this one). ``path`` None: no file
    lock (the caller holds its own), only the database lock in prod; ``shared`` (readers) applies to the
    database lock."""
    from mlgov_assets.core.settings import Services, current_profile

    if current_profile() == "prod":
        from mlgov_assets.core.pglock import advisory_holding

        limit = lock_timeout() if timeout is None else timeout
        return advisory_holding(Services.from_env(), resource, purpose=purpose, timeout=limit, shared=shared)
    if path is None:
        return contextlib.nullcontext()
    return holding(path, purpose=purpose, timeout=timeout)
