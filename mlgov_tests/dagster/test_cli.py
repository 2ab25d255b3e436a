"""`mlgov` end to end on a persistent (temporary) instance: train, status, promote, rollback."""

from __future__ import annotations

import json

import pytest

from mlgov_assets.cli import main
from mlgov_assets.core.audit.decision_log import DecisionLog


@pytest.fixture
def cli_env(env, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(env.home / "dagster"))  # restored after the test
    return env


def _json(capsys) -> dict:
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])


def test_train_status_promote_refusal_override_and_rollback(cli_env, capsys):
    env = cli_env
    assert main(["train", "--set", "max_iter=60", "--set", "learning_rate=0.15"]) == 0
    assert "champion: version 1 (promoted" in capsys.readouterr().out

    # a weak challenger: exit 1, printing which gate refused it and why
    assert main(["train", "--set", "max_iter=15", "--set", "max_leaf_nodes=4"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] check_candidate_model_metric_floors" in out and "roc_auc" in out
    assert "REFUSED by" in out and "champion is unchanged" in out

    assert main(["status", "--json"]) == 0
    st = _json(capsys)
    keys = ["model_name", "policy", "champion", "history", "versions", "state_dir", "monitoring", "audit"]
    assert list(st) == [*keys, "projects", "notices"]
    assert st["state_dir"] == str(env.home) and st["audit"]["decision_log"]["ok"] is True
    lineage = st["audit"]["openlineage"]  # both training runs emitted (issue 12)
    assert lineage["enabled"] and lineage["runs_emitted"] == 2 and lineage["file_bytes"] > 0
    assert st["champion"]["version"] == 1
    assert st["champion"]["train_data_md5"] == "5d7c39d7b8804f071cdd1f2a7c460872"
    v2 = next(v for v in st["versions"] if v["version"] == 2)
    assert v2["gates"]["metric_floors"]["verdict"] == "failed" and v2["promotable"] is False

    # promote of a failed version is refused, the registry unchanged, the refusal logged
    assert main(["promote", "--version", "2", "--reason", "try"]) == 1
    assert "may not become champion" in capsys.readouterr().out
    reg = env.registry()
    assert reg.champion_version() == 1
    log = DecisionLog(env.settings().decision_log)
    assert log.records()[-1]["kind"] == "rejection"

    # an explicit override with a written justification is possible, and recorded as such
    assert main(["promote", "--version", "2", "--override", "regulator-approved exception REF-7"]) == 0
    capsys.readouterr()
    assert reg.champion_version() == 2
    last = log.records()[-1]
    assert (last["kind"], last["reason"]) == ("override", "regulator-approved exception REF-7")

    # rollback: champion back to the previous one, reason recorded
    assert main(["rollback", "--reason", "override withdrawn"]) == 0
    capsys.readouterr()
    assert reg.champion_version() == 1
    assert log.records()[-1]["kind"] == "rollback" and log.records()[-1]["reason"] == "override withdrawn"
    assert log.verify().ok

    # human status output names the champion and each gate
    assert main(["status"]) == 0
    text = capsys.readouterr().out
    assert "champion: version 1" in text and "FAILED metric_floors" in text


def test_every_command_has_help(capsys):
    for cmd in (["--help"], ["train", "--help"], ["status", "--help"], ["promote", "--help"], ["rollback", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(cmd)
        assert exc.value.code == 0
        assert "usage: mlgov" in capsys.readouterr().out


def test_rollback_without_previous_is_refused(cli_env, capsys):
    assert main(["rollback", "--reason", "nothing to roll back"]) == 1
    assert "no previous champion" in capsys.readouterr().out


def test_promote_by_version_is_recompared_with_the_current_champion(cli_env, capsys):
    """v2 beat v1, v3 beat v2: promoting v2 again must not slip past v3 on v2's old comparison."""
    env = cli_env
    for iters in (25, 40, 60):  # holdout AUC 0.919 -> 0.923 -> 0.926: each beats the last by > 0.0005
        assert main(["train", "--set", f"max_iter={iters}", "--set", "learning_rate=0.1"]) == 0, capsys.readouterr().out
    reg = env.registry()
    assert reg.champion_history() == [1, 2, 3]
    capsys.readouterr()
    assert main(["promote", "--version", "2", "--reason", "prefer the older model"]) == 1
    out = capsys.readouterr().out
    assert "champion_comparison" in out and "does not beat champion v3" in out
    assert reg.champion_version() == 3
    assert reg.gate_details(2, "champion_comparison")["compared_champion_version"] == 3
    assert main(["promote", "--version", "99"]) == 1
    assert "not registered" in capsys.readouterr().out


def test_a_malformed_policy_is_a_clear_error_and_trains_nothing(cli_env, capsys):
    env = cli_env
    env.use_policy(drop=("fairness", "explanations"), metric_floors={"roc_auc": {"min": 9}})
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert "metric_floors.roc_auc.min" in err and "impossible" in err and str(env.policy) in err
    assert main(["train", "--set", "max_iter=20"]) == 2  # a broken policy is an error, not a gate refusal
    out = capsys.readouterr().out
    assert "metric_floors.roc_auc.min" in out
    assert env.registry().versions() == []


def test_refusals_and_breakages_are_told_apart_by_type_not_by_message(capsys):
    """A failed blocking check or a Failure marked refused is exit 1; any other failure is exit 2."""
    from dagster import (
        AssetCheckResult,
        Definitions,
        Failure,
        asset,
        asset_check,
        define_asset_job,
        in_process_executor,
        mem_io_manager,
    )

    from mlgov_assets.cli import _finish, summarize_run

    @asset
    def gated():
        return 1

    @asset_check(asset=gated, blocking=True)
    def gate_says_no():
        return AssetCheckResult(passed=False, description="DagsterAssetCheckFailedError in the text changes nothing")

    @asset
    def refused():
        raise Failure(description="refused data", metadata={"mlgov/refused": True})

    @asset
    def broken():
        raise RuntimeError("DagsterAssetCheckFailedError")  # a message that merely looks like a refusal

    def run(*assets, checks=()):
        defs = Definitions(
            assets=list(assets),
            asset_checks=list(checks),
            jobs=[define_asset_job("j")],
            resources={"io_manager": mem_io_manager},
            executor=in_process_executor,
        )
        return summarize_run(defs.resolve_job_def("j").execute_in_process(raise_on_error=False))

    gate = run(gated, checks=[gate_says_no])
    assert [f.refused for f in gate.failed_steps] == [True] and gate.refused_by
    capsys.readouterr()
    assert _finish(gate, as_json=True) == 1
    # --json keeps the keys (and their order) scripts parse
    printed = _json(capsys)
    assert list(printed) == ["run_id", "success", "checks", "failed_steps", "refused_by", "champion"]
    assert list(printed["checks"][0]) == ["check", "asset", "passed", "severity", "blocking", "description"]
    assert printed["refused_by"] == printed["checks"] and printed["champion"] is None
    assert list(printed["failed_steps"][0]) == ["step", "refused", "error"]
    assert _finish(run(refused), as_json=True) == 1
    broke = run(broken)
    assert [f.refused for f in broke.failed_steps] == [False]
    assert _finish(broke, as_json=True) == 2
    capsys.readouterr()


def test_uncaught_errors_map_to_exit_codes_by_type(monkeypatch, capsys):
    import mlgov_assets.cli as cli
    from mlgov_assets.core.data.datasets import DatasetError
    from mlgov_assets.core.integrity import IntegrityError

    for exc, code in ((IntegrityError("bytes changed"), 1), (DatasetError("no file"), 2), (KeyError("x"), 2)):

        def fail(args, exc=exc):
            raise exc

        monkeypatch.setattr(cli, "cmd_data_pull", fail)
        assert main(["data", "pull"]) == code
        assert type(exc).__name__ in capsys.readouterr().err


def test_the_mlflow_ui_port_comes_from_settings(monkeypatch):
    from mlgov_assets.cli import build_parser

    monkeypatch.setenv("MLGOV_MLFLOW_UI_URL", "http://127.0.0.1:5123")
    assert build_parser().parse_args(["ui"]).mlflow_port == 5123
