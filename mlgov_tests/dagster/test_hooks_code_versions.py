"""A project's Python hooks are part of the data/features stages' code versions (only when it has any)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgov_assets.core.provenance import source_version
from mlgov_assets.defs import common
from mlgov_tests.core.test_project_hooks import HOOKS, _project

STAGES = ("data", "features", "training", "governance", "fairness")


def test_without_hooks_the_code_versions_are_the_modules_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MLGOV_PROJECT_SPEC", "MLGOV_PROJECT_DIR"):
        monkeypatch.delenv(var, raising=False)
    assert common._code_versions() == {s: source_version(f"defs/{s}.py") for s in STAGES}


def test_hooks_of_the_selected_project_fold_into_data_and_features(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path)
    monkeypatch.setenv("MLGOV_PROJECT_SPEC", str(project.spec_path))
    monkeypatch.setenv("MLGOV_PROJECT_DIR", str(tmp_path))
    plain = {s: source_version(f"defs/{s}.py") for s in STAGES}
    hooked = common._code_versions()
    assert {s for s in STAGES if hooked[s] != plain[s]} == {"data", "features"}
    (tmp_path / "bankhooks" / "loans.py").write_text(HOOKS + "\n# an edit\nTHRESHOLD = 2\n")
    edited = common._code_versions()
    assert edited["data"] != hooked["data"] and edited["features"] != hooked["features"]
    assert edited["training"] == hooked["training"]
