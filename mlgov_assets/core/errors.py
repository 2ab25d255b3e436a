"""One exception hierarchy for mlgov.

``MlgovError`` is the root. A ``Refusal`` is a governance decision (a gate refused, a promotion was
refused, a verification failed): the CLI exits 1. Every other ``MlgovError`` is an error (bad
configuration, bad input, a broken store): exit 2. Callers map by type, never by message text.
"""

from __future__ import annotations

from typing import ClassVar


class MlgovError(Exception):
    """Root of every error mlgov raises on purpose."""

    exit_code: ClassVar[int] = 2


class Refusal(MlgovError):
    """A governance decision, not a fault: the request was understood and refused."""

    exit_code: ClassVar[int] = 1


class ConfigError(MlgovError, ValueError):
    """A configuration file (policy, project spec) is malformed; the message names file and key."""


class InputError(MlgovError, ValueError):
    """Input data cannot be used; the message names file, column, rule and rows."""


def exit_code_for(exc: BaseException) -> int:
    """The CLI's exit code for an exception: 1 for a refusal, 2 for anything else."""
    return exc.exit_code if isinstance(exc, MlgovError) else 2
