"""Code-location load time: `import mlgov_assets.definitions` with one project vs every project.

Each sample is a fresh interpreter (what a code server or run worker pays), the two variants
interleaved so machine noise hits both alike; prints medians, runs and the ratio as Markdown.
`python benchmarks/bench_import.py [--runs N]`
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
    "import time; t = time.perf_counter(); import mlgov_assets.definitions as d; "
    "defs = d.location_defs(); el = time.perf_counter() - t; "
    "print(el, len(list(defs.resolve_all_asset_specs())))"
)


def _sample(projects: str | None, home: str) -> tuple[float, int]:
    env = {**os.environ, "MLGOV_HOME": home}
    env.pop("MLGOV_PROJECTS", None)
    if projects:
        env["MLGOV_PROJECTS"] = projects
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    seconds, assets = out.stdout.split()
    return float(seconds), int(assets)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    variants = {"one project (MLGOV_PROJECTS=adult)": "adult", "every project (default)": None}
    times: dict[str, list[float]] = {k: [] for k in variants}
    assets: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as home:
        _sample(None, home)  # warm the bytecode and the code-version cache once
        for _ in range(args.runs):
            for name, projects in variants.items():
                seconds, assets[name] = _sample(projects, home)
                times[name].append(seconds)
    print("| code location | assets | median | runs (s) |\n|---|---|---|---|")
    for name, runs in times.items():
        print(f"| {name} | {assets[name]} | {statistics.median(runs):.2f} s | {' '.join(f'{r:.2f}' for r in runs)} |")
    one, every = (statistics.median(r) for r in times.values())
    print(f"\nRatio of medians (every / one): **{every / one:.2f}×**")
    return 0


if __name__ == "__main__":
    sys.exit(main())
