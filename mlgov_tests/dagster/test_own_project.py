"""The proof of genericity: a dataset mlgov has never seen — random column names and types, a planted
bias — governed end to end through `mlgov init` and the CLI, with no code change."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov_assets.cli import main
from mlgov_tests.conftest import REPO, _git


def _planted(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """Random names; a protected attribute whose group B is favoured far less often, through a proxy."""
    names = iter(f"{w}_{rng.integers(100, 999)}" for w in ("qux", "vel", "Tor", "amb", "pik", "Zed", "lum", "rho"))
    grp, proxy, num1, num2, cat1, ident, target = (next(names) for _ in range(7))
    group = rng.choice(["A", "B"], size=n, p=[0.55, 0.45])
    proxy_v = rng.normal(0, 1, n) + np.where(group == "B", -1.2, 0.0)  # what the model learns the bias from
    x1 = rng.normal(50, 10, n).round(2)
    x2 = rng.integers(0, 40, n)
    c1 = rng.choice(["red", "green", "blue"], size=n)
    logit = 1.4 * proxy_v + 0.05 * (x1 - 50) + 0.03 * (x2 - 20) + np.where(c1 == "red", 0.4, 0.0)
    favoured = rng.random(n) < 1 / (1 + np.exp(-logit))
    df = pd.DataFrame(
        {
            ident: np.arange(1, n + 1),
            grp: group,
            proxy: proxy_v.round(4),
            num1: x1,
            num2: x2,
            cat1: c1,
            target: np.where(favoured, "yes", "no"),
        }
    )
    return df, {"group": grp, "target": target, "id": ident, "proxy": proxy}


@pytest.fixture
def own_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str]]:
    from dvc.repo import Repo

    repo = tmp_path / "team-repo"
    (repo / "data").mkdir(parents=True)
    df, names = _planted(np.random.default_rng(7), 6000)
    df.to_csv(repo / "data" / "applications.csv", index=False)
    shutil.copyfile(REPO / "uv.lock", repo / "uv.lock")
    (repo / ".gitignore").write_text(".mlgov/\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "test@example.invalid")
    _git(repo, "config", "user.name", "mlgov test")
    Repo.init(str(repo)).close()
    monkeypatch.setenv("MLGOV_PROJECT_DIR", str(repo))
    monkeypatch.setenv("MLGOV_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("MLGOV_POLICY", raising=False)
    monkeypatch.delenv("MLGOV_MODEL_NAME", raising=False)
    monkeypatch.delenv("MLGOV_LANDING_DIR", raising=False)
    monkeypatch.delenv("MLGOV_PROJECT_SPEC", raising=False)
    monkeypatch.chdir(repo)  # a team runs mlgov from its own checkout
    return repo, names


def _json_out(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    out = capsys.readouterr().out
    doc = json.loads(out)  # exactly one JSON document on stdout
    assert isinstance(doc, dict)
    return doc


def test_init_then_govern_a_never_seen_dataset_end_to_end(own_repo, capsys, monkeypatch) -> None:
    repo, names = own_repo
    args = ["init", "applications", "--data", "data/applications.csv", "--target", names["target"]]
    assert main([*args, "--favourable", "yes", "--sensitive", names["group"], "--json"]) == 0
    drafted = _json_out(capsys)
    spec = Path(str(drafted["spec"]))
    assert spec.exists() and (repo / "data" / "applications.csv.dvc").exists()
    assert any(names["id"] in w and "identifier" in w for w in drafted["warnings"])  # type: ignore[union-attr]
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    _git(repo, "commit", "-qm", "govern applications")

    assert drafted["next"] == "mlgov train --project applications"
    assert main(["train", "--project", "applications", "--json"]) == 0
    run = _json_out(capsys)
    checks = {c["check"]: c for c in run["checks"]}  # type: ignore[union-attr]
    # the planted bias: the unmitigated model is refused by the four-fifths rule (shown, not blocking) ...
    assert checks["check_fairness_report_challenger"]["passed"] is False
    assert "demographic_parity_ratio" in checks["check_fairness_report_challenger"]["description"]
    # ... and the mitigated challenger passes every gate and becomes champion
    assert checks["check_fairness_report_candidate"]["passed"] is True
    assert run["champion"]["promoted"] is True  # type: ignore[index]

    monkeypatch.setenv("MLGOV_PROJECT_SPEC", str(spec))  # the other way to select a project
    assert main(["status", "--json"]) == 0
    status = _json_out(capsys)
    assert status["model_name"] == "mlgov-applications"
    assert main(["audit", "champion", "--json"]) == 0


def test_init_refuses_clearly_and_leaves_nothing_behind(own_repo, capsys, tmp_path) -> None:
    repo, names = own_repo
    base = ["init", "bad", "--data", "data/applications.csv", "--target", names["target"]]
    assert main([*base, "--favourable", "maybe", "--sensitive", names["group"]]) == 2
    assert "favourable value 'maybe' never occurs" in capsys.readouterr().err
    assert main([*base, "--favourable", "yes", "--sensitive", "height"]) == 2
    assert "no column(s) ['height']" in capsys.readouterr().err
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("a,b\n1,2\n")
    assert main(["init", "bad", "--data", str(outside), "--target", "a", "--favourable", "1", "--sensitive", "b"]) == 2
    assert "must be inside the project repository" in capsys.readouterr().err
    assert not (repo / "projects").exists() and not (repo / "data" / "applications.csv.dvc").exists()
