"""Hold the prod promotion lock in a subprocess: ``python -m mlgov_tests.prod._holder MODEL SECONDS``.

Prints ``held`` once it holds the lock (the parent waits for that line), then sleeps ``SECONDS``
(a test kills it with SIGKILL, or lets it time out and release)."""

from __future__ import annotations

import sys
import time

from mlgov_assets.core.models.registry import promotion_guard
from mlgov_assets.core.settings import get_settings


def main(argv: list[str]) -> int:
    model, seconds = argv[0], float(argv[1])
    settings = get_settings(model_name=model)
    with promotion_guard(settings, purpose=f"test holder of {model}"):
        print("held", flush=True)
        time.sleep(seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
