"""The code location: loads, stays light, and the antlr4 choice (pyproject override) holds."""

from __future__ import annotations

import subprocess
import sys

from dagster import AssetSelection, Definitions

HEAVY = ("mlflow", "evidently", "shap", "fairlearn", "sklearn", "matplotlib", "dvc", "pandera", "scipy", "openlineage")
#: Not heavy, but a fifth of the load time (~0.2 s CPU with pyarrow): the steps import them, the location does not.
TABLES = ("pandas", "numpy", "pyarrow")


def test_definitions_are_loadable():
    from mlgov_assets.definitions import defs

    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for project in ("adult", "credit_default"):  # the two shipped projects, side by side
        assert {f"{project}/{k}" for k in ("training_data", "train_features", "challenger_model", "champion")} <= keys


def test_importing_definitions_imports_no_heavy_library():
    code = f"import sys, mlgov_assets.definitions; print(','.join(m for m in {HEAVY + TABLES!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing mlgov_assets.definitions pulled in: {out}"


def test_selection_strings_parse_with_the_antlr_runtime_we_pin():
    # dvc -> hydra pins antlr4 4.9, under which every Dagster selection *string* crashes;
    # pyproject overrides it to 4.13.2. Prove string selections work...
    from mlgov_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    selected = {k.to_user_string() for k in AssetSelection.from_string('key:"adult/training_data"+').resolve(graph)}
    assert {"adult/training_data", "adult/train_features"} <= selected
    assert "adult/holdout_data" not in selected and "adult/holdout_features" not in selected
    upstream = AssetSelection.from_string('+key:"credit_default/champion"').resolve(graph)
    assert {"credit_default/challenger_model", "credit_default/champion"} <= {k.to_user_string() for k in upstream}
    assert not any(k.path[0] == "adult" for k in upstream)  # projects never share lineage


def test_dvc_add_and_read_work_under_the_same_runtime(tmp_path):
    # ...and that the DVC features mlgov uses still work with it (no hydra/params features used)
    import dvc.api
    from dvc.repo import Repo

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    Repo.init(str(tmp_path)).close()
    f = tmp_path / "d.csv"
    f.write_text("a,b\n1,2\n")
    with Repo(str(tmp_path)) as repo:
        repo.add(str(f))
    assert (tmp_path / "d.csv.dvc").exists()
    assert dvc.api.read("d.csv", repo=str(tmp_path)) == "a,b\n1,2\n"
