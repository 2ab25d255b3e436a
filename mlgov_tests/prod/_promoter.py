"""Promote in a subprocess of its own: ``python -m mlgov_tests.prod._promoter VERSION START_AT``.

The registry is the environment's (``MLGOV_PROFILE=prod``, ``MLGOV_MODEL_NAME``, ``MLGOV_POLICY``);
the process sleeps until the epoch time ``START_AT`` so two of them race, then calls ``promote``
without re-evaluation (the compare-and-set path). Prints the decision as JSON; exit codes as the CLI's."""

from __future__ import annotations

import json
import sys
import time

from mlgov_assets.core.errors import MlgovError, exit_code_for
from mlgov_assets.core.governance.policy import load_policy
from mlgov_assets.core.governance.promotion import promote
from mlgov_assets.core.models.registry import Registry
from mlgov_assets.core.settings import get_settings


def main(argv: list[str]) -> int:
    version, start_at = int(argv[0]), float(argv[1])
    settings = get_settings()
    reg, policy = Registry(settings), load_policy(settings.policy_path)
    time.sleep(max(0.0, start_at - time.time()))
    try:
        out = promote(reg, policy, version, actor=f"racer {version}", reason="race").to_dict()
    except MlgovError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return exit_code_for(exc)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
