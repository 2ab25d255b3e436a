"""A project's Python hooks are part of the data/features stages' code versions (only when it has any)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgov_assets.core.provenance import source_version
from mlgov_assets.defs import common
from mlgov_tests.core.test_project_hooks import HOOKS, _project

STAGES = ("data", "features", "training", "governance", "fairness")


def test_without_hooks_the_code_versions_are_the_modules_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlgov_assets.core.settings import DEFAULT_PROJECT_SPEC, PACKAGE_DIR

    assert common._code_versions() == {s: source_version(f"defs/{s}.py") for s in STAGES}
    assert common.hooked_code_versions(DEFAULT_PROJECT_SPEC, PACKAGE_DIR.parent) == {}


def test_a_projects_hooks_fold_into_its_data_and_features_code_versions(tmp_path: Path) -> None:
    from mlgov_assets.definitions import build_definitions
    from mlgov_assets.defs.scope import ProjectScope
    from mlgov_assets.resources import MlgovResource

    project = _project(tmp_path)
    plain = {s: source_version(f"defs/{s}.py") for s in STAGES}
    hooked = common.hooked_code_versions(project.spec_path, tmp_path)
    assert set(hooked) == {plain["data"], plain["features"]}
    assert all(new != old for old, new in hooked.items())
    # in the code location: only this project's data and features assets carry them
    scope = ProjectScope(project.name, project.spec_path)
    defs = build_definitions(MlgovResource(project_dir=str(tmp_path), home=str(tmp_path / "state")), projects=[scope])
    graph = defs.resolve_asset_graph()
    versions = {k.path[-1]: graph.get(k).code_version for k in graph.get_all_asset_keys()}
    assert (
        versions["training_data"] == hooked[plain["data"]] and versions["train_features"] == hooked[plain["features"]]
    )
    assert versions["challenger_model"] == plain["training"]
    (tmp_path / "bankhooks" / "loans.py").write_text(HOOKS + "\n# an edit\nTHRESHOLD = 2\n")
    edited = common.hooked_code_versions(project.spec_path, tmp_path)
    assert set(edited.values()).isdisjoint(hooked.values())  # an edited hook marks both stages stale
    assert project.hook_sources() == {"bankhooks/loans.py": HOOKS + "\n# an edit\nTHRESHOLD = 2\n"}
