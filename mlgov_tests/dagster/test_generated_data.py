"""Datasets mlgov generates (retraining's training sets) live under the state directory
(``Settings.generated_dir``: ``$MLGOV_HOME/generated`` or ``MLGOV_GENERATED_DIR``) in a DVC
repository of their own, so a run never writes into the checkout; lineage, the audit and
``mlgov reproduce`` still find their bytes by the recorded path and md5."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from mlgov_assets.cli import main
from mlgov_assets.core.data.datasets import dataset_caches, dataset_location, ensure_dataset
from mlgov_assets.core.settings import get_settings
from mlgov_tests.dagster.test_monitoring_sensors import MEETABLE


def _porcelain(project: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(project), "status", "--porcelain", "--untracked-files=all", "--ignored"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _json(capsys, argv: list[str]) -> tuple[int, dict]:
    capsys.readouterr()
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_full_retraining_leaves_the_checkout_untouched(env, capsys, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(env.home / "dagster"))
    env.write_policy(MEETABLE)
    before = _porcelain(env.project)
    assert main(["train", "--set", "max_iter=60", "--set", "learning_rate=0.15"]) == 0
    assert main(["simulate", "--kind", "covariate", "--rows", "2500", "--seed", "7", "--labels"]) == 0

    code, report = _json(capsys, ["monitor", "--once"])
    [run] = report["retraining"]["runs"]
    assert code == 0 and run["success"] and run["champion_after"] != run["champion_before"], report["retraining"]
    assert _porcelain(env.project) == before  # not one file written into the checkout, ignored ones included
    assert not (env.project / "data" / "generated").exists()

    generated = env.settings().generated_dir
    assert generated == env.home / "generated"
    name = run["dataset"].removeprefix("data/generated/")
    csv = generated / name
    md5 = hashlib.md5(csv.read_bytes()).hexdigest()
    assert run["dataset_md5"] == md5 and md5 in (generated / f"{name}.dvc").read_text()
    assert (generated / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).is_file()  # its DVC cache is there
    tags = env.registry().version_info(run["champion_after"]).tags
    assert (tags["mlgov.train_data_path"], tags["mlgov.train_data_md5"]) == (run["dataset"], md5)

    # the audit re-hashes the generated data in its cache; reproduce retrains from it bitwise
    code, audit = _json(capsys, ["audit", "champion"])
    assert code == 0, [link for link in audit["links"] if link["status"] == "fail"]
    [data_link] = [link for link in audit["links"] if link["name"] == "training_data"]
    assert data_link["status"] == "ok" and str(generated) in json.dumps(data_link)
    code, reproduced = _json(capsys, ["reproduce", "champion"])
    assert code == 0, reproduced
    assert _porcelain(env.project) == before


def test_the_generated_dir_follows_the_environment(tmp_path, monkeypatch, env):
    monkeypatch.setenv("MLGOV_GENERATED_DIR", str(tmp_path / "elsewhere"))
    s = get_settings()
    assert s.generated_dir == (tmp_path / "elsewhere").resolve()
    assert dataset_caches(s)[1] == s.generated_dir / ".dvc" / "cache"
    root, file = dataset_location(s.project_dir, "data/generated/x.csv", s.generated_dir)
    assert (root, file) == (s.generated_dir, s.generated_dir / "x.csv")
    assert dataset_location(s.project_dir, "data/adult.data", s.generated_dir) == (
        s.project_dir,
        s.project_dir / "data" / "adult.data",
    )
    # a dataset an older mlgov generated into the checkout is still found there
    legacy = env.project / "data" / "generated" / "old.csv"
    legacy.parent.mkdir(parents=True)
    legacy.write_text("age\n1\n")
    assert dataset_location(s.project_dir, "data/generated/old.csv", s.generated_dir) == (s.project_dir, legacy)
    # a new generated file is DVC-tracked in its own repository, recorded under its logical path
    (s.generated_dir).mkdir(parents=True)
    (s.generated_dir / "new.csv").write_text("age\n2\n")
    tracked = ensure_dataset(s, "data/generated/new.csv")
    assert tracked.relative_to(s.project_dir) == "data/generated/new.csv"
    assert tracked.cache_object.is_file() and s.generated_dir in tracked.cache_object.parents
    assert (s.generated_dir / ".dvc").is_dir() and not (s.generated_dir / ".gitignore").exists()
