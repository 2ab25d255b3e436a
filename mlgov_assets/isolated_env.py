"""The environment of an mlgov process run in isolation: its own state directory, project copy and
policy, nothing inherited from the caller's ``MLGOV_*``/``DAGSTER_*`` settings, no telemetry
(``core.settings.QUIET_ENV``).

Used by the browser tests' ``mlgov ui`` (``mlgov_tests/browser/ui.py``) and by the benchmark that
compares it with ``mlgov train`` (``benchmarks/ui_materialize.py``): both sides must run alike.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlgov_assets.core.settings import QUIET_ENV


def isolated_env(home: Path, project: Path, policy: Path, *, projects: str = "adult") -> dict[str, str]:
    """``os.environ`` without the caller's mlgov and Dagster settings, plus state under ``home``, the
    project at ``project``, the policy file ``policy`` and the code location's ``projects``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLGOV_", "DAGSTER_"))}
    env.update(
        {
            "MLGOV_HOME": str(home),
            "MLGOV_PROJECT_DIR": str(project),
            "MLGOV_POLICY": str(policy),
            "MLGOV_PROJECTS": projects,
            **QUIET_ENV,
        }
    )
    return env
