"""Code-location load time: `import mlgov_assets.definitions` with one project vs every project.

Each sample is a fresh interpreter (what a code server or run worker pays), the variants
interleaved so machine noise hits them alike; prints medians of wall and CPU seconds (CPU time
moves less than wall time when the machine is shared), runs and the ratio as Markdown.
``--against PATH`` also times another checkout of mlgov (e.g. ``git worktree add /tmp/base main``)
with every project, imported from that tree (``PYTHONPATH`` and working directory), same interpreter.
`python benchmarks/bench_import.py [--runs N] [--against PATH]`
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = (
    "import time; t = time.perf_counter(); c = time.process_time(); import mlgov_assets.definitions as d; "
    "defs = d.location_defs(); el = time.perf_counter() - t; cpu = time.process_time() - c; "
    "print(el, cpu, len(list(defs.resolve_all_asset_specs())))"
)


def _sample(projects: str | None, home: str, tree: Path = REPO) -> tuple[float, float, int]:
    env = {**os.environ, "MLGOV_HOME": home}
    env.pop("MLGOV_PROJECTS", None)
    if projects:
        env["MLGOV_PROJECTS"] = projects
    if tree != REPO:
        env["PYTHONPATH"] = str(tree)
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=tree, env=env, capture_output=True, text=True, check=True)
    seconds, cpu, assets = out.stdout.split()[-3:]
    return float(seconds), float(cpu), int(assets)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--against", type=Path, help="another mlgov checkout to time side by side (every project)")
    args = ap.parse_args()
    variants: dict[str, tuple[str | None, Path]] = {
        "one project (MLGOV_PROJECTS=adult)": ("adult", REPO),
        "every project (default)": (None, REPO),
    }
    if args.against:
        variants[f"every project, {args.against}"] = (None, args.against.resolve())
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    assets: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as home:
        for projects, tree in {v[1]: v for v in variants.values()}.values():
            _sample(projects, home, tree)  # warm the bytecode and the code-version cache once per tree
        for _ in range(args.runs):
            for name, (projects, tree) in variants.items():
                seconds, cpu, assets[name] = _sample(projects, home, tree)
                times[name].append((seconds, cpu))
    print("| code location | assets | median wall | median CPU | wall runs (s) |\n|---|---|---|---|---|")
    for name, runs in times.items():
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        print(f"| {name} | {assets[name]} | {wall:.2f} s | {cpu:.2f} s | {' '.join(f'{r[0]:.2f}' for r in runs)} |")
    medians = [statistics.median(r[0] for r in runs) for runs in times.values()]
    print(f"\nRatio of medians (every / one): **{medians[1] / medians[0]:.2f}×**")
    if args.against:
        cpu = [statistics.median(r[1] for r in runs) for runs in times.values()]
        wall_ratio, cpu_ratio = medians[1] / medians[2], cpu[1] / cpu[2]
        print(f"Ratio this tree / {args.against} (every project): wall {wall_ratio:.2f}×, CPU {cpu_ratio:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
