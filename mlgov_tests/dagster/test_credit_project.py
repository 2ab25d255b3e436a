"""The shipped credit-default project end to end through the CLI: train -> champion -> a drifted,
labelled batch -> monitor -> retraining through every gate -> audit. No Adult anywhere."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlgov_assets.cli import main
from mlgov_tests.conftest import REPO, _git


@pytest.fixture
def credit_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from dvc.repo import Repo

    repo = tmp_path / "project"
    (repo / "data").mkdir(parents=True)
    shutil.copyfile(REPO / "data" / "credit_default.csv", repo / "data" / "credit_default.csv")
    shutil.copyfile(REPO / "uv.lock", repo / "uv.lock")
    (repo / ".gitignore").write_text(".mlgov/\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "test@example.invalid")
    _git(repo, "config", "user.name", "mlgov test")
    Repo.init(str(repo)).close()
    with Repo(str(repo)) as dvc:
        dvc.add([str(repo / "data" / "credit_default.csv")])
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "credit data")
    home = tmp_path / "state"
    for var in ("MLGOV_POLICY", "MLGOV_MODEL_NAME", "MLGOV_LANDING_DIR", "MLGOV_PROJECT_SPEC"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLGOV_PROJECT_DIR", str(repo))
    monkeypatch.setenv("MLGOV_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "projects" / "credit_default" / "dagster"))
    return home / "projects" / "credit_default"


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    rc = main(argv)
    doc = json.loads(capsys.readouterr().out)  # exactly one JSON document on stdout
    assert isinstance(doc, dict)
    return rc, doc


def test_credit_default_trains_monitors_retrains_and_audits(credit_env, capsys, monkeypatch) -> None:
    home = credit_env
    monkeypatch.delenv("MLGOV_ACTOR", raising=False)
    rc, run = _json(capsys, ["train", "--project", "credit_default", "--json"])
    # the credit policy is in approval mode: staged, champion unchanged until two people approve
    assert rc == 0 and run["champion"]["promoted"] is False and run["champion"]["staged"] == 1  # type: ignore[index]
    for n, who in enumerate(["alice", "bob"], start=1):
        monkeypatch.setenv("MLGOV_ACTOR", who)
        rc, approved = _json(
            capsys, ["approve", "--project", "credit_default", "--version", "1", "--reason", "ok", "--json"]
        )
        assert rc == 0 and approved["approved_by"] == ["alice", "bob"][:n]
        assert approved["champion"] == (1 if n == 2 else None)
    monkeypatch.delenv("MLGOV_ACTOR")
    checks = {c["check"]: c for c in run["checks"]}  # type: ignore[union-attr]
    assert "RawCreditDefaultSchema" in checks["check_training_data_schema"]["description"]
    assert checks["check_fairness_report_candidate"]["passed"] is True

    rc, status = _json(capsys, ["status", "--project", "credit_default", "--json"])
    assert status["model_name"] == "mlgov-credit-default" and status["state_dir"] == str(home)
    champion = status["champion"]
    assert champion["train_data_md5"] == "c680c5347ac20ab9abdafc9b5fb2f310"  # type: ignore[index]
    assert champion["metrics"]["roc_auc"] > 0.75  # type: ignore[index]

    args = ["simulate", "--project", "credit_default", "--kind", "covariate", "--rows", "2500", "--seed", "7"]
    assert main([*args, "--labels"]) == 0
    assert list((home / "incoming").glob("sim-covariate-*.csv"))
    rc, report = _json(capsys, ["monitor", "--project", "credit_default", "--once", "--json"])
    [batch] = report["batches"]  # type: ignore[misc]
    assert batch["drift"]["breach"] is True
    [retrain] = report["retraining"]["runs"]  # type: ignore[index]
    assert retrain["champion_before"] == 1  # the retraining ran through every gate, whatever it decided

    _, status = _json(capsys, ["status", "--project", "credit_default", "--json"])
    for request in status.get("approvals", []):  # type: ignore[union-attr]  # a retrained version is staged too
        for who in ("alice", "bob"):
            monkeypatch.setenv("MLGOV_ACTOR", who)
            argv = ["approve", "--project", "credit_default", "--version", str(request["version"])]
            assert main([*argv, "--reason", "retrained on the drifted batch; reviewed"]) == 0
    monkeypatch.delenv("MLGOV_ACTOR", raising=False)
    rc, audit = _json(capsys, ["audit", "champion", "--project", "credit_default", "--json"])
    assert rc == 0, [link for link in audit.get("links", []) if link.get("problems")]  # type: ignore[union-attr]
