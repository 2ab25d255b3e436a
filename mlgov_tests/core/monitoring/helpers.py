"""Helpers shared by the monitoring unit tests: landing files as a producer writes them, simulated batches."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from mlgov_assets.core.monitoring.batches import simulate_batch
from mlgov_assets.core.project.project import Project, open_project
from mlgov_assets.core.project.reader import read_raw
from mlgov_assets.core.settings import DEFAULT_PROJECT_SPEC

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data"
#: The shipped Adult demo project, its data under the repository.
ADULT: Project = open_project(DEFAULT_PROJECT_SPEC, REPO)


def read_adult(path: str | Path) -> pd.DataFrame:
    """An Adult-format file read as the demo's spec reads it (raw strings, ``?`` kept)."""
    return read_raw(ADULT, path)


def land(landing: Path, name: str, frame: pd.DataFrame, *, age_s: float = 60.0) -> Path:
    """Write a landing file as a producer would, dated ``age_s`` seconds ago (past the settle time)."""
    landing.mkdir(parents=True, exist_ok=True)
    path = landing / name
    frame.to_csv(path, index=False)
    past = time.time() - age_s
    os.utime(path, (past, past))
    return path


def sim(kind: str, holdout: pd.DataFrame, rows: int = 400, seed: int = 0, labels: bool = False):
    return simulate_batch(ADULT, kind, holdout, rows, seed, with_labels=labels)
