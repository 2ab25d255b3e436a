"""Drift engine vs Evidently's DataDriftPreset: seconds and peak memory on the same data.

    .venv/bin/python benchmarks/bench_drift.py [--sizes 16281,1000000,5000000] [--repeats 3]
        [--evidently-max-rows 1000000] [--evidently-repeats N] [--json results.json]

Reference: adult.data (32,561 rows), typed as the pipeline types it (numbers parsed, ``?`` ->
``Unknown``; categoricals stay object strings, the slower case for hashing). Current: a uniform
bootstrap resample of typed adult.test to N rows (seed 0), i.e. a no-drift batch.

Every (tool, N) cell runs in a fresh subprocess so peak memory is that run's own: the worker
reports ``ru_maxrss`` (peak resident set size of the whole process: interpreter, libraries,
reference and batch data included). The peak mark is reset (``/proc/self/clear_refs``) just
before the timed part, so "peak MB" is the peak RSS *during* the timed runs (VmHWM; the data is
resident, so it is included) and not a leftover of data preparation; "data MB" is the RSS just
before the timed part, so peak - data is what the drift computation itself adds. The process
lifetime peak (``ru_maxrss``) is in the ``--json`` output.

Timed part: engine = ``compute_drift`` with the reference profile built beforehand (the profile
is built once per reference version; its build time is reported on its own line); Evidently =
``Dataset.from_pandas`` for both frames + ``Report([DataDriftPreset()], include_tests=True).run``
(Evidently has no reference cache). The median of ``--repeats`` runs is reported; imports are
not timed. Both sides use Evidently's tests (normed Wasserstein / Jensen–Shannon at 0.1), and the
per-column verdicts of the two are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    """Peak RSS since the last :func:`_reset_peak` (VmHWM), else since process start (ru_maxrss)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0: write 5 to clear_refs), so the peak we read
    belongs to the timed part and not to data preparation."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _data(rows: int, seed: int):
    import numpy as np

    from mlgov_assets.core.monitoring.reference import DriftColumns, typed_for_drift
    from mlgov_assets.core.project.project import open_project
    from mlgov_assets.core.project.reader import read_raw
    from mlgov_assets.core.settings import DEFAULT_PROJECT_SPEC

    project = open_project(DEFAULT_PROJECT_SPEC, ROOT)  # the Adult demo
    columns = DriftColumns.of(project)
    reference = typed_for_drift(project, read_raw(project, ROOT / "data" / "adult.data"))
    holdout = typed_for_drift(project, read_raw(project, ROOT / "data" / "adult.test"))
    idx = np.random.default_rng(seed).integers(0, len(holdout), size=rows)
    current = holdout.iloc[idx].reset_index(drop=True)
    return reference, current, columns.numeric, columns.categorical


def worker(tool: str, rows: int, repeats: int, seed: int) -> dict:
    """One measurement cell, run in its own process."""
    reference, current, numeric, categorical = _data(rows, seed)
    result: dict = {"tool": tool, "rows": rows}
    if tool == "engine":
        from mlgov_assets.core.monitoring.drift import compute_drift, evidently_compatible
        from mlgov_assets.core.monitoring.profile import ReferenceProfile

        t0 = time.perf_counter()
        profile = ReferenceProfile.build(reference, numeric, categorical, bins=10)
        result["profile_build_s"] = time.perf_counter() - t0
        thresholds = evidently_compatible()
        compute_drift(profile, current.iloc[:1000], thresholds)  # warm scipy.stats import, not timed
        result["data_mb"] = _rss_mb()
        result["peak_reset"] = _reset_peak()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            report = compute_drift(profile, current, thresholds)
            times.append(time.perf_counter() - t0)
        result["verdicts"] = {r.column: r.verdict == "drift" for r in report.columns}
        result["dataset_drift"] = report.dataset_drift
    else:
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
        result["data_mb"] = _rss_mb()
        result["peak_reset"] = _reset_peak()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            snapshot = Report([DataDriftPreset()], include_tests=True).run(
                Dataset.from_pandas(current, data_definition=definition),
                Dataset.from_pandas(reference, data_definition=definition),
            )
            times.append(time.perf_counter() - t0)
        doc = snapshot.dict()
        result["verdicts"] = {
            t["metric_config"]["params"]["column"]: t["status"] == "FAIL"
            for t in doc["tests"]
            if t["metric_config"]["params"].get("type") == "evidently:metric_v2:ValueDrift"
        }
    result["seconds"] = statistics.median(times)
    result["all_seconds"] = times
    result["peak_mb"] = _peak_mb()
    result["process_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def run_cell(tool: str, rows: int, repeats: int, seed: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        tool,
        "--rows",
        str(rows),
        "--repeats",
        str(repeats),
        "--seed",
        str(seed),
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} at {rows} rows failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="16281,1000000,5000000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--evidently-repeats", type=int, default=None, help="default: --repeats")
    ap.add_argument(
        "--evidently-max-rows",
        type=int,
        default=1_000_000,
        help="skip Evidently above this many rows (it takes ~26 s and 1.5 GB at 1M)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    ap.add_argument("--worker", choices=["engine", "evidently"], help=argparse.SUPPRESS)
    ap.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, args.rows, args.repeats, args.seed)))
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    ev_repeats = args.evidently_repeats or args.repeats
    results = []
    for rows in sizes:
        eng = run_cell("engine", rows, args.repeats, args.seed)
        ev = run_cell("evidently", rows, ev_repeats, args.seed) if rows <= args.evidently_max_rows else None
        results.append({"rows": rows, "engine": eng, "evidently": ev})
        print(
            f"  measured {rows:,} rows: engine {eng['seconds']:.3f} s"
            + (f", Evidently {ev['seconds']:.2f} s" if ev else ""),
            file=sys.stderr,
        )

    build = statistics.median(r["engine"]["profile_build_s"] for r in results)
    print(f"Reference profile (adult.data, 32,561 rows, 14 columns) built once: {build:.3f} s (median over cells)\n")
    print(
        f"Median of {args.repeats} runs (Evidently: {ev_repeats}), each tool and size in a fresh process. "
        f"peak MB = peak RSS during the timed runs (VmHWM after a reset; data included); "
        f"data MB = RSS just before them.\n"
    )
    print(
        "| rows | engine s | engine peak MB | engine data MB | Evidently s | Evidently peak MB | "
        "Evidently data MB | ratio (Evidently s / engine s) | verdicts agree |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
    for r in results:
        eng, ev = r["engine"], r["evidently"]
        agree = "—"
        if ev:
            same = sum(eng["verdicts"][c] == ev["verdicts"].get(c) for c in eng["verdicts"])
            agree = f"{same}/{len(eng['verdicts'])}"
        ratio = f"{ev['seconds'] / eng['seconds']:,.0f}×" if ev else "—"
        print(
            f"| {r['rows']:,} | {_fmt(eng['seconds'], 3)} | {_fmt(eng['peak_mb'], 0)} | {_fmt(eng['data_mb'], 0)} | "
            f"{_fmt(ev and ev['seconds'])} | {_fmt(ev and ev['peak_mb'], 0)} | {_fmt(ev and ev['data_mb'], 0)} | "
            f"{ratio} | {agree} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
