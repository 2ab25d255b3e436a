"""``mlgov monitor --once`` with a tampered champion: a verification refusal (exit 1) told in a
sentence, in text and in ``--json`` (one document), never a raw dict or a traceback."""

from __future__ import annotations

import json
from pathlib import Path

from mlgov_assets.cli import main
from mlgov_tests.dagster.test_audit_cli import flipped_byte


def _largest_artifact(env) -> Path:
    from mlgov_assets.core.models.registry import TAG

    registry = env.registry()
    model_dir = Path(registry.version_info(registry.champion_version()).tags[TAG + "model_dir"])
    return max((p for p in model_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def test_a_tampered_champion_is_a_verification_refusal_in_monitor_once(env, capsys, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(env.home / "dagster"))
    monkeypatch.setenv("MLGOV_LANDING_DIR", str(env.home / "incoming"))
    assert main(["train", "--set", "max_iter=40", "--set", "learning_rate=0.2"]) == 0
    assert main(["simulate", "--kind", "none", "--rows", "300", "--seed", "1", "--batch-id", "b-1"]) == 0
    capsys.readouterr()
    with flipped_byte(_largest_artifact(env)):
        rc = main(["monitor", "--once", "--json"])
        captured = capsys.readouterr()
        report = json.loads(captured.out)  # exactly one document
        assert rc == 1, captured.err[-3000:]
        (batch,) = report["batches"]
        assert not batch["success"] and batch["refused"]
        assert "integrity" in batch["reason"].lower() and "{" not in batch["reason"]
        assert "Traceback" not in captured.err
        assert main(["simulate", "--kind", "none", "--rows", "300", "--seed", "2", "--batch-id", "b-2"]) == 0
        capsys.readouterr()
        rc = main(["monitor", "--once"])
        text = capsys.readouterr().out
    assert rc == 1
    line = next(ln for ln in text.splitlines() if "b-2" in ln)
    assert "REFUSED" in line and "{" not in line and "integrity" in line.lower(), text
