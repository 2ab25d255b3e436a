"""A DVC-tracked data file whose bytes changed: ``mlgov train`` refuses (exit 1) naming the file, its
recorded and current md5 and what to run; the git-tracked ``.dvc`` file is rewritten only on
``--accept-data-change`` / ``mlgov data add``."""

from __future__ import annotations

import json
import subprocess

import pytest

from mlgov_assets.cli import main
from mlgov_assets.core.data.datasets import TrackedDataChanged, ensure_tracked, recorded_md5
from mlgov_assets.core.integrity import md5_file


def _git_status(project) -> str:
    return subprocess.run(
        ["git", "-C", str(project), "status", "--porcelain"], capture_output=True, text=True, check=True
    ).stdout


def _change_one_byte(path) -> None:
    """One digit of the first row's age (39 -> 38): still valid data, different bytes."""
    data = path.read_bytes()
    assert data.startswith(b"39,")
    path.write_bytes(b"38" + data[2:])


def test_ensure_tracked_refuses_changed_bytes_and_adds_only_when_accepted(env):
    data = env.project / "data" / "adult.test"
    dvc_file = data.with_name("adult.test.dvc")
    before, recorded = dvc_file.read_bytes(), recorded_md5(data)
    data.write_bytes(data.read_bytes() + b"\n")
    with pytest.raises(TrackedDataChanged) as err:
        ensure_tracked(env.project, data)
    message = str(err.value)
    assert "data/adult.test" in message and recorded in message and md5_file(data) in message
    assert "mlgov train --accept-data-change" in message and "mlgov data add data/adult.test" in message
    assert err.value.exit_code == 1  # a refusal
    assert dvc_file.read_bytes() == before  # nothing rewritten
    original = data.read_bytes()[:-1]
    assert main(["data", "pull", "--force"]) == 0  # the other way out: the recorded bytes back
    assert data.read_bytes() == original and recorded_md5(data) == recorded
    data.write_bytes(original + b"\n")
    tracked = ensure_tracked(env.project, data, accept_change=True)
    assert tracked.added_now and recorded_md5(data) == tracked.md5 == md5_file(data) != recorded


def test_train_refuses_a_changed_tracked_file_until_the_change_is_accepted(env, capsys, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(env.home / "dagster"))
    data = env.project / "data" / "adult.data"
    dvc_file = data.with_name("adult.data.dvc")
    before, recorded = dvc_file.read_bytes(), recorded_md5(data)
    _change_one_byte(data)
    current = md5_file(data)
    status_before = _git_status(env.project)

    capsys.readouterr()
    assert main(["train", "--set", "max_iter=40", "--set", "learning_rate=0.2", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    (failure,) = doc["failed_steps"]
    assert failure["refused"] and "data/adult.data" in failure["error"]
    assert recorded in failure["error"] and current in failure["error"] and "--accept-data-change" in failure["error"]
    assert dvc_file.read_bytes() == before and _git_status(env.project) == status_before  # nothing rewritten
    assert env.registry().versions() == []

    capsys.readouterr()
    rc = main(["train", "--set", "max_iter=40", "--set", "learning_rate=0.2", "--accept-data-change"])
    captured = capsys.readouterr()
    assert rc == 0, captured.out
    assert "data/adult.data: changed bytes accepted" in captured.err and "adult.data.dvc rewritten" in captured.err
    assert recorded_md5(data) == current
    info = env.registry().version_info(env.registry().champion_version())
    assert info.tags["mlgov.train_data_md5"] == current


def test_data_add_rewrites_the_dvc_file_of_a_changed_file(env, capsys):
    data = env.project / "data" / "adult.test"
    recorded = recorded_md5(data)
    data.write_bytes(data.read_bytes() + b"\n")
    capsys.readouterr()
    assert main(["data", "add", "data/adult.test", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["datasets"]
    assert row == {
        "path": "data/adult.test",
        "md5": md5_file(data),
        "previous_md5": recorded,
        "dvc_file_rewritten": True,
    }
    assert recorded_md5(data) == md5_file(data)
