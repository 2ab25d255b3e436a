"""This tree against a baseline commit, side by side in one run (machines are noisy: medians, ratios).

    .venv/bin/python benchmarks/bench_baseline.py --baseline REV [--repeats 7] [--path-repeats 3]

Checks the baseline out into a temporary git worktree (same virtualenv, the baseline's package put
first on ``PYTHONPATH``) and alternates the two trees run by run:
1. ``import mlgov_assets.definitions`` in a fresh process (the code-location load every code server
   and run worker pays);
2. ``mlgov train --json`` on a fresh ``MLGOV_HOME`` (the whole governed path, shipped policy).
Prints a Markdown table: medians, the ratio this/baseline, and every sample.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DATA_FILES = ("adult.data", "adult.test")


def _env(tree: Path, home: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(tree), MLGOV_PROJECT_DIR=str(tree))
    env.pop("MLGOV_POLICY", None)
    if home is not None:
        env["MLGOV_HOME"] = str(home)
    return env


#: The last ``mlgov train --json`` verdict of each tree: the demo's results must not change.
VERDICTS: dict[Path, dict[str, object]] = {}


def _timed(cmd: list[str], tree: Path, home: Path | None = None) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tree, env=_env(tree, home), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed in {tree} (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    if "--json" in cmd:
        # DVC may print a hint on stdout before the JSON (a known bug, issue "Hardening"): skip to the document
        summary = json.loads(
            proc.stdout[proc.stdout.index("\n{") + 1 :] if not proc.stdout.startswith("{") else proc.stdout
        )
        VERDICTS[tree] = {
            "checks": sorted((c["check"], c["asset"], c["passed"]) for c in summary["checks"]),
            "champion": {k: summary["champion"].get(k) for k in ("champion", "promoted")},
        }
    return time.perf_counter() - t


def _load(tree: Path) -> float:
    return _timed([PY, "-c", "import mlgov_assets.definitions"], tree)


def _path(tree: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="mlgov-bench-") as home:
        return _timed([PY, "-m", "mlgov_assets.cli", "train", "--json"], tree, Path(home))


def _alternate(n: int, fn: Callable[[Path], float], trees: dict[str, Path]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(n):
        for name, tree in trees.items():
            out[name].append(fn(tree))
    return out


def _row(what: str, samples: dict[str, list[float]]) -> str:
    this, base = statistics.median(samples["this tree"]), statistics.median(samples["baseline"])
    fmt = lambda xs: " ".join(f"{x:.2f}" for x in xs)
    return (
        f"| {what} | {this:.2f} | {base:.2f} | {this / base:.2f} | "
        f"{fmt(samples['this tree'])} / {fmt(samples['baseline'])} |"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="git revision to compare with")
    ap.add_argument("--repeats", type=int, default=7, help="fresh-process imports per tree")
    ap.add_argument("--path-repeats", type=int, default=3, help="governed-path runs per tree (0 skips)")
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="mlgov-baseline-"))
    base = scratch / "tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.baseline],
        check=True,
        capture_output=True,
    )
    try:
        for name in DATA_FILES:  # DVC-tracked, identical bytes in both trees
            shutil.copy2(ROOT / "data" / name, base / "data" / name)
        trees = {"this tree": ROOT, "baseline": base}
        print(f"baseline {args.baseline}; medians in seconds, alternating runs\n")
        print("| what | this tree | baseline | ratio | samples (this / baseline) |\n|---|---:|---:|---:|---|")
        print(_row("`import mlgov_assets.definitions`", _alternate(args.repeats, _load, trees)), flush=True)
        if args.path_repeats:
            print(_row("`mlgov train` on a fresh home", _alternate(args.path_repeats, _path, trees)), flush=True)
            same = VERDICTS[ROOT] == VERDICTS[base]
            n = len(VERDICTS[ROOT]["checks"])  # type: ignore[arg-type]
            print(f"\nsame gate verdicts and champion in both trees: {same} ({n} checks, {VERDICTS[ROOT]['champion']})")
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
