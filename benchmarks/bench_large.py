"""The governed path on ~1M training rows: `mlgov train` against the plain script, time and peak memory.

    .venv/bin/python benchmarks/bench_large.py [--copies 30]

Builds a throw-away git+DVC project whose training file is Adult's `adult.data` repeated `--copies`
times (30 -> 976,830 rows; holdout `adult.test`), with a project spec derived from the shipped
Adult spec and the shipped policy, then runs, each in a fresh process measured by `/usr/bin/time`:
the plain script of `bench_path.py` (same ML computations, no Dagster/MLflow/DVC) and
`mlgov train --project <spec>` on a fresh state directory (DVC-adding the big file included).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
sys.path.insert(0, str(ROOT / "benchmarks"))


def _project(root: Path, copies: int) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "projects").mkdir()
    block = (ROOT / "data" / "adult.data").read_bytes()
    (root / "data" / "large.data").write_bytes(block * copies)
    shutil.copyfile(ROOT / "data" / "adult.test", root / "data" / "adult.test")
    shutil.copyfile(ROOT / "uv.lock", root / "uv.lock")
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "b@e.invalid"], ["config", "user.name", "b"]):
        subprocess.run(["git", "-C", str(root), *args], check=True)
    subprocess.run([PY, "-m", "dvc", "init", "-q"], cwd=root, check=True)
    spec = (ROOT / "mlgov_assets" / "projects" / "adult.yaml").read_text()
    spec = spec.replace("path: data/adult.data", "path: data/large.data").replace("name: adult\n", "name: large\n")
    spec = spec.replace("policy: ../policies/default.yaml", f"policy: {ROOT / 'mlgov_assets/policies/default.yaml'}")
    spec = re.sub(r"registered_model: .*", "registered_model: mlgov-large", spec)
    (root / "projects" / "large.yaml").write_text(spec)
    return root / "projects" / "large.yaml"


def _measure(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", *cmd], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    wall, peak_kb = out.stderr.strip().splitlines()[-1].split()
    return float(wall), int(peak_kb) / 1024 / 1024


def main() -> int:
    from bench_path import PLAIN

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=30)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlgov-large-") as tmp:
        spec = _project(Path(tmp) / "repo", a.copies)
        repo = spec.parents[1]
        env = {**os.environ, "MLGOV_PROJECT_DIR": str(repo), "MLGOV_HOME": str(Path(tmp) / "state")}
        rows = sum(1 for line in (repo / "data" / "large.data").open("rb") if line.strip())
        plain = _measure([PY, "-c", PLAIN, str(spec)], repo, env)
        full = _measure([PY, "-m", "mlgov_assets.cli", "train", "--project", str(spec), "--json"], repo, env)
    print(f"training rows: {rows:,}\n")
    print("| what | seconds | peak RSS (GB) |\n|---|---:|---:|")
    print(f"| `mlgov train` (fresh state, DVC add of the file included) | {full[0]:.1f} | {full[1]:.2f} |")
    print(f"| plain script, same computations | {plain[0]:.1f} | {plain[1]:.2f} |")
    print(f"\nratio: time {full[0] / plain[0]:.2f}, memory {full[1] / plain[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
