"""Fault injection for crash-safety tests: ``fault_point(name)`` is inert unless armed.

Arm with ``MLGOV_FAULT=<point>`` (the process dies there with ``os._exit(137)``, as a SIGKILL would
leave it: no cleanup, no finally blocks) or ``MLGOV_FAULT=<point>:erofs`` / ``:enospc`` / ``:eacces``
(an ``OSError`` as a read-only file system, a full disk or a permission change would raise), or
``MLGOV_FAULT=<point>:pause`` (the process sleeps ``PAUSE_SECONDS`` there: a step caught mid-way, for a
test that kills its worker at a known moment).
``<point>@N`` fires at the N-th time the process reaches the point (default the first). Several
points may be armed, comma-separated. Stdlib only: a leaf anyone may import.
"""

from __future__ import annotations

import errno
import os
import time

__all__ = ["ENV", "PAUSE_SECONDS", "armed", "fault_point"]

ENV = "MLGOV_FAULT"
PAUSE_SECONDS = 20.0
_ERRORS = {"erofs": errno.EROFS, "enospc": errno.ENOSPC, "eacces": errno.EACCES}
_HITS: dict[tuple[str, str], int] = {}  # (armed value, point) -> times reached while so armed


def armed(name: str) -> str | None:
    """The mode armed at point ``name`` ("" for a kill, "erofs", ...), or None when it is not armed."""
    value = os.environ.get(ENV)
    if not value:
        return None
    for item in value.split(","):
        point, _, mode = item.strip().partition(":")
        point, _, nth = point.partition("@")
        if point == name:
            return mode if (_HITS.get((value, name), 0) + 1) == (int(nth) if nth.isdigit() else 1) else None
    return None


def fault_point(name: str) -> None:
    """Die (or raise the armed OSError) here if ``MLGOV_FAULT`` names this point; else nothing."""
    mode = armed(name)
    value = os.environ.get(ENV)
    if not value:
        return
    _HITS[(value, name)] = _HITS.get((value, name), 0) + 1
    if mode is None:
        return
    if mode == "pause":
        time.sleep(PAUSE_SECONDS)
        return
    if mode in _ERRORS:
        code = _ERRORS[mode]
        raise OSError(code, f"{os.strerror(code)} (injected at fault point {name})")
    os._exit(137)
