"""Fixtures of the monitoring unit tests: isolated settings and the raw holdout."""

from __future__ import annotations

import pandas as pd
import pytest

from mlgov_assets.core.settings import get_settings
from mlgov_tests.core.monitoring.helpers import DATA, read_adult


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    return read_adult(DATA / "adult.test")


@pytest.fixture
def settings(tmp_path):
    return get_settings(
        home=tmp_path / "state",
        project_dir=tmp_path / "project",
        landing_dir=tmp_path / "landing",
        policy_path=DATA.parent / "mlgov_assets" / "policies" / "default.yaml",
    ).ensure()
