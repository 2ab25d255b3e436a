"""Helpers shared by the monitoring unit tests: landing files as a producer writes them, simulated batches."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from mlgov_assets.core.monitoring.batches import simulate_batch

DATA = Path(__file__).resolve().parents[3] / "data"


def land(landing: Path, name: str, frame: pd.DataFrame, *, age_s: float = 60.0) -> Path:
    """Write a landing file as a producer would, dated ``age_s`` seconds ago (past the settle time)."""
    landing.mkdir(parents=True, exist_ok=True)
    path = landing / name
    frame.to_csv(path, index=False)
    past = time.time() - age_s
    os.utime(path, (past, past))
    return path


def sim(kind: str, holdout: pd.DataFrame, rows: int = 400, seed: int = 0, labels: bool = False):
    return simulate_batch(kind, holdout, rows, seed, with_labels=labels)
