"""Where a single-row `mlgov serve` request spends its time on the server side: one client, no
concurrency, the service called directly (no HTTP), under cProfile.

Needs a state directory with a champion (`mlgov train` in it), for example the one
`benchmarks/serve_load.py --keep` leaves behind:

    MLGOV_HOME=/tmp/home .venv/bin/python benchmarks/serve_profile.py --requests 500

Prints the wall-clock per request (without the profiler) and the cumulative share of each stage
of the request path (with it).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: (label, function name as cProfile reports it, a file it lives in) — the stages of ScoringService.predict
STAGES = (
    ("predict (whole request)", "predict", "serving/service.py"),
    ("parse_request (JSON, shape, validation)", "parse_request", "serving/requests.py"),
    ("  validation (Pandera / row checks)", "validate_batch", "monitoring/intake.py"),
    ("  validation (compiled row checks)", "check_columns", "data/rowcheck.py"),
    ("  raw frame build", "DataFrame.__init__", "frame.py"),
    ("_score (features, model, response)", "_score", "serving/service.py"),
    ("  features (build_features)", "build_features", "project/features.py"),
    ("  score_model", "score_model", "monitoring/scoring.py"),
    ("    base pipeline predict_proba", "predict_proba", "sklearn/pipeline.py"),
    ("log.append (prediction log line)", "append", "serving/predlog.py"),
    ("  fsync on the request path", "fsync", "~"),
    ("roller.add", "add", "serving/roller.py"),
    ("offer shadow (put_nowait to the shadow process)", "offer", "serving/shadow.py"),
)


def _stage_times(stats: pstats.Stats, calls: int) -> list[tuple[str, float]]:
    raw = stats.stats  # type: ignore[attr-defined]
    out = []
    for label, func, where in STAGES:
        total = sum(
            ct for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in raw.items() if name == func and where in file
        )
        out.append((label, total / calls * 1000))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--shadow", action="store_true", help="score the shadow too (off the request path)")
    ap.add_argument("--top", type=int, default=0, help="also print the top N functions by cumulative time")
    args = ap.parse_args()
    if not os.environ.get("MLGOV_HOME"):
        sys.exit("set MLGOV_HOME to a state directory with a champion")
    sys.path.insert(0, str(REPO))
    from mlgov_assets.commands.serve import build_service
    from mlgov_assets.core.project.reader import read_raw
    from mlgov_assets.core.serving.options import ServeOptions

    service = build_service(ServeOptions(shadow=args.shadow, roll_rows=10**9))
    service.start()
    try:
        project = service.project
        raw = read_raw(project, project.holdout_file).drop(columns=[project.label]).head(args.requests)
        bodies = [json.dumps({"row": r}).encode() for r in raw.to_dict("records")]
        for body in bodies[:20]:  # warm-up: first calls import and build caches
            service.predict(body)
        service.drain()
        wall = []
        for body in bodies:
            t0 = time.perf_counter()
            service.predict(body)
            wall.append((time.perf_counter() - t0) * 1000)
        service.drain()
        q = statistics.quantiles(wall, n=100)
        print(
            f"{len(wall)} single-row requests, sequential, shadow={'on' if args.shadow else 'off'}, "
            f"load average {os.getloadavg()[0]:.1f}: p50 {statistics.median(wall):.2f} ms, p99 {q[98]:.2f} ms"
        )
        prof = cProfile.Profile()
        prof.enable()
        for body in bodies:
            service.predict(body)
        prof.disable()
        service.drain()
        stats = pstats.Stats(prof)
        print("\n| stage (cumulative, profiled) | ms per request |\n|---|---:|")
        for label, ms in _stage_times(stats, len(bodies)):
            if ms > 0:
                print(f"| {label} | {ms:.2f} |")
        if args.top:
            stats.sort_stats("cumulative").print_stats(args.top)
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
