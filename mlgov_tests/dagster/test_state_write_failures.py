"""A state directory that cannot be written (read-only, full disk): one clear message naming the
path, exit 2, ``--json`` still one document, nothing changed.

Tests run as root, for whom ``chmod`` forbids nothing, so the read-only case is a real read-only
bind mount of the state directory (skipped where mounting is not permitted); the full disk is an
``ENOSPC`` raised where the bytes are written (the atomic-write primitive's temp file).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from pathlib import Path

import pytest

from mlgov_assets.cli import main


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


@contextlib.contextmanager
def read_only(path: Path):
    """``path`` read-only (a read-only bind mount onto itself), even for root."""
    mounted = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True, check=False)
    if mounted.returncode:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], capture_output=True, check=True)
        probe = path / ".probe"
        with pytest.raises(OSError) as err:
            probe.write_text("x")
        assert err.value.errno == errno.EROFS
        yield path
    finally:
        subprocess.run(["umount", str(path)], capture_output=True, check=False)


def _json_run(capfd, argv: list[str]) -> tuple[int, dict, str]:
    capfd.readouterr()
    code = main([*argv, "--json"])
    captured = capfd.readouterr()
    return code, json.loads(captured.out), captured.err


def test_a_read_only_state_directory_is_one_clear_error(env, capfd, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(env.home / "dagster"))
    assert main(["train", "--set", "max_iter=40", "--set", "learning_rate=0.2"]) == 0
    assert main(["simulate", "--kind", "none", "--rows", "200", "--seed", "1", "--batch-id", "ro-1"]) == 0
    before = _tree(env.home)
    with read_only(env.home):
        for argv in (
            ["train", "--set", "max_iter=40", "--set", "learning_rate=0.2"],
            ["simulate", "--kind", "none", "--rows", "50", "--seed", "2"],
            ["monitor", "--once"],
            ["promote", "--version", "1", "--reason", "again"],
        ):
            code, doc, err = _json_run(capfd, argv)
            assert code == 2, (argv, doc)
            text = json.dumps(doc)
            assert str(env.home) in text and ("read-only" in text.lower() or "readonly" in text.lower()), (argv, doc)
            assert "Traceback" not in err
        capfd.readouterr()
        assert main(["simulate", "--kind", "none", "--rows", "50", "--seed", "3"]) == 2
        captured = capfd.readouterr()
        assert captured.out == "" and str(env.home / "incoming") in captured.err and "read-only" in captured.err
    assert _tree(env.home) == before  # nothing changed


def test_a_full_disk_names_the_file_and_leaves_nothing_behind(env, capfd, monkeypatch):
    import mlgov_assets.core.integrity as integrity

    class FullDisk:
        @staticmethod
        def mkstemp(dir: str, prefix: str, suffix: str) -> tuple[int, str]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(dir, prefix + "x" + suffix))

    monkeypatch.setattr(integrity, "tempfile", FullDisk)
    code, doc, _ = _json_run(capfd, ["simulate", "--kind", "none", "--rows", "50", "--batch-id", "full-1"])
    assert code == 2 and doc["ok"] is False and doc["kind"] == "error"
    target = env.home / "incoming" / "full-1.csv"
    assert f"cannot write {target}: no space left on the device" in doc["error"]
    assert not any((env.home / "incoming").iterdir())
