"""Shadow loaders for the serving tests, importable by the ``spawn``-ed shadow process (a loader
crosses the process boundary by name). They stand in for ``shadow.verified_loader`` to inject a
shadow that raises or stalls; they load no artifact at all."""

from __future__ import annotations

import time
from typing import Any


class Broken:
    def predict_proba(self, X: Any) -> Any:
        raise RuntimeError("shadow exploded")


class Slow:
    def predict_proba(self, X: Any) -> Any:
        time.sleep(3.0)
        raise RuntimeError("slow and broken")


def broken_loader(settings: Any, version: int) -> Broken:
    return Broken()


def slow_loader(settings: Any, version: int) -> Slow:
    return Slow()
